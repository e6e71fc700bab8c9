/* fuzz_noise_read.c — the Noise XK handshake reader (betanet_noise_xk_read_frame and
 * betanet_noise_xk_read_message) on arbitrary bytes, then the HTX session the split gives.
 * The first input byte picks the side fuzzed (bit 0: responder or initiator), the form
 * (bit 1: HTX wire form, in pieces of 1 + ((mode >> 2) & 7) * 9 bytes, or raw messages of
 * `len:uint16` from the input) and the payload buffer size of raw reads (bits 5-7). Keys
 * and ephemerals are fixed, so the seeds — transcripts of the peer's side followed by HTX
 * frames — stay valid and mutations reach the AEAD, the DH checks and the session. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "betanet.h"

static const uint8_t I_S[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t I_E[32] = {33};
static const uint8_t R_S[32] = {77, 1};
static const uint8_t R_E[32] = {99, 2};

static int make(int role, betanet_noise_xk_t **hs) {
    static uint8_t rs_pub[32];                 /* R_S's public key: one X25519, computed once */
    static int have_rs_pub;
    if (!have_rs_pub) {
        crypto_scalarmult_base(rs_pub, R_S);
        have_rs_pub = 1;
    }
    if (role == BETANET_NOISE_RESPONDER)
        return betanet_noise_xk_new_with_ephemeral(role, R_S, NULL,
                                                   (const uint8_t *)BETANET_NOISE_HTX_PROLOGUE,
                                                   BETANET_NOISE_HTX_PROLOGUE_BYTES, R_E, hs);
    return betanet_noise_xk_new_with_ephemeral(role, I_S, rs_pub,
                                               (const uint8_t *)BETANET_NOISE_HTX_PROLOGUE,
                                               BETANET_NOISE_HTX_PROLOGUE_BYTES, I_E, hs);
}

/* The HTX session after a completed handshake, on the rest of the input. */
static void run_session(betanet_noise_xk_t *hs, const uint8_t *data, size_t size) {
    static uint8_t out[16384];
    betanet_htx_session_t *s = NULL;
    betanet_htx_frame_t fr;
    size_t off = 0, used = 0;
    if (betanet_noise_xk_split_htx(hs, NULL, 0, &s) != 0)
        abort();                                   /* a completed handshake always splits */
    while (off < size) {
        int rc = betanet_htx_session_open(s, data + off, size - off, &used, &fr, out, sizeof out);
        if (rc < 0)
            break;
        off += used;
        if (rc == 0)
            break;
    }
    betanet_htx_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t out[BETANET_NOISE_MAX_MESSAGE_BYTES];
    betanet_noise_xk_t *hs = NULL;
    size_t off = 1, n = 0, used = 0, piece, cap;
    uint8_t mode;
    int role, framed, rc;
    if (size < 1 || betanet_init() != 0)
        return 0;
    mode = data[0];
    role = (mode & 1) ? BETANET_NOISE_INITIATOR : BETANET_NOISE_RESPONDER;
    framed = !(mode & 2);
    piece = 1 + (size_t)((mode >> 2) & 7) * 9;
    cap = (size_t)(mode >> 5) * 9;               /* payload room of raw reads: 0..63 */
    if (make(role, &hs) != 0)
        abort();
    for (;;) {
        int a = betanet_noise_xk_action(hs);
        if (a == BETANET_NOISE_ACTION_WRITE) {
            rc = betanet_noise_xk_write_frame(hs, out, sizeof out, &n);
            if (rc != 0 && rc != BETANET_E_CRYPTO)
                abort();                           /* only a low-order peer key may stop it */
            if (rc == 0 && (n < 50 || n > BETANET_NOISE_XK_MAX_FRAME_BYTES))
                abort();
        } else if (a == BETANET_NOISE_ACTION_READ) {
            if (off >= size)
                break;
            if (framed) {
                size_t take = size - off < piece ? size - off : piece;
                rc = betanet_noise_xk_read_frame(hs, data + off, take, &used);
                if (used > take || (rc == 0 && used != take))
                    abort();
                off += used;
            } else {
                size_t len;
                if (size - off < 2)
                    break;
                len = ((size_t)data[off] << 8) | data[off + 1];
                off += 2;
                if (len > size - off)
                    len = size - off;
                rc = betanet_noise_xk_read_message(hs, data + off, len, cap ? out : NULL, cap, &n);
                if (rc == BETANET_E_BUFFER_TOO_SMALL)
                    break;
                if (rc == 0 && n > cap)
                    abort();
                off += len;
            }
            if (rc < 0 && betanet_noise_xk_action(hs) != rc)
                abort();                           /* read failures are sticky */
        } else if (a == BETANET_NOISE_ACTION_SPLIT) {
            run_session(hs, data + off, size - off);
            break;
        } else {
            break;                                 /* failed: sticky error */
        }
    }
    betanet_noise_xk_free(hs);
    return 0;
}

/* Seeds: the peer's messages of a real handshake with the same fixed keys (HTX wire form
 * or raw), then frames sealed by the peer's session. */
size_t fuzz_seed_input(uint8_t *buf, size_t cap, unsigned idx) {
    betanet_noise_xk_t *me = NULL, *peer = NULL;
    betanet_htx_session_t *s = NULL;
    uint8_t msg[128];
    size_t len = 1, n = 0, used = 0, i;
    int fuzzed_role;
    if (idx >= 8 || cap < 4096 || betanet_init() != 0)
        return 0;
    buf[0] = (uint8_t)((idx & 1) | ((idx & 2) ? 2 : 0) | ((idx >> 2) << 2) | 0xE0);
    fuzzed_role = (idx & 1) ? BETANET_NOISE_INITIATOR : BETANET_NOISE_RESPONDER;
    if (make(fuzzed_role, &me) != 0 ||
        make(fuzzed_role == BETANET_NOISE_INITIATOR ? BETANET_NOISE_RESPONDER : BETANET_NOISE_INITIATOR,
             &peer) != 0)
        abort();
    while (betanet_noise_xk_action(me) != BETANET_NOISE_ACTION_SPLIT) {
        if (betanet_noise_xk_action(me) == BETANET_NOISE_ACTION_WRITE) {
            if (betanet_noise_xk_write_frame(me, msg, sizeof msg, &n) != 0 ||
                betanet_noise_xk_read_frame(peer, msg, n, &used) != 1)
                abort();
        } else {
            if (betanet_noise_xk_write_frame(peer, msg, sizeof msg, &n) != 0 ||
                betanet_noise_xk_read_frame(me, msg, n, &used) != 1)
                abort();
            memcpy(buf + len, msg, n);           /* wire form and raw share the uint16 prefix */
            len += n;
        }
    }
    if (betanet_noise_xk_split_htx(peer, NULL, 0, &s) != 0)
        abort();
    for (i = 0; i < 3 + idx; i++) {
        uint8_t data[40];
        memset(data, 'a' + (int)i, sizeof data);
        if (betanet_htx_session_seal_stream(s, 1 + 2 * i, 0, data, 10 + 3 * i, 0, buf + len, cap - len,
                                            &n) != 0)
            break;
        len += n;
    }
    betanet_htx_session_free(s);
    betanet_noise_xk_free(me);
    betanet_noise_xk_free(peer);
    return len;
}
