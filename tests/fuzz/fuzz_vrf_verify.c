/* fuzz_vrf_verify.c — libFuzzer harness for the VRF parsers: betanet_vrf_verify,
 * betanet_vrf_proof_to_hash and betanet_vrf_validate_key on arbitrary bytes.
 * Input layout: pk (32) || proof (80) || alpha (rest); shorter inputs are split so that
 * wrong lengths are exercised too. Seeds are valid (pk, proof, alpha) triples, so
 * mutations reach the point arithmetic (most mutated Gammas carry a torsion component). */
#include <stdint.h>
#include <string.h>
#include "betanet.h"

size_t fuzz_seed_input(uint8_t *out, size_t cap, unsigned idx) {
    betanet_vrf_key_t *key = NULL;
    uint8_t seed[32];
    size_t alpha_len = idx % 7;
    if (idx >= 16 || cap < 32 + 80 + alpha_len || betanet_init() != 0) return 0;
    memset(seed, (int)idx + 1, sizeof seed);
    if (betanet_vrf_key_new(seed, sizeof seed, &key) != 0) return 0;
    betanet_vrf_key_public(key, out, 32);
    memset(out + 112, (int)idx, alpha_len);
    if (betanet_vrf_prove(key, out + 112, alpha_len, out + 32, 80, NULL, 0) != 0) alpha_len = 0;
    betanet_vrf_key_free(key);
    return 112 + alpha_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t out[BETANET_VRF_OUTPUT_BYTES], out2[BETANET_VRF_OUTPUT_BYTES];
    size_t pk_len = size < 32 ? size : 32;
    size_t rest = size - pk_len;
    size_t proof_len = rest < 80 ? rest : 80;
    const uint8_t *proof = data + pk_len, *alpha = proof + proof_len;
    size_t alpha_len = rest - proof_len;
    int rc, rc2;
    if (betanet_init() != 0) return 0;
    betanet_vrf_validate_key(data, pk_len);
    rc2 = betanet_vrf_proof_to_hash(proof, proof_len, out2, sizeof out2);
    rc = betanet_vrf_verify(data, pk_len, proof, proof_len, alpha_len ? alpha : NULL, alpha_len,
                            out, sizeof out);
    /* A verified proof always has a hash, and it is the same. */
    if (rc == 0 && (rc2 != 0 || memcmp(out, out2, sizeof out) != 0)) __builtin_trap();
    /* Any other length of the input must be refused, never read past. */
    if (size >= 1 && betanet_vrf_proof_to_hash(data, size - 1, out2, sizeof out2) == 0 && size - 1 != 80)
        __builtin_trap();
    return 0;
}
