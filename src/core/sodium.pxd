# sodium.pxd — the one Cython declaration of the libsodium API the core uses (cimported by
# every core module that needs it; add a function here, never in a module).
# Declarations follow sodium.h (libsodium >= 1.0.18).

from libc.stdint cimport uint32_t

cdef extern from "sodium.h" nogil:
    # core
    int sodium_init()
    void sodium_memzero(void *pnt, size_t length)
    int sodium_memcmp(const void *b1, const void *b2, size_t length)
    int sodium_is_zero(const unsigned char *n, const size_t nlen)
    void randombytes_buf(void *buf, size_t size)
    int crypto_verify_16(const unsigned char *x, const unsigned char *y)

    # HMAC-SHA256 (HKDF, bnt_hkdf.pxd)
    ctypedef struct crypto_auth_hmacsha256_state:
        pass
    int crypto_auth_hmacsha256_init(crypto_auth_hmacsha256_state *st, const unsigned char *key,
                                    size_t keylen)
    int crypto_auth_hmacsha256_update(crypto_auth_hmacsha256_state *st, const unsigned char *m,
                                      unsigned long long mlen)
    int crypto_auth_hmacsha256_final(crypto_auth_hmacsha256_state *st, unsigned char *out)

    # SHA-256 (incremental), Ed25519 detached signatures, SipHash-2-4 (128-bit)
    ctypedef struct crypto_hash_sha256_state:
        pass
    int crypto_hash_sha256_init(crypto_hash_sha256_state *state)
    int crypto_hash_sha256_update(crypto_hash_sha256_state *state, const unsigned char *inp,
                                  unsigned long long inlen)
    int crypto_hash_sha256_final(crypto_hash_sha256_state *state, unsigned char *out)
    int crypto_sign_detached(unsigned char *sig, unsigned long long *siglen_p,
                             const unsigned char *m, unsigned long long mlen,
                             const unsigned char *sk)
    int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                    unsigned long long mlen, const unsigned char *pk)
    int crypto_shorthash_siphashx24(unsigned char *out, const unsigned char *inp,
                                    unsigned long long inlen, const unsigned char *k)

    # SHA-512, BLAKE2b
    ctypedef struct crypto_hash_sha512_state:
        pass
    int crypto_hash_sha512(unsigned char *out, const unsigned char *inp, unsigned long long inlen)
    int crypto_hash_sha512_init(crypto_hash_sha512_state *state)
    int crypto_hash_sha512_update(crypto_hash_sha512_state *state, const unsigned char *inp,
                                  unsigned long long inlen)
    int crypto_hash_sha512_final(crypto_hash_sha512_state *state, unsigned char *out)
    int crypto_generichash(unsigned char *out, size_t outlen, const unsigned char *inp,
                           unsigned long long inlen, const unsigned char *key, size_t keylen)

    # ChaCha20, Poly1305, ChaCha20-Poly1305 IETF
    int crypto_aead_chacha20poly1305_ietf_encrypt(
        unsigned char *c, unsigned long long *clen, const unsigned char *m,
        unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
        const unsigned char *nsec, const unsigned char *npub, const unsigned char *k)
    int crypto_aead_chacha20poly1305_ietf_decrypt(
        unsigned char *m, unsigned long long *mlen, unsigned char *nsec,
        const unsigned char *c, unsigned long long clen, const unsigned char *ad,
        unsigned long long adlen, const unsigned char *npub, const unsigned char *k)
    ctypedef struct crypto_onetimeauth_poly1305_state:
        pass
    int crypto_onetimeauth_poly1305_init(crypto_onetimeauth_poly1305_state *st,
                                         const unsigned char *key)
    int crypto_onetimeauth_poly1305_update(crypto_onetimeauth_poly1305_state *st,
                                           const unsigned char *m, unsigned long long mlen)
    int crypto_onetimeauth_poly1305_final(crypto_onetimeauth_poly1305_state *st,
                                          unsigned char *out)
    int crypto_stream_chacha20(unsigned char *c, unsigned long long clen, const unsigned char *n,
                               const unsigned char *k)
    int crypto_stream_chacha20_xor(unsigned char *c, const unsigned char *m, unsigned long long mlen,
                                   const unsigned char *n, const unsigned char *k)
    int crypto_stream_chacha20_ietf(unsigned char *c, unsigned long long clen,
                                    const unsigned char *n, const unsigned char *k)
    int crypto_stream_chacha20_ietf_xor_ic(unsigned char *c, const unsigned char *m,
                                           unsigned long long mlen, const unsigned char *n,
                                           uint32_t ic, const unsigned char *k)

    # X25519, edwards25519
    int crypto_scalarmult(unsigned char *q, const unsigned char *n, const unsigned char *p)
    int crypto_scalarmult_base(unsigned char *q, const unsigned char *n)
    int crypto_scalarmult_ed25519_noclamp(unsigned char *q, const unsigned char *n,
                                          const unsigned char *p)
    int crypto_scalarmult_ed25519_base_noclamp(unsigned char *q, const unsigned char *n)
    int crypto_core_ed25519_add(unsigned char *r, const unsigned char *p, const unsigned char *q)
    int crypto_core_ed25519_sub(unsigned char *r, const unsigned char *p, const unsigned char *q)
    void crypto_core_ed25519_scalar_reduce(unsigned char *r, const unsigned char *s)
    void crypto_core_ed25519_scalar_mul(unsigned char *z, const unsigned char *x,
                                        const unsigned char *y)
    void crypto_core_ed25519_scalar_add(unsigned char *z, const unsigned char *x,
                                        const unsigned char *y)
    void crypto_core_ed25519_scalar_sub(unsigned char *z, const unsigned char *x,
                                        const unsigned char *y)
    void crypto_core_ed25519_scalar_negate(unsigned char *neg, const unsigned char *s)
