# betanet._native.secagg — the SecAgg section of betanet.h (PRG masks, pairwise seeds,
# quantisation). Vectors are NumPy arrays used in place (no copies); the GIL is released
# around every pass over them.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from betanet._native._common cimport *

import numpy as np

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_SECAGG_SEED_BYTES
        BETANET_SECAGG_KEY_BYTES
        BETANET_SECAGG_PURPOSE_PAIRWISE
        BETANET_SECAGG_PURPOSE_SELF
        BETANET_SECAGG_PURPOSE_ROUNDING
        BETANET_SECAGG_PURPOSE_SELECT
    uint64_t BETANET_SECAGG_MAX_WORDS
    int betanet_secagg_derive_key(uint8_t *key, size_t key_len, const uint8_t *seed, size_t seed_len,
                                  unsigned int purpose, uint64_t round_id)
    int betanet_secagg_pair_seed(uint8_t *seed, size_t seed_len, const uint8_t *sk, size_t sk_len,
                                 const uint8_t *peer_pk, size_t peer_pk_len)
    int betanet_secagg_mask_expand(uint32_t *out, size_t n, const uint8_t *seed, size_t seed_len,
                                   unsigned int purpose, uint64_t round_id, uint64_t offset)
    int betanet_secagg_mask_add(uint32_t *vec, size_t n, const uint8_t *seed, size_t seed_len,
                                unsigned int purpose, uint64_t round_id, uint64_t offset, int sign)
    int betanet_secagg_mask_add_many(uint32_t *vec, size_t n, const uint8_t *seeds, size_t seeds_len,
                                     const int *signs, size_t count, unsigned int purpose,
                                     uint64_t round_id, uint64_t offset)
    int betanet_secagg_vec_add(uint32_t *acc, const uint32_t *x, size_t n, int sign)
    int betanet_secagg_quantize_f32(uint32_t *out, const float *inp, size_t n, double clip,
                                    uint32_t levels, const uint8_t *seed, size_t seed_len,
                                    uint64_t round_id, uint64_t offset)
    int betanet_secagg_quantize_f64(uint32_t *out, const double *inp, size_t n, double clip,
                                    uint32_t levels, const uint8_t *seed, size_t seed_len,
                                    uint64_t round_id, uint64_t offset)
    int betanet_secagg_dequantize_f32(float *out, const uint32_t *sum, size_t n, double clip,
                                      uint32_t levels, uint32_t count)
    int betanet_secagg_dequantize_f64(double *out, const uint32_t *sum, size_t n, double clip,
                                      uint32_t levels, uint32_t count)

SEED_BYTES = BETANET_SECAGG_SEED_BYTES
KEY_BYTES = BETANET_SECAGG_KEY_BYTES
PURPOSE_PAIRWISE = BETANET_SECAGG_PURPOSE_PAIRWISE
PURPOSE_SELF = BETANET_SECAGG_PURPOSE_SELF
PURPOSE_ROUNDING = BETANET_SECAGG_PURPOSE_ROUNDING
PURPOSE_SELECT = BETANET_SECAGG_PURPOSE_SELECT
MAX_WORDS = BETANET_SECAGG_MAX_WORDS


def _invalid(msg):
    from betanet.errors import InvalidArgumentError
    return InvalidArgumentError(msg, BETANET_E_INVALID)


cdef const uint8_t[::1] _bytes32(obj, str what):
    cdef const uint8_t[::1] v
    try:
        v = obj
    except (TypeError, ValueError, BufferError) as exc:
        raise _invalid(f"{what} must be a bytes-like object: {exc}") from None
    if v.shape[0] != 32:
        raise _invalid(f"{what} must be 32 bytes, got {v.shape[0]}")
    return v


def _array(obj, dtype, str what, bint writable):
    """obj as a 1-D C-contiguous array of exactly `dtype`, used in place."""
    if not isinstance(obj, np.ndarray) or obj.dtype != dtype or obj.ndim != 1 \
            or not obj.flags.c_contiguous:
        raise _invalid(f"{what} must be a 1-D C-contiguous numpy array of {np.dtype(dtype).name}")
    if writable and not obj.flags.writeable:
        raise _invalid(f"{what} must be writable")
    return obj


cdef inline uint64_t _u64(x, str what) except? 0:
    if x < 0 or x > 0xFFFFFFFFFFFFFFFF:
        raise _invalid(f"{what} must fit in 64 bits unsigned")
    return x


def derive_key(seed, int purpose, round_id) -> bytes:
    """The ChaCha20 key of the (seed, purpose, round_id) stream (docs/fl.md)."""
    cdef const uint8_t[::1] s = _bytes32(seed, "seed")
    cdef uint64_t r = _u64(round_id, "round_id")
    cdef uint8_t key[32]
    if purpose < 1 or purpose > 255:
        raise _invalid("purpose must be 1..255")
    check(betanet_secagg_derive_key(key, 32, &s[0], 32, purpose, r), "betanet_secagg_derive_key")
    return key[:32]


def pair_seed(secret_key, peer_public_key) -> bytes:
    """The pairwise seed of our X25519 secret key and a peer's public key (symmetric)."""
    cdef const uint8_t[::1] sk = _bytes32(secret_key, "secret key")
    cdef const uint8_t[::1] pk = _bytes32(peer_public_key, "peer public key")
    cdef uint8_t out[32]
    check(betanet_secagg_pair_seed(out, 32, &sk[0], 32, &pk[0], 32), "betanet_secagg_pair_seed")
    return out[:32]


def mask_expand(Py_ssize_t n, seed, int purpose, round_id, offset=0, out=None):
    """Words offset..offset+n-1 of the PRG stream as a uint32 array (into `out` if given)."""
    cdef const uint8_t[::1] s = _bytes32(seed, "seed")
    cdef uint64_t r = _u64(round_id, "round_id"), off = _u64(offset, "offset")
    cdef uint32_t[::1] v
    cdef int rc
    if n < 0:
        raise _invalid("n must be >= 0")
    if purpose < 1 or purpose > 255:
        raise _invalid("purpose must be 1..255")
    if out is None:
        out = np.empty(n, dtype=np.uint32)
    else:
        _array(out, np.uint32, "out", True)
        if out.shape[0] != n:
            raise _invalid(f"out has {out.shape[0]} words, expected {n}")
    v = out
    with nogil:
        rc = betanet_secagg_mask_expand(&v[0] if n else NULL, n, &s[0], 32, purpose, r, off)
    check(rc, "betanet_secagg_mask_expand")
    return out


def mask_add(vec, seed, int purpose, round_id, offset=0, int sign=1) -> None:
    """vec += sign * PRG(seed, purpose, round_id)[offset:offset+len(vec)] mod 2^32, in place."""
    cdef const uint8_t[::1] s = _bytes32(seed, "seed")
    cdef uint64_t r = _u64(round_id, "round_id"), off = _u64(offset, "offset")
    cdef uint32_t[::1] v = _array(vec, np.uint32, "vec", True)
    cdef size_t n = v.shape[0]
    cdef int rc
    if purpose < 1 or purpose > 255:
        raise _invalid("purpose must be 1..255")
    with nogil:
        rc = betanet_secagg_mask_add(&v[0] if n else NULL, n, &s[0], 32, purpose, r, off, sign)
    check(rc, "betanet_secagg_mask_add")


def mask_add_many(vec, seeds, signs, int purpose, round_id, offset=0) -> None:
    """vec += sum_j signs[j] * PRG(seeds[j], purpose, round_id)[offset:...] mod 2^32, in one
    pass over vec (seeds: a sequence of 32-byte seeds, signs: +1/-1 each)."""
    cdef uint64_t r = _u64(round_id, "round_id"), off = _u64(offset, "offset")
    cdef uint32_t[::1] v = _array(vec, np.uint32, "vec", True)
    cdef size_t n = v.shape[0]
    seeds = list(seeds)
    for s in seeds:
        _bytes32(s, "seed")
    if len(signs) != len(seeds):
        raise _invalid("one sign per seed")
    joined = b"".join(bytes(s) for s in seeds)
    cdef const uint8_t[::1] sv = joined
    cdef int[::1] sg = np.asarray(signs, dtype=np.intc).copy()
    cdef size_t count = len(seeds)
    cdef const uint8_t *sp = &sv[0] if count else NULL
    cdef const int *gp = &sg[0] if count else NULL
    cdef uint32_t *vp = &v[0] if n else NULL
    cdef int rc
    if purpose < 1 or purpose > 255:
        raise _invalid("purpose must be 1..255")
    with nogil:
        rc = betanet_secagg_mask_add_many(vp, n, sp, count * 32, gp, count, purpose, r, off)
    check(rc, "betanet_secagg_mask_add_many")


def vec_add(acc, x, int sign=1) -> None:
    """acc += sign * x mod 2^32, in place (both uint32 arrays of one length)."""
    cdef uint32_t[::1] a = _array(acc, np.uint32, "acc", True)
    cdef const uint32_t[::1] b = _array(x, np.uint32, "x", False)
    cdef size_t n = a.shape[0]
    cdef int rc
    if b.shape[0] != a.shape[0]:
        raise _invalid(f"length mismatch: {a.shape[0]} != {b.shape[0]}")
    with nogil:
        rc = betanet_secagg_vec_add(&a[0] if n else NULL, &b[0] if n else NULL, n, sign)
    check(rc, "betanet_secagg_vec_add")


def quantize(x, double clip, levels, seed, round_id, offset=0, out=None):
    """Clip to [-clip, clip] and round stochastically onto 0..levels (uint32 array)."""
    cdef const uint8_t[::1] s = _bytes32(seed, "seed")
    cdef uint64_t r = _u64(round_id, "round_id"), off = _u64(offset, "offset")
    cdef uint32_t lv
    cdef const float[::1] xf
    cdef const double[::1] xd
    cdef uint32_t[::1] o
    cdef size_t n
    cdef int rc
    if not 1 <= levels <= 0xFFFFFFFF:
        raise _invalid("levels must be 1..2^32-1")
    lv = levels
    if isinstance(x, np.ndarray) and x.dtype == np.float32:
        xf = _array(x, np.float32, "x", False)
        n = xf.shape[0]
    else:
        xd = _array(x, np.float64, "x", False)
        n = xd.shape[0]
    if out is None:
        out = np.empty(n, dtype=np.uint32)
    else:
        _array(out, np.uint32, "out", True)
        if <size_t>out.shape[0] != n:
            raise _invalid(f"out has {out.shape[0]} words, expected {n}")
    o = out
    if x.dtype == np.float32:
        with nogil:
            rc = betanet_secagg_quantize_f32(&o[0] if n else NULL, &xf[0] if n else NULL, n, clip,
                                             lv, &s[0], 32, r, off)
    else:
        with nogil:
            rc = betanet_secagg_quantize_f64(&o[0] if n else NULL, &xd[0] if n else NULL, n, clip,
                                             lv, &s[0], 32, r, off)
    check(rc, "betanet_secagg_quantize")
    return out


def dequantize(total, double clip, levels, count, dtype=np.float64):
    """Real-valued sum of `count` quantised vectors from their modular sum `total`."""
    cdef const uint32_t[::1] t = _array(total, np.uint32, "total", False)
    cdef size_t n = t.shape[0]
    cdef uint32_t lv, cnt
    cdef float[::1] of
    cdef double[::1] od
    cdef int rc
    if not 1 <= levels <= 0xFFFFFFFF or not 1 <= count <= 0xFFFFFFFF:
        raise _invalid("levels and count must be 1..2^32-1")
    lv = levels
    cnt = count
    dt = np.dtype(dtype)
    out = np.empty(n, dtype=dt)
    if dt == np.float32:
        of = out
        with nogil:
            rc = betanet_secagg_dequantize_f32(&of[0] if n else NULL, &t[0] if n else NULL, n,
                                               clip, lv, cnt)
    elif dt == np.float64:
        od = out
        with nogil:
            rc = betanet_secagg_dequantize_f64(&od[0] if n else NULL, &t[0] if n else NULL, n,
                                               clip, lv, cnt)
    else:
        raise _invalid("dtype must be float32 or float64")
    check(rc, "betanet_secagg_dequantize")
    return out
