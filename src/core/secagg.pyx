# secagg.pyx — the participant's hot path of secure aggregation (include/betanet/secagg.h,
# docs/fl.md): PRG masks (ChaCha20 under BLAKE2b-derived keys) added modulo 2^32 into
# long uint32 vectors, the X25519 pairwise seed, and quantisation with stochastic rounding.
#
# Speed: the keystream is made in blocks that stay in L1 (CHUNK words) and folded into the
# vector by plain loops over restrict pointers that the compiler vectorises; libsodium picks
# its SIMD ChaCha20 at init. On CPUs with AVX-512F, masks are added by our own 16-block
# ChaCha20 (bnt_sa_chacha16_apply: one block per vector lane, native rotates, the sum folded
# into the vector straight from registers) -- the server's unmasking is nothing but keystream,
# and libsodium has no AVX-512 ChaCha20. Same stream, tested word for word against libsodium.
# Nothing is allocated; keys and keystream are wiped on return.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy, memcmp
from bnt cimport *

# The folding loops, in C so that restrict (no aliasing) lets the compiler vectorise them,
# and the little-endian word order of the keystream on any host.
cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    static inline void bnt_sa_le32(uint32_t *w, size_t n) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (size_t i = 0; i < n; i++) w[i] = __builtin_bswap32(w[i]);
    #else
        (void)w; (void)n;
    #endif
    }
    static inline void bnt_sa_add(uint32_t *restrict v, const uint32_t *restrict k, size_t n) {
        for (size_t i = 0; i < n; i++) v[i] += k[i];
    }
    static inline void bnt_sa_sub(uint32_t *restrict v, const uint32_t *restrict k, size_t n) {
        for (size_t i = 0; i < n; i++) v[i] -= k[i];
    }
    /* acc and x may alias here (the public vec_add allows it), so no restrict. */
    static inline void bnt_sa_vadd(uint32_t *acc, const uint32_t *x, size_t n) {
        for (size_t i = 0; i < n; i++) acc[i] += x[i];
    }
    static inline void bnt_sa_vsub(uint32_t *acc, const uint32_t *x, size_t n) {
        for (size_t i = 0; i < n; i++) acc[i] -= x[i];
    }
    /* q = floor(y) + (r < frac(y) * 2^32), y = (clip(x) + c) * scale in [0, levels].
     * A NaN is counted in *bad and quantised as 0 (never converted: that would be UB). */
    #define BNT_SA_QUANT(NAME, T)                                                        \\
    static inline void NAME(uint32_t *restrict out, const T *restrict in,                \\
                            const uint32_t *restrict r, size_t n, double c, double scale, \\
                            uint32_t levels, int *bad) {                                 \\
        int b = 0;                                                                       \\
        for (size_t i = 0; i < n; i++) {                                                 \\
            double x = (double)in[i];                                                    \\
            b |= (x != x);                                                               \\
            x = (x == x) ? x : 0.0;                                                      \\
            x = x < -c ? -c : (x > c ? c : x);                                           \\
            double y = (x + c) * scale;                                                  \\
            double f = __builtin_floor(y);                                               \\
            uint64_t q = (uint64_t)f + ((double)r[i] < (y - f) * 4294967296.0);          \\
            out[i] = (uint32_t)(q > levels ? levels : q);                                \\
        }                                                                                \\
        *bad |= b;                                                                       \\
    }
    /* ChaCha20 (RFC 8439, zero nonce) of 16 consecutive blocks at once, block b in lane b;
     * the 256 keystream words are added to (sign > 0) or subtracted from v[0..256*groups). */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define BNT_SA_HAVE_AVX512 1
    #define BNT_QR(a, b, c, d)                                                            \
        a = _mm512_add_epi32(a, b); d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 16);     \
        c = _mm512_add_epi32(c, d); b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 12);     \
        a = _mm512_add_epi32(a, b); d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 8);      \
        c = _mm512_add_epi32(c, d); b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 7);
    /* stores through volatile: not removed as dead like a plain memset before return */
    static inline void bnt_sa_wipe(void *p, size_t n) {      /* n: a multiple of 8 */
        volatile uint64_t *b = (volatile uint64_t *)p;
        for (n /= 8; n; n--) *b++ = 0;
    }
    __attribute__((target("avx512f")))
    static void bnt_sa_fold4(uint32_t *restrict v, __m512i a, __m512i b, __m512i c, __m512i d,
                             size_t step, int sign) {
        /* a, b, c, d: words 0-3, 4-7, 8-11, 12-15 of four blocks (one per 128-bit lane);
         * the blocks go to v, v + step, v + 2 step, v + 3 step (step = 4 blocks) */
        __m512i ab0 = _mm512_shuffle_i32x4(a, b, 0x88), ab1 = _mm512_shuffle_i32x4(a, b, 0xdd);
        __m512i cd0 = _mm512_shuffle_i32x4(c, d, 0x88), cd1 = _mm512_shuffle_i32x4(c, d, 0xdd);
        __m512i blk[4] = {_mm512_shuffle_i32x4(ab0, cd0, 0x88), _mm512_shuffle_i32x4(ab1, cd1, 0x88),
                          _mm512_shuffle_i32x4(ab0, cd0, 0xdd), _mm512_shuffle_i32x4(ab1, cd1, 0xdd)};
        for (int i = 0; i < 4; i++) {
            __m512i x = _mm512_loadu_si512((const void *)(v + i * step));
            x = sign > 0 ? _mm512_add_epi32(x, blk[i]) : _mm512_sub_epi32(x, blk[i]);
            _mm512_storeu_si512((void *)(v + i * step), x);
        }
    }
    __attribute__((target("avx512f")))
    static void bnt_sa_chacha16_apply(uint32_t *restrict v, const uint8_t *key, uint32_t block,
                                      size_t groups, int sign) {
        uint32_t k[8];
        for (int i = 0; i < 8; i++)
            k[i] = (uint32_t)key[4 * i] | (uint32_t)key[4 * i + 1] << 8
                 | (uint32_t)key[4 * i + 2] << 16 | (uint32_t)key[4 * i + 3] << 24;
        const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        __m512i j[16], w[16];
        j[0] = _mm512_set1_epi32(0x61707865); j[1] = _mm512_set1_epi32(0x3320646e);
        j[2] = _mm512_set1_epi32(0x79622d32); j[3] = _mm512_set1_epi32(0x6b206574);
        for (int i = 0; i < 8; i++) j[4 + i] = _mm512_set1_epi32((int)k[i]);
        j[13] = j[14] = j[15] = _mm512_setzero_si512();
        for (size_t g = 0; g < groups; g++, v += 256) {
            j[12] = _mm512_add_epi32(_mm512_set1_epi32((int)(block + 16 * (uint32_t)g)), lanes);
            __m512i x0 = j[0], x1 = j[1], x2 = j[2], x3 = j[3], x4 = j[4], x5 = j[5], x6 = j[6],
                    x7 = j[7], x8 = j[8], x9 = j[9], x10 = j[10], x11 = j[11], x12 = j[12],
                    x13 = j[13], x14 = j[14], x15 = j[15];
            for (int r = 0; r < 10; r++) {
                BNT_QR(x0, x4, x8, x12) BNT_QR(x1, x5, x9, x13)
                BNT_QR(x2, x6, x10, x14) BNT_QR(x3, x7, x11, x15)
                BNT_QR(x0, x5, x10, x15) BNT_QR(x1, x6, x11, x12)
                BNT_QR(x2, x7, x8, x13) BNT_QR(x3, x4, x9, x14)
            }
            w[0] = x0; w[1] = x1; w[2] = x2; w[3] = x3; w[4] = x4; w[5] = x5; w[6] = x6;
            w[7] = x7; w[8] = x8; w[9] = x9; w[10] = x10; w[11] = x11; w[12] = x12; w[13] = x13;
            w[14] = x14; w[15] = x15;
            for (int i = 0; i < 16; i++) w[i] = _mm512_add_epi32(w[i], j[i]);
            /* transpose: lane b of w[i] is word i of block b; blocks are 16 words apart in v */
            for (int q = 0; q < 4; q++) {         /* words 4q .. 4q+3 */
                __m512i t0 = _mm512_unpacklo_epi32(w[4 * q], w[4 * q + 1]);
                __m512i t1 = _mm512_unpackhi_epi32(w[4 * q], w[4 * q + 1]);
                __m512i t2 = _mm512_unpacklo_epi32(w[4 * q + 2], w[4 * q + 3]);
                __m512i t3 = _mm512_unpackhi_epi32(w[4 * q + 2], w[4 * q + 3]);
                /* u[m]: words 4q..4q+3 of blocks m, m+4, m+8, m+12 */
                w[4 * q] = _mm512_unpacklo_epi64(t0, t2);
                w[4 * q + 1] = _mm512_unpackhi_epi64(t0, t2);
                w[4 * q + 2] = _mm512_unpacklo_epi64(t1, t3);
                w[4 * q + 3] = _mm512_unpackhi_epi64(t1, t3);
            }
            for (int m = 0; m < 4; m++)            /* blocks m, m+4, m+8, m+12 */
                bnt_sa_fold4(v + 16 * m, w[m], w[4 + m], w[8 + m], w[12 + m], 64, sign);
        }
        bnt_sa_wipe(w, sizeof(w));
        bnt_sa_wipe(j, sizeof(j));             /* j[4..11] is the key */
        bnt_sa_wipe(k, sizeof(k));
    }
    static inline int bnt_sa_avx512(void) { return __builtin_cpu_supports("avx512f"); }
    #else
    static inline void bnt_sa_chacha16_apply(uint32_t *v, const uint8_t *key, uint32_t block,
                                             size_t groups, int sign) {
        (void)v; (void)key; (void)block; (void)groups; (void)sign;
    }
    static inline int bnt_sa_avx512(void) { return 0; }
    #endif
    BNT_SA_QUANT(bnt_sa_quant_f32, float)
    BNT_SA_QUANT(bnt_sa_quant_f64, double)
    static inline void bnt_sa_deq_f32(float *restrict out, const uint32_t *restrict s, size_t n,
                                      double step, double shift) {
        for (size_t i = 0; i < n; i++) out[i] = (float)((double)s[i] * step - shift);
    }
    static inline void bnt_sa_deq_f64(double *restrict out, const uint32_t *restrict s, size_t n,
                                      double step, double shift) {
        for (size_t i = 0; i < n; i++) out[i] = (double)s[i] * step - shift;
    }
    static const unsigned char bnt_sa_prg_label[21] = "betanet/secagg/v1/prg";
    static const unsigned char bnt_sa_pair_label[22] = "betanet/secagg/v1/pair";
    static const unsigned char bnt_sa_zero_nonce[12] = {0};
    static const uint64_t bnt_sa_max_words = UINT64_C(1) << 36;   /* 2^32 blocks of 16 words */
    """
    void bnt_sa_le32(uint32_t *w, size_t n) nogil
    void bnt_sa_add(uint32_t *v, const uint32_t *k, size_t n) nogil
    void bnt_sa_chacha16_apply(uint32_t *v, const uint8_t *key, uint32_t block, size_t groups,
                               int sign) nogil
    int bnt_sa_avx512() nogil
    void bnt_sa_sub(uint32_t *v, const uint32_t *k, size_t n) nogil
    void bnt_sa_vadd(uint32_t *acc, const uint32_t *x, size_t n) nogil
    void bnt_sa_vsub(uint32_t *acc, const uint32_t *x, size_t n) nogil
    void bnt_sa_quant_f32(uint32_t *out, const float *inp, const uint32_t *r, size_t n,
                          double c, double scale, uint32_t levels, int *bad) nogil
    void bnt_sa_quant_f64(uint32_t *out, const double *inp, const uint32_t *r, size_t n,
                          double c, double scale, uint32_t levels, int *bad) nogil
    void bnt_sa_deq_f32(float *out, const uint32_t *s, size_t n, double step, double shift) nogil
    void bnt_sa_deq_f64(double *out, const uint32_t *s, size_t n, double step, double shift) nogil
    const unsigned char *bnt_sa_prg_label
    const unsigned char *bnt_sa_pair_label
    const unsigned char *bnt_sa_zero_nonce
    const uint64_t bnt_sa_max_words

cdef enum:
    GROUP = 32               # keys derived at once by mask_add_many (1 KiB on the stack)
    SEED = 32
    KEY = 32
    PRG_LABEL = 21
    PAIR_LABEL = 22
    CHUNK = 2048             # keystream words per block: 8 KiB, stays in L1 with the vector
    # what stream_apply does with each block of keystream
    OP_EXPAND = 0
    OP_ADD = 1
    OP_SUB = 2
    OP_QUANT_F32 = 3
    OP_QUANT_F64 = 4

cdef inline bint finite_pos(double c) noexcept nogil:
    return c > 0.0 and c <= 1.7976931348623157e308     # false for NaN and inf


cdef inline bint clip_ok(double c, uint32_t levels) noexcept nogil:
    # 2c and the scale levels / 2c finite too: an infinite one makes y NaN (inf * 0), and
    # converting that to an integer is undefined behaviour.
    return finite_pos(c) and finite_pos(2.0 * c) and levels >= 1 and finite_pos(levels / (2.0 * c))


cdef int derive(uint8_t *key, const uint8_t *seed, unsigned int purpose,
                uint64_t round_id) noexcept nogil:
    cdef uint8_t msg[PRG_LABEL + 9]
    cdef int i
    memcpy(msg, bnt_sa_prg_label, PRG_LABEL)
    msg[PRG_LABEL] = <uint8_t>purpose
    for i in range(8):
        msg[PRG_LABEL + 1 + i] = <uint8_t>(round_id >> (8 * i))
    if crypto_generichash(key, KEY, msg, PRG_LABEL + 9, seed, SEED) != 0:
        return BETANET_E_CRYPTO
    return BETANET_OK


cdef int check_stream(const uint8_t *seed, size_t seed_len, unsigned int purpose,
                      size_t n, uint64_t offset) noexcept nogil:
    """Validate a stream request and make sure the library is initialised."""
    cdef int rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    if seed == NULL or seed_len != SEED or purpose < 1 or purpose > 255:
        return BETANET_E_INVALID
    # offset + n <= 2^36, written so that neither side can overflow
    if offset > bnt_sa_max_words or <uint64_t>n > bnt_sa_max_words - offset:
        return BETANET_E_LIMIT
    return BETANET_OK


cdef inline void keystream_block(uint32_t *ks, const uint8_t *key, uint64_t pos,
                                 size_t skip, size_t take) noexcept nogil:
    """ks[skip .. skip+take) = words pos .. pos+take of the stream under key; pos & 15 == skip."""
    memset(ks, 0, (skip + take) * 4)
    # block counter pos/16 < 2^32 and the request ends by 2^36 words (check_stream)
    crypto_stream_chacha20_ietf_xor_ic(<unsigned char *>ks, <unsigned char *>ks,
                                       (skip + take) * 4, bnt_sa_zero_nonce,
                                       <uint32_t>(pos >> 4), key)
    bnt_sa_le32(ks + skip, take)


cdef inline void mask_block(uint32_t *dst, const uint8_t *key, uint64_t pos, size_t skip,
                            size_t take, int sign, uint32_t *ks, bint fast) noexcept nogil:
    """dst[0 .. take) +-= words pos .. pos+take of the stream under key (pos & 15 == skip);
    whole groups of 16 ChaCha20 blocks by the AVX-512 kernel when `fast`."""
    cdef size_t groups = 0
    if fast and skip == 0:
        groups = take // 256
        if groups:
            bnt_sa_chacha16_apply(dst, key, <uint32_t>(pos >> 4), groups, sign)
            dst += groups * 256
            pos += groups * 256
            take -= groups * 256
    if take:
        keystream_block(ks, key, pos, skip, take)
        if sign == 1:
            bnt_sa_add(dst, ks + skip, take)
        else:
            bnt_sa_sub(dst, ks + skip, take)


cdef int stream_apply(int op, void *dst, const void *src, size_t n, const uint8_t *seed,
                      unsigned int purpose, uint64_t round_id, uint64_t offset,
                      double c, double scale, uint32_t levels, int *bad) noexcept nogil:
    """Run `op` over words offset..offset+n-1 of the (seed, purpose, round_id) stream,
    one L1-sized block of keystream at a time. Arguments are already validated."""
    cdef uint8_t key[KEY]
    cdef uint32_t ks[CHUNK]
    cdef size_t done = 0, take, skip
    cdef uint64_t pos = offset
    cdef bint fast = bnt_sa_avx512()
    cdef int rc = derive(key, seed, purpose, round_id)
    if rc != BETANET_OK:
        sodium_memzero(key, KEY)
        return rc
    while done < n:
        skip = <size_t>(pos & 15)          # words to drop from the first ChaCha20 block
        take = CHUNK - skip
        if take > n - done:
            take = n - done
        if op == OP_ADD or op == OP_SUB:
            mask_block(<uint32_t *>dst + done, key, pos, skip, take, 1 if op == OP_ADD else -1,
                       ks, fast)
            done += take
            pos += take
            continue
        keystream_block(ks, key, pos, skip, take)
        if op == OP_EXPAND:
            memcpy(<uint32_t *>dst + done, ks + skip, take * 4)
        elif op == OP_QUANT_F32:
            bnt_sa_quant_f32(<uint32_t *>dst + done, <const float *>src + done, ks + skip, take,
                             c, scale, levels, bad)
        else:
            bnt_sa_quant_f64(<uint32_t *>dst + done, <const double *>src + done, ks + skip, take,
                             c, scale, levels, bad)
        done += take
        pos += take
    sodium_memzero(ks, sizeof(ks))
    sodium_memzero(key, KEY)
    return BETANET_OK


# ---- public API ----------------------------------------------------------------------

cdef public size_t betanet_secagg_seed_bytes() noexcept nogil:
    return SEED


cdef public int betanet_secagg_derive_key(uint8_t *key, size_t key_len, const uint8_t *seed,
                                          size_t seed_len, unsigned int purpose,
                                          uint64_t round_id) noexcept nogil:
    cdef int rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    if key == NULL or key_len < KEY or seed == NULL or seed_len != SEED or purpose < 1 or purpose > 255:
        return BETANET_E_INVALID
    return derive(key, seed, purpose, round_id)


cdef public int betanet_secagg_pair_seed(uint8_t *seed, size_t seed_len, const uint8_t *sk,
                                         size_t sk_len, const uint8_t *peer_pk,
                                         size_t peer_pk_len) noexcept nogil:
    cdef uint8_t shared[32]
    cdef uint8_t msg[PAIR_LABEL + 64]
    cdef uint8_t own_pk[32]
    cdef int rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    if (seed == NULL or seed_len != SEED or sk == NULL or sk_len != 32 or peer_pk == NULL
            or peer_pk_len != 32):
        return BETANET_E_INVALID
    if crypto_scalarmult_base(own_pk, sk) != 0:
        sodium_memzero(own_pk, 32)
        return BETANET_E_CRYPTO
    if crypto_scalarmult(shared, sk, peer_pk) != 0:     # all-zero result: low-order point
        sodium_memzero(shared, 32)
        return BETANET_E_MALFORMED
    memcpy(msg, bnt_sa_pair_label, PAIR_LABEL)
    if memcmp(own_pk, peer_pk, 32) <= 0:
        memcpy(msg + PAIR_LABEL, own_pk, 32)
        memcpy(msg + PAIR_LABEL + 32, peer_pk, 32)
    else:
        memcpy(msg + PAIR_LABEL, peer_pk, 32)
        memcpy(msg + PAIR_LABEL + 32, own_pk, 32)
    rc = crypto_generichash(seed, SEED, msg, PAIR_LABEL + 64, shared, 32)
    sodium_memzero(shared, 32)
    return BETANET_OK if rc == 0 else BETANET_E_CRYPTO


cdef public int betanet_secagg_mask_expand(uint32_t *out, size_t n, const uint8_t *seed,
                                           size_t seed_len, unsigned int purpose,
                                           uint64_t round_id, uint64_t offset) noexcept nogil:
    cdef int rc = check_stream(seed, seed_len, purpose, n, offset)
    if rc != BETANET_OK:
        return rc
    if out == NULL and n > 0:
        return BETANET_E_INVALID
    return stream_apply(OP_EXPAND, out, NULL, n, seed, purpose, round_id, offset, 0.0, 0.0, 0, NULL)


cdef public int betanet_secagg_mask_add(uint32_t *vec, size_t n, const uint8_t *seed,
                                        size_t seed_len, unsigned int purpose, uint64_t round_id,
                                        uint64_t offset, int sign) noexcept nogil:
    cdef int rc = check_stream(seed, seed_len, purpose, n, offset)
    if rc != BETANET_OK:
        return rc
    if (vec == NULL and n > 0) or (sign != 1 and sign != -1):
        return BETANET_E_INVALID
    return stream_apply(OP_ADD if sign == 1 else OP_SUB, vec, NULL, n, seed, purpose, round_id,
                        offset, 0.0, 0.0, 0, NULL)


cdef public int betanet_secagg_mask_add_many(uint32_t *vec, size_t n, const uint8_t *seeds,
                                             size_t seeds_len, const int *signs, size_t count,
                                             unsigned int purpose, uint64_t round_id,
                                             uint64_t offset) noexcept nogil:
    cdef uint8_t keys[GROUP * KEY]
    cdef uint32_t ks[CHUNK]
    cdef size_t g, j, m, done, take, skip
    cdef uint64_t pos
    cdef bint fast = bnt_sa_avx512()
    cdef int rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    if purpose < 1 or purpose > 255 or (vec == NULL and n > 0):
        return BETANET_E_INVALID
    if count > (<size_t>-1) / SEED or seeds_len != count * SEED:
        return BETANET_E_INVALID          # also a seeds_len with no seeds
    if count > 0 and (seeds == NULL or signs == NULL):
        return BETANET_E_INVALID
    if offset > bnt_sa_max_words or <uint64_t>n > bnt_sa_max_words - offset:
        return BETANET_E_LIMIT
    for j in range(count):
        if signs[j] != 1 and signs[j] != -1:
            return BETANET_E_INVALID
    g = 0
    while g < count:                 # seeds in groups of GROUP: their keys fit on the stack
        m = count - g
        if m > GROUP:
            m = GROUP
        for j in range(m):
            rc = derive(keys + j * KEY, seeds + (g + j) * SEED, purpose, round_id)
            if rc != BETANET_OK:     # only if libsodium's BLAKE2b fails: nothing added yet
                sodium_memzero(keys, sizeof(keys))
                return rc
        done = 0
        pos = offset
        while done < n:              # each block of vec takes all m masks while in L1
            skip = <size_t>(pos & 15)
            take = CHUNK - skip
            if take > n - done:
                take = n - done
            for j in range(m):
                mask_block(vec + done, keys + j * KEY, pos, skip, take, signs[g + j], ks, fast)
            done += take
            pos += take
        g += m
    sodium_memzero(ks, sizeof(ks))
    sodium_memzero(keys, sizeof(keys))
    return BETANET_OK


cdef public int betanet_secagg_vec_add(uint32_t *acc, const uint32_t *x, size_t n,
                                       int sign) noexcept nogil:
    if ((acc == NULL or x == NULL) and n > 0) or (sign != 1 and sign != -1):
        return BETANET_E_INVALID
    if sign == 1:
        bnt_sa_vadd(acc, x, n)
    else:
        bnt_sa_vsub(acc, x, n)
    return BETANET_OK


cdef int quantize(int op, uint32_t *out, const void *inp, size_t n, double clip, uint32_t levels,
                  const uint8_t *seed, size_t seed_len, uint64_t round_id,
                  uint64_t offset) noexcept nogil:
    cdef int bad = 0
    cdef size_t i
    cdef int rc = check_stream(seed, seed_len, 3, n, offset)     # BETANET_SECAGG_PURPOSE_ROUNDING
    if rc != BETANET_OK:
        return rc
    if (n > 0 and (out == NULL or inp == NULL)) or not clip_ok(clip, levels):
        return BETANET_E_INVALID
    rc = stream_apply(op, out, inp, n, seed, 3, round_id, offset, clip,
                      <double>levels / (2.0 * clip), levels, &bad)
    if rc == BETANET_OK and bad:
        for i in range(n):          # a loop, not memset(n * 4): no size product to overflow
            out[i] = 0
        rc = BETANET_E_INVALID
    return rc


cdef public int betanet_secagg_quantize_f32(uint32_t *out, const float *inp, size_t n, double clip,
                                            uint32_t levels, const uint8_t *seed, size_t seed_len,
                                            uint64_t round_id, uint64_t offset) noexcept nogil:
    return quantize(OP_QUANT_F32, out, inp, n, clip, levels, seed, seed_len, round_id, offset)


cdef public int betanet_secagg_quantize_f64(uint32_t *out, const double *inp, size_t n, double clip,
                                            uint32_t levels, const uint8_t *seed, size_t seed_len,
                                            uint64_t round_id, uint64_t offset) noexcept nogil:
    return quantize(OP_QUANT_F64, out, inp, n, clip, levels, seed, seed_len, round_id, offset)


cdef int check_dequantize(const void *out, const uint32_t *s, size_t n, double clip,
                          uint32_t levels, uint32_t count) noexcept nogil:
    if (n > 0 and (out == NULL or s == NULL)) or not clip_ok(clip, levels) or count < 1:
        return BETANET_E_INVALID
    if <uint64_t>count * <uint64_t>levels > <uint64_t>4294967295UL:
        return BETANET_E_LIMIT
    return BETANET_OK


cdef public int betanet_secagg_dequantize_f32(float *out, const uint32_t *s, size_t n, double clip,
                                              uint32_t levels, uint32_t count) noexcept nogil:
    cdef int rc = check_dequantize(out, s, n, clip, levels, count)
    if rc == BETANET_OK:
        bnt_sa_deq_f32(out, s, n, 2.0 * clip / levels, count * clip)
    return rc


cdef public int betanet_secagg_dequantize_f64(double *out, const uint32_t *s, size_t n, double clip,
                                              uint32_t levels, uint32_t count) noexcept nogil:
    cdef int rc = check_dequantize(out, s, n, clip, levels, count)
    if rc == BETANET_OK:
        bnt_sa_deq_f64(out, s, n, 2.0 * clip / levels, count * clip)
    return rc
