/* fuzz_bundle_parse.c — libFuzzer harness for the BPv7 parser (betanet_bundle_parse) and
 * what runs on its output: policy, rewrite, bundle id, fragmentation and reassembly, and
 * the status report decoder. Properties checked on every accepted input:
 *   - the rewrite with nothing discarded is the input, byte for byte;
 *   - two fragments split anywhere parse, and reassemble into the input (when fragmentable);
 *   - prefix parsing agrees with whole parsing.
 * Seeds are bundles built through the API (CRC none / 16 / 32C, extension and unknown
 * blocks, a fragment, an administrative record), so mutations reach deep code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

#define MAXB 16

static size_t build(uint8_t *out, size_t cap, unsigned idx) {
    static const uint8_t ssp[] = "//node-a/inbox";
    static const uint8_t payload[] = "Ready to generate a 32-byte payload, and a bit more.";
    static const uint8_t hop[] = {0x82, 0x18, 0x1e, 0x02};
    static const uint8_t age[] = {0x19, 0x01, 0x2c};
    static const uint8_t prev[] = {0x82, 0x02, 0x82, 0x05, 0x00};
    static const uint8_t unk[] = {0xde, 0xad, 0xbe, 0xef};
    betanet_bundle_primary_spec_t p;
    betanet_bundle_block_spec_t b[5];
    size_t n = 0, len = 0;
    memset(&p, 0, sizeof p);
    memset(b, 0, sizeof b);
    p.crc_type = idx % 3;
    p.destination.scheme = BETANET_BUNDLE_EID_IPN; p.destination.node = 1; p.destination.service = 2;
    p.source.scheme = BETANET_BUNDLE_EID_DTN; p.source.ssp = ssp; p.source.ssp_len = sizeof ssp - 1;
    p.report_to.scheme = BETANET_BUNDLE_EID_DTN;         /* dtn:none */
    p.creation_ms = idx & 4 ? 0 : 757382400000ull; p.sequence = idx; p.lifetime_ms = 3600000;
    if (idx & 8) {
        p.flags |= BETANET_BUNDLE_F_IS_FRAGMENT; p.fragment_offset = 10; p.total_adu_length = 100;
    }
    if (idx & 1) { b[n].type = 10; b[n].number = 2; b[n].data = hop; b[n].data_len = sizeof hop; b[n].crc_type = 1; n++; }
    if (idx & 4) { b[n].type = 7; b[n].number = 3; b[n].data = age; b[n].data_len = sizeof age; n++; }
    if (idx & 2) { b[n].type = 6; b[n].number = 4; b[n].data = prev; b[n].data_len = sizeof prev; b[n].flags = 1; n++; }
    if (idx & 16) { b[n].type = 192; b[n].number = 9; b[n].data = unk; b[n].data_len = sizeof unk;
                    b[n].flags = idx & 32 ? BETANET_BUNDLE_BF_DISCARD : BETANET_BUNDLE_BF_DELETE_BUNDLE; b[n].crc_type = 2; n++; }
    b[n].type = 1; b[n].number = 1; b[n].data = payload; b[n].data_len = sizeof payload - 1; b[n].crc_type = (idx / 3) % 3; n++;
    if (betanet_bundle_encode(&p, b, n, out, cap, &len) != 0) return 0;
    return len;
}

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    if (idx >= 48 || betanet_init() != 0) return 0;
    return build(out, cap, idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    betanet_bundle_block_t blocks[MAXB], blocks2[MAXB], fb[MAXB];
    betanet_bundle_view_t v, v2, fv;
    betanet_bundle_limits_t lim;
    betanet_bundle_status_report_t sr;
    uint8_t id[BETANET_BUNDLE_ID_BYTES];
    uint32_t verdict, reason;
    size_t n, w;
    int rc;
    if (betanet_init() != 0) return 0;
    betanet_bundle_limits_default(&lim);
    lim.max_blocks = MAXB;
    (void)betanet_bundle_status_decode(data, size, 64, &sr);
    rc = betanet_bundle_parse(data, size, &lim, blocks, MAXB, &v);
    lim.flags = BETANET_BUNDLE_PARSE_PREFIX;
    int rc2 = betanet_bundle_parse(data, size, &lim, blocks2, MAXB, &v2);
    if (rc == 0 && (rc2 != 0 || v2.len != size)) __builtin_trap();
    if (rc2 == 0 && v2.len > size) __builtin_trap();
    lim.flags = BETANET_BUNDLE_PARSE_STRICT;
    (void)betanet_bundle_parse(data, size, &lim, blocks2, MAXB, &v2);
    if (rc != 0) return 0;
    if (v.payload != v.nblocks - 1 || blocks[v.payload].type != 1) __builtin_trap();

    /* identity rewrite */
    n = betanet_bundle_rewrite_bytes(&v);
    uint8_t *out = malloc(n ? n : 1);
    if (!out) return 0;
    if (betanet_bundle_rewrite(data, size, &v, out, n, &w) != 0 || w != size || memcmp(out, data, size))
        __builtin_trap();
    free(out);
    if (betanet_bundle_id(data, size, &v, id, sizeof id) != 0) __builtin_trap();
    const betanet_bundle_block_t *pl = &blocks[v.payload];
    (void)betanet_bundle_status_decode(data + pl->data_off, pl->data_len, 64, &sr);

    /* policy + rewrite without the discarded blocks must still parse */
    if (betanet_bundle_policy(&v, NULL, 0, &verdict, &reason) != 0) __builtin_trap();
    n = betanet_bundle_rewrite_bytes(&v);
    out = malloc(n);
    if (!out) return 0;
    if (betanet_bundle_rewrite(data, size, &v, out, n, &w) != 0 || w != n) __builtin_trap();
    lim.flags = 0;
    if (betanet_bundle_parse(out, w, &lim, blocks2, MAXB, &v2) != 0) __builtin_trap();
    free(out);

    /* split the payload in two, reassemble, compare */
    if (pl->data_len >= 2 && !(v.primary.flags & BETANET_BUNDLE_F_MUST_NOT_FRAGMENT)
        && !(v.primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT)) {
        uint64_t cut = 1 + (size * 7919u) % (pl->data_len - 1);
        size_t n1 = betanet_bundle_fragment_bytes(data, size, &v, 0, cut);
        size_t n2 = betanet_bundle_fragment_bytes(data, size, &v, cut, pl->data_len - cut);
        uint8_t *f1 = malloc(n1), *f2 = malloc(n2);
        betanet_bundle_reasm_t *r = NULL;
        if (!f1 || !f2) { free(f1); free(f2); return 0; }
        if (betanet_bundle_fragment(data, size, &v, 0, cut, f1, n1, &w) != 0 || w != n1) __builtin_trap();
        if (betanet_bundle_fragment(data, size, &v, cut, pl->data_len - cut, f2, n2, &w) != 0 || w != n2)
            __builtin_trap();
        if (betanet_bundle_reasm_new(pl->data_len, 1u << 20, 4, &r) == 0) {
            if (betanet_bundle_parse(f2, n2, &lim, fb, MAXB, &fv) != 0) __builtin_trap();
            if (betanet_bundle_reasm_add(r, f2, n2, &fv) != 0) __builtin_trap();
            if (betanet_bundle_parse(f1, n1, &lim, fb, MAXB, &fv) != 0) __builtin_trap();
            if (betanet_bundle_reasm_add(r, f1, n1, &fv) != 1) __builtin_trap();
            n = betanet_bundle_reasm_bytes(r);
            out = malloc(n ? n : 1);
            if (out) {
                if (betanet_bundle_reasm_finish(r, out, n, &w) != 0 || w != size || memcmp(out, data, size))
                    __builtin_trap();
                free(out);
            }
            betanet_bundle_reasm_free(r);
        }
        free(f1);
        free(f2);
    }
    return 0;
}
