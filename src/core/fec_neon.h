/* fec_neon.h — the GF(2^8) region dot-product kernels of fec.pyx for ARM NEON (aarch64
 * always; 32-bit ARM when the CPU reports NEON in AT_HWCAP, base.pyx), included by
 * fec_simd.h. Same contract as the x86 kernels there: out[o][off + x] = XOR_i coef(o, i) *
 * in[i][off + x] for o < G over a prefix of whole 16-byte vectors; fec.pyx does the tail.
 *
 * The multiply is the split-nibble table lookup: c * d = T_lo[d & 15] ^ T_hi[d >> 4], with
 * the two 16-entry tables per coefficient that fec.pyx already builds for PSHUFB (nib[]).
 * A 16-byte TBL (vqtbl1q_u8 on aarch64; two vtbl2_u8 halves on ARMv7) does 16 lookups.
 * Two vectors per step (32 bytes) give the core independent work between the lookups;
 * the G accumulators per vector stay in registers (aarch64 has 32 of them).
 */
#ifndef BNT_FEC_NEON_H
#define BNT_FEC_NEON_H

#if defined(__GNUC__) && (defined(__aarch64__) || (defined(__arm__) && defined(__linux__)))
#define BNT_GF_HAVE_NEON 1
#if defined(__arm__) && !defined(__ARM_NEON)
/* armhf's baseline (ARMv7 + VFPv3-D16) has no NEON: only these functions use it, and
 * fec.pyx calls them only when the kernel reported NEON (HWCAP_NEON). */
#pragma GCC push_options
#pragma GCC target("fpu=neon")
#define BNT_NEON_PRAGMA 1
#endif
#include <arm_neon.h>

static inline uint8x16_t bnt_neon_tbl16(uint8x16_t table, uint8x16_t idx) {  /* idx < 16 */
#if defined(__aarch64__)
    return vqtbl1q_u8(table, idx);
#else
    uint8x8x2_t t = {{vget_low_u8(table), vget_high_u8(table)}};
    return vcombine_u8(vtbl2_u8(t, vget_low_u8(idx)), vtbl2_u8(t, vget_high_u8(idx)));
#endif
}

/* c * d for the 16 bytes of d whose nibbles are lo and hi, tables at t (32 bytes) */
static inline uint8x16_t bnt_neon_mul(const uint8_t *t, uint8x16_t lo, uint8x16_t hi) {
    return veorq_u8(bnt_neon_tbl16(vld1q_u8(t), lo), bnt_neon_tbl16(vld1q_u8(t + 16), hi));
}

#define BNT_DEF_NEON(G)                                                                    \
static size_t bnt_gf_neon_##G(int nin, const uint8_t *nib, const uint64_t *gfni,           \
                              const uint8_t *const *in, uint8_t *const *out,               \
                              size_t off, size_t len) {                                    \
    (void)gfni;                                                                            \
    const uint8x16_t mask = vdupq_n_u8(0x0f);                                              \
    size_t x = 0;                                                                          \
    for (; x + 32 <= len; x += 32) {                                                       \
        uint8x16_t a0[G], a1[G];                                                           \
        for (int o = 0; o < G; o++) a0[o] = a1[o] = vdupq_n_u8(0);                        \
        for (int i = 0; i < nin; i++) {                                                    \
            uint8x16_t d0 = vld1q_u8(in[i] + off + x), d1 = vld1q_u8(in[i] + off + x + 16); \
            uint8x16_t l0 = vandq_u8(d0, mask), h0 = vshrq_n_u8(d0, 4);                   \
            uint8x16_t l1 = vandq_u8(d1, mask), h1 = vshrq_n_u8(d1, 4);                   \
            for (int o = 0; o < G; o++) {                                                  \
                const uint8_t *t = nib + 32 * (size_t)(o * nin + i);                       \
                a0[o] = veorq_u8(a0[o], bnt_neon_mul(t, l0, h0));                          \
                a1[o] = veorq_u8(a1[o], bnt_neon_mul(t, l1, h1));                          \
            }                                                                              \
        }                                                                                  \
        for (int o = 0; o < G; o++) {                                                      \
            vst1q_u8(out[o] + off + x, a0[o]);                                             \
            vst1q_u8(out[o] + off + x + 16, a1[o]);                                        \
        }                                                                                  \
    }                                                                                      \
    for (; x + 16 <= len; x += 16) {                                                       \
        uint8x16_t a[G];                                                                   \
        for (int o = 0; o < G; o++) a[o] = vdupq_n_u8(0);                                 \
        for (int i = 0; i < nin; i++) {                                                    \
            uint8x16_t d = vld1q_u8(in[i] + off + x);                                      \
            uint8x16_t l = vandq_u8(d, mask), h = vshrq_n_u8(d, 4);                       \
            for (int o = 0; o < G; o++)                                                    \
                a[o] = veorq_u8(a[o], bnt_neon_mul(nib + 32 * (size_t)(o * nin + i), l, h)); \
        }                                                                                  \
        for (int o = 0; o < G; o++) vst1q_u8(out[o] + off + x, a[o]);                     \
    }                                                                                      \
    return x;                                                                              \
}

BNT_DEF_NEON(1) BNT_DEF_NEON(2) BNT_DEF_NEON(3) BNT_DEF_NEON(4)
BNT_DEF_NEON(5) BNT_DEF_NEON(6) BNT_DEF_NEON(7) BNT_DEF_NEON(8)

#ifdef BNT_NEON_PRAGMA
#pragma GCC pop_options
#undef BNT_NEON_PRAGMA
#endif

static const bnt_gf_kernel bnt_gf_neon[8] = {
    bnt_gf_neon_1, bnt_gf_neon_2, bnt_gf_neon_3, bnt_gf_neon_4,
    bnt_gf_neon_5, bnt_gf_neon_6, bnt_gf_neon_7, bnt_gf_neon_8};

#else
#define BNT_GF_HAVE_NEON 0
static const bnt_gf_kernel bnt_gf_neon[8] = {0};
#endif

#endif /* BNT_FEC_NEON_H */
