# htx.pyx — the HTX frame codec, AEAD framing and session (include/betanet/htx.h,
# docs/htx.md). Sans-IO, no clocks: the caller passes its monotonic time in ms.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from bnt cimport *
from bnt_internal cimport *

from bnt_hkdf cimport hkdf_sha256
from betanet_htx cimport *

# Constants as true C constants (module-level Python assignments never run in the core).
cdef extern from *:
    """
    #define HTX_TAG 16
    #define HTX_DEFAULT_MAX_FRAME 16384u
    #define HTX_MAX_FRAME_LIMIT 16777215u
    #define HTX_DEFAULT_REKEY_BYTES (8ull << 30)
    #define HTX_DEFAULT_REKEY_FRAMES 65536ull
    #define HTX_DEFAULT_REKEY_MS 3600000ull
    #define HTX_VARINT_MAX 4611686018427387903ull
    #define HTX_U64_MAX 18446744073709551615ull
    """
    size_t HTX_TAG
    uint32_t HTX_DEFAULT_MAX_FRAME, HTX_MAX_FRAME_LIMIT
    uint64_t HTX_DEFAULT_REKEY_BYTES, HTX_DEFAULT_REKEY_FRAMES, HTX_DEFAULT_REKEY_MS
    uint64_t HTX_VARINT_MAX, HTX_U64_MAX


# One direction's key state. The nonce is NS XOR (LE64(counter) || LE32(0)).
ctypedef struct htx_dir:
    uint8_t key[32]
    uint8_t ns[12]
    uint64_t counter
    uint64_t bytes
    uint64_t key_start_ms
    uint64_t epoch
    uint64_t frames_total

cdef struct htx_sess:
    int role
    int error                 # sticky receive error (0 = none)
    uint32_t max_frame
    uint64_t rekey_bytes, rekey_frames, rekey_ms
    uint8_t hash[32]
    htx_dir snd
    htx_dir rcv
    uint8_t *buf              # partial incoming frame (header + ciphertext + tag)
    size_t buf_cap, buf_len


# ---- sizes (function twins of the BETANET_HTX_*_BYTES macros) ---------------------------

cdef public size_t betanet_htx_key_bytes() noexcept nogil:
    return BETANET_HTX_KEY_BYTES

cdef public size_t betanet_htx_ns_bytes() noexcept nogil:
    return BETANET_HTX_NS_BYTES

cdef public size_t betanet_htx_hash_bytes() noexcept nogil:
    return BETANET_HTX_HASH_BYTES

cdef public size_t betanet_htx_tag_bytes() noexcept nogil:
    return BETANET_HTX_TAG_BYTES

cdef public size_t betanet_htx_overhead_bytes() noexcept nogil:
    return BETANET_HTX_OVERHEAD_BYTES


# ---- key schedule ------------------------------------------------------------------------

cdef public int betanet_htx_derive_ns(const uint8_t *key, uint8_t *ns) noexcept nogil:
    if key == NULL or ns == NULL:
        return BETANET_E_INVALID
    hkdf_sha256(NULL, 0, key, 32, "ns", 2, ns, 12)
    return BETANET_OK


cdef public int betanet_htx_next_key(const uint8_t *key, const uint8_t *hash, size_t hash_len,
                                     uint8_t *nxt) noexcept nogil:
    cdef uint8_t tmp[32]
    if key == NULL or nxt == NULL or (hash == NULL and hash_len) or hash_len > 64:
        return BETANET_E_INVALID
    hkdf_sha256(hash, hash_len, key, 32, "next", 4, tmp, 32)   # key and nxt may alias
    memcpy(nxt, tmp, 32)
    sodium_memzero(tmp, 32)
    return BETANET_OK


# ---- varint ------------------------------------------------------------------------------

cdef inline size_t varint_size(uint64_t v) noexcept nogil:
    if v < 64:
        return 1
    if v < 16384:
        return 2
    if v < 1073741824:
        return 4
    return 8


cdef inline void varint_put(uint64_t v, size_t n, uint8_t *out) noexcept nogil:
    cdef size_t i
    for i in range(n):
        out[n - 1 - i] = <uint8_t>(v >> (8 * i))
    if n == 2:
        out[0] |= 0x40
    elif n == 4:
        out[0] |= 0x80
    elif n == 8:
        out[0] |= 0xC0


cdef inline size_t varint_len_from_first(uint8_t first) noexcept nogil:
    return (<size_t>1) << (first >> 6)


cdef inline uint64_t varint_get(const uint8_t *p, size_t n) noexcept nogil:
    cdef uint64_t v = p[0] & 0x3F
    cdef size_t i
    for i in range(1, n):
        v = (v << 8) | p[i]
    return v


cdef public int betanet_htx_varint_encode(uint64_t value, uint8_t *out, size_t cap,
                                          size_t *written) noexcept nogil:
    cdef size_t n
    if out == NULL or written == NULL or value > HTX_VARINT_MAX:
        return BETANET_E_INVALID
    n = varint_size(value)
    if cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    varint_put(value, n, out)
    written[0] = n
    return BETANET_OK


cdef public int betanet_htx_varint_decode(const uint8_t *inp, size_t length, uint64_t *value,
                                          size_t *consumed) noexcept nogil:
    cdef size_t n
    if inp == NULL or value == NULL or consumed == NULL:
        return BETANET_E_INVALID
    if length == 0:
        return BETANET_E_MALFORMED
    n = varint_len_from_first(inp[0])
    if length < n:
        return BETANET_E_MALFORMED
    value[0] = varint_get(inp, n)
    consumed[0] = n
    return BETANET_OK


# ---- frame codec -------------------------------------------------------------------------

cdef inline bint has_stream_id(int t) noexcept nogil:
    return t == BETANET_HTX_STREAM or t == BETANET_HTX_WINDOW_UPDATE


cdef inline void make_nonce(const uint8_t *ns, uint64_t counter, uint8_t *nonce) noexcept nogil:
    cdef int i
    memcpy(nonce, ns, 12)
    for i in range(8):
        nonce[i] ^= <uint8_t>(counter >> (8 * i))


cdef inline size_t header_size(int t, uint64_t sid) noexcept nogil:
    return 4 + (varint_size(sid) if has_stream_id(t) else 0)


cdef size_t write_header(int t, uint64_t sid, size_t clen, uint8_t *out) noexcept nogil:
    out[0] = <uint8_t>(clen >> 16)
    out[1] = <uint8_t>(clen >> 8)
    out[2] = <uint8_t>clen
    out[3] = <uint8_t>t
    if not has_stream_id(t):
        return 4
    varint_put(sid, varint_size(sid), out + 4)
    return 4 + varint_size(sid)


# Seal header | prefix | data under (key, ns, counter) into `out` (header + plen + 16
# bytes). The plaintext is read where it lies (no copy into `out` first): without a prefix
# through libsodium's AEAD, with the 1-byte STREAM flags prefix through the same
# construction (RFC 8439 §2.8) built from libsodium's ChaCha20 and Poly1305, so the data
# path never copies the payload before encrypting it.
cdef size_t seal_into(const uint8_t *key, const uint8_t *ns, uint64_t counter, int t,
                      uint64_t sid, const uint8_t *prefix, size_t prefix_len,
                      const uint8_t *data, size_t data_len, uint8_t *out) noexcept nogil:
    cdef uint8_t nonce[12]
    cdef unsigned long long clen = 0
    cdef size_t plen = prefix_len + data_len
    cdef size_t h = write_header(t, sid, plen, out)
    make_nonce(ns, counter, nonce)
    if prefix_len == 0:
        crypto_aead_chacha20poly1305_ietf_encrypt(out + h, &clen, data, data_len, out, h, NULL,
                                                  nonce, key)
    else:
        seal_prefixed(key, nonce, out, h, prefix, prefix_len, data, data_len, out + h)
    return h + plen + HTX_TAG


cdef inline void poly_pad16(crypto_onetimeauth_poly1305_state *st, size_t n) noexcept nogil:
    cdef uint8_t zeros[16]
    if n & 15:
        memset(zeros, 0, 16)
        crypto_onetimeauth_poly1305_update(st, zeros, 16 - (n & 15))


# ChaCha20-Poly1305 IETF of (prefix | data) with AD, ciphertext and tag to c (prefix_len < 64).
cdef void seal_prefixed(const uint8_t *key, const uint8_t *nonce, const uint8_t *ad, size_t adlen,
                        const uint8_t *prefix, size_t prefix_len, const uint8_t *data,
                        size_t data_len, uint8_t *c) noexcept nogil:
    cdef crypto_onetimeauth_poly1305_state st
    cdef uint8_t block[64]
    cdef uint8_t lens[16]
    cdef size_t total = prefix_len + data_len, head, i
    # Block 0 of the keystream is the one-time Poly1305 key.
    crypto_stream_chacha20_ietf(block, 64, nonce, key)
    crypto_onetimeauth_poly1305_init(&st, block)
    # Keystream block 1 covers plaintext bytes 0..63: assemble them (prefix + start of data).
    head = total if total < 64 else 64
    memcpy(block, prefix, prefix_len)
    memcpy(block + prefix_len, data, head - prefix_len)
    crypto_stream_chacha20_ietf_xor_ic(c, block, head, nonce, 1, key)
    if total > 64:
        crypto_stream_chacha20_ietf_xor_ic(c + 64, data + (64 - prefix_len), total - 64, nonce, 2, key)
    crypto_onetimeauth_poly1305_update(&st, ad, adlen)
    poly_pad16(&st, adlen)
    crypto_onetimeauth_poly1305_update(&st, c, total)
    poly_pad16(&st, total)
    for i in range(8):
        lens[i] = <uint8_t>((<uint64_t>adlen) >> (8 * i))
        lens[8 + i] = <uint8_t>((<uint64_t>total) >> (8 * i))
    crypto_onetimeauth_poly1305_update(&st, lens, 16)
    crypto_onetimeauth_poly1305_final(&st, c + total)
    sodium_memzero(block, 64)
    sodium_memzero(&st, sizeof(st))


# Parse a header from p[0..avail). Returns 1 (complete: *t, *sid, *hlen, *clen set),
# 0 (need more bytes), or an error. The length limit is checked as soon as 3 bytes exist.
cdef int parse_header(const uint8_t *p, size_t avail, uint32_t max_frame, int *t,
                      uint64_t *sid, size_t *hlen, size_t *clen) noexcept nogil:
    cdef size_t n
    if avail < 3:
        return 0
    clen[0] = (<size_t>p[0] << 16) | (<size_t>p[1] << 8) | p[2]
    if clen[0] > max_frame:
        return BETANET_E_LIMIT
    if avail < 4:
        return 0
    t[0] = p[3]
    if t[0] > BETANET_HTX_WINDOW_UPDATE:
        return BETANET_E_PROTOCOL
    if not has_stream_id(t[0]):
        sid[0] = 0
        hlen[0] = 4
        return 1
    if avail < 5:
        return 0
    n = varint_len_from_first(p[4])
    if avail < 4 + n:
        return 0
    sid[0] = varint_get(p + 4, n)
    hlen[0] = 4 + n
    return 1


cdef int open_at(const uint8_t *key, const uint8_t *ns, uint64_t counter, const uint8_t *frame,
                 size_t hlen, size_t clen, uint8_t *out) noexcept nogil:
    cdef uint8_t nonce[12]
    cdef unsigned long long mlen = 0
    make_nonce(ns, counter, nonce)
    # libsodium verifies the tag before decrypting and writes nothing usable on failure.
    if crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, frame + hlen, clen + HTX_TAG,
                                                 frame, hlen, nonce, key) != 0:
        return BETANET_E_AUTH
    return BETANET_OK


cdef public int betanet_htx_frame_seal(const uint8_t *key, const uint8_t *ns, uint64_t counter,
                                       int type, uint64_t stream_id, const uint8_t *pt,
                                       size_t pt_len, uint8_t *out, size_t cap,
                                       size_t *out_len) noexcept nogil:
    if key == NULL or ns == NULL or out == NULL or out_len == NULL or (pt == NULL and pt_len):
        return BETANET_E_INVALID
    if type < 0 or type > BETANET_HTX_WINDOW_UPDATE or stream_id > HTX_VARINT_MAX:
        return BETANET_E_INVALID
    if stream_id and not has_stream_id(type):
        return BETANET_E_INVALID
    if pt_len > HTX_MAX_FRAME_LIMIT:
        return BETANET_E_INVALID
    if cap < header_size(type, stream_id) + pt_len + HTX_TAG:
        return BETANET_E_BUFFER_TOO_SMALL
    out_len[0] = seal_into(key, ns, counter, type, stream_id, NULL, 0, pt, pt_len, out)
    return BETANET_OK


cdef public int betanet_htx_frame_open(const uint8_t *key, const uint8_t *ns, uint64_t counter,
                                       const uint8_t *inp, size_t length, uint32_t max_frame,
                                       int *type, uint64_t *stream_id, uint8_t *out, size_t cap,
                                       size_t *pt_len, size_t *consumed) noexcept nogil:
    cdef int t = 0, rc
    cdef uint64_t sid = 0
    cdef size_t hlen = 0, clen = 0
    if (key == NULL or ns == NULL or inp == NULL or type == NULL or stream_id == NULL
            or pt_len == NULL or consumed == NULL or (out == NULL and cap)):
        return BETANET_E_INVALID
    if max_frame > HTX_MAX_FRAME_LIMIT:
        max_frame = HTX_MAX_FRAME_LIMIT
    rc = parse_header(inp, length, max_frame, &t, &sid, &hlen, &clen)
    if rc == 0:
        return BETANET_E_MALFORMED
    if rc < 0:
        return rc
    if length < hlen + clen + HTX_TAG:
        return BETANET_E_MALFORMED
    if cap < clen or (out == NULL and clen):
        return BETANET_E_BUFFER_TOO_SMALL
    rc = open_at(key, ns, counter, inp, hlen, clen, out)
    if rc < 0:
        return rc
    type[0] = t
    stream_id[0] = sid
    pt_len[0] = clen
    consumed[0] = hlen + clen + HTX_TAG
    return BETANET_OK


# ---- session -----------------------------------------------------------------------------

cdef void dir_set_key(htx_dir *d, const uint8_t *key, uint64_t now_ms) noexcept nogil:
    memcpy(d.key, key, 32)
    hkdf_sha256(NULL, 0, d.key, 32, "ns", 2, d.ns, 12)
    d.counter = 0
    d.bytes = 0
    d.key_start_ms = now_ms


# K' = HKDF(K, salt = handshake hash, "next"); the old key is overwritten in place.
cdef void dir_ratchet(htx_sess *s, htx_dir *d, uint64_t now_ms) noexcept nogil:
    hkdf_sha256(s.hash, 32, d.key, 32, "next", 4, d.key, 32)
    hkdf_sha256(NULL, 0, d.key, 32, "ns", 2, d.ns, 12)
    d.counter = 0
    d.bytes = 0
    d.key_start_ms = now_ms
    d.epoch += 1


cdef public int betanet_htx_session_new(int role, const uint8_t *k1, const uint8_t *k2,
                                        const uint8_t *handshake_hash,
                                        const betanet_htx_config_t *config, uint64_t now_ms,
                                        betanet_htx_session_t **out) noexcept nogil:
    cdef htx_sess *s
    cdef int rc
    cdef uint32_t max_frame = HTX_DEFAULT_MAX_FRAME
    cdef uint64_t rb = HTX_DEFAULT_REKEY_BYTES, rf = HTX_DEFAULT_REKEY_FRAMES
    cdef uint64_t rm = HTX_DEFAULT_REKEY_MS
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if k1 == NULL or k2 == NULL or handshake_hash == NULL:
        return BETANET_E_INVALID
    if role != BETANET_HTX_INITIATOR and role != BETANET_HTX_RESPONDER:
        return BETANET_E_INVALID
    rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    if config != NULL:
        if config.max_frame:
            max_frame = config.max_frame
        if config.rekey_bytes:
            rb = config.rekey_bytes
        if config.rekey_frames:
            rf = config.rekey_frames
        if config.rekey_ms:
            rm = config.rekey_ms
    if max_frame > HTX_MAX_FRAME_LIMIT or rf < 2:
        return BETANET_E_INVALID
    s = <htx_sess *>bnt_alloc(sizeof(htx_sess))
    if s == NULL:
        return BETANET_E_NOMEM
    s.buf_cap = 12 + <size_t>max_frame + HTX_TAG
    s.buf = <uint8_t *>bnt_alloc(s.buf_cap)
    if s.buf == NULL:
        bnt_free(s)
        return BETANET_E_NOMEM
    s.role = role
    s.max_frame = max_frame
    s.rekey_bytes = rb
    s.rekey_frames = rf
    s.rekey_ms = rm
    memcpy(s.hash, handshake_hash, 32)
    if role == BETANET_HTX_INITIATOR:
        dir_set_key(&s.snd, k1, now_ms)
        dir_set_key(&s.rcv, k2, now_ms)
    else:
        dir_set_key(&s.snd, k2, now_ms)
        dir_set_key(&s.rcv, k1, now_ms)
    out[0] = <betanet_htx_session_t *>s
    return BETANET_OK


cdef public void betanet_htx_session_free(betanet_htx_session_t *handle) noexcept nogil:
    cdef htx_sess *s = <htx_sess *>handle
    if s == NULL:
        return
    bnt_free_secret(s.buf, s.buf_cap)
    bnt_free_secret(s, sizeof(htx_sess))


cdef public size_t betanet_htx_session_max_frame(const betanet_htx_session_t *h) noexcept nogil:
    cdef const htx_sess *s = <const htx_sess *>h
    return s.max_frame if s != NULL else 0


cdef public size_t betanet_htx_session_pending(const betanet_htx_session_t *h) noexcept nogil:
    cdef const htx_sess *s = <const htx_sess *>h
    return s.buf_len if s != NULL else 0


cdef public int betanet_htx_session_stats(const betanet_htx_session_t *h,
                                          betanet_htx_stats_t *st) noexcept nogil:
    cdef const htx_sess *s = <const htx_sess *>h
    if s == NULL or st == NULL:
        return BETANET_E_INVALID
    st.send_counter = s.snd.counter
    st.recv_counter = s.rcv.counter
    st.send_bytes = s.snd.bytes
    st.recv_bytes = s.rcv.bytes
    st.send_epoch = s.snd.epoch
    st.recv_epoch = s.rcv.epoch
    st.frames_sent = s.snd.frames_total
    st.frames_received = s.rcv.frames_total
    return BETANET_OK


# Is a key update due before sealing the next frame? The KEY_UPDATE itself must still fit
# under the frame limit, so the update happens when one frame slot is left.
cdef inline bint rekey_due(const htx_sess *s, uint64_t now_ms) noexcept nogil:
    if s.snd.counter + 1 >= s.rekey_frames:
        return True
    if s.snd.bytes >= s.rekey_bytes:
        return True
    return now_ms > s.snd.key_start_ms and now_ms - s.snd.key_start_ms >= s.rekey_ms


# Write a KEY_UPDATE under the current send key, then switch to K'. Returns bytes written.
cdef size_t send_key_update(htx_sess *s, uint64_t now_ms, uint8_t *out) noexcept nogil:
    cdef size_t n = seal_into(s.snd.key, s.snd.ns, s.snd.counter, BETANET_HTX_KEY_UPDATE, 0,
                              NULL, 0, NULL, 0, out)
    s.snd.frames_total += 1
    dir_ratchet(s, &s.snd, now_ms)
    return n


cdef int seal_common(htx_sess *s, int t, uint64_t sid, const uint8_t *prefix,
                     size_t prefix_len, const uint8_t *data, size_t data_len, uint64_t now_ms,
                     uint8_t *out, size_t cap, size_t *out_len) noexcept nogil:
    cdef size_t plen, need, n = 0
    cdef bint update
    if s == NULL or out == NULL or out_len == NULL or (data == NULL and data_len):
        return BETANET_E_INVALID
    if t < 0 or t > BETANET_HTX_WINDOW_UPDATE or sid > HTX_VARINT_MAX:
        return BETANET_E_INVALID
    if sid and not has_stream_id(t):
        return BETANET_E_INVALID
    # Compare before adding: prefix_len + data_len would wrap for data_len near SIZE_MAX.
    if data_len > s.max_frame or prefix_len > s.max_frame - data_len:
        return BETANET_E_LIMIT
    plen = prefix_len + data_len
    if t == BETANET_HTX_KEY_UPDATE:
        if plen:
            return BETANET_E_INVALID
        if cap < 4 + HTX_TAG:
            return BETANET_E_BUFFER_TOO_SMALL
        if s.snd.counter == HTX_U64_MAX:
            return BETANET_E_LIMIT
        out_len[0] = send_key_update(s, now_ms, out)
        return BETANET_OK
    update = rekey_due(s, now_ms)
    need = header_size(t, sid) + plen + HTX_TAG + (4 + HTX_TAG if update else 0)
    if cap < need:
        return BETANET_E_BUFFER_TOO_SMALL
    # Never reuse a nonce: an exhausted counter is an error (only reachable when the
    # frame threshold is set to 2^64 - 1, i.e. disabled).
    if s.snd.counter >= HTX_U64_MAX - 1:
        return BETANET_E_LIMIT
    if update:
        n = send_key_update(s, now_ms, out)
    n += seal_into(s.snd.key, s.snd.ns, s.snd.counter, t, sid, prefix, prefix_len, data,
                   data_len, out + n)
    s.snd.counter += 1
    s.snd.bytes += plen
    s.snd.frames_total += 1
    out_len[0] = n
    return BETANET_OK


cdef public int betanet_htx_session_seal(betanet_htx_session_t *h, int type, uint64_t stream_id,
                                         const uint8_t *pt, size_t pt_len, uint64_t now_ms,
                                         uint8_t *out, size_t cap, size_t *out_len) noexcept nogil:
    return seal_common(<htx_sess *>h, type, stream_id, NULL, 0, pt, pt_len, now_ms, out, cap, out_len)


cdef public int betanet_htx_session_seal_stream(betanet_htx_session_t *h, uint64_t stream_id,
                                                uint8_t flags, const uint8_t *data, size_t length,
                                                uint64_t now_ms, uint8_t *out, size_t cap,
                                                size_t *out_len) noexcept nogil:
    if flags & ~0x03:
        return BETANET_E_INVALID
    return seal_common(<htx_sess *>h, BETANET_HTX_STREAM, stream_id, &flags, 1, data, length, now_ms, out,
                       cap, out_len)


# The plaintext of an authenticated frame must have its type's shape (docs/htx.md).
cdef int check_shape(int t, const uint8_t *p, size_t n) noexcept nogil:
    cdef size_t vlen
    if t == BETANET_HTX_STREAM:
        if n < 1 or (p[0] & ~0x03):
            return BETANET_E_MALFORMED
        if (p[0] & 0x02) and n != 3:
            return BETANET_E_MALFORMED
        return BETANET_OK
    if t == BETANET_HTX_PING:
        return BETANET_OK if n == 9 and (p[0] & ~0x01) == 0 else BETANET_E_MALFORMED
    if t == BETANET_HTX_CLOSE:
        return BETANET_OK if n >= 2 else BETANET_E_MALFORMED
    if t == BETANET_HTX_KEY_UPDATE:
        return BETANET_OK if n == 0 else BETANET_E_MALFORMED
    # WINDOW_UPDATE: exactly one varint
    if n < 1:
        return BETANET_E_MALFORMED
    vlen = varint_len_from_first(p[0])
    return BETANET_OK if vlen == n else BETANET_E_MALFORMED


# Open a complete frame at `frame`, deliver it, advance the receive state.
cdef int deliver(htx_sess *s, const uint8_t *frame, int t, uint64_t sid, size_t hlen,
                 size_t clen, uint64_t now_ms, betanet_htx_frame_t *f, uint8_t *out) noexcept nogil:
    cdef int rc
    if s.rcv.counter == HTX_U64_MAX:
        return BETANET_E_LIMIT
    rc = open_at(s.rcv.key, s.rcv.ns, s.rcv.counter, frame, hlen, clen, out)
    if rc < 0:
        return rc
    s.rcv.counter += 1
    s.rcv.bytes += clen
    s.rcv.frames_total += 1
    rc = check_shape(t, out, clen)
    if rc < 0:
        sodium_memzero(out, clen)
        return rc
    f.type = t
    f.stream_id = sid
    f.length = clen
    if t == BETANET_HTX_KEY_UPDATE:
        dir_ratchet(s, &s.rcv, now_ms)
    return 1


cdef public int betanet_htx_session_open(betanet_htx_session_t *h, const uint8_t *inp,
                                         size_t length, size_t *consumed,
                                         betanet_htx_frame_t *frame, uint8_t *out,
                                         size_t cap) noexcept nogil:
    cdef htx_sess *s = <htx_sess *>h
    cdef int t = 0, rc
    cdef uint64_t sid = 0
    cdef size_t hlen = 0, clen = 0, total, take, used = 0
    if s == NULL or consumed == NULL or frame == NULL or out == NULL or (inp == NULL and length):
        return BETANET_E_INVALID
    consumed[0] = 0
    if s.error:
        return s.error
    if cap < s.max_frame:
        return BETANET_E_BUFFER_TOO_SMALL
    if s.buf_len == 0:
        # Fast path: a whole frame at the start of the input is opened in place.
        rc = parse_header(inp, length, s.max_frame, &t, &sid, &hlen, &clen)
        if rc == 1 and length >= hlen + clen + HTX_TAG:
            rc = deliver(s, inp, t, sid, hlen, clen, 0, frame, out)
            if rc < 0:
                s.error = rc
                return rc
            consumed[0] = hlen + clen + HTX_TAG
            return 1
        if rc < 0:
            s.error = rc
            return rc
    # Slow path: gather the header byte by byte group, then the rest, into the buffer.
    while True:
        rc = parse_header(s.buf, s.buf_len, s.max_frame, &t, &sid, &hlen, &clen)
        if rc < 0:
            s.error = rc
            consumed[0] = used
            return rc
        total = s.buf_len + 1 if rc == 0 else hlen + clen + HTX_TAG
        if s.buf_len < total:
            if used == length:
                consumed[0] = used
                return 0
            take = total - s.buf_len
            if rc == 0:
                # Header incomplete (then buf_len < 12): take up to the 12-byte maximum
                # header; every frame is at least 20 bytes, so this stays inside it.
                take = 12 - s.buf_len
            if take > length - used:
                take = length - used
            memcpy(s.buf + s.buf_len, inp + used, take)
            s.buf_len += take
            used += take
            continue
        rc = deliver(s, s.buf, t, sid, hlen, clen, 0, frame, out)
        s.buf_len = 0
        consumed[0] = used
        if rc < 0:
            s.error = rc
        return rc
