/* init_first_use.c — the init policy of betanet.h (sqlite's model): each entry point below,
 * called as the very first libbetanet call of a process (argv[1] picks it), initialises
 * the library itself and succeeds; none answers BETANET_E_STATE. Run by test_library.py. */
#include <betanet.h>

#include <stdio.h>
#include <string.h>

static int hex(const char *s, uint8_t *out, size_t n) {
    size_t i;
    unsigned v;
    for (i = 0; i < n; i++) {
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

int main(int argc, char **argv) {
    /* RFC 9381 appendix B.3, example 16 (empty alpha) */
    static const char *PK = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    static const char *PI = "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f"
                            "26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab12"
                            "68a1b0db10836d9826a528ca76567805";
    uint8_t k[32] = {1}, pk[32], proof[80], beta[64], id[32] = {2}, sk[32];
    static uint8_t packet[4096];
    const char *what = argc > 1 ? argv[1] : "";
    int rc = -1000;
    if (!strcmp(what, "htx_session_new")) {
        betanet_htx_session_t *s = NULL;
        rc = betanet_htx_session_new(BETANET_HTX_INITIATOR, k, k, k, NULL, 0, &s);
        betanet_htx_session_free(s);
    } else if (!strcmp(what, "sphinx_node_new")) {
        betanet_sphinx_node_t *n = NULL;
        rc = betanet_sphinx_node_new(5, 2048, 16, &n);
        betanet_sphinx_node_free(n);
    } else if (!strcmp(what, "sphinx_keypair")) {
        rc = betanet_sphinx_keypair(pk, sk, NULL);
    } else if (!strcmp(what, "sphinx_create")) {
        betanet_sphinx_hop_t hop;
        memset(&hop, 0, sizeof hop);
        hop.public_key[0] = 9;              /* the X25519 base point: a valid public key */
        rc = betanet_sphinx_create(1, 64, 0, &hop, 1, id, NULL, 0, NULL, packet, sizeof packet);
    } else if (!strcmp(what, "vrf_key_new")) {
        betanet_vrf_key_t *key = NULL;
        rc = betanet_vrf_key_new(NULL, 0, &key);
        betanet_vrf_key_free(key);
    } else if (!strcmp(what, "vrf_verify")) {
        hex(PK, pk, 32);
        hex(PI, proof, 80);
        rc = betanet_vrf_verify(pk, 32, proof, 80, NULL, 0, beta, 64);
    } else if (!strcmp(what, "vrf_proof_to_hash")) {
        hex(PI, proof, 80);
        rc = betanet_vrf_proof_to_hash(proof, 80, beta, 64);
    } else if (!strcmp(what, "vrf_validate_key")) {
        hex(PK, pk, 32);
        rc = betanet_vrf_validate_key(pk, 32);
    } else if (!strcmp(what, "fec_new")) {
        betanet_fec_t *f = NULL;
        rc = betanet_fec_new(4, 2, &f);
        betanet_fec_free(f);
    }
    printf("%s %d\n", what, rc);
    return rc != BETANET_OK;
}
