/* fec_simd.h — the GF(2^8) region dot-product kernels of fec.pyx that need intrinsics
 * and target attributes (Cython cannot express either). Everything else is in fec.pyx.
 *
 * Each kernel computes, for o < G (a compile-time group size):
 *     out[o][off + x] = XOR_i coef(o, i) * in[i][off + x]      (overwrite, not accumulate)
 * over a prefix of [0, len) that is a whole number of vectors, and returns the number of
 * bytes done (the AVX-512 kernel finishes the tail with masked loads and does all of it).
 * fec.pyx does the rest with the portable scalar code.
 *
 * Coefficient tables, for output o and input i, at index t = o * nin + i (built from the
 * coefficients by bnt_gf_fill_tables below):
 *   nib[32 t .. 32 t + 15]  = coef * x      for x = 0..15 (low nibble)
 *   nib[32 t + 16 .. + 31]  = coef * (x<<4) for x = 0..15 (high nibble)
 *   gfni[t]                 = the 8x8 bit matrix of y -> coef * y for vgf2p8affineqb
 *                             (x86 only)
 * Accumulating G outputs per pass over the inputs (as ISA-L's gf_Nvect_dot_prod) keeps
 * the inputs in L1 while the G accumulators stay in registers.
 */
#ifndef BNT_FEC_SIMD_H
#define BNT_FEC_SIMD_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "bnt_gf_tables.h"   /* exp/log; the GFNI matrices on x86 */

typedef size_t (*bnt_gf_kernel)(int nin, const uint8_t *nib, const uint64_t *gfni,
                                const uint8_t *const *in, uint8_t *const *out,
                                size_t off, size_t len);

#define BNT_GF_MAX_GROUP 8

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BNT_GF_HAVE_X86 1

/* ---- AVX-512 + GFNI: 64 bytes per vector, one affine instruction per multiply --------- */
#define BNT_GFNI_UNROLL(G) ((G) <= 4 ? 4 : 2)   /* vectors per step: U*G accumulators <= 16 */
#define BNT_GFNI_PREFETCH 1024                  /* bytes ahead per input, for long regions */
/* out = acc ^ a ^ b in one instruction: the accumulation costs half an op per multiply,
 * and the vector ports, not the loads, bound this kernel on short (in-cache) shards. */
#define BNT_XOR3(acc, a, b) _mm512_ternarylogic_epi64(acc, a, b, 0x96)
/* One step of U vectors per input, two inputs per pass (their products meet in one XOR3):
 * loads, G*U affine multiplies per input, stores. PF bytes ahead are prefetched (a branch
 * in the whole-step loop, where PF is 0 for short regions; none in the masked steps). */
#define BNT_GFNI512_STEP(G, U, LOAD, STORE, PF)                                            \
    {                                                                                      \
        __m512i acc[U][G];                                                                 \
        for (int u = 0; u < U; u++)                                                        \
            for (int o = 0; o < G; o++) acc[u][o] = _mm512_setzero_si512();               \
        int i = 0;                                                                         \
        for (; i + 2 <= nin; i += 2) {                                                     \
            const uint8_t *s0 = in[i] + off + x, *s1 = in[i + 1] + off + x;               \
            __m512i d0[U], d1[U];                                                          \
            for (int u = 0; u < U; u++) {                                                  \
                if (PF) { /* constant 0 in the masked steps: no prefetch emitted */         \
                    _mm_prefetch((const char *)s0 + (PF) + 64 * u, _MM_HINT_T0);           \
                    _mm_prefetch((const char *)s1 + (PF) + 64 * u, _MM_HINT_T0);           \
                }                                                                          \
                d0[u] = LOAD(u, s0 + 64 * u);                                              \
                d1[u] = LOAD(u, s1 + 64 * u);                                              \
            }                                                                              \
            for (int o = 0; o < G; o++) {                                                  \
                __m512i a0 = _mm512_set1_epi64((long long)gfni[o * nin + i]);             \
                __m512i a1 = _mm512_set1_epi64((long long)gfni[o * nin + i + 1]);         \
                for (int u = 0; u < U; u++)                                                \
                    acc[u][o] = BNT_XOR3(acc[u][o], _mm512_gf2p8affine_epi64_epi8(d0[u], a0, 0), \
                                         _mm512_gf2p8affine_epi64_epi8(d1[u], a1, 0));     \
            }                                                                              \
        }                                                                                  \
        if (i < nin) { /* odd count: the last input alone */                               \
            const uint8_t *s0 = in[i] + off + x;                                           \
            __m512i d0[U];                                                                 \
            for (int u = 0; u < U; u++) d0[u] = LOAD(u, s0 + 64 * u);                     \
            for (int o = 0; o < G; o++) {                                                  \
                __m512i a0 = _mm512_set1_epi64((long long)gfni[o * nin + i]);             \
                for (int u = 0; u < U; u++)                                                \
                    acc[u][o] = _mm512_xor_si512(acc[u][o],                                \
                                                 _mm512_gf2p8affine_epi64_epi8(d0[u], a0, 0)); \
            }                                                                              \
        }                                                                                  \
        for (int o = 0; o < G; o++)                                                        \
            for (int u = 0; u < U; u++) STORE(u, out[o] + off + x + 64 * u, acc[u][o]);    \
    }
#define BNT_LD_FULL(u, p) _mm512_loadu_si512(p)
#define BNT_ST_FULL(u, p, v) _mm512_storeu_si512(p, v)
#define BNT_LD_MASK(u, p) _mm512_maskz_loadu_epi8(mk, p)
#define BNT_ST_MASK(u, p, v) _mm512_mask_storeu_epi8(p, mk, v)
/* Whole steps of U vectors; the tail is one more whole step ending at len, overlapping
 * bytes already done (recomputed to the same values: outputs never alias inputs), in the
 * same loop body. Regions shorter than one step go one vector at a time, the last one
 * masked. Two bodies per kernel: the text of the 8 kernels is what x86 firmware pays. */
#define BNT_DEF_GFNI512(G)                                                                 \
__attribute__((target("avx512f,avx512bw,avx512vl,gfni")))                                  \
static size_t bnt_gf_gfni512_##G(int nin, const uint8_t *nib, const uint64_t *gfni,        \
                                 const uint8_t *const *in, uint8_t *const *out,            \
                                 size_t off, size_t len) {                                 \
    enum { U = BNT_GFNI_UNROLL(G) };                                                       \
    (void)nib;                                                                             \
    size_t x = 0;                                                                          \
    if (len >= 64 * U) {                                                                   \
        for (;;) {                                                                         \
            /* long regions: 1 KiB ahead (DRAM-bound); short ones: the next (tail) step */  \
            const size_t pf = len >= 4096 ? BNT_GFNI_PREFETCH : x + 64 * U < len ? 64 * U : 0; \
            BNT_GFNI512_STEP(G, U, BNT_LD_FULL, BNT_ST_FULL, pf)                           \
            x += 64 * U;                                                                   \
            if (x >= len) break;                                                           \
            if (x + 64 * U > len) x = len - 64 * U;                                        \
        }                                                                                  \
        return len;                                                                        \
    }                                                                                      \
    for (; x < len; x += 64) {                                                             \
        const __mmask64 mk = len - x >= 64 ? ~(__mmask64)0                                 \
                           : (((__mmask64)1 << (len - x)) - 1);                            \
        BNT_GFNI512_STEP(G, 1, BNT_LD_MASK, BNT_ST_MASK, 0)                                \
    }                                                                                      \
    return len;                                                                            \
}

/* ---- GFNI with AVX2 (e.g. Alder Lake, no AVX-512): 32 bytes per vector, 2 per step ---- */
#define BNT_DEF_GFNI256(G)                                                                 \
__attribute__((target("avx2,gfni")))                                                       \
static size_t bnt_gf_gfni256_##G(int nin, const uint8_t *nib, const uint64_t *gfni,        \
                                 const uint8_t *const *in, uint8_t *const *out,            \
                                 size_t off, size_t len) {                                 \
    (void)nib;                                                                             \
    size_t done = len & ~(size_t)63;                                                       \
    for (size_t x = 0; x < done; x += 64) {                                                \
        __m256i a0[G], a1[G];                                                              \
        for (int o = 0; o < G; o++) a0[o] = a1[o] = _mm256_setzero_si256();              \
        for (int i = 0; i < nin; i++) {                                                    \
            __m256i d0 = _mm256_loadu_si256((const __m256i *)(in[i] + off + x));          \
            __m256i d1 = _mm256_loadu_si256((const __m256i *)(in[i] + off + x + 32));     \
            for (int o = 0; o < G; o++) {                                                  \
                __m256i a = _mm256_set1_epi64x((long long)gfni[o * nin + i]);             \
                a0[o] = _mm256_xor_si256(a0[o], _mm256_gf2p8affine_epi64_epi8(d0, a, 0));  \
                a1[o] = _mm256_xor_si256(a1[o], _mm256_gf2p8affine_epi64_epi8(d1, a, 0));  \
            }                                                                              \
        }                                                                                  \
        for (int o = 0; o < G; o++) {                                                      \
            _mm256_storeu_si256((__m256i *)(out[o] + off + x), a0[o]);                     \
            _mm256_storeu_si256((__m256i *)(out[o] + off + x + 32), a1[o]);                \
        }                                                                                  \
    }                                                                                      \
    return done;                                                                           \
}

/* ---- AVX2: split-nibble tables, two VPSHUFB per multiply, 32 bytes per step --------- */
#define BNT_DEF_AVX2(G)                                                                    \
__attribute__((target("avx2")))                                                            \
static size_t bnt_gf_avx2_##G(int nin, const uint8_t *nib, const uint64_t *gfni,           \
                              const uint8_t *const *in, uint8_t *const *out,               \
                              size_t off, size_t len) {                                    \
    (void)gfni;                                                                            \
    const __m256i lo_mask = _mm256_set1_epi8(0x0f);                                        \
    size_t done = len & ~(size_t)31;                                                       \
    for (size_t x = 0; x < done; x += 32) {                                                \
        __m256i acc[G];                                                                    \
        for (int o = 0; o < G; o++) acc[o] = _mm256_setzero_si256();                      \
        for (int i = 0; i < nin; i++) {                                                    \
            __m256i d = _mm256_loadu_si256((const __m256i *)(in[i] + off + x));           \
            __m256i lo = _mm256_and_si256(d, lo_mask);                                     \
            __m256i hi = _mm256_and_si256(_mm256_srli_epi64(d, 4), lo_mask);              \
            for (int o = 0; o < G; o++) {                                                  \
                const uint8_t *t = nib + 32 * (size_t)(o * nin + i);                       \
                __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t)); \
                __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16))); \
                acc[o] = _mm256_xor_si256(acc[o], _mm256_xor_si256(                        \
                    _mm256_shuffle_epi8(tl, lo), _mm256_shuffle_epi8(th, hi)));            \
            }                                                                              \
        }                                                                                  \
        for (int o = 0; o < G; o++)                                                        \
            _mm256_storeu_si256((__m256i *)(out[o] + off + x), acc[o]);                    \
    }                                                                                      \
    return done;                                                                           \
}

/* ---- SSSE3: the same with 16-byte vectors --------------------------------------------- */
#define BNT_DEF_SSSE3(G)                                                                   \
__attribute__((target("ssse3")))                                                           \
static size_t bnt_gf_ssse3_##G(int nin, const uint8_t *nib, const uint64_t *gfni,          \
                               const uint8_t *const *in, uint8_t *const *out,              \
                               size_t off, size_t len) {                                   \
    (void)gfni;                                                                            \
    const __m128i lo_mask = _mm_set1_epi8(0x0f);                                           \
    size_t done = len & ~(size_t)15;                                                       \
    for (size_t x = 0; x < done; x += 16) {                                                \
        __m128i acc[G];                                                                    \
        for (int o = 0; o < G; o++) acc[o] = _mm_setzero_si128();                          \
        for (int i = 0; i < nin; i++) {                                                    \
            __m128i d = _mm_loadu_si128((const __m128i *)(in[i] + off + x));              \
            __m128i lo = _mm_and_si128(d, lo_mask);                                        \
            __m128i hi = _mm_and_si128(_mm_srli_epi64(d, 4), lo_mask);                     \
            for (int o = 0; o < G; o++) {                                                  \
                const uint8_t *t = nib + 32 * (size_t)(o * nin + i);                       \
                acc[o] = _mm_xor_si128(acc[o], _mm_xor_si128(                              \
                    _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)t), lo),             \
                    _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(t + 16)), hi)));    \
            }                                                                              \
        }                                                                                  \
        for (int o = 0; o < G; o++) _mm_storeu_si128((__m128i *)(out[o] + off + x), acc[o]); \
    }                                                                                      \
    return done;                                                                           \
}

#define BNT_DEF_ALL(DEF) DEF(1) DEF(2) DEF(3) DEF(4) DEF(5) DEF(6) DEF(7) DEF(8)
BNT_DEF_ALL(BNT_DEF_GFNI512)
BNT_DEF_ALL(BNT_DEF_GFNI256)
BNT_DEF_ALL(BNT_DEF_AVX2)
BNT_DEF_ALL(BNT_DEF_SSSE3)

#define BNT_KERNELS(P) { P##1, P##2, P##3, P##4, P##5, P##6, P##7, P##8 }
static const bnt_gf_kernel bnt_gf_gfni512[BNT_GF_MAX_GROUP] = BNT_KERNELS(bnt_gf_gfni512_);
static const bnt_gf_kernel bnt_gf_gfni256[BNT_GF_MAX_GROUP] = BNT_KERNELS(bnt_gf_gfni256_);
static const bnt_gf_kernel bnt_gf_avx2[BNT_GF_MAX_GROUP] = BNT_KERNELS(bnt_gf_avx2_);
static const bnt_gf_kernel bnt_gf_ssse3[BNT_GF_MAX_GROUP] = BNT_KERNELS(bnt_gf_ssse3_);

#else  /* not x86-64: only the portable path */
#define BNT_GF_HAVE_X86 0
static const bnt_gf_kernel bnt_gf_gfni512[BNT_GF_MAX_GROUP] = {0};
static const bnt_gf_kernel bnt_gf_gfni256[BNT_GF_MAX_GROUP] = {0};
static const bnt_gf_kernel bnt_gf_avx2[BNT_GF_MAX_GROUP] = {0};
static const bnt_gf_kernel bnt_gf_ssse3[BNT_GF_MAX_GROUP] = {0};
#endif

#include "fec_neon.h"     /* ARM NEON kernels (ISA path 5) */

/* The kernel for a group of g (1..8) outputs on ISA path `isa`
 * (1 SSSE3, 2 AVX2, 3 AVX-512 + GFNI, 4 AVX2 + GFNI, 5 NEON). */
static inline bnt_gf_kernel bnt_gf_kernel_for(int isa, int g) {
    if (isa == 5 && g >= 1 && g <= BNT_GF_MAX_GROUP) return bnt_gf_neon[g - 1];
    if (!BNT_GF_HAVE_X86 || g < 1 || g > BNT_GF_MAX_GROUP) return 0;
    return isa == 3 ? bnt_gf_gfni512[g - 1] : isa == 4 ? bnt_gf_gfni256[g - 1]
         : isa == 2 ? bnt_gf_avx2[g - 1] : isa == 1 ? bnt_gf_ssse3[g - 1] : 0;
}

/* ---- the kernel tables, from the coefficients ---------------------------------------------
 * A nibble table is linear in the multiplicand: from the eight products c * 2^j (read off
 * exp[]), it is four broadcast words masked by index bit and XORed — a few integer ops per
 * coefficient and no 8 KB table of all 256 (flash a firmware build would carry, or RAM if
 * filled at init). The GFNI matrices are looked up (bnt_gf_affine, 2 KB, x86 only): that
 * lookup is the set-up cost of a fresh erasure pattern on the fastest path. */
/* The word whose byte x (x < 16, little-endian over two words) is the XOR of p[b] over
 * the bits b of x, i.e. c * x when p[b] = c * 2^b: each step doubles the filled span. */
static inline void bnt_gf_span4(const uint8_t *p, uint8_t *dst) {
    uint64_t w = (uint64_t)p[0] << 8;                                   /* 0, p0 */
    w |= (w ^ ((uint64_t)p[1] * 0x0101u)) << 16;                        /* .., p1, p1^p0 */
    w |= (w ^ ((uint64_t)p[2] * 0x01010101u)) << 32;                    /* .., p2^.. */
    uint64_t h = w ^ ((uint64_t)p[3] * 0x0101010101010101ULL);          /* x = 8..15 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
    h = __builtin_bswap64(h);
#endif
    memcpy(dst, &w, 8);
    memcpy(dst + 8, &h, 8);
}

static void bnt_gf_fill_nib(const uint8_t *coef, size_t cells, uint8_t *nib) {
    static const uint8_t zero[8] = {0};
    for (size_t t = 0; t < cells; t++, nib += 32) {
        uint8_t c = coef[t];
        const uint8_t *p = c ? bnt_gf_exp + bnt_gf_log[c] : zero;   /* p[j] = c * 2^j */
        bnt_gf_span4(p, nib);                                       /* c * x */
        bnt_gf_span4(p + 4, nib + 16);                              /* c * (x << 4) */
    }
}

/* Fill the tables `which` asks for (bit 1: nib, bit 2: gfni, x86 only) for `cells` coefficients. */
static inline void bnt_gf_fill_tables(const uint8_t *coef, size_t cells, uint8_t *nib,
                                      uint64_t *gfni, int which) {
    if (which & 1)
        bnt_gf_fill_nib(coef, cells, nib);
#if BNT_GF_HAVE_X86
    if (which & 2)
        for (size_t t = 0; t < cells; t++) gfni[t] = bnt_gf_affine[coef[t]];
#else
    (void)gfni;
#endif
}

#endif /* BNT_FEC_SIMD_H */
