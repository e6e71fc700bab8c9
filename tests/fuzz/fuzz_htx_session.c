/* fuzz_htx_session.c — two HTX sessions (initiator and responder) driven by a program in
 * the input, so mutations reach the authenticated side of the channel: sealing every frame
 * type (valid and malformed plaintext shapes), the key-update schedule by frames, bytes and
 * time, forced KEY_UPDATEs, delivery in any split, and corruption, loss and replay on the
 * wire. (Random bytes fed to one parser stop at the tag check: fuzz_htx_parser plateaued
 * there.) Oracle: on an untouched direction every sealed frame arrives once, in order, with
 * its type, stream id and plaintext; a frame whose shape is wrong (by the rules of
 * docs/htx.md, restated below) is refused with BETANET_E_MALFORMED; errors are sticky; a
 * failed seal changes nothing (else the next frame would not authenticate).
 *
 * Program: byte 0 picks the limits; then ops, one byte each (bit 7: direction, low 3 bits:
 * kind) with argument bytes after it:
 *   0 seal_stream sid flags len   1 seal type sid len (raw plaintext from the input)
 *   2 advance clock by arg*20 s   3 force KEY_UPDATE
 *   4 deliver in chunks of arg+1  5 corrupt a wire byte (pos_hi pos_lo xor)
 *   6 lose what is on the wire    7 replay what is on the wire */
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

#define WIRE_CAP (1u << 17)
#define MAXQ 512

static const uint8_t K1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                               17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t K2[32] = {99};
static const uint8_t HH[32] = {7};

struct expect { int type; uint64_t sid; size_t off, len; int valid; };
struct dir {
    betanet_htx_session_t *tx, *rx;
    uint8_t wire[WIRE_CAP];
    size_t wire_len;
    struct expect q[MAXQ];
    size_t qhead, qlen;
    uint8_t pool[WIRE_CAP];
    size_t pool_len;
    int tampered;     /* corrupted, lost or replayed bytes: no exact oracle any more */
    int failed;       /* the receiver returned this error (sticky) */
};

static struct dir D[2];
static uint8_t pt[16384 + 16], out[16384];

/* The plaintext shapes the receiver accepts (docs/htx.md), independent of the core. */
static int shape_ok(int t, const uint8_t *p, size_t n) {
    switch (t) {
    case BETANET_HTX_STREAM: return n >= 1 && !(p[0] & ~0x03) && (!(p[0] & 0x02) || n == 3);
    case BETANET_HTX_PING: return n == 9 && !(p[0] & ~0x01);
    case BETANET_HTX_CLOSE: return n >= 2;
    case BETANET_HTX_KEY_UPDATE: return n == 0;
    case BETANET_HTX_WINDOW_UPDATE: return n >= 1 && ((size_t)1 << (p[0] >> 6)) == n;
    }
    return 0;
}

static void record(struct dir *d, int type, uint64_t sid, const uint8_t *p, size_t n) {
    struct expect *e;
    if (type == BETANET_HTX_KEY_UPDATE)
        return;                        /* scheduled ones are not ours to predict: skipped */
    if (d->qlen == MAXQ || d->pool_len + n > sizeof d->pool) {
        d->tampered = 1;               /* the model is full: keep running without it */
        return;
    }
    e = &d->q[(d->qhead + d->qlen++) % MAXQ];
    e->type = type; e->sid = sid; e->off = d->pool_len; e->len = n;
    e->valid = shape_ok(type, p, n);
    memcpy(d->pool + d->pool_len, p, n);
    d->pool_len += n;
}

static void sealed(struct dir *d, int rc, size_t n) {
    if (rc == 0)
        d->wire_len += n;
}

/* One received frame against the model. */
static void check_frame(struct dir *d, const betanet_htx_frame_t *fr, size_t max_frame) {
    struct expect *e;
    if (fr->length > max_frame)
        abort();
    if (fr->type == BETANET_HTX_KEY_UPDATE || d->tampered)
        return;
    if (!d->qlen)
        abort();                       /* a frame nobody sent */
    e = &d->q[d->qhead];
    if (!e->valid || e->type != fr->type || e->sid != fr->stream_id || e->len != fr->length ||
        memcmp(d->pool + e->off, out, e->len) != 0)
        abort();
    d->qhead = (d->qhead + 1) % MAXQ;
    d->qlen--;
    if (!d->qlen)
        d->pool_len = 0;
}

static void deliver(struct dir *d, size_t step, size_t max_frame) {
    size_t off = 0;
    while (off < d->wire_len && !d->failed) {
        size_t n = d->wire_len - off < step ? d->wire_len - off : step, used = 0;
        betanet_htx_frame_t fr;
        int rc = betanet_htx_session_open(d->rx, d->wire + off, n, &used, &fr, out, sizeof out);
        if (used > n)
            abort();
        if (rc < 0) {
            if (!d->tampered) {    /* untouched wire: only a malformed shape may fail */
                if (rc != BETANET_E_MALFORMED || !d->qlen || d->q[d->qhead].valid)
                    abort();
            }
            d->failed = rc;
            if (betanet_htx_session_open(d->rx, d->wire + off, n, &used, &fr, out, sizeof out) != rc)
                abort();           /* errors are sticky */
            break;
        }
        if (rc == 0 && used != n)
            abort();               /* "need more" means every byte was taken */
        if (rc == 1)
            check_frame(d, &fr, max_frame);
        off += used;
    }
    if (!d->failed && !d->tampered && (d->qlen || betanet_htx_session_pending(d->rx)))
        abort();                   /* everything sent whole arrived */
    d->wire_len = 0;
}

static size_t take(const uint8_t **p, const uint8_t *end, uint8_t *dst, size_t n) {
    size_t have = (size_t)(end - *p) < n ? (size_t)(end - *p) : n, i;
    memcpy(dst, *p, have);
    for (i = have; i < n; i++)
        dst[i] = (uint8_t)(i * 31 + 7);   /* short input: a fixed filler */
    *p += have;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data, *end = data + size;
    betanet_htx_config_t cfg = {0};
    uint64_t now = 0;
    size_t max_frame;
    int i;
    if (betanet_init() != 0 || size < 1)
        return 0;
#define ARG() (p < end ? *p++ : 0)
    {
        uint8_t m = ARG();
        static const uint32_t frames[4] = {64, 300, 1024, 16384};
        static const uint64_t bytes[4] = {0, 100, 2000, 50000};
        cfg.max_frame = frames[m & 3];
        cfg.rekey_bytes = bytes[(m >> 2) & 3];
        cfg.rekey_frames = 2 + (m >> 4);
        cfg.rekey_ms = 60000;
    }
    max_frame = cfg.max_frame;
    for (i = 0; i < 2; i++) {          /* not the buffers: a memset of them per input costs 10x */
        D[i].wire_len = D[i].qhead = D[i].qlen = D[i].pool_len = 0;
        D[i].tampered = D[i].failed = 0;
    }
    if (betanet_htx_session_new(BETANET_HTX_INITIATOR, K1, K2, HH, &cfg, now, &D[0].tx) != 0 ||
        betanet_htx_session_new(BETANET_HTX_RESPONDER, K1, K2, HH, &cfg, now, &D[1].tx) != 0)
        abort();
    D[0].rx = D[1].tx;                 /* direction 0: initiator -> responder */
    D[1].rx = D[0].tx;
    while (p < end) {
        uint8_t op = *p++;
        struct dir *d = &D[op >> 7];
        size_t n = 0, len;
        int rc;
        switch (op & 7) {
        case 0: {
            uint64_t sid = ARG();
            uint8_t flags = ARG() & 3;
            len = (size_t)ARG() * (max_frame / 256 + 1);
            if (len > max_frame)
                len = max_frame;
            if (WIRE_CAP - d->wire_len < BETANET_HTX_SEAL_BYTES(len + 1))
                break;
            pt[0] = flags;
            take(&p, end, pt + 1, len);
            rc = betanet_htx_session_seal_stream(d->tx, sid, flags, pt + 1, len, now,
                                                 d->wire + d->wire_len, WIRE_CAP - d->wire_len, &n);
            sealed(d, rc, n);
            if (rc == 0)
                record(d, BETANET_HTX_STREAM, sid, pt, len + 1);
            else if (rc != BETANET_E_LIMIT)  /* len + 1 > max_frame is the only refusal */
                abort();
            break;
        }
        case 1: {
            int type = ARG() % 6;
            uint64_t sid = ARG();
            len = ARG();
            if (len > max_frame || WIRE_CAP - d->wire_len < BETANET_HTX_SEAL_BYTES(len))
                break;
            take(&p, end, pt, len);
            rc = betanet_htx_session_seal(d->tx, type, sid, pt, len, now,
                                          d->wire + d->wire_len, WIRE_CAP - d->wire_len, &n);
            sealed(d, rc, n);
            if (rc == 0)
                record(d, type, sid, pt, len);
            break;
        }
        case 2:
            now += (uint64_t)ARG() * 20000;
            break;
        case 3:
            if (WIRE_CAP - d->wire_len < BETANET_HTX_SEAL_BYTES(0))
                break;
            rc = betanet_htx_session_seal(d->tx, BETANET_HTX_KEY_UPDATE, 0, NULL, 0, now,
                                          d->wire + d->wire_len, WIRE_CAP - d->wire_len, &n);
            sealed(d, rc, n);
            break;
        case 4:
            deliver(d, 1 + (size_t)ARG() * 3, max_frame);
            break;
        case 5: {
            size_t pos = (size_t)ARG() << 8;
            uint8_t x;
            pos |= ARG();
            x = ARG();
            if (d->wire_len && x) {
                d->wire[pos % d->wire_len] ^= x;
                d->tampered = 1;
            }
            break;
        }
        case 6:
            if (d->wire_len)
                d->tampered = 1;
            d->wire_len = 0;
            break;
        case 7:
            if (d->wire_len && d->wire_len * 2 <= WIRE_CAP) {
                memcpy(d->wire + d->wire_len, d->wire, d->wire_len);
                d->wire_len *= 2;
                d->tampered = 1;
            }
            break;
        }
    }
#undef ARG
    for (i = 0; i < 2; i++)            /* whatever is still on the wire arrives at the end */
        deliver(&D[i], 4096, max_frame);
    betanet_htx_session_free(D[0].tx);
    betanet_htx_session_free(D[1].tx);
    return 0;
}

/* Seeds: programs that talk both ways with every frame type, key updates and splits. */
size_t fuzz_seed_input(uint8_t *buf, size_t cap, unsigned idx) {
    static const uint8_t seeds[][40] = {
        {0x31, 0x00, 1, 0, 20, 'h', 'e', 'l', 'l', 'o', 0x04, 0, 0x80, 2, 1, 5, 'w', 'o', 'r',
         'l', 'd', 0x84, 6},
        {0x06, 0x01, 1, 0, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x01, 2, 0, 4, 0, 0, 'b', 'y',
         0x01, 4, 3, 1, 0x40, 0x04, 1},
        {0x22, 0x00, 3, 0, 50, 0x03, 0x00, 3, 1, 10, 0x02, 9, 0x00, 3, 1, 10, 0x04, 0},
        {0x13, 0x00, 5, 2, 2, 0, 7, 0x00, 5, 1, 0, 0x80, 9, 0, 3, 'a', 'b', 'c', 0x04, 2, 0x84, 0},
        {0x00, 0x00, 1, 0, 3, 'x', 'y', 'z', 0x07, 0x04, 0},
        {0x00, 0x00, 1, 0, 3, 'x', 'y', 'z', 0x05, 0, 6, 0x10, 0x04, 0},
    };
    size_t n;
    if (idx >= sizeof seeds / sizeof seeds[0])
        return 0;
    n = sizeof seeds[idx];
    while (n && !seeds[idx][n - 1])
        n--;                            /* trailing zeros are padding */
    if (n > cap)
        return 0;
    memcpy(buf, seeds[idx], n);
    return n;
}
