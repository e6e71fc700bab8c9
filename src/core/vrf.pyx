# vrf.pyx — ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03) on libsodium's
# edwards25519 point and scalar functions (include/betanet/vrf.h, docs/vrf.md).
#
# libsodium's scalar multiplication refuses points outside the prime-order subgroup, but
# RFC 9381 works in the full group: hash-to-curve candidates, a proof's Gamma and a public
# key may all carry a small-order (torsion) component. So:
#   - cofactor multiplication (x8) is three doublings with crypto_core_ed25519_add, which
#     accepts any curve point;
#   - n*P for a point with torsion splits P = P0 + T, P0 = (1/8 mod L) * (8P) in the
#     subgroup and T = P - P0 of order dividing 8, and returns n*P0 + (n mod 8)*T.
# Honest proofs only meet subgroup points, so the split runs only for crafted inputs.
# Point decoding is RFC 8032 section 5.1.3 to the letter: non-canonical y (y >= p) and
# "negative zero" x are rejected before libsodium decodes the point.

from libc.stdint cimport uint8_t
from libc.string cimport memcpy, memset, memcmp
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free_secret

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_VRF_SEED_BYTES, BETANET_VRF_PUBLIC_KEY_BYTES, BETANET_VRF_PROOF_BYTES
        BETANET_VRF_OUTPUT_BYTES

# True C constants and the key struct (module-level Python code never runs in the library).
cdef extern from *:
    """
    struct betanet_vrf_key {
        unsigned char x[32];       /* secret scalar, reduced mod L */
        unsigned char prefix[32];  /* nonce key: SHA-512(seed)[32..63] (RFC 9381 5.4.2.2) */
        unsigned char pk[32];      /* public key Y = x*B, canonical encoding */
    };
    /* identity point (0, 1) */
    static const unsigned char bnt_vrf_identity[32] = {1};
    /* 8^-1 mod L, little-endian */
    static const unsigned char bnt_vrf_inv8[32] = {
        0x79,0x2f,0xdc,0xe2,0x29,0xe5,0x06,0x61,0xd0,0xda,0x1c,0x7d,0xb3,0x9d,0xd3,0x07,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0x06};
    /* L = 2^252 + 27742317777372353535851937790883648493, little-endian */
    static const unsigned char bnt_vrf_order[32] = {
        0xed,0xd3,0xf5,0x5c,0x1a,0x63,0x12,0x58,0xd6,0x9c,0xf7,0xa2,0xde,0xf9,0xde,0x14,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0x10};
    """
    ctypedef struct betanet_vrf_key_t:
        unsigned char x[32]
        unsigned char prefix[32]
        unsigned char pk[32]
    const unsigned char *bnt_vrf_identity
    const unsigned char *bnt_vrf_inv8
    const unsigned char *bnt_vrf_order

cdef enum:
    PT = 32          # ptLen = fLen = qLen
    CLEN = 16        # cLen
    PROOF = 80
    OUTPUT = 64
    SUITE = 0x03     # suite_string of ECVRF-EDWARDS25519-SHA512-TAI


# ---- points -------------------------------------------------------------------------

cdef inline bint y_is(const uint8_t *s, uint8_t low, uint8_t mid, uint8_t top) noexcept nogil:
    # Does the y coordinate (sign bit masked) read low, mid x 30, top?
    cdef int i
    if s[0] != low or (s[31] & 0x7f) != top:
        return False
    for i in range(1, 31):
        if s[i] != mid:
            return False
    return True


cdef bint enc_canonical(const uint8_t *s) noexcept nogil:
    """The RFC 8032 5.1.3 checks libsodium leaves out: y < p, and no x = 0 with sign 1.
    Whether y has a square root (is on the curve) is checked by the first
    crypto_core_ed25519_add that decodes the point (pt_mul8)."""
    cdef int i
    # y >= p = 2^255 - 19 means bytes ed..ff ff..ff 7f or above: low byte >= 0xed, rest all ones.
    if (s[31] & 0x7f) == 0x7f and s[0] >= 0xed:
        for i in range(1, 31):
            if s[i] != 0xff:
                break
        else:
            return False
    # x = 0 only for y = 1 and y = p - 1; there the sign bit must be 0.
    if (s[31] & 0x80) and (y_is(s, 1, 0, 0) or y_is(s, 0xec, 0xff, 0x7f)):
        return False
    return True


cdef inline bint pt_is_identity(const uint8_t *p) noexcept nogil:
    return memcmp(p, bnt_vrf_identity, 32) == 0


cdef int pt_mul8(uint8_t *out, const uint8_t *p) noexcept nogil:
    # cofactor * P by three doublings; valid for any curve point. Fails (-1) when p does
    # not decode, so with enc_canonical it doubles as the decoding check.
    if crypto_core_ed25519_add(out, p, p) != 0:
        return -1
    if crypto_core_ed25519_add(out, out, out) != 0:
        return -1
    return crypto_core_ed25519_add(out, out, out)


cdef int pt_mul(uint8_t *out, const uint8_t *n, const uint8_t *p) noexcept nogil:
    """out = n*P for a decoded point P anywhere on the curve and n < 2^255. Variable time
    in P's torsion (public inputs only)."""
    cdef uint8_t q[32]
    cdef uint8_t p0[32]
    cdef uint8_t t[32]
    cdef uint8_t nt[32]
    cdef int i
    # libsodium's ladder succeeds for subgroup points unless the result is the identity;
    # every other case (torsion, small order, n = 0 mod L) takes the split below.
    if crypto_scalarmult_ed25519_noclamp(out, n, p) == 0:
        return 0
    if pt_mul8(q, p) != 0:
        return -1
    if pt_is_identity(q):
        memcpy(p0, bnt_vrf_identity, 32)           # P has small order: P = T
    elif crypto_scalarmult_ed25519_noclamp(p0, bnt_vrf_inv8, q) != 0:
        return -1
    if crypto_core_ed25519_sub(t, p, p0) != 0:
        return -1
    if pt_is_identity(p0) or crypto_scalarmult_ed25519_noclamp(out, n, p0) != 0:
        memcpy(out, bnt_vrf_identity, 32)
    memcpy(nt, bnt_vrf_identity, 32)
    for i in range(n[0] & 7):                      # 8T = 0, so n*T = (n mod 8)*T
        if crypto_core_ed25519_add(nt, nt, t) != 0:
            return -1
    return crypto_core_ed25519_add(out, out, nt)


cdef bint scalar_canonical(const uint8_t *s) noexcept nogil:
    # s < L, compared from the most significant byte (public data: variable time is fine).
    cdef int i
    for i in range(31, -1, -1):
        if s[i] < bnt_vrf_order[i]:
            return True
        if s[i] > bnt_vrf_order[i]:
            return False
    return False


# ---- RFC 9381 building blocks ---------------------------------------------------------

cdef int encode_to_curve(uint8_t *h, const uint8_t *pk, const uint8_t *alpha,
                         size_t alpha_len) noexcept nogil:
    """5.4.1.1 try-and-increment with encode_to_curve_salt = PK_string."""
    cdef crypto_hash_sha512_state base, st
    cdef uint8_t front[2]
    cdef uint8_t tail[2]
    cdef uint8_t digest[64]
    cdef int ctr
    front[0] = SUITE
    front[1] = 0x01
    crypto_hash_sha512_init(&base)
    crypto_hash_sha512_update(&base, front, 2)
    crypto_hash_sha512_update(&base, pk, 32)
    if alpha_len:
        crypto_hash_sha512_update(&base, alpha, alpha_len)
    for ctr in range(256):
        memcpy(&st, &base, sizeof(crypto_hash_sha512_state))
        tail[0] = <uint8_t>ctr
        tail[1] = 0x00
        crypto_hash_sha512_update(&st, tail, 2)
        crypto_hash_sha512_final(&st, digest)
        if enc_canonical(digest) and pt_mul8(h, digest) == 0:
            return 0
    return -1                                      # probability 2^-256


cdef void challenge(uint8_t *c, const uint8_t *y, const uint8_t *h, const uint8_t *gamma,
                    const uint8_t *u, const uint8_t *v) noexcept nogil:
    """5.4.3: c = first cLen bytes of SHA-512(suite || 0x02 || Y || H || Gamma || U || V || 0x00),
    written as a 32-byte little-endian scalar."""
    cdef crypto_hash_sha512_state st
    cdef uint8_t b[2]
    cdef uint8_t digest[64]
    b[0] = SUITE
    b[1] = 0x02
    crypto_hash_sha512_init(&st)
    crypto_hash_sha512_update(&st, b, 2)
    crypto_hash_sha512_update(&st, y, 32)
    crypto_hash_sha512_update(&st, h, 32)
    crypto_hash_sha512_update(&st, gamma, 32)
    crypto_hash_sha512_update(&st, u, 32)
    crypto_hash_sha512_update(&st, v, 32)
    b[0] = 0x00
    crypto_hash_sha512_update(&st, b, 1)
    crypto_hash_sha512_final(&st, digest)
    memset(c, 0, 32)
    memcpy(c, digest, CLEN)


cdef void hash_gamma8(uint8_t *out, const uint8_t *gamma8) noexcept nogil:
    """5.2: beta = SHA-512(suite || 0x03 || point_to_string(8 * Gamma) || 0x00)."""
    cdef uint8_t buf[35]
    buf[0] = SUITE
    buf[1] = 0x03
    memcpy(&buf[2], gamma8, 32)
    buf[34] = 0x00
    crypto_hash_sha512(out, buf, 35)


cdef int decode_proof(const uint8_t *proof, size_t proof_len, uint8_t *gamma8) noexcept nogil:
    """5.4.4: Gamma must decode (checked while computing 8*Gamma), s must be < L."""
    if proof_len != PROOF:
        return BETANET_E_MALFORMED
    if not enc_canonical(proof) or not scalar_canonical(proof + PT + CLEN):
        return BETANET_E_MALFORMED
    if pt_mul8(gamma8, proof) != 0:
        return BETANET_E_MALFORMED
    return BETANET_OK


# ---- keys -------------------------------------------------------------------------------

# ---- sizes (function twins of the BETANET_VRF_*_BYTES macros) ---------------------------

cdef public size_t betanet_vrf_seed_bytes() noexcept nogil:
    return BETANET_VRF_SEED_BYTES

cdef public size_t betanet_vrf_public_key_bytes() noexcept nogil:
    return BETANET_VRF_PUBLIC_KEY_BYTES

cdef public size_t betanet_vrf_proof_bytes() noexcept nogil:
    return BETANET_VRF_PROOF_BYTES

cdef public size_t betanet_vrf_output_bytes() noexcept nogil:
    return BETANET_VRF_OUTPUT_BYTES


cdef public int betanet_vrf_key_new(const uint8_t *seed, size_t seed_len,
                                    betanet_vrf_key_t **out) noexcept nogil:
    cdef uint8_t sd[32]
    cdef uint8_t h[64]
    cdef uint8_t wide[64]
    cdef betanet_vrf_key_t *key
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    if seed != NULL and seed_len != 32:
        return BETANET_E_INVALID
    key = <betanet_vrf_key_t *>bnt_alloc(sizeof(betanet_vrf_key_t))
    if key == NULL:
        return BETANET_E_NOMEM
    if seed == NULL:
        randombytes_buf(sd, 32)
    else:
        memcpy(sd, seed, 32)
    # RFC 8032 5.1.5: h = SHA-512(seed); x = clamp(h[0..31]); prefix = h[32..63].
    crypto_hash_sha512(h, sd, 32)
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    if crypto_scalarmult_ed25519_base_noclamp(key.pk, h) != 0:
        sodium_memzero(sd, 32)
        sodium_memzero(h, 64)
        bnt_free_secret(key, sizeof(betanet_vrf_key_t))
        return BETANET_E_CRYPTO
    memset(wide, 0, 64)
    memcpy(wide, h, 32)
    crypto_core_ed25519_scalar_reduce(key.x, wide)
    memcpy(key.prefix, &h[32], 32)
    sodium_memzero(sd, 32)
    sodium_memzero(h, 64)
    sodium_memzero(wide, 64)
    out[0] = key
    return BETANET_OK


cdef public void betanet_vrf_key_free(betanet_vrf_key_t *key) noexcept nogil:
    bnt_free_secret(key, sizeof(betanet_vrf_key_t))


cdef public int betanet_vrf_key_public(const betanet_vrf_key_t *key, uint8_t *pk,
                                       size_t pk_len) noexcept nogil:
    if key == NULL or pk == NULL:
        return BETANET_E_INVALID
    if pk_len < 32:
        return BETANET_E_BUFFER_TOO_SMALL
    memcpy(pk, key.pk, 32)
    return BETANET_OK


# ---- prove / verify -------------------------------------------------------------------

cdef public int betanet_vrf_prove(const betanet_vrf_key_t *key, const uint8_t *alpha,
                                  size_t alpha_len, uint8_t *proof, size_t proof_len,
                                  uint8_t *output, size_t output_len) noexcept nogil:
    cdef uint8_t h[32]
    cdef uint8_t gamma[32]
    cdef uint8_t kb[32]
    cdef uint8_t kh[32]
    cdef uint8_t c[32]
    cdef uint8_t cx[32]
    cdef uint8_t k[32]
    cdef uint8_t s[32]
    cdef uint8_t wide[64]
    cdef crypto_hash_sha512_state st
    cdef int rc = BETANET_OK
    if key == NULL or proof == NULL or (alpha == NULL and alpha_len != 0):
        return BETANET_E_INVALID
    if proof_len < PROOF or (output != NULL and output_len < OUTPUT):
        return BETANET_E_BUFFER_TOO_SMALL
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    # H = encode_to_curve(PK, alpha); Gamma = x*H. H is in the prime-order subgroup.
    if encode_to_curve(h, key.pk, alpha, alpha_len) != 0:
        return BETANET_E_CRYPTO
    if crypto_scalarmult_ed25519_noclamp(gamma, key.x, h) != 0:
        return BETANET_E_CRYPTO                    # H is the identity: negligible
    # 5.4.2.2: k = SHA-512(prefix || H) mod L.
    crypto_hash_sha512_init(&st)
    crypto_hash_sha512_update(&st, key.prefix, 32)
    crypto_hash_sha512_update(&st, h, 32)
    crypto_hash_sha512_final(&st, wide)
    crypto_core_ed25519_scalar_reduce(k, wide)
    if (crypto_scalarmult_ed25519_base_noclamp(kb, k) != 0
            or crypto_scalarmult_ed25519_noclamp(kh, k, h) != 0):
        rc = BETANET_E_CRYPTO                      # k = 0: negligible
    else:
        challenge(c, key.pk, h, gamma, kb, kh)
        crypto_core_ed25519_scalar_mul(cx, c, key.x)
        crypto_core_ed25519_scalar_add(s, k, cx)   # s = k + c*x mod L
        memcpy(proof, gamma, PT)
        memcpy(proof + PT, c, CLEN)
        memcpy(proof + PT + CLEN, s, PT)
        if output != NULL:
            if pt_mul8(c, gamma) != 0:
                rc = BETANET_E_CRYPTO
            else:
                hash_gamma8(output, c)
    sodium_memzero(k, 32)
    sodium_memzero(wide, 64)
    sodium_memzero(cx, 32)
    sodium_memzero(kb, 32)
    sodium_memzero(kh, 32)
    sodium_memzero(&st, sizeof(crypto_hash_sha512_state))
    return rc


cdef int check_key(const uint8_t *pk, size_t pk_len) noexcept nogil:
    # 5.4.5 ECVRF_validate_key: canonical point, 8*Y != identity.
    cdef uint8_t y8[32]
    if pk_len != 32 or not enc_canonical(pk):
        return BETANET_E_MALFORMED
    if pt_mul8(y8, pk) != 0 or pt_is_identity(y8):
        return BETANET_E_MALFORMED
    return BETANET_OK


cdef public int betanet_vrf_validate_key(const uint8_t *pk, size_t pk_len) noexcept nogil:
    if pk == NULL:
        return BETANET_E_INVALID
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    return check_key(pk, pk_len)


cdef public int betanet_vrf_verify(const uint8_t *pk, size_t pk_len, const uint8_t *proof,
                                   size_t proof_len, const uint8_t *alpha, size_t alpha_len,
                                   uint8_t *output, size_t output_len) noexcept nogil:
    cdef uint8_t h[32]
    cdef uint8_t c[32]
    cdef uint8_t c2[32]
    cdef uint8_t a[32]
    cdef uint8_t b[32]
    cdef uint8_t u[32]
    cdef uint8_t v[32]
    cdef uint8_t gamma8[32]
    cdef const uint8_t *gamma
    cdef const uint8_t *s
    cdef int rc
    if pk == NULL or proof == NULL or output == NULL or (alpha == NULL and alpha_len != 0):
        return BETANET_E_INVALID
    if output_len < OUTPUT:
        return BETANET_E_BUFFER_TOO_SMALL
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    rc = check_key(pk, pk_len)
    if rc != BETANET_OK:
        return rc
    rc = decode_proof(proof, proof_len, gamma8)
    if rc != BETANET_OK:
        return rc
    gamma = proof
    s = proof + PT + CLEN
    memset(c, 0, 32)
    memcpy(c, proof + PT, CLEN)
    if encode_to_curve(h, pk, alpha, alpha_len) != 0:
        return BETANET_E_AUTH
    # U = s*B - c*Y
    if crypto_scalarmult_ed25519_base_noclamp(a, s) != 0:
        memcpy(a, bnt_vrf_identity, 32)            # s = 0
    if pt_mul(b, c, pk) != 0 or crypto_core_ed25519_sub(u, a, b) != 0:
        return BETANET_E_CRYPTO
    # V = s*H - c*Gamma
    if pt_mul(a, s, h) != 0 or pt_mul(b, c, gamma) != 0 or crypto_core_ed25519_sub(v, a, b) != 0:
        return BETANET_E_CRYPTO
    challenge(c2, pk, h, gamma, u, v)
    if sodium_memcmp(c, c2, CLEN) != 0:
        return BETANET_E_AUTH
    hash_gamma8(output, gamma8)
    return BETANET_OK


cdef public int betanet_vrf_proof_to_hash(const uint8_t *proof, size_t proof_len,
                                          uint8_t *output, size_t output_len) noexcept nogil:
    cdef int rc
    cdef uint8_t gamma8[32]
    if proof == NULL or output == NULL:
        return BETANET_E_INVALID
    if output_len < OUTPUT:
        return BETANET_E_BUFFER_TOO_SMALL
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    rc = decode_proof(proof, proof_len, gamma8)
    if rc != BETANET_OK:
        return rc
    hash_gamma8(output, gamma8)
    return BETANET_OK
