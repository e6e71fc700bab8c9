/* betanet/mesh.h — section of the public C API; include <betanet.h>, not this file.
 *
 * BitChat-compatible BLE mesh packets (docs/mesh.md): the binary packet codec (v1 and
 * v2, every flag), PKCS#7 block padding, the Ed25519 signing input, fragments (type
 * 0x20) with a bounded reassembler, a de-duplication filter, and Betanet's Reed-Solomon
 * parity fragments (type 0x60, ignored by BitChat peers) so any k of k + m fragments
 * rebuild a message. All multi-byte fields are big-endian.
 *
 * Compression (raw DEFLATE) is not done here: the core depends on libsodium alone. A
 * compressed packet is encoded and decoded with its payload as carried (compressed
 * bytes) plus the original size; the Python layer inflates/deflates.
 *
 * Stateless functions are thread-safe. A handle (reassembler, dedup filter) may be used
 * by one thread at a time; distinct handles are independent.
 */
#ifndef BETANET_MESH_H
#define BETANET_MESH_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/mesh.h"
#endif


#define BETANET_MESH_V1_HEADER_BYTES      14
#define BETANET_MESH_V2_HEADER_BYTES      16
#define BETANET_MESH_PEER_ID_BYTES        8
#define BETANET_MESH_SIGNATURE_BYTES      64
#define BETANET_MESH_PUBLICKEY_BYTES      32   /* Ed25519 public key */
#define BETANET_MESH_SECRETKEY_BYTES      64   /* Ed25519 secret key (libsodium layout) */
#define BETANET_MESH_FRAGMENT_HEADER_BYTES 13  /* id 8, index 2, total 2, original type 1 */
#define BETANET_MESH_PARITY_HEADER_BYTES  17   /* id 8, k 2, m 1, index 1, length 4, type 1 */
#define BETANET_MESH_FRAGMENT_ID_BYTES    8
#define BETANET_MESH_CHUNK_BYTES          469  /* BitChat's default fragment slice */
#define BETANET_MESH_MTU_BYTES            512
#define BETANET_MESH_MAX_FRAGMENTS        10000 /* BitChat refuses larger totals */
#define BETANET_MESH_MAX_ROUTE_HOPS       255
/* BitChat's FileTransferLimits.maxFramedFileBytes: 1 MiB + 131088 TLV + 96 envelope. */
#define BETANET_MESH_MAX_PAYLOAD_BYTES    1179760
#define BETANET_MESH_PACKET_ID_BYTES      16   /* de-duplication identity */

/* Flag bits (byte 11 of the header). */
#define BETANET_MESH_FLAG_HAS_RECIPIENT 0x01
#define BETANET_MESH_FLAG_HAS_SIGNATURE 0x02
#define BETANET_MESH_FLAG_IS_COMPRESSED 0x04
#define BETANET_MESH_FLAG_HAS_ROUTE     0x08  /* v2 only; ignored in v1 */
#define BETANET_MESH_FLAG_IS_RSR        0x10  /* request-sync response; not signed */

/* Message types used by this library (BitChat's MessageType.swift, plus 0x60). */
#define BETANET_MESH_TYPE_ANNOUNCE        0x01
#define BETANET_MESH_TYPE_MESSAGE         0x02
#define BETANET_MESH_TYPE_LEAVE           0x03
#define BETANET_MESH_TYPE_NOISE_HANDSHAKE 0x10
#define BETANET_MESH_TYPE_NOISE_ENCRYPTED 0x11
#define BETANET_MESH_TYPE_FRAGMENT        0x20
#define BETANET_MESH_TYPE_REQUEST_SYNC    0x21
#define BETANET_MESH_TYPE_FILE_TRANSFER   0x22
#define BETANET_MESH_TYPE_FEC_PARITY      0x60  /* Betanet extension */

/* A packet to encode. Pointers are read only; sender is 8 bytes, recipient 8 bytes or
 * NULL (no recipient field), route `route_hops` * 8 bytes (v2 only, NULL when 0),
 * signature 64 bytes or NULL. payload is the payload as carried: when `compressed` is
 * nonzero it is the raw-DEFLATE bytes and original_size the inflated size. */
typedef struct betanet_mesh_packet {
    uint8_t version;          /* 1 or 2 */
    uint8_t type;
    uint8_t ttl;
    uint8_t compressed;       /* nonzero: IS_COMPRESSED, original_size written first */
    uint8_t rsr;              /* nonzero: IS_RSR */
    uint64_t timestamp;       /* milliseconds since the Unix epoch */
    const uint8_t *sender;
    const uint8_t *recipient;
    const uint8_t *route;
    size_t route_hops;
    const uint8_t *payload;
    size_t payload_len;
    uint32_t original_size;
    const uint8_t *signature;
} betanet_mesh_packet_t;

/* A decoded packet: offsets into the decoded buffer (zero-copy). A field absent by its
 * flag has offset 0 and length 0. */
typedef struct betanet_mesh_view {
    uint8_t version;
    uint8_t type;
    uint8_t ttl;
    uint8_t flags;            /* as on the wire (route bit cleared for v1) */
    uint64_t timestamp;
    uint32_t original_size;   /* when compressed, else 0 */
    size_t sender_off;
    size_t recipient_off;
    size_t route_off;         /* first hop */
    size_t route_hops;
    size_t payload_off;       /* payload as carried (compressed bytes if compressed) */
    size_t payload_len;
    size_t signature_off;
    size_t packet_len;        /* bytes the packet occupies; padding/trailer follows */
} betanet_mesh_view_t;

/* Bytes `betanet_mesh_encode` writes for p (pad nonzero: with block padding) into
 * *out_len. Errors: BETANET_E_INVALID (NULL, version, route in v1 or > 255 hops, missing
 * sender), BETANET_E_LIMIT (payload longer than the length field or the BitChat limit). */
int betanet_mesh_packet_bytes(const betanet_mesh_packet_t *p, int pad, size_t *out_len);

/* Encode p into out[0..cap) (padded to the BitChat block size when pad is nonzero);
 * *out_len receives the length. Errors: as packet_bytes, BETANET_E_BUFFER_TOO_SMALL. */
int betanet_mesh_encode(const betanet_mesh_packet_t *p, int pad, uint8_t *out, size_t cap,
                        size_t *out_len);

/* Decode in[0..len) the way BitChat does: the bytes as they are, and if that fails, after
 * removing PKCS#7 padding. Bytes after the packet are ignored (view->packet_len says
 * where it ends). Errors: BETANET_E_INVALID (NULL), BETANET_E_MALFORMED (version,
 * truncation, zero-length or over-ratio compressed payload), BETANET_E_LIMIT (payload or
 * original size over BETANET_MESH_MAX_PAYLOAD_BYTES). Thread-safe. */
BETANET_NODISCARD int betanet_mesh_decode(const uint8_t *in, size_t len, betanet_mesh_view_t *view);

/* Fill *p with pointers into buf for a view decode() produced over buf (to re-encode,
 * sign or verify it). Errors: BETANET_E_INVALID. */
int betanet_mesh_view_packet(const uint8_t *buf, const betanet_mesh_view_t *view,
                             betanet_mesh_packet_t *p);

/* The block size BitChat pads a packet of `len` bytes to (256, 512, 1024, 2048; len
 * itself when it does not fit or would need more than 255 pad bytes). */
size_t betanet_mesh_padded_bytes(size_t len);

/* Length of buf without valid PKCS#7 padding (len itself when the tail is not padding). */
size_t betanet_mesh_unpadded_bytes(const uint8_t *buf, size_t len);

/* The Ed25519 signing input: p encoded with TTL 0, no signature, RSR clear, padded.
 * Size from betanet_mesh_signing_input_bytes. Errors: as encode. */
int betanet_mesh_signing_input_bytes(const betanet_mesh_packet_t *p, size_t *out_len);
int betanet_mesh_signing_input(const betanet_mesh_packet_t *p, uint8_t *out, size_t cap,
                               size_t *out_len);

/* Sign p's signing input with an Ed25519 secret key (64 bytes) into sig (64 bytes).
 * Errors: BETANET_E_INVALID, BETANET_E_LIMIT, BETANET_E_NOMEM. */
int betanet_mesh_sign(const betanet_mesh_packet_t *p, const uint8_t *secret_key, uint8_t *sig);

/* Verify p->signature (must be set) against an Ed25519 public key (32 bytes).
 * Errors: BETANET_E_INVALID (no signature), BETANET_E_AUTH (bad signature),
 * BETANET_E_LIMIT, BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_mesh_verify(const betanet_mesh_packet_t *p, const uint8_t *public_key);

/* De-duplication identity of a decoded packet: SHA-256 of sender || timestamp || type ||
 * payload (as carried), first 16 bytes. TTL, signature, route and padding do not count,
 * so a relayed copy has the identity of the original. */
int betanet_mesh_packet_id(const uint8_t *buf, const betanet_mesh_view_t *view, uint8_t *id);

/* ---- batches: many packets in one flat buffer ------------------------------------- */
/* For bulk users (simulators, relays, DTN convergence-layer batches): one call encodes or
 * decodes a whole batch, with no per-packet allocation. Frames lie back to back in one
 * buffer; an offsets array of n + 1 entries delimits them (frame i is
 * buf[offsets[i]..offsets[i+1])). */

/* Bytes betanet_mesh_encode_batch writes for packets[0..n) (each padded when pad is
 * nonzero) into *out_len. *done receives n, or on error the index of the first packet that
 * cannot be encoded. Errors: as packet_bytes; BETANET_E_INVALID (NULL with n > 0, NULL
 * out_len or done), BETANET_E_LIMIT (the total overflows size_t). */
int betanet_mesh_encode_batch_bytes(const betanet_mesh_packet_t *packets, size_t n, int pad,
                                    size_t *out_len, size_t *done);

/* Encode packets[0..n) back to back into out[0..cap): offsets (n + 1 entries) receives 0
 * and the end of each packet, so packet i is out[offsets[i]..offsets[i+1]). *done receives
 * the number of packets written; on error it is the index of the packet that failed (the
 * ones before it are written and their offsets set). Errors: as encode; BETANET_E_INVALID
 * (NULL offsets or done; NULL packets or out with n > 0). Thread-safe. */
int betanet_mesh_encode_batch(const betanet_mesh_packet_t *packets, size_t n, int pad,
                              uint8_t *out, size_t cap, size_t *offsets, size_t *done);

/* Decode the n frames in[offsets[i]..offsets[i+1]) (offsets: n + 1 nondecreasing entries,
 * offsets[n] <= len) as betanet_mesh_decode does each. views[i] receives frame i's view
 * with its offsets counted from `in` (not from the frame: buf + view.payload_off is the
 * payload; packet_id and view_packet take `in` and the view as they are), status[i] the
 * frame's status (its view zeroed when it fails). Returns how many frames decoded
 * (0..n), or BETANET_E_INVALID (NULL with n > 0, offsets out of order or past len),
 * BETANET_E_LIMIT (n > INT_MAX). A bad frame never stops the batch. Thread-safe. */
BETANET_NODISCARD int betanet_mesh_decode_batch(const uint8_t *in, size_t len, const size_t *offsets,
                                                size_t n, betanet_mesh_view_t *views, int *status);

/* The de-duplication identity of each of n decoded views over buf into
 * ids[16 * i .. 16 * i + 16); a view that did not decode (sender_off 0) gets 16 zero bytes.
 * Returns how many identities were computed, or BETANET_E_INVALID / BETANET_E_LIMIT
 * (n > INT_MAX). */
int betanet_mesh_packet_id_batch(const uint8_t *buf, const betanet_mesh_view_t *views, size_t n,
                                 uint8_t *ids);

/* ---- fragments ------------------------------------------------------------------- */

/* A parsed fragment (type 0x20) or parity (type 0x60) payload; data at data_off. */
typedef struct betanet_mesh_fragment {
    uint8_t id[BETANET_MESH_FRAGMENT_ID_BYTES];
    uint16_t index;           /* data: 0..total-1; parity: 0..parity-1 */
    uint16_t total;           /* number of data fragments (k) */
    uint8_t parity;           /* parity fragments m (0 for type 0x20) */
    uint8_t original_type;
    uint32_t original_len;    /* encoded original length (parity only, else 0) */
    size_t data_off;
    size_t data_len;
} betanet_mesh_fragment_t;

/* Parse the payload of a fragment (is_parity 0) or parity packet (is_parity nonzero).
 * Errors: BETANET_E_MALFORMED (short, total 0 or > MAX_FRAGMENTS, index >= total,
 * k + m > 255 for parity, empty data). */
BETANET_NODISCARD int betanet_mesh_fragment_parse(const uint8_t *payload, size_t len, int is_parity,
                                                  betanet_mesh_fragment_t *frag);

/* Number of fragments of an encoded packet of `len` bytes in `chunk`-byte slices. */
size_t betanet_mesh_fragment_count(size_t len, size_t chunk);

/* Write the payload of data fragment `index` of the encoded packet enc[0..enc_len)
 * (slice of `chunk` bytes; header id || index || total || original_type) into out;
 * *out_len its length (<= 13 + chunk). Errors: BETANET_E_INVALID (index, chunk 0,
 * too many fragments), BETANET_E_BUFFER_TOO_SMALL. */
int betanet_mesh_fragment_payload(const uint8_t *enc, size_t enc_len, const uint8_t *id,
                                  size_t chunk, uint8_t original_type, unsigned int index,
                                  uint8_t *out, size_t cap, size_t *out_len);

/* Write the payloads of m parity fragments for enc split in `chunk`-byte slices
 * (k = fragment_count slices, the last zero-filled to `chunk`; k + m <= 255): out[i]
 * receives BETANET_MESH_PARITY_HEADER_BYTES + chunk bytes. Uses betanet_fec.
 * Errors: BETANET_E_INVALID, BETANET_E_NOMEM. */
int betanet_mesh_parity_payloads(const uint8_t *enc, size_t enc_len, const uint8_t *id,
                                 size_t chunk, uint8_t original_type, unsigned int m,
                                 uint8_t *const *out);

/* ---- reassembler ------------------------------------------------------------------ */

typedef struct betanet_mesh_reasm betanet_mesh_reasm_t;

typedef struct betanet_mesh_reasm_stats {
    uint64_t completed;       /* messages rebuilt (recovered counts those that needed parity) */
    uint64_t recovered;
    uint64_t malformed;       /* fragment headers that do not parse */
    uint64_t inconsistent;    /* total/chunk/type mismatch, differing duplicate (overlap) */
    uint64_t oversized;       /* assembly over max_bytes (overrun) */
    uint64_t evicted;         /* assemblies dropped to make room (flood) */
    uint64_t expired;         /* assemblies dropped by timeout */
    uint64_t in_flight;       /* assemblies held now */
    uint64_t bytes_held;      /* fragment bytes held now (<= max_assemblies * max_bytes) */
} betanet_mesh_reasm_stats_t;

/* A reassembler holding at most max_assemblies (1..65536) assemblies of at most
 * max_bytes (>= 1) fragment bytes each, each dropped timeout_ms after its first fragment.
 * Errors: BETANET_E_INVALID, BETANET_E_NOMEM, BETANET_E_CRYPTO (init). */
int betanet_mesh_reasm_new(unsigned int max_assemblies, size_t max_bytes, uint64_t timeout_ms,
                           betanet_mesh_reasm_t **out);
void betanet_mesh_reasm_free(betanet_mesh_reasm_t *r);

/* Add the payload of a fragment (type 0x20) or parity (type 0x60) packet from `sender`
 * (8 bytes) at time now_ms. Returns 0 when stored (or an identical duplicate), 1 when the
 * message is complete: the encoded original is written to out and its length to
 * *out_len, and the assembly is released. When out is too small, returns
 * BETANET_E_BUFFER_TOO_SMALL with *out_len = the size needed and keeps the assembly
 * (add the same fragment again with a larger buffer). When the table is full the oldest
 * assembly is evicted. Errors: BETANET_E_INVALID, BETANET_E_MALFORMED,
 * BETANET_E_PROTOCOL (inconsistent with the assembly; the assembly is dropped),
 * BETANET_E_LIMIT (over max_bytes; dropped), BETANET_E_NOMEM, BETANET_E_UNCORRECTABLE. */
BETANET_NODISCARD int betanet_mesh_reasm_add(betanet_mesh_reasm_t *r, const uint8_t *sender,
                                             int is_parity, const uint8_t *payload, size_t len,
                                             uint64_t now_ms, uint8_t *out, size_t cap,
                                             size_t *out_len);

/* Drop assemblies older than timeout at now_ms; returns how many were dropped. */
int betanet_mesh_reasm_expire(betanet_mesh_reasm_t *r, uint64_t now_ms);

int betanet_mesh_reasm_stats(const betanet_mesh_reasm_t *r, betanet_mesh_reasm_stats_t *stats);

/* ---- de-duplication --------------------------------------------------------------- */

/* Two rotating Bloom filters of `capacity` entries each (16 bits and 11 keyed SipHash
 * probes per entry): memory 4 * capacity bytes; remembers at least the last `capacity`
 * identities; false-positive rate below 0.1 % (docs/mesh.md). */
typedef struct betanet_mesh_dedup betanet_mesh_dedup_t;

#define BETANET_MESH_DEDUP_BITS_PER_ENTRY 16
#define BETANET_MESH_DEDUP_PROBES         11

/* Errors: BETANET_E_INVALID (capacity 0 or > 2^24), BETANET_E_NOMEM, BETANET_E_CRYPTO. */
int betanet_mesh_dedup_new(uint32_t capacity, betanet_mesh_dedup_t **out);
void betanet_mesh_dedup_free(betanet_mesh_dedup_t *d);

/* Returns 1 when `id` (BETANET_MESH_PACKET_ID_BYTES) was (probably) seen, else 0 and
 * remembers it. Errors: BETANET_E_INVALID. */
BETANET_NODISCARD int betanet_mesh_dedup_check(betanet_mesh_dedup_t *d, const uint8_t *id);

/* betanet_mesh_dedup_check over n identities (ids: 16 * n bytes, e.g. from
 * packet_id_batch): seen[i] = 1 when identity i was (probably) seen before, by an earlier
 * call or earlier in this batch, else 0 and remembered. Identities that are all zero (views
 * that did not decode) are skipped with seen[i] = 1. Returns how many were new, or
 * BETANET_E_INVALID / BETANET_E_LIMIT (n > INT_MAX). */
int betanet_mesh_dedup_check_batch(betanet_mesh_dedup_t *d, const uint8_t *ids, size_t n,
                                   uint8_t *seen);

#endif /* BETANET_MESH_H */
