/* kat.c — known-answer test of every capability through the C API alone, for targets
 * where the Python tests cannot run (make test-cross runs it under qemu-user).
 *
 *   kat [--firmware] SPEC X86   check both files; exit 0 only if every case passes
 *   kat --record SPEC           print the computed cases (tests/vectors/cross_x86.txt)
 *   --firmware: the library is a -DBETANET_FIRMWARE=ON build; memory from a static arena
 *
 * SPEC (tests/vectors/cross_spec.txt, tools/gen_cross_vectors.py) holds the published
 * vectors the Python tests use: RFC 9381 VRF, the Noise XK vectors of snow / cacophony /
 * noise-c, HTX frames and varints, FEC parity, BitChat mesh packets, BPv7 bundles.
 * X86 (tests/vectors/cross_x86.txt, written by `kat --record` on x86-64) pins what x86
 * computes for deterministic inputs where no published vector exists: FEC parity and
 * recovery for many geometries, Sphinx packets hop by hop, Navigator routes, HTX session
 * frames, bundle and mesh encodings. Both runs also compare every FEC kernel the CPU
 * offers with the scalar path (betanet_cpu_restrict), on the geometries of test_fec.py.
 */
#include <betanet.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static FILE *record;            /* --record: print computed cases here */
static char *expected;          /* contents of X86 */

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

#define CHECK(cond, ...) do { checks++; if (!(cond)) fail(__VA_ARGS__); } while (0)

/* ---- hex and line parsing ------------------------------------------------------------ */
static size_t unhex(const char *s, uint8_t *out, size_t cap) {
    if (strcmp(s, "-") == 0) return 0;
    size_t n = strlen(s) / 2;
    if (n > cap) { fprintf(stderr, "kat: field too long\n"); exit(2); }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static char *tohex(const uint8_t *b, size_t n) {
    static char buf[2][1 << 17];
    static int which;
    char *o = buf[which ^= 1];
    if (n * 2 + 1 > sizeof buf[0]) n = (sizeof buf[0] - 1) / 2;
    for (size_t i = 0; i < n; i++) sprintf(o + 2 * i, "%02x", b[i]);
    o[2 * n] = 0;
    return o;
}

static int eqhex(const uint8_t *b, size_t n, const char *hex) {
    return strcmp(tohex(b, n), strcmp(hex, "-") == 0 ? "" : hex) == 0;
}

/* A computed case: recorded, or compared with the x86 file's line `name value`. */
static void result(const char *name, const char *value) {
    checks++;
    if (record) { fprintf(record, "%s %s\n", name, value); return; }
    size_t nl = strlen(name);
    for (const char *p = expected; p && *p; ) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            if (len - nl - 1 != strlen(value) || strncmp(p + nl + 1, value, len - nl - 1) != 0)
                fail("%s differs from x86:\n  x86:  %.*s\n  here: %s", name, (int)(len - nl - 1), p + nl + 1, value);
            return;
        }
        p = eol ? eol + 1 : NULL;
    }
    fail("%s: no x86 value recorded (regenerate tests/vectors/cross_x86.txt)", name);
}

static void result_digest(const char *name, const uint8_t *b, size_t n) {
    uint8_t d[32];
    crypto_hash_sha256(d, b, n);
    result(name, tohex(d, 32));
}

/* A deterministic byte stream (xorshift), the same on every target. */
static uint64_t rng_state;
static void fill(uint8_t *b, size_t n, uint64_t seed) {
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
        b[i] = (uint8_t)(rng_state >> 24);
    }
}

/* ---- spec vectors ------------------------------------------------------------------------ */
static uint8_t A[8][65536];     /* scratch for fields */

static void spec_vrf(char **f, int nf) {
    if (nf != 6) { fail("vrf line"); return; }
    size_t skl = unhex(f[1], A[0], 64), al = unhex(f[3], A[1], 4096);
    betanet_vrf_key_t *key = NULL;
    uint8_t pk[32], pi[80], beta[64], beta2[64];
    CHECK(betanet_vrf_key_new(A[0], skl, &key) == 0, "vrf key_new");
    if (!key) return;
    CHECK(betanet_vrf_key_public(key, pk, 32) == 0 && eqhex(pk, 32, f[2]), "vrf pk %s", f[2]);
    CHECK(betanet_vrf_prove(key, A[1], al, pi, 80, beta, 64) == 0 && eqhex(pi, 80, f[4]), "vrf proof");
    CHECK(eqhex(beta, 64, f[5]), "vrf beta");
    CHECK(betanet_vrf_verify(pk, 32, pi, 80, A[1], al, beta2, 64) == 0 && memcmp(beta, beta2, 64) == 0,
          "vrf verify");
    pi[5] ^= 1;
    CHECK(betanet_vrf_verify(pk, 32, pi, 80, A[1], al, beta2, 64) != 0, "vrf verify accepts a bad proof");
    betanet_vrf_key_free(key);
}

static void spec_noise(char **f, int nf) {
    int nmsg = atoi(f[1]);
    if (nf != 9 + 2 * nmsg || nmsg < 3) { fail("noise line"); return; }
    uint8_t ipro[256], is[32], ie[32], irs[32], rpro[256], rs[32], re[32];
    size_t iprol = unhex(f[2], ipro, 256), rprol;
    unhex(f[3], is, 32); unhex(f[4], ie, 32); unhex(f[5], irs, 32);
    rprol = unhex(f[6], rpro, 256); unhex(f[7], rs, 32); unhex(f[8], re, 32);
    betanet_noise_xk_t *hi = NULL, *hr = NULL;
    CHECK(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_INITIATOR, is, irs, ipro, iprol, ie, &hi) == 0, "noise new i");
    CHECK(betanet_noise_xk_new_with_ephemeral(BETANET_NOISE_RESPONDER, rs, NULL, rpro, rprol, re, &hr) == 0, "noise new r");
    if (!hi || !hr) return;
    for (int i = 0; i < 3; i++) {
        betanet_noise_xk_t *w = i % 2 ? hr : hi, *r = i % 2 ? hi : hr;
        size_t pl = unhex(f[9 + 2 * i], A[0], 65536), ol = 0, got = 0;
        int rc = betanet_noise_xk_write_message(w, A[0], pl, A[1], 65536, &ol);
        CHECK(rc == 0 && eqhex(A[1], ol, f[10 + 2 * i]), "noise message %d (%s...)", i + 1, f[3]);
        rc = betanet_noise_xk_read_message(r, A[1], ol, A[2], 65536, &got);
        CHECK(rc == 0 && got == pl && memcmp(A[2], A[0], pl) == 0, "noise read %d", i + 1);
    }
    uint8_t k1[32], k2[32], h[32], k1r[32], k2r[32], hr_[32];
    CHECK(betanet_noise_xk_split(hi, k1, k2, h) == 0 && betanet_noise_xk_split(hr, k1r, k2r, hr_) == 0
          && memcmp(k1, k1r, 32) == 0 && memcmp(k2, k2r, 32) == 0 && memcmp(h, hr_, 32) == 0, "noise split");
    uint64_t ctr[2] = {0, 0};
    for (int i = 3; i < nmsg; i++) {          /* transport: initiator k1, responder k2 */
        int d = i % 2;
        uint8_t nonce[12] = {0};
        for (int b = 0; b < 8; b++) nonce[4 + b] = (uint8_t)(ctr[d] >> (8 * b));
        ctr[d]++;
        size_t pl = unhex(f[9 + 2 * i], A[0], 65536);
        unsigned long long cl = 0;
        crypto_aead_chacha20poly1305_ietf_encrypt(A[1], &cl, A[0], pl, NULL, 0, NULL, nonce, d ? k2 : k1);
        CHECK(eqhex(A[1], (size_t)cl, f[10 + 2 * i]), "noise transport message %d", i + 1);
    }
    betanet_noise_xk_free(hi);
    betanet_noise_xk_free(hr);
}

static uint8_t htx_k1[32], htx_k2[32], htx_ns1[12], htx_ns2[12], htx_next_k1[32], htx_next_ns1[12];

static void spec_htx_keys(char **f, int nf) {
    if (nf != 8) { fail("htx_keys line"); return; }
    uint8_t hh[32], ns[12], nk[32];
    unhex(f[1], htx_k1, 32); unhex(f[2], htx_k2, 32); unhex(f[3], hh, 32);
    unhex(f[4], htx_ns1, 12); unhex(f[5], htx_ns2, 12);
    CHECK(betanet_htx_derive_ns(htx_k1, ns) == 0 && memcmp(ns, htx_ns1, 12) == 0, "htx ns1");
    CHECK(betanet_htx_derive_ns(htx_k2, ns) == 0 && memcmp(ns, htx_ns2, 12) == 0, "htx ns2");
    CHECK(betanet_htx_next_key(htx_k1, hh, 32, nk) == 0 && eqhex(nk, 32, f[6]), "htx next key");
    CHECK(betanet_htx_derive_ns(nk, ns) == 0 && eqhex(ns, 12, f[7]), "htx next ns");
    memcpy(htx_next_k1, nk, 32);
    memcpy(htx_next_ns1, ns, 12);
}

static void spec_htx_frame(char **f, int nf) {
    if (nf != 7) { fail("htx_frame line"); return; }
    int i2r = strcmp(f[1], "i2r") == 0, next = strcmp(f[1], "i2r_next") == 0;  /* after KEY_UPDATE */
    const uint8_t *k = next ? htx_next_k1 : i2r ? htx_k1 : htx_k2;
    const uint8_t *ns = next ? htx_next_ns1 : i2r ? htx_ns1 : htx_ns2;
    uint64_t ctr = strtoull(f[2], NULL, 10), sid = strtoull(f[4], NULL, 10);
    int type = atoi(f[3]);
    size_t pl = unhex(f[5], A[0], 65536), ol = 0, got = 0, used = 0;
    int rc = betanet_htx_frame_seal(k, ns, ctr, type, sid, A[0], pl, A[1], 65536, &ol);
    CHECK(rc == 0 && eqhex(A[1], ol, f[6]), "htx frame seal %s ctr %s", f[1], f[2]);
    int t2 = -1;
    uint64_t s2 = 0;
    rc = betanet_htx_frame_open(k, ns, ctr, A[1], ol, 1u << 24, &t2, &s2, A[2], 65536, &got, &used);
    CHECK(rc == 0 && t2 == type && got == pl && memcmp(A[2], A[0], pl) == 0 && used == ol, "htx frame open");
    A[1][ol - 1] ^= 1;
    rc = betanet_htx_frame_open(k, ns, ctr, A[1], ol, 1u << 24, &t2, &s2, A[2], 65536, &got, &used);
    CHECK(rc == BETANET_E_AUTH, "htx frame open accepts a bad tag (%d)", rc);
}

static void spec_htx_varint(char **f, int nf) {
    uint64_t v = strtoull(f[1], NULL, 10), back = 0;
    uint8_t b[16];
    size_t n = 0, used = 0;
    CHECK(nf == 3 && betanet_htx_varint_encode(v, b, 16, &n) == 0 && eqhex(b, n, f[2]), "varint %s", f[1]);
    CHECK(betanet_htx_varint_decode(b, n, &back, &used) == 0 && back == v && used == n, "varint decode");
}

static void spec_fec(char **f, int nf) {
    unsigned k = (unsigned)atoi(f[1]), m = (unsigned)atoi(f[2]);
    if (nf != 3 + (int)(k + m) || k + m > 16) { fail("fec line"); return; }
    static uint8_t dbuf[16][4096], pbuf[16][4096];
    uint8_t *data[16], *par[16];
    size_t len = 0;
    for (unsigned i = 0; i < k + m; i++) len = unhex(f[3 + i], i < k ? dbuf[i] : pbuf[15], 4096);
    for (unsigned i = 0; i < k; i++) data[i] = dbuf[i];
    for (unsigned i = 0; i < m; i++) par[i] = pbuf[i];
    betanet_fec_t *fec = NULL;
    CHECK(betanet_fec_new(k, m, &fec) == 0, "fec new");
    CHECK(betanet_fec_encode(fec, (const uint8_t *const *)data, par, len) == 0, "fec encode");
    for (unsigned i = 0; i < m; i++) CHECK(eqhex(par[i], len, f[3 + k + i]), "fec k=%u m=%u parity %u", k, m, i);
    betanet_fec_free(fec);
}

static void spec_mesh(char **f, int nf) {
    if (nf != 6) { fail("mesh line"); return; }
    size_t fl = unhex(f[3], A[0], 65536), sl = unhex(f[4], A[1], 65536), ol = 0;
    betanet_mesh_view_t v;
    betanet_mesh_packet_t p;
    uint8_t id[16];
    CHECK(betanet_mesh_decode(A[0], fl, &v) == 0, "mesh decode %s", f[1]);
    CHECK(betanet_mesh_view_packet(A[0], &v, &p) == 0, "mesh view %s", f[1]);
    CHECK(betanet_mesh_encode(&p, atoi(f[2]), A[2], 65536, &ol) == 0 && ol == fl && memcmp(A[2], A[0], fl) == 0,
          "mesh re-encode %s", f[1]);
    CHECK(betanet_mesh_signing_input(&p, A[3], 65536, &ol) == 0 && ol == sl && memcmp(A[3], A[1], sl) == 0,
          "mesh signing input %s", f[1]);
    CHECK(betanet_mesh_packet_id(A[0], &v, id) == 0 && eqhex(id, 16, f[5]), "mesh packet id %s", f[1]);
}

static void spec_bundle(char **f, int nf) {
    if (nf != 7) { fail("bundle line"); return; }
    size_t bl = unhex(f[2], A[0], 65536), pl = unhex(f[3], A[1], 65536), ol = 0;
    betanet_bundle_block_t blocks[16];
    betanet_bundle_view_t v;
    int rc = betanet_bundle_parse(A[0], bl, NULL, blocks, 16, &v);
    CHECK(rc == 0, "bundle parse %s (%d)", f[1], rc);
    if (rc) return;
    const betanet_bundle_block_t *pb = &v.blocks[v.payload];
    CHECK(pb->data_len == pl && memcmp(A[0] + pb->data_off, A[1], pl) == 0, "bundle payload %s", f[1]);
    CHECK(v.primary.creation_ms == strtoull(f[4], NULL, 10) && v.primary.sequence == strtoull(f[5], NULL, 10)
          && v.primary.lifetime_ms == strtoull(f[6], NULL, 10), "bundle primary %s", f[1]);
    CHECK(betanet_bundle_rewrite(A[0], bl, &v, A[2], 65536, &ol) == 0, "bundle rewrite %s", f[1]);
    char name[96];
    snprintf(name, sizeof name, "bundle_rewrite_%s", f[1]);
    result_digest(name, A[2], ol);
    uint8_t bid[64];
    snprintf(name, sizeof name, "bundle_id_%s", f[1]);
    if (betanet_bundle_id(A[0], bl, &v, bid, 64) == 0) result(name, tohex(bid, 64));
    else fail("bundle id %s", f[1]);
}

static void run_spec(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) { perror(path); exit(2); }
    static char line[1 << 20];
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *f[64] = {0};
        int nf = 0;
        for (char *t = strtok(line, " \n"); t && nf < 64; t = strtok(NULL, " \n")) f[nf++] = t;
        if (!strcmp(f[0], "vrf")) spec_vrf(f, nf);
        else if (!strcmp(f[0], "noise_xk")) spec_noise(f, nf);
        else if (!strcmp(f[0], "htx_keys")) spec_htx_keys(f, nf);
        else if (!strcmp(f[0], "htx_frame")) spec_htx_frame(f, nf);
        else if (!strcmp(f[0], "htx_varint")) spec_htx_varint(f, nf);
        else if (!strcmp(f[0], "fec")) spec_fec(f, nf);
        else if (!strcmp(f[0], "mesh")) spec_mesh(f, nf);
        else if (!strcmp(f[0], "bundle")) spec_bundle(f, nf);
        else fail("unknown spec kind %s", f[0]);
    }
    fclose(fp);
}

/* ---- FEC: parity for x86 comparison, every kernel against scalar --------------------- */
#define ALL_CPU 0xFFFFFFFFu

/* Encode, erase m shards (chosen from seed), reconstruct (also through a resolved pattern),
 * correct 1 corrupted shard.
 * Returns a digest-able buffer: parity || reconstructed; *ok false on any mismatch. */
static int fec_round(unsigned k, unsigned m, size_t len, uint64_t seed, uint8_t *out_parity) {
    unsigned n = k + m;
    uint8_t **sh = calloc(n, sizeof *sh), **work = calloc(n, sizeof *work), present[255];
    int ok = 1;
    for (unsigned i = 0; i < n; i++) {
        sh[i] = malloc(len + 1);
        work[i] = malloc(len + 1);
    }
    for (unsigned i = 0; i < k; i++) fill(sh[i], len, seed * 1000 + i);
    betanet_fec_t *fec = NULL;
    if (betanet_fec_new(k, m, &fec) != 0) { fail("fec_new %u %u", k, m); ok = 0; goto out; }
    if (betanet_fec_encode(fec, (const uint8_t *const *)sh, sh + k, len) != 0) { ok = 0; goto out; }
    if (out_parity)
        for (unsigned i = 0; i < m; i++) memcpy(out_parity + i * len, sh[k + i], len);
    /* erase m shards: a seeded choice */
    for (unsigned i = 0; i < n; i++) { present[i] = 1; memcpy(work[i], sh[i], len); }
    uint8_t pick[255];
    fill(pick, n, seed + 77);
    for (unsigned e = 0, i = 0; e < m; i = (i + 1) % n)
        if (present[i] && (pick[i] & 1)) { present[i] = 0; memset(work[i], 0xEE, len); e++; }
        else pick[i] |= (uint8_t)((pick[i] >> 1) | 1);     /* eventually every shard qualifies */
    if (betanet_fec_reconstruct(fec, work, present, len) != 0) ok = 0;
    for (unsigned i = 0; ok && i < n; i++) if (memcmp(work[i], sh[i], len) != 0) ok = 0;
    if (ok) {                                  /* the same pattern resolved once */
        betanet_fec_pattern_t *pat = NULL;
        for (unsigned i = 0; i < n; i++) if (!present[i]) memset(work[i], 0xEE, len);
        if (betanet_fec_pattern_new(fec, present, &pat) != 0 ||
            betanet_fec_pattern_reconstruct(pat, work, len) != 0) ok = 0;
        for (unsigned i = 0; ok && i < n; i++) if (memcmp(work[i], sh[i], len) != 0) ok = 0;
        betanet_fec_pattern_free(pat);
    }
    if (ok && m >= 2 && len > 0) {             /* one silently corrupted shard */
        for (unsigned i = 0; i < n; i++) { present[i] = 1; memcpy(work[i], sh[i], len); }
        unsigned bad = (unsigned)(seed % n);
        work[bad][len / 2] ^= 0x5A;
        uint8_t corrupted[255];
        size_t nc = 0;
        if (betanet_fec_correct(fec, work, present, len, corrupted, &nc) != 0 || nc != 1 || corrupted[0] != bad)
            ok = 0;
        for (unsigned i = 0; ok && i < n; i++) if (memcmp(work[i], sh[i], len) != 0) ok = 0;
    }
out:
    betanet_fec_free(fec);
    for (unsigned i = 0; i < n; i++) { free(sh[i]); free(work[i]); }
    free(sh);
    free(work);
    return ok;
}

static void fec_cases(void) {
    /* the geometries and lengths of tests/test_fec.py::test_kernels_agree, plus the
     * benchmarks' (10,4) 64 KiB, (16,8) 244 B, (32,32) 4 KiB */
    static const size_t lens[] = {0, 1, 15, 16, 17, 31, 33, 63, 64, 65, 200, 1000, 4097, 70000};
    static const unsigned geo[][2] = {{5, 3}, {10, 4}, {12, 12}, {20, 9}, {16, 8}, {32, 32}, {1, 1}, {200, 55}};
    const char *best = betanet_fec_kernel();
    fprintf(record ? stderr : stdout, "kat: FEC kernel %s\n", best);
    for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            unsigned k = geo[g][0], m = geo[g][1];
            size_t len = lens[l];
            if (k + m > 64 && len > 4097) continue;     /* keep qemu runs short */
            uint8_t *p_best = malloc(m * len + 1), *p_scalar = malloc(m * len + 1);
            betanet_cpu_restrict(ALL_CPU);
            int ok1 = fec_round(k, m, len, g * 100 + l, p_best);
            betanet_cpu_restrict(0);
            CHECK(strcmp(betanet_fec_kernel(), "scalar") == 0, "cpu_restrict(0) is not scalar");
            int ok2 = fec_round(k, m, len, g * 100 + l, p_scalar);
            betanet_cpu_restrict(ALL_CPU);
            CHECK(ok1, "fec round trip k=%u m=%u len=%zu on %s", k, m, len, best);
            CHECK(ok2, "fec round trip k=%u m=%u len=%zu on scalar", k, m, len);
            CHECK(memcmp(p_best, p_scalar, m * len) == 0, "fec %s differs from scalar k=%u m=%u len=%zu",
                  best, k, m, len);
            char name[64];
            snprintf(name, sizeof name, "fec_%u_%u_%zu", k, m, len);
            result_digest(name, p_scalar, m * len);
            free(p_best);
            free(p_scalar);
        }
}

/* test_fec.py's other kernel tests: correct() with 3 corrupted shards of (10, 6) on every
 * kernel, and random small codes (k 1-12, m 1-8, 0-200 bytes) encoding alike. */
static void fec_kernel_cases(void) {
    static const size_t lens[] = {1, 100, 5000};
    for (size_t l = 0; l < 3; l++)
        for (int pass = 0; pass < 2; pass++) {
            betanet_cpu_restrict(pass ? 0 : ALL_CPU);
            size_t len = lens[l];
            uint8_t *sh[16], *good[16], present[16], corrupted[16];
            for (int i = 0; i < 16; i++) { sh[i] = malloc(len); good[i] = malloc(len); present[i] = 1; }
            for (int i = 0; i < 10; i++) fill(sh[i], len, 40 + i);
            betanet_fec_t *fec = NULL;
            size_t nc = 0;
            int ok = betanet_fec_new(10, 6, &fec) == 0
                     && betanet_fec_encode(fec, (const uint8_t *const *)sh, sh + 10, len) == 0;
            for (int i = 0; i < 16; i++) memcpy(good[i], sh[i], len);
            for (int b = 0; b < 3; b++) for (size_t x = 0; x < len; x++) sh[b * 4][x] ^= (uint8_t)(1 + (x + b) % 255);
            ok = ok && betanet_fec_correct(fec, sh, present, len, corrupted, &nc) == 0 && nc == 3
                 && corrupted[0] == 0 && corrupted[1] == 4 && corrupted[2] == 8;
            for (int i = 0; ok && i < 16; i++) ok = memcmp(sh[i], good[i], len) == 0;
            CHECK(ok, "fec correct 3 of (10,6) len=%zu on %s", len, betanet_fec_kernel());
            betanet_fec_free(fec);
            for (int i = 0; i < 16; i++) { free(sh[i]); free(good[i]); }
        }
    betanet_cpu_restrict(ALL_CPU);
    uint8_t r[3];
    for (int t = 0; t < 250; t++) {
        fill(r, 3, 9000 + t);
        unsigned k = 1 + r[0] % 12, m = 1 + r[1] % 8;
        size_t len = r[2] % 201;
        uint8_t *d[12], *p[2][8];
        for (unsigned i = 0; i < k; i++) { d[i] = malloc(len + 1); fill(d[i], len, 10000 + 16 * t + i); }
        for (unsigned i = 0; i < m; i++) { p[0][i] = malloc(len + 1); p[1][i] = malloc(len + 1); }
        betanet_fec_t *fec = NULL;
        int ok = betanet_fec_new(k, m, &fec) == 0;
        for (int pass = 0; ok && pass < 2; pass++) {
            betanet_cpu_restrict(pass ? 0 : ALL_CPU);
            ok = betanet_fec_encode(fec, (const uint8_t *const *)d, p[pass], len) == 0;
        }
        betanet_cpu_restrict(ALL_CPU);
        for (unsigned i = 0; ok && i < m; i++) ok = memcmp(p[0][i], p[1][i], len) == 0;
        CHECK(ok, "fec random code k=%u m=%u len=%zu: %s differs from scalar", k, m, len, betanet_fec_kernel());
        betanet_fec_free(fec);
        for (unsigned i = 0; i < k; i++) free(d[i]);
        for (unsigned i = 0; i < m; i++) { free(p[0][i]); free(p[1][i]); }
    }
}

/* ---- Sphinx: a deterministic packet through three hops ----------------------------------- */
static void sphinx_cases(void) {
    enum { HOPS = 5, PAY = 256, N = 3 };
    betanet_sphinx_hop_t hops[N];
    uint8_t sk[N][32], seed[32], dest[32], body[PAY - 16];
    betanet_sphinx_node_t *node[N];
    for (int i = 0; i < N; i++) {
        fill(seed, 32, 500 + i);
        CHECK(betanet_sphinx_keypair(hops[i].public_key, sk[i], seed) == 0, "sphinx keypair");
        fill(hops[i].node_id, 32, 600 + i);
        hops[i].delay_ms = 10u * (i + 1);
        CHECK(betanet_sphinx_node_new(HOPS, PAY, 64, &node[i]) == 0 && betanet_sphinx_node_add_key(node[i], 7, sk[i]) == 0,
              "sphinx node");
        result(i == 0 ? "sphinx_pk0" : i == 1 ? "sphinx_pk1" : "sphinx_pk2", tohex(hops[i].public_key, 32));
    }
    fill(dest, 32, 700); fill(body, sizeof body, 701); fill(seed, 32, 702);
    size_t plen = BETANET_SPHINX_PACKET_BYTES(HOPS, PAY);
    uint8_t *pkt = malloc(plen), *out = malloc(plen);
    CHECK(betanet_sphinx_create(HOPS, PAY, 7, hops, N, dest, body, sizeof body, seed, pkt, plen) == 0, "sphinx create");
    result_digest("sphinx_packet", pkt, plen);
    for (int i = 0; i < N; i++) {
        betanet_sphinx_result_t r;
        int rc = betanet_sphinx_node_process(node[i], pkt, plen, &r, out, plen);
        CHECK(rc == 0, "sphinx process hop %d (%d)", i, rc);
        if (rc) break;
        char name[32];
        snprintf(name, sizeof name, "sphinx_hop%d", i);
        result_digest(name, out, r.out_len);
        if (i < N - 1) {
            CHECK(r.action == BETANET_SPHINX_RELAY && memcmp(r.node_id, hops[i + 1].node_id, 32) == 0
                  && r.delay_ms == hops[i].delay_ms, "sphinx relay %d", i);
            memcpy(pkt, out, plen);
        } else {
            CHECK(r.action == BETANET_SPHINX_DELIVER && memcmp(r.node_id, dest, 32) == 0
                  && r.out_len == sizeof body && memcmp(out, body, sizeof body) == 0, "sphinx deliver");
        }
    }
    betanet_sphinx_result_t r;
    CHECK(betanet_sphinx_node_process(node[N - 1], pkt, plen, &r, out, plen) == BETANET_E_REPLAY, "sphinx replay");
    for (int i = 0; i < N; i++) betanet_sphinx_node_free(node[i]);
    free(pkt);
    free(out);
}

/* ---- Navigator: routes on a deterministic random graph --------------------------------- */
static void navigator_cases(void) {
    enum { NODES = 60, LINKS = 300 };
    uint32_t src[LINKS], dst[LINKS];
    double cost[LINKS * 4], cap[LINKS];
    uint16_t tr[LINKS];
    uint8_t r[LINKS * 8];
    fill(r, sizeof r, 900);
    for (int i = 0; i < LINKS; i++) {
        src[i] = r[8 * i] % NODES;
        dst[i] = (src[i] + 1 + r[8 * i + 1] % (NODES - 1)) % NODES;
        for (int d = 0; d < 4; d++) cost[4 * i + d] = (1 + r[8 * i + 2 + d]) / 256.0;  /* exact; <= 1 */
        tr[i] = r[8 * i + 6] % 3;
        cap[i] = 1000.0;
    }
    betanet_nav_graph_t *g = NULL;
    CHECK(betanet_nav_graph_new(NODES, &g) == 0, "nav graph");
    if (!g) return;
    CHECK(betanet_nav_graph_load_edges(g, NODES, LINKS, src, dst, cost, tr, cap) == 0, "nav load");
    double dist[NODES];
    int64_t pred[NODES];
    char buf[4096];
    for (int obj = 0; obj < 4; obj++) {
        CHECK(betanet_nav_shortest(g, 0, obj, dist, pred) == 0, "nav shortest");
        size_t o = 0;
        for (int i = 0; i < NODES; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%.6g/%lld,", dist[i], (long long)pred[i]);
        char name[32];
        snprintf(name, sizeof name, "nav_shortest_obj%d", obj);
        result_digest(name, (const uint8_t *)buf, o);
    }
    for (int preset = 0; preset < 4; preset++) {
        betanet_nav_qos_t q;
        betanet_nav_qos_preset(preset, &q);
        size_t o = 0;
        for (uint32_t d = 1; d < NODES; d += 7) {
            betanet_nav_route_t rt;
            uint32_t path[NODES];
            uint16_t pt[NODES];
            size_t pl = 0;
            int rc = betanet_nav_select(g, 0, d, &q, &rt, path, pt, NODES, &pl);
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%u:%d:", d, rc);
            if (rc == 0) {
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%.6g:", rt.score);
                for (size_t i = 0; i < pl; i++)   /* transports[i]: the link path[i] -> path[i + 1] */
                    o += i + 1 < pl ? (size_t)snprintf(buf + o, sizeof buf - o, "%u.%u,", path[i], pt[i])
                                    : (size_t)snprintf(buf + o, sizeof buf - o, "%u;", path[i]);
            }
        }
        char name[32];
        snprintf(name, sizeof name, "nav_select_preset%d", preset);
        result(name, buf);
    }
    betanet_nav_graph_free(g);
}

/* ---- HTX session: frames of a deterministic session ------------------------------------- */
static void htx_cases(void) {
    static uint8_t pt[1 << 17];
    uint8_t k1[32], k2[32], hh[32], msg[3000], out[4096];
    fill(k1, 32, 1); fill(k2, 32, 2); fill(hh, 32, 3); fill(msg, sizeof msg, 4);
    betanet_htx_session_t *a = NULL, *b = NULL;
    CHECK(betanet_htx_session_new(BETANET_HTX_INITIATOR, k1, k2, hh, NULL, 0, &a) == 0, "htx session i");
    CHECK(betanet_htx_session_new(BETANET_HTX_RESPONDER, k1, k2, hh, NULL, 0, &b) == 0, "htx session r");
    if (!a || !b) return;
    uint8_t all[1 << 15];
    size_t total = 0;
    for (int i = 0; i < 6; i++) {
        size_t ol = 0, used = 0;
        int rc = betanet_htx_session_seal_stream(a, 1, 0, msg, 100 + 500 * i, 1000 + i, out, sizeof out, &ol);
        CHECK(rc == 0, "htx seal_stream %d (%d)", i, rc);
        if (rc) break;
        memcpy(all + total, out, ol);
        total += ol;
        betanet_htx_frame_t fr;
        rc = betanet_htx_session_open(b, out, ol, &used, &fr, pt, sizeof pt);
        CHECK(rc >= 0 && used == ol, "htx open %d (%d)", i, rc);
    }
    result_digest("htx_session_frames", all, total);
    betanet_htx_session_free(a);
    betanet_htx_session_free(b);
}

/* ---- bundle and mesh encoders -------------------------------------------------------------- */
static void codec_cases(void) {
    uint8_t payload[300], out[2048], sender[8], sig[64];
    fill(payload, sizeof payload, 11); fill(sender, 8, 12); fill(sig, 64, 13);
    for (int v = 1; v <= 2; v++)
        for (int pad = 0; pad <= 1; pad++) {
            betanet_mesh_packet_t p;
            memset(&p, 0, sizeof p);
            p.version = (uint8_t)v; p.type = 2; p.ttl = 7; p.timestamp = 1733000000000ull;
            p.sender = sender; p.payload = payload; p.payload_len = 100 + 100 * v; p.signature = pad ? sig : NULL;
            size_t ol = 0;
            CHECK(betanet_mesh_encode(&p, pad, out, sizeof out, &ol) == 0, "mesh encode v%d", v);
            char name[32];
            snprintf(name, sizeof name, "mesh_encode_v%d_pad%d", v, pad);
            result(name, tohex(out, ol));
        }
    for (int crc = 0; crc <= 2; crc++) {
        uint32_t c = 0;
        CHECK(betanet_bundle_crc((uint32_t)crc, payload, sizeof payload, &c) == 0 || crc == 0, "bundle crc");
        char name[32], val[16];
        snprintf(name, sizeof name, "bundle_crc%d", crc);
        snprintf(val, sizeof val, "%08x", c);
        result(name, val);
    }
}

/* --firmware: the library was built with -DBETANET_FIRMWARE=ON. It must have no heap of
 * its own (an allocation before betanet_set_allocator fails), then runs every case from a
 * static arena, as a host without malloc would give it. Frees are not reused (the arena
 * is large enough for this program); the peak is printed. */
static uint8_t arena[256u << 20] __attribute__((aligned(16)));
static size_t arena_used;

static void *arena_alloc(size_t size, void *ctx) {
    (void)ctx;
    size = (size + 15) & ~(size_t)15;
    if (size > sizeof arena - arena_used) return NULL;
    void *p = arena + arena_used;
    arena_used += size;
    return p;
}

static void arena_free(void *p, void *ctx) { (void)p; (void)ctx; }

static void firmware_setup(void) {
    betanet_fec_t *fec = NULL;
    int rc = betanet_fec_new(4, 2, &fec);
    CHECK(rc == BETANET_E_NOMEM && fec == NULL, "firmware build allocated without an allocator (%d)", rc);
    CHECK(betanet_set_allocator(arena_alloc, arena_free, NULL) == 0, "set_allocator");
}

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { perror(path); exit(2); }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, fp) != (size_t)n) exit(2);
    s[n] = 0;
    fclose(fp);
    return s;
}

int main(int argc, char **argv) {
    int firmware = argc > 1 && strcmp(argv[1], "--firmware") == 0;
    if (firmware) { argc--; argv++; }
    if (argc == 3 && strcmp(argv[1], "--record") == 0) {
        record = stdout;
        printf("# generated on x86-64 by `kat --record` (tests/cross/kat.c); make test-cross compares\n");
    } else if (argc == 3) {
        expected = slurp(argv[2]);
    } else {
        fprintf(stderr, "usage: kat SPEC X86 | kat --record SPEC\n");
        return 2;
    }
    if (betanet_init() != 0 || sodium_init() < 0) { fprintf(stderr, "init failed\n"); return 2; }
    FILE *log = record ? stderr : stdout;
    if (firmware) firmware_setup();
    run_spec(record ? argv[2] : argv[1]);
    fec_cases();
    fec_kernel_cases();
    sphinx_cases();
    navigator_cases();
    htx_cases();
    codec_cases();
    fprintf(log, "kat: %d checks, %d failed (cpu features 0x%x, FEC kernel %s, %s)\n", checks, failures,
            betanet_cpu_features(), betanet_fec_kernel(), betanet_version_string());
    if (firmware) fprintf(log, "kat: firmware build, %zu bytes taken from the host's arena\n", arena_used);
    return failures ? 1 : 0;
}
