/*
 * driver.c — a small stand-alone fuzz driver for libFuzzer-style harnesses.
 *
 * gcc has no libFuzzer, so `make test` links every tests/fuzz/fuzz_*.c harness
 * (which implements LLVMFuzzerTestOneInput) with this main() and the ASan+UBSan build of
 * libbetanet. It feeds a bounded, seeded stream of inputs: random bytes of random length,
 * and mutations (bit flips, byte overwrites, truncation, insertion, duplication, splicing)
 * of seed inputs. Seeds come from the harness's optional fuzz_seed_input() (valid inputs
 * built through the API, so mutations reach deep code) and from files given on the command
 * line. With clang the same harnesses build with -fsanitize=fuzzer instead.
 *
 * usage: driver [-n iterations] [-s seed] [-m max_len] [-t seconds] [seed files...]
 * exit 0 when every input ran; a sanitizer report aborts the process otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Optional: write valid seed input number `idx` into out (capacity cap); return its length,
 * or 0 when there are no more seeds. */
__attribute__((weak)) size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx);

#define MAX_SEEDS 64

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64: reproducible from the seed */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

typedef struct { uint8_t *data; size_t len; } blob;

static size_t mutate(uint8_t *buf, size_t len, size_t cap, const blob *seeds, size_t nseeds) {
    unsigned rounds = 1 + (unsigned)below(4);
    for (unsigned r = 0; r < rounds; r++) {
        switch (below(7)) {
        case 0: if (len) buf[below(len)] ^= (uint8_t)(1u << below(8)); break;
        case 1: if (len) buf[below(len)] = (uint8_t)rnd(); break;
        case 2: if (len) len = below(len + 1); break;                        /* truncate */
        case 3: if (len < cap) {                                               /* insert */
                    size_t at = below(len + 1);
                    memmove(buf + at + 1, buf + at, len - at); buf[at] = (uint8_t)rnd(); len++;
                } break;
        case 4: if (len) {                                                     /* overwrite run */
                    size_t at = below(len), n = 1 + below(8);
                    for (size_t i = 0; i < n && at + i < len; i++) buf[at + i] = (uint8_t)rnd();
                } break;
        case 5: if (len && len < cap) {                                        /* duplicate chunk */
                    size_t at = below(len), n = 1 + below(len - at);
                    if (n > cap - len) n = cap - len;
                    memmove(buf + at + n, buf + at, len - at); len += n;
                } break;
        case 6: if (nseeds) {                                                  /* splice */
                    const blob *o = &seeds[below(nseeds)];
                    size_t at = below(len + 1), from = below(o->len + 1), n = o->len - from;
                    if (at + n > cap) n = cap - at;
                    memcpy(buf + at, o->data + from, n);
                    if (at + n > len) len = at + n;
                } break;
        }
    }
    return len;
}

static int load_file(const char *path, blob *b, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    b->data = malloc(cap);
    b->len = b->data ? fread(b->data, 1, cap, f) : 0;
    fclose(f);
    return b->data ? 0 : -1;
}

int main(int argc, char **argv) {
    unsigned long iterations = 10000, seconds = 0;
    uint64_t seed = 1;
    size_t max_len = 8192;
    blob seeds[MAX_SEEDS];
    size_t nseeds = 0, nextra = 0;
    /* files past the mutation seeds (a large corpus) still run once each: they hold the
     * regression inputs of past findings */
    char **extra = calloc((size_t)argc, sizeof *extra);
    int i;
    if (!extra) return 2;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) iterations = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) max_len = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) seconds = strtoul(argv[++i], NULL, 10);
        else if (nseeds < MAX_SEEDS - 16) {   /* room left for the built-in seeds */
            if (load_file(argv[i], &seeds[nseeds], max_len) == 0) nseeds++;
        } else extra[nextra++] = argv[i];
    }
    rng_state = seed;
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    if (fuzz_seed_input) {
        for (unsigned k = 0; nseeds < MAX_SEEDS; k++) {
            uint8_t *d = malloc(max_len);
            size_t n = d ? fuzz_seed_input(d, max_len, k) : 0;
            if (!n) { free(d); break; }
            seeds[nseeds].data = d; seeds[nseeds].len = n; nseeds++;
        }
    }
    /* Seeds as they are first: they must run cleanly too. */
    for (size_t s = 0; s < nseeds; s++) LLVMFuzzerTestOneInput(seeds[s].data, seeds[s].len);
    for (size_t e = 0; e < nextra; e++) {
        blob b;
        if (load_file(extra[e], &b, max_len) == 0) {
            LLVMFuzzerTestOneInput(b.data, b.len);
            free(b.data);
        }
    }
    free(extra);

    uint8_t *buf = malloc(max_len ? max_len : 1);
    if (!buf) return 2;
    time_t start = time(NULL);
    unsigned long done = 0;
    for (; done < iterations; done++) {
        size_t len;
        if (nseeds && below(4) != 0) {
            const blob *s = &seeds[below(nseeds)];
            memcpy(buf, s->data, s->len);
            len = mutate(buf, s->len, max_len, seeds, nseeds);
        } else {
            len = below(max_len + 1);
            if (below(2)) len = below(len / 16 + 2);  /* short inputs hit headers more */
            for (size_t k = 0; k < len; k++) buf[k] = (uint8_t)rnd();
        }
        /* Exact-size copy so ASan sees a read one past the input. */
        uint8_t *in = malloc(len ? len : 1);
        if (!in) return 2;
        memcpy(in, buf, len);
        LLVMFuzzerTestOneInput(in, len);
        free(in);
        if (seconds && (done & 255) == 0 && (unsigned long)(time(NULL) - start) >= seconds) break;
    }
    printf("fuzz: %lu inputs, %zu seeds, seed=%llu\n", done, nseeds, (unsigned long long)seed);
    free(buf);
    for (size_t s = 0; s < nseeds; s++) free(seeds[s].data);
    return 0;
}
