/* betanet/sphinx.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Sphinx mix packets (Danezis–Goldberg 2009) over X25519, byte layout in docs/sphinx.md.
 *
 *   packet  = epoch (4, big-endian) ‖ α (32) ‖ β (max_hops·53) ‖ γ (16) ‖ payload
 *   entry   = flags (1) ‖ delay_ms (4, BE) ‖ node id (32) ‖ next γ or SURB id (16)
 *
 * A geometry is (max_hops, payload_bytes): 1 ≤ max_hops ≤ BETANET_SPHINX_MAX_HOPS and
 * BETANET_SPHINX_MIN_PAYLOAD_BYTES ≤ payload_bytes ≤ BETANET_SPHINX_MAX_PAYLOAD_BYTES. Every hop of a
 * route must use the same geometry. The application body carried by a packet is
 * payload_bytes − 16 bytes (16 zero bytes are prepended and checked at the final hop);
 * shorter bodies are zero-padded.
 */
#ifndef BETANET_SPHINX_H
#define BETANET_SPHINX_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/sphinx.h"
#endif

#define BETANET_SPHINX_DEFAULT_HOPS      5
#define BETANET_SPHINX_DEFAULT_PAYLOAD_BYTES   2048
#define BETANET_SPHINX_MAX_HOPS          16
#define BETANET_SPHINX_MIN_PAYLOAD_BYTES       64
#define BETANET_SPHINX_MAX_PAYLOAD_BYTES       65536
#define BETANET_SPHINX_KEY_BYTES         32   /* X25519 public and secret keys */
#define BETANET_SPHINX_ID_BYTES          32   /* node / destination identifiers */
#define BETANET_SPHINX_SURB_ID_BYTES     16
#define BETANET_SPHINX_ENTRY_BYTES       53   /* one routing entry in β */
#define BETANET_SPHINX_ZERO_BYTES        16   /* zero prefix checked at the final hop */

/* Sizes for a geometry (valid geometries only; the functions below return 0 otherwise). */
#define BETANET_SPHINX_HEADER_BYTES(hops)          (4u + 32u + (hops) * 53u + 16u)
#define BETANET_SPHINX_PACKET_BYTES(hops, payload) (BETANET_SPHINX_HEADER_BYTES(hops) + (payload))
#define BETANET_SPHINX_BODY_BYTES(payload)         ((payload) - 16u)
#define BETANET_SPHINX_SURB_BYTES(hops)            (32u + 32u + BETANET_SPHINX_HEADER_BYTES(hops))
#define BETANET_SPHINX_SURB_SECRET_BYTES(hops)     (16u + 32u + 1u + (hops) * 32u)

/* Routing-entry flags, and the action a node must take after processing. */
#define BETANET_SPHINX_RELAY    1  /* forward the output packet to node_id after delay_ms */
#define BETANET_SPHINX_DELIVER  2  /* deliver the output body to destination node_id */
#define BETANET_SPHINX_REPLY    3  /* hand the output payload to node_id (a SURB's creator) */

/* Size functions: same values as the macros; 0 when the geometry is invalid. Thread-safe. */
size_t betanet_sphinx_key_bytes(void);   /* BETANET_SPHINX_KEY_BYTES */
size_t betanet_sphinx_id_bytes(void);    /* BETANET_SPHINX_ID_BYTES */
size_t betanet_sphinx_header_bytes(uint32_t max_hops);
size_t betanet_sphinx_packet_bytes(uint32_t max_hops, uint32_t payload_bytes);
size_t betanet_sphinx_body_bytes(uint32_t payload_bytes);
size_t betanet_sphinx_surb_bytes(uint32_t max_hops);
size_t betanet_sphinx_surb_secret_bytes(uint32_t max_hops);

/* A mixnode key pair: secret_key (32) is an X25519 scalar, public_key (32) = X25519(sk, 9).
 * seed32 NULL draws the secret from randombytes_buf; else sk = clamp(BLAKE2b-256(seed)).
 * Errors: BETANET_E_INVALID (NULL outputs), BETANET_E_CRYPTO. Thread-safe. */
int betanet_sphinx_keypair(uint8_t *public_key, uint8_t *secret_key, const uint8_t *seed32);

/* One hop of a route chosen by the sender. delay_ms is how long that hop holds the
 * packet (the sender draws it, e.g. from an exponential distribution). */
typedef struct betanet_sphinx_hop {
    uint8_t node_id[32];
    uint8_t public_key[32];
    uint32_t delay_ms;
} betanet_sphinx_hop_t;

/* Build a forward packet through hops[0..n_hops) (1 ≤ n_hops ≤ max_hops) whose final hop
 * delivers `body` (≤ payload_bytes − 16 bytes, zero-padded) to destination dest_id.
 * seed32 NULL uses fresh randomness (always, in production); a seed makes the packet a
 * deterministic function of the inputs (test vectors only: never reuse a seed).
 * Writes BETANET_SPHINX_PACKET_BYTES into packet_out (packet_cap at least that).
 * Cost: n_hops X25519 plus n_hops fixed-base Ed25519 multiplications. Errors: BETANET_E_INVALID (geometry, n_hops, NULLs,
 * body too long), BETANET_E_BUFFER_TOO_SMALL, BETANET_E_CRYPTO (a public key is a
 * low-order point, or the backend cannot initialise). Thread-safe. */
int betanet_sphinx_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch,
                          const betanet_sphinx_hop_t *hops, size_t n_hops,
                          const uint8_t *dest_id, const uint8_t *body, size_t body_len,
                          const uint8_t *seed32, uint8_t *packet_out, size_t packet_cap);

/* Single-use reply block. The creator builds a SURB for a route back to itself
 * (hops[n_hops-1] hands the reply to dest_id, normally the creator's own id) and keeps
 * surb_secret; it gives surb_out (BETANET_SPHINX_SURB_BYTES) to the party that replies.
 * surb_secret_out (BETANET_SPHINX_SURB_SECRET_BYTES) holds the SURB id and the payload
 * keys: keep it private and wipe it after use. surb_id_out (16, may be NULL) receives the
 * id the final hop reports with BETANET_SPHINX_REPLY. seed32 as for betanet_sphinx_create.
 * Errors as betanet_sphinx_create. Thread-safe. */
int betanet_sphinx_surb_create(uint32_t max_hops, uint32_t payload_bytes, uint32_t epoch,
                               const betanet_sphinx_hop_t *hops, size_t n_hops,
                               const uint8_t *dest_id, const uint8_t *seed32,
                               uint8_t *surb_out, size_t surb_cap,
                               uint8_t *surb_secret_out, size_t secret_cap,
                               uint8_t *surb_id_out);

/* Use a SURB: encrypt `body` (≤ payload_bytes − 16) into a packet for the SURB's first hop,
 * whose node id is written to first_hop_out (32). packet_cap ≥ PACKET_BYTES.
 * Errors: BETANET_E_INVALID, BETANET_E_MALFORMED (surb_len wrong), BUFFER_TOO_SMALL.
 * Thread-safe. */
int betanet_sphinx_surb_use(uint32_t max_hops, uint32_t payload_bytes,
                            const uint8_t *surb, size_t surb_len,
                            const uint8_t *body, size_t body_len,
                            uint8_t *first_hop_out, uint8_t *packet_out, size_t packet_cap);

/* Open a reply: `payload` (payload_bytes) is what the final hop output with
 * BETANET_SPHINX_REPLY; writes the body (payload_bytes − 16) to body_out.
 * Errors: BETANET_E_INVALID, BETANET_E_MALFORMED (secret_len/payload_len wrong),
 * BETANET_E_BUFFER_TOO_SMALL, BETANET_E_AUTH (not a reply to this SURB, or tampered),
 * BETANET_E_NOMEM.
 * Thread-safe. */
BETANET_NODISCARD int betanet_sphinx_surb_open(uint32_t max_hops, uint32_t payload_bytes,
                             const uint8_t *surb_secret, size_t secret_len,
                             const uint8_t *payload, size_t payload_len,
                             uint8_t *body_out, size_t body_cap);

/* ---- a mixnode --------------------------------------------------------------------
 * A node holds one X25519 secret per key epoch (at most BETANET_SPHINX_MAX_EPOCHS at a
 * time) and, per epoch, a replay filter of replay_capacity tags (16 bytes each, table
 * of the next power of two ≥ 2·capacity slots, allocated when the key is added).
 * Unlike other handles, a node may be used by several threads at once: processing and
 * key changes take an internal lock around the replay filter only. */
#define BETANET_SPHINX_MAX_EPOCHS 4
typedef struct betanet_sphinx_node betanet_sphinx_node_t;

/* Create a node for a geometry. replay_capacity: 1 .. 2^28 packets per epoch.
 * Errors: BETANET_E_INVALID, BETANET_E_NOMEM, BETANET_E_CRYPTO. */
int betanet_sphinx_node_new(uint32_t max_hops, uint32_t payload_bytes, size_t replay_capacity,
                            betanet_sphinx_node_t **out);
/* Free a node, wiping its keys. NULL is ignored. */
void betanet_sphinx_node_free(betanet_sphinx_node_t *node);

/* Install the secret key for `epoch` with an empty replay filter.
 * Errors: BETANET_E_INVALID, BETANET_E_EXPIRED (epoch already expired),
 * BETANET_E_STATE (epoch already has a key), BETANET_E_LIMIT (MAX_EPOCHS keys held),
 * BETANET_E_NOMEM. */
int betanet_sphinx_node_add_key(betanet_sphinx_node_t *node, uint32_t epoch, const uint8_t *secret_key);

/* Expire every epoch < oldest_valid: wipe its key, free its replay filter; packets for
 * those epochs are then rejected with BETANET_E_EXPIRED. oldest_valid never decreases.
 * Errors: BETANET_E_INVALID. */
int betanet_sphinx_node_expire(betanet_sphinx_node_t *node, uint32_t oldest_valid);

/* Number of replay tags recorded for `epoch` (0 if the epoch has no key). */
size_t betanet_sphinx_node_replay_count(betanet_sphinx_node_t *node, uint32_t epoch);

/* What processing one packet produced. */
typedef struct betanet_sphinx_result {
    int32_t status;        /* 0 or a BETANET_E_* (batch processing only) */
    uint32_t action;       /* BETANET_SPHINX_RELAY / DELIVER / REPLY */
    uint32_t delay_ms;     /* hold the output this long (sender's choice) */
    uint32_t epoch;        /* the packet's key epoch */
    uint32_t out_len;      /* bytes written to out: packet, body or reply payload */
    uint8_t node_id[32];   /* next hop (RELAY) or destination (DELIVER / REPLY) */
    uint8_t surb_id[16];   /* REPLY: the SURB id (zero otherwise) */
} betanet_sphinx_result_t;

/* Process one packet (packet_len must be PACKET_BYTES). On success fills *result and out:
 *   RELAY   — the next packet (PACKET_BYTES),
 *   DELIVER — the body (payload_bytes − 16),
 *   REPLY   — the reply payload (payload_bytes) for betanet_sphinx_surb_open.
 * out_cap ≥ PACKET_BYTES; out must not overlap packet.
 * Order: replay tag (keyed BLAKE2b of α) is checked before any scalar multiplication.
 * Errors: BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL, BETANET_E_MALFORMED (wrong
 * length, bad α, bad flags), BETANET_E_EXPIRED (epoch expired), BETANET_E_NOT_FOUND
 * (no key for this future epoch), BETANET_E_REPLAY, BETANET_E_AUTH (header MAC, or the
 * zero prefix at a DELIVER hop), BETANET_E_LIMIT (replay filter full: rotate the key). */
BETANET_NODISCARD int betanet_sphinx_node_process(betanet_sphinx_node_t *node, const uint8_t *packet, size_t packet_len,
                                betanet_sphinx_result_t *result, uint8_t *out, size_t out_cap);

/* Process `count` packets of PACKET_BYTES each, packet i at packets + i·PACKET_BYTES,
 * output i at outs + i·PACKET_BYTES (outs holds count·PACKET_BYTES bytes; must not
 * overlap packets), result i in results[i] with its own status. Results, outputs and the
 * replay filter end up exactly as after betanet_sphinx_node_process on each packet in
 * order (a later packet with an accepted packet's α is a REPLAY). Packets go in groups of
 * 8 whose X25519s run 8 at a time when the CPU has BETANET_CPU_AVX512IFMA (and
 * betanet_cpu_restrict allows it), else through libsodium. Thread-safe like _process.
 * Returns the number processed successfully, or a negative BETANET_E_INVALID for bad
 * arguments (count above 2^31 - 1 included). */
BETANET_NODISCARD int betanet_sphinx_node_process_many(betanet_sphinx_node_t *node, const uint8_t *packets, size_t count,
                                     betanet_sphinx_result_t *results, uint8_t *outs);

/* Name of the X25519 implementation betanet_sphinx_node_process_many uses now on this CPU:
 * "avx512ifma-x8" (8 ladders at once) or "libsodium"; follows betanet_cpu_restrict.
 * Static string. */
const char *betanet_sphinx_kernel(void);

#endif /* BETANET_SPHINX_H */
