/*
 * module_check.c — CI stand-in for main.swift (no Swift compiler on the CI machine).
 *
 * Imports the CBetanet module through module.modulemap (not the header) and makes the
 * same calls main.swift makes, so clang checks that the map parses and exposes every
 * declaration the Swift program uses:
 *   clang -fmodules -fmodule-map-file=module.modulemap -I <prefix>/include -fsyntax-only module_check.c
 * tests/test_examples_swift.py also links and runs it.
 */
#pragma clang module import CBetanet
#include <stdio.h>
#include <string.h>

int main(void) {
    enum { K = 4, M = 2, LEN = 1000 };
    static uint8_t store[K + M][LEN], original[K + M][LEN];
    uint8_t *shards[K + M], present[K + M];
    betanet_fec_t *fec = NULL;
    int rc;

    if ((rc = betanet_init()) != BETANET_OK || (rc = betanet_fec_new(K, M, &fec)) != BETANET_OK) {
        fprintf(stderr, "%s\n", betanet_strerror(rc));
        return 1;
    }
    for (int i = 0; i < K + M; i++) shards[i] = store[i];
    for (int i = 0; i < K; i++)
        for (int x = 0; x < LEN; x++) store[i][x] = (uint8_t)(i * 37 + x * 11);
    rc = betanet_fec_encode(fec, (const uint8_t *const *)shards, shards + K, LEN);
    memcpy(original, store, sizeof(store));
    memset(present, 1, sizeof(present));
    present[1] = present[K + 1] = 0;
    memset(store[1], 0, LEN);
    memset(store[K + 1], 0, LEN);
    if (rc == BETANET_OK) rc = betanet_fec_reconstruct(fec, shards, present, LEN);
    betanet_fec_free(fec);
    if (rc != BETANET_OK || memcmp(store, original, sizeof(store)) != 0) {
        fprintf(stderr, "round trip failed: %s\n", betanet_strerror(rc));
        return 1;
    }
    printf("ok: module CBetanet, libbetanet %s\n", betanet_version_string());
    return 0;
}
