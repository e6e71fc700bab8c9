/* bnt_fe25519.h — the one field operation Sphinx creation needs that libsodium does not
 * export: Edwards y → Montgomery u = (1 + y) / (1 − y) mod 2^255 − 19.
 *
 * Why: a sender needs α_i = u(r_i·G) for every hop. libsodium's fixed-base Edwards
 * multiplication (crypto_scalarmult_ed25519_base_noclamp, precomputed tables) is about
 * twice as fast as X25519_base, but returns an Edwards encoding, and libsodium's own
 * converter (crypto_sign_ed25519_pk_to_curve25519) adds a full subgroup-check
 * multiplication. This file is radix-2^51 arithmetic with unsigned __int128 (two words
 * on 32-bit targets), which Cython cannot express. Constant time (fixed inversion chain, no secret branches). */
#ifndef BNT_FE25519_H
#define BNT_FE25519_H
#include <stdint.h>
#include <string.h>

typedef uint64_t bnt_fe[5];
#define BNT_M51 0x7ffffffffffffULL

static inline uint64_t bnt_load64_le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void bnt_store64_le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) { p[i] = (uint8_t)v; v >>= 8; }
}

static void bnt_fe_frombytes(bnt_fe h, const uint8_t s[32]) {   /* ignores bit 255 */
    uint64_t w0 = bnt_load64_le(s), w1 = bnt_load64_le(s + 8);
    uint64_t w2 = bnt_load64_le(s + 16), w3 = bnt_load64_le(s + 24);
    h[0] = w0 & BNT_M51;
    h[1] = ((w0 >> 51) | (w1 << 13)) & BNT_M51;
    h[2] = ((w1 >> 38) | (w2 << 26)) & BNT_M51;
    h[3] = ((w2 >> 25) | (w3 << 39)) & BNT_M51;
    h[4] = (w3 >> 12) & BNT_M51;
}

static void bnt_fe_carry(bnt_fe h) {
    uint64_t c;
    c = h[0] >> 51; h[0] &= BNT_M51; h[1] += c;
    c = h[1] >> 51; h[1] &= BNT_M51; h[2] += c;
    c = h[2] >> 51; h[2] &= BNT_M51; h[3] += c;
    c = h[3] >> 51; h[3] &= BNT_M51; h[4] += c;
    c = h[4] >> 51; h[4] &= BNT_M51; h[0] += 19 * c;
    c = h[0] >> 51; h[0] &= BNT_M51; h[1] += c;
}

#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 bnt_u128;
static void bnt_fe_mul(bnt_fe h, const bnt_fe f, const bnt_fe g) {   /* h may alias f, g */
    bnt_u128 f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
    uint64_t g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4];
    uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
    bnt_u128 r0 = f0 * g0 + f1 * g4_19 + f2 * g3_19 + f3 * g2_19 + f4 * g1_19;
    bnt_u128 r1 = f0 * g1 + f1 * g0 + f2 * g4_19 + f3 * g3_19 + f4 * g2_19;
    bnt_u128 r2 = f0 * g2 + f1 * g1 + f2 * g0 + f3 * g4_19 + f4 * g3_19;
    bnt_u128 r3 = f0 * g3 + f1 * g2 + f2 * g1 + f3 * g0 + f4 * g4_19;
    bnt_u128 r4 = f0 * g4 + f1 * g3 + f2 * g2 + f3 * g1 + f4 * g0;
    uint64_t c;
    r1 += (uint64_t)(r0 >> 51); h[0] = (uint64_t)r0 & BNT_M51;
    r2 += (uint64_t)(r1 >> 51); h[1] = (uint64_t)r1 & BNT_M51;
    r3 += (uint64_t)(r2 >> 51); h[2] = (uint64_t)r2 & BNT_M51;
    r4 += (uint64_t)(r3 >> 51); h[3] = (uint64_t)r3 & BNT_M51;
    c = (uint64_t)(r4 >> 51); h[4] = (uint64_t)r4 & BNT_M51;
    h[0] += c * 19;
    c = h[0] >> 51; h[0] &= BNT_M51; h[1] += c;
}
#else
/* 32-bit targets (armhf, most MCUs) have no __int128: the same product with 128-bit
 * accumulators as two words, 64x64 -> 128 from four 32x32 multiplies (no branches). */
typedef struct { uint64_t lo, hi; } bnt_u128w;

static inline void bnt_mac(bnt_u128w *r, uint64_t a, uint64_t b) {   /* r += a * b */
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    uint64_t lo = (mid << 32) | (uint32_t)p00;
    uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    uint64_t s = r->lo + lo;
    r->hi += hi + (s < lo);
    r->lo = s;
}

static inline void bnt_add_shr51(bnt_u128w *r, const bnt_u128w *x) {  /* r += x >> 51 */
    uint64_t v = (x->lo >> 51) | (x->hi << 13), s = r->lo + v;
    r->hi += (s < v);
    r->lo = s;
}

static void bnt_fe_mul(bnt_fe h, const bnt_fe f, const bnt_fe g) {   /* h may alias f, g */
    uint64_t g19[5] = {g[0], 19 * g[1], 19 * g[2], 19 * g[3], 19 * g[4]};
    bnt_u128w r[5];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 5; i++)             /* r[i] = sum_j f[j] * g[i - j] (wrapped: * 19) */
        for (int j = 0; j < 5; j++)
            bnt_mac(&r[i], f[j], j <= i ? g[i - j] : g19[5 + i - j]);
    uint64_t c;
    bnt_add_shr51(&r[1], &r[0]); h[0] = r[0].lo & BNT_M51;
    bnt_add_shr51(&r[2], &r[1]); h[1] = r[1].lo & BNT_M51;
    bnt_add_shr51(&r[3], &r[2]); h[2] = r[2].lo & BNT_M51;
    bnt_add_shr51(&r[4], &r[3]); h[3] = r[3].lo & BNT_M51;
    c = (r[4].lo >> 51) | (r[4].hi << 13); h[4] = r[4].lo & BNT_M51;
    h[0] += c * 19;
    c = h[0] >> 51; h[0] &= BNT_M51; h[1] += c;
}
#endif

static void bnt_fe_sqn(bnt_fe h, const bnt_fe f, int n) {            /* h = f^(2^n) */
    bnt_fe_mul(h, f, f);
    while (--n > 0) bnt_fe_mul(h, h, h);
}

static void bnt_fe_invert(bnt_fe out, const bnt_fe z) {              /* z^(p−2) */
    bnt_fe t0, t1, t2, t3;
    bnt_fe_sqn(t0, z, 1);                                 /* 2 */
    bnt_fe_sqn(t1, t0, 2);                                /* 8 */
    bnt_fe_mul(t1, z, t1);                                /* 9 */
    bnt_fe_mul(t0, t0, t1);                               /* 11 */
    bnt_fe_sqn(t2, t0, 1);                                /* 22 */
    bnt_fe_mul(t1, t1, t2);                               /* 2^5 − 1 */
    bnt_fe_sqn(t2, t1, 5);   bnt_fe_mul(t1, t2, t1);      /* 2^10 − 1 */
    bnt_fe_sqn(t2, t1, 10);  bnt_fe_mul(t2, t2, t1);      /* 2^20 − 1 */
    bnt_fe_sqn(t3, t2, 20);  bnt_fe_mul(t2, t3, t2);      /* 2^40 − 1 */
    bnt_fe_sqn(t2, t2, 10);  bnt_fe_mul(t1, t2, t1);      /* 2^50 − 1 */
    bnt_fe_sqn(t2, t1, 50);  bnt_fe_mul(t2, t2, t1);      /* 2^100 − 1 */
    bnt_fe_sqn(t3, t2, 100); bnt_fe_mul(t2, t3, t2);      /* 2^200 − 1 */
    bnt_fe_sqn(t2, t2, 50);  bnt_fe_mul(t1, t2, t1);      /* 2^250 − 1 */
    bnt_fe_sqn(t1, t1, 5);                                /* 2^255 − 2^5 */
    bnt_fe_mul(out, t1, t0);                              /* 2^255 − 21 = p − 2 */
}

static void bnt_fe_tobytes(uint8_t s[32], const bnt_fe f) {          /* canonical */
    bnt_fe h;
    uint64_t q;
    memcpy(h, f, sizeof h);
    bnt_fe_carry(h);
    bnt_fe_carry(h);
    q = (h[0] + 19) >> 51;                  /* q = 1 iff h ≥ p */
    q = (h[1] + q) >> 51;
    q = (h[2] + q) >> 51;
    q = (h[3] + q) >> 51;
    q = (h[4] + q) >> 51;
    h[0] += 19 * q;
    h[1] += h[0] >> 51; h[0] &= BNT_M51;
    h[2] += h[1] >> 51; h[1] &= BNT_M51;
    h[3] += h[2] >> 51; h[2] &= BNT_M51;
    h[4] += h[3] >> 51; h[3] &= BNT_M51;
    h[4] &= BNT_M51;
    bnt_store64_le(s, h[0] | (h[1] << 51));
    bnt_store64_le(s + 8, (h[1] >> 13) | (h[2] << 38));
    bnt_store64_le(s + 16, (h[2] >> 26) | (h[3] << 25));
    bnt_store64_le(s + 24, (h[3] >> 39) | (h[4] << 12));
}

/* u = (1 + y) / (1 − y) for the Edwards encoding `ed` (sign bit ignored: u does not
 * depend on it). Output canonical, as X25519 returns it. */
static void bnt_ed_to_x25519_u(uint8_t u[32], const uint8_t ed[32]) {
    bnt_fe y, num, den, inv;
    bnt_fe_frombytes(y, ed);
    /* num = 1 + y, den = 1 − y (+ 2p to stay positive) */
    num[0] = y[0] + 1; num[1] = y[1]; num[2] = y[2]; num[3] = y[3]; num[4] = y[4];
    den[0] = 0xfffffffffffdaULL + 1 - y[0];
    den[1] = 0xffffffffffffeULL - y[1];
    den[2] = 0xffffffffffffeULL - y[2];
    den[3] = 0xffffffffffffeULL - y[3];
    den[4] = 0xffffffffffffeULL - y[4];
    bnt_fe_carry(num);
    bnt_fe_carry(den);
    bnt_fe_invert(inv, den);
    bnt_fe_mul(num, num, inv);
    bnt_fe_tobytes(u, num);
}

#endif /* BNT_FE25519_H */
