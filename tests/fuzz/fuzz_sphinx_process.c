/* fuzz_sphinx_process.c — libFuzzer harness for everything in the Sphinx core that reads
 * untrusted bytes: betanet_sphinx_node_process (one packet and batches), surb_use and
 * surb_open. Geometry 3 hops / 128-byte payload keeps packets short (339 bytes).
 * Input: mode (1) ‖ data. mode%4: 0 process data as a packet (and in a batch of 12 with variants),
 * 1 open data as a reply payload with a valid SURB secret, 2 use data as a SURB,
 * 3 open with data split into (secret, payload). Seeds are valid packets, replies, SURBs,
 * so mutations reach MAC checks, filler, LIONESS and the replay filter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

#define H 3u
#define P 128u
#define PKT BETANET_SPHINX_PACKET_BYTES(H, P)
#define SURB BETANET_SPHINX_SURB_BYTES(H)
#define SECRET BETANET_SPHINX_SURB_SECRET_BYTES(H)

static betanet_sphinx_node_t *node;           /* hop 0; reachable, so not a leak */
static betanet_sphinx_hop_t route[H];
static uint8_t surb[SURB], secret[SECRET];

static int setup(void) {
    uint8_t seed[32], sk[32];
    if (node) return 0;
    if (betanet_init() != 0) return -1;
    for (unsigned i = 0; i < H; i++) {
        memset(seed, (int)i + 1, 32);
        if (betanet_sphinx_keypair(route[i].public_key, sk, seed) != 0) return -1;
        memset(route[i].node_id, 0xA0 + (int)i, 32);
        route[i].delay_ms = 5 * i;
        if (i == 0) {
            if (betanet_sphinx_node_new(H, P, 1u << 16, &node) != 0) return -1;
            if (betanet_sphinx_node_add_key(node, 1, sk) != 0) return -1;
        }
    }
    memset(seed, 0x77, 32);
    return betanet_sphinx_surb_create(H, P, 1, route, H, route[0].node_id, seed, surb, sizeof surb,
                                      secret, sizeof secret, NULL);
}

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    uint8_t seed[32], first[32];
    if (idx >= 5 || cap < 1 + PKT || setup() != 0) return 0;
    memset(seed, (int)idx + 9, 32);
    if (idx < 3) {          /* forward packets of 1..3 hops */
        out[0] = 0;
        if (betanet_sphinx_create(H, P, 1, route, idx + 1, route[0].node_id, (const uint8_t *)"seed", 4,
                                  seed, out + 1, PKT) != 0) return 0;
        return 1 + PKT;
    }
    if (idx == 3) {         /* a SURB */
        out[0] = 2;
        memcpy(out + 1, surb, SURB);
        return 1 + SURB;
    }
    out[0] = 1;             /* a reply packet's payload (not yet peeled: opens with AUTH) */
    if (betanet_sphinx_surb_use(H, P, surb, SURB, (const uint8_t *)"r", 1, first, out + 1, PKT) != 0)
        return 0;
    memmove(out + 1, out + 1 + BETANET_SPHINX_HEADER_BYTES(H), P);
    return 1 + P;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t out[PKT], body[P], first[32];
    betanet_sphinx_result_t res;
    if (size < 1 || setup() != 0) return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0:
        betanet_sphinx_node_process(node, d, n, &res, out, sizeof out);
        if (n == PKT) {
            /* A batch of BATCH: the packet with a fresh payload (same header: replay path),
             * the packet itself, and variants with one bit of α flipped (fresh replay tags,
             * so their X25519s run together in the multi-buffer lanes, then fail the MAC),
             * one with a low-order α. */
            enum { BATCH = 12 };
            uint8_t *batch = malloc((size_t)BATCH * PKT), *outs = malloc((size_t)BATCH * PKT);
            betanet_sphinx_result_t rs[BATCH];
            if (batch && outs) {
                for (unsigned i = 0; i < BATCH; i++) {
                    uint8_t *b = batch + (size_t)i * PKT;
                    memcpy(b, d, PKT);
                    if (i == 0) b[PKT - 1] ^= 1;
                    else if (i == 1) b[35] ^= 0x80;                                 /* bit 255 of α */
                    else if (i == BATCH - 1) { memset(b + 4, 0, 32); b[4] = 1; } /* α = 1 */
                    else b[4 + (d[i] & 31)] ^= (uint8_t)(1u << (i & 7));
                }
                betanet_sphinx_node_process_many(node, batch, BATCH, rs, outs);
            }
            free(batch);
            free(outs);
        }
        break;
    case 1:
        betanet_sphinx_surb_open(H, P, secret, sizeof secret, d, n, body, sizeof body);
        break;
    case 2:
        betanet_sphinx_surb_use(H, P, d, n, d, n < P - 16 ? n : P - 16, first, out, sizeof out);
        break;
    default:
        if (n >= SECRET)
            betanet_sphinx_surb_open(H, P, d, SECRET, d + SECRET, n - SECRET, body, sizeof body);
        break;
    }
    return 0;
}
