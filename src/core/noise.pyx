# noise.pyx — Noise_XK_25519_ChaChaPoly_SHA256, the handshake of HTX (include/betanet/noise.h,
# docs/noise.md). A sans-IO state machine over libsodium: X25519 (crypto_scalarmult, which
# refuses low-order points), SHA-256 and HMAC-SHA256, ChaCha20-Poly1305 IETF with Noise's
# nonce (4 zero bytes | LE64 counter). The ephemeral key comes from randombytes_buf.

from libc.stdint cimport uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free_secret

# Edwards y -> Montgomery u (shared with sphinx.pyx through the header).
cdef extern from "bnt_fe25519.h" nogil:
    void bnt_ed_to_x25519_u(uint8_t *u, const uint8_t *ed)

from betanet_htx cimport *
from betanet_noise cimport *

cdef extern from "betanet.h" nogil:
    # HTX's constructor (htx.pyx), resolved by the linker (no cross-module cimport).
    int betanet_htx_session_new(int role, const uint8_t *k1, const uint8_t *k2,
                                const uint8_t *handshake_hash, const betanet_htx_config_t *config,
                                uint64_t now_ms, betanet_htx_session_t **out)

# True C constants (module-level Python assignments never run in the core). The protocol
# name is exactly HASHLEN (32) bytes, so it is the initial h itself, unpadded.
cdef extern from *:
    """
    static const unsigned char bnt_noise_xk_name[32] = {
        'N','o','i','s','e','_','X','K','_','2','5','5','1','9','_','C',
        'h','a','C','h','a','P','o','l','y','_','S','H','A','2','5','6'};
    #define NOISE_TAG 16
    #define NOISE_DH 32
    #define NOISE_MAX_MSG 65535u
    #define NOISE_HTX_MAX 1024u
    """
    const unsigned char *bnt_noise_xk_name
    size_t NOISE_TAG, NOISE_DH, NOISE_MAX_MSG, NOISE_HTX_MAX


cdef struct xk_state:
    int role
    int step                  # messages done, 0..3; 4 once split
    int error                 # sticky failure (0 = none)
    int fixed_e               # ephemeral injected (test vectors)
    int has_k
    uint64_t n                # CipherState nonce
    uint8_t ck[32]
    uint8_t h[32]
    uint8_t k[32]
    uint8_t s_priv[32]
    uint8_t s_pub[32]
    uint8_t e_priv[32]
    uint8_t e_pub[32]
    uint8_t rs[32]
    uint8_t re[32]
    size_t in_len             # bytes of the current length-prefixed message in inbuf
    uint8_t inbuf[2 + 1024]   # HTX wire form: prefix + message (NOISE_HTX_MAX)


# ---- SymmetricState --------------------------------------------------------------------

cdef void mix_hash(xk_state *st, const uint8_t *data, size_t n) noexcept nogil:
    cdef crypto_hash_sha256_state hs
    crypto_hash_sha256_init(&hs)
    crypto_hash_sha256_update(&hs, st.h, 32)
    crypto_hash_sha256_update(&hs, data, n)
    crypto_hash_sha256_final(&hs, st.h)


cdef inline void hmac(const uint8_t *key, const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen, uint8_t *out) noexcept nogil:
    cdef crypto_auth_hmacsha256_state s
    crypto_auth_hmacsha256_init(&s, key, 32)
    if alen:
        crypto_auth_hmacsha256_update(&s, a, alen)
    if blen:
        crypto_auth_hmacsha256_update(&s, b, blen)
    crypto_auth_hmacsha256_final(&s, out)
    sodium_memzero(&s, sizeof(s))


# Noise's HKDF with two outputs (bnt_hkdf.pxd's HKDF stops at one 32-byte block; Noise needs
# two, chained as the Noise spec writes them): temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01);
# o2 = HMAC(temp, o1 | 0x02). o1 may alias ck.
cdef void hkdf2(const uint8_t *ck, const uint8_t *ikm, size_t ikm_len, uint8_t *o1,
                uint8_t *o2) noexcept nogil:
    cdef uint8_t temp[32]
    cdef uint8_t t1[32]
    cdef uint8_t one = 1
    cdef uint8_t two = 2
    hmac(ck, ikm, ikm_len, NULL, 0, temp)
    hmac(temp, &one, 1, NULL, 0, t1)
    hmac(temp, t1, 32, &two, 1, o2)
    memcpy(o1, t1, 32)
    sodium_memzero(temp, 32)
    sodium_memzero(t1, 32)


cdef void mix_key(xk_state *st, const uint8_t *ikm) noexcept nogil:
    hkdf2(st.ck, ikm, 32, st.ck, st.k)
    st.n = 0
    st.has_k = 1


cdef inline void noise_nonce(uint64_t n, uint8_t *nonce) noexcept nogil:
    cdef int i
    for i in range(4):
        nonce[i] = 0
    for i in range(8):
        nonce[4 + i] = <uint8_t>(n >> (8 * i))


# EncryptAndHash: out = ENCRYPT(k, n++, h, pt) (or pt without a key); h = HASH(h | out).
cdef size_t encrypt_and_hash(xk_state *st, const uint8_t *pt, size_t n, uint8_t *out) noexcept nogil:
    cdef uint8_t nonce[12]
    cdef unsigned long long clen = 0
    if not st.has_k:
        memcpy(out, pt, n)
        mix_hash(st, out, n)
        return n
    noise_nonce(st.n, nonce)
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, n, st.h, 32, NULL, nonce, st.k)
    st.n += 1
    mix_hash(st, out, n + NOISE_TAG)
    return n + NOISE_TAG


# DecryptAndHash of ct[0..n) into out (which may be ct itself): the new h is computed from
# the ciphertext before decrypting, the old h is the associated data.
cdef int decrypt_and_hash(xk_state *st, const uint8_t *ct, size_t n, uint8_t *out) noexcept nogil:
    cdef uint8_t nonce[12]
    cdef uint8_t newh[32]
    cdef crypto_hash_sha256_state hs
    cdef unsigned long long mlen = 0
    crypto_hash_sha256_init(&hs)
    crypto_hash_sha256_update(&hs, st.h, 32)
    crypto_hash_sha256_update(&hs, ct, n)
    crypto_hash_sha256_final(&hs, newh)
    if st.has_k:
        noise_nonce(st.n, nonce)
        if crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, n, st.h, 32, nonce,
                                                     st.k) != 0:
            return BETANET_E_AUTH
        st.n += 1
    elif out != ct:
        memcpy(out, ct, n)
    memcpy(st.h, newh, 32)
    return BETANET_OK


# DH with low-order rejection: libsodium returns -1 for a small-order point (all-zero result).
cdef int dh_mix(xk_state *st, const uint8_t *priv, const uint8_t *pub) noexcept nogil:
    cdef uint8_t shared[32]
    if crypto_scalarmult(shared, priv, pub) != 0:
        sodium_memzero(shared, 32)
        return BETANET_E_CRYPTO
    mix_key(st, shared)
    sodium_memzero(shared, 32)
    return BETANET_OK


# X25519(k, 9): the fixed-base Edwards multiplication of the clamped scalar, then y -> u
# (the same bytes as crypto_scalarmult_base at about half its cost; B has prime order, so
# the birational map commutes with the multiplication).
cdef int x25519_base(uint8_t *pub, const uint8_t *priv) noexcept nogil:
    cdef uint8_t k[32]
    cdef uint8_t ed[32]
    cdef int rc
    memcpy(k, priv, 32)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    rc = crypto_scalarmult_ed25519_base_noclamp(ed, k)
    sodium_memzero(k, 32)
    if rc != 0:
        return BETANET_E_CRYPTO
    bnt_ed_to_x25519_u(pub, ed)
    return BETANET_OK


cdef void wipe_secrets(xk_state *st) noexcept nogil:
    sodium_memzero(st.ck, 32)
    sodium_memzero(st.k, 32)
    sodium_memzero(st.s_priv, 32)
    sodium_memzero(st.e_priv, 32)
    sodium_memzero(st.inbuf, sizeof(st.inbuf))
    st.in_len = 0
    st.has_k = 0


cdef int fail(xk_state *st, int rc) noexcept nogil:
    st.error = rc
    wipe_secrets(st)
    return rc


cdef inline int action_of(const xk_state *st) noexcept nogil:
    if st.error:
        return st.error
    if st.step >= 4:
        return BETANET_NOISE_ACTION_DONE
    if st.step == 3:
        return BETANET_NOISE_ACTION_SPLIT
    # Initiator writes messages 1 and 3 (steps 0, 2); the responder writes message 2.
    if (st.step == 1) == (st.role == BETANET_NOISE_RESPONDER):
        return BETANET_NOISE_ACTION_WRITE
    return BETANET_NOISE_ACTION_READ


cdef inline size_t fixed_part(int step) noexcept nogil:
    return 64 if step == 2 else 48


# ---- construction ----------------------------------------------------------------------

cdef int xk_new(int role, const uint8_t *s_priv, const uint8_t *rs, const uint8_t *prologue,
                size_t prologue_len, const uint8_t *e_priv, betanet_noise_xk_t **out) noexcept nogil:
    cdef xk_state *st
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if s_priv == NULL or (prologue == NULL and prologue_len):
        return BETANET_E_INVALID
    if role == BETANET_NOISE_INITIATOR:
        if rs == NULL:
            return BETANET_E_INVALID
    elif role == BETANET_NOISE_RESPONDER:
        if rs != NULL:
            return BETANET_E_INVALID
    else:
        return BETANET_E_INVALID
    rc = betanet_init()
    if rc < 0:
        return rc
    st = <xk_state *>bnt_alloc(sizeof(xk_state))
    if st == NULL:
        return BETANET_E_NOMEM
    st.role = role
    memcpy(st.s_priv, s_priv, 32)
    if x25519_base(st.s_pub, st.s_priv) != 0:
        bnt_free_secret(st, sizeof(xk_state))
        return BETANET_E_CRYPTO
    if e_priv != NULL:
        memcpy(st.e_priv, e_priv, 32)
        st.fixed_e = 1
    # InitializeSymmetric(name); MixHash(prologue); pre-message "<- s".
    memcpy(st.h, bnt_noise_xk_name, 32)
    memcpy(st.ck, st.h, 32)
    mix_hash(st, prologue, prologue_len)
    if role == BETANET_NOISE_INITIATOR:
        memcpy(st.rs, rs, 32)
        mix_hash(st, st.rs, 32)
    else:
        mix_hash(st, st.s_pub, 32)
    out[0] = <betanet_noise_xk_t *>st
    return BETANET_OK


cdef public int betanet_noise_xk_new(int role, const uint8_t *static_private,
                                     const uint8_t *remote_static_public,
                                     const uint8_t *prologue, size_t prologue_len,
                                     betanet_noise_xk_t **out) noexcept nogil:
    return xk_new(role, static_private, remote_static_public, prologue, prologue_len, NULL, out)


cdef public int betanet_noise_xk_new_with_ephemeral(int role, const uint8_t *static_private,
                                                    const uint8_t *remote_static_public,
                                                    const uint8_t *prologue, size_t prologue_len,
                                                    const uint8_t *ephemeral_private,
                                                    betanet_noise_xk_t **out) noexcept nogil:
    if ephemeral_private == NULL:
        if out != NULL:
            out[0] = NULL
        return BETANET_E_INVALID
    return xk_new(role, static_private, remote_static_public, prologue, prologue_len,
                  ephemeral_private, out)


cdef public void betanet_noise_xk_free(betanet_noise_xk_t *hs) noexcept nogil:
    if hs != NULL:
        bnt_free_secret(hs, sizeof(xk_state))


cdef public int betanet_noise_xk_action(const betanet_noise_xk_t *hs) noexcept nogil:
    if hs == NULL:
        return BETANET_E_INVALID
    return action_of(<const xk_state *>hs)


# ---- messages --------------------------------------------------------------------------

cdef public int betanet_noise_xk_write_message(betanet_noise_xk_t *hs, const uint8_t *payload,
                                               size_t payload_len, uint8_t *out, size_t cap,
                                               size_t *out_len) noexcept nogil:
    cdef xk_state *st = <xk_state *>hs
    cdef size_t need, off = 0
    cdef int rc, a
    if st == NULL or out == NULL or out_len == NULL or (payload == NULL and payload_len):
        return BETANET_E_INVALID
    out_len[0] = 0
    a = action_of(st)
    if a < 0:
        return a
    if a != BETANET_NOISE_ACTION_WRITE:
        return BETANET_E_STATE
    if payload_len > NOISE_MAX_MSG:
        return BETANET_E_LIMIT
    need = fixed_part(st.step) + payload_len
    if need > NOISE_MAX_MSG:
        return BETANET_E_LIMIT
    if cap < need:
        return BETANET_E_BUFFER_TOO_SMALL
    if st.step < 2:
        # -> e, es (initiator) or <- e, ee (responder)
        if not st.fixed_e:
            randombytes_buf(st.e_priv, 32)
        if x25519_base(st.e_pub, st.e_priv) != 0:
            return fail(st, BETANET_E_CRYPTO)
        memcpy(out, st.e_pub, 32)
        mix_hash(st, st.e_pub, 32)
        off = 32
        if st.step == 0:
            rc = dh_mix(st, st.e_priv, st.rs)
        else:
            rc = dh_mix(st, st.e_priv, st.re)
    else:
        # -> s, se
        off = encrypt_and_hash(st, st.s_pub, 32, out)
        rc = dh_mix(st, st.s_priv, st.re)
    if rc < 0:
        sodium_memzero(out, need)
        return fail(st, rc)
    off += encrypt_and_hash(st, payload, payload_len, out + off)
    st.step += 1
    out_len[0] = off
    return BETANET_OK


# Read one message; the payload goes to `payload` (which may be inside msg: decrypted in place).
cdef int read_msg(xk_state *st, const uint8_t *msg, size_t n, uint8_t *payload, size_t cap,
                  size_t *payload_len) noexcept nogil:
    cdef size_t fixed = fixed_part(st.step), plen
    cdef int rc
    if n > NOISE_MAX_MSG:
        return fail(st, BETANET_E_LIMIT)
    if n < fixed:
        return fail(st, BETANET_E_MALFORMED)
    plen = n - fixed
    if cap < plen:
        return BETANET_E_BUFFER_TOO_SMALL
    if st.step < 2:
        # e, then es (responder reading message 1) or ee (initiator reading message 2)
        memcpy(st.re, msg, 32)
        mix_hash(st, st.re, 32)
        if st.step == 0:
            rc = dh_mix(st, st.s_priv, st.re)
        else:
            rc = dh_mix(st, st.e_priv, st.re)
        if rc < 0:
            return fail(st, rc)
        rc = decrypt_and_hash(st, msg + 32, n - 32, payload)
    else:
        # s (encrypted, 48 bytes), then se
        rc = decrypt_and_hash(st, msg, 48, st.rs)
        if rc < 0:
            sodium_memzero(st.rs, 32)
            return fail(st, rc)
        rc = dh_mix(st, st.e_priv, st.rs)
        if rc < 0:
            return fail(st, rc)
        rc = decrypt_and_hash(st, msg + 48, n - 48, payload)
    if rc < 0:
        return fail(st, rc)
    st.step += 1
    payload_len[0] = plen
    return BETANET_OK


cdef public int betanet_noise_xk_read_message(betanet_noise_xk_t *hs, const uint8_t *msg,
                                              size_t length, uint8_t *payload, size_t cap,
                                              size_t *payload_len) noexcept nogil:
    cdef xk_state *st = <xk_state *>hs
    cdef uint8_t dummy[16]
    cdef int a
    if st == NULL or payload_len == NULL or (msg == NULL and length) or (payload == NULL and cap):
        return BETANET_E_INVALID
    payload_len[0] = 0
    a = action_of(st)
    if a < 0:
        return a
    if a != BETANET_NOISE_ACTION_READ:
        return BETANET_E_STATE
    if msg == NULL:
        return fail(st, BETANET_E_MALFORMED)
    # libsodium wants somewhere to write even an empty plaintext.
    return read_msg(st, msg, length, payload if payload != NULL else dummy, cap, payload_len)


# ---- HTX wire form ---------------------------------------------------------------------

cdef public int betanet_noise_xk_write_frame(betanet_noise_xk_t *hs, uint8_t *out, size_t cap,
                                             size_t *out_len) noexcept nogil:
    cdef size_t n = 0
    cdef int rc
    if hs == NULL or out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    out_len[0] = 0
    if cap < 2:
        rc = action_of(<xk_state *>hs)
        if rc < 0:
            return rc
        return BETANET_E_STATE if rc != BETANET_NOISE_ACTION_WRITE else BETANET_E_BUFFER_TOO_SMALL
    rc = betanet_noise_xk_write_message(hs, NULL, 0, out + 2, cap - 2, &n)
    if rc < 0:
        return rc
    out[0] = <uint8_t>(n >> 8)
    out[1] = <uint8_t>n
    out_len[0] = n + 2
    return BETANET_OK


cdef public int betanet_noise_xk_read_frame(betanet_noise_xk_t *hs, const uint8_t *inp,
                                            size_t length, size_t *consumed) noexcept nogil:
    cdef xk_state *st = <xk_state *>hs
    cdef size_t used = 0, want, take, mlen = 0, plen = 0
    cdef int a, rc
    if st == NULL or consumed == NULL or (inp == NULL and length):
        return BETANET_E_INVALID
    consumed[0] = 0
    a = action_of(st)
    if a < 0:
        return a
    if a != BETANET_NOISE_ACTION_READ:
        return BETANET_E_STATE
    while True:
        want = 2
        if st.in_len >= 2:
            mlen = (<size_t>st.inbuf[0] << 8) | st.inbuf[1]
            if mlen > NOISE_HTX_MAX:
                consumed[0] = used
                return fail(st, BETANET_E_LIMIT)
            want = 2 + mlen
            if st.in_len == want:
                break
        if used == length:
            consumed[0] = used
            return 0
        take = want - st.in_len
        if take > length - used:
            take = length - used
        memcpy(st.inbuf + st.in_len, inp + used, take)
        st.in_len += take
        used += take
    consumed[0] = used
    # The payload is decrypted in place (authenticated, then ignored) and wiped.
    rc = read_msg(st, st.inbuf + 2, mlen, st.inbuf + 2, NOISE_HTX_MAX, &plen)
    sodium_memzero(st.inbuf, sizeof(st.inbuf))
    st.in_len = 0
    return 1 if rc == BETANET_OK else rc


cdef public size_t betanet_noise_xk_pending(const betanet_noise_xk_t *hs) noexcept nogil:
    return (<const xk_state *>hs).in_len if hs != NULL else 0


# ---- results ---------------------------------------------------------------------------

cdef int split_check(const xk_state *st) noexcept nogil:
    cdef int a = action_of(st)
    if a < 0:
        return a
    return BETANET_OK if a == BETANET_NOISE_ACTION_SPLIT else BETANET_E_STATE


# After split: nothing secret stays (k1 and k2 are re-derivable from ck alone).
cdef void split_done(xk_state *st) noexcept nogil:
    wipe_secrets(st)
    st.step = 4


cdef public int betanet_noise_xk_split(betanet_noise_xk_t *hs, uint8_t *k1, uint8_t *k2,
                                       uint8_t *handshake_hash) noexcept nogil:
    cdef xk_state *st = <xk_state *>hs
    cdef int rc
    if st == NULL or k1 == NULL or k2 == NULL or handshake_hash == NULL:
        return BETANET_E_INVALID
    rc = split_check(st)
    if rc < 0:
        return rc
    hkdf2(st.ck, NULL, 0, k1, k2)
    memcpy(handshake_hash, st.h, 32)
    split_done(st)
    return BETANET_OK


cdef public int betanet_noise_xk_split_htx(betanet_noise_xk_t *hs, const betanet_htx_config_t *config,
                                           uint64_t now_ms, betanet_htx_session_t **out) noexcept nogil:
    cdef xk_state *st = <xk_state *>hs
    cdef uint8_t k1[32]
    cdef uint8_t k2[32]
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if st == NULL:
        return BETANET_E_INVALID
    rc = split_check(st)
    if rc < 0:
        return rc
    hkdf2(st.ck, NULL, 0, k1, k2)
    # Noise and HTX number the roles alike (BETANET_NOISE_INITIATOR == BETANET_HTX_INITIATOR).
    rc = betanet_htx_session_new(st.role, k1, k2, st.h, config, now_ms, out)
    sodium_memzero(k1, 32)
    sodium_memzero(k2, 32)
    if rc < 0:
        return rc
    split_done(st)
    return BETANET_OK


cdef public int betanet_noise_xk_handshake_hash(const betanet_noise_xk_t *hs, uint8_t *out) noexcept nogil:
    cdef const xk_state *st = <const xk_state *>hs
    if st == NULL or out == NULL:
        return BETANET_E_INVALID
    if st.error:
        return st.error
    if st.step < 3:
        return BETANET_E_STATE
    memcpy(out, st.h, 32)
    return BETANET_OK


cdef public int betanet_noise_xk_remote_static(const betanet_noise_xk_t *hs, uint8_t *out) noexcept nogil:
    cdef const xk_state *st = <const xk_state *>hs
    if st == NULL or out == NULL:
        return BETANET_E_INVALID
    if st.error:
        return st.error
    if st.role == BETANET_NOISE_RESPONDER and st.step < 3:
        return BETANET_E_STATE
    memcpy(out, st.rs, 32)
    return BETANET_OK
