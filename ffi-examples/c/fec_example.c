/*
 * fec_example.c — Reed-Solomon FEC through libbetanet's C API.
 *
 * Encodes k = 4 data shards into m = 2 parity shards, drops m shards and rebuilds them,
 * then silently corrupts one shard and lets betanet_fec_correct find and repair it.
 * Exit status 0 when every shard came back byte for byte.
 */
#include <stdio.h>
#include <string.h>
#include <betanet.h>

#define K 4
#define M 2
#define N (K + M)
#define LEN 1000

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, betanet_strerror(rc));
    return 1;
}

int main(void) {
    static uint8_t store[N][LEN], original[N][LEN];
    uint8_t *shards[N];
    uint8_t present[N], corrupted[M];
    size_t n_corrupted = 0;
    betanet_fec_t *fec = NULL;
    int rc;

    if ((rc = betanet_init()) != BETANET_OK) return fail("betanet_init", rc);
    if ((rc = betanet_fec_new(K, M, &fec)) != BETANET_OK) return fail("betanet_fec_new", rc);

    for (int i = 0; i < N; i++) shards[i] = store[i];
    for (int i = 0; i < K; i++)
        for (int x = 0; x < LEN; x++) store[i][x] = (uint8_t)(i * 37 + x * 11);
    /* parity shards are shards[K .. N-1] */
    if ((rc = betanet_fec_encode(fec, (const uint8_t *const *)shards, shards + K, LEN)) != BETANET_OK)
        return fail("betanet_fec_encode", rc);
    memcpy(original, store, sizeof(store));

    /* lose m shards: one data shard and one parity shard */
    memset(present, 1, sizeof(present));
    int lost[M] = {1, K + 1};
    for (int i = 0; i < M; i++) {
        present[lost[i]] = 0;
        memset(store[lost[i]], 0, LEN);
    }
    if ((rc = betanet_fec_reconstruct(fec, shards, present, LEN)) != BETANET_OK)
        return fail("betanet_fec_reconstruct", rc);
    if (memcmp(store, original, sizeof(store)) != 0) {
        fprintf(stderr, "reconstruct: shards differ\n");
        return 1;
    }
    printf("reconstruct: rebuilt shards %d and %d from the other %d\n", lost[0], lost[1], K);

    /* silent corruption of shard 2 (up to floor(m/2) = 1 can be located) */
    for (int x = 0; x < LEN; x += 3) store[2][x] ^= 0xA5;
    if ((rc = betanet_fec_correct(fec, shards, NULL, LEN, corrupted, &n_corrupted)) != BETANET_OK)
        return fail("betanet_fec_correct", rc);
    if (n_corrupted != 1 || corrupted[0] != 2 || memcmp(store, original, sizeof(store)) != 0) {
        fprintf(stderr, "correct: wrong repair\n");
        return 1;
    }
    printf("correct: found and repaired shard %d (kernel %s)\n", corrupted[0], betanet_fec_kernel());

    betanet_fec_free(fec);
    printf("ok: libbetanet %s\n", betanet_version_string());
    return 0;
}
