/* fuzz_htx_parser.c — the HTX session parser (betanet_htx_session_open) and the stateless
 * frame opener on arbitrary bytes. The first input byte picks the max frame size and the
 * split pattern, so the incremental paths (header in pieces, frame across calls) are hit.
 * Seeds are valid frame sequences sealed with the same fixed keys, so mutations reach the
 * AEAD and the plaintext-shape checks. */
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

static const uint8_t K1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                               17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t K2[32] = {99};
static const uint8_t HH[32] = {7};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t out[16384];
    betanet_htx_session_t *s = NULL;
    betanet_htx_config_t cfg = {0};
    betanet_htx_frame_t fr;
    size_t off = 1, used = 0, step;
    uint8_t mode;
    int rc;
    if (betanet_init() != 0 || size < 1)
        return 0;
    mode = data[0];
    cfg.max_frame = (mode & 3) == 0 ? 64 : (mode & 3) == 1 ? 1024 : 16384;
    cfg.rekey_frames = 2 + (mode >> 4);
    if (betanet_htx_session_new(BETANET_HTX_RESPONDER, K1, K2, HH, &cfg, 0, &s) != 0)
        return 0;
    step = 1 + ((mode >> 2) & 3) * 7;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        rc = betanet_htx_session_open(s, data + off, n, &used, &fr, out, sizeof out);
        if (rc < 0)
            break;
        if (rc == 1 && fr.length > cfg.max_frame)
            abort();                       /* the parser must never exceed its limit */
        off += used;
        if (rc == 0 && used != n)
            abort();                       /* "need more" means everything was taken */
    }
    betanet_htx_session_free(s);
    {   /* the stateless opener on the same bytes */
        uint8_t ns[12];
        int type;
        uint64_t sid;
        size_t pt_len, consumed;
        betanet_htx_derive_ns(K1, ns);
        betanet_htx_frame_open(K1, ns, 0, data + 1, size - 1, 16384, &type, &sid, out, sizeof out,
                               &pt_len, &consumed);
    }
    return 0;
}

size_t fuzz_seed_input(uint8_t *buf, size_t cap, unsigned idx) {
    betanet_htx_session_t *s = NULL;
    betanet_htx_config_t cfg = {0};
    size_t len = 1, n = 0;
    uint8_t pt[300];
    unsigned i;
    if (idx >= 8 || cap < 4096 || betanet_init() != 0)
        return 0;
    cfg.max_frame = 16384;
    cfg.rekey_frames = 2 + 3;                       /* matches mode 0x32 below */
    if (betanet_htx_session_new(BETANET_HTX_INITIATOR, K1, K2, HH, &cfg, 0, &s) != 0)
        return 0;
    buf[0] = 0x32 | (uint8_t)((idx & 3) << 2);
    memset(pt, 'a' + idx, sizeof pt);
    for (i = 0; i < 4 + idx; i++) {
        size_t dl = (i * 37 + idx * 11) % 200;
        if (len + BETANET_HTX_SEAL_BYTES(dl + 1) > cap)
            break;
        if (i % 3 == 2) {
            uint8_t ping[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
            betanet_htx_session_seal(s, BETANET_HTX_PING, 0, ping, 9, 0, buf + len, cap - len, &n);
        } else {
            betanet_htx_session_seal_stream(s, 1 + 2 * i, (i == 3) ? 1 : 0, pt, dl, 0, buf + len,
                                            cap - len, &n);
        }
        len += n;
    }
    betanet_htx_session_free(s);
    return len;
}
