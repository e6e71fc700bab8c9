/* fec_speed.c — FEC encode and reconstruct throughput of the best kernel against the
 * scalar path in the same process (make test-cross runs it under qemu-user, where only
 * the ratio means anything: qemu translates each instruction, so absolute rates say
 * nothing about real hardware).  usage: fec_speed [ROUNDS] */
#include <betanet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* MB/s of data encoded (or, reconstruct: of shards rebuilt from k survivors) */
static double rate(betanet_fec_t *fec, unsigned k, unsigned m, size_t len, uint8_t **sh, int rounds,
                   int reconstruct) {
    uint8_t present[64];
    double t0 = now();
    for (int r = 0; r < rounds; r++) {
        if (!reconstruct) {
            if (betanet_fec_encode(fec, (const uint8_t *const *)sh, sh + k, len) != 0) exit(1);
            continue;
        }
        for (unsigned i = 0; i < k + m; i++) present[i] = i >= m;     /* first m lost */
        if (betanet_fec_reconstruct(fec, sh, present, len) != 0) exit(1);
    }
    double dt = now() - t0;
    return (double)rounds * (reconstruct ? m : k) * len / dt / 1e6;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    static const unsigned geo[][3] = {{10, 4, 65536}, {16, 8, 244}, {32, 32, 4096}};
    for (size_t g = 0; g < 3; g++) {
        unsigned k = geo[g][0], m = geo[g][1];
        size_t len = geo[g][2];
        int n = len < 1024 ? rounds * 100 : rounds;
        uint8_t *sh[64];
        for (unsigned i = 0; i < k + m; i++) {
            sh[i] = malloc(len);
            for (size_t x = 0; x < len; x++) sh[i][x] = (uint8_t)(x * 31 + i * 7);
        }
        betanet_fec_t *fec = NULL;
        if (betanet_fec_new(k, m, &fec) != 0) return 1;
        for (int op = 0; op < 2; op++) {
            betanet_cpu_restrict(0xFFFFFFFFu);
            const char *best = betanet_fec_kernel();
            double b = rate(fec, k, m, len, sh, n, op);
            betanet_cpu_restrict(0);
            double s = rate(fec, k, m, len, sh, n, op);
            betanet_cpu_restrict(0xFFFFFFFFu);
            printf("fec_speed %-11s k=%-2u m=%-2u %6zu B: %s %.2fx scalar\n", op ? "reconstruct" : "encode",
                   k, m, len, best, b / s);
        }
        betanet_fec_free(fec);
        for (unsigned i = 0; i < k + m; i++) free(sh[i]);
    }
    return 0;
}
