/* hostile_sizes_secagg.c — every function of the secagg section (include/betanet/secagg.h)
 * called with hostile lengths, word counts, stream offsets, seed counts, signs, purposes,
 * clip values and levels, under ASan + UBSan (driven by tests/test_hostile_sizes.py, rules
 * in tests/hostile_sizes.c). Vectors are real and as long as a call may touch; a count
 * beyond a vector is passed only with a NULL pointer or beyond BETANET_SECAGG_MAX_WORDS,
 * which the contract checks before any word is touched. */
#include "hostile_sizes.h"

#include <float.h>
#include <math.h>

enum { W = 64 };
static const uint64_t MAXW = BETANET_SECAGG_MAX_WORDS;
static const int SIGNS[] = {INT_MIN, -2, -1, 0, 1, 2, INT_MAX};
static uint8_t SEED[32] = {7, 1, 2, 3}, SEEDS[40 * 32];

/* a count beyond a W-word vector: allowed only when the contract rejects it unread */
static int beyond_max(size_t n, uint64_t offset) { return offset > MAXW || (uint64_t)n > MAXW - offset; }

static void hostile_keys(void) {
    uint8_t key[32], seed[32], sk[32] = {0x40, 1, 2}, pk[32] = {9}, zero[32] = {0}, one[32] = {1};
    size_t i;
    TRUE_(betanet_secagg_seed_bytes() == BETANET_SECAGG_SEED_BYTES);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_secagg_derive_key(key, s, SEED, 32, 1, 0), s >= 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_derive_key(key, 32, SEED, s, 1, 0), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_derive_key(NULL, s, SEED, 32, 1, 0), BETANET_E_INVALID);
        EXPECT(betanet_secagg_derive_key(key, 32, NULL, s, 1, 0), BETANET_E_INVALID);
        EXPECT(betanet_secagg_pair_seed(seed, s, sk, 32, pk, 32), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_pair_seed(seed, 32, sk, s, pk, 32), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_pair_seed(seed, 32, sk, 32, pk, s), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_pair_seed(NULL, s, sk, 32, pk, 32), BETANET_E_INVALID);
        EXPECT(betanet_secagg_pair_seed(seed, 32, NULL, s, pk, 32), BETANET_E_INVALID);
        EXPECT(betanet_secagg_pair_seed(seed, 32, sk, 32, NULL, s), BETANET_E_INVALID);
    }
    for (i = 0; i < NELEM(U32); i++)
        EXPECT(betanet_secagg_derive_key(key, 32, SEED, 32, U32[i], 0),
               U32[i] >= 1 && U32[i] <= 255 ? BETANET_OK : BETANET_E_INVALID);
    for (i = 0; i < NELEM(U64); i++) EXPECT(betanet_secagg_derive_key(key, 32, SEED, 32, 255, U64[i]), BETANET_OK);
    EXPECT(betanet_secagg_pair_seed(seed, 32, sk, 32, zero, 32), BETANET_E_MALFORMED);
    EXPECT(betanet_secagg_pair_seed(seed, 32, sk, 32, one, 32), BETANET_E_MALFORMED);   /* order 4 */
}

static void hostile_masks(void) {
    uint32_t vec[W], ref[W], tmp[W];
    static const uint64_t OFFS[] = {0, 1, 15, 16, 17, (UINT64_C(1) << 32), (UINT64_C(1) << 36) - W,
                                    (UINT64_C(1) << 36) - W + 1, (UINT64_C(1) << 36) - 1, UINT64_C(1) << 36,
                                    (UINT64_C(1) << 36) + 1, UINT64_MAX - W, UINT64_MAX};
    int signs[40], neg[40];
    size_t i, j;
    for (i = 0; i < W; i++) ref[i] = (uint32_t)(i * 2654435761u);
    for (i = 0; i < sizeof SEEDS; i++) SEEDS[i] = (uint8_t)(i * 31 + 5);
    for (i = 0; i < 40; i++) { signs[i] = i % 3 ? 1 : -1; neg[i] = -signs[i]; }
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        int in_vec = s <= W, limit = beyond_max(s, 0);
        /* word counts: up to the vector, or rejected before any access */
        if (in_vec || limit) {
            memcpy(vec, ref, sizeof vec);
            EXPECT(betanet_secagg_mask_expand(vec, s, SEED, 32, 1, 0, 0), in_vec ? BETANET_OK : BETANET_E_LIMIT);
            memcpy(vec, ref, sizeof vec);
            EXPECT(betanet_secagg_mask_add(vec, s, SEED, 32, 1, 0, 0, 1), in_vec ? BETANET_OK : BETANET_E_LIMIT);
            if (!in_vec) TRUE_(memcmp(vec, ref, sizeof vec) == 0);
            memcpy(vec, ref, sizeof vec);
            EXPECT(betanet_secagg_mask_add_many(vec, s, SEEDS, 96, signs, 3, 2, 0, 0),
                   in_vec ? BETANET_OK : BETANET_E_LIMIT);
            if (!in_vec) TRUE_(memcmp(vec, ref, sizeof vec) == 0);
        }
        /* NULL vectors with nonzero counts (LIMIT where the count also exceeds the stream) */
        EXPECT(betanet_secagg_mask_expand(NULL, s, SEED, 32, 1, 0, 0),
               s == 0 ? BETANET_OK : limit ? BETANET_E_LIMIT : BETANET_E_INVALID, BETANET_E_INVALID);
        EXPECT(betanet_secagg_mask_add(NULL, s, SEED, 32, 1, 0, 0, -1),
               s == 0 ? BETANET_OK : limit ? BETANET_E_LIMIT : BETANET_E_INVALID, BETANET_E_INVALID);
        EXPECT(betanet_secagg_mask_add_many(NULL, s, SEEDS, 96, signs, 3, 2, 0, 0),
               s == 0 ? BETANET_OK : BETANET_E_INVALID, limit ? BETANET_E_LIMIT : BETANET_E_INVALID);
        EXPECT(betanet_secagg_vec_add(NULL, ref, s, 1), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_secagg_vec_add(vec, NULL, s, -1), s ? BETANET_E_INVALID : BETANET_OK);
        if (in_vec) EXPECT(betanet_secagg_vec_add(vec, vec, s, -1), BETANET_OK);
        /* seed lengths, and NULL seeds of any length */
        EXPECT(betanet_secagg_mask_expand(vec, W, SEED, s, 1, 0, 0), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_mask_add(vec, W, SEED, s, 1, 0, 0, 1), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_mask_expand(vec, W, NULL, s, 1, 0, 0), BETANET_E_INVALID);
        EXPECT(betanet_secagg_mask_add(vec, W, NULL, s, 1, 0, 0, 1), BETANET_E_INVALID);
        /* seeds_len against 32 * count, and every count (its product with 32 may wrap) */
        memcpy(vec, ref, sizeof vec);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, s, signs, 3, 2, 0, 0), s == 96 ? BETANET_OK : BETANET_E_INVALID);
        if (s <= 40 || s > SIZE_MAX / 32)          /* 40 real seeds, or refused unread */
            EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, s * 32, signs, s, 2, 0, 0),
                   s <= 40 ? BETANET_OK : BETANET_E_INVALID);
        /* no seeds but a seeds_len: 32 * 0 != s (the documented INVALID; was accepted) */
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, s, signs, 0, 2, 0, 0), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, 96, signs, s, 2, 0, 0), s == 3 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_mask_add_many(vec, W, NULL, s * 32, signs, s, 2, 0, 0), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, s * 32, NULL, s, 2, 0, 0), s ? BETANET_E_INVALID : BETANET_OK);
    }
    /* 3 + 2^59 seeds: 32 * count wraps to 96 */
    EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, 96, signs, 3 + (SIZE_MAX / 32 + 1), 2, 0, 0), BETANET_E_INVALID);
    /* stream offsets */
    for (i = 0; i < NELEM(OFFS); i++) {
        uint64_t o = OFFS[i];
        int want = beyond_max(W, o) ? BETANET_E_LIMIT : BETANET_OK;
        memcpy(vec, ref, sizeof vec);
        EXPECT(betanet_secagg_mask_expand(tmp, W, SEED, 32, 1, 0, o), want);
        EXPECT(betanet_secagg_mask_add(vec, W, SEED, 32, 1, 0, o, 1), want);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, 96, signs, 3, 1, 0, o), want);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, sizeof SEEDS, signs, 40, 1, 0, o), want);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, sizeof SEEDS, neg, 40, 1, 0, o), want);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, 96, neg, 3, 1, 0, o), want);
        EXPECT(betanet_secagg_mask_add(vec, W, SEED, 32, 1, 0, o, -1), want);
        TRUE_(memcmp(vec, ref, sizeof vec) == 0);            /* every mask removed again */
        EXPECT(betanet_secagg_mask_expand(tmp, 0, SEED, 32, 1, 0, o), o > MAXW ? BETANET_E_LIMIT : BETANET_OK);
        EXPECT(betanet_secagg_mask_expand(tmp, 1, SEED, 32, 1, 0, o), o >= MAXW ? BETANET_E_LIMIT : BETANET_OK);
    }
    /* purposes, rounds and signs */
    for (i = 0; i < NELEM(U32); i++) {
        int want = U32[i] >= 1 && U32[i] <= 255 ? BETANET_OK : BETANET_E_INVALID;
        EXPECT(betanet_secagg_mask_expand(tmp, W, SEED, 32, U32[i], 0, 0), want);
        EXPECT(betanet_secagg_mask_add(vec, W, SEED, 32, U32[i], 0, 0, 1), want);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, 96, signs, 3, U32[i], 0, 0), want);
    }
    for (i = 0; i < NELEM(U64); i++) EXPECT(betanet_secagg_mask_expand(tmp, W, SEED, 32, 4, U64[i], 0), BETANET_OK);
    for (i = 0; i < NELEM(SIGNS); i++) {
        int good = SIGNS[i] == 1 || SIGNS[i] == -1, bad3[3] = {1, -1, 1};
        memcpy(vec, ref, sizeof vec);
        EXPECT(betanet_secagg_mask_add(vec, W, SEED, 32, 1, 0, 0, SIGNS[i]), good ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_vec_add(vec, ref, W, SIGNS[i]), good ? BETANET_OK : BETANET_E_INVALID);
        bad3[2] = SIGNS[i];
        memcpy(vec, ref, sizeof vec);
        EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, 96, bad3, 3, 1, 0, 0), good ? BETANET_OK : BETANET_E_INVALID);
        if (!good) TRUE_(memcmp(vec, ref, sizeof vec) == 0);
    }
    /* many masks at once equal one at a time (across the groups of 32 seeds) */
    memcpy(vec, ref, sizeof vec);
    memcpy(tmp, ref, sizeof tmp);
    EXPECT(betanet_secagg_mask_add_many(vec, W, SEEDS, sizeof SEEDS, signs, 40, 1, 9, 5), BETANET_OK);
    for (j = 0; j < 40; j++) EXPECT(betanet_secagg_mask_add(tmp, W, SEEDS + 32 * j, 32, 1, 9, 5, signs[j]), BETANET_OK);
    TRUE_(memcmp(vec, tmp, sizeof vec) == 0);
}

static void hostile_quant(void) {
    static const double CLIPS[] = {0.0, -0.0, -1.0, NAN, INFINITY, -INFINITY, DBL_MIN, 4.9e-324, 1e-300,
                                   1.0, 1e300, DBL_MAX / 2, DBL_MAX};
    float f[W], fo[W];
    double d[W], dout[W];
    uint32_t q[W], q2[W];
    size_t i, j;
    for (i = 0; i < W; i++) { f[i] = (float)i / 8.0f - 4.0f; d[i] = f[i]; }
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        int in_vec = s <= W, limit = beyond_max(s, 0);
        if (in_vec || limit) {
            int want = in_vec ? BETANET_OK : BETANET_E_LIMIT;
            EXPECT(betanet_secagg_quantize_f32(q, f, s, 4.0, 255, SEED, 32, 0, 0), want);
            EXPECT(betanet_secagg_quantize_f64(q, d, s, 4.0, 255, SEED, 32, 0, 0), want);
        }
        if (in_vec) {
            EXPECT(betanet_secagg_dequantize_f32(fo, q, s, 4.0, 255, 1), BETANET_OK);
            EXPECT(betanet_secagg_dequantize_f64(dout, q, s, 4.0, 255, 1), BETANET_OK);
        }
        EXPECT(betanet_secagg_quantize_f32(NULL, f, s, 4.0, 255, SEED, 32, 0, 0),
               s == 0 ? BETANET_OK : limit ? BETANET_E_LIMIT : BETANET_E_INVALID, BETANET_E_INVALID);
        EXPECT(betanet_secagg_quantize_f64(q, NULL, s, 4.0, 255, SEED, 32, 0, 0),
               s == 0 ? BETANET_OK : limit ? BETANET_E_LIMIT : BETANET_E_INVALID, BETANET_E_INVALID);
        EXPECT(betanet_secagg_dequantize_f32(NULL, q, s, 4.0, 255, 1), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_secagg_dequantize_f64(dout, NULL, s, 4.0, 255, 1), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_secagg_quantize_f32(q, f, W, 4.0, 255, SEED, s, 0, 0), s == 32 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_secagg_quantize_f64(q, d, W, 4.0, 255, NULL, s, 0, 0), BETANET_E_INVALID);
    }
    for (i = 0; i < NELEM(U64); i++) {
        int want = beyond_max(W, U64[i]) ? BETANET_E_LIMIT : BETANET_OK;
        EXPECT(betanet_secagg_quantize_f32(q, f, W, 4.0, 255, SEED, 32, U64[i], U64[i]), want);
        EXPECT(betanet_secagg_quantize_f64(q, d, W, 4.0, 255, SEED, 32, U64[i], U64[i]), want);
    }
    /* levels and count: the sum of count values of [0, levels] must fit 32 bits */
    for (i = 0; i < NELEM(U32); i++)
        for (j = 0; j < NELEM(U32); j++) {
            uint32_t levels = U32[i], count = U32[j];
            int deq = levels == 0 || count == 0 ? BETANET_E_INVALID
                      : (uint64_t)levels * count > UINT32_MAX ? BETANET_E_LIMIT : BETANET_OK;
            size_t k;
            if (j == 0) {
                EXPECT(betanet_secagg_quantize_f32(q, f, W, 4.0, levels, SEED, 32, 1, 0), levels ? BETANET_OK : BETANET_E_INVALID);
                EXPECT(betanet_secagg_quantize_f64(q2, d, W, 4.0, levels, SEED, 32, 1, 0), levels ? BETANET_OK : BETANET_E_INVALID);
                if (levels) {
                    TRUE_(memcmp(q, q2, sizeof q) == 0);
                    for (k = 0; k < W; k++) TRUE_(q[k] <= levels);
                }
            }
            EXPECT(betanet_secagg_dequantize_f32(fo, q, W, 4.0, levels, count), deq);
            EXPECT(betanet_secagg_dequantize_f64(dout, q, W, 4.0, levels, count), deq);
        }
    /* clip: positive, with 2c and levels / 2c finite; anything else is refused (a NaN or
     * infinite scale would turn into an undefined float-to-integer conversion) */
    for (i = 0; i < NELEM(CLIPS); i++) {
        double c = CLIPS[i];
        size_t k;
        for (j = 0; j < NELEM(U32); j++) {
            uint32_t levels = U32[j];
            int want = levels && c > 0 && isfinite(2 * c) && isfinite(levels / (2 * c)) ? BETANET_OK : BETANET_E_INVALID;
            EXPECT(betanet_secagg_quantize_f32(q, f, W, c, levels, SEED, 32, 1, 0), want);
            EXPECT(betanet_secagg_quantize_f64(q, d, W, c, levels, SEED, 32, 1, 0), want);
            if (want == BETANET_OK)
                for (k = 0; k < W; k++) TRUE_(q[k] <= levels);
            EXPECT(betanet_secagg_dequantize_f64(dout, q, W, c, levels, 1), want);
            EXPECT(betanet_secagg_dequantize_f32(fo, q, W, c, levels, 1), want);
        }
    }
    /* a NaN input: INVALID and out all zero */
    d[5] = NAN;
    EXPECT(betanet_secagg_quantize_f64(q, d, W, 4.0, 255, SEED, 32, 0, 0), BETANET_E_INVALID);
    for (i = 0; i < W; i++) TRUE_(q[i] == 0);
}

int main(void) {
    hostile_keys();
    hostile_masks();
    hostile_quant();
    return hostile_report();
}
