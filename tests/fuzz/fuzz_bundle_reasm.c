/* fuzz_bundle_reasm.c — libFuzzer harness for the fragment reassembler (betanet_bundle_reasm_*).
 * The input is a sequence of bundles read with PARSE_PREFIX; every one that parses is added
 * to a reassembler sized by the first fragment's total ADU length (bounded to 64 KiB, 8
 * ranges). Overlaps, overruns, foreign fragments and range exhaustion must be refused
 * cleanly; a completed ADU must finish into a bundle that parses and is no fragment.
 * Seeds: valid fragments of one bundle, concatenated in varied orders and overlaps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

#define MAXB 8

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    static uint8_t payload[300];
    betanet_bundle_primary_spec_t p;
    betanet_bundle_block_spec_t b[2];
    betanet_bundle_block_t blocks[MAXB];
    betanet_bundle_view_t v;
    uint8_t bundle[512];
    size_t len, w, at = 0, off, step;
    if (idx >= 16 || betanet_init() != 0) return 0;
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 31 + idx);
    memset(&p, 0, sizeof p);
    memset(b, 0, sizeof b);
    p.crc_type = idx % 3;
    p.destination.scheme = p.source.scheme = p.report_to.scheme = BETANET_BUNDLE_EID_IPN;
    p.destination.node = 7; p.source.node = 9; p.report_to.node = 9;
    p.creation_ms = 1000 + idx; p.lifetime_ms = 60000;
    b[0].type = 10; b[0].number = 2; b[0].data = (const uint8_t *)"\x82\x05\x00"; b[0].data_len = 3;
    b[0].flags = idx & 1 ? BETANET_BUNDLE_BF_REPLICATE : 0;
    b[1].type = 1; b[1].number = 1; b[1].data = payload; b[1].data_len = sizeof payload; b[1].crc_type = (idx / 3) % 3;
    if (betanet_bundle_encode(&p, b, 2, bundle, sizeof bundle, &len) != 0) return 0;
    if (betanet_bundle_parse(bundle, len, NULL, blocks, MAXB, &v) != 0) return 0;
    step = 40 + 17 * idx;
    for (off = (idx & 2) ? 100 : 0; off < sizeof payload; off += step - (idx & 4 ? 10 : 0)) {
        size_t n = off + step > sizeof payload ? sizeof payload - off : step;
        if (at + betanet_bundle_fragment_bytes(bundle, len, &v, off, n) > cap) break;
        if (betanet_bundle_fragment(bundle, len, &v, off, n, out + at, cap - at, &w) != 0) break;
        at += w;
    }
    if ((idx & 2) && at + betanet_bundle_fragment_bytes(bundle, len, &v, 0, 120) <= cap
        && betanet_bundle_fragment(bundle, len, &v, 0, 120, out + at, cap - at, &w) == 0)
        at += w;
    return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    betanet_bundle_block_t blocks[MAXB], rb[MAXB];
    betanet_bundle_view_t v, rv;
    betanet_bundle_limits_t lim;
    betanet_bundle_reasm_t *r = NULL;
    size_t at = 0, n, w;
    int rc, done = 0;
    if (betanet_init() != 0) return 0;
    betanet_bundle_limits_default(&lim);
    lim.max_blocks = MAXB;
    lim.flags = BETANET_BUNDLE_PARSE_PREFIX;
    while (at < size) {
        if (betanet_bundle_parse(data + at, size - at, &lim, blocks, MAXB, &v) != 0) {
            at++;                                   /* resynchronise a byte later */
            continue;
        }
        if (r == NULL && (v.primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT))
            (void)betanet_bundle_reasm_new(v.primary.total_adu_length, 1u << 16, 8, &r);
        if (r != NULL) {
            rc = betanet_bundle_reasm_add(r, data + at, v.len, &v);
            if (rc == 1) done = 1;
            if (rc < 0 && rc != BETANET_E_MALFORMED && rc != BETANET_E_LIMIT) __builtin_trap();
        }
        at += v.len;
    }
    if (r != NULL) {
        n = betanet_bundle_reasm_bytes(r);
        if (done && n == 0) __builtin_trap();
        if (n) {
            uint8_t *out = malloc(n);
            if (out) {
                lim.flags = 0;
                if (betanet_bundle_reasm_finish(r, out, n, &w) != 0 || w != n) __builtin_trap();
                if (betanet_bundle_parse(out, w, &lim, rb, MAXB, &rv) != 0) __builtin_trap();
                if (rv.primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT) __builtin_trap();
                free(out);
            }
        } else {
            uint8_t tmp[4];
            if (betanet_bundle_reasm_finish(r, tmp, sizeof tmp, &w) != BETANET_E_STATE) __builtin_trap();
        }
        betanet_bundle_reasm_free(r);
    }
    return 0;
}
