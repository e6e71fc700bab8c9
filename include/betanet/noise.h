/* betanet/noise.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Noise XK: the handshake that opens an HTX channel (docs/noise.md, docs/htx.md §1),
 * Noise_XK_25519_ChaChaPoly_SHA256 of the Noise Protocol Framework (rev. 34):
 *
 *     <- s                 (the initiator knows the responder's static key beforehand)
 *     ...
 *     -> e, es             message 1: 32 e | payload ciphertext | 16 tag   (48 + payload)
 *     <- e, ee             message 2: 32 e | payload ciphertext | 16 tag   (48 + payload)
 *     -> s, se             message 3: 48 encrypted s | payload | 16 tag    (64 + payload)
 *
 * A sans-IO state machine: the host moves the bytes, the handshake never reads a clock
 * and draws its ephemeral key from libsodium's randombytes. Two layers:
 *   - Noise messages (betanet_noise_xk_write_message / _read_message): any prologue and
 *     payload; what the published Noise test vectors exercise.
 *   - HTX's wire form (betanet_noise_xk_write_frame / _read_frame): every message is
 *     `length:uint16 big-endian | message`, payloads empty on send and ignored on receive,
 *     a length above BETANET_NOISE_HTX_MAX_MESSAGE_BYTES refused before buffering.
 * After message 3 the handshake splits into what betanet_htx_session_new takes (k1, k2,
 * the handshake hash) — or straight into an HTX session, so the keys never leave the
 * library (betanet_noise_xk_split_htx).
 *
 * Driving it (initiator = client, responder = server), HTX wire form:
 *
 *     betanet_noise_xk_new(role, my_static_private, server_public_or_NULL,
 *                          BETANET_NOISE_HTX_PROLOGUE, BETANET_NOISE_HTX_PROLOGUE_BYTES, &hs);
 *     for (;;) {
 *         int next = betanet_noise_xk_action(hs);
 *         if (next == BETANET_NOISE_ACTION_WRITE)       write_frame, send the bytes;
 *         else if (next == BETANET_NOISE_ACTION_READ)   recv, read_frame (loop over *consumed);
 *         else if (next == BETANET_NOISE_ACTION_SPLIT)  break;
 *         else                                          fail (next < 0: the sticky error);
 *     }
 *     betanet_noise_xk_split_htx(hs, NULL, now_ms, &session);  betanet_noise_xk_free(hs);
 *     // bytes that followed message 3 (read_frame did not consume them) are HTX frames.
 *
 * Errors during a read are sticky: the handshake is dead (its secrets are wiped) and
 * every later call returns the same status. Call-order mistakes (writing when a read is
 * due, splitting early) return BETANET_E_STATE and change nothing.
 * Threads: a handshake is used by one thread at a time.
 */
#ifndef BETANET_NOISE_H
#define BETANET_NOISE_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/noise.h"
#endif

/* ---- sizes ----------------------------------------------------------------------- */
#define BETANET_NOISE_KEY_BYTES          32u  /* X25519 private or public key */
#define BETANET_NOISE_CIPHER_KEY_BYTES   32u  /* ChaCha20-Poly1305 key from split (k1, k2) */
#define BETANET_NOISE_HASH_BYTES         32u  /* SHA-256: the handshake hash */
#define BETANET_NOISE_TAG_BYTES          16u  /* Poly1305 tag */
#define BETANET_NOISE_MAX_MESSAGE_BYTES  65535u  /* Noise's limit on one message */
/* Bytes of XK message 1, 2, 3 carrying a `plen`-byte payload. */
#define BETANET_NOISE_XK_MESSAGE1_BYTES(plen)  ((size_t)(plen) + 48u)
#define BETANET_NOISE_XK_MESSAGE2_BYTES(plen)  ((size_t)(plen) + 48u)
#define BETANET_NOISE_XK_MESSAGE3_BYTES(plen)  ((size_t)(plen) + 64u)
/* The largest XK message with an empty payload (message 3), and with its HTX prefix. */
#define BETANET_NOISE_XK_MAX_EMPTY_BYTES       64u
#define BETANET_NOISE_XK_MAX_FRAME_BYTES       66u

/* HTX's use of it (docs/htx.md §1). */
#define BETANET_NOISE_HTX_PROLOGUE          "betanet/htx/1.1.0"
#define BETANET_NOISE_HTX_PROLOGUE_BYTES    17u
#define BETANET_NOISE_HTX_MAX_MESSAGE_BYTES 1024u  /* larger length prefixes are refused */

/* ---- roles and actions -------------------------------------------------------------- */
#define BETANET_NOISE_INITIATOR  0  /* knows the responder's static key; = BETANET_HTX_INITIATOR */
#define BETANET_NOISE_RESPONDER  1  /* = BETANET_HTX_RESPONDER */
#define BETANET_NOISE_ACTION_WRITE  1  /* this side sends the next message */
#define BETANET_NOISE_ACTION_READ   2  /* this side waits for the peer's next message */
#define BETANET_NOISE_ACTION_SPLIT  3  /* all three messages done: split now */
#define BETANET_NOISE_ACTION_DONE   4  /* split already taken; only free remains */

typedef struct betanet_noise_xk betanet_noise_xk_t;

/* A handshake. `static_private` (32 bytes) is this side's X25519 key (its public key is
 * derived from it). The initiator passes the responder's static public key in
 * `remote_static_public` (32 bytes); the responder passes NULL (it learns the initiator's
 * key from message 3). The prologue (any length, may be NULL when 0) is hashed at once,
 * not kept. Calls betanet_init() itself. `*out` is NULL on failure.
 * Errors: BETANET_E_INVALID (role, NULL, a responder given a remote key, an initiator
 * without), BETANET_E_NOMEM, BETANET_E_CRYPTO (libsodium could not initialise). */
int betanet_noise_xk_new(int role, const uint8_t *static_private,
                         const uint8_t *remote_static_public,
                         const uint8_t *prologue, size_t prologue_len,
                         betanet_noise_xk_t **out);
/* For TEST VECTORS ONLY: as betanet_noise_xk_new with the ephemeral private key given
 * instead of drawn at random. A reused or predictable ephemeral key destroys the
 * handshake's secrecy; never call this in a product. */
int betanet_noise_xk_new_with_ephemeral(int role, const uint8_t *static_private,
                                        const uint8_t *remote_static_public,
                                        const uint8_t *prologue, size_t prologue_len,
                                        const uint8_t *ephemeral_private,
                                        betanet_noise_xk_t **out);
/* Wipe and free (NULL is ignored). */
void betanet_noise_xk_free(betanet_noise_xk_t *hs);

/* What the host should do next: BETANET_NOISE_ACTION_*, or the sticky negative error of
 * a failed handshake (BETANET_E_INVALID for NULL). */
int betanet_noise_xk_action(const betanet_noise_xk_t *hs);

/* ---- Noise messages ------------------------------------------------------------------
 * Write this side's next message with payload[0..payload_len) into out[0..cap) (the two
 * may not overlap); *out_len = its bytes (BETANET_NOISE_XK_MESSAGE<n>_BYTES(payload_len)).
 * Errors: BETANET_E_STATE (a read is due, or done), BETANET_E_BUFFER_TOO_SMALL,
 * BETANET_E_LIMIT (message above 65535 bytes), BETANET_E_INVALID — none changes the
 * handshake; BETANET_E_CRYPTO (the peer's key gives an all-zero X25519 result: low
 * order) is sticky. */
int betanet_noise_xk_write_message(betanet_noise_xk_t *hs, const uint8_t *payload,
                                   size_t payload_len, uint8_t *out, size_t cap,
                                   size_t *out_len);
/* Read the peer's next message msg[0..len); its payload goes to payload[0..cap)
 * (*payload_len bytes; payload may be NULL when cap is 0 and the payload empty).
 * Not sticky, nothing changed: BETANET_E_STATE (a write is due, or done),
 * BETANET_E_BUFFER_TOO_SMALL (cap below the payload), BETANET_E_INVALID.
 * Sticky (the handshake is dead): BETANET_E_MALFORMED (shorter than the message's
 * fixed part), BETANET_E_LIMIT (above 65535), BETANET_E_AUTH (a tag fails: wrong
 * responder key, corruption, wrong prologue), BETANET_E_CRYPTO (a low-order public key:
 * all-zero X25519 result). */
BETANET_NODISCARD int betanet_noise_xk_read_message(betanet_noise_xk_t *hs,
                                                    const uint8_t *msg, size_t len,
                                                    uint8_t *payload, size_t cap,
                                                    size_t *payload_len);

/* ---- HTX wire form ---------------------------------------------------------------------
 * Write this side's next message, empty payload, as `length:uint16 BE | message` into
 * out[0..cap); BETANET_NOISE_XK_MAX_FRAME_BYTES (66) is always enough. Errors as
 * betanet_noise_xk_write_message. */
int betanet_noise_xk_write_frame(betanet_noise_xk_t *hs, uint8_t *out, size_t cap,
                                 size_t *out_len);
/* Feed received bytes in[0..len) (any split). Returns 1 when a whole message was read
 * (*consumed = input bytes used up to its end: the rest belongs to what follows, e.g.
 * HTX frames after message 3), 0 when every byte was consumed into the handshake's
 * buffer and more are needed. Payload bytes are authenticated and ignored. A length
 * prefix above BETANET_NOISE_HTX_MAX_MESSAGE_BYTES is refused as soon as its two bytes
 * arrive. Errors: as betanet_noise_xk_read_message (sticky ones sticky; too long is
 * BETANET_E_LIMIT), BETANET_E_STATE when no read is due. */
BETANET_NODISCARD int betanet_noise_xk_read_frame(betanet_noise_xk_t *hs, const uint8_t *in,
                                                  size_t len, size_t *consumed);
/* Bytes of an incomplete message held in the handshake's buffer (a peer that stopped
 * mid-message leaves this non-zero). */
size_t betanet_noise_xk_pending(const betanet_noise_xk_t *hs);

/* ---- results ------------------------------------------------------------------------
 * Split: k1 (initiator->responder), k2 (responder->initiator), each
 * BETANET_NOISE_CIPHER_KEY_BYTES, and the handshake hash (BETANET_NOISE_HASH_BYTES):
 * exactly the inputs of betanet_htx_session_new. Then the handshake wipes its secrets;
 * a second split is BETANET_E_STATE. Wipe the keys you received once used.
 * Errors: BETANET_E_STATE (not all messages done, or split taken), BETANET_E_INVALID,
 * or the sticky error. */
BETANET_NODISCARD int betanet_noise_xk_split(betanet_noise_xk_t *hs, uint8_t *k1, uint8_t *k2,
                                             uint8_t *handshake_hash);
/* Split straight into a new HTX session for this side's role (config and now_ms as for
 * betanet_htx_session_new): the keys never leave the library. Same errors as
 * betanet_noise_xk_split plus those of betanet_htx_session_new; on an HTX error the
 * split is not consumed. */
BETANET_NODISCARD int betanet_noise_xk_split_htx(betanet_noise_xk_t *hs,
                                                 const betanet_htx_config_t *config,
                                                 uint64_t now_ms, betanet_htx_session_t **out);
/* The handshake hash (32 bytes), once all three messages are done (before or after
 * split). Errors: BETANET_E_STATE, BETANET_E_INVALID. */
int betanet_noise_xk_handshake_hash(const betanet_noise_xk_t *hs, uint8_t *out);
/* The peer's static public key (32 bytes): on the initiator from the start (the key it
 * was given), on the responder once message 3 was read. Errors: BETANET_E_STATE, BETANET_E_INVALID. */
int betanet_noise_xk_remote_static(const betanet_noise_xk_t *hs, uint8_t *out);

#endif /* BETANET_NOISE_H */
