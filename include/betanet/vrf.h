/* betanet/vrf.h — section of the public C API; include <betanet.h>, not this file.
 *
 * ECVRF-EDWARDS25519-SHA512-TAI exactly as RFC 9381 specifies (suite 0x03): a verifiable
 * random function. Only the holder of a secret key can compute the 64-byte output for an
 * input alpha; anyone with the public key can check it against the 80-byte proof.
 * Betanet uses it to select mixnode routes (docs/vrf.md). Keys are derived from a 32-byte
 * seed exactly like Ed25519 keys (RFC 8032 section 5.1.5): the same seed gives the same
 * public key as crypto_sign_seed_keypair. Verification always validates the public key
 * (RFC 9381 validate_key = TRUE: small-order keys are rejected). */
#ifndef BETANET_VRF_H
#define BETANET_VRF_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/vrf.h"
#endif

#define BETANET_VRF_SEED_BYTES      32  /* secret seed (like an Ed25519 seed) */
#define BETANET_VRF_PUBLIC_KEY_BYTES 32  /* encoded edwards25519 point */
#define BETANET_VRF_PROOF_BYTES     80  /* Gamma (32) || c (16) || s (32) */
#define BETANET_VRF_OUTPUT_BYTES    64  /* beta, the VRF output (SHA-512) */

/* Function twins of the sizes (for hosts without the C preprocessor). Thread-safe. */
size_t betanet_vrf_seed_bytes(void);
size_t betanet_vrf_public_key_bytes(void);
size_t betanet_vrf_proof_bytes(void);
size_t betanet_vrf_output_bytes(void);

/* An opaque VRF secret key (the secret scalar, the nonce key and the public key).
 * Immutable after creation: one key may be used by many threads at once. */
typedef struct betanet_vrf_key betanet_vrf_key_t;

/* Create a key from a BETANET_VRF_SEED_BYTES seed, or from a fresh random seed when
 * `seed` is NULL (then seed_len is ignored). The seed is not kept.
 * Errors: BETANET_E_INVALID (out NULL, seed_len != 32), BETANET_E_NOMEM,
 *         BETANET_E_CRYPTO. Thread-safe. */
int betanet_vrf_key_new(const uint8_t *seed, size_t seed_len, betanet_vrf_key_t **out);

/* Wipe and free a key; NULL is ignored. */
void betanet_vrf_key_free(betanet_vrf_key_t *key);

/* Copy the key's BETANET_VRF_PUBLIC_KEY_BYTES public key into pk.
 * Errors: BETANET_E_INVALID (NULL), BETANET_E_BUFFER_TOO_SMALL (pk_len < 32). */
int betanet_vrf_key_public(const betanet_vrf_key_t *key, uint8_t *pk, size_t pk_len);

/* RFC 9381 ECVRF_prove: write the BETANET_VRF_PROOF_BYTES proof for alpha into proof and,
 * when output is not NULL, the BETANET_VRF_OUTPUT_BYTES VRF output into output (the same
 * bytes betanet_vrf_proof_to_hash gives). Deterministic. alpha may be NULL when
 * alpha_len is 0. Constant time in the secret key.
 * Errors: BETANET_E_INVALID (NULL arguments), BETANET_E_BUFFER_TOO_SMALL (proof_len < 80,
 *         output_len < 64 with output not NULL), BETANET_E_CRYPTO (the input hashes to the
 *         identity point: probability about 2^-250, or the backend cannot initialise).
 *         Thread-safe. */
int betanet_vrf_prove(const betanet_vrf_key_t *key, const uint8_t *alpha, size_t alpha_len,
                      uint8_t *proof, size_t proof_len, uint8_t *output, size_t output_len);

/* RFC 9381 ECVRF_verify with validate_key = TRUE: check proof for alpha under pk and write
 * the BETANET_VRF_OUTPUT_BYTES VRF output into output (only on success).
 * Errors: BETANET_E_MALFORMED (pk_len or proof_len wrong, pk or Gamma not a canonical
 *         point encoding, pk of small order, s >= the group order),
 *         BETANET_E_AUTH (well-formed but the proof does not verify),
 *         BETANET_E_BUFFER_TOO_SMALL (output_len < 64), BETANET_E_INVALID (NULL),
 *         BETANET_E_CRYPTO. Thread-safe; variable time (all inputs are public). */
BETANET_NODISCARD int betanet_vrf_verify(const uint8_t *pk, size_t pk_len, const uint8_t *proof, size_t proof_len,
                       const uint8_t *alpha, size_t alpha_len, uint8_t *output, size_t output_len);

/* RFC 9381 ECVRF_proof_to_hash: the VRF output of a proof WITHOUT verifying it (use
 * betanet_vrf_verify for untrusted proofs). Errors: BETANET_E_MALFORMED (proof_len != 80,
 * Gamma not a point, s >= the group order), BETANET_E_BUFFER_TOO_SMALL (output_len < 64),
 * BETANET_E_INVALID (NULL), BETANET_E_CRYPTO. Thread-safe. */
BETANET_NODISCARD int betanet_vrf_proof_to_hash(const uint8_t *proof, size_t proof_len,
                              uint8_t *output, size_t output_len);

/* RFC 9381 ECVRF_validate_key: 0 if pk is a canonical point encoding whose cofactor
 * multiple is not the identity. Errors: BETANET_E_MALFORMED, BETANET_E_INVALID (NULL),
 * BETANET_E_CRYPTO. Thread-safe. */
BETANET_NODISCARD int betanet_vrf_validate_key(const uint8_t *pk, size_t pk_len);

#endif /* BETANET_VRF_H */
