/* fuzz_mesh_reasm.c — libFuzzer harness for the mesh fragment reassembler. The input is
 * a stream of records: flags (1: bit 0 parity, bits 1-2 sender, bit 3 advance the clock),
 * length (1), payload (length). A small reassembler (4 assemblies, 4 KiB each) receives
 * them; memory must stay bounded, and whatever completes must fit the output buffer.
 * Seeds are the fragments and parity of a real packet, so mutations reach the FEC path. */
#include <stdint.h>
#include <string.h>
#include "betanet.h"

#define CHUNK 40

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    uint8_t enc[150], fid[8] = {9, 9, 9, 9, 9, 9, 9, idx & 0xFF};
    uint8_t par[2][BETANET_MESH_PARITY_HEADER_BYTES + CHUNK];
    uint8_t *pp[2] = {par[0], par[1]};
    size_t o = 0, n, k, i;
    if (idx >= 8) return 0;
    for (i = 0; i < sizeof enc; i++) enc[i] = (uint8_t)(i * 7 + idx);
    k = betanet_mesh_fragment_count(sizeof enc, CHUNK);
    if (betanet_mesh_parity_payloads(enc, sizeof enc, fid, CHUNK, 2, 2, pp) != 0) return 0;
    for (i = 0; i < k + 2; i++) {
        if (i == idx % (k + 2)) continue;   /* drop one: the seed needs the parity */
        if (o + 2 + 13 + CHUNK + 4 > cap) return 0;
        if (i < k) {
            out[o] = 0;
            if (betanet_mesh_fragment_payload(enc, sizeof enc, fid, CHUNK, 2, (unsigned)i,
                                              out + o + 2, 255, &n) != 0) return 0;
        } else {
            out[o] = 1;
            n = sizeof par[0];
            memcpy(out + o + 2, par[i - k], n);
        }
        out[o + 1] = (uint8_t)n;
        o += 2 + n;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    betanet_mesh_reasm_t *r = NULL;
    betanet_mesh_reasm_stats_t st;
    uint8_t senders[4][8] = {{1}, {2}, {3}, {4}};
    uint8_t out[4096];
    uint64_t now = 0;
    size_t o = 0, len, out_len;
    int rc;
    if (betanet_mesh_reasm_new(4, 4096, 1000, &r) != 0) return 0;
    while (o + 2 <= size) {
        uint8_t fl = data[o];
        len = data[o + 1];
        o += 2;
        if (len > size - o) len = size - o;
        if (fl & 8) now += 300;
        rc = betanet_mesh_reasm_add(r, senders[(fl >> 1) & 3], fl & 1, data + o, len, now,
                                    out, sizeof out, &out_len);
        if (rc == 1 && out_len > sizeof out) __builtin_trap();
        o += len;
        if (betanet_mesh_reasm_stats(r, &st) != 0 || st.in_flight > 4 || st.bytes_held > 4 * 4096)
            __builtin_trap();
    }
    betanet_mesh_reasm_expire(r, now + 5000);
    betanet_mesh_reasm_stats(r, &st);
    if (st.in_flight != 0 || st.bytes_held != 0) __builtin_trap();
    betanet_mesh_reasm_free(r);
    return 0;
}
