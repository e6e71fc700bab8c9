/* fuzz_mesh_decode.c — libFuzzer harness for the mesh packet decoder, fragment parser and
 * the codec round trip. Every packet that decodes must re-encode (from its view) to the
 * same bytes it occupied, its fields must lie inside the input, and the signing input and
 * packet identity must be computable. Seeds are valid packets of every flag combination. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    uint8_t sender[8] = {1, 2, 3, 4, 5, 6, 7, 8}, recip[8], route[16], sig[64], payload[300];
    betanet_mesh_packet_t p;
    size_t n = 0;
    if (idx >= 32) return 0;
    memset(recip, 0xFF, sizeof recip);
    memset(route, 0xAB, sizeof route);
    memset(sig, 0x5A, sizeof sig);
    memset(payload, (int)idx, sizeof payload);
    memset(&p, 0, sizeof p);
    p.version = (idx & 1) ? 2 : 1;
    p.type = (idx & 8) ? BETANET_MESH_TYPE_FRAGMENT : BETANET_MESH_TYPE_MESSAGE;
    p.ttl = 7;
    p.timestamp = 1700000000000ull + idx;
    p.sender = sender;
    p.recipient = (idx & 2) ? recip : NULL;
    p.signature = (idx & 4) ? sig : NULL;
    p.route = (p.version == 2 && (idx & 16)) ? route : NULL;
    p.route_hops = p.route ? 2 : 0;
    p.compressed = (idx & 16) && p.version == 1;
    p.original_size = p.compressed ? 900 : 0;
    p.payload = payload;
    p.payload_len = 13 + idx * 7;
    if (betanet_mesh_encode(&p, (int)(idx & 1), out, cap, &n) != 0) return 0;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    betanet_mesh_view_t v;
    betanet_mesh_packet_t p;
    betanet_mesh_fragment_t f;
    uint8_t id[BETANET_MESH_PACKET_ID_BYTES];
    uint8_t *re;
    size_t n = 0, si = 0;
    if (betanet_init() != 0) return 0;
    (void)betanet_mesh_unpadded_bytes(data, size);
    if (betanet_mesh_fragment_parse(data, size, 0, &f) == 0 && f.data_off + f.data_len != size)
        __builtin_trap();
    if (betanet_mesh_fragment_parse(data, size, 1, &f) == 0 && f.data_off + f.data_len != size)
        __builtin_trap();
    if (betanet_mesh_decode(data, size, &v) != 0) return 0;
    if (v.packet_len > size || v.payload_off + v.payload_len > v.packet_len) __builtin_trap();
    if (betanet_mesh_view_packet(data, &v, &p) != 0) __builtin_trap();
    if (betanet_mesh_packet_id(data, &v, id) != 0) __builtin_trap();
    if (betanet_mesh_signing_input_bytes(&p, &si) != 0) __builtin_trap();
    if (betanet_mesh_packet_bytes(&p, 0, &n) != 0) __builtin_trap();
    re = malloc(n ? n : 1);
    if (!re) return 0;
    /* Re-encoding a decoded packet gives back its bytes (route-flag with 0 hops and v1
     * route bits aside, which the encoder normalises). */
    if (betanet_mesh_encode(&p, 0, re, n, &n) != 0) __builtin_trap();
    if (n == v.packet_len && (v.flags & BETANET_MESH_FLAG_HAS_ROUTE ? v.route_hops > 0 : 1) &&
        !(data[11] & BETANET_MESH_FLAG_HAS_ROUTE && v.version == 1) &&
        !(data[11] & 0xE0) && memcmp(re, data, n) != 0)
        __builtin_trap();
    free(re);
    return 0;
}
