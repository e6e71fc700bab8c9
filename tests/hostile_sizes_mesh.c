/* hostile_sizes_mesh.c — every function of include/betanet/mesh.h called with hostile sizes
 * and counts: 0, 1, SIZE_MAX, SIZE_MAX - small, INT_MAX, 2^31, 2^32, negative values seen
 * as unsigned, NULL pointers with nonzero lengths and output buffers claimed too small.
 * Built against the ASan + UBSan library by tests/test_hostile_sizes.py; any out-of-bounds
 * access, overflow or leak aborts, and every call must return its documented status.
 *
 * Buffers are real and as large as a call may legitimately touch. A length beyond that is
 * passed only where the contract bounds it before any access: payload lengths by
 * BETANET_MESH_MAX_PAYLOAD_BYTES, fragment slices by the output capacity, fragment bytes
 * by the reassembler's max_bytes, fragment headers (parse reads only the header). */
#include "hostile_sizes.h"

#define MAXP BETANET_MESH_MAX_PAYLOAD_BYTES
/* mesh lengths around the 14-byte v1 header, 469-byte fragment chunks and the v1/v2 payload limits */
static const size_t MESH_SIZES[] = {
    0, 1, 2, 7, 8, 13, 14, 17, 18, 255, 256, 469, 470, 0xFFFB, 0xFFFD, 0xFFFF, 0x10000,
    MAXP - 4, MAXP - 1, MAXP, MAXP + 1,
    (size_t)INT_MAX, (size_t)INT_MAX + 1, (size_t)UINT32_MAX, (size_t)UINT32_MAX + 1,
    SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX - 64, SIZE_MAX - 16, SIZE_MAX - 12, SIZE_MAX - 2,
    SIZE_MAX - 1, SIZE_MAX, (size_t)-28, (size_t)-20, (size_t)-13};
static const unsigned UINTS[] = {0, 1, 2, 254, 255, 256, 9999, 10000, 10001, 65535, 65536, 65537,
                                 INT_MAX, 0x80000000u, UINT_MAX - 1, UINT_MAX};

static uint8_t *big;     /* MAXP + 4096 bytes: every payload length <= MAXP is real */
static uint8_t *outbuf;  /* MAXP + 4096 bytes: every encoding fits */
#define BIG (MAXP + 4096)
static const uint8_t SENDER[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t RECIP[8] = {9, 9, 9, 9, 9, 9, 9, 9};
static uint8_t SIG[64];

/* The documented status and size of p, derived from the header comments. */
static int expected(const betanet_mesh_packet_t *p, int pad, size_t *n) {
    size_t lf = p->version == 2 ? 4 : 2, pds;
    if (p->sender == NULL || (p->version != 1 && p->version != 2)) return BETANET_E_INVALID;
    if (p->route_hops > 0 && (p->version != 2 || p->route == NULL || p->route_hops > 255)) return BETANET_E_INVALID;
    if (p->payload_len > 0 && p->payload == NULL) return BETANET_E_INVALID;
    if (p->compressed && p->payload_len == 0) return BETANET_E_INVALID;
    if (p->payload_len > MAXP) return BETANET_E_LIMIT;
    pds = p->payload_len + (p->compressed ? lf : 0);
    if (pds > MAXP || (p->version == 1 && pds > 0xFFFF)) return BETANET_E_LIMIT;
    if (p->compressed && (p->original_size > MAXP || (p->version == 1 && p->original_size > 0xFFFF)))
        return BETANET_E_LIMIT;
    *n = (p->version == 2 ? 16 : 14) + 8 + pds + (p->recipient ? 8 : 0) +
         (p->route_hops ? 1 + 8 * p->route_hops : 0) + (p->signature ? 64 : 0);
    if (pad) *n = betanet_mesh_padded_bytes(*n);
    return BETANET_OK;
}

/* packet_bytes, encode (caps hostile), signing_input(_bytes), decode of the result. */
static void codec_one(const betanet_mesh_packet_t *p, int pad) {
    static const size_t CAPS[] = {0, 1, 13, 255, 511, SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX, (size_t)-20};
    size_t n = 0, got = 7, i;
    int want = expected(p, pad, &n);
    EXPECT(betanet_mesh_packet_bytes(p, pad, &got), want);
    if (want == BETANET_OK) TRUE_(got == n);
    EXPECT(betanet_mesh_packet_bytes(p, pad, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode(p, pad, NULL, 1, &got), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode(p, pad, outbuf, BIG, NULL), BETANET_E_INVALID);
    for (i = 0; i < NELEM(CAPS); i++) {
        int w = want;
        if (w == BETANET_OK && CAPS[i] < n) w = BETANET_E_BUFFER_TOO_SMALL;
        EXPECT(betanet_mesh_encode(p, pad, outbuf, CAPS[i], &got), w);
    }
    EXPECT(betanet_mesh_encode(p, pad, outbuf, BIG, &got), want);
    if (want == BETANET_OK) {
        betanet_mesh_view_t v;
        TRUE_(got == n);
        if (p->compressed && (uint64_t)p->original_size > (uint64_t)p->payload_len * 50000u) {
            /* encodable, but the decoder refuses a ratio over 50 000:1 (docs/mesh.md) */
            EXPECT(betanet_mesh_decode(outbuf, got, &v), BETANET_E_MALFORMED);
        } else {
            EXPECT(betanet_mesh_decode(outbuf, got, &v), BETANET_OK);
            TRUE_(v.payload_len == p->payload_len && v.packet_len <= got);
        }
    }
    {
        size_t sb = 0;
        int ws = expected(p, 1, &n);   /* the signing input is padded, signature-less */
        betanet_mesh_packet_t q = *p;
        q.signature = NULL;
        ws = expected(&q, 1, &n);
        EXPECT(betanet_mesh_signing_input_bytes(p, &sb), ws);
        if (ws == BETANET_OK) TRUE_(sb == n);
        EXPECT(betanet_mesh_signing_input(p, outbuf, 0, &sb), ws == BETANET_OK ? BETANET_E_BUFFER_TOO_SMALL : ws);
        EXPECT(betanet_mesh_signing_input(p, outbuf, SIZE_MAX, &sb), ws);
        EXPECT(betanet_mesh_signing_input(p, NULL, SIZE_MAX, &sb), BETANET_E_INVALID);
    }
}

static void hostile_codec(void) {
    static const uint8_t versions[] = {0, 1, 2, 3, 255};
    static const int pads[] = {0, 1, -1, INT_MAX, INT_MIN};
    static const uint32_t origs[] = {0, 1, 0xFFFF, 0x10000, MAXP, MAXP + 1, INT32_MAX, 0x80000000u, UINT32_MAX};
    size_t vi, si, pi, oi;
    betanet_mesh_packet_t p;
    for (vi = 0; vi < NELEM(versions); vi++)
        for (si = 0; si < NELEM(MESH_SIZES); si++)
            for (pi = 0; pi < 2; pi++) {
                memset(&p, 0, sizeof p);
                p.version = versions[vi];
                p.type = BETANET_MESH_TYPE_MESSAGE;
                p.ttl = 7;
                p.sender = SENDER;
                p.payload = big;
                p.payload_len = MESH_SIZES[si];
                p.compressed = (uint8_t)pi;
                p.original_size = 100;
                codec_one(&p, pads[si % NELEM(pads)]);
                p.recipient = RECIP;
                p.signature = SIG;
                codec_one(&p, 1);
                p.payload = NULL;        /* NULL payload with a nonzero length */
                codec_one(&p, 0);
            }
    /* route hop counts */
    for (vi = 1; vi <= 2; vi++)
        for (si = 0; si < NELEM(MESH_SIZES); si++) {
            memset(&p, 0, sizeof p);
            p.version = (uint8_t)vi;
            p.sender = SENDER;
            p.route = big;
            p.route_hops = MESH_SIZES[si];
            p.payload = big;
            p.payload_len = 3;
            codec_one(&p, 1);
            p.route = NULL;
            codec_one(&p, 0);
        }
    /* original sizes of a compressed payload */
    for (vi = 1; vi <= 2; vi++)
        for (oi = 0; oi < NELEM(origs); oi++) {
            memset(&p, 0, sizeof p);
            p.version = (uint8_t)vi;
            p.sender = SENDER;
            p.payload = big;
            p.payload_len = 10;
            p.compressed = 1;
            p.original_size = origs[oi];
            codec_one(&p, 0);
        }
    memset(&p, 0, sizeof p);
    p.version = 2;
    codec_one(&p, 0);                    /* no sender */
    {
        size_t n;
        EXPECT(betanet_mesh_packet_bytes(NULL, 0, &n), BETANET_E_INVALID);
        EXPECT(betanet_mesh_encode(NULL, 0, outbuf, BIG, &n), BETANET_E_INVALID);
        EXPECT(betanet_mesh_signing_input_bytes(NULL, &n), BETANET_E_INVALID);
        EXPECT(betanet_mesh_signing_input(NULL, outbuf, BIG, &n), BETANET_E_INVALID);
        p.sender = SENDER;
        EXPECT(betanet_mesh_signing_input_bytes(&p, NULL), BETANET_E_INVALID);
        EXPECT(betanet_mesh_signing_input(&p, outbuf, BIG, NULL), BETANET_E_INVALID);
    }
}

/* decode of every prefix and of hostile length fields; view_packet and packet_id on it. */
static void hostile_decode(void) {
    static const uint32_t plens[] = {0, 1, 0xFFFF, MAXP, MAXP + 1, INT32_MAX, 0x80000000u, UINT32_MAX};
    betanet_mesh_packet_t p, q;
    betanet_mesh_view_t v;
    uint8_t pkt[4096], id[16];
    size_t n = 0, len, i, ver;
    memset(&p, 0, sizeof p);
    p.version = 2;
    p.sender = SENDER;
    p.recipient = RECIP;
    p.route = big;
    p.route_hops = 3;
    p.payload = big;
    p.payload_len = 40;
    p.compressed = 1;
    p.original_size = 200;
    p.signature = SIG;
    EXPECT(betanet_mesh_encode(&p, 1, pkt, sizeof pkt, &n), BETANET_OK);
    for (len = 0; len <= n; len++) {
        int rc = betanet_mesh_decode(pkt, len, &v);
        EXPECT(rc, BETANET_OK, BETANET_E_MALFORMED);
        if (rc == BETANET_OK) {
            EXPECT(betanet_mesh_view_packet(pkt, &v, &q), BETANET_OK);
            EXPECT(betanet_mesh_packet_id(pkt, &v, id), BETANET_OK);
        }
    }
    EXPECT(betanet_mesh_decode(pkt, n, &v), BETANET_OK);
    for (i = 0; i < NELEM(MESH_SIZES); i++) {
        EXPECT(betanet_mesh_decode(NULL, MESH_SIZES[i], &v), BETANET_E_INVALID);
        EXPECT(betanet_mesh_decode(pkt, MESH_SIZES[i] % sizeof pkt, NULL), BETANET_E_INVALID);
    }
    EXPECT(betanet_mesh_view_packet(NULL, &v, &q), BETANET_E_INVALID);
    EXPECT(betanet_mesh_view_packet(pkt, NULL, &q), BETANET_E_INVALID);
    EXPECT(betanet_mesh_view_packet(pkt, &v, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id(NULL, &v, id), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id(pkt, NULL, id), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id(pkt, &v, NULL), BETANET_E_INVALID);
    memset(&v, 0, sizeof v);             /* a view that decode() did not fill */
    EXPECT(betanet_mesh_view_packet(pkt, &v, &q), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id(pkt, &v, id), BETANET_E_INVALID);
    /* hostile payload-length and original-size fields in a real 4 KiB buffer */
    for (ver = 1; ver <= 2; ver++)
        for (i = 0; i < NELEM(plens); i++) {
            size_t o = ver == 2 ? 16 : 14;
            int flags;
            for (flags = 0; flags < 32; flags++) {
                memset(pkt, 0xFF, sizeof pkt);
                pkt[0] = (uint8_t)ver;
                pkt[11] = (uint8_t)flags;
                if (ver == 2) {
                    pkt[12] = (uint8_t)(plens[i] >> 24); pkt[13] = (uint8_t)(plens[i] >> 16);
                    pkt[14] = (uint8_t)(plens[i] >> 8); pkt[15] = (uint8_t)plens[i];
                } else {
                    pkt[12] = (uint8_t)(plens[i] >> 8); pkt[13] = (uint8_t)plens[i];
                }
                (void)o;
                EXPECT(betanet_mesh_decode(pkt, sizeof pkt, &v), BETANET_OK, BETANET_E_MALFORMED, BETANET_E_LIMIT);
                if (ver == 2 && plens[i] > MAXP)
                    EXPECT(betanet_mesh_decode(pkt, sizeof pkt, &v), BETANET_E_LIMIT);
                EXPECT(betanet_mesh_decode(pkt, 22, &v), BETANET_OK, BETANET_E_MALFORMED, BETANET_E_LIMIT);
            }
        }
}

static void hostile_padding(void) {
    uint8_t buf[4096];
    size_t i, n;
    for (i = 0; i < NELEM(MESH_SIZES); i++) {
        n = betanet_mesh_padded_bytes(MESH_SIZES[i]);
        if (MESH_SIZES[i] + 16 <= 2048 && MESH_SIZES[i] <= 2048) TRUE_(n >= MESH_SIZES[i] + 1 && n - MESH_SIZES[i] <= 255 ? 1 : n == MESH_SIZES[i]);
        else TRUE_(n == MESH_SIZES[i]);
        TRUE_(betanet_mesh_unpadded_bytes(NULL, MESH_SIZES[i]) == MESH_SIZES[i]);
    }
    memset(buf, 0xFF, sizeof buf);        /* 255 bytes of 0xFF: valid padding */
    TRUE_(betanet_mesh_unpadded_bytes(buf, sizeof buf) == sizeof buf - 255);
    TRUE_(betanet_mesh_unpadded_bytes(buf, 254) == 254);
    TRUE_(betanet_mesh_unpadded_bytes(buf, 255) == 0);
    TRUE_(betanet_mesh_unpadded_bytes(buf, 0) == 0);
    buf[0] = 1;
    TRUE_(betanet_mesh_unpadded_bytes(buf, 1) == 0);
    buf[0] = 2;
    TRUE_(betanet_mesh_unpadded_bytes(buf, 1) == 1);
}

static void hostile_sign(void) {
    uint8_t pk[32], sk[64], sig[64];
    betanet_mesh_packet_t p;
    size_t si, n;
    {   /* an Ed25519 key in libsodium layout: seed || public key (the VRF key's) */
        betanet_vrf_key_t *k = NULL;
        memset(sk, 0x42, 32);
        EXPECT(betanet_vrf_key_new(sk, 32, &k), BETANET_OK);
        EXPECT(betanet_vrf_key_public(k, pk, sizeof pk), BETANET_OK);
        betanet_vrf_key_free(k);
        memcpy(sk + 32, pk, 32);
    }
    memset(&p, 0, sizeof p);
    p.version = 2;
    p.sender = SENDER;
    p.payload = big;
    for (si = 0; si < NELEM(MESH_SIZES); si++) {
        int want;
        p.payload_len = MESH_SIZES[si];
        p.signature = NULL;
        want = expected(&p, 1, &n);
        if (MESH_SIZES[si] > 70000 && MESH_SIZES[si] <= MAXP && MESH_SIZES[si] != MAXP) continue;  /* keep it quick */
        EXPECT(betanet_mesh_sign(&p, sk, sig), want);
        p.signature = sig;
        if (want == BETANET_OK) {
            EXPECT(betanet_mesh_verify(&p, pk), BETANET_OK);
            sig[5] ^= 1;
            EXPECT(betanet_mesh_verify(&p, pk), BETANET_E_AUTH);
        } else {
            EXPECT(betanet_mesh_verify(&p, pk), want);
        }
    }
    p.payload_len = 1;
    p.signature = NULL;
    EXPECT(betanet_mesh_verify(&p, pk), BETANET_E_INVALID);
    EXPECT(betanet_mesh_sign(NULL, sk, sig), BETANET_E_INVALID);
    EXPECT(betanet_mesh_sign(&p, NULL, sig), BETANET_E_INVALID);
    EXPECT(betanet_mesh_sign(&p, sk, NULL), BETANET_E_INVALID);
    p.signature = sig;
    EXPECT(betanet_mesh_verify(NULL, pk), BETANET_E_INVALID);
    EXPECT(betanet_mesh_verify(&p, NULL), BETANET_E_INVALID);
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xFFFF); }

static void hostile_fragments(void) {
    static const size_t CAPS[] = {0, 1, 13, 14, 64, 482, SIZE_MAX, SIZE_MAX - 12, SIZE_MAX - 13, (size_t)-20};
    uint8_t enc[8192], out[8192], id[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    uint8_t hdr[64];
    betanet_mesh_fragment_t fr;
    size_t i, j, c, n;
    unsigned u;
    memset(enc, 0x5A, sizeof enc);
    /* fragment_count */
    for (i = 0; i < NELEM(MESH_SIZES); i++) {
        TRUE_(betanet_mesh_fragment_count(MESH_SIZES[i], 0) == 0);
        TRUE_(betanet_mesh_fragment_count(0, MESH_SIZES[i]) == 0);
        TRUE_(betanet_mesh_fragment_count(MESH_SIZES[i], 1) == MESH_SIZES[i]);
        TRUE_(betanet_mesh_fragment_count(MESH_SIZES[i], SIZE_MAX) == (MESH_SIZES[i] ? 1u : 0u));
        for (j = 1; j < NELEM(MESH_SIZES); j++)
            TRUE_(betanet_mesh_fragment_count(MESH_SIZES[i], MESH_SIZES[j]) ==
                  MESH_SIZES[i] / MESH_SIZES[j] + (MESH_SIZES[i] % MESH_SIZES[j] != 0));
    }
    /* fragment_parse: only the header is read, so any length is fine over a header buffer */
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, id, 8);
    put16(hdr + 8, 0);                   /* data: index 0 of 1 */
    put16(hdr + 10, 1);
    for (i = 0; i < NELEM(MESH_SIZES); i++) {
        EXPECT(betanet_mesh_fragment_parse(NULL, MESH_SIZES[i], 0, &fr), BETANET_E_INVALID);
        EXPECT(betanet_mesh_fragment_parse(hdr, MESH_SIZES[i], 0, NULL), BETANET_E_INVALID);
        EXPECT(betanet_mesh_fragment_parse(hdr, MESH_SIZES[i], 0, &fr),
               MESH_SIZES[i] <= BETANET_MESH_FRAGMENT_HEADER_BYTES ? BETANET_E_MALFORMED : BETANET_OK);
        if (MESH_SIZES[i] > BETANET_MESH_FRAGMENT_HEADER_BYTES) TRUE_(fr.data_len == MESH_SIZES[i] - 13);
    }
    for (u = 0; u < NELEM(UINTS); u++) {      /* hostile index / total */
        put16(hdr + 8, UINTS[u] & 0xFFFF);
        put16(hdr + 10, 10000);
        EXPECT(betanet_mesh_fragment_parse(hdr, 20, 0, &fr),
               (UINTS[u] & 0xFFFF) < 10000 ? BETANET_OK : BETANET_E_MALFORMED);
        put16(hdr + 8, 0);
        put16(hdr + 10, UINTS[u] & 0xFFFF);
        EXPECT(betanet_mesh_fragment_parse(hdr, 20, 0, &fr),
               (UINTS[u] & 0xFFFF) >= 1 && (UINTS[u] & 0xFFFF) <= 10000 ? BETANET_OK : BETANET_E_MALFORMED);
    }
    /* parity headers: k, m, index, original length against hostile slice lengths */
    {
        static const unsigned ks[] = {0, 1, 2, 3, 127, 254, 255, 256, 65535};
        static const uint32_t ols[] = {0, 1, 100, 0xFFFF, 0x7FFFFFFF, 0x80000000u, UINT32_MAX};
        size_t ki, oi;
        for (ki = 0; ki < NELEM(ks); ki++)
            for (oi = 0; oi < NELEM(ols); oi++)
                for (i = 0; i < NELEM(MESH_SIZES); i++) {
                    size_t chunk = MESH_SIZES[i] - 17;
                    int want;
                    memset(hdr, 0, sizeof hdr);
                    put16(hdr + 8, ks[ki] & 0xFFFF);
                    hdr[10] = 1;
                    hdr[11] = 0;
                    put32(hdr + 12, ols[oi]);
                    if (MESH_SIZES[i] <= 17) want = BETANET_E_MALFORMED;
                    else if ((ks[ki] & 0xFFFF) == 0 || (ks[ki] & 0xFFFF) + 1 > 255 || ols[oi] == 0)
                        want = BETANET_E_MALFORMED;
                    else {   /* (k-1)*chunk < len <= k*chunk, exactly (no wrap) */
                        unsigned k = ks[ki] & 0xFFFF;
                        int ok_hi = chunk >= ols[oi] || (chunk > 0 && (ols[oi] - 1) / chunk < k);
                        int ok_lo = k == 1 || (chunk < ols[oi] && (ols[oi] - 1) / chunk >= k - 1);
                        want = ok_hi && ok_lo ? BETANET_OK : BETANET_E_MALFORMED;
                    }
                    EXPECT(betanet_mesh_fragment_parse(hdr, MESH_SIZES[i], 1, &fr), want);
                }
        /* the wrap case of issue 9's kind: k = 3 and a 2^63-byte slice */
        put16(hdr + 8, 3);
        put32(hdr + 12, 1000);
        EXPECT(betanet_mesh_fragment_parse(hdr, ((size_t)1 << 63) + 17, 1, &fr), BETANET_E_MALFORMED);
        hdr[10] = 0;                            /* m = 0 */
        EXPECT(betanet_mesh_fragment_parse(hdr, 100, 1, &fr), BETANET_E_MALFORMED);
    }
    /* fragment_payload: enc_len and chunk hostile; the slice is bounded by cap */
    for (i = 0; i < NELEM(MESH_SIZES); i++)
        for (c = 0; c < NELEM(MESH_SIZES); c++)
            for (j = 0; j < NELEM(CAPS); j++) {
                size_t len = MESH_SIZES[i], chunk = MESH_SIZES[c], cap = CAPS[j], total, slice;
                int want;
                if (cap > sizeof out) {          /* a huge claim only over a slice that fits */
                    size_t s = chunk < len ? chunk : len;
                    if (s > sizeof enc || s + 13 > sizeof out) continue;
                }
                total = betanet_mesh_fragment_count(len, chunk);
                slice = chunk < len ? chunk : len;
                if (chunk == 0 || total == 0 || total > BETANET_MESH_MAX_FRAGMENTS) want = BETANET_E_INVALID;
                else if (cap < 13 || cap - 13 < slice) want = BETANET_E_BUFFER_TOO_SMALL;
                else want = BETANET_OK;
                if (want == BETANET_OK && slice > sizeof enc) continue;
                EXPECT(betanet_mesh_fragment_payload(enc, len, id, chunk, 0x02, 0, out, cap, &n), want);
                if (want == BETANET_OK) TRUE_(n == 13 + slice);
            }
    for (u = 0; u < NELEM(UINTS); u++)
        EXPECT(betanet_mesh_fragment_payload(enc, 4690, id, 469, 0x02, UINTS[u], out, sizeof out, &n),
               UINTS[u] < 10 ? BETANET_OK : BETANET_E_INVALID);
    EXPECT(betanet_mesh_fragment_payload(NULL, 1, id, 469, 2, 0, out, sizeof out, &n), BETANET_E_INVALID);
    EXPECT(betanet_mesh_fragment_payload(enc, 1, NULL, 469, 2, 0, out, sizeof out, &n), BETANET_E_INVALID);
    EXPECT(betanet_mesh_fragment_payload(enc, 1, id, 469, 2, 0, NULL, SIZE_MAX, &n), BETANET_E_INVALID);
    EXPECT(betanet_mesh_fragment_payload(enc, 1, id, 469, 2, 0, out, sizeof out, NULL), BETANET_E_INVALID);
    /* parity_payloads: enc_len and m hostile, chunk real (out[i] gets 17 + chunk bytes) */
    {
        static uint8_t pbuf[255][17 + 64];
        uint8_t *po[255];
        static const size_t chunks[] = {0, 1, 64};
        for (i = 0; i < 255; i++) po[i] = pbuf[i];
        for (c = 0; c < NELEM(chunks); c++)
            for (i = 0; i < NELEM(MESH_SIZES); i++)
                for (u = 0; u < NELEM(UINTS); u++) {
                    size_t len = MESH_SIZES[i], chunk = chunks[c], k = betanet_mesh_fragment_count(len, chunk);
                    unsigned m = UINTS[u];
                    int want;
                    if (chunk == 0 || m == 0 || k == 0 || k + m > 255 || len > UINT32_MAX) want = BETANET_E_INVALID;
                    else want = BETANET_OK;
                    if (want == BETANET_OK && len > sizeof enc) continue;   /* enc is read fully */
                    EXPECT(betanet_mesh_parity_payloads(enc, len, id, chunk, 2, m, po), want);
                }
        EXPECT(betanet_mesh_parity_payloads(NULL, 64, id, 64, 2, 1, po), BETANET_E_INVALID);
        EXPECT(betanet_mesh_parity_payloads(enc, 64, NULL, 64, 2, 1, po), BETANET_E_INVALID);
        EXPECT(betanet_mesh_parity_payloads(enc, 64, id, 64, 2, 1, NULL), BETANET_E_INVALID);
        po[1] = NULL;
        EXPECT(betanet_mesh_parity_payloads(enc, 64, id, 64, 2, 2, po), BETANET_E_INVALID);
    }
}

static void hostile_reasm(void) {
    static const uint64_t TIMES[] = {0, 1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
    betanet_mesh_reasm_t *r = NULL;
    betanet_mesh_reasm_stats_t st;
    uint8_t hdr[64], out[4096], enc[1000], frag[2][600];
    uint8_t id[8] = {3, 1, 4, 1, 5, 9, 2, 6};
    size_t i, j, n, fl[2];
    unsigned u;
    for (u = 0; u < NELEM(UINTS); u++)
        for (i = 0; i < NELEM(MESH_SIZES); i++) {
            int want = UINTS[u] >= 1 && UINTS[u] <= 65536 && MESH_SIZES[i] >= 1 ? BETANET_OK : BETANET_E_INVALID;
            if (u % 3 && i % 5) continue;        /* each table size allocates: sample the grid */
            EXPECT(betanet_mesh_reasm_new(UINTS[u], MESH_SIZES[i], TIMES[i % NELEM(TIMES)], &r), want);
            if (want == BETANET_OK) TRUE_(r != NULL); else TRUE_(r == NULL);
            betanet_mesh_reasm_free(r);
            r = NULL;
        }
    EXPECT(betanet_mesh_reasm_new(1, 1, 0, NULL), BETANET_E_INVALID);
    betanet_mesh_reasm_free(NULL);
    EXPECT(betanet_mesh_reasm_expire(NULL, 0), BETANET_E_INVALID);
    EXPECT(betanet_mesh_reasm_stats(NULL, &st), BETANET_E_INVALID);

    EXPECT(betanet_mesh_reasm_new(4, 1 << 20, 30000, &r), BETANET_OK);
    EXPECT(betanet_mesh_reasm_stats(r, NULL), BETANET_E_INVALID);
    /* fragment lengths over max_bytes are refused before the (tiny) payload is read */
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, id, 8);
    put16(hdr + 8, 0);
    put16(hdr + 10, 2);
    for (i = 0; i < NELEM(MESH_SIZES); i++) {
        int want;
        if (MESH_SIZES[i] <= 13) want = BETANET_E_MALFORMED;
        else if (MESH_SIZES[i] - 13 > (1u << 20) - 257 * (sizeof(uint8_t *) + sizeof(uint32_t))) want = BETANET_E_LIMIT;
        else continue;                    /* would be read: tested with real buffers below */
        EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, hdr, MESH_SIZES[i], 5, out, sizeof out, &n), want);
        hdr[0]++;                         /* a fresh assembly each time */
    }
    /* parity fragments over max_bytes: k = 1, original length fits the slice */
    memset(hdr, 0, sizeof hdr);
    put16(hdr + 8, 1);
    hdr[10] = 1;
    put32(hdr + 12, 100);
    for (i = 0; i < NELEM(MESH_SIZES); i++) {
        int want;
        if (MESH_SIZES[i] <= 17 || MESH_SIZES[i] - 17 < 100) continue;
        if (MESH_SIZES[i] - 17 <= (1u << 20) - 256 * (sizeof(uint8_t *) + sizeof(uint32_t))) continue;
        want = BETANET_E_LIMIT;
        EXPECT(betanet_mesh_reasm_add(r, SENDER, 1, hdr, MESH_SIZES[i], 5, out, sizeof out, &n), want);
        hdr[0]++;
    }
    EXPECT(betanet_mesh_reasm_stats(r, &st), BETANET_OK);
    TRUE_(st.in_flight == 0 && st.bytes_held == 0);
    /* a real two-fragment message: output capacities hostile, NULL out */
    memset(enc, 0x33, sizeof enc);
    for (i = 0; i < 2; i++)
        EXPECT(betanet_mesh_fragment_payload(enc, 900, id, 469, 2, (unsigned)i, frag[i], sizeof frag[i], &fl[i]), BETANET_OK);
    {
        static const size_t CAPS[] = {0, 1, 899, SIZE_MAX, SIZE_MAX - 1, (size_t)-20, 900};
        for (j = 0; j < NELEM(CAPS); j++) {
            EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[0], fl[0], 10, out, CAPS[j], &n), 0);
            EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[1], fl[1], 10, NULL, CAPS[j], &n),
                   BETANET_E_BUFFER_TOO_SMALL, BETANET_E_INVALID);
            EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[1], fl[1], 10, out, CAPS[j], &n),
                   CAPS[j] < 900 ? BETANET_E_BUFFER_TOO_SMALL : 1);
            TRUE_(n == 900);
            if (CAPS[j] < 900) {
                EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[1], fl[1], 10, out, sizeof out, &n), 1);
            }
        }
    }
    /* prefixes of a real fragment, and NULLs */
    for (i = 0; i <= fl[0]; i++)
        EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[0], i, 10, out, sizeof out, &n),
               i <= 13 ? BETANET_E_MALFORMED : 0, BETANET_E_PROTOCOL);
    EXPECT(betanet_mesh_reasm_add(NULL, SENDER, 0, frag[0], fl[0], 10, out, sizeof out, &n), BETANET_E_INVALID);
    EXPECT(betanet_mesh_reasm_add(r, NULL, 0, frag[0], fl[0], 10, out, sizeof out, &n), BETANET_E_INVALID);
    EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, NULL, fl[0], 10, out, sizeof out, &n), BETANET_E_INVALID);
    EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[0], fl[0], 10, out, sizeof out, NULL), BETANET_E_INVALID);
    /* hostile clocks */
    for (i = 0; i < NELEM(TIMES); i++) {
        EXPECT(betanet_mesh_reasm_add(r, SENDER, 0, frag[0], fl[0], TIMES[i], out, sizeof out, &n), 0, BETANET_E_PROTOCOL);
        TRUE_(betanet_mesh_reasm_expire(r, TIMES[(i + 3) % NELEM(TIMES)]) >= 0);
    }
    EXPECT(betanet_mesh_reasm_stats(r, &st), BETANET_OK);
    betanet_mesh_reasm_free(r);
}

static void hostile_dedup(void) {
    static const uint32_t caps[] = {0, 1, 2, 1u << 24, (1u << 24) + 1, INT32_MAX, 0x80000000u, UINT32_MAX - 1, UINT32_MAX};
    betanet_mesh_dedup_t *d = NULL;
    uint8_t id[16] = {0};
    size_t i;
    for (i = 0; i < NELEM(caps); i++) {
        int want = caps[i] >= 1 && caps[i] <= (1u << 24) ? BETANET_OK : BETANET_E_INVALID;
        d = NULL;
        EXPECT(betanet_mesh_dedup_new(caps[i], &d), want);
        if (want == BETANET_OK) {
            unsigned j;
            EXPECT(betanet_mesh_dedup_check(d, id), 0);
            EXPECT(betanet_mesh_dedup_check(d, id), 1);
            for (j = 0; j < 5; j++) {        /* rotate the capacity-1 filter past its size */
                id[0] = (uint8_t)(j + 1);
                EXPECT(betanet_mesh_dedup_check(d, id), 0, 1);
            }
            id[0] = 0;
            EXPECT(betanet_mesh_dedup_check(d, NULL), BETANET_E_INVALID);
        }
        betanet_mesh_dedup_free(d);
    }
    EXPECT(betanet_mesh_dedup_new(1, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_dedup_check(NULL, id), BETANET_E_INVALID);
    betanet_mesh_dedup_free(NULL);
}

/* The batch calls: hostile counts, capacities and offset arrays; a bad packet or frame in
 * the middle of a batch. Counts above INT_MAX are refused before any element is read. */
static void hostile_batch(void) {
    static const size_t CAPS[] = {0, 1, 255, 256, 511, 512, 767, SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX};
    betanet_mesh_packet_t p[3];
    betanet_mesh_view_t v[4];
    size_t ends[4], total = 7, done = 9, i, offs[5];
    uint8_t ids[16 * 4], seen[4];
    int st[4];
    betanet_mesh_dedup_t *d = NULL;
    memset(p, 0, sizeof p);
    for (i = 0; i < 3; i++) {
        p[i].version = 1;
        p[i].type = BETANET_MESH_TYPE_MESSAGE;
        p[i].ttl = 7;
        p[i].sender = SENDER;
        p[i].payload = big;
        p[i].payload_len = 64;
    }
    EXPECT(betanet_mesh_encode_batch_bytes(p, 3, 1, &total, &done), BETANET_OK);
    TRUE_(total == 768 && done == 3);
    EXPECT(betanet_mesh_encode_batch_bytes(p, 0, 1, &total, &done), BETANET_OK);
    TRUE_(total == 0 && done == 0);
    EXPECT(betanet_mesh_encode_batch_bytes(NULL, 3, 1, &total, &done), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch_bytes(NULL, SIZE_MAX, 1, &total, &done), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch_bytes(p, 3, 1, NULL, &done), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch_bytes(p, 3, 1, &total, NULL), BETANET_E_INVALID);
    for (i = 0; i < NELEM(CAPS); i++) {
        int want = CAPS[i] >= 768 ? BETANET_OK : BETANET_E_BUFFER_TOO_SMALL;
        EXPECT(betanet_mesh_encode_batch(p, 3, 1, outbuf, CAPS[i] < BIG ? CAPS[i] : BIG, ends, &done), want);
        TRUE_(done == (want == BETANET_OK ? 3 : CAPS[i] / 256));
    }
    EXPECT(betanet_mesh_encode_batch(p, 3, 1, NULL, 768, ends, &done), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch(NULL, 3, 1, outbuf, 768, ends, &done), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch(p, 3, 1, outbuf, 768, NULL, &done), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch(p, 3, 1, outbuf, 768, ends, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_encode_batch(p, 0, 1, NULL, 0, ends, &done), BETANET_OK);
    /* a bad packet in the middle: the ones before it are written */
    p[1].payload_len = MAXP + 1;
    EXPECT(betanet_mesh_encode_batch_bytes(p, 3, 1, &total, &done), BETANET_E_LIMIT);
    TRUE_(done == 1);
    EXPECT(betanet_mesh_encode_batch(p, 3, 1, outbuf, BIG, ends, &done), BETANET_E_LIMIT);
    TRUE_(done == 1 && ends[1] == 256);
    p[1].payload_len = 64;
    p[1].version = 3;
    EXPECT(betanet_mesh_encode_batch(p, 3, 0, outbuf, BIG, ends, &done), BETANET_E_INVALID);
    TRUE_(done == 1);
    p[1].version = 1;
    EXPECT(betanet_mesh_encode_batch(p, 3, 1, outbuf, BIG, ends, &done), BETANET_OK);

    /* decode: three 256-byte frames, the middle one with a bad version, and an empty one */
    outbuf[256] = 9;
    offs[0] = 0; offs[1] = 256; offs[2] = 512; offs[3] = 768; offs[4] = 768;
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, offs, 4, v, st), 2);
    TRUE_(st[0] == 0 && st[1] == BETANET_E_MALFORMED && st[2] == 0 && st[3] == BETANET_E_MALFORMED);
    TRUE_(v[1].sender_off == 0 && v[2].payload_off == 512 + 22 && v[2].packet_len == 86);
    EXPECT(betanet_mesh_decode_batch(outbuf, 767, offs, 4, v, st), BETANET_E_INVALID);
    EXPECT(betanet_mesh_decode_batch(outbuf, 0, offs, 0, v, st), 0);
    EXPECT(betanet_mesh_decode_batch(NULL, 0, NULL, 0, NULL, NULL), 0);
    EXPECT(betanet_mesh_decode_batch(NULL, 768, offs, 4, v, st), BETANET_E_INVALID);
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, NULL, 4, v, st), BETANET_E_INVALID);
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, offs, 4, NULL, st), BETANET_E_INVALID);
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, offs, 4, v, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, offs, (size_t)INT_MAX + 1, v, st), BETANET_E_LIMIT);
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, offs, SIZE_MAX, v, st), BETANET_E_LIMIT);
    for (i = 0; i < NELEM(MESH_SIZES); i++) {       /* hostile offsets: refused before any read */
        size_t o[3] = {0, MESH_SIZES[i], 768};
        size_t want_ok = MESH_SIZES[i] <= 768;
        int rc = betanet_mesh_decode_batch(outbuf, 768, o, 2, v, st);
        TRUE_(want_ok ? rc >= 0 : rc == BETANET_E_INVALID);
        o[1] = 0; o[2] = MESH_SIZES[i];
        rc = betanet_mesh_decode_batch(outbuf, 768, o, 2, v, st);
        TRUE_(MESH_SIZES[i] <= 768 ? rc >= 0 : rc == BETANET_E_INVALID);
    }
    EXPECT(betanet_mesh_decode_batch(outbuf, 768, offs, 4, v, st), 2);

    /* identities and their de-duplication */
    EXPECT(betanet_mesh_packet_id_batch(outbuf, v, 4, ids), 2);
    {
        uint8_t one[16], zero[16] = {0};
        EXPECT(betanet_mesh_packet_id(outbuf, &v[0], one), BETANET_OK);
        TRUE_(memcmp(one, ids, 16) == 0 && memcmp(ids + 16, zero, 16) == 0);
    }
    EXPECT(betanet_mesh_packet_id_batch(outbuf, v, 0, NULL), 0);
    EXPECT(betanet_mesh_packet_id_batch(NULL, v, 4, ids), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id_batch(outbuf, NULL, 4, ids), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id_batch(outbuf, v, 4, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_packet_id_batch(outbuf, v, (size_t)INT_MAX + 1, ids), BETANET_E_LIMIT);
    EXPECT(betanet_mesh_packet_id_batch(outbuf, v, SIZE_MAX, ids), BETANET_E_LIMIT);
    EXPECT(betanet_mesh_dedup_new(64, &d), BETANET_OK);
    /* frames 0 and 2 have equal identities (same sender, time, type, payload); 1 and 3 are zero */
    EXPECT(betanet_mesh_dedup_check_batch(d, ids, 4, seen), 1);
    TRUE_(seen[0] == 0 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1);
    EXPECT(betanet_mesh_dedup_check_batch(d, ids, 4, seen), 0);
    EXPECT(betanet_mesh_dedup_check_batch(d, ids, 0, NULL), 0);
    EXPECT(betanet_mesh_dedup_check_batch(NULL, ids, 4, seen), BETANET_E_INVALID);
    EXPECT(betanet_mesh_dedup_check_batch(d, NULL, 4, seen), BETANET_E_INVALID);
    EXPECT(betanet_mesh_dedup_check_batch(d, ids, 4, NULL), BETANET_E_INVALID);
    EXPECT(betanet_mesh_dedup_check_batch(d, ids, (size_t)INT_MAX + 1, seen), BETANET_E_LIMIT);
    EXPECT(betanet_mesh_dedup_check_batch(d, ids, SIZE_MAX, seen), BETANET_E_LIMIT);
    betanet_mesh_dedup_free(d);
}

int main(void) {
    EXPECT(betanet_init(), BETANET_OK);
    big = calloc(BIG, 1);
    outbuf = calloc(BIG, 1);
    if (big == NULL || outbuf == NULL) return 2;
    memset(SIG, 0x11, sizeof SIG);
    hostile_codec();
    hostile_decode();
    hostile_padding();
    hostile_sign();
    hostile_fragments();
    hostile_reasm();
    hostile_dedup();
    hostile_batch();
    free(big);
    free(outbuf);
    return hostile_report();
}
