/* x25519_mb.h — eight X25519 scalar multiplications at once on AVX-512 IFMA.
 *
 * One 64-bit lane of each zmm register per scalar multiplication. A field element mod
 * p = 2^255 - 19 is 5 limbs of 52 bits (radix 2^52), limb i of all 8 lanes in one zmm
 * register; products use vpmadd52luq / vpmadd52huq, which read only bits 0..51 of their
 * inputs, so every multiplication input is "normalised": each limb < 2^52 (the value may
 * exceed p; it is reduced fully only at the end). RFC 7748 Montgomery ladder (255 steps,
 * conditional swaps by lane masks, no secret-dependent branches or addresses), inversion
 * by Fermat (z^(p-2)), canonical output. Same semantics as libsodium's crypto_scalarmult:
 * scalars clamped, bit 255 of u ignored, non-canonical u accepted, and status -1 for a lane
 * whose output is all zero (then its output is all zero; libsodium may leave it unwritten).
 *
 * Only what Cython cannot express lives here (intrinsics, target attributes). Callers
 * check bnt_x25519_mb_cpu() (and betanet_cpu_restrict) before calling bnt_x25519_mb8. */
#ifndef BNT_X25519_MB_H
#define BNT_X25519_MB_H
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BNT_HAVE_X25519_MB 1
#define BNT_MB_TARGET __attribute__((target("avx512f,avx512ifma,avx512vl")))
#define BNT_MB_INLINE static inline __attribute__((always_inline, target("avx512f,avx512ifma,avx512vl")))

/* 1 if the CPU can run the kernel (AVX-512F + IFMA). */
static inline int bnt_x25519_mb_cpu(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}

typedef struct { __m512i l[5]; } bnt_fe8;

#define BNT_M52 0xFFFFFFFFFFFFFULL
#define BNT_M47 0x7FFFFFFFFFFFULL

/* Make every limb < 2^52 (value kept mod p). Input limbs < 2^63. The bits of limb 4 from
 * 2^47 up (weight 2^255) fold into limb 0 times 19 first, then one carry chain 0 -> 4:
 * limb 4 ends < 2^47 + 2^12. */
BNT_MB_INLINE void bnt_fe8_norm(bnt_fe8 *a) {
    const __m512i m52 = _mm512_set1_epi64(BNT_M52), m47 = _mm512_set1_epi64(BNT_M47);
    __m512i c = _mm512_srli_epi64(a->l[4], 47);
    a->l[4] = _mm512_and_si512(a->l[4], m47);
    a->l[0] = _mm512_madd52lo_epu64(a->l[0], c, _mm512_set1_epi64(19));     /* c < 2^17 */
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 4; i++) {
        c = _mm512_srli_epi64(a->l[i], 52);
        a->l[i] = _mm512_and_si512(a->l[i], m52);
        a->l[i + 1] = _mm512_add_epi64(a->l[i + 1], c);
    }
}

BNT_MB_INLINE void bnt_fe8_add(bnt_fe8 *r, const bnt_fe8 *a, const bnt_fe8 *b) {
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) r->l[i] = _mm512_add_epi64(a->l[i], b->l[i]);
    bnt_fe8_norm(r);
}

/* r = a - b + 64p: every limb of 64p is >= 2^52 > a normalised limb of b. */
BNT_MB_INLINE void bnt_fe8_sub(bnt_fe8 *r, const bnt_fe8 *a, const bnt_fe8 *b) {
    static const uint64_t p64[5] = {64 * (BNT_M52 - 18), 64 * BNT_M52, 64 * BNT_M52, 64 * BNT_M52, 64 * BNT_M47};
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++)
        r->l[i] = _mm512_sub_epi64(_mm512_add_epi64(a->l[i], _mm512_set1_epi64((long long)p64[i])), b->l[i]);
    bnt_fe8_norm(r);
}

/* Fold a 10-position product z (each < 2^57, position k has weight 2^(52k)) to 5 limbs:
 * 2^260 = 608 (mod p). */
BNT_MB_INLINE void bnt_fe8_fold(bnt_fe8 *r, __m512i z[10]) {
    const __m512i k608 = _mm512_set1_epi64(608);
    __m512i top = _mm512_setzero_si512();
    _Pragma("GCC unroll 25")
    for (int k = 0; k < 5; k++) {
        __m512i h = z[k + 5], hh = _mm512_srli_epi64(h, 52);
        z[k] = _mm512_madd52lo_epu64(z[k], h, k608);             /* 608 * (h mod 2^52), low */
        __m512i up = _mm512_madd52hi_epu64(_mm512_setzero_si512(), h, k608);
        up = _mm512_madd52lo_epu64(up, hh, k608);                  /* 608 * (h >> 52) */
        if (k < 4) z[k + 1] = _mm512_add_epi64(z[k + 1], up);
        else top = up;                                             /* weight 2^260 again */
    }
    z[0] = _mm512_madd52lo_epu64(z[0], top, k608);
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) r->l[i] = z[i];
    bnt_fe8_norm(r);
}

BNT_MB_INLINE void bnt_fe8_mul(bnt_fe8 *r, const bnt_fe8 *a, const bnt_fe8 *b) {
    __m512i z[10];
    _Pragma("GCC unroll 25")
    for (int k = 0; k < 10; k++) z[k] = _mm512_setzero_si512();
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++)
        _Pragma("GCC unroll 25")
        for (int j = 0; j < 5; j++) {
            z[i + j] = _mm512_madd52lo_epu64(z[i + j], a->l[i], b->l[j]);
            z[i + j + 1] = _mm512_madd52hi_epu64(z[i + j + 1], a->l[i], b->l[j]);
        }
    bnt_fe8_fold(r, z);
}

BNT_MB_INLINE void bnt_fe8_sqr(bnt_fe8 *r, const bnt_fe8 *a) {
    __m512i z[10];
    _Pragma("GCC unroll 25")
    for (int k = 0; k < 10; k++) z[k] = _mm512_setzero_si512();
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++)
        _Pragma("GCC unroll 25")
        for (int j = i + 1; j < 5; j++) {
            z[i + j] = _mm512_madd52lo_epu64(z[i + j], a->l[i], a->l[j]);
            z[i + j + 1] = _mm512_madd52hi_epu64(z[i + j + 1], a->l[i], a->l[j]);
        }
    _Pragma("GCC unroll 25")
    for (int k = 0; k < 10; k++) z[k] = _mm512_add_epi64(z[k], z[k]);
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) {
        z[2 * i] = _mm512_madd52lo_epu64(z[2 * i], a->l[i], a->l[i]);
        z[2 * i + 1] = _mm512_madd52hi_epu64(z[2 * i + 1], a->l[i], a->l[i]);
    }
    bnt_fe8_fold(r, z);
}

/* r = a * 121665 + c (RFC 7748's a24 term; a, c normalised). */
BNT_MB_INLINE void bnt_fe8_mul_a24_add(bnt_fe8 *r, const bnt_fe8 *a, const bnt_fe8 *c) {
    const __m512i k = _mm512_set1_epi64(121665), k608 = _mm512_set1_epi64(608);
    __m512i t[5], top;
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) t[i] = _mm512_madd52lo_epu64(c->l[i], a->l[i], k);
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 4; i++) t[i + 1] = _mm512_madd52hi_epu64(t[i + 1], a->l[i], k);
    top = _mm512_madd52hi_epu64(_mm512_setzero_si512(), a->l[4], k);
    t[0] = _mm512_madd52lo_epu64(t[0], top, k608);
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) r->l[i] = t[i];
    bnt_fe8_norm(r);
}

BNT_MB_INLINE void bnt_fe8_sqr_n(bnt_fe8 *r, const bnt_fe8 *a, int n) {
    bnt_fe8_sqr(r, a);
    for (int i = 1; i < n; i++) bnt_fe8_sqr(r, r);
}

/* r = z^(p-2) (ref10's addition chain). */
static BNT_MB_TARGET void bnt_fe8_invert(bnt_fe8 *r, const bnt_fe8 *z) {
    bnt_fe8 t0, t1, t2, t3;
    bnt_fe8_sqr(&t0, z);
    bnt_fe8_sqr_n(&t1, &t0, 2);
    bnt_fe8_mul(&t1, z, &t1);
    bnt_fe8_mul(&t0, &t0, &t1);
    bnt_fe8_sqr(&t2, &t0);
    bnt_fe8_mul(&t1, &t1, &t2);
    bnt_fe8_sqr_n(&t2, &t1, 5);
    bnt_fe8_mul(&t1, &t2, &t1);
    bnt_fe8_sqr_n(&t2, &t1, 10);
    bnt_fe8_mul(&t2, &t2, &t1);
    bnt_fe8_sqr_n(&t3, &t2, 20);
    bnt_fe8_mul(&t2, &t3, &t2);
    bnt_fe8_sqr_n(&t2, &t2, 10);
    bnt_fe8_mul(&t1, &t2, &t1);
    bnt_fe8_sqr_n(&t2, &t1, 50);
    bnt_fe8_mul(&t2, &t2, &t1);
    bnt_fe8_sqr_n(&t3, &t2, 100);
    bnt_fe8_mul(&t2, &t3, &t2);
    bnt_fe8_sqr_n(&t2, &t2, 50);
    bnt_fe8_mul(&t1, &t2, &t1);
    bnt_fe8_sqr_n(&t1, &t1, 5);
    bnt_fe8_mul(r, &t1, &t0);
}

/* Fully reduce a normalised element to [0, p). */
BNT_MB_INLINE void bnt_fe8_canon(bnt_fe8 *a) {
    const __m512i m52 = _mm512_set1_epi64(BNT_M52), m47 = _mm512_set1_epi64(BNT_M47);
    bnt_fe8_norm(a);                        /* value < 2^255 + 2^(255-47+12): one more fold */
    bnt_fe8_norm(a);                        /* now value < 2^255 */
    /* t = a + 19; a >= p exactly when t >= 2^255; then a - p = t - 2^255. */
    __m512i t[5], c;
    t[0] = _mm512_add_epi64(a->l[0], _mm512_set1_epi64(19));
    _Pragma("GCC unroll 25")
    for (int i = 1; i < 5; i++) t[i] = a->l[i];
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 4; i++) {
        c = _mm512_srli_epi64(t[i], 52);
        t[i] = _mm512_and_si512(t[i], m52);
        t[i + 1] = _mm512_add_epi64(t[i + 1], c);
    }
    __mmask8 ge = _mm512_test_epi64_mask(t[4], _mm512_set1_epi64(1ULL << 47));
    t[4] = _mm512_and_si512(t[4], m47);
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) a->l[i] = _mm512_mask_blend_epi64(ge, a->l[i], t[i]);
}

BNT_MB_INLINE void bnt_fe8_cswap(__mmask8 m, bnt_fe8 *a, bnt_fe8 *b) {
    _Pragma("GCC unroll 25")
    for (int i = 0; i < 5; i++) {
        __m512i x = a->l[i], y = b->l[i];
        a->l[i] = _mm512_mask_blend_epi64(m, x, y);
        b->l[i] = _mm512_mask_blend_epi64(m, y, x);
    }
}

static inline uint64_t bnt_mb_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;               /* x86-64 is little-endian */
}

/* out, scalars, points: 8 consecutive 32-byte values each (lane j at offset 32 j).
 * status[j] = 0, or -1 when lane j's output is all zero (low-order point). */
static BNT_MB_TARGET void bnt_x25519_mb8(uint8_t *out, const uint8_t *scalars, const uint8_t *points,
                                          int *status) {
    uint64_t w[4][8] __attribute__((aligned(64)));
    __m512i k[4], x;
    bnt_fe8 x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb, t;
    const __m512i m52 = _mm512_set1_epi64(BNT_M52);
    __mmask8 swap = 0, bit;
    int i, j, pos;

    for (j = 0; j < 8; j++) {                           /* clamped scalars, word-sliced */
        for (i = 0; i < 4; i++) w[i][j] = bnt_mb_le64(scalars + 32 * j + 8 * i);
        w[0][j] &= ~(uint64_t)7;
        w[3][j] &= 0x7FFFFFFFFFFFFFFFULL;
        w[3][j] |= 0x4000000000000000ULL;
    }
    for (i = 0; i < 4; i++) k[i] = _mm512_load_si512(w[i]);
    for (j = 0; j < 8; j++)
        for (i = 0; i < 4; i++) w[i][j] = bnt_mb_le64(points + 32 * j + 8 * i);
    {                                                   /* u, bit 255 masked, to radix 2^52 */
        __m512i w0 = _mm512_load_si512(w[0]), w1 = _mm512_load_si512(w[1]);
        __m512i w2 = _mm512_load_si512(w[2]), w3 = _mm512_load_si512(w[3]);
        x1.l[0] = _mm512_and_si512(w0, m52);
        x1.l[1] = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(w0, 52), _mm512_slli_epi64(w1, 12)), m52);
        x1.l[2] = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(w1, 40), _mm512_slli_epi64(w2, 24)), m52);
        x1.l[3] = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(w2, 28), _mm512_slli_epi64(w3, 36)), m52);
        x1.l[4] = _mm512_and_si512(_mm512_srli_epi64(w3, 16), _mm512_set1_epi64(BNT_M47));
    }
    for (i = 0; i < 5; i++) {
        x2.l[i] = _mm512_setzero_si512();
        z2.l[i] = _mm512_setzero_si512();
        z3.l[i] = _mm512_setzero_si512();
        x3.l[i] = x1.l[i];
    }
    x2.l[0] = _mm512_set1_epi64(1);
    z3.l[0] = _mm512_set1_epi64(1);

    for (pos = 254; pos >= 0; pos--) {
        bit = _mm512_test_epi64_mask(k[pos >> 6], _mm512_set1_epi64((long long)(1ULL << (pos & 63))));
        swap ^= bit;
        bnt_fe8_cswap(swap, &x2, &x3);
        bnt_fe8_cswap(swap, &z2, &z3);
        swap = bit;
        bnt_fe8_add(&a, &x2, &z2);
        bnt_fe8_sqr(&aa, &a);
        bnt_fe8_sub(&b, &x2, &z2);
        bnt_fe8_sqr(&bb, &b);
        bnt_fe8_sub(&e, &aa, &bb);
        bnt_fe8_add(&c, &x3, &z3);
        bnt_fe8_sub(&d, &x3, &z3);
        bnt_fe8_mul(&da, &d, &a);
        bnt_fe8_mul(&cb, &c, &b);
        bnt_fe8_add(&t, &da, &cb);
        bnt_fe8_sqr(&x3, &t);
        bnt_fe8_sub(&t, &da, &cb);
        bnt_fe8_sqr(&t, &t);
        bnt_fe8_mul(&z3, &x1, &t);
        bnt_fe8_mul(&x2, &aa, &bb);
        bnt_fe8_mul_a24_add(&t, &e, &aa);
        bnt_fe8_mul(&z2, &e, &t);
    }
    bnt_fe8_cswap(swap, &x2, &x3);
    bnt_fe8_cswap(swap, &z2, &z3);

    bnt_fe8_invert(&t, &z2);
    bnt_fe8_mul(&x2, &x2, &t);
    bnt_fe8_canon(&x2);

    x = _mm512_or_si512(x2.l[0], _mm512_slli_epi64(x2.l[1], 52));
    _mm512_store_si512(w[0], x);
    x = _mm512_or_si512(_mm512_srli_epi64(x2.l[1], 12), _mm512_slli_epi64(x2.l[2], 40));
    _mm512_store_si512(w[1], x);
    x = _mm512_or_si512(_mm512_srli_epi64(x2.l[2], 24), _mm512_slli_epi64(x2.l[3], 28));
    _mm512_store_si512(w[2], x);
    x = _mm512_or_si512(_mm512_srli_epi64(x2.l[3], 36), _mm512_slli_epi64(x2.l[4], 16));
    _mm512_store_si512(w[3], x);
    for (j = 0; j < 8; j++) {
        uint64_t any = 0;
        for (i = 0; i < 4; i++) {
            memcpy(out + 32 * j + 8 * i, &w[i][j], 8);
            any |= w[i][j];
        }
        /* -1 exactly when all 256 bits are zero, without a branch on the value. */
        status[j] = (int)((any | (0 - any)) >> 63) - 1;
    }
    /* Scalars and results were on the stack: wipe (registers are the compiler's). */
    {
        volatile uint64_t *vw = &w[0][0];
        for (i = 0; i < 32; i++) vw[i] = 0;
        k[0] = k[1] = k[2] = k[3] = _mm512_setzero_si512();
    }
}

#else
#define BNT_HAVE_X25519_MB 0
static inline int bnt_x25519_mb_cpu(void) { return 0; }
static inline void bnt_x25519_mb8(uint8_t *out, const uint8_t *scalars, const uint8_t *points, int *status) {
    (void)out; (void)scalars; (void)points;
    _Pragma("GCC unroll 25")
    for (int j = 0; j < 8; j++) status[j] = -2;      /* never called: bnt_x25519_mb_cpu() is 0 */
}
#endif
#endif
