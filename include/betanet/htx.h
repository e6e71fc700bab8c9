/* betanet/htx.h — section of the public C API; include <betanet.h>, not this file.
 *
 * HTX: the encrypted, authenticated, multiplexed frame layer (docs/htx.md has every byte).
 * After the Noise XK handshake (betanet/noise.h; it splits into k1, k2 and the handshake
 * hash, or straight into a session) a C host runs the whole channel with a session: it
 * seals frames into its own buffers and feeds received bytes, in any split, to an
 * incremental parser that yields whole authenticated frames.
 *
 * How a host drives the channel (a complete program: ffi-examples/c/htx_client.c):
 *   1. connect a byte stream (TCP; TLS or QUIC around it if the host wants);
 *   2. betanet_noise_xk_new(BETANET_NOISE_INITIATOR, my_key, server_public,
 *          BETANET_NOISE_HTX_PROLOGUE, BETANET_NOISE_HTX_PROLOGUE_BYTES, &hs)
 *      (a server: BETANET_NOISE_RESPONDER, its key, NULL);
 *   3. loop on betanet_noise_xk_action(hs): WRITE -> betanet_noise_xk_write_frame and send;
 *      READ -> recv and betanet_noise_xk_read_frame (keep the bytes it did not consume:
 *      they are frames); SPLIT -> done; negative -> the handshake failed, close (no keys
 *      exist to seal a CLOSE with);
 *   4. betanet_noise_xk_split_htx(hs, &config or NULL, now_ms, &s); betanet_noise_xk_free(hs);
 *   5. send: betanet_htx_session_seal_stream (data, FIN, RESET) / betanet_htx_session_seal
 *      (PING, CLOSE, WINDOW_UPDATE, KEY_UPDATE) into a BETANET_HTX_SEAL_BYTES buffer, then
 *      write it out; respect the peer's windows (docs/htx.md §5);
 *   6. receive: betanet_htx_session_open with every received byte until it returns 0; act
 *      on each frame (answer PINGs, credit windows back with WINDOW_UPDATE, stop on CLOSE);
 *      a negative status is fatal: seal a CLOSE with the matching code (docs/htx.md §7);
 *   7. at the end: a CLOSE (code 0), then betanet_htx_session_free(s).
 *
 * Frame on the wire:  length:uint24 | type:uint8 | [stream_id:varint] | ciphertext | tag[16]
 *   length = ciphertext length (= plaintext length) without the tag; big-endian.
 *   AEAD = ChaCha20-Poly1305 IETF; AD = the header bytes as sent;
 *   nonce = NS XOR (LE64(counter) || LE32(0)); counter counts frames under the current key.
 * The core has no clocks: functions that follow the time-based key-update schedule take
 * the caller's monotonic time in milliseconds (`now_ms`).
 * Threads: a session is used by one thread at a time, except that one thread may seal
 * (betanet_htx_session_seal*) while another opens (betanet_htx_session_open): the two
 * directions touch disjoint state, so a full-duplex host needs no lock between them.
 */
#ifndef BETANET_HTX_H
#define BETANET_HTX_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/htx.h"
#endif

/* ---- sizes ----------------------------------------------------------------------- */
#define BETANET_HTX_KEY_BYTES          32u  /* ChaCha20-Poly1305 key (k1, k2, K') */
#define BETANET_HTX_NS_BYTES           12u  /* nonce salt */
#define BETANET_HTX_HASH_BYTES         32u  /* Noise handshake hash (SHA-256) */
#define BETANET_HTX_TAG_BYTES          16u  /* Poly1305 tag */
#define BETANET_HTX_MAX_HEADER_BYTES   12u  /* 3 length + 1 type + 8 varint stream id */
#define BETANET_HTX_OVERHEAD_BYTES     28u  /* max header + tag */
#define BETANET_HTX_KEY_UPDATE_BYTES   20u  /* a whole KEY_UPDATE frame (4 + 0 + 16) */
#define BETANET_HTX_DEFAULT_MAX_FRAME_BYTES  16384u     /* default max plaintext per frame */
#define BETANET_HTX_MAX_FRAME_LIMIT_BYTES    16777215u  /* 2^24 - 1: what uint24 can carry */
#define BETANET_HTX_VARINT_MAX         4611686018427387903ull  /* 2^62 - 1 */
/* Function twins of the fixed sizes (for hosts without the C preprocessor). Thread-safe. */
size_t betanet_htx_key_bytes(void);       /* BETANET_HTX_KEY_BYTES */
size_t betanet_htx_ns_bytes(void);        /* BETANET_HTX_NS_BYTES */
size_t betanet_htx_hash_bytes(void);      /* BETANET_HTX_HASH_BYTES */
size_t betanet_htx_tag_bytes(void);       /* BETANET_HTX_TAG_BYTES */
size_t betanet_htx_overhead_bytes(void);  /* BETANET_HTX_OVERHEAD_BYTES */
/* Bytes one sealed frame with a `plen`-byte plaintext can take. */
#define BETANET_HTX_FRAME_BYTES(plen)  ((size_t)(plen) + BETANET_HTX_OVERHEAD_BYTES)
/* Bytes betanet_htx_session_seal may write: the frame plus a scheduled KEY_UPDATE. */
#define BETANET_HTX_SEAL_BYTES(plen)   (BETANET_HTX_FRAME_BYTES(plen) + BETANET_HTX_KEY_UPDATE_BYTES)

/* ---- frame types and roles --------------------------------------------------------- */
#define BETANET_HTX_STREAM         0  /* carries stream_id; plaintext flags:uint8 | data */
#define BETANET_HTX_PING           1  /* plaintext flags:uint8 | token[8] */
#define BETANET_HTX_CLOSE          2  /* plaintext code:uint16 | reason (UTF-8) */
#define BETANET_HTX_KEY_UPDATE     3  /* empty plaintext */
#define BETANET_HTX_WINDOW_UPDATE  4  /* carries stream_id; plaintext increment:varint */
#define BETANET_HTX_FLAG_FIN     0x01 /* STREAM: sender sends no more on this stream */
#define BETANET_HTX_FLAG_RESET   0x02 /* STREAM: abort; data is code:uint16 */
#define BETANET_HTX_FLAG_REPLY   0x01 /* PING: this is the answer */
#define BETANET_HTX_INITIATOR      0  /* sends with k1, receives with k2 */
#define BETANET_HTX_RESPONDER      1  /* sends with k2, receives with k1 */

/* ---- varint (QUIC, RFC 9000 §16) ----------------------------------------------------
 * Encode `value` (< 2^62) in its shortest form into out[0..cap). *written = 1, 2, 4 or 8.
 * Errors: BETANET_E_INVALID (value too large, NULL), BETANET_E_BUFFER_TOO_SMALL.
 * Thread-safe. */
int betanet_htx_varint_encode(uint64_t value, uint8_t *out, size_t cap, size_t *written);
/* Decode one varint (any valid length) from in[0..len). *consumed = bytes used.
 * Errors: BETANET_E_MALFORMED (truncated), BETANET_E_INVALID (NULL). Thread-safe. */
BETANET_NODISCARD int betanet_htx_varint_decode(const uint8_t *in, size_t len, uint64_t *value, size_t *consumed);

/* ---- key schedule -----------------------------------------------------------------
 * Keys are BETANET_HTX_KEY_BYTES (32), NS values BETANET_HTX_NS_BYTES (12) everywhere.
 * NS = HKDF-SHA256(ikm = key, salt = empty, info = "ns", L = 12). Thread-safe. */
int betanet_htx_derive_ns(const uint8_t *key, uint8_t *ns);
/* K' = HKDF-SHA256(ikm = key, salt = hash[0..hash_len), info = "next", L = 32).
 * hash_len <= 64. Errors: BETANET_E_INVALID. Thread-safe. */
int betanet_htx_next_key(const uint8_t *key, const uint8_t *hash, size_t hash_len,
                         uint8_t *next);

/* ---- stateless frame codec (test vectors, benchmarks, custom hosts) ------------------
 * Seal one frame of `type` (stream_id used only for STREAM / WINDOW_UPDATE, must be 0
 * otherwise) with plaintext pt[0..pt_len) under (key, ns, counter) into out[0..cap).
 * The plaintext is taken as is (no structure check). *out_len = frame bytes.
 * Errors: BETANET_E_INVALID (type, stream_id >= 2^62, pt_len > 2^24-1),
 * BETANET_E_BUFFER_TOO_SMALL (cap < BETANET_HTX_FRAME_BYTES(pt_len) is always enough).
 * Thread-safe. pt and out may not overlap. */
int betanet_htx_frame_seal(const uint8_t *key, const uint8_t *ns, uint64_t counter,
                           int type, uint64_t stream_id, const uint8_t *pt, size_t pt_len,
                           uint8_t *out, size_t cap, size_t *out_len);
/* Open the frame at the start of in[0..len) under (key, ns, counter). Rejects a length
 * above max_frame before looking further. On success *type, *stream_id, the plaintext in
 * out[0..*pt_len) and *consumed (the frame's bytes) are set; nothing is written to out
 * unless the tag verifies. Errors: BETANET_E_MALFORMED (truncated: fewer bytes than the
 * frame), BETANET_E_LIMIT (length > max_frame), BETANET_E_PROTOCOL (unknown type),
 * BETANET_E_AUTH (tag), BETANET_E_BUFFER_TOO_SMALL (cap < length), BETANET_E_INVALID
 * (NULL). Thread-safe. */
BETANET_NODISCARD int betanet_htx_frame_open(const uint8_t *key, const uint8_t *ns, uint64_t counter,
                           const uint8_t *in, size_t len, uint32_t max_frame,
                           int *type, uint64_t *stream_id, uint8_t *out, size_t cap,
                           size_t *pt_len, size_t *consumed);

/* ---- session ------------------------------------------------------------------------ */
/* Limits; a zero field takes the default. */
typedef struct betanet_htx_config {
    uint32_t max_frame;      /* max plaintext per frame, both directions (16384; <= 2^24-1) */
    uint64_t rekey_bytes;    /* send-side key update after this many plaintext bytes (8 GiB) */
    uint64_t rekey_frames;   /* ... after this many frames incl. the KEY_UPDATE (65536; >= 2) */
    uint64_t rekey_ms;       /* ... after this long on one key, by the caller's clock (3600000) */
} betanet_htx_config_t;

/* Counters of one session (for hosts, tests and logs). */
typedef struct betanet_htx_stats {
    uint64_t send_counter, recv_counter;   /* frames under the current keys */
    uint64_t send_bytes, recv_bytes;       /* plaintext bytes under the current keys */
    uint64_t send_epoch, recv_epoch;       /* key updates done in each direction */
    uint64_t frames_sent, frames_received; /* over the whole session */
} betanet_htx_stats_t;

/* One frame yielded by betanet_htx_session_open. */
typedef struct betanet_htx_frame {
    int type;              /* BETANET_HTX_* frame type */
    uint64_t stream_id;    /* 0 for frames without one */
    size_t length;         /* plaintext bytes written to the caller's buffer */
} betanet_htx_frame_t;

typedef struct betanet_htx_session betanet_htx_session_t;

/* A session from the handshake's two split keys: k1 protects initiator->responder
 * frames, k2 responder->initiator; `role` picks which one this side sends with.
 * handshake_hash (32 bytes) salts key updates. `config` may be NULL (defaults); now_ms
 * starts the time-based schedule. The keys are copied (wipe yours).
 * Errors: BETANET_E_INVALID (role, NULL, config out of range), BETANET_E_NOMEM,
 * BETANET_E_CRYPTO (the crypto backend cannot initialise). */
int betanet_htx_session_new(int role, const uint8_t *k1, const uint8_t *k2,
                            const uint8_t *handshake_hash /* 32 bytes */, const betanet_htx_config_t *config,
                            uint64_t now_ms, betanet_htx_session_t **out);
/* Wipe and free (NULL is ignored). */
void betanet_htx_session_free(betanet_htx_session_t *s);
/* The session's max plaintext per frame (the size of buffers for session_open); 0 for NULL. */
size_t betanet_htx_session_max_frame(const betanet_htx_session_t *s);
/* Copy the counters into *stats. Errors: BETANET_E_INVALID (NULL). */
int betanet_htx_session_stats(const betanet_htx_session_t *s, betanet_htx_stats_t *stats);

/* Seal one frame with plaintext pt[0..pt_len) into out[0..cap). If the key-update
 * schedule is due (frames, bytes, or now_ms), a KEY_UPDATE under the old key is written
 * first and the new key seals the frame; type KEY_UPDATE forces one now (pt_len 0).
 * *out_len = bytes written. BETANET_HTX_SEAL_BYTES(pt_len) is always enough.
 * The plaintext is taken as is, like betanet_htx_frame_seal (the receiver checks its shape).
 * Errors: BETANET_E_INVALID (type, stream_id, NULL, a non-empty KEY_UPDATE), BETANET_E_LIMIT
 * (pt_len > max_frame, or the 64-bit counter is exhausted: never wraps),
 * BETANET_E_BUFFER_TOO_SMALL. A failed call changes nothing. Not thread-safe per session. */
int betanet_htx_session_seal(betanet_htx_session_t *s, int type, uint64_t stream_id,
                             const uint8_t *pt, size_t pt_len, uint64_t now_ms,
                             uint8_t *out, size_t cap, size_t *out_len);
/* Seal one STREAM frame whose plaintext is flags | data[0..len) without the caller
 * building it (the data path). Same rules and errors as betanet_htx_session_seal with
 * a (len + 1)-byte plaintext (len >= max_frame, SIZE_MAX included, is BETANET_E_LIMIT). */
int betanet_htx_session_seal_stream(betanet_htx_session_t *s, uint64_t stream_id, uint8_t flags,
                                    const uint8_t *data, size_t len, uint64_t now_ms,
                                    uint8_t *out, size_t cap, size_t *out_len);
/* Feed received bytes in[0..len) (any split) and take at most one whole, authenticated
 * frame. Returns 1 with *frame and out[0..frame->length) set, or 0 when every byte was
 * consumed into the session's buffer and more are needed; *consumed tells how many input
 * bytes were used either way (call again with the rest). A length above max_frame is
 * rejected from the header, before buffering. Frames are checked to have the plaintext
 * shape of their type (STREAM flags, PING size, CLOSE size, empty KEY_UPDATE, one varint
 * in WINDOW_UPDATE). An opened KEY_UPDATE switches the receive key (and is returned so
 * the host knows). Nothing unauthenticated is ever written to out.
 * Errors (sticky: every later call returns the same): BETANET_E_AUTH (tag: corrupted,
 * replayed, reordered, or truncated-then-continued), BETANET_E_LIMIT (oversized length,
 * counter exhausted), BETANET_E_PROTOCOL (unknown type), BETANET_E_MALFORMED (bad
 * plaintext shape); not sticky: BETANET_E_BUFFER_TOO_SMALL (cap < max_frame),
 * BETANET_E_INVALID. Not thread-safe per session. */
BETANET_NODISCARD int betanet_htx_session_open(betanet_htx_session_t *s, const uint8_t *in, size_t len,
                             size_t *consumed, betanet_htx_frame_t *frame,
                             uint8_t *out, size_t cap);
/* Bytes of an incomplete frame held in the session's buffer (0 between frames, 0 for NULL):
 * a peer that stopped mid-frame leaves this non-zero at end of input. */
size_t betanet_htx_session_pending(const betanet_htx_session_t *s);

#endif /* BETANET_HTX_H */
