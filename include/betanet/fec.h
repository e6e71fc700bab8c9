/* betanet/fec.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Systematic Reed-Solomon forward error correction over GF(2^8) (docs/fec.md).
 *
 * The code: k data shards and m parity shards of equal length; every byte column
 * (byte x of shard 0..n-1, n = k + m <= 255) is a codeword of the narrow-sense RS code
 * with primitive polynomial 0x11d, generator alpha = 2 and first consecutive root
 * alpha^0 (fcr = 0): shard j is the coefficient of x^(n-1-j), and the parity bytes are
 * exactly the ECC bytes of reedsolo.RSCodec(nsym=m, nsize=255, fcr=0, prim=0x11d,
 * generator=2, c_exp=8) for the column's data bytes.
 *
 * Shards are given as an array of pointers plus one length `len` (any length, 0 allowed;
 * buffers of different shards must not overlap). Index 0..k-1 are data, k..n-1 parity.
 * On any error nothing is written. A handle may be used by one thread at a time
 * (it owns a decoding-matrix cache and scratch space); distinct handles are independent.
 */
#ifndef BETANET_FEC_H
#define BETANET_FEC_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/fec.h"
#endif

#define BETANET_FEC_MAX_SHARDS 255   /* k + m <= this */

typedef struct betanet_fec betanet_fec_t;
typedef struct betanet_fec_pattern betanet_fec_pattern_t;

/* Create a codec for k data and m parity shards: 1 <= k, 1 <= m, k + m <= 255 (checked
 * without overflow: any k or m above 254 is out of range).
 * Precomputes the encoding matrix. *out receives the handle (NULL on error).
 * Errors: BETANET_E_INVALID (range, out == NULL), BETANET_E_NOMEM, BETANET_E_CRYPTO
 * (the crypto backend cannot initialise). Thread-safe. */
int betanet_fec_new(unsigned int k, unsigned int m, betanet_fec_t **out);

/* Free a codec (NULL is ignored). */
void betanet_fec_free(betanet_fec_t *fec);

/* Encode: data[0..k-1] (each `len` bytes, read) -> parity[0..m-1] (each `len` bytes,
 * written). Errors: BETANET_E_INVALID (NULL handle or pointer). */
int betanet_fec_encode(betanet_fec_t *fec, const uint8_t *const *data,
                       uint8_t *const *parity, size_t len);

/* Reconstruct erasures: shards[0..n-1] are n buffers of `len` bytes; present[i] != 0
 * says shard i holds valid data (it is only read), present[i] == 0 says it is missing
 * (its buffer is written). Rebuilds every missing data AND parity shard from the first
 * k present ones. Decoding matrices are cached per erasure pattern (16 patterns, LRU).
 * Errors: BETANET_E_INVALID (NULL handle/pointer), BETANET_E_UNCORRECTABLE (fewer than
 * k shards present), BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_fec_reconstruct(betanet_fec_t *fec, uint8_t *const *shards,
                            const uint8_t *present, size_t len);

/* An erasure pattern resolved once, for a host that rebuilds the same pattern many times
 * (a link that keeps losing the same shards; small shards, where reconstruct's per-call
 * pattern lookup is a visible part of the cost): the decoding matrix, the kernel tables of
 * every kernel this CPU may run, and which shard pointers are read and written.
 * present as for betanet_fec_reconstruct. The pattern does not refer to fec once made (it
 * may outlive it) and is only read by betanet_fec_pattern_reconstruct, so several threads
 * may use one pattern at once. *out receives the handle (NULL on error).
 * Errors: BETANET_E_INVALID (NULL fec/present/out), BETANET_E_UNCORRECTABLE (fewer than
 * k shards present), BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_fec_pattern_new(betanet_fec_t *fec, const uint8_t *present,
                                              betanet_fec_pattern_t **out);

/* Free a pattern (NULL is ignored). */
void betanet_fec_pattern_free(betanet_fec_pattern_t *pattern);

/* Rebuild the pattern's missing shards: the same result as betanet_fec_reconstruct with the
 * present flags the pattern was made from. shards[0..n-1] as there; only the pointers the
 * pattern uses are read (the first k present shards, and the missing ones) and those must
 * not be NULL. Errors: BETANET_E_INVALID (NULL pattern, shards, or a used pointer). */
BETANET_NODISCARD int betanet_fec_pattern_reconstruct(const betanet_fec_pattern_t *pattern,
                                                      uint8_t *const *shards, size_t len);

/* Correct silent corruption plus erasures: shards and present as for reconstruct
 * (present may be NULL: all present). Finds the shards whose content is wrong — the
 * same for every byte column — and repairs them and the missing ones in place.
 * Succeeds whenever 2e + v <= m (e corrupted shards, v missing ones). The result is
 * always a consistent codeword. Past that bound the call returns
 * BETANET_E_UNCORRECTABLE, except (as for any RS decoder) when the corruption happens to
 * look like a correctable pattern of another codeword — in every byte column at the same
 * shards, which random corruption of more than a few columns practically never does —
 * and except when v == m: then no redundancy is left and corruption cannot be seen.
 * corrupted (may be NULL) receives the indices, ascending, of the corrupted shards
 * repaired (not the missing ones) — room for m entries; *n_corrupted (may be NULL)
 * their number. Errors: BETANET_E_INVALID, BETANET_E_UNCORRECTABLE, BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_fec_correct(betanet_fec_t *fec, uint8_t *const *shards, const uint8_t *present,
                        size_t len, uint8_t *corrupted, size_t *n_corrupted);

/* Name of the region-multiply kernel the FEC calls use now on this CPU ("gfni-avx512",
 * "gfni-avx2", "avx2", "ssse3", "neon" on ARM, or "scalar"); follows betanet_cpu_restrict. Static string. */
const char *betanet_fec_kernel(void);

#endif /* BETANET_FEC_H */
