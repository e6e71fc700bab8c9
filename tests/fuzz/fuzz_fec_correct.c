/*
 * fuzz_fec_correct.c — betanet_fec_correct / _reconstruct on arbitrary shard contents.
 *
 * Input: byte 0 -> k (1..16), byte 1 -> m (1..16), byte 2 -> erasure mask seed,
 * the rest is cut into k + m equal shards. correct() must never touch memory outside the
 * shards, and whenever it succeeds the shards must form a codeword: re-encoding the data
 * gives the parity. reconstruct() of the erasures is checked the same way, and a pattern
 * resolved from the same flags (betanet_fec_pattern_*) must rebuild the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

#define MAXS 32

static int consistent(betanet_fec_t *fec, uint8_t **shards, unsigned k, unsigned m, size_t len) {
    uint8_t *parity[MAXS];
    int ok = 1;
    for (unsigned i = 0; i < m; i++) parity[i] = malloc(len ? len : 1);
    if (betanet_fec_encode(fec, (const uint8_t *const *)shards, parity, len) != 0) abort();
    for (unsigned i = 0; i < m; i++) {
        if (len && memcmp(parity[i], shards[k + i], len) != 0) ok = 0;
        free(parity[i]);
    }
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    unsigned k = 1 + data[0] % 16, m = 1 + data[1] % 16, n = k + m;
    uint8_t seed = data[2];
    data += 3;
    size -= 3;
    size_t len = size / n;
    betanet_fec_t *fec = NULL;
    if (betanet_init() != 0 || betanet_fec_new(k, m, &fec) != 0) abort();

    uint8_t *shards[MAXS], present[MAXS], bad[MAXS];
    for (unsigned i = 0; i < n; i++) {
        shards[i] = malloc(len ? len : 1);      /* exact size: ASan sees any overrun */
        if (len) memcpy(shards[i], data + i * len, len);
        present[i] = ((seed >> (i % 8)) & 1) || i >= 8;
    }
    {   /* the resolved pattern against reconstruct, both on copies of the input */
        uint8_t *pa[MAXS], *pb[MAXS];
        betanet_fec_pattern_t *pat = NULL;
        for (unsigned i = 0; i < n; i++) {
            pa[i] = malloc(len ? len : 1);
            pb[i] = malloc(len ? len : 1);
            if (len) { memcpy(pa[i], shards[i], len); memcpy(pb[i], shards[i], len); }
        }
        int rp = betanet_fec_pattern_new(fec, present, &pat);
        if (rp != betanet_fec_reconstruct(fec, pb, present, len)) abort();
        if (rp == 0) {
            if (betanet_fec_pattern_reconstruct(pat, pa, len) != 0) abort();
            for (unsigned i = 0; i < n; i++)
                if (len && memcmp(pa[i], pb[i], len) != 0) abort();
        } else if (pat != NULL) {
            abort();
        }
        betanet_fec_pattern_free(pat);
        for (unsigned i = 0; i < n; i++) { free(pa[i]); free(pb[i]); }
    }
    size_t nbad = 99;
    int rc = betanet_fec_correct(fec, shards, present, len, bad, &nbad);
    if (rc == 0) {
        if (nbad > m) abort();
        for (size_t i = 1; i < nbad; i++)
            if (bad[i] <= bad[i - 1] || bad[i] >= n) abort();
        if (!consistent(fec, shards, k, m, len)) abort();
    } else if (rc != BETANET_E_UNCORRECTABLE) {
        abort();
    }
    /* erasures only: always rebuilds a codeword when at least k shards are present */
    unsigned have = 0;
    for (unsigned i = 0; i < n; i++) have += present[i] != 0;
    rc = betanet_fec_reconstruct(fec, shards, present, len);
    if (have >= k ? rc != 0 : rc != BETANET_E_UNCORRECTABLE) abort();
    if (rc == 0 && have == k && !consistent(fec, shards, k, m, len)) abort();

    for (unsigned i = 0; i < n; i++) free(shards[i]);
    betanet_fec_free(fec);
    return 0;
}

/* Seeds: valid codewords with a few corrupted bytes, so mutations reach the decoder. */
size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    if (idx >= 8) return 0;
    unsigned k = 2 + idx, m = 2 + idx % 4, n = k + m;
    size_t len = 24;
    if (3 + n * len > cap) return 0;
    betanet_fec_t *fec = NULL;
    if (betanet_init() != 0 || betanet_fec_new(k, m, &fec) != 0) return 0;
    out[0] = (uint8_t)(k - 1);
    out[1] = (uint8_t)(m - 1);
    out[2] = 0xff;
    uint8_t *ptr[MAXS];
    for (unsigned i = 0; i < n; i++) {
        ptr[i] = out + 3 + i * len;
        for (size_t x = 0; x < len; x++) ptr[i][x] = (uint8_t)(i * 31 + x * 7 + idx);
    }
    betanet_fec_encode(fec, (const uint8_t *const *)ptr, ptr + k, len);
    ptr[idx % n][idx % len] ^= 0x5a;
    betanet_fec_free(fec);
    return 3 + n * len;
}
