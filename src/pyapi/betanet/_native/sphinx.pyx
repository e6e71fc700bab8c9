# betanet._native.sphinx — wraps the Sphinx section of betanet.h. The typed public API is
# betanet.sphinx; this module only moves bytes and releases the GIL around the crypto.
from libc.stdint cimport uint8_t, uint32_t, int32_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from betanet._native._common cimport *

from betanet_sphinx cimport *

cdef extern from "betanet.h" nogil:
    const char *betanet_sphinx_kernel()
    size_t betanet_sphinx_header_bytes(uint32_t max_hops)
    size_t betanet_sphinx_packet_bytes(uint32_t max_hops, uint32_t payload_bytes)
    size_t betanet_sphinx_body_bytes(uint32_t payload_bytes)
    size_t betanet_sphinx_surb_bytes(uint32_t max_hops)
    size_t betanet_sphinx_surb_secret_bytes(uint32_t max_hops)
    int betanet_sphinx_keypair(uint8_t *pk, uint8_t *sk, const uint8_t *seed32)
    int betanet_sphinx_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch,
                              const betanet_sphinx_hop_t *hops, size_t n_hops,
                              const uint8_t *dest_id, const uint8_t *body, size_t body_len,
                              const uint8_t *seed32, uint8_t *packet_out, size_t packet_cap)
    int betanet_sphinx_surb_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch,
                                   const betanet_sphinx_hop_t *hops, size_t n_hops,
                                   const uint8_t *dest_id, const uint8_t *seed32,
                                   uint8_t *surb_out, size_t surb_cap,
                                   uint8_t *surb_secret_out, size_t secret_cap, uint8_t *surb_id_out)
    int betanet_sphinx_surb_use(uint32_t max_hops, uint32_t payload_bytes, const uint8_t *surb, size_t surb_len,
                                const uint8_t *body, size_t body_len, uint8_t *first_hop_out,
                                uint8_t *packet_out, size_t packet_cap)
    int betanet_sphinx_surb_open(uint32_t max_hops, uint32_t payload_bytes, const uint8_t *surb_secret,
                                 size_t secret_len, const uint8_t *payload, size_t payload_len,
                                 uint8_t *body_out, size_t body_cap)
    int betanet_sphinx_node_new(uint32_t max_hops, uint32_t payload_bytes, size_t replay_capacity,
                                betanet_sphinx_node_t **out)
    void betanet_sphinx_node_free(betanet_sphinx_node_t *node)
    int betanet_sphinx_node_add_key(betanet_sphinx_node_t *node, uint32_t epoch, const uint8_t *sk)
    int betanet_sphinx_node_expire(betanet_sphinx_node_t *node, uint32_t oldest_valid)
    size_t betanet_sphinx_node_replay_count(betanet_sphinx_node_t *node, uint32_t epoch)
    int betanet_sphinx_node_process(betanet_sphinx_node_t *node, const uint8_t *packet, size_t packet_len,
                                    betanet_sphinx_result_t *result, uint8_t *out, size_t out_cap)
    int betanet_sphinx_node_process_many(betanet_sphinx_node_t *node, const uint8_t *packets, size_t count,
                                         betanet_sphinx_result_t *results, uint8_t *outs)

DEFAULT_HOPS = BETANET_SPHINX_DEFAULT_HOPS
DEFAULT_PAYLOAD = BETANET_SPHINX_DEFAULT_PAYLOAD_BYTES
MAX_HOPS = BETANET_SPHINX_MAX_HOPS
MIN_PAYLOAD = BETANET_SPHINX_MIN_PAYLOAD_BYTES
MAX_PAYLOAD = BETANET_SPHINX_MAX_PAYLOAD_BYTES
ENTRY_BYTES = BETANET_SPHINX_ENTRY_BYTES
MAX_EPOCHS = BETANET_SPHINX_MAX_EPOCHS
RELAY = BETANET_SPHINX_RELAY
DELIVER = BETANET_SPHINX_DELIVER
REPLY = BETANET_SPHINX_REPLY


def kernel() -> str:
    """X25519 implementation process_many uses now (betanet_sphinx_kernel)."""
    return betanet_sphinx_kernel().decode()


def sizes(uint32_t max_hops, uint32_t payload_bytes):
    """(header, packet, body, surb, surb_secret) byte counts; raises for a bad geometry."""
    cdef size_t p = betanet_sphinx_packet_bytes(max_hops, payload_bytes)
    if p == 0:
        check(BETANET_E_INVALID, f"sphinx geometry ({max_hops} hops, {payload_bytes} bytes)")
    return (betanet_sphinx_header_bytes(max_hops), p, betanet_sphinx_body_bytes(payload_bytes),
            betanet_sphinx_surb_bytes(max_hops), betanet_sphinx_surb_secret_bytes(max_hops))


cdef const uint8_t *_seed(const uint8_t[::1] seed) except? NULL:
    if seed is None:
        return NULL
    if seed.shape[0] != 32:
        check(BETANET_E_INVALID, "seed must be 32 bytes")
    return &seed[0]


def keypair(seed=None):
    """(public_key, secret_key); deterministic from a 32-byte seed when given."""
    cdef const uint8_t[::1] sd = seed
    cdef const uint8_t *sp = _seed(sd)
    pk = PyBytes_FromStringAndSize(NULL, 32)
    sk = PyBytes_FromStringAndSize(NULL, 32)
    check(betanet_sphinx_keypair(<uint8_t *>PyBytes_AS_STRING(pk), <uint8_t *>PyBytes_AS_STRING(sk), sp),
          "sphinx keypair")
    return pk, sk


cdef betanet_sphinx_hop_t *_hops(list hops, uint32_t max_hops) except NULL:
    # hops: list of (node_id: 32 bytes, public_key: 32 bytes, delay_ms: int)
    cdef size_t n = len(hops), i
    cdef betanet_sphinx_hop_t *h
    cdef const uint8_t[::1] nid
    cdef const uint8_t[::1] pk
    if n < 1 or n > max_hops:
        check(BETANET_E_INVALID, f"route needs 1..{max_hops} hops, got {n}")
    h = <betanet_sphinx_hop_t *>malloc(n * sizeof(betanet_sphinx_hop_t))
    if h == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            nid = hops[i][0]
            pk = hops[i][1]
            if nid.shape[0] != 32 or pk.shape[0] != 32:
                check(BETANET_E_INVALID, "node id and public key must be 32 bytes")
            memcpy(h[i].node_id, &nid[0], 32)
            memcpy(h[i].public_key, &pk[0], 32)
            h[i].delay_ms = hops[i][2]
    except BaseException:
        free(h)
        raise
    return h


cdef const uint8_t *_id32(const uint8_t[::1] v, str what) except NULL:
    if v is None or v.shape[0] != 32:
        check(BETANET_E_INVALID, f"{what} must be 32 bytes")
    return &v[0]


def create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch, list hops, dest_id, body,
           seed=None):
    """A forward packet through `hops` delivering `body` to `dest_id`."""
    cdef size_t pkt = betanet_sphinx_packet_bytes(max_hops, payload_bytes)
    cdef const uint8_t[::1] dv = dest_id
    cdef const uint8_t[::1] bv = body
    cdef const uint8_t[::1] sd = seed
    cdef const uint8_t *dp = _id32(dv, "dest_id")
    cdef const uint8_t *sp = _seed(sd)
    cdef const uint8_t *bp = &bv[0] if bv.shape[0] else NULL
    cdef size_t blen = bv.shape[0], n = len(hops)
    cdef betanet_sphinx_hop_t *h
    cdef int rc
    if pkt == 0:
        check(BETANET_E_INVALID, "sphinx geometry")
    h = _hops(hops, max_hops)
    out = PyBytes_FromStringAndSize(NULL, pkt)
    cdef uint8_t *op = <uint8_t *>PyBytes_AS_STRING(out)
    with nogil:
        rc = betanet_sphinx_create(max_hops, payload_bytes, epoch, h, n, dp, bp, blen, sp, op, pkt)
    free(h)
    check(rc, "sphinx create")
    return out


def surb_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch, list hops, dest_id,
                seed=None):
    """(surb, surb_secret, surb_id) for a reply route ending at dest_id."""
    cdef size_t sb = betanet_sphinx_surb_bytes(max_hops), kb = betanet_sphinx_surb_secret_bytes(max_hops)
    cdef const uint8_t[::1] dv = dest_id
    cdef const uint8_t[::1] sd = seed
    cdef const uint8_t *dp = _id32(dv, "dest_id")
    cdef const uint8_t *sp = _seed(sd)
    cdef size_t n = len(hops)
    cdef betanet_sphinx_hop_t *h
    cdef int rc
    if betanet_sphinx_packet_bytes(max_hops, payload_bytes) == 0:
        check(BETANET_E_INVALID, "sphinx geometry")
    h = _hops(hops, max_hops)
    surb = PyBytes_FromStringAndSize(NULL, sb)
    secret = PyBytes_FromStringAndSize(NULL, kb)
    sid = PyBytes_FromStringAndSize(NULL, 16)
    cdef uint8_t *a = <uint8_t *>PyBytes_AS_STRING(surb)
    cdef uint8_t *b = <uint8_t *>PyBytes_AS_STRING(secret)
    cdef uint8_t *c = <uint8_t *>PyBytes_AS_STRING(sid)
    with nogil:
        rc = betanet_sphinx_surb_create(max_hops, payload_bytes, epoch, h, n, dp, sp, a, sb, b, kb, c)
    free(h)
    check(rc, "sphinx surb_create")
    return surb, secret, sid


def surb_use(uint32_t max_hops, uint32_t payload_bytes, surb, body):
    """(first_hop_id, packet): a reply packet built from a SURB."""
    cdef size_t pkt = betanet_sphinx_packet_bytes(max_hops, payload_bytes)
    cdef const uint8_t[::1] sv = surb
    cdef const uint8_t[::1] bv = body
    cdef const uint8_t *bp = &bv[0] if bv.shape[0] else NULL
    cdef const uint8_t *sp = &sv[0] if sv.shape[0] else NULL
    cdef int rc
    if pkt == 0:
        check(BETANET_E_INVALID, "sphinx geometry")
    if sp == NULL:
        check(BETANET_E_MALFORMED, "empty SURB")
    first = PyBytes_FromStringAndSize(NULL, 32)
    out = PyBytes_FromStringAndSize(NULL, pkt)
    cdef uint8_t *fp = <uint8_t *>PyBytes_AS_STRING(first)
    cdef uint8_t *op = <uint8_t *>PyBytes_AS_STRING(out)
    with nogil:
        rc = betanet_sphinx_surb_use(max_hops, payload_bytes, sp, sv.shape[0], bp, bv.shape[0], fp, op, pkt)
    check(rc, "sphinx surb_use")
    return first, out


def surb_open(uint32_t max_hops, uint32_t payload_bytes, surb_secret, payload):
    """The body of a reply payload, or AuthenticationError."""
    cdef const uint8_t[::1] kv = surb_secret
    cdef const uint8_t[::1] pv = payload
    cdef size_t bb = betanet_sphinx_body_bytes(payload_bytes)
    cdef int rc
    if bb == 0 or kv.shape[0] == 0 or pv.shape[0] == 0:
        check(BETANET_E_MALFORMED if bb else BETANET_E_INVALID, "sphinx surb_open")
    out = PyBytes_FromStringAndSize(NULL, bb)
    cdef uint8_t *op = <uint8_t *>PyBytes_AS_STRING(out)
    with nogil:
        rc = betanet_sphinx_surb_open(max_hops, payload_bytes, &kv[0], kv.shape[0], &pv[0], pv.shape[0], op, bb)
    check(rc, "sphinx surb_open")
    return out


cdef tuple _result(betanet_sphinx_result_t *r, const uint8_t *out):
    return (r.action, r.delay_ms, r.epoch,
            PyBytes_FromStringAndSize(<const char *>r.node_id, 32),
            PyBytes_FromStringAndSize(<const char *>r.surb_id, 16),
            PyBytes_FromStringAndSize(<const char *>out, r.out_len))


cdef class Node:
    """A mixnode's packet processor: keys per epoch, replay filters, process / process_many.

    Safe to share between threads: the C side locks around its replay filter only, and
    process_many releases the GIL for the whole batch."""
    cdef betanet_sphinx_node_t *ptr
    cdef readonly uint32_t max_hops, payload_bytes
    cdef readonly size_t packet_bytes

    def __cinit__(self, uint32_t max_hops, uint32_t payload_bytes, size_t replay_capacity):
        check(betanet_sphinx_node_new(max_hops, payload_bytes, replay_capacity, &self.ptr), "sphinx node")
        self.max_hops = max_hops
        self.payload_bytes = payload_bytes
        self.packet_bytes = betanet_sphinx_packet_bytes(max_hops, payload_bytes)

    def __dealloc__(self):
        if self.ptr != NULL:
            betanet_sphinx_node_free(self.ptr)
            self.ptr = NULL

    cdef betanet_sphinx_node_t *_p(self) except NULL:
        if self.ptr == NULL:
            check(BETANET_E_STATE, "sphinx node is closed")
        return self.ptr

    def close(self):
        """Wipe the keys and free the node now."""
        if self.ptr != NULL:
            betanet_sphinx_node_free(self.ptr)
            self.ptr = NULL

    def add_key(self, uint32_t epoch, secret_key):
        cdef const uint8_t[::1] kv = secret_key
        check(betanet_sphinx_node_add_key(self._p(), epoch, _id32(kv, "secret key")), "sphinx add_key")

    def expire(self, uint32_t oldest_valid):
        check(betanet_sphinx_node_expire(self._p(), oldest_valid), "sphinx expire")

    def replay_count(self, uint32_t epoch):
        return betanet_sphinx_node_replay_count(self._p(), epoch)

    def process(self, packet):
        """(action, delay_ms, epoch, node_id, surb_id, output) or raises the packet's error."""
        cdef betanet_sphinx_node_t *p = self._p()
        cdef const uint8_t[::1] pv = packet
        cdef betanet_sphinx_result_t res
        cdef int rc
        cdef uint8_t *out = <uint8_t *>malloc(self.packet_bytes)
        if out == NULL:
            raise MemoryError()
        if pv.shape[0] == 0:
            free(out)
            check(BETANET_E_MALFORMED, "sphinx process")
        with nogil:
            rc = betanet_sphinx_node_process(p, &pv[0], pv.shape[0], &res, out, self.packet_bytes)
        try:
            check(rc, "sphinx process")
            return _result(&res, out)
        finally:
            free(out)

    def process_many(self, packets):
        """Process a batch with the GIL released. Returns one item per packet: a result
        tuple as process() gives, or the BetanetError instance for that packet.

        The packets of the right size are copied once into one contiguous batch for
        betanet_sphinx_node_process_many (which runs their X25519s 8 at a time where the
        CPU allows); a packet of another size is a MalformedError without reaching C."""
        cdef betanet_sphinx_node_t *p = self._p()
        cdef list items = list(packets)
        cdef Py_ssize_t n = len(items), i, k = 0, j
        cdef size_t pk = self.packet_bytes
        cdef uint8_t *inb = NULL
        cdef uint8_t *outb = NULL
        cdef betanet_sphinx_result_t *res = NULL
        cdef uint32_t olen
        cdef list slot = [-1] * n
        if n == 0:
            return []
        from betanet.errors import error_for
        for i in range(n):
            obj = items[i]
            if not isinstance(obj, bytes):
                obj = bytes(obj)
                items[i] = obj
            if <size_t>len(<bytes>obj) == pk:
                slot[i] = k
                k += 1
        if k:
            inb = <uint8_t *>malloc(k * pk)
            outb = <uint8_t *>malloc(k * pk)
            res = <betanet_sphinx_result_t *>malloc(k * sizeof(betanet_sphinx_result_t))
            if inb == NULL or outb == NULL or res == NULL:
                free(inb); free(outb); free(res)
                raise MemoryError()
        try:
            for i in range(n):
                if <Py_ssize_t>slot[i] >= 0:
                    memcpy(inb + <size_t>(<Py_ssize_t>slot[i]) * pk, PyBytes_AS_STRING(items[i]), pk)
            if k:
                with nogil:
                    betanet_sphinx_node_process_many(p, inb, <size_t>k, res, outb)
            result = []
            for i in range(n):
                j = slot[i]
                if j < 0:
                    result.append(error_for(BETANET_E_MALFORMED, "sphinx process"))
                    continue
                if res[j].status != 0:
                    result.append(error_for(res[j].status, "sphinx process"))
                    continue
                olen = res[j].out_len
                result.append((res[j].action, res[j].delay_ms, res[j].epoch,
                               PyBytes_FromStringAndSize(<const char *>res[j].node_id, 32),
                               PyBytes_FromStringAndSize(<const char *>res[j].surb_id, 16)
                               if res[j].action == BETANET_SPHINX_REPLY else b"",
                               PyBytes_FromStringAndSize(<const char *>(outb + <size_t>j * pk), olen)))
            return result
        finally:
            free(inb); free(outb); free(res)
