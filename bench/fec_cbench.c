/* fec_cbench.c — betanet's FEC against Intel ISA-L in C loops, on one pinned core, in one
 * run (built and run by bench/fec_bench.py; the ISA-L it links is the peer it labels).
 *
 * Both libraries do the same work on the same bytes: the same shards, the same erased
 * indices (data and parity), m erasures rebuilt per call. Cases per configuration:
 *   encode          k data -> m parity, shards in cache
 *   encode-dram     the same with every shard flushed from the caches before each call
 *                   (clflush, not timed): inputs come from DRAM, outputs go to it; the
 *                   median call
 *   rec-cached      one erasure pattern over and over: decoding tables built once
 *                   (ISA-L: ec_init_tables outside the loop; betanet: its pattern cache)
 *   rec-pattern     the same pattern resolved once by the host: betanet_fec_pattern_new
 *                   outside the loop, betanet_fec_pattern_reconstruct inside (ISA-L: as
 *                   rec-cached, which is already the host holding resolved tables)
 *   rec-setup       a new pattern each call from 64 (cycled through betanet's 16-entry
 *                   cache, so it misses): matrix inversion + tables in every call, both
 * Output: one line per case, "case k m len betanet_MBps isal_MBps" (MB = 10^6 bytes of data).
 * Built with -DFEC_CBENCH_BEFORE_PATTERN it links a libbetanet older than the pattern API
 * (before/after runs of the same program): rec-pattern then repeats rec-cached.
 * usage: fec_cbench [seconds_per_measurement] [rounds] [quick|full] [only]
 *   only: "k,m,len" runs that configuration alone (e.g. "16,8,244"; repeated runs for
 *   medians and spread: bench/fec_bench.py --repeat) */
#define _GNU_SOURCE
#include <immintrin.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "betanet.h"

/* ISA-L's erasure-code API (declared here: the same in 2.30 and 2.32). */
void gf_gen_cauchy1_matrix(unsigned char *a, int m, int k);
int gf_invert_matrix(unsigned char *in, unsigned char *out, const int n);
unsigned char gf_mul(unsigned char a, unsigned char b);
void ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls);
void ec_encode_data(int len, int k, int rows, unsigned char *gftbls, unsigned char **data,
                    unsigned char **coding);

#define NPAT 64

struct cfg { int k, m; size_t len; };
struct bed {
    int k, m, n;
    size_t len;
    uint8_t **sh;                 /* n shards: k data then m parity (betanet's code) */
    uint8_t **ish;                /* ISA-L's codeword of the same data */
    uint8_t **ref, **iref;        /* the untouched codewords, to check rebuilt shards */
    uint8_t *A;                   /* ISA-L's n x k encoding matrix */
    uint8_t *etbl;                /* ISA-L's encode tables */
    uint8_t pat[NPAT][256];       /* present flags per pattern (m zeros each) */
    betanet_fec_t *fec;
    betanet_fec_pattern_t *fpat;  /* pat[0], resolved */
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static void *xalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) { perror("alloc"); exit(1); }
    memset(p, 0, n);
    return p;
}

static void flush(uint8_t *const *bufs, int count, size_t len) {
    for (int i = 0; i < count; i++)
        for (size_t o = 0; o < len; o += 64)
            _mm_clflush(bufs[i] + o);
    _mm_mfence();
}

static void bed_init(struct bed *b, struct cfg c) {
    b->k = c.k; b->m = c.m; b->n = c.k + c.m; b->len = c.len;
    b->sh = xalloc(b->n * sizeof *b->sh);
    b->ish = xalloc(b->n * sizeof *b->ish);
    b->ref = xalloc(b->n * sizeof *b->ref);
    b->iref = xalloc(b->n * sizeof *b->iref);
    for (int i = 0; i < b->n; i++) {
        b->sh[i] = xalloc(c.len); b->ish[i] = xalloc(c.len);
        b->ref[i] = xalloc(c.len); b->iref[i] = xalloc(c.len);
    }
    for (int i = 0; i < b->k; i++)
        for (size_t j = 0; j < c.len; j++)
            b->sh[i][j] = b->ish[i][j] = (uint8_t)rnd();
    if (betanet_fec_new(c.k, c.m, &b->fec) != 0) { fprintf(stderr, "fec_new\n"); exit(1); }
    b->fpat = NULL;
    betanet_fec_encode(b->fec, (const uint8_t *const *)b->sh, b->sh + b->k, c.len);
    b->A = xalloc((size_t)b->n * b->k);
    b->etbl = xalloc(32 * (size_t)b->k * b->m);
    gf_gen_cauchy1_matrix(b->A, b->n, b->k);
    ec_init_tables(b->k, b->m, b->A + b->k * b->k, b->etbl);
    ec_encode_data((int)c.len, b->k, b->m, b->etbl, b->ish, b->ish + b->k);
    for (int i = 0; i < b->n; i++) {
        memcpy(b->ref[i], b->sh[i], c.len);
        memcpy(b->iref[i], b->ish[i], c.len);
    }
    for (int p = 0; p < NPAT; p++) {         /* m distinct erasures, data and parity alike */
        memset(b->pat[p], 1, b->n);
        for (int e = 0; e < b->m;) {
            int i = (int)(rnd() % b->n);
            if (b->pat[p][i]) { b->pat[p][i] = 0; e++; }
        }
    }
#ifndef FEC_CBENCH_BEFORE_PATTERN
    if (betanet_fec_pattern_new(b->fec, b->pat[0], &b->fpat) != 0) { fprintf(stderr, "pattern_new\n"); exit(1); }
#endif
}

/* ISA-L decode of one pattern, as its own example does: invert the survivors' rows, then
 * one row per missing shard (data: a row of the inverse; parity: its encode row times it). */
struct idec { uint8_t *B, *D, *C, *tbl; uint8_t *src[256], *dst[256]; int nmiss; };

static int isal_setup(struct bed *b, struct idec *d, const uint8_t *present) {
    int k = b->k, s = 0, r = 0, miss[256];
    for (int i = 0; i < b->n && s < k; i++)
        if (present[i]) {
            memcpy(d->B + s * k, b->A + i * k, k);
            d->src[s++] = b->ish[i];
        }
    if (gf_invert_matrix(d->B, d->D, k) != 0)
        return -1;
    for (int i = 0; i < b->n; i++)
        if (!present[i]) { miss[r] = i; d->dst[r++] = b->ish[i]; }
    d->nmiss = r;
    for (int e = 0; e < r; e++) {
        if (miss[e] < k) {
            memcpy(d->C + e * k, d->D + miss[e] * k, k);
        } else {
            for (int j = 0; j < k; j++) {
                uint8_t acc = 0;
                for (int t = 0; t < k; t++)
                    acc ^= gf_mul(b->A[miss[e] * k + t], d->D[t * k + j]);
                d->C[e * k + j] = acc;
            }
        }
    }
    ec_init_tables(k, r, d->C, d->tbl);
    return 0;
}

static void isal_run(struct bed *b, struct idec *d) {
    ec_encode_data((int)b->len, b->k, d->nmiss, d->tbl, d->src, d->dst);
}

static void check(struct bed *b, uint8_t **sh, uint8_t **ref, const char *who) {
    for (int i = 0; i < b->n; i++)
        if (memcmp(sh[i], ref[i], b->len) != 0) {
            fprintf(stderr, "%s: shard %d rebuilt wrong\n", who, i);
            exit(1);
        }
}

enum op { ENC, ENC_DRAM, REC_CACHED, REC_PATTERN, REC_SETUP };
enum who { BNT, ISAL };

/* Seconds per call over about `secs`: in cache, its least disturbed batch of 64 calls (the
 * machine may be shared; main() keeps the best of `rounds` too); from DRAM, the median of
 * the single timed calls (a mean over ~1 us calls is dominated by the preemptions a shared
 * machine adds, to either library). */
#define MAX_TIMED (1 << 20)
static double timed[MAX_TIMED];
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double measure(struct bed *b, struct idec *d, enum op op, enum who w, double secs) {
    long calls = 0;
    double busy = 0, best = 1e30, t0 = now_s();
    int turn = 0;
    double t = 0;
    uint8_t **sh = w == BNT ? b->sh : b->ish;
    if ((op == REC_CACHED || op == REC_PATTERN) && w == ISAL)
        isal_setup(b, d, b->pat[0]);
    while ((calls & 63) || calls < 64 || now_s() - t0 < secs) {
        const uint8_t *pat = b->pat[op == REC_SETUP ? turn++ % NPAT : 0];
        if (op == ENC_DRAM)
            flush(sh, b->n, b->len);
        t = op == ENC_DRAM || (calls & 63) == 0 ? now_s() : t;
        switch (op) {
        case ENC: case ENC_DRAM:
            if (w == BNT)
                betanet_fec_encode(b->fec, (const uint8_t *const *)sh, sh + b->k, b->len);
            else
                ec_encode_data((int)b->len, b->k, b->m, b->etbl, sh, sh + b->k);
            break;
        case REC_PATTERN:
            if (w == BNT) {
#ifndef FEC_CBENCH_BEFORE_PATTERN
                if (betanet_fec_pattern_reconstruct(b->fpat, sh, b->len) != 0) exit(1);
#else
                if (betanet_fec_reconstruct(b->fec, sh, pat, b->len) != 0) exit(1);
#endif
            } else {
                isal_run(b, d);
            }
            break;
        case REC_CACHED: case REC_SETUP:
            if (w == BNT) {
                if (betanet_fec_reconstruct(b->fec, sh, pat, b->len) != 0) exit(1);
            } else {
                if (op == REC_SETUP && isal_setup(b, d, pat) != 0) exit(1);
                isal_run(b, d);
            }
            break;
        }
        calls++;
        if (op == ENC_DRAM || (calls & 63) == 0) {  /* in cache: clock read every 64 calls */
            double dt = now_s() - t;
            busy += dt;
            if (op != ENC_DRAM && dt < best) best = dt;
            if (op == ENC_DRAM && calls <= MAX_TIMED) timed[calls - 1] = dt;
        }
    }
    if (op == REC_CACHED || op == REC_PATTERN || op == REC_SETUP)
        check(b, sh, w == BNT ? b->ref : b->iref, w == BNT ? "betanet" : "isal");
    if (op == ENC_DRAM) {
        long nt = calls < MAX_TIMED ? calls : MAX_TIMED;
        qsort(timed, (size_t)nt, sizeof timed[0], cmp_double);
        return timed[nt / 2];
    }
    (void)busy;
    return best / 64;
}

int main(int argc, char **argv) {
    static const struct cfg full[] = {{10, 4, 65536}, {16, 8, 244}, {32, 32, 4096}};
    static const struct cfg quick[] = {{10, 4, 1024}, {16, 8, 244}, {4, 4, 64}};
    static const char *names[] = {"encode", "encode-dram", "rec-cached", "rec-pattern", "rec-setup"};
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    int rounds = argc > 2 ? atoi(argv[2]) : 3, isq = argc > 3 && strcmp(argv[3], "full") != 0;
    const struct cfg *cfgs = isq ? quick : full;
    struct cfg only = {0, 0, 0};
    int ncfg = 3;
    if (argc > 4) {
        if (sscanf(argv[4], "%d,%d,%zu", &only.k, &only.m, &only.len) != 3) {
            fprintf(stderr, "only: k,m,len\n");
            return 2;
        }
        cfgs = &only;
        ncfg = 1;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof one, &one);     /* one core for both libraries */
    if (betanet_init() != 0)
        return 1;
    printf("kernel %s\n", betanet_fec_kernel());
    for (int c = 0; c < ncfg; c++) {
        struct bed b;
        struct idec d;
        bed_init(&b, cfgs[c]);
        d.B = xalloc(b.k * b.k); d.D = xalloc(b.k * b.k); d.C = xalloc(b.m * b.k);
        d.tbl = xalloc(32 * (size_t)b.k * b.m);
        for (int op = ENC; op <= REC_SETUP; op++) {
            double best[2] = {1e9, 1e9};
            for (int r = 0; r < rounds; r++)       /* alternate: load bursts hit both */
                for (int w = BNT; w <= ISAL; w++) {
                    double t = measure(&b, &d, op, w, secs);
                    if (t < best[w]) best[w] = t;
                }
            printf("%s %d %d %zu %.1f %.1f\n", names[op], b.k, b.m, b.len,
                   b.k * b.len / best[BNT] / 1e6, b.k * b.len / best[ISAL] / 1e6);
            fflush(stdout);
        }
#ifndef FEC_CBENCH_BEFORE_PATTERN
        betanet_fec_pattern_free(b.fpat);
#endif
        betanet_fec_free(b.fec);
    }
    return 0;
}
