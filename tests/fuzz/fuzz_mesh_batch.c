/* fuzz_mesh_batch.c — libFuzzer harness for the batch calls of the mesh codec. The input's
 * first byte picks a count n (1..16), the next n - 1 bytes cut the rest into n frames;
 * betanet_mesh_decode_batch must agree frame by frame with betanet_mesh_decode (status,
 * fields, offsets shifted by the frame's start), keep every view inside its frame, give
 * the identities packet_id gives, and re-encoding the decoded packets as one batch must
 * equal encoding them one by one. Seeds are runs of valid packets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

#define MAXN 16

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    uint8_t sender[8] = {1, 2, 3, 4, 5, 6, 7, 8}, recip[8], sig[64], payload[200];
    betanet_mesh_packet_t p;
    size_t n = 0, o, i, count = 1 + idx % 5, lens[MAXN];
    if (idx >= 16 || cap < 1 + MAXN) return 0;
    memset(recip, 0xFF, sizeof recip);
    memset(sig, 0x5A, sizeof sig);
    o = count;                              /* byte 0: count; then count - 1 cut lengths */
    for (i = 0; i < count; i++) {
        memset(&p, 0, sizeof p);
        memset(payload, (int)(idx + i), sizeof payload);
        p.version = (uint8_t)(1 + (i + idx) % 2);
        p.type = BETANET_MESH_TYPE_MESSAGE;
        p.ttl = (uint8_t)i;
        p.timestamp = 1700000000000ull + idx;
        p.sender = sender;
        p.recipient = (idx & 2) ? recip : NULL;
        p.signature = (idx & 4) ? sig : NULL;
        p.payload = payload;
        p.payload_len = 5 + 17 * i;
        if (betanet_mesh_encode(&p, (int)(idx & 1), out + o, cap - o, &n) != 0) return 0;
        lens[i] = n;
        o += n;
    }
    out[0] = (uint8_t)(count - 1);
    for (i = 0; i + 1 < count; i++)
        out[1 + i] = (uint8_t)(lens[i] > 255 ? 255 : lens[i]);   /* a cut may fall mid-packet */
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t offs[MAXN + 1], n, i, hdr, ends[MAXN + 1], done = 0, total = 0, want_len = 0;
    betanet_mesh_view_t views[MAXN], one;
    betanet_mesh_packet_t pk[MAXN];
    int status[MAXN], ok, got = 0;
    uint8_t ids[16 * MAXN], id1[16], *enc, *enc1;
    if (betanet_init() != 0 || size < 1) return 0;
    n = 1 + data[0] % MAXN;
    hdr = n;                                  /* count byte + n - 1 cut lengths */
    if (size < hdr) return 0;
    offs[0] = hdr;
    for (i = 1; i < n; i++) {
        size_t next = offs[i - 1] + data[i];
        offs[i] = next > size ? size : next;
    }
    offs[n] = size;
    ok = betanet_mesh_decode_batch(data, size, offs, n, views, status);
    if (ok < 0) __builtin_trap();
    for (i = 0; i < n; i++) {
        int rc = betanet_mesh_decode(data + offs[i], offs[i + 1] - offs[i], &one);
        if (rc != status[i]) __builtin_trap();
        if (rc != 0) {
            if (views[i].sender_off != 0) __builtin_trap();
            continue;
        }
        got++;
        if (views[i].sender_off != one.sender_off + offs[i] || views[i].payload_len != one.payload_len ||
            views[i].packet_len != one.packet_len || views[i].ttl != one.ttl)
            __builtin_trap();
        if (views[i].payload_off + views[i].payload_len > offs[i + 1] ||
            views[i].sender_off + 8 > offs[i + 1] || offs[i] + views[i].packet_len > offs[i + 1])
            __builtin_trap();
        if (betanet_mesh_view_packet(data, &views[i], &pk[got - 1]) != 0) __builtin_trap();
        if (betanet_mesh_packet_id(data + offs[i], &one, id1) != 0) __builtin_trap();
        memcpy(ids + 16 * i, id1, 16);
    }
    if (got != ok) __builtin_trap();
    {
        uint8_t bids[16 * MAXN];
        if (betanet_mesh_packet_id_batch(data, views, n, bids) != ok) __builtin_trap();
        for (i = 0; i < n; i++)
            if (status[i] == 0 && memcmp(bids + 16 * i, ids + 16 * i, 16) != 0) __builtin_trap();
    }
    /* the decoded packets re-encoded as one batch equal the one-by-one encodings */
    if (betanet_mesh_encode_batch_bytes(pk, (size_t)ok, 1, &total, &done) != 0 || done != (size_t)ok)
        __builtin_trap();
    enc = malloc(total ? total : 1);
    enc1 = malloc(total ? total : 1);
    if (enc == NULL || enc1 == NULL) {
        free(enc);
        free(enc1);
        return 0;
    }
    if (betanet_mesh_encode_batch(pk, (size_t)ok, 1, enc, total, ends, &done) != 0 || ends[ok] != total)
        __builtin_trap();
    for (i = 0; i < (size_t)ok; i++) {
        size_t w = 0;
        if (betanet_mesh_encode(&pk[i], 1, enc1 + want_len, total - want_len, &w) != 0) __builtin_trap();
        want_len += w;
        if (ends[i + 1] != want_len) __builtin_trap();
    }
    if (want_len != total || memcmp(enc, enc1, total) != 0) __builtin_trap();
    free(enc);
    free(enc1);
    return 0;
}
