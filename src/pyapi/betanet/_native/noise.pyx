# betanet._native.noise — the Noise XK handshake of libbetanet (include/betanet/noise.h).
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from cpython.bytes cimport PyBytes_FromStringAndSize
from betanet._native._common cimport *

from betanet_htx cimport *
from betanet_noise cimport *

cdef extern from "sodium.h" nogil:
    void sodium_memzero(void *pnt, size_t length)

cdef extern from "betanet.h" nogil:
    int betanet_noise_xk_new(int role, const uint8_t *static_private,
                             const uint8_t *remote_static_public, const uint8_t *prologue,
                             size_t prologue_len, betanet_noise_xk_t **out)
    int betanet_noise_xk_new_with_ephemeral(int role, const uint8_t *static_private,
                                            const uint8_t *remote_static_public,
                                            const uint8_t *prologue, size_t prologue_len,
                                            const uint8_t *ephemeral_private,
                                            betanet_noise_xk_t **out)
    void betanet_noise_xk_free(betanet_noise_xk_t *hs)
    int betanet_noise_xk_action(const betanet_noise_xk_t *hs)
    int betanet_noise_xk_write_message(betanet_noise_xk_t *hs, const uint8_t *payload,
                                       size_t payload_len, uint8_t *out, size_t cap,
                                       size_t *out_len)
    int betanet_noise_xk_read_message(betanet_noise_xk_t *hs, const uint8_t *msg, size_t length,
                                      uint8_t *payload, size_t cap, size_t *payload_len)
    int betanet_noise_xk_write_frame(betanet_noise_xk_t *hs, uint8_t *out, size_t cap,
                                     size_t *out_len)
    int betanet_noise_xk_read_frame(betanet_noise_xk_t *hs, const uint8_t *inp, size_t length,
                                    size_t *consumed)
    size_t betanet_noise_xk_pending(const betanet_noise_xk_t *hs)
    int betanet_noise_xk_split(betanet_noise_xk_t *hs, uint8_t *k1, uint8_t *k2,
                               uint8_t *handshake_hash)
    int betanet_noise_xk_handshake_hash(const betanet_noise_xk_t *hs, uint8_t *out)
    int betanet_noise_xk_remote_static(const betanet_noise_xk_t *hs, uint8_t *out)

KEY_BYTES = BETANET_NOISE_KEY_BYTES
HASH_BYTES = BETANET_NOISE_HASH_BYTES
TAG_BYTES = BETANET_NOISE_TAG_BYTES
MAX_MESSAGE_BYTES = BETANET_NOISE_MAX_MESSAGE_BYTES
MAX_FRAME_BYTES = BETANET_NOISE_XK_MAX_FRAME_BYTES
HTX_PROLOGUE = <bytes>BETANET_NOISE_HTX_PROLOGUE
HTX_MAX_MESSAGE_BYTES = BETANET_NOISE_HTX_MAX_MESSAGE_BYTES
INITIATOR = BETANET_NOISE_INITIATOR
RESPONDER = BETANET_NOISE_RESPONDER
ACTION_WRITE = BETANET_NOISE_ACTION_WRITE
ACTION_READ = BETANET_NOISE_ACTION_READ
ACTION_SPLIT = BETANET_NOISE_ACTION_SPLIT
ACTION_DONE = BETANET_NOISE_ACTION_DONE


cdef const uint8_t[::1] _view(object buf):
    return memoryview(buf).cast("B")


cdef const uint8_t[::1] _key(object buf, str what):
    cdef const uint8_t[::1] v = _view(buf)
    if v.shape[0] != 32:
        raise ValueError(f"{what} must be 32 bytes, got {v.shape[0]}")
    return v


cdef inline const uint8_t *_ptr(const uint8_t[::1] v) noexcept nogil:
    return &v[0] if v.shape[0] else <const uint8_t *>b""


cdef class Handshake:
    """One side of a Noise_XK_25519_ChaChaPoly_SHA256 handshake in libbetanet.

    ``initiator=True`` needs ``remote_static_public`` (the responder's key). The prologue
    defaults to HTX's. ``ephemeral_private`` is for test vectors only: a fixed ephemeral
    key destroys the handshake's secrecy.
    """

    cdef betanet_noise_xk_t *hs
    cdef readonly bint initiator
    cdef uint8_t keys[96]        # k1 | k2 | hash for the moment htx_session hands them over

    def __cinit__(self, bint initiator, static_private_key, remote_static_public=None,
                  prologue=HTX_PROLOGUE, *, ephemeral_private=None):
        cdef const uint8_t[::1] s = _key(static_private_key, "static_private_key")
        cdef const uint8_t[::1] rs
        cdef const uint8_t[::1] p = _view(prologue)
        cdef const uint8_t[::1] e
        cdef const uint8_t *rsp = NULL
        cdef int role = BETANET_NOISE_INITIATOR if initiator else BETANET_NOISE_RESPONDER
        cdef int rc
        self.initiator = initiator
        if remote_static_public is not None:
            rs = _key(remote_static_public, "remote_static_public")
            rsp = &rs[0]
        if ephemeral_private is None:
            rc = betanet_noise_xk_new(role, &s[0], rsp, _ptr(p), p.shape[0], &self.hs)
        else:
            e = _key(ephemeral_private, "ephemeral_private")
            rc = betanet_noise_xk_new_with_ephemeral(role, &s[0], rsp, _ptr(p), p.shape[0], &e[0],
                                                     &self.hs)
        check(rc, "noise xk")

    def __dealloc__(self):
        sodium_memzero(self.keys, 96)
        betanet_noise_xk_free(self.hs)
        self.hs = NULL

    cdef betanet_noise_xk_t *_get(self) except NULL:
        if self.hs == NULL:
            from betanet.errors import StateError
            raise StateError("noise handshake is closed")
        return self.hs

    def close(self) -> None:
        """Wipe and free the handshake now."""
        betanet_noise_xk_free(self.hs)
        self.hs = NULL

    @property
    def action(self) -> int:
        """ACTION_WRITE, ACTION_READ, ACTION_SPLIT, ACTION_DONE, or the negative sticky error."""
        return betanet_noise_xk_action(self._get())

    @property
    def pending(self) -> int:
        return betanet_noise_xk_pending(self._get())

    def write_message(self, payload=b"") -> bytes:
        """This side's next Noise message carrying ``payload``."""
        cdef betanet_noise_xk_t *hs = self._get()
        cdef const uint8_t[::1] p = _view(payload)
        cdef size_t cap = p.shape[0] + 64, n = 0
        cdef bytes out = PyBytes_FromStringAndSize(NULL, cap)
        cdef uint8_t *o = <uint8_t *><char *>out
        cdef int rc
        with nogil:
            rc = betanet_noise_xk_write_message(hs, _ptr(p), p.shape[0], o, cap, &n)
        check(rc, "noise xk write")
        return out[:n]

    def read_message(self, message) -> bytes:
        """Read the peer's next Noise message; returns its payload."""
        cdef betanet_noise_xk_t *hs = self._get()
        cdef const uint8_t[::1] m = _view(message)
        cdef size_t cap = m.shape[0], n = 0
        cdef bytearray out = bytearray(cap)
        cdef uint8_t *o = <uint8_t *><char *>out if cap else NULL
        cdef int rc
        with nogil:
            rc = betanet_noise_xk_read_message(hs, _ptr(m), m.shape[0], o, cap, &n)
        check(rc, "noise xk read")
        return bytes(out[:n])

    def write_frame(self) -> bytes:
        """This side's next message in HTX's wire form (uint16 length | message)."""
        cdef betanet_noise_xk_t *hs = self._get()
        cdef uint8_t out[BETANET_NOISE_XK_MAX_FRAME_BYTES]
        cdef size_t n = 0
        cdef int rc
        with nogil:
            rc = betanet_noise_xk_write_frame(hs, out, sizeof(out), &n)
        check(rc, "noise xk write")
        return PyBytes_FromStringAndSize(<char *>out, n)

    def read_frame(self, data) -> tuple:
        """Feed HTX wire bytes: (True, consumed) when a whole message was read, else
        (False, len(data))."""
        cdef betanet_noise_xk_t *hs = self._get()
        cdef const uint8_t[::1] d = _view(data)
        cdef size_t used = 0
        cdef int rc
        with nogil:
            rc = betanet_noise_xk_read_frame(hs, _ptr(d), d.shape[0], &used)
        check(rc, "noise xk read")
        return rc == 1, used

    @property
    def handshake_hash(self) -> bytes:
        cdef uint8_t h[32]
        check(betanet_noise_xk_handshake_hash(self._get(), h), "noise xk handshake_hash")
        return PyBytes_FromStringAndSize(<char *>h, 32)

    @property
    def remote_static(self) -> bytes:
        cdef uint8_t k[32]
        check(betanet_noise_xk_remote_static(self._get(), k), "noise xk remote_static")
        return PyBytes_FromStringAndSize(<char *>k, 32)

    def split(self) -> tuple:
        """(k1, k2, handshake_hash) as bytes — for tests and vectors: Python cannot wipe
        bytes, so HTX uses htx_session() instead."""
        cdef uint8_t k[96]
        rc = betanet_noise_xk_split(self._get(), k, k + 32, k + 64)
        check(rc, "noise xk split")
        out = (PyBytes_FromStringAndSize(<char *>k, 32), PyBytes_FromStringAndSize(<char *>(k + 32), 32),
               PyBytes_FromStringAndSize(<char *>(k + 64), 32))
        sodium_memzero(k, 96)
        return out

    def htx_session(self, *, uint32_t max_frame=0, uint64_t rekey_bytes=0,
                    uint64_t rekey_frames=0, uint64_t rekey_ms=0, uint64_t now_ms=0):
        """Split into a new betanet._native.htx.Session for this side's role. The keys go
        from the core into the session through views of this object's C memory (never a
        Python bytes object) and are wiped right after."""
        from betanet._native.htx import Session
        cdef betanet_noise_xk_t *hs = self._get()
        cdef int role = BETANET_HTX_INITIATOR if self.initiator else BETANET_HTX_RESPONDER
        check(betanet_noise_xk_split(hs, self.keys, self.keys + 32, self.keys + 64), "noise xk split")
        try:
            return Session(role, <uint8_t[:32]>self.keys, <uint8_t[:32]>(self.keys + 32),
                           <uint8_t[:32]>(self.keys + 64), max_frame=max_frame,
                           rekey_bytes=rekey_bytes, rekey_frames=rekey_frames,
                           rekey_ms=rekey_ms, now_ms=now_ms)
        finally:
            sodium_memzero(self.keys, 96)
