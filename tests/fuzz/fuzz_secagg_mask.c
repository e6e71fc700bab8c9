/* fuzz_secagg_mask.c — harness for the SecAgg masking API (it parses nothing, but its
 * block loop turns sizes and offsets into pointer arithmetic). Fuzz-chosen lengths, stream
 * offsets (near 0 and near the 2^36-word end), purposes, signs and float inputs, on heap
 * buffers of exactly the stated size so ASan sees any overrun. Checks: masking in two
 * pieces equals masking whole; +mask then -mask restores the vector; mask_add_many equals
 * one-by-one; quantised values stay in 0..levels; NaN inputs are refused with zeroed output.
 * Input: n (u16) || offset selector (u64) || purpose (u8) || split (u16) || levels (u32) || floats. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

/* The harness's own per-word loops (fill and oracle) carry no coverage worth feeding back,
 * but their instrumented compares cost about a third of each run: compiled without it. */
#ifdef __clang__
#define NO_COV __attribute__((no_sanitize("coverage")))
#else
#define NO_COV
#endif

static NO_COV void fill(uint32_t *a, float *x, size_t n, const uint8_t *src, size_t len) {
    uint8_t *xb = (uint8_t *)x;
    size_t i, off = 0;
    for (i = 0; i < n; i++)
        a[i] = (uint32_t)(i * 2654435761u);
    if (!len) {
        memset(x, 0, n * 4);
        return;
    }
    while (off < n * 4) {                 /* the float bytes repeat the input's tail */
        size_t c = n * 4 - off < len ? n * 4 - off : len;
        memcpy(xb + off, src, c);
        off += c;
    }
}

static NO_COV int any_above(const uint32_t *b, size_t n, uint32_t levels) {
    for (size_t i = 0; i < n; i++)
        if (b[i] > levels) return 1;
    return 0;
}

static uint64_t rd(const uint8_t *p, size_t k) {
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t head[17] = {0};
    memcpy(head, data, size < sizeof head ? size : sizeof head);
    size_t n = (size_t)(rd(head, 2) % 6000);
    uint64_t sel = rd(head + 2, 8);
    uint64_t offset = (sel & 1) ? BETANET_SECAGG_MAX_WORDS - (sel >> 1) % 8000 : (sel >> 1) % 100000;
    unsigned purpose = head[10];
    size_t split = n ? (size_t)(rd(head + 11, 2) % (n + 1)) : 0;
    uint32_t levels = (uint32_t)rd(head + 13, 4);
    uint8_t seeds[3 * 32];
    int signs[3] = {1, -1, 1};
    for (size_t i = 0; i < sizeof seeds; i++) seeds[i] = (uint8_t)(i * 7 + (size ? data[i % size] : 0));

    uint32_t *a = malloc(n * 4 + 1), *b = malloc(n * 4 + 1), *c = malloc(n * 4 + 1);
    float *x = malloc(n * 4 + 1);
    if (!a || !b || !c || !x) abort();
    fill(a, x, n, data + (size > 17 ? 17 : size), size > 17 ? size - 17 : 0);
    memcpy(b, a, n * 4);
    memcpy(c, a, n * 4);

    int rc = betanet_secagg_mask_add(a, n, seeds, 32, purpose, sel, offset, 1);
    int rc1 = betanet_secagg_mask_add(b, split, seeds, 32, purpose, sel, offset, 1);
    int rc2 = betanet_secagg_mask_add(b + split, n - split, seeds, 32, purpose, sel, offset + split, 1);
    if (rc == 0 && (rc1 != 0 || rc2 != 0 || memcmp(a, b, n * 4) != 0)) __builtin_trap();
    if (rc == 0) {
        if (betanet_secagg_mask_add(a, n, seeds, 32, purpose, sel, offset, -1) != 0) __builtin_trap();
        if (memcmp(a, c, n * 4) != 0) __builtin_trap();
    } else if (memcmp(a, c, n * 4) != 0) {
        __builtin_trap();                                  /* an error leaves vec unchanged */
    }

    memcpy(a, c, n * 4);
    rc = betanet_secagg_mask_add_many(a, n, seeds, sizeof seeds, signs, 3, purpose, sel, offset);
    for (int j = 0; j < 3 && rc == 0; j++)
        if (betanet_secagg_mask_add(c, n, seeds + 32 * j, 32, purpose, sel, offset, signs[j]) != 0)
            __builtin_trap();
    if (rc == 0 && memcmp(a, c, n * 4) != 0) __builtin_trap();

    rc = betanet_secagg_quantize_f32(b, x, n, 1.5, levels, seeds, 32, sel, offset);
    if (rc == 0) {
        if (any_above(b, n, levels)) __builtin_trap();
    } else if (rc == BETANET_E_INVALID && levels >= 1) {
        /* every other argument is valid here, so the cause is a NaN: output all zero */
        if (any_above(b, n, 0)) __builtin_trap();
    }
    float *out = malloc(n * 4 + 1);
    if (!out) abort();
    betanet_secagg_dequantize_f32(out, b, n, 1.5, levels, (uint32_t)(sel % 5));
    free(out);
    free(a); free(b); free(c); free(x);
    return 0;
}
