# betanet._native.mesh — the mesh section of betanet.h (include/betanet/mesh.h).
# Thin: byte buffers in, bytes or tuples of offsets out. The typed API is betanet.mesh.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from betanet._native._common cimport *
from betanet_mesh cimport *

cdef extern from "betanet.h" nogil:
    int betanet_mesh_packet_bytes(const betanet_mesh_packet_t *p, int pad, size_t *out_len)
    int betanet_mesh_encode(const betanet_mesh_packet_t *p, int pad, uint8_t *out, size_t cap,
                            size_t *out_len)
    int betanet_mesh_decode(const uint8_t *inp, size_t length, betanet_mesh_view_t *view)
    int betanet_mesh_view_packet(const uint8_t *buf, const betanet_mesh_view_t *view,
                                 betanet_mesh_packet_t *p)
    size_t betanet_mesh_padded_bytes(size_t length)
    size_t betanet_mesh_unpadded_bytes(const uint8_t *buf, size_t length)
    int betanet_mesh_signing_input_bytes(const betanet_mesh_packet_t *p, size_t *out_len)
    int betanet_mesh_signing_input(const betanet_mesh_packet_t *p, uint8_t *out, size_t cap,
                                   size_t *out_len)
    int betanet_mesh_sign(const betanet_mesh_packet_t *p, const uint8_t *secret_key, uint8_t *sig)
    int betanet_mesh_verify(const betanet_mesh_packet_t *p, const uint8_t *public_key)
    int betanet_mesh_packet_id(const uint8_t *buf, const betanet_mesh_view_t *view, uint8_t *id)
    int betanet_mesh_fragment_parse(const uint8_t *payload, size_t length, int is_parity,
                                    betanet_mesh_fragment_t *frag)
    size_t betanet_mesh_fragment_count(size_t length, size_t chunk)
    int betanet_mesh_fragment_payload(const uint8_t *enc, size_t enc_len, const uint8_t *id,
                                      size_t chunk, uint8_t original_type, unsigned int index,
                                      uint8_t *out, size_t cap, size_t *out_len)
    int betanet_mesh_parity_payloads(const uint8_t *enc, size_t enc_len, const uint8_t *id,
                                     size_t chunk, uint8_t original_type, unsigned int m,
                                     uint8_t *const *out)
    int betanet_mesh_reasm_new(unsigned int max_assemblies, size_t max_bytes, uint64_t timeout_ms,
                               betanet_mesh_reasm_t **out)
    void betanet_mesh_reasm_free(betanet_mesh_reasm_t *r)
    int betanet_mesh_reasm_add(betanet_mesh_reasm_t *r, const uint8_t *sender, int is_parity,
                               const uint8_t *payload, size_t length, uint64_t now_ms,
                               uint8_t *out, size_t cap, size_t *out_len)
    int betanet_mesh_reasm_expire(betanet_mesh_reasm_t *r, uint64_t now_ms)
    int betanet_mesh_reasm_stats(const betanet_mesh_reasm_t *r, betanet_mesh_reasm_stats_t *stats)
    int betanet_mesh_dedup_new(uint32_t capacity, betanet_mesh_dedup_t **out)
    void betanet_mesh_dedup_free(betanet_mesh_dedup_t *d)
    int betanet_mesh_dedup_check(betanet_mesh_dedup_t *d, const uint8_t *id)

FRAGMENT_HEADER_BYTES = BETANET_MESH_FRAGMENT_HEADER_BYTES
PARITY_HEADER_BYTES = BETANET_MESH_PARITY_HEADER_BYTES
CHUNK_BYTES = BETANET_MESH_CHUNK_BYTES
MTU_BYTES = BETANET_MESH_MTU_BYTES
MAX_PAYLOAD_BYTES = BETANET_MESH_MAX_PAYLOAD_BYTES
MAX_FRAGMENTS = BETANET_MESH_MAX_FRAGMENTS
PACKET_ID_BYTES = BETANET_MESH_PACKET_ID_BYTES
TYPE_FEC_PARITY = BETANET_MESH_TYPE_FEC_PARITY

from betanet.errors import InvalidArgumentError


cdef const uint8_t *_ptr(object o, list keep, size_t *n, Py_ssize_t exact, str what) except? NULL:
    # A pointer to o's bytes (bytes are read in place; other buffers copied once).
    cdef bytes b
    if type(o) is bytes:
        b = <bytes>o
    else:
        try:
            b = bytes(o)
        except TypeError:
            raise InvalidArgumentError(f"{what}: expected a bytes-like object, got {type(o).__name__}",
                                       BETANET_E_INVALID) from None
        keep.append(b)
    if exact >= 0 and PyBytes_GET_SIZE(b) != exact:
        raise InvalidArgumentError(f"{what} must be {exact} bytes, got {PyBytes_GET_SIZE(b)}",
                                   BETANET_E_INVALID)
    n[0] = <size_t>PyBytes_GET_SIZE(b)
    return <const uint8_t *>PyBytes_AS_STRING(b)


cdef int _fill(betanet_mesh_packet_t *p, list keep, int version, int type, int ttl,
               unsigned long long timestamp, object sender, object payload, object recipient,
               object route, object signature, bint compressed, unsigned int original_size,
               bint rsr) except -1:
    cdef size_t n
    memset(p, 0, sizeof(betanet_mesh_packet_t))
    if not (0 <= version <= 255 and 0 <= type <= 255 and 0 <= ttl <= 255):
        raise InvalidArgumentError("version, type and ttl are single bytes", BETANET_E_INVALID)
    p.version = version
    p.type = type
    p.ttl = ttl
    p.timestamp = timestamp
    p.compressed = compressed
    p.rsr = rsr
    p.original_size = original_size
    p.sender = _ptr(sender, keep, &n, 8, "sender")
    p.payload = _ptr(payload, keep, &p.payload_len, -1, "payload")
    if recipient is not None:
        p.recipient = _ptr(recipient, keep, &n, 8, "recipient")
    if route:
        hops = b"".join(bytes(h) for h in route)
        if len(hops) != 8 * len(route):
            raise InvalidArgumentError("every route hop must be 8 bytes", BETANET_E_INVALID)
        keep.append(hops)
        p.route = _ptr(hops, keep, &n, -1, "route")
        p.route_hops = len(route)
    if signature is not None:
        p.signature = _ptr(signature, keep, &n, 64, "signature")
    return 0


def encode(int version, int type, int ttl, unsigned long long timestamp, sender, payload,
           recipient=None, route=None, signature=None, bint compressed=False,
           unsigned int original_size=0, bint rsr=False, bint pad=True) -> bytes:
    """Encode a packet (payload as carried: compressed bytes when compressed)."""
    cdef betanet_mesh_packet_t p
    cdef list keep = []
    cdef size_t n = 0
    _fill(&p, keep, version, type, ttl, timestamp, sender, payload, recipient, route, signature,
          compressed, original_size, rsr)
    check(betanet_mesh_packet_bytes(&p, pad, &n), "betanet_mesh_packet_bytes")
    out = PyBytes_FromStringAndSize(NULL, n)
    check(betanet_mesh_encode(&p, pad, <uint8_t *>PyBytes_AS_STRING(out), n, &n), "betanet_mesh_encode")
    return out


def signing_input(int version, int type, unsigned long long timestamp, sender, payload,
                  recipient=None, route=None, bint compressed=False,
                  unsigned int original_size=0) -> bytes:
    """BitChat's signing input: the packet with TTL 0, no signature, RSR clear, padded."""
    cdef betanet_mesh_packet_t p
    cdef list keep = []
    cdef size_t n = 0
    _fill(&p, keep, version, type, 0, timestamp, sender, payload, recipient, route, None,
          compressed, original_size, False)
    check(betanet_mesh_signing_input_bytes(&p, &n), "betanet_mesh_signing_input_bytes")
    out = PyBytes_FromStringAndSize(NULL, n)
    check(betanet_mesh_signing_input(&p, <uint8_t *>PyBytes_AS_STRING(out), n, &n),
          "betanet_mesh_signing_input")
    return out


def sign(secret_key, int version, int type, unsigned long long timestamp, sender, payload,
         recipient=None, route=None, bint compressed=False, unsigned int original_size=0) -> bytes:
    """Ed25519 signature (64 bytes) of the packet's signing input; secret_key is 64 bytes."""
    cdef betanet_mesh_packet_t p
    cdef list keep = []
    cdef size_t n = 0
    cdef uint8_t sig[64]
    cdef const uint8_t *sk
    _fill(&p, keep, version, type, 0, timestamp, sender, payload, recipient, route, None,
          compressed, original_size, False)
    sk = _ptr(secret_key, keep, &n, 64, "secret_key")
    check(betanet_mesh_sign(&p, sk, sig), "betanet_mesh_sign")
    return PyBytes_FromStringAndSize(<char *>sig, 64)


cdef const uint8_t *_in(object data, list keep, size_t *n) except? NULL:
    return _ptr(data, keep, n, -1, "packet")


def decode(data) -> tuple:
    """(version, type, ttl, flags, timestamp, original_size, sender_off, recipient_off,
    route_off, route_hops, payload_off, payload_len, signature_off, packet_len)."""
    cdef betanet_mesh_view_t v
    cdef list keep = []
    cdef size_t n = 0
    cdef const uint8_t *b = _in(data, keep, &n)
    cdef int rc = betanet_mesh_decode(b, n, &v)
    check(rc, "mesh packet")
    return (v.version, v.type, v.ttl, v.flags, v.timestamp, v.original_size, v.sender_off,
            v.recipient_off, v.route_off, v.route_hops, v.payload_off, v.payload_len,
            v.signature_off, v.packet_len)


def verify(data, public_key) -> None:
    """Verify the signature of the packet in data; raises AuthenticationError if wrong,
    InvalidArgumentError if it carries none."""
    cdef betanet_mesh_view_t v
    cdef betanet_mesh_packet_t p
    cdef list keep = []
    cdef size_t n = 0, kn = 0
    cdef const uint8_t *b = _in(data, keep, &n)
    cdef const uint8_t *pk = _ptr(public_key, keep, &kn, 32, "public_key")
    check(betanet_mesh_decode(b, n, &v), "mesh packet")
    check(betanet_mesh_view_packet(b, &v, &p), "betanet_mesh_view_packet")
    cdef int rc = betanet_mesh_verify(&p, pk)
    check(rc, "mesh packet signature")


def packet_id(data) -> bytes:
    """De-duplication identity (16 bytes) of the packet in data."""
    cdef betanet_mesh_view_t v
    cdef list keep = []
    cdef size_t n = 0
    cdef uint8_t out[16]
    cdef const uint8_t *b = _in(data, keep, &n)
    check(betanet_mesh_decode(b, n, &v), "mesh packet")
    check(betanet_mesh_packet_id(b, &v, out), "betanet_mesh_packet_id")
    return PyBytes_FromStringAndSize(<char *>out, 16)


def padded_bytes(size_t length) -> int:
    return betanet_mesh_padded_bytes(length)


def unpadded_bytes(data) -> int:
    cdef list keep = []
    cdef size_t n = 0
    cdef const uint8_t *b = _in(data, keep, &n)
    return betanet_mesh_unpadded_bytes(b, n)


def fragment_count(size_t length, size_t chunk) -> int:
    return betanet_mesh_fragment_count(length, chunk)


def fragment_payload(encoded, fragment_id, size_t chunk, int original_type,
                     unsigned int index) -> bytes:
    cdef list keep = []
    cdef size_t n = 0, idn = 0, written = 0
    cdef const uint8_t *e = _ptr(encoded, keep, &n, -1, "encoded")
    cdef const uint8_t *fid = _ptr(fragment_id, keep, &idn, 8, "fragment_id")
    out = PyBytes_FromStringAndSize(NULL, BETANET_MESH_FRAGMENT_HEADER_BYTES + chunk)
    check(betanet_mesh_fragment_payload(e, n, fid, chunk, <uint8_t>original_type, index,
                                        <uint8_t *>PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out),
                                        &written), "betanet_mesh_fragment_payload")
    return out[:written]


def parity_payloads(encoded, fragment_id, size_t chunk, int original_type, unsigned int m) -> list:
    cdef list keep = []
    cdef size_t n = 0, idn = 0, i
    cdef const uint8_t *e = _ptr(encoded, keep, &n, -1, "encoded")
    cdef const uint8_t *fid = _ptr(fragment_id, keep, &idn, 8, "fragment_id")
    cdef uint8_t *ptrs[255]
    if m == 0 or m > 254:
        raise InvalidArgumentError("parity count must be 1..254", BETANET_E_INVALID)
    outs = [PyBytes_FromStringAndSize(NULL, BETANET_MESH_PARITY_HEADER_BYTES + chunk) for _ in range(m)]
    for i in range(m):
        ptrs[i] = <uint8_t *>PyBytes_AS_STRING(outs[i])
    check(betanet_mesh_parity_payloads(e, n, fid, chunk, <uint8_t>original_type, m, ptrs),
          "betanet_mesh_parity_payloads")
    return outs


def fragment_parse(payload, bint is_parity=False) -> tuple:
    """(id, index, total, parity, original_type, original_len, data_off, data_len)."""
    cdef betanet_mesh_fragment_t f
    cdef list keep = []
    cdef size_t n = 0
    cdef const uint8_t *b = _ptr(payload, keep, &n, -1, "fragment")
    check(betanet_mesh_fragment_parse(b, n, is_parity, &f), "mesh fragment")
    return (PyBytes_FromStringAndSize(<char *>f.id, 8), f.index, f.total, f.parity,
            f.original_type, f.original_len, f.data_off, f.data_len)


cdef class Reassembler:
    """Bounded fragment reassembler (betanet_mesh_reasm_*); time is injected (ms)."""
    cdef betanet_mesh_reasm_t *_r
    cdef size_t _max_bytes
    cdef bytearray _scratch      # one output buffer, reused (completions are copied out)

    def __cinit__(self, unsigned int max_assemblies=128, size_t max_bytes=1 << 20,
                  unsigned long long timeout_ms=30000):
        check(betanet_mesh_reasm_new(max_assemblies, max_bytes, timeout_ms, &self._r),
              "betanet_mesh_reasm_new")
        self._max_bytes = max_bytes
        self._scratch = bytearray(max_bytes)

    def __dealloc__(self):
        betanet_mesh_reasm_free(self._r)
        self._r = NULL

    def add(self, sender, payload, unsigned long long now_ms, bint is_parity=False):
        """The encoded original packet when this fragment completes it, else None."""
        cdef list keep = []
        cdef size_t sn = 0, n = 0, out_len = 0
        cdef const uint8_t *s = _ptr(sender, keep, &sn, 8, "sender")
        cdef const uint8_t *b = _ptr(payload, keep, &n, -1, "fragment")
        cdef bytearray out = self._scratch
        cdef uint8_t *o = out
        cdef int rc
        with nogil:
            rc = betanet_mesh_reasm_add(self._r, s, is_parity, b, n, now_ms, o, self._max_bytes,
                                        &out_len)
        check(rc, "mesh fragment")
        if rc == 1:
            return PyBytes_FromStringAndSize(<char *>o, out_len)
        return None

    def expire(self, unsigned long long now_ms) -> int:
        return check(betanet_mesh_reasm_expire(self._r, now_ms), "betanet_mesh_reasm_expire")

    def stats(self) -> dict:
        cdef betanet_mesh_reasm_stats_t s
        check(betanet_mesh_reasm_stats(self._r, &s), "betanet_mesh_reasm_stats")
        return dict(completed=s.completed, recovered=s.recovered, malformed=s.malformed,
                    inconsistent=s.inconsistent, oversized=s.oversized, evicted=s.evicted,
                    expired=s.expired, in_flight=s.in_flight, bytes_held=s.bytes_held)


cdef class Dedup:
    """Rotating Bloom filter pair over 16-byte packet identities (betanet_mesh_dedup_*)."""
    cdef betanet_mesh_dedup_t *_d

    def __cinit__(self, unsigned int capacity=4096):
        check(betanet_mesh_dedup_new(capacity, &self._d), "betanet_mesh_dedup_new")

    def __dealloc__(self):
        betanet_mesh_dedup_free(self._d)
        self._d = NULL

    def check(self, packet_id) -> bool:
        """True when packet_id was (probably) seen; otherwise remember it and return False."""
        cdef list keep = []
        cdef size_t n = 0
        cdef const uint8_t *b = _ptr(packet_id, keep, &n, 16, "packet_id")
        return check(betanet_mesh_dedup_check(self._d, b), "betanet_mesh_dedup_check") == 1
