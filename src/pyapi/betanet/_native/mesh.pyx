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
    int betanet_mesh_encode_batch_bytes(const betanet_mesh_packet_t *packets, size_t n, int pad,
                                        size_t *out_len, size_t *done)
    int betanet_mesh_encode_batch(const betanet_mesh_packet_t *packets, size_t n, int pad,
                                  uint8_t *out, size_t cap, size_t *offsets, size_t *done)
    int betanet_mesh_decode_batch(const uint8_t *inp, size_t length, const size_t *offsets,
                                  size_t n, betanet_mesh_view_t *views, int *status)
    int betanet_mesh_packet_id_batch(const uint8_t *buf, const betanet_mesh_view_t *views,
                                     size_t n, uint8_t *ids)
    int betanet_mesh_dedup_check_batch(betanet_mesh_dedup_t *d, const uint8_t *ids, size_t n,
                                       uint8_t *seen)

FRAGMENT_HEADER_BYTES = BETANET_MESH_FRAGMENT_HEADER_BYTES
PARITY_HEADER_BYTES = BETANET_MESH_PARITY_HEADER_BYTES
CHUNK_BYTES = BETANET_MESH_CHUNK_BYTES
MTU_BYTES = BETANET_MESH_MTU_BYTES
MAX_PAYLOAD_BYTES = BETANET_MESH_MAX_PAYLOAD_BYTES
MAX_FRAGMENTS = BETANET_MESH_MAX_FRAGMENTS
PACKET_ID_BYTES = BETANET_MESH_PACKET_ID_BYTES
TYPE_FEC_PARITY = BETANET_MESH_TYPE_FEC_PARITY

from cpython.mem cimport PyMem_Malloc, PyMem_Free
cimport cython
import numpy as np

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
        # grown on demand (a completion that does not fit is retried with the size the core
        # reports): a mesh of many routers should not hold max_bytes each up front
        self._scratch = bytearray(min(max_bytes, 4096))

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
        cdef size_t cap = len(out)
        cdef int rc
        with nogil:
            rc = betanet_mesh_reasm_add(self._r, s, is_parity, b, n, now_ms, o, cap, &out_len)
        if rc == BETANET_E_BUFFER_TOO_SMALL and cap < out_len <= self._max_bytes:
            # the assembly is kept: add the same fragment again into a buffer that fits
            self._scratch = out = bytearray(out_len)
            o = out
            cap = out_len
            with nogil:
                rc = betanet_mesh_reasm_add(self._r, s, is_parity, b, n, now_ms, o, cap, &out_len)
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

    def check_batch(self, ids):
        """check() over an (n, 16) uint8 array of identities (packet_id_batch) in one call:
        a bool array, True where seen (also for the all-zero rows of frames that failed)."""
        cdef const uint8_t[:, ::1] v = _rows(ids, 16, "ids")
        cdef size_t n = v.shape[0]
        seen = np.empty(n, dtype=np.uint8)
        cdef uint8_t[::1] sv = seen
        cdef int rc = 0
        if n:
            with nogil:
                rc = betanet_mesh_dedup_check_batch(self._d, &v[0, 0], n, &sv[0])
        check(rc, "betanet_mesh_dedup_check_batch")
        return seen.view(np.bool_)


# ---- batches: many packets in one flat buffer (include/betanet/mesh.h) ------------------

cdef betanet_mesh_view_t _v0
cdef size_t _at(void *field):
    return <size_t>(<char *>field - <char *>&_v0)

# betanet_mesh_view_t as a NumPy record, offsets taken from the C struct (platform layout).
VIEW_DTYPE = np.dtype({
    "names": ["version", "type", "ttl", "flags", "timestamp", "original_size", "sender_off",
              "recipient_off", "route_off", "route_hops", "payload_off", "payload_len",
              "signature_off", "packet_len"],
    "formats": [np.uint8] * 4 + [np.uint64, np.uint32] + [np.uintp] * 8,
    "offsets": [_at(&_v0.version), _at(&_v0.type), _at(&_v0.ttl), _at(&_v0.flags),
                _at(&_v0.timestamp), _at(&_v0.original_size), _at(&_v0.sender_off),
                _at(&_v0.recipient_off), _at(&_v0.route_off), _at(&_v0.route_hops),
                _at(&_v0.payload_off), _at(&_v0.payload_len), _at(&_v0.signature_off),
                _at(&_v0.packet_len)],
    "itemsize": sizeof(betanet_mesh_view_t)})


cdef const uint8_t[:, ::1] _rows(obj, Py_ssize_t width, str what):
    # An (n, width) C-contiguous uint8 view of a 2-D array or a flat buffer of n * width bytes.
    try:
        a = np.frombuffer(obj, dtype=np.uint8) if isinstance(obj, (bytes, bytearray, memoryview)) \
            else np.ascontiguousarray(obj, dtype=np.uint8)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what}: expected bytes or a uint8 array", BETANET_E_INVALID) from None
    if a.size % width or (a.ndim == 2 and a.shape[1] != width) or a.ndim > 2:
        raise InvalidArgumentError(f"{what}: rows of {width} bytes expected, got shape {a.shape}",
                                   BETANET_E_INVALID)
    return a.reshape(-1, width)


cdef const size_t[::1] _offsets(obj, str what):
    try:
        a = np.ascontiguousarray(obj, dtype=np.uintp)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{what}: expected an array of non-negative integers",
                                   BETANET_E_INVALID) from None
    if a.ndim != 1 or a.shape[0] < 1:
        raise InvalidArgumentError(f"{what}: n + 1 offsets expected", BETANET_E_INVALID)
    return a


cdef object _column(obj, Py_ssize_t n, dtype, uint64_t maxv, str what, uint64_t *scalar):
    # A scalar (returns None, the value in *scalar: read with stride 0) or n values (an array).
    cdef object a
    try:
        if isinstance(obj, int) or (isinstance(obj, np.generic) and np.ndim(obj) == 0):
            if not 0 <= obj <= maxv:
                raise ValueError
            scalar[0] = <uint64_t>int(obj)
            return None
        a = np.asarray(obj)
        if a.dtype != dtype:
            if a.dtype.kind not in "ui" or (a.size and (a.min() < 0 or a.max() > maxv)):
                raise ValueError
        a = np.ascontiguousarray(a, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{what}: integers in 0..{maxv} expected", BETANET_E_INVALID) from None
    if a.shape != (n,):
        raise InvalidArgumentError(f"{what}: a scalar or {n} values expected, got shape {a.shape}",
                                   BETANET_E_INVALID)
    return a


cdef const uint8_t *_row_ptr(obj, Py_ssize_t width, Py_ssize_t n, size_t *stride, list keep,
                             str what) except? NULL:
    # One row for all packets (stride 0) or one row per packet; a bytes object of exactly one
    # row is read in place without NumPy (the common case: one sender, one signature).
    cdef const uint8_t[:, ::1] rows
    if type(obj) is bytes and PyBytes_GET_SIZE(obj) == width:
        keep.append(obj)
        stride[0] = 0
        return <const uint8_t *>PyBytes_AS_STRING(obj)
    rows = _rows(obj, width, what)
    keep.append(rows)
    if rows.shape[0] == 1:
        stride[0] = 0
    elif rows.shape[0] == n:
        stride[0] = rows.shape[1]
    else:
        raise InvalidArgumentError(f"{what}: 1 or {n} rows expected, got {rows.shape[0]}",
                                   BETANET_E_INVALID)
    return &rows[0, 0]


cdef const uint8_t *_col8(object a, uint64_t scalar, uint8_t *one, size_t *stride):
    cdef const uint8_t[::1] v
    if a is None:
        one[0] = <uint8_t>scalar
        stride[0] = 0
        return one
    v = a
    stride[0] = 1
    return &v[0] if v.shape[0] else one


@cython.boundscheck(False)
@cython.wraparound(False)
def encode_batch(sender, payload, payload_offsets, *, type, timestamp, ttl=7, version=1,
                 recipient=None, signature=None, bint pad=True) -> tuple:
    """Encode n packets from columns in one core call: payload i is
    payload[payload_offsets[i]:payload_offsets[i+1]]; sender (8 bytes), recipient (8 bytes)
    and signature (64 bytes) are one row for all packets or n rows; type, ttl, version and
    timestamp a scalar or n values. Returns (buffer, offsets): packet i is
    buffer[offsets[i]:offsets[i+1]]."""
    cdef const size_t[::1] po = _offsets(payload_offsets, "payload_offsets")
    cdef Py_ssize_t n = po.shape[0] - 1
    cdef list keep = []
    cdef size_t pay_len = 0
    cdef const uint8_t *pay = _ptr(payload, keep, &pay_len, -1, "payload")
    cdef uint64_t sv = 0, sy = 0, sl = 0, st = 0
    cdef uint8_t one_v, one_y, one_l
    cdef size_t dv, dy, dl, dt = 1, i, total = 0, done = 0
    cdef size_t s_stride = 0, r_stride = 0, g_stride = 0
    av = _column(version, n, np.uint8, 255, "version", &sv)
    ay = _column(type, n, np.uint8, 255, "type", &sy)
    al = _column(ttl, n, np.uint8, 255, "ttl", &sl)
    at = _column(timestamp, n, np.uint64, 0xFFFFFFFFFFFFFFFF, "timestamp", &st)
    keep += [av, ay, al, at]
    cdef const uint8_t *ver = _col8(av, sv, &one_v, &dv)
    cdef const uint8_t *typ = _col8(ay, sy, &one_y, &dy)
    cdef const uint8_t *tl = _col8(al, sl, &one_l, &dl)
    cdef const uint64_t[::1] tsv
    cdef const uint64_t *ts = &st
    if at is None:
        dt = 0
    elif n:
        tsv = at
        ts = &tsv[0]
    cdef const uint8_t *s_ptr = _row_ptr(sender, 8, n, &s_stride, keep, "sender")
    cdef const uint8_t *r_ptr = NULL
    cdef const uint8_t *g_ptr = NULL
    cdef betanet_mesh_packet_t *pk
    cdef uint8_t *o
    cdef int rc = 0, bad = 0
    if recipient is not None:
        r_ptr = _row_ptr(recipient, 8, n, &r_stride, keep, "recipient")
    if signature is not None:
        g_ptr = _row_ptr(signature, 64, n, &g_stride, keep, "signature")
    offsets = np.empty(n + 1, dtype=np.uintp)
    cdef size_t[::1] ov = offsets
    pk = <betanet_mesh_packet_t *>PyMem_Malloc(sizeof(betanet_mesh_packet_t) * (n if n else 1))
    if pk == NULL:
        raise MemoryError()
    try:
        with nogil:
            memset(pk, 0, sizeof(betanet_mesh_packet_t) * n)
            for i in range(<size_t>n):
                if po[i] > po[i + 1] or po[i + 1] > pay_len:
                    bad = 1
                    break
                pk[i].version = ver[i * dv]
                pk[i].type = typ[i * dy]
                pk[i].ttl = tl[i * dl]
                pk[i].timestamp = ts[i * dt]
                pk[i].sender = s_ptr + i * s_stride
                if r_ptr != NULL:
                    pk[i].recipient = r_ptr + i * r_stride
                if g_ptr != NULL:
                    pk[i].signature = g_ptr + i * g_stride
                pk[i].payload = pay + po[i]
                pk[i].payload_len = po[i + 1] - po[i]
            if not bad:
                rc = betanet_mesh_encode_batch_bytes(pk, n, pad, &total, &done)
        if bad:
            raise InvalidArgumentError(f"payload_offsets: not nondecreasing within the {pay_len}-byte payload",
                                       BETANET_E_INVALID)
        if rc < 0:
            check(rc, f"mesh batch packet {done}")
        out = PyBytes_FromStringAndSize(NULL, total)
        o = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            rc = betanet_mesh_encode_batch(pk, n, pad, o, total, &ov[0], &done)
        if rc < 0:
            check(rc, f"mesh batch packet {done}")
    finally:
        PyMem_Free(pk)
    return out, offsets


@cython.boundscheck(False)
@cython.wraparound(False)
def decode_batch(buffer, offsets) -> tuple:
    """Decode the frames buffer[offsets[i]:offsets[i+1]] in one core call: (views, status,
    ok) — views a VIEW_DTYPE record array with offsets into `buffer`, status the C status
    per frame (0 decoded), ok how many decoded. No per-packet Python object."""
    cdef const size_t[::1] off = _offsets(offsets, "offsets")
    cdef size_t n = off.shape[0] - 1
    cdef const uint8_t[::1] buf = np.frombuffer(buffer, dtype=np.uint8) if len(buffer) else np.zeros(1, np.uint8)
    cdef size_t blen = len(buffer)
    views = np.empty(n, dtype=VIEW_DTYPE)
    status = np.empty(n, dtype=np.intc)
    cdef uint8_t[::1] vv = views.view(np.uint8) if n else np.zeros(1, np.uint8)
    cdef int[::1] sv = status if n else np.zeros(1, np.intc)
    cdef int rc
    with nogil:
        rc = betanet_mesh_decode_batch(&buf[0], blen, &off[0], n, <betanet_mesh_view_t *>&vv[0], &sv[0])
    check(rc, "betanet_mesh_decode_batch")
    return views, status, rc


@cython.boundscheck(False)
@cython.wraparound(False)
def packet_id_batch(buffer, views) -> object:
    """(n, 16) uint8 array of the de-duplication identities of decode_batch's views over
    buffer (zero rows for frames that did not decode)."""
    cdef const uint8_t[::1] buf = np.frombuffer(buffer, dtype=np.uint8) if len(buffer) else np.zeros(1, np.uint8)
    if not isinstance(views, np.ndarray) or views.dtype != VIEW_DTYPE or views.ndim != 1:
        raise InvalidArgumentError("views: the record array decode_batch returned", BETANET_E_INVALID)
    cdef size_t n = views.shape[0], i
    cdef const uint8_t[::1] vv = np.ascontiguousarray(views).view(np.uint8) if n else np.zeros(1, np.uint8)
    cdef const betanet_mesh_view_t *vp = <const betanet_mesh_view_t *>&vv[0]
    cdef size_t blen = len(buffer)
    ids = np.zeros((n, 16), dtype=np.uint8)
    cdef uint8_t[:, ::1] iv = ids if n else np.zeros((1, 16), np.uint8)
    cdef int rc, bad = 0
    with nogil:
        for i in range(n):     # views come from Python: they must lie inside the buffer
            if vp[i].sender_off != 0 and (vp[i].sender_off > blen or blen - vp[i].sender_off < 8
                                          or vp[i].payload_off > blen
                                          or vp[i].payload_len > blen - vp[i].payload_off):
                bad = 1
                break
        if not bad:
            rc = betanet_mesh_packet_id_batch(&buf[0], vp, n, &iv[0, 0])
    if bad:
        raise InvalidArgumentError("views: offsets outside the buffer", BETANET_E_INVALID)
    check(rc, "betanet_mesh_packet_id_batch")
    return ids
