/* hostile_sizes_bundle.c — every function of the bundle section (include/betanet/bundle.h)
 * called with hostile sizes, counts, offsets and limits, under ASan + UBSan (driven by
 * tests/test_hostile_sizes.py, rules in tests/hostile_sizes.c). Buffers are real; a length
 * beyond a buffer is passed only where the contract checks it before any access: limits,
 * out-buffer capacities, a `len` the view must fit in, fragment ranges, reassembly sizes,
 * and counts paired with NULL pointers. */
#include "hostile_sizes.h"

static const uint8_t SSP_DST[] = "//dst/svc", SSP_SRC[] = "//src/app";
static uint8_t PAYLOAD[100], EXT[2] = {0xAA, 0xBB}, DATA[1024];
static uint8_t bundle[1024];
static size_t blen;

static size_t head_len(uint64_t v) {
    return v < 24 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static void specs(betanet_bundle_primary_spec_t *p, betanet_bundle_block_spec_t b[2]) {
    memset(p, 0, sizeof *p);
    memset(b, 0, 2 * sizeof *b);
    p->crc_type = BETANET_BUNDLE_CRC_32C;
    p->destination.scheme = BETANET_BUNDLE_EID_DTN;
    p->destination.ssp = SSP_DST;
    p->destination.ssp_len = sizeof SSP_DST - 1;
    p->source.scheme = BETANET_BUNDLE_EID_DTN;
    p->source.ssp = SSP_SRC;
    p->source.ssp_len = sizeof SSP_SRC - 1;
    p->report_to.scheme = BETANET_BUNDLE_EID_IPN;
    p->report_to.node = 5;
    p->report_to.service = 6;
    p->creation_ms = 1000;
    p->sequence = 7;
    p->lifetime_ms = 3600000;
    b[0].type = 200;
    b[0].number = 2;
    b[0].flags = BETANET_BUNDLE_BF_REPLICATE | BETANET_BUNDLE_BF_DISCARD;
    b[0].crc_type = BETANET_BUNDLE_CRC_16;
    b[0].data = EXT;
    b[0].data_len = sizeof EXT;
    b[1].type = BETANET_BUNDLE_BLOCK_PAYLOAD;
    b[1].number = 1;
    b[1].crc_type = BETANET_BUNDLE_CRC_16;
    b[1].data = PAYLOAD;
    b[1].data_len = sizeof PAYLOAD;
}

static void parse_ok(const uint8_t *buf, size_t len, betanet_bundle_block_t *blocks, betanet_bundle_view_t *v) {
    EXPECT(betanet_bundle_parse(buf, len, NULL, blocks, 4, v), BETANET_OK);
}

/* ---- codes, limits, CRC ------------------------------------------------------------- */
static void hostile_basics(void) {
    static const int codes[] = {INT_MIN, -1, 0, 1, 17, 18, 255, INT_MAX};
    uint8_t data[16] = {1, 2, 3};
    uint32_t crc;
    betanet_bundle_limits_t lim;
    size_t i;
    EXPECT(betanet_bundle_limits_default(NULL), BETANET_E_INVALID);
    EXPECT(betanet_bundle_limits_default(&lim), BETANET_OK);
    TRUE_(lim.max_bytes == BETANET_BUNDLE_DEFAULT_MAX_BYTES && lim.flags == 0);
    for (i = 0; i < NELEM(codes); i++) TRUE_(betanet_bundle_error_string(codes[i]) != NULL);
    for (i = 0; i < NELEM(U32); i++) {
        int valid = U32[i] == BETANET_BUNDLE_CRC_16 || U32[i] == BETANET_BUNDLE_CRC_32C;
        EXPECT(betanet_bundle_crc(U32[i], data, sizeof data, &crc), valid ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_bundle_crc(U32[i], NULL, 0, &crc), valid ? BETANET_OK : BETANET_E_INVALID);
    }
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_bundle_crc(BETANET_BUNDLE_CRC_32C, NULL, s, &crc), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_bundle_crc(BETANET_BUNDLE_CRC_16, NULL, s, &crc), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_bundle_crc(BETANET_BUNDLE_CRC_16, data, s <= sizeof data ? s : sizeof data, NULL),
               BETANET_E_INVALID);
    }
}

/* ---- encoding ----------------------------------------------------------------------- */
static void hostile_encode(void) {
    betanet_bundle_primary_spec_t p;
    betanet_bundle_block_spec_t b[2];
    uint8_t out[1024];
    size_t i, j, n, n0, got;
    specs(&p, b);
    n = betanet_bundle_encoded_bytes(&p, b, 2);
    TRUE_(n > 0 && n <= sizeof bundle);
    EXPECT(betanet_bundle_encode(&p, b, 2, bundle, sizeof bundle, &blen), BETANET_OK);
    TRUE_(blen == n);
    b[1].data_len = 0;
    n0 = betanet_bundle_encoded_bytes(&p, b, 2);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        /* the payload length: sized (and bounded) before any byte of data is read */
        size_t want = s > SIZE_MAX / 4 ? 0 : n0 - 1 + head_len(s) + s;
        specs(&p, b);
        b[1].data = DATA;                           /* every length encode may read fits */
        b[1].data_len = s;
        TRUE_(betanet_bundle_encoded_bytes(&p, b, 2) == want);
        EXPECT(betanet_bundle_encode(&p, b, 2, out, sizeof out, &got),
               want == 0 ? BETANET_E_INVALID : want <= sizeof out ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        /* NULL data, NULL SSP, NULL block array with nonzero lengths / counts */
        b[1].data = NULL;
        TRUE_(betanet_bundle_encoded_bytes(&p, b, 2) == (s ? 0 : n0));
        specs(&p, b);
        p.source.ssp = NULL;
        p.source.ssp_len = s;
        TRUE_(betanet_bundle_encoded_bytes(&p, b, 2) == (s ? 0 : n - (3 + sizeof SSP_SRC - 1) + 3)); /* dtn:none */
        EXPECT(betanet_bundle_encode(&p, b, 2, out, sizeof out, &got), s ? BETANET_E_INVALID : BETANET_OK);
        specs(&p, b);
        TRUE_(betanet_bundle_encoded_bytes(&p, NULL, s) == 0);
        EXPECT(betanet_bundle_encode(&p, NULL, s, out, sizeof out, &got), BETANET_E_INVALID);
        /* the out capacity */
        EXPECT(betanet_bundle_encode(&p, b, 2, out, s, &got), s >= n ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_bundle_encode(&p, b, 2, NULL, s, &got), BETANET_E_INVALID);
        EXPECT(betanet_bundle_encode(&p, b, 2, out, s, NULL), BETANET_E_INVALID);
        /* an EID alone */
        {
            size_t e = betanet_bundle_eid_encoded_bytes(&p.destination);
            TRUE_(e == 2 + 1 + sizeof SSP_DST - 1);
            EXPECT(betanet_bundle_eid_encode(&p.destination, out, s, &got),
                   s >= e ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
            EXPECT(betanet_bundle_eid_encode(&p.destination, NULL, s, &got), BETANET_E_INVALID);
            p.destination.ssp = NULL;
            p.destination.ssp_len = s;
            TRUE_(betanet_bundle_eid_encoded_bytes(&p.destination) == (s ? 0 : 3));
            EXPECT(betanet_bundle_eid_encode(&p.destination, out, sizeof out, &got),
                   s ? BETANET_E_INVALID : BETANET_OK);
        }
    }
    TRUE_(betanet_bundle_eid_encoded_bytes(NULL) == 0);
    EXPECT(betanet_bundle_eid_encode(NULL, out, sizeof out, &got), BETANET_E_INVALID);
    TRUE_(betanet_bundle_encoded_bytes(NULL, b, 2) == 0);
    /* 64-bit fields at every width, CRC types and schemes out of range, fragment fields */
    for (i = 0; i < NELEM(U64); i++) {
        for (j = 0; j < NELEM(U64); j++) {
            uint64_t a = U64[i], t = U64[j];
            int frag_ok = a <= t && sizeof PAYLOAD <= t - a;
            betanet_bundle_block_t blocks[4];
            betanet_bundle_view_t v;
            specs(&p, b);
            p.creation_ms = a;
            p.sequence = t;
            p.lifetime_ms = a;
            p.report_to.node = t;
            p.report_to.service = a;
            b[0].type = a > 1 ? a : 1000;
            b[0].number = t > 1 ? t : 2;
            b[0].flags = a;
            EXPECT(betanet_bundle_encode(&p, b, 2, out, sizeof out, &got), BETANET_OK);
            parse_ok(out, got, blocks, &v);
            TRUE_(v.primary.creation_ms == a && v.primary.report_to.node == t && blocks[0].flags == a);
            p.flags = BETANET_BUNDLE_F_IS_FRAGMENT;
            p.fragment_offset = a;
            p.total_adu_length = t;
            EXPECT(betanet_bundle_encode(&p, b, 2, out, sizeof out, &got), frag_ok ? BETANET_OK : BETANET_E_INVALID);
        }
    }
    for (i = 0; i < NELEM(U32); i++) {
        specs(&p, b);
        p.crc_type = U32[i];
        TRUE_((betanet_bundle_encoded_bytes(&p, b, 2) != 0) == (U32[i] <= 2));
        specs(&p, b);
        b[0].crc_type = U32[i];
        TRUE_((betanet_bundle_encoded_bytes(&p, b, 2) != 0) == (U32[i] <= 2));
        specs(&p, b);
        p.destination.scheme = U32[i];
        TRUE_((betanet_bundle_eid_encoded_bytes(&p.destination) != 0) == (U32[i] == 1 || U32[i] == 2));
        EXPECT(betanet_bundle_encode(&p, b, 2, out, sizeof out, &got),
               U32[i] == 1 ? BETANET_OK : U32[i] == 2 ? BETANET_OK : BETANET_E_INVALID);
    }
}

/* ---- parsing, policy, rewrite, id ------------------------------------------------------ */
static void hostile_parse(void) {
    betanet_bundle_block_t blocks[4];
    betanet_bundle_view_t v;
    betanet_bundle_limits_t lim;
    uint64_t known[2] = {BETANET_BUNDLE_BLOCK_PAYLOAD, 200};
    uint32_t verdict, reason;
    uint8_t out[1024], id[BETANET_BUNDLE_ID_BYTES];
    size_t i, got, rw;
    size_t ssp = sizeof SSP_DST - 1;
    parse_ok(bundle, blen, blocks, &v);
    TRUE_(v.nblocks == 2 && v.len == blen);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        /* len inside the buffer: a truncated bundle; beyond it only above max_bytes */
        if (s < blen) {
            EXPECT(betanet_bundle_parse(bundle, s, NULL, blocks, 4, &v), BETANET_E_MALFORMED);
            TRUE_(v.error == BETANET_BUNDLE_ERR_TRUNCATED);
        } else if (s > BETANET_BUNDLE_DEFAULT_MAX_BYTES) {
            EXPECT(betanet_bundle_parse(bundle, s, NULL, blocks, 4, &v), BETANET_E_LIMIT);
            TRUE_(v.error == BETANET_BUNDLE_ERR_TOO_LARGE);
        }
        betanet_bundle_limits_default(&lim);
        lim.max_bytes = blen;
        if (s >= blen) {
            EXPECT(betanet_bundle_parse(bundle, s, &lim, blocks, 4, &v), s == blen ? BETANET_OK : BETANET_E_LIMIT);
            lim.flags = BETANET_BUNDLE_PARSE_PREFIX;  /* at most max_bytes are read */
            EXPECT(betanet_bundle_parse(bundle, s, &lim, blocks, 4, &v), BETANET_OK);
            TRUE_(v.len == blen);
        }
        /* each limit */
        betanet_bundle_limits_default(&lim);
        lim.max_bytes = s;
        EXPECT(betanet_bundle_parse(bundle, blen, &lim, blocks, 4, &v), s >= blen ? BETANET_OK : BETANET_E_LIMIT);
        betanet_bundle_limits_default(&lim);
        lim.max_blocks = s;
        EXPECT(betanet_bundle_parse(bundle, blen, &lim, blocks, 4, &v), s >= 2 ? BETANET_OK : BETANET_E_LIMIT);
        lim.max_blocks = 4;                         /* the array's real size bounds the cap */
        EXPECT(betanet_bundle_parse(bundle, blen, &lim, blocks, s, &v), s >= 2 ? BETANET_OK : BETANET_E_LIMIT);
        betanet_bundle_limits_default(&lim);
        lim.max_eid_bytes = s;
        EXPECT(betanet_bundle_parse(bundle, blen, &lim, blocks, 4, &v), s >= ssp ? BETANET_OK : BETANET_E_LIMIT);
        /* NULL with nonzero lengths */
        EXPECT(betanet_bundle_parse(NULL, s, NULL, blocks, 4, &v), s ? BETANET_E_INVALID : BETANET_E_MALFORMED);
        EXPECT(betanet_bundle_parse(bundle, blen, NULL, NULL, s, &v), s ? BETANET_E_INVALID : BETANET_E_LIMIT);
        EXPECT(betanet_bundle_parse(bundle, blen, NULL, blocks, 4, NULL), BETANET_E_INVALID);
    }
    for (i = 0; i < NELEM(U32); i++) {            /* any flag bits: this bundle meets STRICT */
        betanet_bundle_limits_default(&lim);
        lim.flags = U32[i];
        EXPECT(betanet_bundle_parse(bundle, blen, &lim, blocks, 4, &v), BETANET_OK);
    }
    parse_ok(bundle, blen, blocks, &v);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_bundle_policy(&v, NULL, s, &verdict, &reason), s ? BETANET_E_INVALID : BETANET_OK);
        EXPECT(betanet_bundle_policy(&v, known, 2, NULL, &reason), BETANET_E_INVALID);
        /* len: the view must fit in it; a larger len is never read past the view */
        EXPECT(betanet_bundle_id(bundle, s, &v, id, sizeof id), s >= blen ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_bundle_id(bundle, blen, &v, id, s), s >= sizeof id ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_bundle_id(NULL, s, &v, id, sizeof id), BETANET_E_INVALID);
        EXPECT(betanet_bundle_id(bundle, blen, &v, NULL, s), BETANET_E_INVALID);
    }
    EXPECT(betanet_bundle_policy(&v, known, 2, &verdict, &reason), BETANET_OK);
    TRUE_(verdict == 0);
    EXPECT(betanet_bundle_policy(&v, NULL, 0, &verdict, &reason), BETANET_OK);
    TRUE_(verdict == BETANET_BUNDLE_VERDICT_DISCARD && blocks[0].action == BETANET_BUNDLE_ACTION_DISCARD);
    rw = betanet_bundle_rewrite_bytes(&v);
    TRUE_(rw == blen - blocks[0].len);
    TRUE_(betanet_bundle_rewrite_bytes(NULL) == 0);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_bundle_rewrite(bundle, s, &v, out, sizeof out, &got), s >= blen ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_bundle_rewrite(bundle, blen, &v, out, s, &got), s >= rw ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_bundle_rewrite(NULL, s, &v, out, s, &got), BETANET_E_INVALID);
        EXPECT(betanet_bundle_rewrite(bundle, blen, &v, NULL, s, &got), BETANET_E_INVALID);
    }
    EXPECT(betanet_bundle_rewrite(bundle, blen, &v, out, sizeof out, &got), BETANET_OK);
    EXPECT(betanet_bundle_parse(out, got, NULL, blocks, 4, &v), BETANET_OK);
    TRUE_(v.nblocks == 1);
}

/* ---- fragments and reassembly ---------------------------------------------------------- */
static size_t alloc_cap = SIZE_MAX;
static void *capped_alloc(size_t n, void *ctx) { (void)ctx; return n > alloc_cap ? NULL : malloc(n); }
static void capped_free(void *p, void *ctx) { (void)ctx; free(p); }

static void hostile_fragments(void) {
    betanet_bundle_block_t blocks[4], fb[4];
    betanet_bundle_view_t v, fv;
    betanet_bundle_reasm_t *r;
    uint8_t out[1024], f1[1024], f2[1024];
    size_t i, j, got, n1, n2;
    const size_t pl = sizeof PAYLOAD;
    parse_ok(bundle, blen, blocks, &v);
    for (i = 0; i < NELEM(U64); i++)
        for (j = 0; j < NELEM(U64); j++) {
            uint64_t off = U64[i], fl = U64[j];
            int ok = fl > 0 && off <= pl && fl <= pl - off;
            size_t n = betanet_bundle_fragment_bytes(bundle, blen, &v, off, fl);
            TRUE_((n != 0) == ok);
            EXPECT(betanet_bundle_fragment(bundle, blen, &v, off, fl, out, sizeof out, &got),
                   ok ? BETANET_OK : BETANET_E_INVALID);
            if (ok) {
                TRUE_(got == n);
                EXPECT(betanet_bundle_parse(out, got, NULL, fb, 4, &fv), BETANET_OK);
                TRUE_(fv.primary.fragment_offset == off && fb[fv.payload].data_len == fl);
            }
        }
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        size_t n = betanet_bundle_fragment_bytes(bundle, blen, &v, 10, 20);
        TRUE_(betanet_bundle_fragment_bytes(bundle, s, &v, 10, 20) == (s >= blen ? n : 0));
        TRUE_(betanet_bundle_fragment_bytes(NULL, s, &v, 10, 20) == 0);
        EXPECT(betanet_bundle_fragment(bundle, s, &v, 10, 20, out, sizeof out, &got),
               s >= blen ? BETANET_OK : BETANET_E_INVALID);
        EXPECT(betanet_bundle_fragment(bundle, blen, &v, 10, 20, out, s, &got),
               s >= n ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_bundle_fragment(bundle, blen, &v, 10, 20, NULL, s, &got), BETANET_E_INVALID);
        EXPECT(betanet_bundle_fragment(NULL, s, &v, 10, 20, out, sizeof out, &got), BETANET_E_INVALID);
    }
    TRUE_(betanet_bundle_fragment_bytes(bundle, blen, NULL, 0, 1) == 0);

    /* reassembly handles: every size through an allocator that refuses more than 1 MiB,
     * so an oversized request is the documented E_NOMEM, not an abort in ASan */
    EXPECT(betanet_set_allocator(capped_alloc, capped_free, NULL), BETANET_OK);
    alloc_cap = 1u << 20;
    for (i = 0; i < NELEM(U64); i++)
        for (j = 0; j < NELEM(SIZES); j++) {
            uint64_t total = U64[i];
            size_t s = SIZES[j], k;
            for (k = 0; k < 3; k++) {
                size_t max_adu = k == 0 ? s : SIZE_MAX, ranges = k == 0 ? 4 : k == 1 ? s : 1;
                int want;
                if (ranges == 0 || ranges > SIZE_MAX / 16) want = BETANET_E_INVALID;
                else if (total > max_adu) want = BETANET_E_LIMIT;
                else if (total > alloc_cap || 16 * ranges > alloc_cap) want = BETANET_E_NOMEM;
                else want = BETANET_OK;
                r = (betanet_bundle_reasm_t *)&r;
                EXPECT(betanet_bundle_reasm_new(total, max_adu, ranges, &r), want);
                if (want == BETANET_OK) {
                    TRUE_(betanet_bundle_reasm_bytes(r) == 0);
                    betanet_bundle_reasm_free(r);
                } else if (want != BETANET_E_INVALID) {
                    TRUE_(r == NULL);
                }
            }
            EXPECT(betanet_bundle_reasm_new(total, s, 4, NULL), BETANET_E_INVALID);
        }
    alloc_cap = SIZE_MAX;
    EXPECT(betanet_set_allocator(NULL, NULL, NULL), BETANET_OK);

    /* a real reassembly: [0, 40) and [40, 100), with hostile lengths on each call */
    EXPECT(betanet_bundle_fragment(bundle, blen, &v, 0, 40, f1, sizeof f1, &n1), BETANET_OK);
    EXPECT(betanet_bundle_fragment(bundle, blen, &v, 40, 60, f2, sizeof f2, &n2), BETANET_OK);
    EXPECT(betanet_bundle_reasm_new(pl, pl, 1, &r), BETANET_OK);
    EXPECT(betanet_bundle_parse(f2, n2, NULL, fb, 4, &fv), BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        if (s < n2) EXPECT(betanet_bundle_reasm_add(r, f2, s, &fv), BETANET_E_INVALID);
        EXPECT(betanet_bundle_reasm_add(r, NULL, s, &fv), BETANET_E_INVALID);
        EXPECT(betanet_bundle_reasm_finish(r, out, s, &got), BETANET_E_STATE);
        TRUE_(betanet_bundle_reasm_bytes(r) == 0);
    }
    EXPECT(betanet_bundle_reasm_add(r, f2, SIZE_MAX, &fv), 0);    /* the view bounds what is read */
    EXPECT(betanet_bundle_reasm_add(r, f2, n2, &fv), 0);          /* the same bytes again */
    EXPECT(betanet_bundle_reasm_add(r, bundle, blen, &v), BETANET_E_MALFORMED);   /* not a fragment */
    EXPECT(betanet_bundle_parse(f1, n1, NULL, fb, 4, &fv), BETANET_OK);
    EXPECT(betanet_bundle_reasm_add(r, f1, n1, &fv), 1);
    n1 = betanet_bundle_reasm_bytes(r);
    TRUE_(n1 == blen);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_bundle_reasm_finish(r, out, s, &got), s >= n1 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_bundle_reasm_finish(r, NULL, s, &got), BETANET_E_INVALID);
        EXPECT(betanet_bundle_reasm_finish(NULL, out, s, &got), BETANET_E_INVALID);
    }
    EXPECT(betanet_bundle_reasm_finish(r, out, sizeof out, &got), BETANET_OK);
    TRUE_(got == blen && memcmp(out, bundle, blen) == 0);
    betanet_bundle_reasm_free(r);
    /* more gaps than max_ranges */
    EXPECT(betanet_bundle_reasm_new(pl, pl, 1, &r), BETANET_OK);
    EXPECT(betanet_bundle_fragment(bundle, blen, &v, 0, 10, f1, sizeof f1, &n1), BETANET_OK);
    EXPECT(betanet_bundle_fragment(bundle, blen, &v, 50, 10, f2, sizeof f2, &n2), BETANET_OK);
    EXPECT(betanet_bundle_parse(f1, n1, NULL, fb, 4, &fv), BETANET_OK);
    EXPECT(betanet_bundle_reasm_add(r, f1, n1, &fv), 0);
    EXPECT(betanet_bundle_parse(f2, n2, NULL, fb, 4, &fv), BETANET_OK);
    EXPECT(betanet_bundle_reasm_add(r, f2, n2, &fv), BETANET_E_LIMIT);
    betanet_bundle_reasm_free(r);
    /* another ADU length */
    EXPECT(betanet_bundle_reasm_new(pl + 1, SIZE_MAX, 4, &r), BETANET_OK);
    EXPECT(betanet_bundle_reasm_add(r, f2, n2, &fv), BETANET_E_MALFORMED);
    EXPECT(betanet_bundle_reasm_add(NULL, f2, n2, &fv), BETANET_E_INVALID);
    betanet_bundle_reasm_free(r);
    betanet_bundle_reasm_free(NULL);
    TRUE_(betanet_bundle_reasm_bytes(NULL) == 0);
}

/* ---- status reports ---------------------------------------------------------------------- */
static void hostile_status(void) {
    betanet_bundle_status_report_t rep, dec;
    betanet_bundle_eid_spec_t src = {0};
    uint8_t rec[512];
    static const uint8_t other[] = {0x82, 0x02, 0x80};
    size_t i, j, n, got;
    src.scheme = BETANET_BUNDLE_EID_DTN;
    src.ssp = SSP_SRC;
    src.ssp_len = sizeof SSP_SRC - 1;
    for (i = 0; i < NELEM(U64); i++) {
        memset(&rep, 0, sizeof rep);
        rep.asserted = 0xF;
        rep.timed = 0x5;
        for (j = 0; j < 4; j++) rep.times[j] = U64[(i + j) % NELEM(U64)];
        rep.reason = U64[i];
        rep.creation_ms = U64[i];
        rep.sequence = U64[NELEM(U64) - 1 - i];
        rep.is_fragment = 1;
        rep.fragment_offset = U64[i];
        rep.payload_length = U64[i];
        n = betanet_bundle_status_bytes(&rep, &src);
        TRUE_(n > 0 && n <= sizeof rec);
        EXPECT(betanet_bundle_status_encode(&rep, &src, rec, sizeof rec, &got), BETANET_OK);
        TRUE_(got == n);
        EXPECT(betanet_bundle_status_decode(rec, got, 64, &dec), BETANET_OK);
        TRUE_(dec.reason == rep.reason && dec.times[2] == rep.times[2] && dec.payload_length == rep.payload_length);
    }
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_bundle_status_encode(&rep, &src, rec, s, &got), s >= n ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL);
        EXPECT(betanet_bundle_status_encode(&rep, &src, NULL, s, &got), BETANET_E_INVALID);
        EXPECT(betanet_bundle_status_encode(&rep, &src, rec, s, NULL), BETANET_E_INVALID);
    }
    EXPECT(betanet_bundle_status_encode(&rep, &src, rec, sizeof rec, &got), BETANET_OK);
    for (i = 0; i < NELEM(SIZES); i++) {
        size_t s = SIZES[i];
        EXPECT(betanet_bundle_status_decode(rec, got, s, &dec), s >= src.ssp_len ? BETANET_OK : BETANET_E_LIMIT);
        if (s < got) EXPECT(betanet_bundle_status_decode(rec, s, 64, &dec), BETANET_E_MALFORMED);
        EXPECT(betanet_bundle_status_decode(NULL, s, 64, &dec), s ? BETANET_E_INVALID : BETANET_E_MALFORMED);
        EXPECT(betanet_bundle_status_decode(rec, got, s, NULL), BETANET_E_INVALID);
        EXPECT(betanet_bundle_status_decode(other, sizeof other, s, &dec), BETANET_E_UNSUPPORTED);
        /* an SSP of any claimed length behind a NULL pointer */
        src.ssp = NULL;
        src.ssp_len = s;
        TRUE_((betanet_bundle_status_bytes(&rep, &src) == 0) == (s != 0));
        EXPECT(betanet_bundle_status_encode(&rep, &src, rec, sizeof rec, &got), s ? BETANET_E_INVALID : BETANET_OK);
        src.ssp = SSP_SRC;
        src.ssp_len = sizeof SSP_SRC - 1;
        EXPECT(betanet_bundle_status_encode(&rep, &src, rec, sizeof rec, &got), BETANET_OK);
    }
    for (i = 0; i < NELEM(U32); i++) {
        rep.asserted = U32[i];
        rep.timed = 0;
        TRUE_((betanet_bundle_status_bytes(&rep, &src) != 0) == (U32[i] <= 15));
        rep.asserted = 0xF;
        rep.timed = U32[i];
        EXPECT(betanet_bundle_status_encode(&rep, &src, rec, sizeof rec, &got),
               U32[i] <= 15 ? BETANET_OK : BETANET_E_INVALID);
    }
    TRUE_(betanet_bundle_status_bytes(NULL, &src) == 0);
    TRUE_(betanet_bundle_status_bytes(&rep, NULL) == 0);
}

int main(void) {
    size_t i;
    for (i = 0; i < sizeof PAYLOAD; i++) PAYLOAD[i] = (uint8_t)(i * 13 + 1);
    hostile_basics();
    hostile_encode();
    hostile_parse();
    hostile_fragments();
    hostile_status();
    return hostile_report();
}
