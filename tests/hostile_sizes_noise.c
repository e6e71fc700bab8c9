/* hostile_sizes_noise.c — every function of the noise section (include/betanet/noise.h)
 * called with hostile prologue, payload, message, frame and capacity lengths, NULL with
 * nonzero lengths, short out-buffers and calls out of order, under ASan + UBSan (driven by
 * tests/test_hostile_sizes.py, rules in tests/hostile_sizes.c). A length beyond a real buffer
 * is passed only where the contract rejects it unread: a message above 65535 bytes, an HTX
 * length prefix above 1024, an out/payload capacity (only the message's bytes are written),
 * or a prologue length beside an argument refused first. */
#include "hostile_sizes.h"

enum { BIG = 65536 + 64 };
/* RFC 7748 §6.1 Alice: the responder's static key pair. */
static const uint8_t RPRIV[32] = {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
                                  0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
                                  0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a};
static const uint8_t RPUB[32] = {0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d,
                                 0xdc, 0xb4, 0x3e, 0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38,
                                 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a};
static const uint8_t IPRIV[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
static const uint8_t EPRIV[32] = {0x42, 9, 8, 7};
static const uint8_t ZERO[32] = {0};
static const int ROLES[] = {INT_MIN, -2, -1, 2, 3, INT_MAX};
static uint8_t PRO[256], BUF[BIG], OUT[BIG];

#define PROLOGUE ((const uint8_t *)BETANET_NOISE_HTX_PROLOGUE), BETANET_NOISE_HTX_PROLOGUE_BYTES

static betanet_noise_xk_t *initiator(void) {
    betanet_noise_xk_t *hs = NULL;
    EXPECT(betanet_noise_xk_new(BETANET_NOISE_INITIATOR, IPRIV, RPUB, PROLOGUE, &hs), BETANET_OK);
    return hs;
}
static betanet_noise_xk_t *responder(void) {
    betanet_noise_xk_t *hs = NULL;
    EXPECT(betanet_noise_xk_new(BETANET_NOISE_RESPONDER, RPRIV, NULL, PROLOGUE, &hs), BETANET_OK);
    return hs;
}
/* one message from w into rd (payload plen bytes) */
static void step(betanet_noise_xk_t *w, betanet_noise_xk_t *rd, size_t plen) {
    uint8_t msg[256], pay[64];
    size_t n = 0, pn = 0;
    EXPECT(betanet_noise_xk_write_message(w, PRO, plen, msg, sizeof msg, &n), BETANET_OK);
    EXPECT(betanet_noise_xk_read_message(rd, msg, n, pay, sizeof pay, &pn), BETANET_OK);
    TRUE_(pn == plen && memcmp(pay, PRO, plen) == 0);
}
/* every call on a dead handshake returns its sticky error */
static void expect_dead(betanet_noise_xk_t *hs, int err) {
    uint8_t k1[32], k2[32], h[32], out[128];
    size_t n = 7, pn;
    betanet_htx_session_t *s = (betanet_htx_session_t *)&n;
    EXPECT(betanet_noise_xk_action(hs), err);
    EXPECT(betanet_noise_xk_write_message(hs, NULL, 0, out, sizeof out, &n), err);
    TRUE_(n == 0);
    EXPECT(betanet_noise_xk_write_frame(hs, out, sizeof out, &n), err);
    EXPECT(betanet_noise_xk_write_frame(hs, out, 0, &n), err);
    EXPECT(betanet_noise_xk_read_message(hs, out, 48, out, sizeof out, &pn), err);
    EXPECT(betanet_noise_xk_read_frame(hs, out, sizeof out, &pn), err);
    EXPECT(betanet_noise_xk_split(hs, k1, k2, h), err);
    EXPECT(betanet_noise_xk_split_htx(hs, NULL, 0, &s), err);
    TRUE_(s == NULL);
    EXPECT(betanet_noise_xk_handshake_hash(hs, h), err);
    EXPECT(betanet_noise_xk_remote_static(hs, h), err);
    TRUE_(betanet_noise_xk_pending(hs) == 0);
}

static void hostile_new(void) {
    betanet_noise_xk_t *hs;
    size_t i, j;
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        int fits = s <= sizeof PRO;
        /* NULL prologue with a length; real prologues up to their size */
        hs = (betanet_noise_xk_t *)PRO;
        EXPECT(betanet_noise_xk_new(BETANET_NOISE_INITIATOR, IPRIV, RPUB, NULL, s, &hs), s ? BETANET_E_INVALID : BETANET_OK);
        TRUE_((hs == NULL) == (s != 0));
        betanet_noise_xk_free(hs);
        hs = (betanet_noise_xk_t *)PRO;
        EXPECT(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_RESPONDER, RPRIV, NULL, NULL, s, EPRIV, &hs),
               s ? BETANET_E_INVALID : BETANET_OK);
        TRUE_((hs == NULL) == (s != 0));
        betanet_noise_xk_free(hs);
        if (fits) {
            EXPECT(betanet_noise_xk_new(BETANET_NOISE_RESPONDER, RPRIV, NULL, PRO, s, &hs), BETANET_OK);
            betanet_noise_xk_free(hs);
            EXPECT(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_INITIATOR, IPRIV, RPUB, PRO, s, EPRIV, &hs), BETANET_OK);
            betanet_noise_xk_free(hs);
        }
        /* any prologue length beside an argument the contract refuses first */
        hs = (betanet_noise_xk_t *)PRO;
        EXPECT(betanet_noise_xk_new(BETANET_NOISE_INITIATOR, NULL, RPUB, PRO, s, &hs), BETANET_E_INVALID);
        TRUE_(hs == NULL);
        EXPECT(betanet_noise_xk_new(BETANET_NOISE_INITIATOR, IPRIV, RPUB, PRO, s, NULL), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_new(BETANET_NOISE_INITIATOR, IPRIV, NULL, PRO, s, &hs), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_new(BETANET_NOISE_RESPONDER, RPRIV, RPUB, PRO, s, &hs), BETANET_E_INVALID);
        TRUE_(hs == NULL);
        hs = (betanet_noise_xk_t *)PRO;
        EXPECT(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_INITIATOR, IPRIV, RPUB, PRO, s, NULL, &hs),
               BETANET_E_INVALID);
        TRUE_(hs == NULL);
        EXPECT(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_INITIATOR, IPRIV, RPUB, PRO, s, EPRIV, NULL),
               BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_RESPONDER, NULL, NULL, PRO, s, EPRIV, &hs),
               BETANET_E_INVALID);
        for (j = 0; j < NELEM(ROLES); j++) {
            hs = (betanet_noise_xk_t *)PRO;
            EXPECT(betanet_noise_xk_new(ROLES[j], IPRIV, RPUB, PRO, s, &hs), BETANET_E_INVALID);
            TRUE_(hs == NULL);
            EXPECT(betanet_noise_xk_new_with_ephemeral(ROLES[j], RPRIV, NULL, PRO, s, EPRIV, &hs), BETANET_E_INVALID);
            TRUE_(hs == NULL);
        }
    }
    /* NULL handshakes */
    EXPECT(betanet_noise_xk_action(NULL), BETANET_E_INVALID);
    TRUE_(betanet_noise_xk_pending(NULL) == 0);
    betanet_noise_xk_free(NULL);
}

static void hostile_write_message(void) {
    static const size_t EDGE[] = {65535 - 64, 65535 - 48, 65535 - 47, 65535, 65536};
    betanet_noise_xk_t *i_hs, *r_hs;
    size_t i, n;
    for (i = 0; i < NELEM(SIZES) + NELEM(EDGE); i++) {
        size_t s = i < NELEM(SIZES) ? SIZES[i] : EDGE[i - NELEM(SIZES)];
        int ok1 = s <= 65535 - 48, ok3 = s <= 65535 - 64;
        /* payload lengths: message 1 (48 + s) and message 3 (64 + s) against 65535 */
        i_hs = initiator();
        r_hs = responder();
        n = 7;
        EXPECT(betanet_noise_xk_write_message(i_hs, NULL, s, OUT, sizeof OUT, &n), s ? BETANET_E_INVALID : BETANET_OK);
        if (s) {
            TRUE_(n == 7);
            EXPECT(betanet_noise_xk_write_message(i_hs, BUF, s, OUT, SIZE_MAX, &n), ok1 ? BETANET_OK : BETANET_E_LIMIT);
            TRUE_(ok1 ? n == s + 48 : n == 0);
        }
        if (!ok1) {
            EXPECT(betanet_noise_xk_action(i_hs), BETANET_NOISE_ACTION_WRITE);   /* unchanged */
            EXPECT(betanet_noise_xk_write_message(i_hs, NULL, 0, OUT, sizeof OUT, &n), BETANET_OK);
        }
        EXPECT(betanet_noise_xk_read_message(r_hs, OUT, n, BUF, sizeof BUF, &n), BETANET_OK);
        /* the responder's message 2: payload lengths again, out too small */
        EXPECT(betanet_noise_xk_write_message(r_hs, BUF, s, OUT, s < 65535 ? s + 47 : s, &n),
               ok1 ? BETANET_E_BUFFER_TOO_SMALL : BETANET_E_LIMIT);
        EXPECT(betanet_noise_xk_write_message(r_hs, BUF, s, NULL, SIZE_MAX, &n), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_write_message(r_hs, BUF, s, OUT, SIZE_MAX, NULL), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_write_message(NULL, BUF, s, OUT, SIZE_MAX, &n), BETANET_E_INVALID);
        /* out of order: the initiator reads now, it may not write */
        EXPECT(betanet_noise_xk_write_message(i_hs, BUF, s, OUT, SIZE_MAX, &n), BETANET_E_STATE);
        EXPECT(betanet_noise_xk_write_message(r_hs, BUF, s, OUT, SIZE_MAX, &n), ok1 ? BETANET_OK : BETANET_E_LIMIT);
        if (!ok1) EXPECT(betanet_noise_xk_write_message(r_hs, NULL, 0, OUT, 48, &n), BETANET_OK);
        EXPECT(betanet_noise_xk_read_message(i_hs, OUT, n, BUF, SIZE_MAX, &n), BETANET_OK);
        /* message 3 */
        EXPECT(betanet_noise_xk_write_message(i_hs, BUF, s, OUT, s < 65535 ? s + 63 : s, &n),
               ok3 ? BETANET_E_BUFFER_TOO_SMALL : BETANET_E_LIMIT);
        EXPECT(betanet_noise_xk_write_message(i_hs, BUF, s, OUT, SIZE_MAX, &n), ok3 ? BETANET_OK : BETANET_E_LIMIT);
        if (!ok3) EXPECT(betanet_noise_xk_write_message(i_hs, NULL, 0, OUT, 64, &n), BETANET_OK);
        EXPECT(betanet_noise_xk_read_message(r_hs, OUT, n, BUF, sizeof BUF, &n), BETANET_OK);
        EXPECT(betanet_noise_xk_action(i_hs), BETANET_NOISE_ACTION_SPLIT);
        EXPECT(betanet_noise_xk_action(r_hs), BETANET_NOISE_ACTION_SPLIT);
        EXPECT(betanet_noise_xk_write_message(i_hs, BUF, s, OUT, SIZE_MAX, &n), BETANET_E_STATE);
        EXPECT(betanet_noise_xk_write_message(r_hs, BUF, s, OUT, SIZE_MAX, &n), BETANET_E_STATE);
        betanet_noise_xk_free(i_hs);
        betanet_noise_xk_free(r_hs);
        /* out capacities for an empty message 1 */
        i_hs = initiator();
        EXPECT(betanet_noise_xk_write_message(i_hs, NULL, 0, OUT, s, &n), s >= 48 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        TRUE_(n == (s >= 48 ? 48u : 0u));
        betanet_noise_xk_free(i_hs);
    }
    /* a responder key of low order: the DH is all zero, sticky */
    {
        betanet_noise_xk_t *hs = NULL;
        EXPECT(betanet_noise_xk_new(BETANET_NOISE_INITIATOR, IPRIV, ZERO, PROLOGUE, &hs), BETANET_OK);
        EXPECT(betanet_noise_xk_write_message(hs, NULL, 0, OUT, sizeof OUT, &n), BETANET_E_CRYPTO);
        expect_dead(hs, BETANET_E_CRYPTO);
        betanet_noise_xk_free(hs);
    }
}

static void hostile_read_message(void) {
    betanet_noise_xk_t *i_hs, *r_hs;
    uint8_t msg[128], pay[16];
    size_t i, n, m, pn;
    for (i = 0; i < BIG; i++) BUF[i] = (uint8_t)(i * 7 + 1);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        int err = s > 65535 ? BETANET_E_LIMIT : s < 48 ? BETANET_E_MALFORMED : BETANET_E_AUTH;
        /* garbage of every length: refused, the handshake dead */
        r_hs = responder();
        EXPECT(betanet_noise_xk_read_message(r_hs, BUF, s, OUT, SIZE_MAX, &pn), err);
        expect_dead(r_hs, err);
        betanet_noise_xk_free(r_hs);
        r_hs = responder();
        EXPECT(betanet_noise_xk_read_message(r_hs, NULL, s, OUT, 16, &pn), s ? BETANET_E_INVALID : BETANET_E_MALFORMED);
        EXPECT(betanet_noise_xk_action(r_hs), s ? BETANET_NOISE_ACTION_READ : BETANET_E_MALFORMED);
        betanet_noise_xk_free(r_hs);
        /* a real message 1 with a 10-byte payload, against payload capacities */
        i_hs = initiator();
        r_hs = responder();
        EXPECT(betanet_noise_xk_read_message(i_hs, BUF, s, pay, s, &pn), BETANET_E_STATE);   /* a write is due */
        EXPECT(betanet_noise_xk_write_message(i_hs, PRO, 10, msg, sizeof msg, &n), BETANET_OK);
        EXPECT(betanet_noise_xk_read_message(r_hs, msg, n, NULL, s, &pn), s ? BETANET_E_INVALID : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_noise_xk_read_message(r_hs, msg, n, pay, s, NULL), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_read_message(NULL, msg, n, pay, s, &pn), BETANET_E_INVALID);
        pn = 7;
        EXPECT(betanet_noise_xk_read_message(r_hs, msg, n, pay, s, &pn), s >= 10 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        TRUE_(pn == (s >= 10 ? 10u : 0u));
        if (s < 10) {   /* nothing changed: the same message reads with room */
            EXPECT(betanet_noise_xk_action(r_hs), BETANET_NOISE_ACTION_READ);
            EXPECT(betanet_noise_xk_read_message(r_hs, msg, n, pay, sizeof pay, &pn), BETANET_OK);
        }
        TRUE_(memcmp(pay, PRO, 10) == 0);
        /* message 2 cut or padded to every length: sticky on the initiator */
        EXPECT(betanet_noise_xk_write_message(r_hs, NULL, 0, msg, sizeof msg, &m), BETANET_OK);
        if (s <= sizeof msg && s != m) {
            EXPECT(betanet_noise_xk_read_message(i_hs, msg, s, OUT, SIZE_MAX, &pn),
                   s < 48 ? BETANET_E_MALFORMED : BETANET_E_AUTH);
            EXPECT(betanet_noise_xk_action(i_hs), s < 48 ? BETANET_E_MALFORMED : BETANET_E_AUTH);
        } else if (s > 65535) {
            EXPECT(betanet_noise_xk_read_message(i_hs, msg, s, OUT, SIZE_MAX, &pn), BETANET_E_LIMIT);
            EXPECT(betanet_noise_xk_action(i_hs), BETANET_E_LIMIT);
        }
        betanet_noise_xk_free(i_hs);
        betanet_noise_xk_free(r_hs);
    }
    /* a low-order ephemeral key in message 1 (e = 0): CRYPTO, sticky */
    r_hs = responder();
    memset(msg, 0, 48);
    EXPECT(betanet_noise_xk_read_message(r_hs, msg, 48, pay, sizeof pay, &pn), BETANET_E_CRYPTO);
    expect_dead(r_hs, BETANET_E_CRYPTO);
    betanet_noise_xk_free(r_hs);
    /* a wrong prologue fails the tag */
    i_hs = initiator();
    EXPECT(betanet_noise_xk_new(BETANET_NOISE_RESPONDER, RPRIV, NULL, PRO, 17, &r_hs), BETANET_OK);
    EXPECT(betanet_noise_xk_write_message(i_hs, NULL, 0, msg, sizeof msg, &n), BETANET_OK);
    EXPECT(betanet_noise_xk_read_message(r_hs, msg, n, NULL, 0, &pn), BETANET_E_AUTH);
    betanet_noise_xk_free(i_hs);
    betanet_noise_xk_free(r_hs);
}

static void hostile_frames(void) {
    betanet_noise_xk_t *i_hs, *r_hs;
    uint8_t f[BETANET_NOISE_XK_MAX_FRAME_BYTES + 16], big[2 + 1024 + 8] = {0x04, 0x00};
    static const uint8_t over[4] = {0x04, 0x01, 0, 0}, ffff[2] = {0xff, 0xff}, short_[2 + 16] = {0, 16};
    size_t i, j, n, used;
    for (i = 2; i < sizeof big; i++) big[i] = (uint8_t)(i * 13 + 5);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        i_hs = initiator();
        r_hs = responder();
        /* write capacities: 2 + 48 for message 1 */
        EXPECT(betanet_noise_xk_write_frame(r_hs, f, s, &n), BETANET_E_STATE);
        EXPECT(betanet_noise_xk_write_frame(NULL, f, s, &n), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_write_frame(i_hs, NULL, s, &n), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_write_frame(i_hs, f, s, NULL), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_read_frame(i_hs, f, s > sizeof f ? sizeof f : s, &used), BETANET_E_STATE);
        EXPECT(betanet_noise_xk_write_frame(i_hs, f, s, &n), s >= 50 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        if (s < 50) EXPECT(betanet_noise_xk_write_frame(i_hs, f, 50, &n), BETANET_OK);
        TRUE_(n == 50 && f[0] == 0 && f[1] == 48);
        /* read lengths: a whole frame stops at its end whatever the length says */
        EXPECT(betanet_noise_xk_read_frame(r_hs, NULL, s, &used), s ? BETANET_E_INVALID : 0);
        EXPECT(betanet_noise_xk_read_frame(r_hs, f, s, NULL), BETANET_E_INVALID);
        EXPECT(betanet_noise_xk_read_frame(NULL, f, s, &used), BETANET_E_INVALID);
        if (s < n) {
            EXPECT(betanet_noise_xk_read_frame(r_hs, f, s, &used), 0);
            TRUE_(used == s && betanet_noise_xk_pending(r_hs) == s);
            EXPECT(betanet_noise_xk_read_frame(r_hs, f + s, n - s, &used), 1);
            TRUE_(used == n - s);
        } else {
            EXPECT(betanet_noise_xk_read_frame(r_hs, f, s, &used), 1);
            TRUE_(used == n);
        }
        TRUE_(betanet_noise_xk_pending(r_hs) == 0);
        /* message 2, byte by byte for one size */
        EXPECT(betanet_noise_xk_write_frame(r_hs, f, s < 2 ? s : SIZE_MAX, &n), s < 2 ? BETANET_E_BUFFER_TOO_SMALL : BETANET_OK);
        if (s < 2) EXPECT(betanet_noise_xk_write_frame(r_hs, f, sizeof f, &n), BETANET_OK);
        if (s == 1) {
            for (j = 0; j + 1 < n; j++) {
                EXPECT(betanet_noise_xk_read_frame(i_hs, f + j, 1, &used), 0);
                TRUE_(used == 1 && betanet_noise_xk_pending(i_hs) == j + 1);
            }
            EXPECT(betanet_noise_xk_read_frame(i_hs, f + j, SIZE_MAX, &used), 1);
        } else {
            EXPECT(betanet_noise_xk_read_frame(i_hs, f, SIZE_MAX, &used), 1);
        }
        TRUE_(used == (s == 1 ? 1 : n));
        /* message 3: 2 + 64 */
        EXPECT(betanet_noise_xk_write_frame(i_hs, f, s, &n), s >= 66 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        if (s < 66) EXPECT(betanet_noise_xk_write_frame(i_hs, f, 66, &n), BETANET_OK);
        memcpy(f + n, "HTX!", 4);   /* bytes after message 3 are not the handshake's */
        EXPECT(betanet_noise_xk_read_frame(r_hs, f, s < n ? n + 4 : s, &used), 1);
        TRUE_(used == n);
        EXPECT(betanet_noise_xk_action(r_hs), BETANET_NOISE_ACTION_SPLIT);
        EXPECT(betanet_noise_xk_read_frame(r_hs, f, s > sizeof f ? sizeof f : s, &used), BETANET_E_STATE);
        EXPECT(betanet_noise_xk_write_frame(r_hs, f, s, &n), BETANET_E_STATE);
        betanet_noise_xk_free(i_hs);
        betanet_noise_xk_free(r_hs);
        /* length prefixes above 1024 refused once their two bytes are in, whatever len says */
        r_hs = responder();
        EXPECT(betanet_noise_xk_read_frame(r_hs, s < 2 ? over : ffff, s < 2 ? s : SIZE_MAX - s + 2, &used),
               s < 2 ? 0 : BETANET_E_LIMIT);
        TRUE_(used == (s < 2 ? s : 2u));
        if (s < 2) {
            EXPECT(betanet_noise_xk_read_frame(r_hs, over + s, SIZE_MAX, &used), BETANET_E_LIMIT);
            TRUE_(used == 2 - s);
        }
        expect_dead(r_hs, BETANET_E_LIMIT);
        betanet_noise_xk_free(r_hs);
        /* the largest length (1024) of garbage, and a prefix shorter than message 1 */
        r_hs = responder();
        EXPECT(betanet_noise_xk_read_frame(r_hs, big, s < sizeof big ? s : SIZE_MAX, &used),
               s < 1026 ? 0 : BETANET_E_AUTH);
        TRUE_(used == (s < 1026 ? s : 1026u));
        betanet_noise_xk_free(r_hs);
        r_hs = responder();
        EXPECT(betanet_noise_xk_read_frame(r_hs, short_, s < sizeof short_ ? s : sizeof short_, &used),
               s < sizeof short_ ? 0 : BETANET_E_MALFORMED);
        betanet_noise_xk_free(r_hs);
    }
}

static void hostile_results(void) {
    static const betanet_htx_config_t BAD[] = {{UINT32_MAX, 0, 0, 0}, {1u << 24, 0, 0, 0}, {0, 0, 1, 0}};
    betanet_noise_xk_t *i_hs = initiator(), *r_hs = responder();
    betanet_htx_session_t *s = NULL;
    uint8_t k1[32], k2[32], h[32], h2[32], key[32];
    size_t i, j;
    /* before the handshake ends */
    for (i = 0; i < 3; i++) {
        betanet_noise_xk_t *pair[2] = {i_hs, r_hs};
        for (j = 0; j < 2; j++) {
            betanet_noise_xk_t *hs = pair[j];
            s = (betanet_htx_session_t *)h;
            EXPECT(betanet_noise_xk_split(hs, k1, k2, h), BETANET_E_STATE);
            EXPECT(betanet_noise_xk_split_htx(hs, NULL, 0, &s), BETANET_E_STATE);
            TRUE_(s == NULL);
            EXPECT(betanet_noise_xk_handshake_hash(hs, h), BETANET_E_STATE);
            EXPECT(betanet_noise_xk_remote_static(hs, key), j == 0 ? BETANET_OK : BETANET_E_STATE);
            if (j == 0) TRUE_(memcmp(key, RPUB, 32) == 0);
        }
        if (i == 1) step(r_hs, i_hs, 0);
        else step(i_hs, r_hs, i);
    }
    /* NULLs */
    EXPECT(betanet_noise_xk_split(NULL, k1, k2, h), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_split(i_hs, NULL, k2, h), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_split(i_hs, k1, NULL, h), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_split(i_hs, k1, k2, NULL), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_split_htx(NULL, NULL, 0, &s), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_split_htx(i_hs, NULL, 0, NULL), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_handshake_hash(NULL, h), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_handshake_hash(i_hs, NULL), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_remote_static(NULL, key), BETANET_E_INVALID);
    EXPECT(betanet_noise_xk_remote_static(r_hs, NULL), BETANET_E_INVALID);
    /* done: both sides agree */
    EXPECT(betanet_noise_xk_handshake_hash(i_hs, h), BETANET_OK);
    EXPECT(betanet_noise_xk_handshake_hash(r_hs, h2), BETANET_OK);
    TRUE_(memcmp(h, h2, 32) == 0);
    EXPECT(betanet_noise_xk_remote_static(r_hs, key), BETANET_OK);
    /* an HTX config out of range: the split is not consumed */
    for (i = 0; i < NELEM(BAD); i++) {
        s = (betanet_htx_session_t *)h;
        EXPECT(betanet_noise_xk_split_htx(r_hs, &BAD[i], 0, &s), BETANET_E_INVALID);
        TRUE_(s == NULL);
        EXPECT(betanet_noise_xk_action(r_hs), BETANET_NOISE_ACTION_SPLIT);
    }
    for (i = 0; i < NELEM(U64); i++) {   /* now_ms: any clock value starts a session */
        betanet_noise_xk_t *a = initiator(), *b = responder();
        step(a, b, 0);
        step(b, a, 0);
        step(a, b, 0);
        EXPECT(betanet_noise_xk_split_htx(a, NULL, U64[i], &s), BETANET_OK);
        betanet_htx_session_free(s);
        EXPECT(betanet_noise_xk_split_htx(a, NULL, U64[i], &s), BETANET_E_STATE);
        betanet_noise_xk_free(a);
        betanet_noise_xk_free(b);
    }
    EXPECT(betanet_noise_xk_split_htx(r_hs, NULL, UINT64_MAX, &s), BETANET_OK);
    betanet_htx_session_free(s);
    EXPECT(betanet_noise_xk_split(i_hs, k1, k2, h), BETANET_OK);
    /* after split: DONE, a second split refused, the hash still there */
    EXPECT(betanet_noise_xk_action(i_hs), BETANET_NOISE_ACTION_DONE);
    EXPECT(betanet_noise_xk_action(r_hs), BETANET_NOISE_ACTION_DONE);
    EXPECT(betanet_noise_xk_split(i_hs, k1, k2, h), BETANET_E_STATE);
    EXPECT(betanet_noise_xk_split(r_hs, k1, k2, h), BETANET_E_STATE);
    EXPECT(betanet_noise_xk_split_htx(i_hs, NULL, 0, &s), BETANET_E_STATE);
    EXPECT(betanet_noise_xk_split_htx(r_hs, NULL, 0, &s), BETANET_E_STATE);
    EXPECT(betanet_noise_xk_handshake_hash(i_hs, h2), BETANET_OK);
    TRUE_(memcmp(h, h2, 32) == 0);
    EXPECT(betanet_noise_xk_remote_static(i_hs, key), BETANET_OK);
    EXPECT(betanet_noise_xk_write_message(i_hs, NULL, 0, OUT, SIZE_MAX, &i), BETANET_E_STATE);
    EXPECT(betanet_noise_xk_read_frame(r_hs, OUT, 2, &i), BETANET_E_STATE);
    betanet_noise_xk_free(i_hs);
    betanet_noise_xk_free(r_hs);
}

int main(void) {
    size_t i;
    for (i = 0; i < sizeof PRO; i++) PRO[i] = (uint8_t)(i + 1);
    hostile_new();
    hostile_write_message();
    hostile_read_message();
    hostile_frames();
    hostile_results();
    return hostile_report();
}
