/* htx_c_host.c — a C host runs the HTX channel with libbetanet alone (no Python):
 * two sessions from fixed split keys, frames sealed into caller buffers, received in
 * 1..7-byte splits, a scheduled key update, and the errors a host must see.
 * Built and run by tests/test_htx_c.py; prints "ok" and exits 0 on success. */
#include <betanet.h>
#include <stdio.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { printf("FAIL line %d: %s\n", __LINE__, #c); return 1; } } while (0)

static int feed(betanet_htx_session_t *rx, const uint8_t *wire, size_t len, uint8_t *data_out,
                size_t *data_len, int *updates) {
    static uint8_t pt[BETANET_HTX_DEFAULT_MAX_FRAME_BYTES];
    betanet_htx_frame_t f;
    size_t off = 0, step = 1, used;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        int rc = betanet_htx_session_open(rx, wire + off, n, &used, &f, pt, sizeof pt);
        if (rc < 0) return rc;
        off += used;
        if (rc == 1) {
            if (f.type == BETANET_HTX_STREAM) { memcpy(data_out + *data_len, pt + 1, f.length - 1); *data_len += f.length - 1; }
            if (f.type == BETANET_HTX_KEY_UPDATE) (*updates)++;
        } else {
            step = step % 7 + 1;
        }
    }
    return 0;
}

int main(void) {
    uint8_t k1[32], k2[32], hh[32], msg[4000], got[8000], wire[100000];
    betanet_htx_session_t *a, *b;
    betanet_htx_config_t cfg = {0};
    betanet_htx_stats_t st;
    size_t n, w = 0, got_len = 0;
    int updates = 0, i;
    CHECK(betanet_init() == 0);
    for (i = 0; i < 32; i++) { k1[i] = (uint8_t)i; k2[i] = (uint8_t)(i + 32); hh[i] = (uint8_t)(i + 64); }
    for (i = 0; i < (int)sizeof msg; i++) msg[i] = (uint8_t)(i * 7);
    cfg.rekey_frames = 3;
    CHECK(betanet_htx_session_new(BETANET_HTX_INITIATOR, k1, k2, hh, &cfg, 0, &a) == 0);
    CHECK(betanet_htx_session_new(BETANET_HTX_RESPONDER, k1, k2, hh, NULL, 0, &b) == 0);
    /* first frame equals the documented vector (docs/htx.md §12) */
    CHECK(betanet_htx_session_seal_stream(a, 1, 0, (const uint8_t *)"hello", 5, 0, wire, sizeof wire, &n) == 0);
    CHECK(n == 27 && wire[0] == 0 && wire[2] == 6 && wire[4] == 1 && wire[5] == 0xd2 && wire[26] == 0xa3);
    w = n;
    for (i = 0; i < 4; i++) {
        CHECK(betanet_htx_session_seal_stream(a, 1, 0, msg + i * 1000, 1000, 0, wire + w, sizeof wire - w, &n) == 0);
        w += n;
    }
    CHECK(betanet_htx_session_stats(a, &st) == 0 && st.send_epoch >= 1);
    CHECK(feed(b, wire, w, got, &got_len, &updates) == 0);
    CHECK(got_len == 4005 && memcmp(got, "hello", 5) == 0 && memcmp(got + 5, msg, 4000) == 0);
    CHECK(updates == (int)st.send_epoch && betanet_htx_session_pending(b) == 0);
    /* a replay of the first frame now fails authentication, and the error is sticky */
    {
        uint8_t pt[BETANET_HTX_DEFAULT_MAX_FRAME_BYTES];
        betanet_htx_frame_t f;
        size_t used;
        CHECK(betanet_htx_session_open(b, wire, 27, &used, &f, pt, sizeof pt) == BETANET_E_AUTH);
        CHECK(betanet_htx_session_open(b, wire, 27, &used, &f, pt, sizeof pt) == BETANET_E_AUTH);
        CHECK(betanet_htx_session_open(b, wire, 27, &used, &f, pt, 10) == BETANET_E_AUTH);
    }
    /* sizes and argument errors */
    CHECK(betanet_htx_session_seal_stream(a, 1, 0, msg, 100, 0, wire, 50, &n) == BETANET_E_BUFFER_TOO_SMALL);
    CHECK(betanet_htx_session_seal(a, BETANET_HTX_PING, 3, msg, 9, 0, wire, sizeof wire, &n) == BETANET_E_INVALID);
    CHECK(betanet_htx_session_seal_stream(a, 1, 4, msg, 1, 0, wire, sizeof wire, &n) == BETANET_E_INVALID);
    betanet_htx_session_free(b);
    {
        betanet_htx_session_t *bad = a;
        CHECK(betanet_htx_session_new(7, k1, k2, hh, NULL, 0, &bad) == BETANET_E_INVALID && bad == NULL);
    }
    betanet_htx_session_free(a);
    betanet_htx_session_free(NULL);
    CHECK(betanet_live_allocations() == 0);
    printf("ok\n");
    return 0;
}
