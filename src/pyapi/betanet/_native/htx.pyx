# betanet._native.htx — the HTX codec and session of libbetanet (include/betanet/htx.h).
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.bytearray cimport PyByteArray_FromStringAndSize, PyByteArray_AS_STRING, PyByteArray_Resize
from betanet._native._common cimport *

from betanet_htx cimport *

cdef extern from "betanet.h" nogil:
    int betanet_htx_varint_encode(uint64_t value, uint8_t *out, size_t cap, size_t *written)
    int betanet_htx_varint_decode(const uint8_t *inp, size_t length, uint64_t *value, size_t *consumed)
    int betanet_htx_derive_ns(const uint8_t *key, uint8_t *ns)
    int betanet_htx_next_key(const uint8_t *key, const uint8_t *hash, size_t hash_len, uint8_t *nxt)
    int betanet_htx_frame_seal(const uint8_t *key, const uint8_t *ns, uint64_t counter, int type,
                               uint64_t stream_id, const uint8_t *pt, size_t pt_len,
                               uint8_t *out, size_t cap, size_t *out_len)
    int betanet_htx_frame_open(const uint8_t *key, const uint8_t *ns, uint64_t counter,
                               const uint8_t *inp, size_t length, uint32_t max_frame, int *type,
                               uint64_t *stream_id, uint8_t *out, size_t cap, size_t *pt_len,
                               size_t *consumed)
    int betanet_htx_session_new(int role, const uint8_t *k1, const uint8_t *k2,
                                const uint8_t *handshake_hash, const betanet_htx_config_t *config,
                                uint64_t now_ms, betanet_htx_session_t **out)
    void betanet_htx_session_free(betanet_htx_session_t *s)
    size_t betanet_htx_session_max_frame(const betanet_htx_session_t *s)
    size_t betanet_htx_session_pending(const betanet_htx_session_t *s)
    int betanet_htx_session_stats(const betanet_htx_session_t *s, betanet_htx_stats_t *stats)
    int betanet_htx_session_seal(betanet_htx_session_t *s, int type, uint64_t stream_id,
                                 const uint8_t *pt, size_t pt_len, uint64_t now_ms,
                                 uint8_t *out, size_t cap, size_t *out_len)
    int betanet_htx_session_seal_stream(betanet_htx_session_t *s, uint64_t stream_id, uint8_t flags,
                                        const uint8_t *data, size_t length, uint64_t now_ms,
                                        uint8_t *out, size_t cap, size_t *out_len)
    int betanet_htx_session_open(betanet_htx_session_t *s, const uint8_t *inp, size_t length,
                                 size_t *consumed, betanet_htx_frame_t *frame, uint8_t *out,
                                 size_t cap)

KEY_BYTES = BETANET_HTX_KEY_BYTES
NS_BYTES = BETANET_HTX_NS_BYTES
HASH_BYTES = BETANET_HTX_HASH_BYTES
TAG_BYTES = BETANET_HTX_TAG_BYTES
MAX_HEADER_BYTES = BETANET_HTX_MAX_HEADER_BYTES
OVERHEAD_BYTES = BETANET_HTX_OVERHEAD_BYTES
DEFAULT_MAX_FRAME = BETANET_HTX_DEFAULT_MAX_FRAME_BYTES
MAX_FRAME_LIMIT = BETANET_HTX_MAX_FRAME_LIMIT_BYTES
STREAM = BETANET_HTX_STREAM
PING = BETANET_HTX_PING
CLOSE = BETANET_HTX_CLOSE
KEY_UPDATE = BETANET_HTX_KEY_UPDATE
WINDOW_UPDATE = BETANET_HTX_WINDOW_UPDATE
INITIATOR = BETANET_HTX_INITIATOR
RESPONDER = BETANET_HTX_RESPONDER


cdef const uint8_t[::1] _fixed(object buf, size_t n, str what):
    cdef const uint8_t[::1] v = memoryview(buf).cast("B")
    if <size_t>v.shape[0] != n:
        raise ValueError(f"{what} must be {n} bytes, got {v.shape[0]}")
    return v


cdef inline const uint8_t *_ptr(const uint8_t[::1] v) noexcept nogil:
    return &v[0] if v.shape[0] else <const uint8_t *>b""


def varint_encode(uint64_t value) -> bytes:
    cdef uint8_t out[8]
    cdef size_t n = 0
    check(betanet_htx_varint_encode(value, out, 8, &n), "htx varint")
    return PyBytes_FromStringAndSize(<char *>out, n)


def varint_decode(data) -> tuple:
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef uint64_t value = 0
    cdef size_t n = 0
    check(betanet_htx_varint_decode(_ptr(v), v.shape[0], &value, &n), "htx varint")
    return value, n


def derive_ns(key) -> bytes:
    cdef const uint8_t[::1] k = _fixed(key, 32, "key")
    cdef uint8_t ns[12]
    check(betanet_htx_derive_ns(&k[0], ns), "htx derive_ns")
    return PyBytes_FromStringAndSize(<char *>ns, 12)


def next_key(key, handshake_hash) -> bytes:
    cdef const uint8_t[::1] k = _fixed(key, 32, "key")
    cdef const uint8_t[::1] h = memoryview(handshake_hash).cast("B")
    cdef uint8_t out[32]
    check(betanet_htx_next_key(&k[0], _ptr(h), h.shape[0], out), "htx next_key")
    return PyBytes_FromStringAndSize(<char *>out, 32)


def frame_seal(key, ns, uint64_t counter, int type, uint64_t stream_id, plaintext) -> bytes:
    """Seal one frame with explicit key, NS and counter (stateless codec)."""
    cdef const uint8_t[::1] k = _fixed(key, 32, "key")
    cdef const uint8_t[::1] n = _fixed(ns, 12, "ns")
    cdef const uint8_t[::1] p = memoryview(plaintext).cast("B")
    cdef size_t cap = p.shape[0] + BETANET_HTX_OVERHEAD_BYTES, out_len = 0
    cdef bytearray out = PyByteArray_FromStringAndSize(NULL, cap)
    cdef uint8_t *o = <uint8_t *>PyByteArray_AS_STRING(out)
    cdef int rc
    with nogil:
        rc = betanet_htx_frame_seal(&k[0], &n[0], counter, type, stream_id, _ptr(p), p.shape[0],
                                    o, cap, &out_len)
    check(rc, "htx frame_seal")
    return bytes(out[:out_len])


def frame_open(key, ns, uint64_t counter, data, uint32_t max_frame=BETANET_HTX_DEFAULT_MAX_FRAME_BYTES) -> tuple:
    """Open the frame at the start of ``data``: (type, stream_id, plaintext, consumed)."""
    cdef const uint8_t[::1] k = _fixed(key, 32, "key")
    cdef const uint8_t[::1] n = _fixed(ns, 12, "ns")
    cdef const uint8_t[::1] d = memoryview(data).cast("B")
    cdef size_t cap = d.shape[0], pt_len = 0, consumed = 0
    cdef bytearray out = PyByteArray_FromStringAndSize(NULL, cap)
    cdef uint8_t *o = <uint8_t *>PyByteArray_AS_STRING(out)
    cdef int rc, t = 0
    cdef uint64_t sid = 0
    with nogil:
        rc = betanet_htx_frame_open(&k[0], &n[0], counter, _ptr(d), d.shape[0], max_frame, &t, &sid,
                                    o, cap, &pt_len, &consumed)
    check(rc, "htx frame_open")
    return t, sid, bytes(out[:pt_len]), consumed


cdef class Session:
    """An HTX session over libbetanet (one per connection, one thread at a time)."""

    cdef betanet_htx_session_t *s
    cdef bytearray rbuf          # plaintext buffer for session_open (max_frame bytes)
    cdef size_t max_frame
    cdef public int error        # sticky receive error from the core (0 = none)

    def __cinit__(self, int role, k1, k2, handshake_hash, *, uint32_t max_frame=0,
                  uint64_t rekey_bytes=0, uint64_t rekey_frames=0, uint64_t rekey_ms=0,
                  uint64_t now_ms=0):
        cdef const uint8_t[::1] a = _fixed(k1, 32, "k1")
        cdef const uint8_t[::1] b = _fixed(k2, 32, "k2")
        cdef const uint8_t[::1] h = _fixed(handshake_hash, 32, "handshake_hash")
        cdef betanet_htx_config_t cfg
        cfg.max_frame = max_frame
        cfg.rekey_bytes = rekey_bytes
        cfg.rekey_frames = rekey_frames
        cfg.rekey_ms = rekey_ms
        check(betanet_htx_session_new(role, &a[0], &b[0], &h[0], &cfg, now_ms, &self.s),
              "htx session")
        self.max_frame = betanet_htx_session_max_frame(self.s)
        self.rbuf = PyByteArray_FromStringAndSize(NULL, 4 * self.max_frame + 64)
        self.error = 0

    def __dealloc__(self):
        if self.s != NULL:
            betanet_htx_session_free(self.s)
            self.s = NULL

    def close(self) -> None:
        """Wipe and free the keys now (the object is unusable afterwards)."""
        if self.s != NULL:
            betanet_htx_session_free(self.s)
            self.s = NULL

    cdef inline void _live(self) except *:
        if self.s == NULL:
            raise ValueError("htx session is closed")

    @property
    def max_frame(self) -> int:
        return self.max_frame

    @property
    def pending(self) -> int:
        self._live()
        return betanet_htx_session_pending(self.s)

    def stats(self) -> dict:
        cdef betanet_htx_stats_t st
        self._live()
        check(betanet_htx_session_stats(self.s, &st), "htx stats")
        return dict(send_counter=st.send_counter, recv_counter=st.recv_counter,
                    send_bytes=st.send_bytes, recv_bytes=st.recv_bytes,
                    send_epoch=st.send_epoch, recv_epoch=st.recv_epoch,
                    frames_sent=st.frames_sent, frames_received=st.frames_received)

    def seal(self, int type, uint64_t stream_id, payload=b"", uint64_t now_ms=0) -> bytes:
        """Seal one frame (plus a KEY_UPDATE first when the schedule says so)."""
        cdef const uint8_t[::1] p = memoryview(payload).cast("B")
        cdef size_t cap = p.shape[0] + BETANET_HTX_OVERHEAD_BYTES + BETANET_HTX_KEY_UPDATE_BYTES
        cdef size_t n = 0
        cdef int rc
        cdef bytes out = PyBytes_FromStringAndSize(NULL, cap)
        self._live()
        rc = betanet_htx_session_seal(self.s, type, stream_id, _ptr(p), p.shape[0], now_ms,
                                      <uint8_t *>PyBytes_AS_STRING(out), cap, &n)
        check(rc, "htx seal")
        return out[:n]

    def seal_stream(self, uint64_t stream_id, data, bint fin=False, int flags=0,
                    uint64_t now_ms=0) -> bytearray:
        """STREAM frames carrying ``data`` split at max_frame - 1 bytes; ``fin`` on the last.

        Empty data with fin (or flags) gives one frame. Returns the frames' bytes.
        """
        cdef const uint8_t[::1] d = memoryview(data).cast("B")
        cdef size_t total = d.shape[0], chunk = self.max_frame - 1, off = 0, n, w = 0, wrote = 0
        cdef size_t frames = (total + chunk - 1) // chunk if total else 1
        cdef size_t per = BETANET_HTX_OVERHEAD_BYTES + 1 + BETANET_HTX_KEY_UPDATE_BYTES
        cdef size_t cap = total + frames * per
        cdef bytearray out
        cdef uint8_t *o
        cdef const uint8_t *src = _ptr(d)
        cdef uint8_t f
        cdef int rc = 0
        self._live()
        out = PyByteArray_FromStringAndSize(NULL, cap)
        o = <uint8_t *>PyByteArray_AS_STRING(out)
        with nogil:
            while True:
                n = total - off
                if n > chunk:
                    n = chunk
                f = <uint8_t>flags
                if fin and off + n == total:
                    f |= 1
                rc = betanet_htx_session_seal_stream(self.s, stream_id, f, src + off, n, now_ms,
                                                     o + w, cap - w, &wrote)
                if rc < 0:
                    break
                w += wrote
                off += n
                if off >= total:
                    break
        check(rc, "htx seal_stream")
        PyByteArray_Resize(out, w)
        return out

    def receive(self, data) -> tuple:
        """Feed bytes; return (frames, error). Each frame is (type, stream_id, flags, body):
        STREAM and PING give their flags byte apart from the body; other types flags 0 and
        the whole plaintext. Consecutive STREAM data frames of one stream are merged into
        one entry (flags = FIN if the run ended with FIN; a RESET is never merged), which
        keeps per-frame Python work off the data path. ``error`` is 0 or the core's (sticky)
        status after the last good frame; frames before it are authentic."""
        cdef const uint8_t[::1] d = memoryview(data).cast("B")
        cdef const uint8_t *src = _ptr(d)
        cdef size_t total = d.shape[0], off = 0, used = 0
        cdef size_t need = total + 2 * self.max_frame + 64, p = 1, run_start = 0, n
        cdef betanet_htx_frame_t fr
        cdef uint8_t *a
        cdef uint8_t saved, flags
        cdef uint64_t run_sid = 0
        cdef bint in_run = False
        cdef int rc = 0
        cdef bytes body
        cdef list frames = []
        self._live()
        if self.error:
            return frames, self.error
        if <size_t>len(self.rbuf) < need:
            self.rbuf = PyByteArray_FromStringAndSize(NULL, need)
        a = <uint8_t *>PyByteArray_AS_STRING(self.rbuf)
        # Each frame is opened at a + p - 1: its flags byte lands on the byte before p (saved
        # and restored), its data right after the data of the run so far — no extra copy.
        while True:
            saved = a[p - 1]
            with nogil:
                rc = betanet_htx_session_open(self.s, src + off, total - off, &used, &fr,
                                              a + p - 1, self.max_frame)
            off += used
            flags = a[p - 1] if rc == 1 and fr.length else 0
            a[p - 1] = saved            # also undoes libsodium's wipe of `out` on failure
            if rc <= 0:
                break
            if fr.type == BETANET_HTX_STREAM and not (flags & 0x02):
                if not (in_run and fr.stream_id == run_sid):
                    if in_run:
                        frames.append((BETANET_HTX_STREAM, run_sid, 0,
                                       PyBytes_FromStringAndSize(<char *>a + run_start, p - run_start)))
                    in_run = True
                    run_sid = fr.stream_id
                    run_start = p
                p += fr.length - 1
                if flags & 0x01:
                    frames.append((BETANET_HTX_STREAM, run_sid, 1,
                                   PyBytes_FromStringAndSize(<char *>a + run_start, p - run_start)))
                    in_run = False
                continue
            if in_run:
                frames.append((BETANET_HTX_STREAM, run_sid, 0,
                               PyBytes_FromStringAndSize(<char *>a + run_start, p - run_start)))
                in_run = False
            n = fr.length
            if fr.type == BETANET_HTX_STREAM or fr.type == BETANET_HTX_PING:
                frames.append((fr.type, fr.stream_id, flags,
                               PyBytes_FromStringAndSize(<char *>a + p, n - 1)))
            else:
                body = PyBytes_FromStringAndSize(NULL, n)
                if n:
                    (<uint8_t *>PyBytes_AS_STRING(body))[0] = flags
                    memcpy(PyBytes_AS_STRING(body) + 1, a + p, n - 1)
                frames.append((fr.type, fr.stream_id, 0, body))
        if in_run:
            frames.append((BETANET_HTX_STREAM, run_sid, 0,
                           PyBytes_FromStringAndSize(<char *>a + run_start, p - run_start)))
        if rc < 0:
            self.error = rc
            return frames, rc
        return frames, 0
