# mesh.pyx — BitChat-compatible mesh packets (include/betanet/mesh.h, docs/mesh.md).
#
# The codec follows BitChat's BinaryProtocol.swift field for field: big-endian header,
# optional recipient / v2 route / compression preamble / signature by flag bits, PKCS#7
# block padding (MessagePadding.swift), and the decoder's tolerance of trailing bytes.
# Fragments are BitChat's type 0x20; parity fragments (type 0x60) are Betanet's: RS parity
# over the k data slices through the FEC core (declared from betanet.h, resolved by the
# linker: core modules cannot cimport each other).
#
# Module-level code never runs in libbetanet (DESIGN.md): only C constants and functions.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset, memcmp
from libc.limits cimport INT_MAX
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free
from betanet_mesh cimport *

cdef extern from "betanet.h" nogil:
    ctypedef struct betanet_fec_t:
        pass
    int betanet_fec_new(unsigned int k, unsigned int m, betanet_fec_t **out)
    void betanet_fec_free(betanet_fec_t *fec)
    int betanet_fec_encode(betanet_fec_t *fec, const uint8_t *const *data,
                           uint8_t *const *parity, size_t len)
    int betanet_fec_reconstruct(betanet_fec_t *fec, uint8_t *const *shards,
                                const uint8_t *present, size_t len)


# BitChat rejects compressed payloads that claim to inflate more than this (zip bombs).
cdef extern from *:
    """
    #define BNT_MESH_MAX_RATIO 50000u
    #define BNT_MESH_STACK_BYTES 2304
    """
    unsigned int BNT_MESH_MAX_RATIO
    int BNT_MESH_STACK_BYTES


cdef inline void put16(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v

cdef inline void put32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v

cdef inline uint32_t get16(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 8) | p[1]

cdef inline uint32_t get32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


# ---- codec ---------------------------------------------------------------------------

cdef inline int raw_bytes(const betanet_mesh_packet_t *p, size_t *out) noexcept nogil:
    # Unpadded encoded length of p, after checking it can be encoded.
    cdef size_t hdr, lf, pds, n
    if p == NULL or out == NULL or p.sender == NULL:
        return BETANET_E_INVALID
    if p.version != 1 and p.version != 2:
        return BETANET_E_INVALID
    if p.route_hops > 0 and (p.version != 2 or p.route == NULL or p.route_hops > 255):
        return BETANET_E_INVALID
    if p.payload_len > 0 and p.payload == NULL:
        return BETANET_E_INVALID
    if p.compressed and p.payload_len == 0:
        return BETANET_E_INVALID
    hdr = BETANET_MESH_V2_HEADER_BYTES if p.version == 2 else BETANET_MESH_V1_HEADER_BYTES
    lf = 4 if p.version == 2 else 2
    if p.payload_len > BETANET_MESH_MAX_PAYLOAD_BYTES:
        return BETANET_E_LIMIT
    pds = p.payload_len + (lf if p.compressed else 0)
    if pds > BETANET_MESH_MAX_PAYLOAD_BYTES or (p.version == 1 and pds > 0xFFFF):
        return BETANET_E_LIMIT
    if p.compressed and (p.original_size > BETANET_MESH_MAX_PAYLOAD_BYTES
                         or (p.version == 1 and p.original_size > 0xFFFF)):
        return BETANET_E_LIMIT
    n = hdr + 8 + pds
    if p.recipient != NULL:
        n += 8
    if p.route_hops > 0:
        n += 1 + 8 * p.route_hops
    if p.signature != NULL:
        n += 64
    out[0] = n
    return BETANET_OK


cdef inline size_t padded_size(size_t length) noexcept nogil:
    cdef size_t total = length + 16
    cdef size_t target = 0
    if total <= 256:
        target = 256
    elif total <= 512:
        target = 512
    elif total <= 1024:
        target = 1024
    elif total <= 2048:
        target = 2048
    else:
        return length
    if target - length > 255:     # the pad length must fit in one byte
        return length
    return target


cdef public size_t betanet_mesh_padded_bytes(size_t length) noexcept nogil:
    return padded_size(length)


cdef inline size_t unpadded_size(const uint8_t *buf, size_t length) noexcept nogil:
    cdef size_t padlen, i
    if buf == NULL or length == 0:
        return length
    padlen = buf[length - 1]
    if padlen == 0 or padlen > length:
        return length
    for i in range(length - padlen, length):
        if buf[i] != padlen:
            return length
    return length - padlen


cdef public size_t betanet_mesh_unpadded_bytes(const uint8_t *buf, size_t length) noexcept nogil:
    return unpadded_size(buf, length)


# The exported functions are thin shells over these internal ones, which the batch functions
# call too: an exported symbol is called through the PLT (it could be interposed), so a
# batch loop over it pays a call it cannot inline per packet.

cdef inline int packet_size(const betanet_mesh_packet_t *p, int pad, size_t *out_len) noexcept nogil:
    cdef size_t n = 0
    cdef int rc
    if out_len == NULL:
        return BETANET_E_INVALID
    rc = raw_bytes(p, &n)
    if rc != BETANET_OK:
        return rc
    out_len[0] = padded_size(n) if pad else n
    return BETANET_OK


cdef public int betanet_mesh_packet_bytes(const betanet_mesh_packet_t *p, int pad,
                                          size_t *out_len) noexcept nogil:
    return packet_size(p, pad, out_len)


cdef inline int encode_one(const betanet_mesh_packet_t *p, int pad, uint8_t *out, size_t cap,
                           size_t *out_len) noexcept nogil:
    cdef size_t n = 0, total, o, pds, lf, i
    cdef uint8_t flags = 0
    cdef int rc
    if out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    rc = raw_bytes(p, &n)
    if rc != BETANET_OK:
        return rc
    total = padded_size(n) if pad else n
    if cap < total:
        return BETANET_E_BUFFER_TOO_SMALL
    lf = 4 if p.version == 2 else 2
    pds = p.payload_len + (lf if p.compressed else 0)
    if p.recipient != NULL:
        flags |= BETANET_MESH_FLAG_HAS_RECIPIENT
    if p.signature != NULL:
        flags |= BETANET_MESH_FLAG_HAS_SIGNATURE
    if p.compressed:
        flags |= BETANET_MESH_FLAG_IS_COMPRESSED
    if p.route_hops > 0:
        flags |= BETANET_MESH_FLAG_HAS_ROUTE
    if p.rsr:
        flags |= BETANET_MESH_FLAG_IS_RSR
    out[0] = p.version
    out[1] = p.type
    out[2] = p.ttl
    for i in range(8):
        out[3 + i] = <uint8_t>(p.timestamp >> (56 - 8 * i))
    out[11] = flags
    if p.version == 2:
        put32(out + 12, <uint32_t>pds)
        o = 16
    else:
        put16(out + 12, <uint32_t>pds)
        o = 14
    memcpy(out + o, p.sender, 8)
    o += 8
    if p.recipient != NULL:
        memcpy(out + o, p.recipient, 8)
        o += 8
    if p.route_hops > 0:
        out[o] = <uint8_t>p.route_hops
        memcpy(out + o + 1, p.route, 8 * p.route_hops)
        o += 1 + 8 * p.route_hops
    if p.compressed:
        if p.version == 2:
            put32(out + o, p.original_size)
        else:
            put16(out + o, p.original_size)
        o += lf
    if p.payload_len > 0:
        memcpy(out + o, p.payload, p.payload_len)
        o += p.payload_len
    if p.signature != NULL:
        memcpy(out + o, p.signature, 64)
        o += 64
    if total > o:
        memset(out + o, <int>(total - o), total - o)
    out_len[0] = total
    return BETANET_OK


cdef public int betanet_mesh_encode(const betanet_mesh_packet_t *p, int pad, uint8_t *out,
                                    size_t cap, size_t *out_len) noexcept nogil:
    return encode_one(p, pad, out, cap, out_len)


cdef int decode_core(const uint8_t *inp, size_t length, betanet_mesh_view_t *v) noexcept nogil:
    cdef size_t o, hdr, lf, plen, csize, hops
    cdef uint32_t orig
    cdef uint8_t flags
    cdef int i
    if length < BETANET_MESH_V1_HEADER_BYTES + 8:
        return BETANET_E_MALFORMED
    if inp[0] != 1 and inp[0] != 2:
        return BETANET_E_MALFORMED
    hdr = BETANET_MESH_V2_HEADER_BYTES if inp[0] == 2 else BETANET_MESH_V1_HEADER_BYTES
    lf = 4 if inp[0] == 2 else 2
    if length < hdr + 8:
        return BETANET_E_MALFORMED
    # Every field is assigned below (no memset: a rep stos per view cost more than the rest
    # of the decode in batches).
    v.recipient_off = 0
    v.route_off = 0
    v.route_hops = 0
    v.original_size = 0
    v.signature_off = 0
    v.version = inp[0]
    v.type = inp[1]
    v.ttl = inp[2]
    v.timestamp = 0
    for i in range(8):
        v.timestamp = (v.timestamp << 8) | inp[3 + i]
    flags = inp[11]
    if v.version == 1:
        flags &= ~BETANET_MESH_FLAG_HAS_ROUTE     # v1 ignores the route bit
    v.flags = flags
    plen = get32(inp + 12) if v.version == 2 else get16(inp + 12)
    if plen > BETANET_MESH_MAX_PAYLOAD_BYTES:
        return BETANET_E_LIMIT
    o = hdr
    v.sender_off = o
    o += 8
    if flags & BETANET_MESH_FLAG_HAS_RECIPIENT:
        if length - o < 8:
            return BETANET_E_MALFORMED
        v.recipient_off = o
        o += 8
    if flags & BETANET_MESH_FLAG_HAS_ROUTE:
        if length - o < 1:
            return BETANET_E_MALFORMED
        hops = inp[o]
        o += 1
        if length - o < 8 * hops:
            return BETANET_E_MALFORMED
        if hops > 0:
            v.route_off = o
            v.route_hops = hops
        o += 8 * hops
    if flags & BETANET_MESH_FLAG_IS_COMPRESSED:
        if plen < lf or length - o < lf:
            return BETANET_E_MALFORMED
        orig = get32(inp + o) if v.version == 2 else get16(inp + o)
        o += lf
        if orig > BETANET_MESH_MAX_PAYLOAD_BYTES:
            return BETANET_E_LIMIT
        csize = plen - lf
        if csize == 0 or length - o < csize:
            return BETANET_E_MALFORMED
        if <uint64_t>orig > <uint64_t>csize * BNT_MESH_MAX_RATIO:
            return BETANET_E_MALFORMED
        v.original_size = orig
        v.payload_off = o
        v.payload_len = csize
        o += csize
    else:
        if length - o < plen:
            return BETANET_E_MALFORMED
        v.payload_off = o
        v.payload_len = plen
        o += plen
    if flags & BETANET_MESH_FLAG_HAS_SIGNATURE:
        if length - o < 64:
            return BETANET_E_MALFORMED
        v.signature_off = o
        o += 64
    v.packet_len = o
    return BETANET_OK


cdef inline int decode_one(const uint8_t *inp, size_t length, betanet_mesh_view_t *view) noexcept nogil:
    cdef int rc
    cdef size_t unpadded
    if inp == NULL or view == NULL:
        return BETANET_E_INVALID
    rc = decode_core(inp, length, view)
    if rc == BETANET_OK:
        return rc
    unpadded = unpadded_size(inp, length)
    if unpadded == length:
        memset(view, 0, sizeof(betanet_mesh_view_t))
        return rc
    rc = decode_core(inp, unpadded, view)
    if rc != BETANET_OK:
        memset(view, 0, sizeof(betanet_mesh_view_t))
    return rc


cdef public int betanet_mesh_decode(const uint8_t *inp, size_t length,
                                    betanet_mesh_view_t *view) noexcept nogil:
    return decode_one(inp, length, view)


cdef public int betanet_mesh_view_packet(const uint8_t *buf, const betanet_mesh_view_t *view,
                                         betanet_mesh_packet_t *p) noexcept nogil:
    if buf == NULL or view == NULL or p == NULL or view.sender_off == 0:
        return BETANET_E_INVALID
    memset(p, 0, sizeof(betanet_mesh_packet_t))
    p.version = view.version
    p.type = view.type
    p.ttl = view.ttl
    p.compressed = 1 if view.flags & BETANET_MESH_FLAG_IS_COMPRESSED else 0
    p.rsr = 1 if view.flags & BETANET_MESH_FLAG_IS_RSR else 0
    p.timestamp = view.timestamp
    p.sender = buf + view.sender_off
    if view.flags & BETANET_MESH_FLAG_HAS_RECIPIENT:
        p.recipient = buf + view.recipient_off
    if view.route_hops > 0:
        p.route = buf + view.route_off
        p.route_hops = view.route_hops
    p.payload = buf + view.payload_off
    p.payload_len = view.payload_len
    p.original_size = view.original_size
    if view.flags & BETANET_MESH_FLAG_HAS_SIGNATURE:
        p.signature = buf + view.signature_off
    return BETANET_OK


cdef inline void signing_copy(const betanet_mesh_packet_t *p, betanet_mesh_packet_t *q) noexcept nogil:
    memcpy(q, p, sizeof(betanet_mesh_packet_t))
    q.ttl = 0
    q.signature = NULL
    q.rsr = 0


cdef public int betanet_mesh_signing_input_bytes(const betanet_mesh_packet_t *p,
                                                 size_t *out_len) noexcept nogil:
    cdef betanet_mesh_packet_t q
    if p == NULL:
        return BETANET_E_INVALID
    signing_copy(p, &q)
    return packet_size(&q, 1, out_len)


cdef public int betanet_mesh_signing_input(const betanet_mesh_packet_t *p, uint8_t *out,
                                           size_t cap, size_t *out_len) noexcept nogil:
    cdef betanet_mesh_packet_t q
    if p == NULL:
        return BETANET_E_INVALID
    signing_copy(p, &q)
    return encode_one(&q, 1, out, cap, out_len)


cdef int with_signing_input(const betanet_mesh_packet_t *p, const uint8_t *key, uint8_t *sig,
                            int verify) noexcept nogil:
    # Build the signing input (on the stack when it fits a BLE-sized packet) and sign or
    # verify it.
    cdef uint8_t stack_buf[2304]
    cdef uint8_t *buf = stack_buf
    cdef size_t n = 0, written = 0
    cdef int rc
    rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    rc = betanet_mesh_signing_input_bytes(p, &n)
    if rc != BETANET_OK:
        return rc
    if n > <size_t>BNT_MESH_STACK_BYTES:
        buf = <uint8_t *>bnt_alloc(n)
        if buf == NULL:
            return BETANET_E_NOMEM
    rc = betanet_mesh_signing_input(p, buf, n, &written)
    if rc == BETANET_OK:
        if verify:
            if crypto_sign_verify_detached(p.signature, buf, written, key) != 0:
                rc = BETANET_E_AUTH
        elif crypto_sign_detached(sig, NULL, buf, written, key) != 0:
            rc = BETANET_E_CRYPTO
    if buf != stack_buf:
        bnt_free(buf)
    return rc


cdef public int betanet_mesh_sign(const betanet_mesh_packet_t *p, const uint8_t *secret_key,
                                  uint8_t *sig) noexcept nogil:
    if p == NULL or secret_key == NULL or sig == NULL:
        return BETANET_E_INVALID
    return with_signing_input(p, secret_key, sig, 0)


cdef public int betanet_mesh_verify(const betanet_mesh_packet_t *p,
                                    const uint8_t *public_key) noexcept nogil:
    if p == NULL or public_key == NULL or p.signature == NULL:
        return BETANET_E_INVALID
    return with_signing_input(p, public_key, NULL, 1)


cdef inline int packet_id(const uint8_t *buf, const betanet_mesh_view_t *view, uint8_t *id) noexcept nogil:
    cdef crypto_hash_sha256_state st
    cdef uint8_t head[17]
    cdef uint8_t digest[32]
    cdef int i
    if buf == NULL or view == NULL or id == NULL or view.sender_off == 0:
        return BETANET_E_INVALID
    memcpy(head, buf + view.sender_off, 8)
    for i in range(8):
        head[8 + i] = <uint8_t>(view.timestamp >> (56 - 8 * i))
    head[16] = view.type
    crypto_hash_sha256_init(&st)
    crypto_hash_sha256_update(&st, head, 17)
    crypto_hash_sha256_update(&st, buf + view.payload_off, view.payload_len)
    crypto_hash_sha256_final(&st, digest)
    memcpy(id, digest, 16)
    return BETANET_OK


cdef public int betanet_mesh_packet_id(const uint8_t *buf, const betanet_mesh_view_t *view,
                                       uint8_t *id) noexcept nogil:
    return packet_id(buf, view, id)


# ---- batches ---------------------------------------------------------------------------
# One call per batch for bulk users: the per-packet functions above in a C loop over
# columns the caller laid out, so a Python caller pays its interpreter once per batch.

cdef public int betanet_mesh_encode_batch_bytes(const betanet_mesh_packet_t *packets, size_t n,
                                                int pad, size_t *out_len, size_t *done) noexcept nogil:
    cdef size_t i, total = 0, one = 0
    cdef int rc
    if out_len == NULL or done == NULL or (packets == NULL and n > 0):
        return BETANET_E_INVALID
    done[0] = 0
    out_len[0] = 0
    for i in range(n):
        rc = packet_size(&packets[i], pad, &one)
        if rc != BETANET_OK:
            done[0] = i
            return rc
        if one > <size_t>-1 - total:
            done[0] = i
            return BETANET_E_LIMIT
        total += one
    out_len[0] = total
    done[0] = n
    return BETANET_OK


cdef public int betanet_mesh_encode_batch(const betanet_mesh_packet_t *packets, size_t n, int pad,
                                          uint8_t *out, size_t cap, size_t *offsets,
                                          size_t *done) noexcept nogil:
    cdef size_t i, o = 0, one = 0
    cdef int rc
    if done == NULL:
        return BETANET_E_INVALID
    done[0] = 0
    if offsets == NULL or (n > 0 and (packets == NULL or out == NULL)):
        return BETANET_E_INVALID
    offsets[0] = 0
    for i in range(n):
        # encode() checks cap - o against the packet's size before writing anything
        rc = encode_one(&packets[i], pad, out + o, cap - o, &one)
        if rc != BETANET_OK:
            done[0] = i
            return rc
        o += one
        offsets[i + 1] = o
    done[0] = n
    return BETANET_OK


cdef inline void view_shift(betanet_mesh_view_t *v, size_t base) noexcept nogil:
    # Offsets of a frame decoded at in + base, made relative to in (absent fields stay 0).
    v.sender_off += base
    if v.recipient_off:
        v.recipient_off += base
    if v.route_off:
        v.route_off += base
    if v.payload_off:
        v.payload_off += base
    if v.signature_off:
        v.signature_off += base


cdef public int betanet_mesh_decode_batch(const uint8_t *inp, size_t length, const size_t *offsets,
                                          size_t n, betanet_mesh_view_t *views,
                                          int *status) noexcept nogil:
    cdef size_t i
    cdef int ok = 0, rc
    if n == 0:
        return 0
    if inp == NULL or offsets == NULL or views == NULL or status == NULL:
        return BETANET_E_INVALID
    if n > <size_t>INT_MAX:
        return BETANET_E_LIMIT
    for i in range(n):           # validate every offset before touching a frame
        if offsets[i] > offsets[i + 1]:
            return BETANET_E_INVALID
    if offsets[n] > length:
        return BETANET_E_INVALID
    for i in range(n):
        rc = decode_one(inp + offsets[i], offsets[i + 1] - offsets[i], &views[i])
        status[i] = rc
        if rc == BETANET_OK:
            view_shift(&views[i], offsets[i])
            ok += 1
    return ok


cdef public int betanet_mesh_packet_id_batch(const uint8_t *buf, const betanet_mesh_view_t *views,
                                             size_t n, uint8_t *ids) noexcept nogil:
    cdef size_t i
    cdef int done = 0
    if n == 0:
        return 0
    if buf == NULL or views == NULL or ids == NULL:
        return BETANET_E_INVALID
    if n > <size_t>INT_MAX:
        return BETANET_E_LIMIT
    for i in range(n):
        if packet_id(buf, &views[i], ids + 16 * i) == BETANET_OK:
            done += 1
        else:
            memset(ids + 16 * i, 0, 16)
    return done


# ---- fragments -------------------------------------------------------------------------

cdef public int betanet_mesh_fragment_parse(const uint8_t *payload, size_t length, int is_parity,
                                            betanet_mesh_fragment_t *frag) noexcept nogil:
    cdef size_t hdr
    cdef uint64_t chunk
    if payload == NULL or frag == NULL:
        return BETANET_E_INVALID
    memset(frag, 0, sizeof(betanet_mesh_fragment_t))
    hdr = BETANET_MESH_PARITY_HEADER_BYTES if is_parity else BETANET_MESH_FRAGMENT_HEADER_BYTES
    if length <= hdr:
        return BETANET_E_MALFORMED
    memcpy(frag.id, payload, 8)
    if is_parity:
        frag.total = <uint16_t>get16(payload + 8)
        frag.parity = payload[10]
        frag.index = payload[11]
        frag.original_len = get32(payload + 12)
        frag.original_type = payload[16]
        if (frag.total == 0 or frag.parity == 0 or frag.index >= frag.parity
                or <unsigned int>frag.total + frag.parity > 255):
            return BETANET_E_MALFORMED
        # The slices cover the original: (k-1)*chunk < len <= k*chunk. A chunk is clamped to
        # 2^32 (> any original_len) so k * chunk cannot wrap and the comparisons still hold.
        chunk = length - hdr
        if chunk > 0x100000000ULL:
            chunk = 0x100000000ULL
        if (frag.original_len == 0
                or frag.original_len > frag.total * chunk
                or frag.original_len <= <uint64_t>(frag.total - 1) * chunk):
            return BETANET_E_MALFORMED
    else:
        frag.index = <uint16_t>get16(payload + 8)
        frag.total = <uint16_t>get16(payload + 10)
        frag.original_type = payload[12]
        if frag.total == 0 or frag.total > BETANET_MESH_MAX_FRAGMENTS or frag.index >= frag.total:
            return BETANET_E_MALFORMED
    frag.data_off = hdr
    frag.data_len = length - hdr
    return BETANET_OK


cdef public size_t betanet_mesh_fragment_count(size_t length, size_t chunk) noexcept nogil:
    if chunk == 0:
        return 0
    return length // chunk + (1 if length % chunk else 0)


cdef public int betanet_mesh_fragment_payload(const uint8_t *enc, size_t enc_len, const uint8_t *id,
                                              size_t chunk, uint8_t original_type, unsigned int index,
                                              uint8_t *out, size_t cap, size_t *out_len) noexcept nogil:
    cdef size_t total, off, n
    if enc == NULL or id == NULL or out == NULL or out_len == NULL or chunk == 0:
        return BETANET_E_INVALID
    total = betanet_mesh_fragment_count(enc_len, chunk)
    if total == 0 or total > BETANET_MESH_MAX_FRAGMENTS or index >= total:
        return BETANET_E_INVALID
    off = index * chunk
    n = enc_len - off
    if n > chunk:
        n = chunk
    if cap < BETANET_MESH_FRAGMENT_HEADER_BYTES or cap - BETANET_MESH_FRAGMENT_HEADER_BYTES < n:
        return BETANET_E_BUFFER_TOO_SMALL     # (13 + n would wrap for a hostile enc_len)
    memcpy(out, id, 8)
    put16(out + 8, index)
    put16(out + 10, <uint32_t>total)
    out[12] = original_type
    memcpy(out + 13, enc + off, n)
    out_len[0] = BETANET_MESH_FRAGMENT_HEADER_BYTES + n
    return BETANET_OK


cdef public int betanet_mesh_parity_payloads(const uint8_t *enc, size_t enc_len, const uint8_t *id,
                                             size_t chunk, uint8_t original_type, unsigned int m,
                                             uint8_t *const *out) noexcept nogil:
    cdef size_t k, i, last
    cdef const uint8_t *data[255]
    cdef uint8_t *parity[255]
    cdef uint8_t *tail
    cdef betanet_fec_t *fec = NULL
    cdef int rc
    if enc == NULL or id == NULL or out == NULL or chunk == 0 or m == 0:
        return BETANET_E_INVALID
    k = betanet_mesh_fragment_count(enc_len, chunk)
    if k == 0 or k + m > 255 or enc_len > <size_t>0xFFFFFFFFu:
        return BETANET_E_INVALID
    for i in range(m):
        if out[i] == NULL:
            return BETANET_E_INVALID
    tail = <uint8_t *>bnt_alloc(chunk)
    if tail == NULL:
        return BETANET_E_NOMEM
    last = enc_len - (k - 1) * chunk
    memset(tail, 0, chunk)
    memcpy(tail, enc + (k - 1) * chunk, last)
    for i in range(k - 1):
        data[i] = enc + i * chunk
    data[k - 1] = tail
    for i in range(m):
        parity[i] = out[i] + BETANET_MESH_PARITY_HEADER_BYTES
    rc = betanet_fec_new(<unsigned int>k, m, &fec)
    if rc == BETANET_OK:
        rc = betanet_fec_encode(fec, data, parity, chunk)
        betanet_fec_free(fec)
    bnt_free(tail)
    if rc != BETANET_OK:
        return rc
    for i in range(m):
        memcpy(out[i], id, 8)
        put16(out[i] + 8, <uint32_t>k)
        out[i][10] = <uint8_t>m
        out[i][11] = <uint8_t>i
        put32(out[i] + 12, <uint32_t>enc_len)
        out[i][16] = original_type
    return BETANET_OK


# ---- reassembler -----------------------------------------------------------------------

cdef struct assembly:
    uint8_t used
    uint8_t key[16]           # sender || fragment id
    uint64_t started
    uint32_t total            # k data fragments
    uint32_t parity           # m, 0 until a parity fragment arrives
    uint32_t slots            # total + 255: data slots then parity slots
    uint8_t original_type
    uint32_t original_len     # 0 until known (parity header or complete data)
    size_t chunk              # 0 until known
    size_t last_len           # length of data fragment total-1, 0 until seen
    uint32_t have_data
    uint32_t have_parity
    size_t bytes              # fragment bytes + tables
    uint8_t **pieces
    uint32_t *lens

cdef struct reasm_state:
    uint32_t max_assemblies
    size_t max_bytes
    uint64_t timeout_ms
    betanet_mesh_reasm_stats_t stats
    assembly *table


cdef void asm_drop(reasm_state *r, assembly *a) noexcept nogil:
    cdef uint32_t i
    if not a.used:
        return
    for i in range(a.slots):
        if a.pieces[i] != NULL:
            bnt_free(a.pieces[i])
    bnt_free(a.pieces)
    bnt_free(a.lens)
    r.stats.in_flight -= 1
    r.stats.bytes_held -= a.bytes
    memset(a, 0, sizeof(assembly))


cdef public int betanet_mesh_reasm_new(unsigned int max_assemblies, size_t max_bytes,
                                       uint64_t timeout_ms, betanet_mesh_reasm_t **out) noexcept nogil:
    cdef reasm_state *r
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if max_assemblies < 1 or max_assemblies > 65536 or max_bytes < 1:
        return BETANET_E_INVALID
    rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    r = <reasm_state *>bnt_alloc(sizeof(reasm_state))
    if r == NULL:
        return BETANET_E_NOMEM
    memset(r, 0, sizeof(reasm_state))
    r.table = <assembly *>bnt_alloc(sizeof(assembly) * max_assemblies)
    if r.table == NULL:
        bnt_free(r)
        return BETANET_E_NOMEM
    memset(r.table, 0, sizeof(assembly) * max_assemblies)
    r.max_assemblies = max_assemblies
    r.max_bytes = max_bytes
    r.timeout_ms = timeout_ms
    out[0] = <betanet_mesh_reasm_t *>r
    return BETANET_OK


cdef public void betanet_mesh_reasm_free(betanet_mesh_reasm_t *handle) noexcept nogil:
    cdef reasm_state *r = <reasm_state *>handle
    cdef uint32_t i
    if r == NULL:
        return
    for i in range(r.max_assemblies):
        asm_drop(r, &r.table[i])
    bnt_free(r.table)
    bnt_free(r)


cdef public int betanet_mesh_reasm_expire(betanet_mesh_reasm_t *handle, uint64_t now_ms) noexcept nogil:
    cdef reasm_state *r = <reasm_state *>handle
    cdef uint32_t i
    cdef int n = 0
    if r == NULL:
        return BETANET_E_INVALID
    for i in range(r.max_assemblies):
        if r.table[i].used and (now_ms < r.table[i].started
                                or now_ms - r.table[i].started > r.timeout_ms):
            asm_drop(r, &r.table[i])
            r.stats.expired += 1
            n += 1
    return n


cdef public int betanet_mesh_reasm_stats(const betanet_mesh_reasm_t *handle,
                                         betanet_mesh_reasm_stats_t *stats) noexcept nogil:
    cdef const reasm_state *r = <const reasm_state *>handle
    if r == NULL or stats == NULL:
        return BETANET_E_INVALID
    memcpy(stats, &r.stats, sizeof(betanet_mesh_reasm_stats_t))
    return BETANET_OK


cdef assembly *asm_find(reasm_state *r, const uint8_t *key) noexcept nogil:
    cdef uint32_t i
    for i in range(r.max_assemblies):
        if r.table[i].used and memcmp(r.table[i].key, key, 16) == 0:
            return &r.table[i]
    return NULL


cdef int asm_start(reasm_state *r, const uint8_t *key, const betanet_mesh_fragment_t *f,
                   uint64_t now_ms, assembly **out) noexcept nogil:
    cdef uint32_t i, free_i = r.max_assemblies, oldest = 0
    cdef size_t table_bytes
    cdef assembly *a
    for i in range(r.max_assemblies):
        if not r.table[i].used:
            free_i = i
            break
        if r.table[i].started < r.table[oldest].started:
            oldest = i
    if free_i == r.max_assemblies:        # full: evict the oldest (BitChat does the same)
        asm_drop(r, &r.table[oldest])
        r.stats.evicted += 1
        free_i = oldest
    a = &r.table[free_i]
    table_bytes = (<size_t>f.total + 255) * (sizeof(uint8_t *) + sizeof(uint32_t))
    if table_bytes > r.max_bytes:
        r.stats.oversized += 1
        return BETANET_E_LIMIT
    a.pieces = <uint8_t **>bnt_alloc((<size_t>f.total + 255) * sizeof(uint8_t *))
    a.lens = <uint32_t *>bnt_alloc((<size_t>f.total + 255) * sizeof(uint32_t))
    if a.pieces == NULL or a.lens == NULL:
        bnt_free(a.pieces)
        bnt_free(a.lens)
        a.pieces = NULL
        a.lens = NULL
        return BETANET_E_NOMEM
    memset(a.pieces, 0, (<size_t>f.total + 255) * sizeof(uint8_t *))
    memset(a.lens, 0, (<size_t>f.total + 255) * sizeof(uint32_t))
    a.used = 1
    memcpy(a.key, key, 16)
    a.started = now_ms
    a.total = f.total
    a.slots = f.total + 255
    a.original_type = f.original_type
    a.bytes = table_bytes
    r.stats.in_flight += 1
    r.stats.bytes_held += table_bytes
    out[0] = a
    return BETANET_OK


cdef int asm_check(assembly *a, const betanet_mesh_fragment_t *f, int is_parity) noexcept nogil:
    # Consistency of a new fragment with what the assembly already knows.
    cdef size_t chunk = a.chunk
    cdef uint64_t implied
    if f.total != a.total or f.original_type != a.original_type:
        return BETANET_E_PROTOCOL
    if is_parity:
        if a.parity != 0 and f.parity != a.parity:
            return BETANET_E_PROTOCOL
        if a.original_len != 0 and f.original_len != a.original_len:
            return BETANET_E_PROTOCOL
        if chunk != 0 and f.data_len != chunk:
            return BETANET_E_PROTOCOL
        chunk = f.data_len
        if a.last_len != 0 and <uint64_t>(a.total - 1) * chunk + a.last_len != f.original_len:
            return BETANET_E_PROTOCOL
    elif f.index + 1 < f.total:
        if chunk != 0 and f.data_len != chunk:
            return BETANET_E_PROTOCOL
        chunk = f.data_len
        if a.last_len > chunk:
            return BETANET_E_PROTOCOL
        if a.last_len != 0 and a.original_len != 0 and \
                <uint64_t>(a.total - 1) * chunk + a.last_len != a.original_len:
            return BETANET_E_PROTOCOL
    else:
        if chunk != 0 and f.data_len > chunk:
            return BETANET_E_PROTOCOL
        if chunk != 0 and a.original_len != 0:
            implied = <uint64_t>(a.total - 1) * chunk + f.data_len
            if implied != a.original_len:
                return BETANET_E_PROTOCOL
    return BETANET_OK


cdef int asm_finish(reasm_state *r, assembly *a, uint8_t *out, size_t cap,
                    size_t *out_len) noexcept nogil:
    # 1 and the original in out when complete; 0 when more fragments are needed.
    cdef size_t need, i, o = 0, n, chunk = a.chunk
    cdef uint8_t *work
    cdef uint8_t *shards[255]
    cdef uint8_t present[255]
    cdef betanet_fec_t *fec = NULL
    cdef int rc
    if a.have_data == a.total:
        need = 0
        for i in range(a.total):
            need += a.lens[i]
        out_len[0] = need
        if cap < need or (need > 0 and out == NULL):
            return BETANET_E_BUFFER_TOO_SMALL
        for i in range(a.total):
            memcpy(out + o, a.pieces[i], a.lens[i])
            o += a.lens[i]
        r.stats.completed += 1
        asm_drop(r, a)
        return 1
    if a.parity == 0 or a.have_data + a.have_parity < a.total or chunk == 0 or a.original_len == 0:
        return 0
    need = a.original_len
    out_len[0] = need
    if cap < need or out == NULL:
        return BETANET_E_BUFFER_TOO_SMALL
    n = a.total + a.parity
    work = <uint8_t *>bnt_alloc(n * chunk)
    if work == NULL:
        return BETANET_E_NOMEM
    memset(work, 0, n * chunk)
    for i in range(n):
        shards[i] = work + i * chunk
        if i < a.total:
            present[i] = 1 if a.pieces[i] != NULL else 0
            if present[i]:
                memcpy(shards[i], a.pieces[i], a.lens[i])
        else:
            present[i] = 1 if a.pieces[a.total + (i - a.total)] != NULL else 0
            if present[i]:
                memcpy(shards[i], a.pieces[a.total + (i - a.total)], chunk)
    rc = betanet_fec_new(a.total, a.parity, &fec)
    if rc == BETANET_OK:
        rc = betanet_fec_reconstruct(fec, shards, present, chunk)
        betanet_fec_free(fec)
    if rc == BETANET_OK:
        memcpy(out, work, need)
        r.stats.completed += 1
        r.stats.recovered += 1
        asm_drop(r, a)
        rc = 1
    bnt_free(work)
    return rc


cdef public int betanet_mesh_reasm_add(betanet_mesh_reasm_t *handle, const uint8_t *sender,
                                       int is_parity, const uint8_t *payload, size_t length,
                                       uint64_t now_ms, uint8_t *out, size_t cap,
                                       size_t *out_len) noexcept nogil:
    cdef reasm_state *r = <reasm_state *>handle
    cdef betanet_mesh_fragment_t f
    cdef uint8_t key[16]
    cdef assembly *a
    cdef uint32_t slot
    cdef uint8_t *piece
    cdef int rc
    if r == NULL or sender == NULL or payload == NULL or out_len == NULL:
        return BETANET_E_INVALID
    out_len[0] = 0
    rc = betanet_mesh_fragment_parse(payload, length, is_parity, &f)
    if rc != BETANET_OK:
        r.stats.malformed += 1
        return rc
    betanet_mesh_reasm_expire(handle, now_ms)
    memcpy(key, sender, 8)
    memcpy(key + 8, f.id, 8)
    a = asm_find(r, key)
    if a == NULL:
        rc = asm_start(r, key, &f, now_ms, &a)
        if rc != BETANET_OK:
            return rc
    rc = asm_check(a, &f, is_parity)
    if rc != BETANET_OK:
        r.stats.inconsistent += 1
        asm_drop(r, a)
        return rc
    slot = (a.total + f.index) if is_parity else f.index
    if a.pieces[slot] != NULL:                    # duplicate: must be identical
        if a.lens[slot] != f.data_len or memcmp(a.pieces[slot], payload + f.data_off, f.data_len) != 0:
            r.stats.inconsistent += 1
            asm_drop(r, a)
            return BETANET_E_PROTOCOL
        return asm_finish(r, a, out, cap, out_len)
    if f.data_len > r.max_bytes - a.bytes:        # a.bytes <= max_bytes; the sum could wrap
        r.stats.oversized += 1
        asm_drop(r, a)
        return BETANET_E_LIMIT
    piece = <uint8_t *>bnt_alloc(f.data_len)
    if piece == NULL:
        return BETANET_E_NOMEM
    memcpy(piece, payload + f.data_off, f.data_len)
    a.pieces[slot] = piece
    a.lens[slot] = <uint32_t>f.data_len
    a.bytes += f.data_len
    r.stats.bytes_held += f.data_len
    if is_parity:
        a.have_parity += 1
        a.parity = f.parity
        a.original_len = f.original_len
        a.chunk = f.data_len
    else:
        a.have_data += 1
        if f.index + 1 < f.total:
            a.chunk = f.data_len
        else:
            a.last_len = f.data_len
    return asm_finish(r, a, out, cap, out_len)


# ---- de-duplication --------------------------------------------------------------------

cdef struct dedup_state:
    uint32_t capacity
    uint32_t count            # entries in the current generation
    uint64_t nbits
    uint8_t key[16]
    uint64_t *cur
    uint64_t *old


cdef public int betanet_mesh_dedup_new(uint32_t capacity, betanet_mesh_dedup_t **out) noexcept nogil:
    cdef dedup_state *d
    cdef size_t words
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if capacity == 0 or capacity > (1u << 24):
        return BETANET_E_INVALID
    rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    d = <dedup_state *>bnt_alloc(sizeof(dedup_state))
    if d == NULL:
        return BETANET_E_NOMEM
    d.capacity = capacity
    d.count = 0
    d.nbits = <uint64_t>capacity * BETANET_MESH_DEDUP_BITS_PER_ENTRY
    words = <size_t>((d.nbits + 63) // 64)
    d.cur = <uint64_t *>bnt_alloc(words * 8)
    d.old = <uint64_t *>bnt_alloc(words * 8)
    if d.cur == NULL or d.old == NULL:
        bnt_free(d.cur)
        bnt_free(d.old)
        bnt_free(d)
        return BETANET_E_NOMEM
    memset(d.cur, 0, words * 8)
    memset(d.old, 0, words * 8)
    # A secret key: nobody can craft identities that collide in our filter.
    randombytes_buf(d.key, 16)
    out[0] = <betanet_mesh_dedup_t *>d
    return BETANET_OK


cdef public void betanet_mesh_dedup_free(betanet_mesh_dedup_t *handle) noexcept nogil:
    cdef dedup_state *d = <dedup_state *>handle
    if d == NULL:
        return
    bnt_free(d.cur)
    bnt_free(d.old)
    bnt_free(d)


cdef inline uint64_t load64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(8):
        v |= (<uint64_t>p[i]) << (8 * i)
    return v


cdef public int betanet_mesh_dedup_check(betanet_mesh_dedup_t *handle, const uint8_t *id) noexcept nogil:
    cdef dedup_state *d = <dedup_state *>handle
    cdef uint8_t h[16]
    cdef uint64_t h1, h2, bit
    cdef uint64_t *tmp
    cdef int i, in_cur = 1, in_old = 1
    if d == NULL or id == NULL:
        return BETANET_E_INVALID
    crypto_shorthash_siphashx24(h, id, 16, d.key)
    h1 = load64(h)
    h2 = load64(h + 8) | 1
    for i in range(BETANET_MESH_DEDUP_PROBES):
        bit = (h1 + <uint64_t>i * h2) % d.nbits
        if not (d.cur[bit >> 6] >> (bit & 63)) & 1:
            in_cur = 0
        if not (d.old[bit >> 6] >> (bit & 63)) & 1:
            in_old = 0
    if in_cur or in_old:
        return 1
    for i in range(BETANET_MESH_DEDUP_PROBES):
        bit = (h1 + <uint64_t>i * h2) % d.nbits
        d.cur[bit >> 6] |= (<uint64_t>1) << (bit & 63)
    d.count += 1
    if d.count >= d.capacity:                 # rotate: forget the older generation
        tmp = d.old
        d.old = d.cur
        d.cur = tmp
        memset(d.cur, 0, <size_t>((d.nbits + 63) // 64) * 8)
        d.count = 0
    return 0


cdef inline bint all_zero(const uint8_t *p, size_t n) noexcept nogil:
    cdef size_t i
    cdef uint8_t acc = 0
    for i in range(n):
        acc |= p[i]
    return acc == 0


cdef public int betanet_mesh_dedup_check_batch(betanet_mesh_dedup_t *handle, const uint8_t *ids,
                                               size_t n, uint8_t *seen) noexcept nogil:
    cdef size_t i
    cdef int fresh = 0
    if handle == NULL:
        return BETANET_E_INVALID
    if n == 0:
        return 0
    if ids == NULL or seen == NULL:
        return BETANET_E_INVALID
    if n > <size_t>INT_MAX:
        return BETANET_E_LIMIT
    for i in range(n):
        if all_zero(ids + 16 * i, 16):       # a frame that did not decode: nothing to remember
            seen[i] = 1
        elif betanet_mesh_dedup_check(handle, ids + 16 * i) == 1:
            seen[i] = 1
        else:
            seen[i] = 0
            fresh += 1
    return fresh
