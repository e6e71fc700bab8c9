# bnt_hkdf.pxd — HKDF-SHA256 (RFC 5869) on libsodium's HMAC-SHA256, the one copy the core
# modules share (htx: key schedule; sphinx: per-hop keys). Inline only (DESIGN.md).

from libc.stdint cimport uint8_t
from libc.string cimport memcpy
from sodium cimport *


# HKDF-Expand for L <= 32 (one block): out = T(1) = HMAC(PRK, info | 0x01), where prk_st is
# an HMAC state already keyed with PRK (so several expansions share one keying).
cdef inline void hkdf_expand1(const crypto_auth_hmacsha256_state *prk_st, const uint8_t *info,
                              size_t info_len, uint8_t *out32) noexcept nogil:
    cdef crypto_auth_hmacsha256_state st
    cdef uint8_t one = 1
    memcpy(&st, prk_st, sizeof(crypto_auth_hmacsha256_state))
    crypto_auth_hmacsha256_update(&st, info, info_len)
    crypto_auth_hmacsha256_update(&st, &one, 1)
    crypto_auth_hmacsha256_final(&st, out32)
    sodium_memzero(&st, sizeof(st))


# HKDF-SHA256(salt, ikm, info) with L = out_len <= 32. An empty salt is HMAC's zero-padded
# key, as RFC 5869 asks. out may alias ikm.
cdef inline void hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, const char *info, size_t info_len, uint8_t *out,
                             size_t out_len) noexcept nogil:
    cdef crypto_auth_hmacsha256_state st
    cdef uint8_t prk[32]
    cdef uint8_t t[32]
    cdef uint8_t empty = 0
    crypto_auth_hmacsha256_init(&st, salt if salt_len else &empty, salt_len)
    crypto_auth_hmacsha256_update(&st, ikm, ikm_len)
    crypto_auth_hmacsha256_final(&st, prk)
    crypto_auth_hmacsha256_init(&st, prk, 32)
    hkdf_expand1(&st, <const uint8_t *>info, info_len, t)
    memcpy(out, t, out_len)
    sodium_memzero(prk, 32)
    sodium_memzero(t, 32)
    sodium_memzero(&st, sizeof(st))
