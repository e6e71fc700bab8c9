# sphinx.pyx — Sphinx mix packets over X25519 (include/betanet/sphinx.h, docs/sphinx.md).
#
# Per hop i with shared secret s_i = X25519(node_sk, α_i):
#   PRK = HMAC-SHA256("betanet/sphinx/v1", s_i ‖ α_i); ρ, μ, π, b = HKDF-Expand(PRK, info_x, 32)
#   β decrypts with ChaCha20(ρ), γ = BLAKE2b-128(key μ, β), payload = LIONESS⁻¹(π, payload),
#   α_{i+1} = X25519(b_i, α_i) with b_i clamped, so α_i = u((x·b_0·…·b_{i-1} mod ℓ)·G).
# The creator keeps r_i = x·Πb mod ℓ (crypto_core_ed25519_scalar_mul) and, because X25519
# clamps, turns r_i into a clamp-invariant scalar k_i ≡ ±r_i (mod ℓ) ("lift", below): then
# s_i = X25519(k_i, node_pk), and α_i = u(r_i·G) comes from the fixed-base Edwards
# multiplication (bnt_fe25519.h maps y to u) — O(n) in total. α_i is bound into the KDF so that a re-encoded α (another u for the same
# shared secret, e.g. α + a low-order point) fails the MAC instead of dodging the replay
# filter, which is keyed on the bytes of α.

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy, memset, memmove
from bnt cimport *
from bnt_internal cimport *

from bnt_hkdf cimport hkdf_expand1

cdef extern from "bnt_fe25519.h" nogil:
    void bnt_ed_to_x25519_u(uint8_t *u, const uint8_t *ed)

cdef extern from "bnt_sha256_ni.h" nogil:
    int bnt_sha_ni_cpu()
    void bnt_hmac_states(const uint8_t *key, size_t keylen, uint32_t *st)
    void bnt_hmac_final(const uint32_t *st, const uint8_t *msg, size_t mlen, uint8_t *out)

cdef extern from "x25519_mb.h" nogil:
    enum: BNT_HAVE_X25519_MB
    void bnt_x25519_mb8(uint8_t *out, const uint8_t *scalars, const uint8_t *points, int *status)

cdef extern from "bnt_mutex.h" nogil:      # a pthread mutex, or nothing in the firmware build
    ctypedef struct bnt_mutex_t:
        pass
    int bnt_mutex_init(bnt_mutex_t *m)
    int bnt_mutex_destroy(bnt_mutex_t *m)
    int bnt_mutex_lock(bnt_mutex_t *m)
    int bnt_mutex_unlock(bnt_mutex_t *m)

from betanet_sphinx cimport *

# Verbatim C constants (module-level Python code never runs in libbetanet).
cdef extern from *:
    """
    /* 2^254 mod l and 8^-1 mod l, little-endian (l = 2^252 + 27742317777372353535851937790883648493). */
    static const unsigned char bnt_sphx_c254[32] = {
        0x39,0x84,0x1e,0xe9,0xb0,0xd6,0xc8,0xf7,0x7c,0x29,0x19,0x17,0x64,0x12,0x63,0xc1,
        0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0x0f};
    static const unsigned char bnt_sphx_inv8[32] = {
        0x79,0x2f,0xdc,0xe2,0x29,0xe5,0x06,0x61,0xd0,0xda,0x1c,0x7d,0xb3,0x9d,0xd3,0x07,
        0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x06};
    #define BNT_SPHX_STR(name, text) static const unsigned char name[] = text; \
        enum { name##_len = sizeof(text) - 1 };
    BNT_SPHX_STR(bnt_sphx_salt, "betanet/sphinx/v1")
    BNT_SPHX_STR(bnt_sphx_info_rho, "betanet/sphinx/v1 header-stream\\x01")
    BNT_SPHX_STR(bnt_sphx_info_mu, "betanet/sphinx/v1 header-mac\\x01")
    BNT_SPHX_STR(bnt_sphx_info_pi, "betanet/sphinx/v1 payload\\x01")
    BNT_SPHX_STR(bnt_sphx_info_b, "betanet/sphinx/v1 blinding\\x01")
    BNT_SPHX_STR(bnt_sphx_seed_info, "betanet/sphx/key")
    static const unsigned char bnt_sphx_nonce0[8] = {0};
    static const unsigned char bnt_sphx_nonce_lioness[8] = {'l','i','o','n','e','s','s',0};
    static const unsigned char bnt_sphx_nonce_rng[8] = {'s','p','h','x','-','r','n','g'};
    #define BNT_SPHX_MAXB ((BETANET_SPHINX_MAX_HOPS + 1) * BETANET_SPHINX_ENTRY_BYTES)
    """
    const unsigned char bnt_sphx_c254[32]
    const unsigned char bnt_sphx_inv8[32]
    const unsigned char *bnt_sphx_salt
    const unsigned char *bnt_sphx_info_rho
    const unsigned char *bnt_sphx_info_mu
    const unsigned char *bnt_sphx_info_pi
    const unsigned char *bnt_sphx_info_b
    const unsigned char *bnt_sphx_seed_info
    const unsigned char *bnt_sphx_nonce0
    const unsigned char *bnt_sphx_nonce_lioness
    const unsigned char *bnt_sphx_nonce_rng
    enum:
        bnt_sphx_salt_len
        bnt_sphx_info_rho_len
        bnt_sphx_info_mu_len
        bnt_sphx_info_pi_len
        bnt_sphx_info_b_len
        bnt_sphx_seed_info_len
    enum: BNT_SPHX_MAXB

cdef enum:
    E = 53          # routing entry bytes (BETANET_SPHINX_ENTRY_BYTES)
    PRE = 4         # epoch prefix
    ZB = 16         # zero prefix of the payload

# HKDF-Extract's salt, keyed once: libsodium's HMAC state and the SHA-NI one.
cdef struct kdf_salt:
    crypto_auth_hmacsha256_state st
    uint32_t ni[16]
    int ni_ok

# Keys of one hop, wiped after use.
cdef struct hop_keys:
    uint8_t rho[32]     # header stream (ChaCha20)
    uint8_t mu[32]      # header MAC (BLAKE2b-128)
    uint8_t pi[32]      # payload (LIONESS)
    uint8_t b[32]       # blinding scalar, clamped


# ---- geometry --------------------------------------------------------------------

cdef inline bint geom_ok(uint32_t hops, uint32_t payload) noexcept nogil:
    return 1 <= hops <= BETANET_SPHINX_MAX_HOPS and \
        BETANET_SPHINX_MIN_PAYLOAD_BYTES <= payload <= BETANET_SPHINX_MAX_PAYLOAD_BYTES

cdef inline size_t hdr_bytes(uint32_t hops) noexcept nogil:
    return PRE + 32 + <size_t>hops * E + 16

cdef public size_t betanet_sphinx_key_bytes() noexcept nogil:
    return BETANET_SPHINX_KEY_BYTES

cdef public size_t betanet_sphinx_id_bytes() noexcept nogil:
    return BETANET_SPHINX_ID_BYTES

cdef public size_t betanet_sphinx_header_bytes(uint32_t max_hops) noexcept nogil:
    if not geom_ok(max_hops, BETANET_SPHINX_MIN_PAYLOAD_BYTES):
        return 0
    return hdr_bytes(max_hops)

cdef public size_t betanet_sphinx_packet_bytes(uint32_t max_hops, uint32_t payload_bytes) noexcept nogil:
    if not geom_ok(max_hops, payload_bytes):
        return 0
    return hdr_bytes(max_hops) + payload_bytes

cdef public size_t betanet_sphinx_body_bytes(uint32_t payload_bytes) noexcept nogil:
    if not geom_ok(1, payload_bytes):
        return 0
    return payload_bytes - ZB

cdef public size_t betanet_sphinx_surb_bytes(uint32_t max_hops) noexcept nogil:
    if not geom_ok(max_hops, BETANET_SPHINX_MIN_PAYLOAD_BYTES):
        return 0
    return 64 + hdr_bytes(max_hops)

cdef public size_t betanet_sphinx_surb_secret_bytes(uint32_t max_hops) noexcept nogil:
    if not geom_ok(max_hops, BETANET_SPHINX_MIN_PAYLOAD_BYTES):
        return 0
    return 16 + 32 + 1 + <size_t>max_hops * 32


# ---- primitives ------------------------------------------------------------------

cdef inline void put_be32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24); p[1] = <uint8_t>(v >> 16); p[2] = <uint8_t>(v >> 8); p[3] = <uint8_t>v

cdef inline uint32_t get_be32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]

cdef inline void clamp(uint8_t *k) noexcept nogil:
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64

cdef inline bint use_sha_ni() noexcept nogil:
    # betanet_cpu_restrict(0) forces libsodium's portable SHA-256 (tests compare the two).
    return bnt_sha_ni_cpu() != 0 and (bnt_cpu() & BETANET_CPU_SSSE3) != 0

cdef void derive_keys(const kdf_salt *salt, const uint8_t *s, const uint8_t *alpha,
                      hop_keys *k) noexcept nogil:
    # HKDF-Extract(salt, s ‖ α) then one Expand per key, each with its own info string.
    cdef crypto_auth_hmacsha256_state st
    cdef uint32_t ni[16]
    cdef uint8_t prk[32]
    cdef uint8_t ikm[64]
    if salt.ni_ok and use_sha_ni():
        memcpy(ikm, s, 32)
        memcpy(ikm + 32, alpha, 32)
        bnt_hmac_final(salt.ni, ikm, 64, prk)
        bnt_hmac_states(prk, 32, ni)
        bnt_hmac_final(ni, bnt_sphx_info_rho, bnt_sphx_info_rho_len, k.rho)
        bnt_hmac_final(ni, bnt_sphx_info_mu, bnt_sphx_info_mu_len, k.mu)
        bnt_hmac_final(ni, bnt_sphx_info_pi, bnt_sphx_info_pi_len, k.pi)
        bnt_hmac_final(ni, bnt_sphx_info_b, bnt_sphx_info_b_len, k.b)
        sodium_memzero(ni, sizeof(ni))
        sodium_memzero(ikm, 64)
    else:
        memcpy(&st, &salt.st, sizeof(crypto_auth_hmacsha256_state))
        crypto_auth_hmacsha256_update(&st, s, 32)
        crypto_auth_hmacsha256_update(&st, alpha, 32)
        crypto_auth_hmacsha256_final(&st, prk)
        crypto_auth_hmacsha256_init(&st, prk, 32)
        # The info constants end in T(1)'s counter byte for the SHA-NI path; hkdf_expand1
        # appends it itself.
        hkdf_expand1(&st, bnt_sphx_info_rho, bnt_sphx_info_rho_len - 1, k.rho)
        hkdf_expand1(&st, bnt_sphx_info_mu, bnt_sphx_info_mu_len - 1, k.mu)
        hkdf_expand1(&st, bnt_sphx_info_pi, bnt_sphx_info_pi_len - 1, k.pi)
        hkdf_expand1(&st, bnt_sphx_info_b, bnt_sphx_info_b_len - 1, k.b)
        sodium_memzero(&st, sizeof(st))
    clamp(k.b)
    sodium_memzero(prk, 32)

cdef void salt_state(kdf_salt *salt) noexcept nogil:
    crypto_auth_hmacsha256_init(&salt.st, bnt_sphx_salt, bnt_sphx_salt_len)
    salt.ni_ok = bnt_sha_ni_cpu()
    if salt.ni_ok:
        bnt_hmac_states(bnt_sphx_salt, bnt_sphx_salt_len, salt.ni)

cdef inline void header_mac(const uint8_t *mu, const uint8_t *beta, size_t beta_len, uint8_t *out16) noexcept nogil:
    crypto_generichash(out16, 16, beta, beta_len, mu, 32)


# LIONESS over buf[0:n] (n ≥ 64) with L = buf[0:32], R = buf[32:n]:
#   K1‖K2‖K3‖K4 = ChaCha20(key π, nonce "lioness\0")[0:128]
#   encrypt: R ^= S(L⊕K1); L ^= H_K2(R); R ^= S(L⊕K3); L ^= H_K4(R)
#   decrypt: the same rounds in reverse order.
# S(k) = ChaCha20 keystream (key k, nonce 0), H_K = BLAKE2b-256 keyed with K.
cdef void lioness_round_s(uint8_t *buf, size_t n, const uint8_t *kx) noexcept nogil:
    cdef uint8_t k[32]
    cdef int j
    for j in range(32):
        k[j] = buf[j] ^ kx[j]
    crypto_stream_chacha20_xor(buf + 32, buf + 32, n - 32, bnt_sphx_nonce0, k)
    sodium_memzero(k, 32)

cdef void lioness_round_h(uint8_t *buf, size_t n, const uint8_t *kx) noexcept nogil:
    cdef uint8_t h[32]
    cdef int j
    crypto_generichash(h, 32, buf + 32, n - 32, kx, 32)
    for j in range(32):
        buf[j] ^= h[j]
    sodium_memzero(h, 32)

cdef void lioness(uint8_t *buf, size_t n, const uint8_t *pi, bint encrypt) noexcept nogil:
    cdef uint8_t ks[128]
    crypto_stream_chacha20(ks, 128, bnt_sphx_nonce_lioness, pi)
    if encrypt:
        lioness_round_s(buf, n, ks)
        lioness_round_h(buf, n, ks + 32)
        lioness_round_s(buf, n, ks + 64)
        lioness_round_h(buf, n, ks + 96)
    else:
        lioness_round_h(buf, n, ks + 96)
        lioness_round_s(buf, n, ks + 64)
        lioness_round_h(buf, n, ks + 32)
        lioness_round_s(buf, n, ks)
    sodium_memzero(ks, 128)


cdef void lift(const uint8_t *r, uint8_t *k) noexcept nogil:
    # k := a clamp-invariant 32-byte scalar (k = 2^254 + 8t, t < 2^251) with k ≡ ±r (mod ℓ),
    # so X25519(k, P) = u(r·P) for P in the prime-order subgroup. t = (r − 2^254)/8 mod ℓ
    # is < 2^251 for about half of all r; otherwise t' = (−r − 2^254)/8 = ℓ − 2^252 − t is,
    # except with probability ~2^-125 (then k stays all-zero and the caller fails).
    # Selection is branch-free: r is secret.
    cdef uint8_t t1[32]
    cdef uint8_t t2[32]
    cdef uint8_t neg[32]
    cdef uint8_t m1, m2, carry, v
    cdef int j
    crypto_core_ed25519_scalar_sub(t1, r, bnt_sphx_c254)
    crypto_core_ed25519_scalar_mul(t1, t1, bnt_sphx_inv8)
    crypto_core_ed25519_scalar_negate(neg, r)
    crypto_core_ed25519_scalar_sub(t2, neg, bnt_sphx_c254)
    crypto_core_ed25519_scalar_mul(t2, t2, bnt_sphx_inv8)
    m1 = <uint8_t>(0 - <uint8_t>((t1[31] >> 3) == 0))      # 0xff if t1 < 2^251
    m2 = <uint8_t>(~m1 & <uint8_t>(0 - <uint8_t>((t2[31] >> 3) == 0)))
    carry = 0
    for j in range(32):
        v = (t1[j] & m1) | (t2[j] & m2)
        k[j] = <uint8_t>((v << 3) | carry)
        carry = v >> 5
    k[31] |= (m1 | m2) & 0x40
    sodium_memzero(t1, 32); sodium_memzero(t2, 32); sodium_memzero(neg, 32)

cdef inline void reduce32(const uint8_t *s, uint8_t *out) noexcept nogil:
    cdef uint8_t wide[64]
    memset(wide, 0, 64)
    memcpy(wide, s, 32)
    crypto_core_ed25519_scalar_reduce(out, wide)
    sodium_memzero(wide, 64)


# ---- creation --------------------------------------------------------------------

cdef inline size_t rng_bytes(uint32_t hops) noexcept nogil:
    # x (32) ‖ k_surb (32) ‖ surb id (16) ‖ padding (max_hops·E)
    return 80 + <size_t>hops * E

cdef void fill_rng(uint8_t *rng, size_t n, const uint8_t *seed32) noexcept nogil:
    if seed32 == NULL:
        randombytes_buf(rng, n)
    else:
        crypto_stream_chacha20(rng, n, bnt_sphx_nonce_rng, seed32)

cdef int build_header(uint32_t hops, uint32_t epoch, const betanet_sphinx_hop_t *route, size_t n,
                      const uint8_t *dest_id, uint32_t final_flags, const uint8_t *surb_id,
                      const uint8_t *rng, uint8_t *hdr, uint8_t *payload_keys) noexcept nogil:
    # Writes epoch ‖ α_0 ‖ β_0 ‖ γ_0 into hdr and the n payload keys π_i into payload_keys.
    cdef kdf_salt salt_st
    cdef hop_keys keys[BETANET_SPHINX_MAX_HOPS]
    cdef uint8_t x[32]
    cdef uint8_t r[32]
    cdef uint8_t k[32]
    cdef uint8_t bred[32]
    cdef uint8_t alpha[32]
    cdef uint8_t ed[32]
    cdef uint8_t s[32]
    cdef uint8_t stream[BNT_SPHX_MAXB]
    cdef uint8_t filler[BNT_SPHX_MAXB]
    cdef uint8_t beta[BNT_SPHX_MAXB]
    cdef uint8_t mac[16]
    cdef size_t i, j, beta_len = <size_t>hops * E, total = <size_t>(hops + 1) * E, flen, pad
    cdef int rc = BETANET_OK
    cdef uint8_t *e

    salt_state(&salt_st)
    memcpy(x, rng, 32)
    clamp(x)
    reduce32(x, r)
    # Per hop: α_i = u(r_i·G) — fixed-base Edwards multiplication, then y → u (the same
    # bytes as X25519_base(k_i), at about half the cost) — and s_i = X25519(k_i, pk_i) with
    # k_0 = x, k_i = lift(r_i).
    for i in range(n):
        if i == 0:
            memcpy(k, x, 32)
        else:
            lift(r, k)
            if k[31] == 0:
                rc = BETANET_E_CRYPTO
                break
        if crypto_scalarmult_ed25519_base_noclamp(ed, r) != 0 or \
                crypto_scalarmult(s, k, route[i].public_key) != 0:
            rc = BETANET_E_CRYPTO
            break
        bnt_ed_to_x25519_u(alpha, ed)
        if i == 0:
            memcpy(hdr + PRE, alpha, 32)
        derive_keys(&salt_st, s, alpha, &keys[i])
        memcpy(payload_keys + 32 * i, keys[i].pi, 32)
        reduce32(keys[i].b, bred)
        crypto_core_ed25519_scalar_mul(r, r, bred)
    if rc == BETANET_OK:
        # Filler: φ_i = (φ_{i-1} ‖ 0^E) ⊕ S(ρ_{i-1})[(hops+1−i)·E : (hops+1)·E].
        flen = 0
        for i in range(1, n):
            memset(filler + flen, 0, E)
            flen += E
            crypto_stream_chacha20(stream, total, bnt_sphx_nonce0, keys[i - 1].rho)
            for j in range(flen):
                filler[j] ^= stream[total - flen + j]
        # Innermost: final entry ‖ random padding, encrypted, then the filler.
        pad = beta_len - flen
        memcpy(beta, rng + 80, pad)
        e = beta
        e[0] = <uint8_t>final_flags
        put_be32(e + 1, route[n - 1].delay_ms)
        memcpy(e + 5, dest_id, 32)
        if surb_id != NULL:
            memcpy(e + 37, surb_id, 16)
        else:
            memset(e + 37, 0, 16)
        crypto_stream_chacha20(stream, total, bnt_sphx_nonce0, keys[n - 1].rho)
        for j in range(pad):
            beta[j] ^= stream[j]
        memcpy(beta + pad, filler, flen)
        header_mac(keys[n - 1].mu, beta, beta_len, mac)
        # Wrap outwards: β_i = (entry_i ‖ β_{i+1}[0 : beta_len − E]) ⊕ S(ρ_i)[0 : beta_len].
        for i in range(n - 1, 0, -1):
            memmove(beta + E, beta, beta_len - E)
            e = beta
            e[0] = BETANET_SPHINX_RELAY
            put_be32(e + 1, route[i - 1].delay_ms)
            memcpy(e + 5, route[i].node_id, 32)
            memcpy(e + 37, mac, 16)
            crypto_stream_chacha20(stream, beta_len, bnt_sphx_nonce0, keys[i - 1].rho)
            for j in range(beta_len):
                beta[j] ^= stream[j]
            header_mac(keys[i - 1].mu, beta, beta_len, mac)
        put_be32(hdr, epoch)
        memcpy(hdr + PRE + 32, beta, beta_len)
        memcpy(hdr + PRE + 32 + beta_len, mac, 16)
    sodium_memzero(keys, sizeof(keys))
    sodium_memzero(x, 32); sodium_memzero(r, 32); sodium_memzero(k, 32)
    sodium_memzero(bred, 32); sodium_memzero(s, 32); sodium_memzero(ed, 32)
    sodium_memzero(stream, sizeof(stream)); sodium_memzero(filler, sizeof(filler))
    sodium_memzero(&salt_st, sizeof(salt_st))
    return rc

cdef int check_route(uint32_t hops, uint32_t payload, const betanet_sphinx_hop_t *route, size_t n,
                     const uint8_t *dest_id) noexcept nogil:
    if not geom_ok(hops, payload) or route == NULL or dest_id == NULL or n < 1 or n > hops:
        return BETANET_E_INVALID
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    return BETANET_OK

cdef void encode_body(uint8_t *p, uint32_t payload, const uint8_t *body, size_t body_len) noexcept nogil:
    memset(p, 0, payload)
    if body_len:
        memcpy(p + ZB, body, body_len)

cdef public int betanet_sphinx_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch,
                                      const betanet_sphinx_hop_t *hops, size_t n_hops,
                                      const uint8_t *dest_id, const uint8_t *body, size_t body_len,
                                      const uint8_t *seed32, uint8_t *packet_out, size_t packet_cap) noexcept nogil:
    cdef int rc = check_route(max_hops, payload_bytes, hops, n_hops, dest_id)
    cdef uint8_t rng[80 + BETANET_SPHINX_MAX_HOPS * E]
    cdef uint8_t pkeys[32 * BETANET_SPHINX_MAX_HOPS]
    cdef size_t hb = hdr_bytes(max_hops), i
    if rc != BETANET_OK:
        return rc
    if packet_out == NULL or (body == NULL and body_len) or body_len > payload_bytes - ZB:
        return BETANET_E_INVALID
    if packet_cap < hb + payload_bytes:
        return BETANET_E_BUFFER_TOO_SMALL
    fill_rng(rng, rng_bytes(max_hops), seed32)
    rc = build_header(max_hops, epoch, hops, n_hops, dest_id, BETANET_SPHINX_DELIVER, NULL,
                      rng, packet_out, pkeys)
    if rc == BETANET_OK:
        encode_body(packet_out + hb, payload_bytes, body, body_len)
        for i in range(n_hops, 0, -1):
            lioness(packet_out + hb, payload_bytes, pkeys + 32 * (i - 1), 1)
    sodium_memzero(rng, sizeof(rng))
    sodium_memzero(pkeys, sizeof(pkeys))
    return rc


# ---- SURBs -----------------------------------------------------------------------
# SURB   = first hop id (32) ‖ k_surb (32) ‖ header (epoch ‖ α ‖ β ‖ γ)
# secret = surb id (16) ‖ k_surb (32) ‖ n (1) ‖ π_0 … π_{max_hops−1} (32 each; unused zero)

cdef public int betanet_sphinx_surb_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch,
                                           const betanet_sphinx_hop_t *hops, size_t n_hops,
                                           const uint8_t *dest_id, const uint8_t *seed32,
                                           uint8_t *surb_out, size_t surb_cap,
                                           uint8_t *surb_secret_out, size_t secret_cap,
                                           uint8_t *surb_id_out) noexcept nogil:
    cdef int rc = check_route(max_hops, payload_bytes, hops, n_hops, dest_id)
    cdef uint8_t rng[80 + BETANET_SPHINX_MAX_HOPS * E]
    cdef size_t hb = hdr_bytes(max_hops), sb = 16 + 32 + 1 + <size_t>max_hops * 32
    if rc != BETANET_OK:
        return rc
    if surb_out == NULL or surb_secret_out == NULL:
        return BETANET_E_INVALID
    if surb_cap < 64 + hb or secret_cap < sb:
        return BETANET_E_BUFFER_TOO_SMALL
    fill_rng(rng, rng_bytes(max_hops), seed32)
    memset(surb_secret_out, 0, sb)
    rc = build_header(max_hops, epoch, hops, n_hops, dest_id, BETANET_SPHINX_REPLY, rng + 64,
                      rng, surb_out + 64, surb_secret_out + 49)
    if rc == BETANET_OK:
        memcpy(surb_out, hops[0].node_id, 32)
        memcpy(surb_out + 32, rng + 32, 32)
        memcpy(surb_secret_out, rng + 64, 16)
        memcpy(surb_secret_out + 16, rng + 32, 32)
        surb_secret_out[48] = <uint8_t>n_hops
        if surb_id_out != NULL:
            memcpy(surb_id_out, rng + 64, 16)
    else:
        sodium_memzero(surb_secret_out, sb)
    sodium_memzero(rng, sizeof(rng))
    return rc

cdef public int betanet_sphinx_surb_use(uint32_t max_hops, uint32_t payload_bytes,
                                        const uint8_t *surb, size_t surb_len,
                                        const uint8_t *body, size_t body_len,
                                        uint8_t *first_hop_out, uint8_t *packet_out, size_t packet_cap) noexcept nogil:
    cdef size_t hb = hdr_bytes(max_hops)
    if not geom_ok(max_hops, payload_bytes) or surb == NULL or first_hop_out == NULL or packet_out == NULL:
        return BETANET_E_INVALID
    if (body == NULL and body_len) or body_len > payload_bytes - ZB:
        return BETANET_E_INVALID
    if surb_len != 64 + hb:
        return BETANET_E_MALFORMED
    if packet_cap < hb + payload_bytes:
        return BETANET_E_BUFFER_TOO_SMALL
    memcpy(first_hop_out, surb, 32)
    memcpy(packet_out, surb + 64, hb)
    encode_body(packet_out + hb, payload_bytes, body, body_len)
    lioness(packet_out + hb, payload_bytes, surb + 32, 1)
    return BETANET_OK

cdef public int betanet_sphinx_surb_open(uint32_t max_hops, uint32_t payload_bytes,
                                         const uint8_t *surb_secret, size_t secret_len,
                                         const uint8_t *payload, size_t payload_len,
                                         uint8_t *body_out, size_t body_cap) noexcept nogil:
    cdef size_t sb = 16 + 32 + 1 + <size_t>max_hops * 32, i, n
    cdef uint8_t *buf
    cdef int rc = BETANET_OK
    if not geom_ok(max_hops, payload_bytes) or surb_secret == NULL or payload == NULL or body_out == NULL:
        return BETANET_E_INVALID
    if secret_len != sb or payload_len != payload_bytes:
        return BETANET_E_MALFORMED
    n = surb_secret[48]
    if n < 1 or n > max_hops:
        return BETANET_E_MALFORMED
    if body_cap < payload_bytes - ZB:
        return BETANET_E_BUFFER_TOO_SMALL
    buf = <uint8_t *>bnt_alloc(payload_bytes)
    if buf == NULL:
        return BETANET_E_NOMEM
    memcpy(buf, payload, payload_bytes)
    # Hops decrypted with π_0 … π_{n−1}; undo from the last, then k_surb.
    for i in range(n, 0, -1):
        lioness(buf, payload_bytes, surb_secret + 49 + 32 * (i - 1), 1)
    lioness(buf, payload_bytes, surb_secret + 16, 0)
    if not sodium_is_zero(buf, ZB):
        rc = BETANET_E_AUTH
    else:
        memcpy(body_out, buf + ZB, payload_bytes - ZB)
    bnt_free_secret(buf, payload_bytes)
    return rc


# ---- keys ------------------------------------------------------------------------

cdef public int betanet_sphinx_keypair(uint8_t *public_key, uint8_t *secret_key, const uint8_t *seed32) noexcept nogil:
    if public_key == NULL or secret_key == NULL:
        return BETANET_E_INVALID
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    if seed32 == NULL:
        randombytes_buf(secret_key, 32)
    else:
        crypto_generichash(secret_key, 32, seed32, 32, bnt_sphx_seed_info, bnt_sphx_seed_info_len)
    clamp(secret_key)
    if crypto_scalarmult_base(public_key, secret_key) != 0:
        return BETANET_E_CRYPTO
    return BETANET_OK


# ---- the node --------------------------------------------------------------------

cdef struct epoch_slot:
    uint32_t epoch
    int used
    uint8_t sk[32]
    uint8_t *table          # nslots × 16-byte tags; all-zero = empty
    size_t nslots
    size_t count

cdef struct bnt_sphx_node:
    uint32_t hops
    uint32_t payload
    size_t capacity
    uint32_t oldest_valid
    uint8_t replay_key[32]
    kdf_salt salt_st
    bnt_mutex_t lock
    epoch_slot slots[BETANET_SPHINX_MAX_EPOCHS]

ctypedef bnt_sphx_node node_t


cdef public int betanet_sphinx_node_new(uint32_t max_hops, uint32_t payload_bytes, size_t replay_capacity,
                                        betanet_sphinx_node_t **out) noexcept nogil:
    cdef node_t *nd
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if not geom_ok(max_hops, payload_bytes) or replay_capacity < 1 or replay_capacity > (<size_t>1 << 28):
        return BETANET_E_INVALID
    if betanet_init() != BETANET_OK:   # init on first use (betanet.h)
        return BETANET_E_CRYPTO
    nd = <node_t *>bnt_alloc(sizeof(node_t))
    if nd == NULL:
        return BETANET_E_NOMEM
    nd.hops = max_hops
    nd.payload = payload_bytes
    nd.capacity = replay_capacity
    randombytes_buf(nd.replay_key, 32)
    salt_state(&nd.salt_st)
    bnt_mutex_init(&nd.lock)
    out[0] = <betanet_sphinx_node_t *>nd
    return BETANET_OK

cdef void slot_clear(epoch_slot *sl) noexcept nogil:
    if sl.table != NULL:
        bnt_free(sl.table)
    sodium_memzero(sl, sizeof(epoch_slot))

cdef public void betanet_sphinx_node_free(betanet_sphinx_node_t *handle) noexcept nogil:
    cdef node_t *node = <node_t *>handle
    cdef int i
    if node == NULL:
        return
    for i in range(BETANET_SPHINX_MAX_EPOCHS):
        slot_clear(&node.slots[i])
    bnt_mutex_destroy(&node.lock)
    bnt_free_secret(node, sizeof(node_t))

cdef epoch_slot *find_slot(node_t *node, uint32_t epoch) noexcept nogil:
    cdef int i
    for i in range(BETANET_SPHINX_MAX_EPOCHS):
        if node.slots[i].used and node.slots[i].epoch == epoch:
            return &node.slots[i]
    return NULL

cdef public int betanet_sphinx_node_add_key(betanet_sphinx_node_t *handle, uint32_t epoch, const uint8_t *secret_key) noexcept nogil:
    cdef node_t *node = <node_t *>handle
    cdef size_t nslots = 2
    cdef uint8_t *table
    cdef epoch_slot *sl = NULL
    cdef int i, rc = BETANET_OK
    if node == NULL or secret_key == NULL:
        return BETANET_E_INVALID
    while nslots < 2 * node.capacity:
        nslots <<= 1
    table = <uint8_t *>bnt_alloc(nslots * 16)
    if table == NULL:
        return BETANET_E_NOMEM
    bnt_mutex_lock(&node.lock)
    if epoch < node.oldest_valid:
        rc = BETANET_E_EXPIRED
    elif find_slot(node, epoch) != NULL:
        rc = BETANET_E_STATE
    else:
        for i in range(BETANET_SPHINX_MAX_EPOCHS):
            if not node.slots[i].used:
                sl = &node.slots[i]
                break
        if sl == NULL:
            rc = BETANET_E_LIMIT
        else:
            sl.used = 1
            sl.epoch = epoch
            memcpy(sl.sk, secret_key, 32)
            clamp(sl.sk)
            sl.table = table
            sl.nslots = nslots
            sl.count = 0
            table = NULL
    bnt_mutex_unlock(&node.lock)
    if table != NULL:
        bnt_free(table)
    return rc

cdef public int betanet_sphinx_node_expire(betanet_sphinx_node_t *handle, uint32_t oldest_valid) noexcept nogil:
    cdef node_t *node = <node_t *>handle
    cdef int i
    if node == NULL:
        return BETANET_E_INVALID
    bnt_mutex_lock(&node.lock)
    if oldest_valid > node.oldest_valid:
        node.oldest_valid = oldest_valid
    for i in range(BETANET_SPHINX_MAX_EPOCHS):
        if node.slots[i].used and node.slots[i].epoch < node.oldest_valid:
            slot_clear(&node.slots[i])
    bnt_mutex_unlock(&node.lock)
    return BETANET_OK

cdef public size_t betanet_sphinx_node_replay_count(betanet_sphinx_node_t *handle, uint32_t epoch) noexcept nogil:
    cdef node_t *node = <node_t *>handle
    cdef epoch_slot *sl
    cdef size_t c = 0
    if node == NULL:
        return 0
    bnt_mutex_lock(&node.lock)
    sl = find_slot(node, epoch)
    if sl != NULL:
        c = sl.count
    bnt_mutex_unlock(&node.lock)
    return c


cdef inline size_t tag_index(const uint8_t *tag, size_t mask) noexcept nogil:
    cdef uint64_t v = 0
    cdef int j
    for j in range(8):
        v |= (<uint64_t>tag[j]) << (8 * j)
    return <size_t>v & mask

cdef int table_find(epoch_slot *sl, const uint8_t *tag, bint insert) noexcept nogil:
    # Open addressing, linear probing. Returns REPLAY if present, else OK (inserted when
    # `insert`), or LIMIT when the filter holds `capacity` tags already.
    cdef size_t mask = sl.nslots - 1, i = tag_index(tag, mask)
    cdef uint8_t *slot
    while True:
        slot = sl.table + 16 * i
        if sodium_is_zero(slot, 16):
            if insert:
                memcpy(slot, tag, 16)
                sl.count += 1
            return BETANET_OK
        if memcmp16(slot, tag):
            return BETANET_E_REPLAY
        i = (i + 1) & mask

cdef inline bint memcmp16(const uint8_t *a, const uint8_t *b) noexcept nogil:
    # Tags are keyed hashes of public data: an ordinary comparison leaks nothing useful.
    cdef int j
    for j in range(16):
        if a[j] != b[j]:
            return 0
    return 1


# ---- processing ------------------------------------------------------------------
# A packet goes through these stages; the single path runs them back to back, the batch
# path runs each stage over a group of up to 8 packets so that the two X25519 per packet
# run 8 at a time on AVX-512 IFMA (x25519_mb.h):
#   tag_check (replay tag, epoch, filter; under the lock) → s = X25519(sk, α) →
#   open_header (keys, MAC, routing entry) → record (filter insert; under the lock, in
#   packet order) → α' = X25519(b, α) for relays → finish (output, result).
# A tag found in the filter at `record` means an earlier packet (of this batch, or of
# another thread) was accepted in between: the packet is a replay, as it would have been
# had it been processed alone after that packet.

cdef struct pkt_work:
    uint8_t tag[16]
    uint8_t sk[32]                  # node secret copy, wiped after the first X25519
    uint8_t s[32]                   # shared secret
    uint8_t buf[BNT_SPHX_MAXB]      # decrypted routing information
    hop_keys keys
    uint32_t epoch
    uint32_t flags
    int rc

cdef inline void work_wipe(pkt_work *w) noexcept nogil:
    sodium_memzero(w, sizeof(pkt_work))

cdef inline void replay_tag(node_t *node, const uint8_t *pkt, pkt_work *w) noexcept nogil:
    # Keyed hash of α, before any scalar multiplication (all-zero marks an empty slot).
    w.epoch = get_be32(pkt)
    crypto_generichash(w.tag, 16, pkt + PRE, 32, node.replay_key, 32)
    if sodium_is_zero(w.tag, 16):
        w.tag[0] = 1

cdef int tag_check_locked(node_t *node, pkt_work *w) noexcept nogil:
    cdef epoch_slot *sl = find_slot(node, w.epoch)
    cdef int rc
    if w.epoch < node.oldest_valid:
        return BETANET_E_EXPIRED
    if sl == NULL:
        return BETANET_E_NOT_FOUND
    rc = table_find(sl, w.tag, 0)
    if rc == BETANET_OK:
        memcpy(w.sk, sl.sk, 32)
    return rc

cdef int open_header(node_t *node, const uint8_t *pkt, pkt_work *w, int dh_rc) noexcept nogil:
    # Given s (dh_rc: X25519's status): keys, check γ, decrypt β (+ 53 zero bytes) into w.buf.
    cdef size_t beta_len = <size_t>node.hops * E, total = beta_len + E, j
    cdef const uint8_t *alpha = pkt + PRE
    cdef const uint8_t *beta = pkt + PRE + 32
    cdef uint8_t mac[16]
    if dh_rc != 0:
        return BETANET_E_MALFORMED          # low-order α: all-zero shared secret
    derive_keys(&node.salt_st, w.s, alpha, &w.keys)
    header_mac(w.keys.mu, beta, beta_len, mac)
    if crypto_verify_16(mac, beta + beta_len) != 0:
        return BETANET_E_AUTH
    crypto_stream_chacha20(w.buf, total, bnt_sphx_nonce0, w.keys.rho)
    for j in range(beta_len):
        w.buf[j] ^= beta[j]
    w.flags = w.buf[0]
    if w.flags != BETANET_SPHINX_RELAY and w.flags != BETANET_SPHINX_DELIVER and w.flags != BETANET_SPHINX_REPLY:
        return BETANET_E_MALFORMED
    return BETANET_OK

cdef int record_locked(node_t *node, pkt_work *w) noexcept nogil:
    # Record the tag only now, for packets that passed every check: junk must not fill
    # the filter. A tag already present is a replay whatever else was wrong.
    cdef epoch_slot *sl = find_slot(node, w.epoch)
    if sl != NULL and table_find(sl, w.tag, 0) == BETANET_E_REPLAY:
        return BETANET_E_REPLAY
    if w.rc != BETANET_OK:
        return w.rc
    if sl == NULL:
        return BETANET_E_EXPIRED
    if sl.count >= node.capacity:
        return BETANET_E_LIMIT
    return table_find(sl, w.tag, 1)

cdef int finish(node_t *node, const uint8_t *pkt, pkt_work *w, int alpha_rc,
                betanet_sphinx_result_t *res, uint8_t *out) noexcept nogil:
    # Output of an accepted packet; for a relay, out[PRE:PRE+32] already holds α'
    # (alpha_rc: that X25519's status).
    cdef size_t beta_len = <size_t>node.hops * E
    cdef size_t hb = hdr_bytes(node.hops), pb = node.payload
    cdef int rc = BETANET_OK
    res.action = w.flags
    res.delay_ms = get_be32(w.buf + 1)
    res.epoch = w.epoch
    memcpy(res.node_id, w.buf + 5, 32)
    memset(res.surb_id, 0, 16)
    if w.flags == BETANET_SPHINX_RELAY:
        memcpy(out, pkt, PRE)
        if alpha_rc != 0:
            rc = BETANET_E_MALFORMED
        memcpy(out + PRE + 32, w.buf + E, beta_len)
        memcpy(out + PRE + 32 + beta_len, w.buf + 37, 16)
        memcpy(out + hb, pkt + hb, pb)
        lioness(out + hb, pb, w.keys.pi, 0)
        res.out_len = <uint32_t>(hb + pb)
    else:
        memcpy(out, pkt + hb, pb)
        lioness(out, pb, w.keys.pi, 0)
        if w.flags == BETANET_SPHINX_DELIVER:
            if not sodium_is_zero(out, ZB):
                rc = BETANET_E_AUTH         # payload tampered on the way
                sodium_memzero(out, pb)
            else:
                memmove(out, out + ZB, pb - ZB)
                memset(out + pb - ZB, 0, ZB)
                res.out_len = <uint32_t>(pb - ZB)
        else:
            memcpy(res.surb_id, w.buf + 37, 16)
            res.out_len = <uint32_t>pb
    return rc

cdef inline void set_status(betanet_sphinx_result_t *res, int rc) noexcept nogil:
    res.status = rc
    if rc != BETANET_OK:
        res.action = 0
        res.out_len = 0

cdef int process_one(node_t *node, const uint8_t *pkt, size_t pkt_len,
                     betanet_sphinx_result_t *res, uint8_t *out) noexcept nogil:
    cdef pkt_work w
    cdef int dh
    if pkt_len != hdr_bytes(node.hops) + node.payload:
        return BETANET_E_MALFORMED
    replay_tag(node, pkt, &w)
    bnt_mutex_lock(&node.lock)
    w.rc = tag_check_locked(node, &w)
    bnt_mutex_unlock(&node.lock)
    if w.rc == BETANET_OK:
        dh = crypto_scalarmult(w.s, w.sk, pkt + PRE)
        sodium_memzero(w.sk, 32)
        w.rc = open_header(node, pkt, &w, dh)
        bnt_mutex_lock(&node.lock)
        w.rc = record_locked(node, &w)
        bnt_mutex_unlock(&node.lock)
    if w.rc == BETANET_OK:
        dh = 0
        if w.flags == BETANET_SPHINX_RELAY:
            dh = crypto_scalarmult(out + PRE, w.keys.b, pkt + PRE)
        w.rc = finish(node, pkt, &w, dh, res, out)
    dh = w.rc
    work_wipe(&w)
    return dh


cdef inline bint use_mb() noexcept nogil:
    return BNT_HAVE_X25519_MB != 0 and (bnt_cpu() & BETANET_CPU_AVX512IFMA) != 0


cdef public const char *betanet_sphinx_kernel() noexcept nogil:
    # The same decision x25519_lanes makes, so tests can see which path batches take.
    betanet_init()      # the CPU features are detected there
    return "avx512ifma-x8" if use_mb() else "libsodium"

cdef void x25519_lanes(const uint8_t **points, uint8_t **outs, const uint8_t **scalars,
                       int *st, int n) noexcept nogil:
    # st[i] = X25519(scalars[i], points[i]) into outs[i] for the n lanes; 8 at once on IFMA
    # when that beats libsodium (one lane alone does not).
    cdef uint8_t sc[256]
    cdef uint8_t pt[256]
    cdef uint8_t res[256]
    cdef int i
    if n >= 2 and use_mb():
        for i in range(8):
            if i < n:
                memcpy(sc + 32 * i, scalars[i], 32)
                memcpy(pt + 32 * i, points[i], 32)
            else:                   # idle lane: any valid input
                memset(sc + 32 * i, 0, 32)
                memset(pt + 32 * i, 0, 32)
                pt[32 * i] = 9
        bnt_x25519_mb8(res, sc, pt, st)
        for i in range(n):
            memcpy(outs[i], res + 32 * i, 32)
        sodium_memzero(sc, 256)
        sodium_memzero(res, 256)
    else:
        for i in range(n):
            st[i] = crypto_scalarmult(outs[i], scalars[i], points[i])

cdef void process_group(node_t *node, const uint8_t *packets, size_t pk, size_t n,
                        betanet_sphinx_result_t *results, uint8_t *outs) noexcept nogil:
    # Packets [0, n) (n ≤ 8) stage by stage; same results as n process_one calls in order.
    cdef pkt_work w[8]
    cdef const uint8_t *pts[8]
    cdef const uint8_t *scs[8]
    cdef uint8_t *dst[8]
    cdef int idx[8]
    cdef int st[8]
    cdef size_t i
    cdef int m
    for i in range(n):
        memset(&results[i], 0, sizeof(betanet_sphinx_result_t))
        replay_tag(node, packets + i * pk, &w[i])
    bnt_mutex_lock(&node.lock)
    for i in range(n):
        w[i].rc = tag_check_locked(node, &w[i])
    bnt_mutex_unlock(&node.lock)
    # s_i = X25519(sk, α_i) for the packets that passed the filter
    m = 0
    for i in range(n):
        if w[i].rc == BETANET_OK:
            idx[m] = <int>i
            scs[m] = w[i].sk
            pts[m] = packets + i * pk + PRE
            dst[m] = w[i].s
            m += 1
    x25519_lanes(pts, dst, scs, st, m)
    for i in range(<size_t>m):
        sodium_memzero(w[idx[i]].sk, 32)
        w[idx[i]].rc = open_header(node, packets + <size_t>idx[i] * pk, &w[idx[i]], st[i])
    bnt_mutex_lock(&node.lock)
    for i in range(<size_t>m):
        w[idx[i]].rc = record_locked(node, &w[idx[i]])
    bnt_mutex_unlock(&node.lock)
    # α' = X25519(b_i, α_i) for the accepted relays, straight into their outputs
    m = 0
    for i in range(n):
        if w[i].rc == BETANET_OK and w[i].flags == BETANET_SPHINX_RELAY:
            idx[m] = <int>i
            scs[m] = w[i].keys.b
            pts[m] = packets + i * pk + PRE
            dst[m] = outs + i * pk + PRE
            m += 1
    x25519_lanes(pts, dst, scs, st, m)
    for i in range(<size_t>m):
        w[idx[i]].rc = finish(node, packets + <size_t>idx[i] * pk, &w[idx[i]], st[i],
                              &results[idx[i]], outs + <size_t>idx[i] * pk)
    for i in range(n):
        if w[i].rc == BETANET_OK and w[i].flags != BETANET_SPHINX_RELAY:
            w[i].rc = finish(node, packets + i * pk, &w[i], 0, &results[i], outs + i * pk)
        set_status(&results[i], w[i].rc)
        work_wipe(&w[i])


cdef public int betanet_sphinx_node_process(betanet_sphinx_node_t *handle, const uint8_t *packet, size_t packet_len,
                                            betanet_sphinx_result_t *result, uint8_t *out, size_t out_cap) noexcept nogil:
    cdef node_t *node = <node_t *>handle
    cdef int rc
    if node == NULL or packet == NULL or result == NULL or out == NULL:
        return BETANET_E_INVALID
    memset(result, 0, sizeof(betanet_sphinx_result_t))
    if out_cap < hdr_bytes(node.hops) + node.payload:
        return BETANET_E_BUFFER_TOO_SMALL
    rc = process_one(node, packet, packet_len, result, out)
    set_status(result, rc)
    return rc


cdef public int betanet_sphinx_node_process_many(betanet_sphinx_node_t *handle, const uint8_t *packets, size_t count,
                                                 betanet_sphinx_result_t *results, uint8_t *outs) noexcept nogil:
    cdef node_t *node = <node_t *>handle
    cdef size_t pk, i, n
    cdef int ok = 0
    if node == NULL or (count and (packets == NULL or results == NULL or outs == NULL)) or count > 0x7fffffff:
        return BETANET_E_INVALID
    pk = hdr_bytes(node.hops) + node.payload
    if count > (<size_t>-1) / pk:     # count * pk must not wrap (32-bit size_t)
        return BETANET_E_INVALID
    i = 0
    while i < count:
        n = count - i if count - i < 8 else 8
        process_group(node, packets + i * pk, pk, n, results + i, outs + i * pk)
        i += n
    for i in range(count):
        if results[i].status == BETANET_OK:
            ok += 1
    return ok
