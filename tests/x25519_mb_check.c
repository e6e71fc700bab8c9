/* x25519_mb_check.c — differential test of src/core/x25519_mb.h against libsodium's
 * crypto_scalarmult, built and run by tests/test_x25519_mb.py on CPUs with AVX-512 IFMA.
 *
 *   x25519_mb_check random <batches> <seed>   batches of 8 lanes: random scalars, points
 *       random or (1 in 4) from the edge list below, bit 255 set at random; every lane
 *       compared (status and bytes) with crypto_scalarmult. Prints "ok <lanes> <zero>".
 *   x25519_mb_check iterate <n> <lane>       RFC 7748 5.2 iteration (k = u = 9) run in
 *       lane <lane> (other lanes random); prints k after n iterations.
 *   x25519_mb_check lines                    stdin: lines "scalarhex pointhex" (64+64 hex);
 *       processed 8 at a time; prints "status outhex sodium_rc sodium_outhex" per line.
 * Exit status 1 on any mismatch with libsodium. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "x25519_mb.h"

/* u values that need care: 0, 1, the two order-8 points, p-1, p, p+1, ..., 2^255-1. */
static void edge(uint8_t *u, unsigned which) {
    static const char *hex[] = {
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"};
    memset(u, 0, 32);
    which %= 24;
    if (which == 0) return;                         /* 0 */
    if (which == 1) { u[0] = 1; return; }           /* 1 */
    if (which <= 3) { sodium_hex2bin(u, 32, hex[which - 2], 64, NULL, NULL, NULL); return; }
    /* p - 1 + k for k = 0..19 (p + 18 = 2^255 - 1; k = 19 gives 2^255, masked to 0) */
    memset(u, 0xff, 32);
    u[31] = 0x7f;
    u[0] = (uint8_t)(0xed - 1);
    unsigned k = which - 4, carry = k;
    for (int i = 0; i < 32 && carry; i++) {
        unsigned v = u[i] + carry;
        u[i] = (uint8_t)v;
        carry = v >> 8;
    }
}

static int check_lane(const uint8_t *sc, const uint8_t *pt, const uint8_t *out, int st, unsigned long *zero) {
    uint8_t ref[32];
    static const uint8_t z[32];
    memset(ref, 0, 32);
    int rc = crypto_scalarmult(ref, sc, pt);
    if (rc != st || (rc == 0 && memcmp(ref, out, 32) != 0) || (st != 0 && memcmp(out, z, 32) != 0)) {
        char a[65], b[65], c[65], d[65];
        fprintf(stderr, "mismatch: scalar %s point %s mb %d %s sodium %d %s\n",
                sodium_bin2hex(a, 65, sc, 32), sodium_bin2hex(b, 65, pt, 32), st,
                sodium_bin2hex(c, 65, out, 32), rc, sodium_bin2hex(d, 65, ref, 32));
        return 1;
    }
    if (rc != 0) (*zero)++;
    return 0;
}

int main(int argc, char **argv) {
    uint8_t sc[256], pt[256], out[256];
    int st[8], bad = 0;
    unsigned long zero = 0;
    if (sodium_init() < 0 || !bnt_x25519_mb_cpu()) return 2;
    if (argc == 4 && strcmp(argv[1], "random") == 0) {
        unsigned long n = strtoul(argv[2], NULL, 10), b;
        uint8_t seed[randombytes_SEEDBYTES] = {0}, sel[16];
        unsigned long long ctr = 0;
        seed[0] = (uint8_t)strtoul(argv[3], NULL, 10);
        for (b = 0; b < n; b++) {
            memcpy(seed + 8, &ctr, 8);
            ctr++;
            randombytes_buf_deterministic(sc, 256, seed);
            seed[16] = 1;
            randombytes_buf_deterministic(pt, 256, seed);
            seed[16] = 2;
            randombytes_buf_deterministic(sel, 16, seed);
            seed[16] = 0;
            for (int j = 0; j < 8; j++)
                if ((sel[j] & 3) == 0) {
                    edge(pt + 32 * j, sel[8 + j]);
                    pt[32 * j + 31] |= (uint8_t)(sel[j] & 0x80);        /* bit 255 either way */
                }
            bnt_x25519_mb8(out, sc, pt, st);
            for (int j = 0; j < 8; j++)
                bad |= check_lane(sc + 32 * j, pt + 32 * j, out + 32 * j, st[j], &zero);
            if (bad) return 1;
        }
        printf("ok %lu %lu\n", n * 8, zero);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "iterate") == 0) {
        unsigned long n = strtoul(argv[2], NULL, 10), i;
        int lane = atoi(argv[3]) & 7;
        uint8_t k[32], u[32];
        char h[65];
        memset(k, 0, 32);
        memset(u, 0, 32);
        k[0] = u[0] = 9;
        randombytes_buf(sc, 256);
        randombytes_buf(pt, 256);
        for (i = 0; i < n; i++) {
            memcpy(sc + 32 * lane, k, 32);
            memcpy(pt + 32 * lane, u, 32);
            bnt_x25519_mb8(out, sc, pt, st);
            memcpy(u, k, 32);
            memcpy(k, out + 32 * lane, 32);
        }
        printf("%s\n", sodium_bin2hex(h, 65, k, 32));
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "lines") == 0) {
        char line[512];
        int n = 0, more = 1;
        while (more) {
            more = fgets(line, sizeof line, stdin) != NULL;
            if (more && (sodium_hex2bin(sc + 32 * n, 32, line, 64, NULL, NULL, NULL) != 0
                         || sodium_hex2bin(pt + 32 * n, 32, line + 65, 64, NULL, NULL, NULL) != 0))
                return 3;
            if (more) n++;
            if (n == 8 || (!more && n > 0)) {
                for (int j = n; j < 8; j++) {       /* padding lanes: random */
                    randombytes_buf(sc + 32 * j, 32);
                    randombytes_buf(pt + 32 * j, 32);
                }
                bnt_x25519_mb8(out, sc, pt, st);
                for (int j = 0; j < n; j++) {
                    uint8_t ref[32] = {0};
                    char a[65], b[65];
                    int rc = crypto_scalarmult(ref, sc + 32 * j, pt + 32 * j);
                    bad |= check_lane(sc + 32 * j, pt + 32 * j, out + 32 * j, st[j], &zero);
                    printf("%d %s %d %s\n", st[j], sodium_bin2hex(a, 65, out + 32 * j, 32), rc,
                           sodium_bin2hex(b, 65, ref, 32));
                }
                n = 0;
            }
        }
        return bad;
    }
    fprintf(stderr, "usage: x25519_mb_check random N SEED | iterate N LANE | lines\n");
    return 2;
}
