/* hostile_sizes.c — every exported function of the base, fec, htx, sphinx and vrf sections
 * called with hostile sizes and counts: 0, 1, SIZE_MAX, SIZE_MAX - small, INT_MAX,
 * 2^31, 2^32, negative values seen as unsigned. Built against the ASan + UBSan library by
 * tests/test_hostile_sizes.py; any out-of-bounds access, overflow or leak aborts, and every
 * call must return a documented status (listed at each check).
 *
 * A length that describes a caller buffer cannot be checked by any library, so the rule
 * here is: the buffers are real and as large as the call may legitimately touch; a hostile
 * size must be rejected (or be harmless) before the library reads or writes past that.
 * A size above a documented limit is always rejected before any access (issue 9 defects
 * 9 and 10 were sums of such sizes that wrapped). */
#include "hostile_sizes.h"

/* ---- base ------------------------------------------------------------------------------- */
static void host_free(void *p, void *ctx) { (void)ctx; free(p); }

static void hostile_base(void) {
    static const int codes[] = {INT_MIN, INT_MIN + 1, -16, -1, 0, 1, 16, INT_MAX};
    size_t i;
    EXPECT(betanet_init(), BETANET_OK);
    for (i = 0; i < NELEM(codes); i++) {
        TRUE_(betanet_strerror(codes[i]) != NULL);
        TRUE_((betanet_error_name(codes[i]) != NULL) == (codes[i] <= 0 && codes[i] >= -15));
    }
    TRUE_(betanet_version_string() != NULL);
    TRUE_(betanet_version_number() == (BETANET_VERSION_MAJOR << 16 | BETANET_VERSION_MINOR << 8 | BETANET_VERSION_PATCH));
    {
        unsigned int all = betanet_cpu_features();
        TRUE_(betanet_cpu_restrict(0) == 0);
        TRUE_(betanet_cpu_restrict(UINT_MAX) == all);
    }
    EXPECT(betanet_set_allocator(NULL, host_free, NULL), BETANET_E_INVALID);
    EXPECT(betanet_set_allocator(NULL, NULL, NULL), BETANET_OK);
}

/* ---- fec -------------------------------------------------------------------------------- */
static void fec_roundtrip(betanet_fec_t *f, unsigned k, unsigned m) {
    /* a valid handle must work on 0 and 1 byte shards */
    uint8_t *buf = calloc(k + m, 1);
    uint8_t **sh = calloc(k + m, sizeof *sh);
    uint8_t *present = calloc(k + m, 1);
    unsigned i;
    for (i = 0; i < k + m; i++) { sh[i] = buf + i; present[i] = 1; buf[i] = (uint8_t)(i * 7); }
    EXPECT(betanet_fec_encode(f, (const uint8_t *const *)sh, sh + k, 0), BETANET_OK);
    EXPECT(betanet_fec_encode(f, (const uint8_t *const *)sh, sh + k, 1), BETANET_OK);
    {   /* nothing missing: a pattern that writes nothing, even for SIZE_MAX */
        betanet_fec_pattern_t *p = (betanet_fec_pattern_t *)1;
        EXPECT(betanet_fec_pattern_new(f, present, &p), BETANET_OK);
        EXPECT(betanet_fec_pattern_reconstruct(p, sh, SIZE_MAX), BETANET_OK);
        betanet_fec_pattern_free(p);
    }
    present[0] = 0;
    EXPECT(betanet_fec_reconstruct(f, sh, present, 1), BETANET_OK);
    {
        betanet_fec_pattern_t *p = NULL;
        EXPECT(betanet_fec_pattern_new(f, present, &p), BETANET_OK);
        EXPECT(betanet_fec_pattern_reconstruct(p, sh, 0), BETANET_OK);
        EXPECT(betanet_fec_pattern_reconstruct(p, sh, 1), BETANET_OK);
        EXPECT(betanet_fec_pattern_reconstruct(p, NULL, SIZE_MAX), BETANET_E_INVALID);
        betanet_fec_pattern_free(p);
    }
    EXPECT(betanet_fec_correct(f, sh, NULL, 1, NULL, NULL), BETANET_OK);
    memset(present, 0, k + m);
    EXPECT(betanet_fec_reconstruct(f, sh, present, 1), BETANET_E_UNCORRECTABLE);
    {
        betanet_fec_pattern_t *p = (betanet_fec_pattern_t *)1;
        EXPECT(betanet_fec_pattern_new(f, present, &p), BETANET_E_UNCORRECTABLE);
        TRUE_(p == NULL);
    }
    EXPECT(betanet_fec_correct(f, sh, present, 1, NULL, NULL), BETANET_E_UNCORRECTABLE);
    free(present); free(sh); free(buf);
}

static void hostile_fec(void) {
    size_t a, b;
    betanet_fec_t *f;
    for (a = 0; a < NELEM(U32); a++)
        for (b = 0; b < NELEM(U32); b++) {
            uint32_t k = U32[a], m = U32[b];
            int valid = k >= 1 && m >= 1 && (uint64_t)k + m <= BETANET_FEC_MAX_SHARDS;
            f = (betanet_fec_t *)1;
            if (valid) {
                EXPECT(betanet_fec_new(k, m, &f), BETANET_OK);
                fec_roundtrip(f, k, m);
                betanet_fec_free(f);
            } else {
                EXPECT(betanet_fec_new(k, m, &f), BETANET_E_INVALID);
                TRUE_(f == NULL);
            }
        }
    /* k + m near 2^32 and 2^33: the sums that wrapped (issue 9 defect 9) */
    EXPECT(betanet_fec_new(2, 0xFFFFFFFFu, &f), BETANET_E_INVALID);
    EXPECT(betanet_fec_new(0xFFFFFFFFu, 2, &f), BETANET_E_INVALID);
    EXPECT(betanet_fec_new(0x80000000u, 0x80000000u, &f), BETANET_E_INVALID);
    EXPECT(betanet_fec_new(UINT_MAX - 253, 255, &f), BETANET_E_INVALID);
    EXPECT(betanet_fec_new(2, 2, NULL), BETANET_E_INVALID);
    EXPECT(betanet_fec_encode(NULL, NULL, NULL, SIZE_MAX), BETANET_E_INVALID);
    EXPECT(betanet_fec_reconstruct(NULL, NULL, NULL, SIZE_MAX), BETANET_E_INVALID);
    EXPECT(betanet_fec_correct(NULL, NULL, NULL, SIZE_MAX, NULL, NULL), BETANET_E_INVALID);
    EXPECT(betanet_fec_pattern_new(NULL, NULL, NULL), BETANET_E_INVALID);
    EXPECT(betanet_fec_pattern_reconstruct(NULL, NULL, SIZE_MAX), BETANET_E_INVALID);
    betanet_fec_pattern_free(NULL);
    betanet_fec_free(NULL);
    TRUE_(betanet_fec_kernel() != NULL);
}

/* ---- htx -------------------------------------------------------------------------------- */
static uint8_t K1[32] = {1}, K2[32] = {2}, HASH[32] = {3}, NS[12];
static uint8_t *big;        /* 64 KiB of plaintext, enough for any length the calls may read */
enum { BIG = 65536 };

static betanet_htx_session_t *session(int role, uint32_t max_frame) {
    betanet_htx_session_t *s = NULL;
    betanet_htx_config_t c = {0};
    c.max_frame = max_frame;
    EXPECT(betanet_htx_session_new(role, K1, K2, HASH, &c, 0, &s), BETANET_OK);
    return s;
}

static void hostile_htx(void) {
    uint8_t out[BIG + 64], frame[128], v[8] = {0};
    size_t i, j, n, used;
    uint64_t val;
    int type;
    betanet_htx_frame_t fr;
    betanet_htx_stats_t st;

    TRUE_(betanet_htx_key_bytes() == BETANET_HTX_KEY_BYTES && betanet_htx_ns_bytes() == BETANET_HTX_NS_BYTES);
    TRUE_(betanet_htx_hash_bytes() == BETANET_HTX_HASH_BYTES && betanet_htx_tag_bytes() == BETANET_HTX_TAG_BYTES);
    TRUE_(betanet_htx_overhead_bytes() == BETANET_HTX_OVERHEAD_BYTES);
    /* varints: a cap above 8 is harmless (at most 8 bytes are written or read) */
    for (i = 0; i < NELEM(U64); i++)
        for (j = 0; j < NELEM(SIZES); j++) {
            int rc = betanet_htx_varint_encode(U64[i], v, SIZES[j], &n);
            EXPECT(rc, BETANET_OK, BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL);
            if (U64[i] > BETANET_HTX_VARINT_MAX) EXPECT(rc, BETANET_E_INVALID);
            EXPECT(betanet_htx_varint_decode(v, SIZES[j], &val, &n), BETANET_OK, BETANET_E_MALFORMED);
        }
    EXPECT(betanet_htx_derive_ns(K1, NS), BETANET_OK);
    EXPECT(betanet_htx_derive_ns(NULL, NS), BETANET_E_INVALID);
    for (j = 0; j < NELEM(SIZES); j++)       /* hash_len > 64 is refused before reading */
        EXPECT(betanet_htx_next_key(K1, big, SIZES[j], out), SIZES[j] <= 64 ? BETANET_OK : BETANET_E_INVALID);

    /* stateless codec */
    for (j = 0; j < NELEM(SIZES); j++) {
        size_t len = SIZES[j];
        int rc = betanet_htx_frame_seal(K1, NS, 0, BETANET_HTX_STREAM, 1, big, len, out, sizeof out, &n);
        EXPECT(rc, len <= BETANET_HTX_MAX_FRAME_LIMIT_BYTES ? BETANET_OK : BETANET_E_INVALID);
        for (i = 0; i < NELEM(SIZES); i++)    /* caps above sizeof out: writes stay inside */
            EXPECT(betanet_htx_frame_seal(K1, NS, 0, BETANET_HTX_PING, 0, big, len, out, SIZES[i], &n),
                   BETANET_OK, BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL);
    }
    EXPECT(betanet_htx_frame_seal(K1, NS, 0, BETANET_HTX_STREAM, 1, big, BETANET_HTX_MAX_FRAME_LIMIT_BYTES,
                                  out, 100, &n), BETANET_E_BUFFER_TOO_SMALL);
    EXPECT(betanet_htx_frame_seal(K1, NS, 0, BETANET_HTX_STREAM, UINT64_MAX, big, 1, out, sizeof out, &n),
           BETANET_E_INVALID);
    EXPECT(betanet_htx_frame_seal(K1, NS, 0, INT_MIN, 0, big, 1, out, sizeof out, &n), BETANET_E_INVALID);
    EXPECT(betanet_htx_frame_seal(K1, NS, 0, INT_MAX, 0, big, 1, out, sizeof out, &n), BETANET_E_INVALID);
    /* a real 10-byte frame; opening reads only its own bytes whatever len says */
    EXPECT(betanet_htx_frame_seal(K1, NS, 7, BETANET_HTX_STREAM, 5, big, 10, frame, sizeof frame, &n), BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++)
        for (j = 0; j < NELEM(U32); j++) {
            uint64_t sid;
            size_t plen, consumed;
            int rc = betanet_htx_frame_open(K1, NS, 7, frame, SIZES[i], U32[j], &type, &sid, out,
                                            sizeof out, &plen, &consumed);
            EXPECT(rc, BETANET_OK, BETANET_E_MALFORMED, BETANET_E_LIMIT);
            if (SIZES[i] < n) EXPECT(rc, BETANET_E_MALFORMED, BETANET_E_LIMIT);
            rc = betanet_htx_frame_open(K1, NS, 7, frame, n, 16384, &type, &sid, out, SIZES[i], &plen, &consumed);
            EXPECT(rc, SIZES[i] >= 10 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        }

    /* sessions: configured limits */
    for (i = 0; i < NELEM(U32); i++)
        for (j = 0; j < NELEM(U64); j++) {
            betanet_htx_session_t *s = (betanet_htx_session_t *)1;
            betanet_htx_config_t c = {0};
            int rc;
            c.max_frame = U32[i];
            c.rekey_frames = U64[j];
            c.rekey_bytes = U64[j];
            c.rekey_ms = U64[j];
            rc = betanet_htx_session_new(BETANET_HTX_INITIATOR, K1, K2, HASH, &c, UINT64_MAX, &s);
            EXPECT(rc, BETANET_OK, BETANET_E_INVALID);
            if (U32[i] > BETANET_HTX_MAX_FRAME_LIMIT_BYTES || U64[j] == 1) EXPECT(rc, BETANET_E_INVALID);
            if (rc == BETANET_OK) {
                size_t mf = betanet_htx_session_max_frame(s);
                if (mf <= BIG) {
                    EXPECT(betanet_htx_session_seal(s, BETANET_HTX_CLOSE, 0, big, 2, UINT64_MAX, out,
                                                    sizeof out, &n), BETANET_OK, BETANET_E_LIMIT);
                }
                betanet_htx_session_free(s);
            } else {
                TRUE_(s == NULL);
            }
        }
    for (i = 0; i < 5; i++) {       /* roles and types outside their range */
        static const int bad[] = {-1, 2, INT_MAX, INT_MIN, 255};
        betanet_htx_session_t *s;
        EXPECT(betanet_htx_session_new(bad[i], K1, K2, HASH, NULL, 0, &s), BETANET_E_INVALID);
    }

    {
        betanet_htx_session_t *tx = session(BETANET_HTX_INITIATOR, 0);
        size_t mf = betanet_htx_session_max_frame(tx);
        static const int types[] = {-1, 0, 1, 2, 3, 4, 5, INT_MAX, INT_MIN};
        for (i = 0; i < NELEM(SIZES); i++) {
            size_t len = SIZES[i];
            /* seal_stream: plaintext is 1 + len bytes; 1 + SIZE_MAX wrapped (issue 9 defect 10) */
            int rc = betanet_htx_session_seal_stream(tx, 1, 0, big, len, 0, out, sizeof out, &n);
            EXPECT(rc, len < mf ? BETANET_OK : BETANET_E_LIMIT);
            for (j = 0; j < NELEM(SIZES); j++)     /* caps above sizeof out: writes stay inside */
                EXPECT(betanet_htx_session_seal_stream(tx, 1, 0, big, len, 0, out, SIZES[j], &n),
                       BETANET_OK, BETANET_E_LIMIT, BETANET_E_BUFFER_TOO_SMALL);
            for (j = 0; j < NELEM(types); j++) {
                rc = betanet_htx_session_seal(tx, types[j], 0, big, len, 0, out, sizeof out, &n);
                EXPECT(rc, BETANET_OK, BETANET_E_INVALID, BETANET_E_LIMIT);
                if (len > mf) EXPECT(rc, BETANET_E_INVALID, BETANET_E_LIMIT);
            }
            EXPECT(betanet_htx_session_seal_stream(tx, UINT64_MAX, 0, big, len, 0, out, sizeof out, &n),
                   BETANET_E_INVALID, BETANET_E_LIMIT);
        }
        EXPECT(betanet_htx_session_seal_stream(tx, 1, 0, big, mf - 1, 0, out, sizeof out, &n), BETANET_OK);
        EXPECT(betanet_htx_session_seal_stream(tx, 1, 0, big, mf, 0, out, sizeof out, &n), BETANET_E_LIMIT);
        EXPECT(betanet_htx_session_seal_stream(tx, 1, 0xFF, big, 1, 0, out, sizeof out, &n), BETANET_E_INVALID);
        EXPECT(betanet_htx_session_stats(tx, &st), BETANET_OK);
        EXPECT(betanet_htx_session_stats(NULL, &st), BETANET_E_INVALID);
        betanet_htx_session_free(tx);
    }
    /* open: any len over one real frame, any cap */
    for (i = 0; i < NELEM(SIZES); i++) {
        betanet_htx_session_t *tx = session(BETANET_HTX_INITIATOR, 0);
        betanet_htx_session_t *rx = session(BETANET_HTX_RESPONDER, 0);
        size_t flen;
        EXPECT(betanet_htx_session_seal_stream(tx, 3, 0, big, 40, 0, frame, sizeof frame, &flen), BETANET_OK);
        used = 0;
        EXPECT(betanet_htx_session_open(rx, frame, SIZES[i] < flen ? SIZES[i] : flen, &used, &fr, out, sizeof out),
               SIZES[i] < flen ? 0 : 1);
        EXPECT(betanet_htx_session_open(rx, frame, SIZES[i], &used, &fr, out, 16383), BETANET_E_BUFFER_TOO_SMALL);
        TRUE_(betanet_htx_session_pending(rx) <= flen);
        betanet_htx_session_free(rx);
        rx = session(BETANET_HTX_RESPONDER, 0);
        EXPECT(betanet_htx_session_open(rx, frame, SIZES[i] > flen ? SIZES[i] : flen, &used, &fr, out, sizeof out), 1);
        TRUE_(used == flen && fr.length == 41);
        betanet_htx_session_free(rx);
        betanet_htx_session_free(tx);
    }
    EXPECT(betanet_htx_session_open(NULL, frame, SIZE_MAX, &used, &fr, out, SIZE_MAX), BETANET_E_INVALID);
    TRUE_(betanet_htx_session_max_frame(NULL) == 0 && betanet_htx_session_pending(NULL) == 0);
    betanet_htx_session_free(NULL);
}

/* ---- sphinx ----------------------------------------------------------------------------- */
static void hostile_sphinx(void) {
    static const uint32_t hops_v[] = {0, 1, 2, 16, 17, UINT32_MAX};
    static const uint32_t pay_v[] = {0, 63, 64, 65536, 65537, UINT32_MAX};
    static const size_t nh_v[] = {0, 1, 2, 16, 17, SIZE_MAX, (size_t)INT_MAX + 1};
    enum { MAXPKT = 4 + 32 + 16 * 53 + 16 + 65536, MAXSURB = 64 + 4 + 32 + 16 * 53 + 16 };
    uint8_t pk[32], sk[32], id[32] = {9}, sid[16], first[32];
    uint8_t *pkt = calloc(2, MAXPKT), *out = calloc(2, MAXPKT), *surb = calloc(1, MAXSURB);
    uint8_t secret[16 + 32 + 1 + 16 * 32];
    betanet_sphinx_hop_t route[16];
    betanet_sphinx_result_t res[2];
    betanet_sphinx_node_t *node;
    size_t a, b, c, i;

    TRUE_(betanet_sphinx_key_bytes() == BETANET_SPHINX_KEY_BYTES && betanet_sphinx_id_bytes() == BETANET_SPHINX_ID_BYTES);
    for (a = 0; a < NELEM(U32); a++)
        for (b = 0; b < NELEM(U32); b++) {
            size_t p = betanet_sphinx_packet_bytes(U32[a], U32[b]);
            TRUE_(p == 0 || p == BETANET_SPHINX_PACKET_BYTES((size_t)U32[a], (size_t)U32[b]));
            (void)betanet_sphinx_header_bytes(U32[a]);
            (void)betanet_sphinx_body_bytes(U32[b]);
            (void)betanet_sphinx_surb_bytes(U32[a]);
            (void)betanet_sphinx_surb_secret_bytes(U32[a]);
        }
    EXPECT(betanet_sphinx_keypair(pk, sk, NULL), BETANET_OK);
    EXPECT(betanet_sphinx_keypair(NULL, sk, NULL), BETANET_E_INVALID);
    for (i = 0; i < 16; i++) {
        memset(route[i].node_id, (int)i + 1, 32);
        memcpy(route[i].public_key, pk, 32);
        route[i].delay_ms = UINT32_MAX;
    }
    for (a = 0; a < NELEM(hops_v); a++)
        for (b = 0; b < NELEM(pay_v); b++)
            for (c = 0; c < NELEM(nh_v); c++) {
                uint32_t h = hops_v[a], p = pay_v[b];
                size_t nh = nh_v[c];
                static const size_t body_v[] = {0, 1, 48, 49, 65520, 65521, SIZE_MAX, SIZE_MAX - 15, (size_t)-48};
                size_t d;
                if (nh > 2 && nh != h && nh < SIZE_MAX / 2) continue;   /* keep the X25519 count small */
                for (d = 0; d < NELEM(body_v); d++) {
                    int rc = betanet_sphinx_create(h, p, 1, route, nh, id, big, body_v[d], NULL, pkt, MAXPKT);
                    EXPECT(rc, BETANET_OK, BETANET_E_INVALID);
                    if (p >= 16 && body_v[d] > (size_t)p - 16) EXPECT(rc, BETANET_E_INVALID);
                }
                EXPECT(betanet_sphinx_create(h, p, 1, route, nh, id, big, 0, NULL, pkt, 0),
                       BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL);
                for (i = 0; i < NELEM(SIZES); i++)
                    EXPECT(betanet_sphinx_surb_create(h, p, 1, route, nh, id, NULL, surb, SIZES[i], secret,
                                                      i < 14 ? SIZES[i] : sizeof secret, sid),
                           BETANET_OK, BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL);
            }

    /* a real geometry (5 hops, 2048) for the SURB and node calls */
    EXPECT(betanet_sphinx_surb_create(5, 2048, 1, route, 3, id, NULL, surb, MAXSURB, secret, sizeof secret, sid),
           BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t sb = betanet_sphinx_surb_bytes(5), kb = betanet_sphinx_surb_secret_bytes(5);
        EXPECT(betanet_sphinx_surb_use(5, 2048, surb, SIZES[i], big, 10, first, pkt, MAXPKT),
               SIZES[i] == sb ? BETANET_OK : BETANET_E_MALFORMED);
        EXPECT(betanet_sphinx_surb_use(5, 2048, surb, sb, big, SIZES[i], first, pkt, MAXPKT),
               SIZES[i] <= 2032 ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_sphinx_surb_use(5, 2048, surb, sb, big, 10, first, pkt, SIZES[i]),
               BETANET_OK, BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_sphinx_surb_open(5, 2048, secret, SIZES[i], pkt, 2048, out, MAXPKT),
               SIZES[i] == kb ? BETANET_E_AUTH : BETANET_E_MALFORMED);
        EXPECT(betanet_sphinx_surb_open(5, 2048, secret, kb, pkt, SIZES[i], out, MAXPKT),
               SIZES[i] == 2048 ? BETANET_E_AUTH : BETANET_E_MALFORMED);
        EXPECT(betanet_sphinx_surb_open(5, 2048, secret, kb, pkt, 2048, out, SIZES[i]),
               BETANET_E_AUTH, BETANET_E_BUFFER_TOO_SMALL);
    }

    for (a = 0; a < NELEM(hops_v); a++)
        for (b = 0; b < NELEM(pay_v); b++)
            for (i = 0; i < NELEM(SIZES); i++) {
                int rc;
                node = (betanet_sphinx_node_t *)1;
                rc = betanet_sphinx_node_new(hops_v[a], pay_v[b], SIZES[i], &node);
                EXPECT(rc, BETANET_OK, BETANET_E_INVALID);
                if (SIZES[i] == 0 || SIZES[i] > (1u << 28)) EXPECT(rc, BETANET_E_INVALID);
                if (rc == BETANET_OK) betanet_sphinx_node_free(node); else TRUE_(node == NULL);
            }

    EXPECT(betanet_sphinx_node_new(5, 2048, 64, &node), BETANET_OK);
    EXPECT(betanet_sphinx_node_add_key(node, 1, sk), BETANET_OK);
    EXPECT(betanet_sphinx_node_add_key(node, UINT32_MAX, sk), BETANET_OK);
    EXPECT(betanet_sphinx_create(5, 2048, 1, route, 5, id, big, 100, NULL, pkt, MAXPKT), BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t pb = betanet_sphinx_packet_bytes(5, 2048);
        int rc = betanet_sphinx_node_process(node, pkt, SIZES[i], res, out, MAXPKT);
        EXPECT(rc, BETANET_E_MALFORMED);        /* never the exact size: SIZES has no 2993 */
        TRUE_(SIZES[i] != pb);
        EXPECT(betanet_sphinx_node_process(node, pkt, pb, res, out, SIZES[i]),
               SIZES[i] >= pb ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL, BETANET_E_REPLAY);
        /* count above 2^31 - 1 is refused before any packet is read */
        if (SIZES[i] > INT_MAX)
            EXPECT(betanet_sphinx_node_process_many(node, pkt, SIZES[i], res, out), BETANET_E_INVALID);
    }
    EXPECT(betanet_sphinx_node_process_many(node, pkt, 2, res, out), 0, 1, 2);
    for (i = 0; i < NELEM(SIZES); i++) {
        EXPECT(betanet_sphinx_node_expire(node, (uint32_t)SIZES[i]), BETANET_OK);
        (void)betanet_sphinx_node_replay_count(node, (uint32_t)SIZES[i]);
    }
    EXPECT(betanet_sphinx_node_process_many(node, NULL, 0, NULL, NULL), 0);
    EXPECT(betanet_sphinx_node_process_many(NULL, pkt, 1, res, out), BETANET_E_INVALID);
    EXPECT(betanet_sphinx_node_add_key(node, 0, sk), BETANET_E_EXPIRED);
    TRUE_(betanet_sphinx_node_replay_count(NULL, 1) == 0);
    EXPECT(betanet_sphinx_node_expire(NULL, 1), BETANET_E_INVALID);
    betanet_sphinx_node_free(node);
    betanet_sphinx_node_free(NULL);
    TRUE_(betanet_sphinx_kernel() != NULL);
    free(pkt); free(out); free(surb);
}

/* ---- vrf -------------------------------------------------------------------------------- */
static void hostile_vrf(void) {
    uint8_t seed[32] = {7}, pk[32], proof[80], beta[64], alpha[64] = {1};
    betanet_vrf_key_t *key;
    size_t i;
    TRUE_(betanet_vrf_seed_bytes() == BETANET_VRF_SEED_BYTES && betanet_vrf_proof_bytes() == BETANET_VRF_PROOF_BYTES);
    TRUE_(betanet_vrf_public_key_bytes() == BETANET_VRF_PUBLIC_KEY_BYTES && betanet_vrf_output_bytes() == BETANET_VRF_OUTPUT_BYTES);
    for (i = 0; i < NELEM(SIZES); i++) {
        key = (betanet_vrf_key_t *)1;
        EXPECT(betanet_vrf_key_new(seed, SIZES[i], &key), SIZES[i] == 32 ? BETANET_OK : BETANET_E_INVALID);
        if (SIZES[i] == 32) betanet_vrf_key_free(key); else TRUE_(key == NULL);
        EXPECT(betanet_vrf_key_new(NULL, SIZES[i], &key), BETANET_OK);   /* seed_len ignored */
        betanet_vrf_key_free(key);
    }
    EXPECT(betanet_vrf_key_new(seed, 32, &key), BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_vrf_key_public(key, pk, s), s >= 32 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_vrf_prove(key, alpha, s <= 64 ? s : 64, proof, s, beta, 64),
               s >= 80 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_vrf_prove(key, alpha, 3, proof, 80, beta, s), s >= 64 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_vrf_prove(key, alpha, 3, proof, 80, NULL, s), BETANET_OK);
    }
    EXPECT(betanet_vrf_key_public(key, pk, 32), BETANET_OK);
    EXPECT(betanet_vrf_prove(key, alpha, 3, proof, 80, NULL, 0), BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_vrf_verify(pk, s, proof, 80, alpha, 3, beta, 64), s == 32 ? BETANET_OK : BETANET_E_MALFORMED);
        EXPECT(betanet_vrf_verify(pk, 32, proof, s, alpha, 3, beta, 64), s == 80 ? BETANET_OK : BETANET_E_MALFORMED);
        EXPECT(betanet_vrf_verify(pk, 32, proof, 80, alpha, 3, beta, s), s >= 64 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_vrf_verify(pk, 32, proof, 80, alpha, s <= 64 ? s : 64, beta, 64),
               s == 3 ? BETANET_OK : BETANET_E_AUTH);
        EXPECT(betanet_vrf_proof_to_hash(proof, s, beta, 64), s == 80 ? BETANET_OK : BETANET_E_MALFORMED);
        EXPECT(betanet_vrf_proof_to_hash(proof, 80, beta, s), s >= 64 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_vrf_validate_key(pk, s), s == 32 ? BETANET_OK : BETANET_E_MALFORMED);
    }
    EXPECT(betanet_vrf_verify(pk, 32, proof, 80, NULL, SIZE_MAX, beta, 64), BETANET_E_INVALID);
    EXPECT(betanet_vrf_prove(key, NULL, SIZE_MAX, proof, 80, NULL, 0), BETANET_E_INVALID);
    betanet_vrf_key_free(key);
    betanet_vrf_key_free(NULL);
}

int main(void) {
    big = calloc(1, BIG);
    hostile_base();
    hostile_fec();
    hostile_htx();
    hostile_sphinx();
    hostile_vrf();
    free(big);
    return hostile_report();
}
