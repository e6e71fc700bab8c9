/* betanet/secagg.h — section of the public C API; include <betanet.h>, not this file.
 *
 * The participant's hot path of secure aggregation (SecAgg+, docs/fl.md): everything a
 * phone needs to turn a model update into the masked vector that leaves it, without
 * Python. The protocol (key exchange, Shamir shares, rounds) lives above this layer.
 *
 * Vectors are arrays of uint32_t added modulo 2^32. A mask is the output of a PRG:
 *
 *   K      = BLAKE2b-256(key = seed (32 bytes),
 *                        msg = "betanet/secagg/v1/prg" || purpose (1 byte) || round_id (u64 LE))
 *   word i = little-endian uint32 of bytes 4i..4i+3 of the ChaCha20 keystream
 *            (RFC 8439: 96-bit nonce, all zero; 32-bit block counter from 0) under K
 *
 * so one seed gives independent streams per purpose and round. The pairwise seed of two
 * participants is
 *
 *   s_uv = BLAKE2b-256(key = X25519(sk_u, pk_v), msg = "betanet/secagg/v1/pair" || min(pk_u, pk_v) || max(pk_u, pk_v))
 *
 * (min/max by bytewise comparison), identical from both ends. Test vectors: docs/fl.md
 * and tests/vectors/secagg.json.
 *
 * Quantisation maps a real x to [0, levels]: y = (clip(x, -c, c) + c) * levels / (2c),
 * q = floor(y) + (r < frac(y) * 2^32) with r the PRG word of the same index (purpose
 * BETANET_SECAGG_PURPOSE_ROUNDING), so E[q] = y (stochastic rounding, unbiased). A sum of
 * `count` such values dequantises as sum * 2c / levels - count * c, exact while
 * count * levels < 2^32 (checked).
 *
 * All functions are thread-safe and allocate nothing; those that need libsodium call
 * betanet_init() on first use. Secrets on the stack (derived keys, keystream blocks) are
 * wiped before returning. BETANET_NODISCARD marks the calls whose failure would otherwise
 * let an unmasked vector leave the device.
 */
#ifndef BETANET_SECAGG_H
#define BETANET_SECAGG_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/secagg.h"
#endif

#define BETANET_SECAGG_SEED_BYTES       32  /* a PRG seed (self-mask seed, pairwise seed) */
#define BETANET_SECAGG_KEY_BYTES        32  /* a derived ChaCha20 key */
#define BETANET_SECAGG_SECRETKEY_BYTES  32  /* X25519 secret key */
#define BETANET_SECAGG_PUBLICKEY_BYTES  32  /* X25519 public key */
/* Longest stream one (seed, purpose, round) gives: 2^32 ChaCha20 blocks of 16 words. */
#define BETANET_SECAGG_MAX_WORDS        (UINT64_C(1) << 36)

size_t betanet_secagg_seed_bytes(void);

/* Purposes (domain separation of one seed's streams). */
#define BETANET_SECAGG_PURPOSE_PAIRWISE 1u  /* mask shared by two participants */
#define BETANET_SECAGG_PURPOSE_SELF     2u  /* a participant's own mask */
#define BETANET_SECAGG_PURPOSE_ROUNDING 3u  /* stochastic rounding in quantisation */
#define BETANET_SECAGG_PURPOSE_SELECT   4u  /* coordinate selection (sparse updates) */

/* The PRG key K for (seed, purpose, round_id) as above, into key[BETANET_SECAGG_KEY_BYTES].
 * purpose is 1..255. Errors: BETANET_E_INVALID (NULL, seed_len != 32, key_len < 32,
 * purpose out of range), BETANET_E_CRYPTO (libsodium failed to initialise). */
int betanet_secagg_derive_key(uint8_t *key, size_t key_len, const uint8_t *seed, size_t seed_len,
                              unsigned int purpose, uint64_t round_id);

/* The pairwise seed s_uv (above) of our secret key sk and the peer's public key peer_pk,
 * into seed[BETANET_SECAGG_SEED_BYTES]. Our public key is recomputed from sk, so the
 * server can rebuild a dropped participant's seeds from its reconstructed secret key.
 * Errors: BETANET_E_INVALID (NULL, a length != 32), BETANET_E_MALFORMED (peer_pk gives
 * the all-zero shared secret: a low-order point), BETANET_E_CRYPTO. */
BETANET_NODISCARD
int betanet_secagg_pair_seed(uint8_t *seed, size_t seed_len, const uint8_t *sk, size_t sk_len,
                             const uint8_t *peer_pk, size_t peer_pk_len);

/* Words offset .. offset+n-1 of the PRG stream of (seed, purpose, round_id) into out[n].
 * Errors: BETANET_E_INVALID (NULL with n > 0, seed_len != 32, purpose),
 *         BETANET_E_LIMIT (offset + n > BETANET_SECAGG_MAX_WORDS), BETANET_E_CRYPTO. */
int betanet_secagg_mask_expand(uint32_t *out, size_t n, const uint8_t *seed, size_t seed_len,
                               unsigned int purpose, uint64_t round_id, uint64_t offset);

/* vec[i] += sign * word(offset + i) mod 2^32 for i < n, with the PRG stream of
 * (seed, purpose, round_id): sign = +1 adds the mask, -1 removes it. offset lets a host
 * mask a long vector in pieces (the result equals masking it whole).
 * Errors: as betanet_secagg_mask_expand, and BETANET_E_INVALID for sign not +1/-1;
 * on error vec is unchanged. */
BETANET_NODISCARD
int betanet_secagg_mask_add(uint32_t *vec, size_t n, const uint8_t *seed, size_t seed_len,
                            unsigned int purpose, uint64_t round_id, uint64_t offset, int sign);

/* Several masks at once: vec[i] += sum over j < count of signs[j] * word_j(offset + i), where
 * word_j is the stream of (seeds + 32 j, purpose, round_id). The same result as count calls
 * of betanet_secagg_mask_add, but the vector is walked in L1-sized blocks, each block
 * receiving every mask before the next (one pass over memory instead of count): the
 * server's unmasking. seeds holds count * BETANET_SECAGG_SEED_BYTES bytes (seeds_len).
 * Errors: BETANET_E_INVALID (NULL with n > 0 or count > 0, seeds_len != 32 * count,
 *         a sign not +1/-1, purpose), BETANET_E_LIMIT (vec unchanged after these),
 *         BETANET_E_CRYPTO (libsodium failed: vec may be partly masked). */
BETANET_NODISCARD
int betanet_secagg_mask_add_many(uint32_t *vec, size_t n, const uint8_t *seeds, size_t seeds_len,
                                 const int *signs, size_t count, unsigned int purpose,
                                 uint64_t round_id, uint64_t offset);

/* acc[i] += sign * x[i] mod 2^32 for i < n (summing masked vectors); acc and x may be
 * the same array. Errors: BETANET_E_INVALID (NULL with n > 0, sign not +1/-1). */
int betanet_secagg_vec_add(uint32_t *acc, const uint32_t *x, size_t n, int sign);

/* Quantise in[n] into out[n] as above: clip c > 0 with 2c and levels / 2c finite,
 * 1 <= levels, stochastic rounding from the ROUNDING stream of (seed, round_id) at word
 * offset + i.
 * Errors: BETANET_E_INVALID (NULL, seed_len != 32, bad clip or levels, a NaN in `in`:
 * out is then all zero), BETANET_E_LIMIT (offset + n too large), BETANET_E_CRYPTO. */
BETANET_NODISCARD
int betanet_secagg_quantize_f32(uint32_t *out, const float *in, size_t n, double clip,
                                uint32_t levels, const uint8_t *seed, size_t seed_len,
                                uint64_t round_id, uint64_t offset);
BETANET_NODISCARD
int betanet_secagg_quantize_f64(uint32_t *out, const double *in, size_t n, double clip,
                                uint32_t levels, const uint8_t *seed, size_t seed_len,
                                uint64_t round_id, uint64_t offset);

/* Dequantise a sum of `count` quantised vectors: out[i] = sum[i] * 2c / levels - count * c.
 * Errors: BETANET_E_INVALID (NULL, bad clip or levels as for quantising, count == 0),
 *         BETANET_E_LIMIT (count * levels >= 2^32: the sum could have wrapped). */
int betanet_secagg_dequantize_f32(float *out, const uint32_t *sum, size_t n, double clip,
                                  uint32_t levels, uint32_t count);
int betanet_secagg_dequantize_f64(double *out, const uint32_t *sum, size_t n, double clip,
                                  uint32_t levels, uint32_t count);

#endif /* BETANET_SECAGG_H */
