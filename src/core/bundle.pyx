# bundle.pyx — BPv7 bundles (RFC 9171): zero-copy parser, encoder, CRCs, unprocessable-block
# policy, fragmentation and reassembly, bundle ids, status reports (include/betanet/bundle.h).
#
# The parser reads hostile input: every length is compared with what remains before it is
# used, nothing is allocated, and the cost is bounded by the caller's limits. Only the
# shortest (deterministic, RFC 8949 §4.2.1) CBOR heads are accepted, so a parsed bundle
# re-encodes to the same bytes. docs/dtn.md pins the choices the RFC leaves open.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memcmp, memset, memmove
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free, bnt_cpu
from betanet_bundle cimport *

cdef extern from "bundle_crc.h" nogil:
    uint16_t bnt_crc16_x25_update(uint16_t crc, const uint8_t *p, size_t n)
    uint32_t bnt_crc32c_portable(uint32_t crc, const uint8_t *p, size_t n)
    uint32_t bnt_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n)
    int BNT_CRC_HAVE_SSE42

# Wide constants as C literals (Cython would make Python ints of them).
cdef extern from *:
    """
    #define BNT_U32_ONES 0xFFFFFFFFu
    #define BNT_U32_LIMIT 0x100000000ull
    #define SIZE_QUARTER (SIZE_MAX / 4)
    """
    uint32_t BNT_U32_ONES
    uint64_t BNT_U32_LIMIT
    size_t SIZE_QUARTER

# The reassembler's state (opaque to hosts).
cdef extern from *:
    """
    struct betanet_bundle_reasm {
        uint64_t total;          /* ADU length */
        size_t max_ranges, nranges;
        uint64_t *ranges;        /* sorted disjoint [start, end) pairs received */
        uint8_t *adu;
        uint8_t *primary;        /* copy of the primary block of the first fragment added */
        size_t primary_cap;
        betanet_bundle_primary_t pview; /* its view, offsets relative to `primary` */
        uint8_t *head;           /* extension blocks of the fragment at offset 0 */
        size_t head_len;
        uint64_t payload_flags;
        uint32_t payload_crc;
        int have_first, have_head;
        uint8_t adu_id[48];
    };
    """
    ctypedef struct bnt_reasm "struct betanet_bundle_reasm":
        uint64_t total
        size_t max_ranges
        size_t nranges
        uint64_t *ranges
        uint8_t *adu
        uint8_t *primary
        size_t primary_cap
        betanet_bundle_primary_t pview
        uint8_t *head
        size_t head_len
        uint64_t payload_flags
        uint32_t payload_crc
        int have_first
        int have_head
        uint8_t adu_id[48]


# ---- CRC ---------------------------------------------------------------------------------

cdef inline uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n) noexcept nogil:
    if BNT_CRC_HAVE_SSE42 and (bnt_cpu() & BETANET_CPU_SSE42):
        return bnt_crc32c_sse42(crc, p, n)
    return bnt_crc32c_portable(crc, p, n)


cdef inline size_t crc_len(uint32_t crc_type) noexcept nogil:
    if crc_type == BETANET_BUNDLE_CRC_16:
        return 2
    if crc_type == BETANET_BUNDLE_CRC_32C:
        return 4
    return 0


cdef uint32_t block_crc(uint32_t crc_type, const uint8_t *p, size_t n, size_t zeros) noexcept nogil:
    # CRC of p[0, n) followed by `zeros` zero bytes (the CRC field's value, §4.2.1).
    cdef uint8_t z[4]
    memset(z, 0, 4)
    if crc_type == BETANET_BUNDLE_CRC_16:
        return <uint16_t>(bnt_crc16_x25_update(bnt_crc16_x25_update(0xFFFF, p, n), z, zeros) ^ 0xFFFF)
    return crc32c_update(crc32c_update(BNT_U32_ONES, p, n), z, zeros) ^ BNT_U32_ONES


cdef public int betanet_bundle_crc(uint32_t crc_type, const uint8_t *data, size_t len,
                                   uint32_t *out) noexcept nogil:
    if out == NULL or (data == NULL and len != 0) or crc_len(crc_type) == 0:
        return BETANET_E_INVALID
    betanet_init()                    # CPU features decide the kernel
    out[0] = block_crc(crc_type, data, len, 0)
    return BETANET_OK


# ---- CBOR reading ------------------------------------------------------------------------

cdef struct rd_t:
    const uint8_t *p
    size_t n
    size_t i
    int err
    size_t err_at


cdef inline int fail(rd_t *r, int err) noexcept nogil:
    if r.err == BETANET_BUNDLE_ERR_NONE:
        r.err = err
        r.err_at = r.i
    return -1


cdef int rd_head(rd_t *r, int *major, uint64_t *val) noexcept nogil:
    # One definite CBOR head in its shortest form.
    cdef uint8_t b
    cdef int ai, k
    cdef uint64_t v
    cdef size_t need
    if r.i >= r.n:
        return fail(r, BETANET_BUNDLE_ERR_TRUNCATED)
    b = r.p[r.i]
    major[0] = b >> 5
    ai = b & 31
    if ai < 24:
        val[0] = ai
        r.i += 1
        return 0
    if ai > 27:
        return fail(r, BETANET_BUNDLE_ERR_CBOR)      # indefinite or reserved
    need = (<size_t>1) << (ai - 24)
    if r.n - r.i - 1 < need:
        return fail(r, BETANET_BUNDLE_ERR_TRUNCATED)
    v = 0
    for k in range(<int>need):
        v = (v << 8) | r.p[r.i + 1 + k]
    if (ai == 24 and v < 24) or (ai == 25 and v < 0x100) or (ai == 26 and v < 0x10000) \
            or (ai == 27 and v < BNT_U32_LIMIT):
        return fail(r, BETANET_BUNDLE_ERR_CBOR)      # not the shortest form
    r.i += 1 + need
    val[0] = v
    return 0


cdef inline int rd_expect(rd_t *r, int want, uint64_t *val) noexcept nogil:
    cdef int major
    cdef size_t at = r.i
    if rd_head(r, &major, val) < 0:
        return -1
    if major != want:
        r.i = at
        return fail(r, BETANET_BUNDLE_ERR_CBOR)
    return 0


cdef inline int rd_uint(rd_t *r, uint64_t *v) noexcept nogil:
    return rd_expect(r, 0, v)


cdef inline int rd_array(rd_t *r, uint64_t *n) noexcept nogil:
    return rd_expect(r, 4, n)


cdef inline int rd_string(rd_t *r, int major, size_t *off, size_t *length) noexcept nogil:
    # A definite byte (2) or text (3) string; its length is checked against what remains
    # before anything else happens.
    cdef uint64_t n
    if rd_expect(r, major, &n) < 0:
        return -1
    if n > r.n - r.i:
        return fail(r, BETANET_BUNDLE_ERR_TRUNCATED)
    off[0] = r.i
    length[0] = <size_t>n
    r.i += <size_t>n
    return 0


cdef int check_ssp(const uint8_t *s, size_t n) noexcept nogil:
    # dtn-hier-part = "//" node-name "/" demux (§4.2.5.1.1); printable ASCII only.
    cdef size_t k
    if n < 3 or s[0] != 47 or s[1] != 47:
        return -1
    for k in range(n):
        if s[k] < 0x21 or s[k] > 0x7E:
            return -1
    return 0


cdef int rd_eid(rd_t *r, size_t max_eid, betanet_bundle_eid_t *e) noexcept nogil:
    cdef uint64_t n, scheme, v
    cdef size_t start = r.i, off, length
    memset(e, 0, sizeof(betanet_bundle_eid_t))
    if rd_array(r, &n) < 0:
        return -1
    if n != 2:
        return fail(r, BETANET_BUNDLE_ERR_EID)
    if rd_uint(r, &scheme) < 0:
        return -1
    if scheme == BETANET_BUNDLE_EID_DTN:
        e.scheme = BETANET_BUNDLE_EID_DTN
        if r.i < r.n and (r.p[r.i] >> 5) == 0:
            if rd_uint(r, &v) < 0:
                return -1
            if v != 0:
                return fail(r, BETANET_BUNDLE_ERR_EID)
            e.is_none = 1
        else:
            if rd_string(r, 3, &off, &length) < 0:
                return -1
            if length > max_eid:
                r.i = off
                return fail(r, BETANET_BUNDLE_ERR_EID_TOO_LONG)
            if check_ssp(r.p + off, length) < 0:
                r.i = off
                return fail(r, BETANET_BUNDLE_ERR_EID)
            e.ssp_off = off
            e.ssp_len = length
    elif scheme == BETANET_BUNDLE_EID_IPN:
        e.scheme = BETANET_BUNDLE_EID_IPN
        if rd_array(r, &n) < 0:
            return -1
        if n != 2:
            return fail(r, BETANET_BUNDLE_ERR_EID)
        if rd_uint(r, &e.node) < 0 or rd_uint(r, &e.service) < 0:
            return -1
    else:
        return fail(r, BETANET_BUNDLE_ERR_EID)
    e.off = start
    e.len = r.i - start
    return 0


cdef int rd_crc(rd_t *r, uint32_t crc_type, size_t start) noexcept nogil:
    # The CRC field closes a block: check it over [start, here) with the field zeroed.
    cdef size_t off, length, k
    cdef uint32_t want = 0, got
    if rd_string(r, 2, &off, &length) < 0:
        return -1
    if length != crc_len(crc_type):
        r.i = off
        return fail(r, BETANET_BUNDLE_ERR_CRC_TYPE)
    for k in range(length):
        want = (want << 8) | r.p[off + k]
    got = block_crc(crc_type, r.p + start, off - start, length)
    if got != want:
        r.i = start
        return fail(r, BETANET_BUNDLE_ERR_CRC)
    return 0


cdef int rd_primary(rd_t *r, size_t max_eid, betanet_bundle_primary_t *pb) noexcept nogil:
    cdef uint64_t n, version, crc_type, ts_n
    cdef size_t start = r.i, want
    memset(pb, 0, sizeof(betanet_bundle_primary_t))
    if rd_array(r, &n) < 0:
        return -1
    if n < 8 or n > 11:
        r.i = start
        return fail(r, BETANET_BUNDLE_ERR_PRIMARY)
    if rd_uint(r, &version) < 0:
        return -1
    if version != BETANET_BUNDLE_VERSION:
        return fail(r, BETANET_BUNDLE_ERR_VERSION)
    if rd_uint(r, &pb.flags) < 0 or rd_uint(r, &crc_type) < 0:
        return -1
    if crc_type > 2:
        return fail(r, BETANET_BUNDLE_ERR_CRC_TYPE)
    pb.crc_type = <uint32_t>crc_type
    want = 8 + (1 if crc_type != 0 else 0) + (2 if pb.flags & BETANET_BUNDLE_F_IS_FRAGMENT else 0)
    if n != want:
        r.i = start
        return fail(r, BETANET_BUNDLE_ERR_PRIMARY)
    if rd_eid(r, max_eid, &pb.destination) < 0 or rd_eid(r, max_eid, &pb.source) < 0 \
            or rd_eid(r, max_eid, &pb.report_to) < 0:
        return -1
    if rd_array(r, &ts_n) < 0:
        return -1
    if ts_n != 2:
        return fail(r, BETANET_BUNDLE_ERR_PRIMARY)
    if rd_uint(r, &pb.creation_ms) < 0 or rd_uint(r, &pb.sequence) < 0 \
            or rd_uint(r, &pb.lifetime_ms) < 0:
        return -1
    if pb.flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        if rd_uint(r, &pb.fragment_offset) < 0 or rd_uint(r, &pb.total_adu_length) < 0:
            return -1
    if crc_type != 0 and rd_crc(r, pb.crc_type, start) < 0:
        return -1
    pb.off = start
    pb.len = r.i - start
    return 0


cdef int rd_block(rd_t *r, betanet_bundle_block_t *b) noexcept nogil:
    cdef uint64_t n, crc_type
    cdef size_t start = r.i
    memset(b, 0, sizeof(betanet_bundle_block_t))
    if rd_array(r, &n) < 0:
        return -1
    if n != 5 and n != 6:
        r.i = start
        return fail(r, BETANET_BUNDLE_ERR_BLOCK)
    if rd_uint(r, &b.type) < 0:
        return -1
    if b.type == 0:
        return fail(r, BETANET_BUNDLE_ERR_BLOCK)      # reserved type code
    if rd_uint(r, &b.number) < 0:
        return -1
    if b.number == 0:
        return fail(r, BETANET_BUNDLE_ERR_BLOCK_NUMBER)
    if rd_uint(r, &b.flags) < 0 or rd_uint(r, &crc_type) < 0:
        return -1
    if crc_type > 2:
        return fail(r, BETANET_BUNDLE_ERR_CRC_TYPE)
    b.crc_type = <uint32_t>crc_type
    if n != (6 if crc_type != 0 else 5):
        r.i = start
        return fail(r, BETANET_BUNDLE_ERR_BLOCK)
    if rd_string(r, 2, &b.data_off, &b.data_len) < 0:
        return -1
    if crc_type != 0 and rd_crc(r, b.crc_type, start) < 0:
        return -1
    b.off = start
    b.len = r.i - start
    return 0


cdef int decode_extension(const uint8_t *buf, betanet_bundle_block_t *b, size_t max_eid,
                          betanet_bundle_view_t *v) noexcept nogil:
    # Decode the data of a previous node / bundle age / hop count block into the view.
    # -1: unintelligible (the data is not exactly the item the type calls for).
    cdef rd_t r
    cdef uint64_t n
    r.p = buf
    r.i = b.data_off
    r.n = b.data_off + b.data_len
    r.err = 0
    r.err_at = 0
    if b.type == BETANET_BUNDLE_BLOCK_PREVIOUS_NODE:
        if rd_eid(&r, max_eid, &v.previous_node) < 0 or r.i != r.n:
            return -1
        v.has_previous_node = 1
    elif b.type == BETANET_BUNDLE_BLOCK_BUNDLE_AGE:
        if rd_uint(&r, &v.age_ms) < 0 or r.i != r.n:
            return -1
        v.has_age = 1
    elif b.type == BETANET_BUNDLE_BLOCK_HOP_COUNT:
        if rd_array(&r, &n) < 0 or n != 2 or rd_uint(&r, &v.hop_limit) < 0 \
                or rd_uint(&r, &v.hop_count) < 0 or r.i != r.n:
            return -1
        v.has_hop_count = 1
    return 0


cdef int bib_covers_primary(const uint8_t *buf, const betanet_bundle_block_t *b) noexcept nogil:
    # 1 when the BIB's security target list (RFC 9172 §3.6, first ASB field) names block 0.
    cdef rd_t r
    cdef uint64_t n, t, k
    r.p = buf
    r.i = b.data_off
    r.n = b.data_off + b.data_len
    r.err = 0
    r.err_at = 0
    if rd_array(&r, &n) < 0:
        return 0
    for k in range(n):
        if rd_uint(&r, &t) < 0:
            return 0
        if t == 0:
            return 1
    return 0


cdef inline int is_known(uint64_t t) noexcept nogil:
    return (t == BETANET_BUNDLE_BLOCK_PAYLOAD or t == BETANET_BUNDLE_BLOCK_PREVIOUS_NODE
            or t == BETANET_BUNDLE_BLOCK_BUNDLE_AGE or t == BETANET_BUNDLE_BLOCK_HOP_COUNT
            or t == BETANET_BUNDLE_BLOCK_BIB or t == BETANET_BUNDLE_BLOCK_BCB)


cdef public int betanet_bundle_limits_default(betanet_bundle_limits_t *out) noexcept nogil:
    if out == NULL:
        return BETANET_E_INVALID
    out.max_bytes = BETANET_BUNDLE_DEFAULT_MAX_BYTES
    out.max_blocks = BETANET_BUNDLE_DEFAULT_MAX_BLOCKS
    out.max_eid_bytes = BETANET_BUNDLE_DEFAULT_MAX_EID
    out.flags = 0
    return BETANET_OK


cdef public const char *betanet_bundle_error_string(int error) noexcept nogil:
    if error == BETANET_BUNDLE_ERR_NONE:
        return "no error"
    elif error == BETANET_BUNDLE_ERR_TRUNCATED:
        return "truncated bundle"
    elif error == BETANET_BUNDLE_ERR_CBOR:
        return "not well-formed or not deterministic CBOR, or an item of the wrong type"
    elif error == BETANET_BUNDLE_ERR_VERSION:
        return "bundle protocol version is not 7"
    elif error == BETANET_BUNDLE_ERR_PRIMARY:
        return "malformed primary block"
    elif error == BETANET_BUNDLE_ERR_EID:
        return "malformed or unsupported endpoint ID"
    elif error == BETANET_BUNDLE_ERR_CRC_TYPE:
        return "unknown CRC type or CRC field of the wrong size"
    elif error == BETANET_BUNDLE_ERR_CRC:
        return "CRC mismatch: corrupted block"
    elif error == BETANET_BUNDLE_ERR_BLOCK:
        return "malformed canonical block"
    elif error == BETANET_BUNDLE_ERR_BLOCK_NUMBER:
        return "block number zero or not unique"
    elif error == BETANET_BUNDLE_ERR_PAYLOAD:
        return "payload block missing, repeated, not last or not number 1"
    elif error == BETANET_BUNDLE_ERR_FRAGMENT:
        return "fragment overruns its ADU"
    elif error == BETANET_BUNDLE_ERR_EXTENSION:
        return "previous node, bundle age or hop count block repeated"
    elif error == BETANET_BUNDLE_ERR_TRAILING:
        return "bytes after the end of the bundle"
    elif error == BETANET_BUNDLE_ERR_TOO_LARGE:
        return "bundle larger than the size limit"
    elif error == BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS:
        return "more blocks than the limit"
    elif error == BETANET_BUNDLE_ERR_EID_TOO_LONG:
        return "endpoint ID longer than the limit"
    elif error == BETANET_BUNDLE_ERR_STRICT:
        return "violates a sender rule checked in strict mode"
    return "unknown bundle error"


cdef int parse_error(betanet_bundle_view_t *view, rd_t *r) noexcept nogil:
    view.error = r.err
    view.error_offset = r.err_at
    if r.err == BETANET_BUNDLE_ERR_TOO_LARGE or r.err == BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS \
            or r.err == BETANET_BUNDLE_ERR_EID_TOO_LONG:
        return BETANET_E_LIMIT
    return BETANET_E_MALFORMED


cdef public int betanet_bundle_parse(const uint8_t *buf, size_t len,
                                     const betanet_bundle_limits_t *limits,
                                     betanet_bundle_block_t *blocks, size_t blocks_cap,
                                     betanet_bundle_view_t *view) noexcept nogil:
    # Long on purpose (~115 lines): it is the one pass over untrusted bytes, and every rule
    # that spans blocks (unique numbers, payload last, one of each extension, fragment bounds,
    # strict sender rules) is checked here against the same cursor, so each failure reports
    # its byte offset; the per-block readers (rd_primary, rd_block) are separate functions.
    cdef betanet_bundle_limits_t lim
    cdef rd_t r
    cdef size_t nb = 0, max_blocks, k, j
    cdef betanet_bundle_block_t *b
    cdef int saw_payload = 0, covers0 = 0
    cdef uint64_t seen_ext = 0, bit
    if view == NULL or (buf == NULL and len != 0) or (blocks == NULL and blocks_cap != 0):
        return BETANET_E_INVALID
    if limits == NULL:
        betanet_bundle_limits_default(&lim)
    else:
        lim = limits[0]
    memset(view, 0, sizeof(betanet_bundle_view_t))
    view.blocks = blocks
    r.p = buf
    r.i = 0
    r.n = len
    r.err = 0
    r.err_at = 0
    if len > lim.max_bytes:
        if not (lim.flags & BETANET_BUNDLE_PARSE_PREFIX):
            fail(&r, BETANET_BUNDLE_ERR_TOO_LARGE)
            return parse_error(view, &r)
        r.n = lim.max_bytes
    max_blocks = lim.max_blocks if lim.max_blocks < blocks_cap else blocks_cap
    # the bundle: an indefinite-length array
    if r.i >= r.n:
        fail(&r, BETANET_BUNDLE_ERR_TRUNCATED)
        return parse_error(view, &r)
    if buf[0] != 0x9F:
        fail(&r, BETANET_BUNDLE_ERR_CBOR)
        return parse_error(view, &r)
    r.i = 1
    if rd_primary(&r, lim.max_eid_bytes, &view.primary) < 0:
        if r.err == BETANET_BUNDLE_ERR_TRUNCATED and r.n < len:
            r.err = BETANET_BUNDLE_ERR_TOO_LARGE
        return parse_error(view, &r)
    while True:
        if r.i >= r.n:
            fail(&r, BETANET_BUNDLE_ERR_TOO_LARGE if r.n < len else BETANET_BUNDLE_ERR_TRUNCATED)
            return parse_error(view, &r)
        if buf[r.i] == 0xFF:
            break
        if saw_payload:
            fail(&r, BETANET_BUNDLE_ERR_PAYLOAD)        # the payload block is the last
            return parse_error(view, &r)
        if nb >= max_blocks:
            fail(&r, BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS)
            return parse_error(view, &r)
        b = &blocks[nb]
        if rd_block(&r, b) < 0:
            if r.err == BETANET_BUNDLE_ERR_TRUNCATED and r.n < len:
                r.err = BETANET_BUNDLE_ERR_TOO_LARGE
            return parse_error(view, &r)
        for j in range(nb):
            if blocks[j].number == b.number:
                r.i = b.off
                fail(&r, BETANET_BUNDLE_ERR_BLOCK_NUMBER)
                return parse_error(view, &r)
        if b.type == BETANET_BUNDLE_BLOCK_PAYLOAD:
            if b.number != 1:
                r.i = b.off
                fail(&r, BETANET_BUNDLE_ERR_PAYLOAD)
                return parse_error(view, &r)
            saw_payload = 1
            view.payload = nb
        elif b.type == BETANET_BUNDLE_BLOCK_PREVIOUS_NODE or b.type == BETANET_BUNDLE_BLOCK_BUNDLE_AGE \
                or b.type == BETANET_BUNDLE_BLOCK_HOP_COUNT:
            bit = (<uint64_t>1) << b.type
            if seen_ext & bit:
                r.i = b.off
                fail(&r, BETANET_BUNDLE_ERR_EXTENSION)
                return parse_error(view, &r)
            seen_ext |= bit
            if decode_extension(buf, b, lim.max_eid_bytes, view) < 0:
                b.status = BETANET_BUNDLE_BLOCK_UNINTELLIGIBLE
        elif b.type == BETANET_BUNDLE_BLOCK_BIB:
            if bib_covers_primary(buf, b):
                covers0 = 1
        elif not is_known(b.type):
            b.status = BETANET_BUNDLE_BLOCK_UNKNOWN
        nb += 1
    if not saw_payload:
        fail(&r, BETANET_BUNDLE_ERR_PAYLOAD)
        return parse_error(view, &r)
    r.i += 1                                           # the break
    view.nblocks = nb
    view.len = r.i
    if r.i != len and not (lim.flags & BETANET_BUNDLE_PARSE_PREFIX):
        fail(&r, BETANET_BUNDLE_ERR_TRAILING)
        return parse_error(view, &r)
    if view.primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        if view.primary.fragment_offset > view.primary.total_adu_length or \
                blocks[view.payload].data_len > view.primary.total_adu_length - view.primary.fragment_offset:
            r.i = view.primary.off
            fail(&r, BETANET_BUNDLE_ERR_FRAGMENT)
            return parse_error(view, &r)
    if lim.flags & BETANET_BUNDLE_PARSE_STRICT:
        r.i = view.primary.off
        if view.primary.crc_type == BETANET_BUNDLE_CRC_NONE and not covers0:
            fail(&r, BETANET_BUNDLE_ERR_STRICT)
        elif view.primary.creation_ms == 0 and not view.has_age:
            fail(&r, BETANET_BUNDLE_ERR_STRICT)
        elif (view.primary.flags & (BETANET_BUNDLE_F_REPORT_RECEPTION | BETANET_BUNDLE_F_REPORT_FORWARDING
                                    | BETANET_BUNDLE_F_REPORT_DELIVERY | BETANET_BUNDLE_F_REPORT_DELETION)) \
                and ((view.primary.flags & BETANET_BUNDLE_F_ADMIN_RECORD) or view.primary.source.is_none):
            fail(&r, BETANET_BUNDLE_ERR_STRICT)
        if r.err:
            return parse_error(view, &r)
    return BETANET_OK


# ---- policy and rewrite ------------------------------------------------------------------

cdef public int betanet_bundle_policy(betanet_bundle_view_t *view, const uint64_t *known_types,
                                      size_t n_known, uint32_t *verdict, uint32_t *reason) noexcept nogil:
    cdef size_t i, k
    cdef betanet_bundle_block_t *b
    cdef int unprocessable
    cdef uint32_t v = 0, why = 0
    if view == NULL or verdict == NULL or reason == NULL or (known_types == NULL and n_known != 0) \
            or (view.blocks == NULL and view.nblocks != 0):
        return BETANET_E_INVALID
    for i in range(view.nblocks):
        b = &view.blocks[i]
        b.action = BETANET_BUNDLE_ACTION_KEEP
        if known_types == NULL or b.type == BETANET_BUNDLE_BLOCK_PAYLOAD \
                or b.status == BETANET_BUNDLE_BLOCK_UNINTELLIGIBLE:
            unprocessable = b.status != BETANET_BUNDLE_BLOCK_OK
        else:
            unprocessable = 1
            for k in range(n_known):
                if known_types[k] == b.type:
                    unprocessable = 0
                    break
        if not unprocessable:
            continue
        if why == 0 or b.status == BETANET_BUNDLE_BLOCK_UNINTELLIGIBLE:
            why = BETANET_BUNDLE_REASON_BLOCK_UNINTELLIGIBLE if b.status == BETANET_BUNDLE_BLOCK_UNINTELLIGIBLE \
                else BETANET_BUNDLE_REASON_BLOCK_UNSUPPORTED
        if b.flags & BETANET_BUNDLE_BF_REPORT:
            v |= BETANET_BUNDLE_VERDICT_REPORT
        if b.flags & BETANET_BUNDLE_BF_DELETE_BUNDLE:
            v |= BETANET_BUNDLE_VERDICT_DELETE
        elif b.flags & BETANET_BUNDLE_BF_DISCARD:
            b.action = BETANET_BUNDLE_ACTION_DISCARD
            v |= BETANET_BUNDLE_VERDICT_DISCARD
    verdict[0] = v
    reason[0] = why if v else 0
    return BETANET_OK


cdef public size_t betanet_bundle_rewrite_bytes(const betanet_bundle_view_t *view) noexcept nogil:
    cdef size_t n, i
    if view == NULL or (view.blocks == NULL and view.nblocks != 0):
        return 0
    n = 2 + view.primary.len
    for i in range(view.nblocks):
        if view.blocks[i].action != BETANET_BUNDLE_ACTION_DISCARD:
            n += view.blocks[i].len
    return n


cdef public int betanet_bundle_rewrite(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                                       uint8_t *out, size_t out_cap, size_t *out_len) noexcept nogil:
    cdef size_t n, i, w
    cdef const betanet_bundle_block_t *b
    if buf == NULL or view == NULL or out == NULL or out_len == NULL or view.len > len \
            or view.nblocks == 0 or view.blocks == NULL:
        return BETANET_E_INVALID
    n = betanet_bundle_rewrite_bytes(view)
    if out_cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    out[0] = 0x9F
    memcpy(out + 1, buf + view.primary.off, view.primary.len)
    w = 1 + view.primary.len
    for i in range(view.nblocks):
        b = &view.blocks[i]
        if b.action != BETANET_BUNDLE_ACTION_DISCARD:
            memcpy(out + w, buf + b.off, b.len)
            w += b.len
    out[w] = 0xFF
    out_len[0] = w + 1
    return BETANET_OK


# ---- CBOR writing ------------------------------------------------------------------------

cdef inline size_t head_len(uint64_t v) noexcept nogil:
    if v < 24:
        return 1
    if v < 0x100:
        return 2
    if v < 0x10000:
        return 3
    if v < BNT_U32_LIMIT:
        return 5
    return 9


cdef inline size_t wr_head(uint8_t *o, int major, uint64_t v) noexcept nogil:
    cdef size_t n = head_len(v), k
    cdef uint8_t m = <uint8_t>(major << 5)
    if n == 1:
        o[0] = m | <uint8_t>v
        return 1
    o[0] = m | (24 if n == 2 else 25 if n == 3 else 26 if n == 5 else 27)
    for k in range(n - 1):
        o[n - 1 - k] = <uint8_t>(v >> (8 * k))
    return n


cdef size_t eid_spec_bytes(const betanet_bundle_eid_spec_t *e) noexcept nogil:
    if e.scheme == BETANET_BUNDLE_EID_DTN:
        if e.ssp_len == 0:
            return 3
        if e.ssp == NULL or check_ssp(e.ssp, e.ssp_len) < 0:
            return 0
        return 2 + head_len(e.ssp_len) + e.ssp_len
    if e.scheme == BETANET_BUNDLE_EID_IPN:
        return 3 + head_len(e.node) + head_len(e.service)
    return 0


cdef size_t wr_eid_spec(uint8_t *o, const betanet_bundle_eid_spec_t *e) noexcept nogil:
    cdef size_t w = 0
    o[0] = 0x82
    o[1] = <uint8_t>e.scheme
    w = 2
    if e.scheme == BETANET_BUNDLE_EID_DTN:
        if e.ssp_len == 0:
            o[2] = 0
            return 3
        w += wr_head(o + w, 3, e.ssp_len)
        memcpy(o + w, e.ssp, e.ssp_len)
        return w + e.ssp_len
    o[2] = 0x82
    w = 3
    w += wr_head(o + w, 0, e.node)
    w += wr_head(o + w, 0, e.service)
    return w


cdef inline size_t wr_crc_field(uint8_t *o, size_t start, size_t w, uint32_t crc_type) noexcept nogil:
    # Append the CRC byte string at o[w] and fill it over o[start, end) (§4.2.1).
    cdef size_t n = crc_len(crc_type), k
    cdef uint32_t c
    o[w] = <uint8_t>(0x40 | n)
    memset(o + w + 1, 0, n)
    c = block_crc(crc_type, o + start, w + 1 - start, n)
    for k in range(n):
        o[w + n - k] = <uint8_t>(c >> (8 * k))
    return w + 1 + n


cdef inline size_t primary_tail_bytes(uint64_t flags, uint32_t crc_type, uint64_t ms, uint64_t seq,
                                      uint64_t life, uint64_t foff, uint64_t total) noexcept nogil:
    cdef size_t n = 1 + head_len(ms) + head_len(seq) + head_len(life)
    if flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        n += head_len(foff) + head_len(total)
    if crc_type != 0:
        n += 1 + crc_len(crc_type)
    return n


cdef inline size_t wr_primary_head(uint8_t *o, uint64_t flags, uint32_t crc_type) noexcept nogil:
    cdef size_t w
    o[0] = <uint8_t>(0x80 | (8 + (1 if crc_type != 0 else 0) + (2 if flags & BETANET_BUNDLE_F_IS_FRAGMENT else 0)))
    o[1] = BETANET_BUNDLE_VERSION
    w = 2 + wr_head(o + 2, 0, flags)
    o[w] = <uint8_t>crc_type
    return w + 1


cdef inline size_t wr_primary_tail(uint8_t *o, size_t start, size_t w, uint64_t flags, uint32_t crc_type,
                                   uint64_t ms, uint64_t seq, uint64_t life, uint64_t foff,
                                   uint64_t total) noexcept nogil:
    o[w] = 0x82
    w += 1
    w += wr_head(o + w, 0, ms)
    w += wr_head(o + w, 0, seq)
    w += wr_head(o + w, 0, life)
    if flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        w += wr_head(o + w, 0, foff)
        w += wr_head(o + w, 0, total)
    if crc_type != 0:
        w = wr_crc_field(o, start, w, crc_type)
    return w


cdef inline size_t block_bytes(uint64_t t, uint64_t num, uint64_t flags, uint32_t crc_type,
                               size_t data_len) noexcept nogil:
    return (1 + head_len(t) + head_len(num) + head_len(flags) + 1 + head_len(data_len) + data_len
            + ((1 + crc_len(crc_type)) if crc_type != 0 else 0))


cdef size_t wr_block(uint8_t *o, uint64_t t, uint64_t num, uint64_t flags, uint32_t crc_type,
                     const uint8_t *data, size_t data_len) noexcept nogil:
    cdef size_t w
    o[0] = 0x86 if crc_type != 0 else 0x85
    w = 1
    w += wr_head(o + w, 0, t)
    w += wr_head(o + w, 0, num)
    w += wr_head(o + w, 0, flags)
    o[w] = <uint8_t>crc_type
    w += 1
    w += wr_head(o + w, 2, data_len)
    if data_len:
        memcpy(o + w, data, data_len)
    w += data_len
    if crc_type != 0:
        w = wr_crc_field(o, 0, w, crc_type)
    return w


cdef size_t primary_spec_bytes(const betanet_bundle_primary_spec_t *p) noexcept nogil:
    cdef size_t d, s, t
    if p.crc_type > 2:
        return 0
    d = eid_spec_bytes(&p.destination)
    s = eid_spec_bytes(&p.source)
    t = eid_spec_bytes(&p.report_to)
    if d == 0 or s == 0 or t == 0:
        return 0
    return (3 + head_len(p.flags) + d + s + t
            + primary_tail_bytes(p.flags, p.crc_type, p.creation_ms, p.sequence, p.lifetime_ms,
                                 p.fragment_offset, p.total_adu_length))


cdef public size_t betanet_bundle_encoded_bytes(const betanet_bundle_primary_spec_t *primary,
                                                const betanet_bundle_block_spec_t *blocks,
                                                size_t nblocks) noexcept nogil:
    cdef size_t n, i, j
    cdef const betanet_bundle_block_spec_t *b
    if primary == NULL or blocks == NULL or nblocks == 0:
        return 0
    n = primary_spec_bytes(primary)
    if n == 0:
        return 0
    for i in range(nblocks):
        b = &blocks[i]
        if b.crc_type > 2 or b.type == 0 or b.number == 0 or (b.data == NULL and b.data_len != 0):
            return 0
        if b.data_len > SIZE_QUARTER or n > SIZE_QUARTER:
            return 0                      # the sum could wrap: no such bundle fits in memory
        if (b.type == BETANET_BUNDLE_BLOCK_PAYLOAD) != (i == nblocks - 1):
            return 0
        if b.type == BETANET_BUNDLE_BLOCK_PAYLOAD and b.number != 1:
            return 0
        for j in range(i):
            if blocks[j].number == b.number:
                return 0
        n += block_bytes(b.type, b.number, b.flags, b.crc_type, b.data_len)
    if primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT and (
            primary.fragment_offset > primary.total_adu_length
            or blocks[nblocks - 1].data_len > primary.total_adu_length - primary.fragment_offset):
        return 0
    return n + 2


cdef public int betanet_bundle_encode(const betanet_bundle_primary_spec_t *primary,
                                      const betanet_bundle_block_spec_t *blocks, size_t nblocks,
                                      uint8_t *out, size_t out_cap, size_t *out_len) noexcept nogil:
    cdef size_t n, w, start, i
    cdef const betanet_bundle_block_spec_t *b
    if out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    n = betanet_bundle_encoded_bytes(primary, blocks, nblocks)
    if n == 0:
        return BETANET_E_INVALID
    if out_cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    betanet_init()
    out[0] = 0x9F
    start = 1
    w = start + wr_primary_head(out + start, primary.flags, primary.crc_type)
    w += wr_eid_spec(out + w, &primary.destination)
    w += wr_eid_spec(out + w, &primary.source)
    w += wr_eid_spec(out + w, &primary.report_to)
    w = wr_primary_tail(out, start, w, primary.flags, primary.crc_type, primary.creation_ms,
                        primary.sequence, primary.lifetime_ms, primary.fragment_offset,
                        primary.total_adu_length)
    for i in range(nblocks):
        b = &blocks[i]
        w += wr_block(out + w, b.type, b.number, b.flags, b.crc_type, b.data, b.data_len)
    out[w] = 0xFF
    out_len[0] = w + 1
    return BETANET_OK


cdef public size_t betanet_bundle_eid_encoded_bytes(const betanet_bundle_eid_spec_t *eid) noexcept nogil:
    if eid == NULL:
        return 0
    return eid_spec_bytes(eid)


cdef public int betanet_bundle_eid_encode(const betanet_bundle_eid_spec_t *eid, uint8_t *out,
                                          size_t out_cap, size_t *out_len) noexcept nogil:
    cdef size_t n
    if eid == NULL or out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    n = eid_spec_bytes(eid)
    if n == 0:
        return BETANET_E_INVALID
    if out_cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    out_len[0] = wr_eid_spec(out, eid)
    return BETANET_OK


# ---- bundle id ---------------------------------------------------------------------------

cdef inline void put_be64(uint8_t *o, uint64_t v) noexcept nogil:
    cdef int k
    for k in range(8):
        o[k] = <uint8_t>(v >> (56 - 8 * k))


cdef public int betanet_bundle_id(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                                  uint8_t *id, size_t id_len) noexcept nogil:
    cdef const betanet_bundle_primary_t *p
    if buf == NULL or view == NULL or id == NULL or view.len > len or view.nblocks == 0 \
            or view.blocks == NULL:
        return BETANET_E_INVALID
    if id_len < BETANET_BUNDLE_ID_BYTES:
        return BETANET_E_BUFFER_TOO_SMALL
    p = &view.primary
    if p.source.off + p.source.len > len:
        return BETANET_E_INVALID
    betanet_init()
    crypto_generichash(id, 32, buf + p.source.off, p.source.len, NULL, 0)
    put_be64(id + 32, p.creation_ms)
    put_be64(id + 40, p.sequence)
    if p.flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        put_be64(id + 48, p.fragment_offset)
        put_be64(id + 56, view.blocks[view.payload].data_len)
    else:
        memset(id + 48, 0xFF, 16)
    return BETANET_OK


# ---- fragmentation -----------------------------------------------------------------------

cdef size_t raw_primary_bytes(const betanet_bundle_primary_t *p, uint64_t flags, uint64_t foff,
                              uint64_t total) noexcept nogil:
    return (3 + head_len(flags) + p.destination.len + p.source.len + p.report_to.len
            + primary_tail_bytes(flags, p.crc_type, p.creation_ms, p.sequence, p.lifetime_ms, foff, total))


cdef size_t wr_raw_primary(uint8_t *o, const uint8_t *pbuf, const betanet_bundle_primary_t *p,
                           uint64_t flags, uint64_t foff, uint64_t total) noexcept nogil:
    # Re-encode a parsed primary block with other flags / fragment fields; EIDs byte for byte.
    cdef size_t w = wr_primary_head(o, flags, p.crc_type)
    memcpy(o + w, pbuf + p.destination.off, p.destination.len)
    w += p.destination.len
    memcpy(o + w, pbuf + p.source.off, p.source.len)
    w += p.source.len
    memcpy(o + w, pbuf + p.report_to.off, p.report_to.len)
    w += p.report_to.len
    return wr_primary_tail(o, 0, w, flags, p.crc_type, p.creation_ms, p.sequence, p.lifetime_ms,
                           foff, total)


cdef int frag_plan(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view, uint64_t offset,
                   uint64_t frag_len, size_t *out_n) noexcept nogil:
    cdef const betanet_bundle_block_t *pl
    cdef uint64_t base, total
    cdef size_t n, i
    cdef int first
    if buf == NULL or view == NULL or view.blocks == NULL or view.nblocks == 0 or view.len > len:
        return BETANET_E_INVALID
    pl = &view.blocks[view.payload]
    if frag_len == 0 or offset > pl.data_len or frag_len > pl.data_len - offset:
        return BETANET_E_INVALID
    if view.primary.flags & BETANET_BUNDLE_F_MUST_NOT_FRAGMENT:
        return BETANET_E_INVALID
    if view.primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        base = view.primary.fragment_offset
        total = view.primary.total_adu_length
    else:
        base = 0
        total = pl.data_len
    first = (base + offset) == 0
    n = 2 + raw_primary_bytes(&view.primary, view.primary.flags | BETANET_BUNDLE_F_IS_FRAGMENT,
                              base + offset, total)
    for i in range(view.nblocks):
        if i != view.payload and (first or (view.blocks[i].flags & BETANET_BUNDLE_BF_REPLICATE)):
            n += view.blocks[i].len
    n += block_bytes(pl.type, pl.number, pl.flags, pl.crc_type, <size_t>frag_len)
    out_n[0] = n
    return BETANET_OK


cdef public size_t betanet_bundle_fragment_bytes(const uint8_t *buf, size_t len,
                                                 const betanet_bundle_view_t *view,
                                                 uint64_t offset, uint64_t frag_len) noexcept nogil:
    cdef size_t n = 0
    if frag_plan(buf, len, view, offset, frag_len, &n) != BETANET_OK:
        return 0
    return n


cdef public int betanet_bundle_fragment(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                                        uint64_t offset, uint64_t frag_len,
                                        uint8_t *out, size_t out_cap, size_t *out_len) noexcept nogil:
    cdef size_t n = 0, w, i
    cdef int rc
    cdef const betanet_bundle_block_t *pl
    cdef uint64_t base, total
    cdef int first
    if out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    rc = frag_plan(buf, len, view, offset, frag_len, &n)
    if rc != BETANET_OK:
        return rc
    if out_cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    betanet_init()
    pl = &view.blocks[view.payload]
    if view.primary.flags & BETANET_BUNDLE_F_IS_FRAGMENT:
        base = view.primary.fragment_offset
        total = view.primary.total_adu_length
    else:
        base = 0
        total = pl.data_len
    first = (base + offset) == 0
    out[0] = 0x9F
    w = 1 + wr_raw_primary(out + 1, buf, &view.primary, view.primary.flags | BETANET_BUNDLE_F_IS_FRAGMENT,
                           base + offset, total)
    for i in range(view.nblocks):
        if i != view.payload and (first or (view.blocks[i].flags & BETANET_BUNDLE_BF_REPLICATE)):
            memcpy(out + w, buf + view.blocks[i].off, view.blocks[i].len)
            w += view.blocks[i].len
    w += wr_block(out + w, pl.type, pl.number, pl.flags, pl.crc_type, buf + pl.data_off + offset,
                  <size_t>frag_len)
    out[w] = 0xFF
    out_len[0] = w + 1
    return BETANET_OK


# ---- reassembly --------------------------------------------------------------------------

cdef public void betanet_bundle_reasm_free(betanet_bundle_reasm_t *handle) noexcept nogil:
    cdef bnt_reasm *r = <bnt_reasm *>handle
    if r == NULL:
        return
    bnt_free(r.ranges)
    bnt_free(r.adu)
    bnt_free(r.primary)
    bnt_free(r.head)
    bnt_free(r)


cdef public int betanet_bundle_reasm_new(uint64_t total_adu_length, size_t max_adu_bytes,
                                         size_t max_ranges, betanet_bundle_reasm_t **out) noexcept nogil:
    cdef bnt_reasm *r
    if out == NULL or max_ranges == 0 or max_ranges > (<size_t>-1) / 16:
        return BETANET_E_INVALID
    out[0] = NULL
    if total_adu_length > max_adu_bytes:
        return BETANET_E_LIMIT
    betanet_init()
    r = <bnt_reasm *>bnt_alloc(sizeof(bnt_reasm))
    if r == NULL:
        return BETANET_E_NOMEM
    r.total = total_adu_length
    r.max_ranges = max_ranges
    r.ranges = <uint64_t *>bnt_alloc(16 * max_ranges)
    r.adu = <uint8_t *>bnt_alloc(<size_t>total_adu_length)
    if r.ranges == NULL or r.adu == NULL:
        betanet_bundle_reasm_free(<betanet_bundle_reasm_t *>r)
        return BETANET_E_NOMEM
    out[0] = <betanet_bundle_reasm_t *>r
    return BETANET_OK


cdef inline int reasm_complete(const bnt_reasm *r) noexcept nogil:
    if not r.have_head:
        return 0
    if r.total == 0:
        return 1
    return r.nranges == 1 and r.ranges[0] == 0 and r.ranges[1] == r.total


cdef public int betanet_bundle_reasm_add(betanet_bundle_reasm_t *handle, const uint8_t *buf, size_t len,
                                         const betanet_bundle_view_t *view) noexcept nogil:
    cdef bnt_reasm *r = <bnt_reasm *>handle
    cdef const betanet_bundle_primary_t *p
    cdef const betanet_bundle_block_t *pl
    cdef uint8_t id[64]
    cdef uint64_t a, b, s, e, lo, hi, ns, ne
    cdef size_t i, first_touch, last_touch, removed, k
    cdef int touched
    if r == NULL or buf == NULL or view == NULL or view.blocks == NULL or view.nblocks == 0 \
            or view.len > len:
        return BETANET_E_INVALID
    p = &view.primary
    pl = &view.blocks[view.payload]
    if not (p.flags & BETANET_BUNDLE_F_IS_FRAGMENT) or p.total_adu_length != r.total:
        return BETANET_E_MALFORMED
    a = p.fragment_offset
    if a > r.total or pl.data_len > r.total - a:
        return BETANET_E_MALFORMED                         # overruns its ADU
    b = a + pl.data_len
    if betanet_bundle_id(buf, len, view, id, 64) != BETANET_OK:
        return BETANET_E_INVALID
    if r.have_first and memcmp(id, r.adu_id, BETANET_BUNDLE_ADU_ID_BYTES) != 0:
        return BETANET_E_MALFORMED                         # a fragment of another bundle
    # Where [a, b) meets what we hold: overlapping bytes must agree; touching ranges merge.
    first_touch = r.nranges
    last_touch = 0
    touched = 0
    ns = a
    ne = b
    for i in range(r.nranges):
        s = r.ranges[2 * i]
        e = r.ranges[2 * i + 1]
        if s <= b and a <= e:
            lo = s if s > a else a
            hi = e if e < b else b
            if hi > lo and memcmp(r.adu + lo, buf + pl.data_off + (lo - a), <size_t>(hi - lo)) != 0:
                return BETANET_E_MALFORMED                 # overlap with different bytes
            if not touched:
                first_touch = i
            touched = 1
            last_touch = i
            if s < ns:
                ns = s
            if e > ne:
                ne = e
    removed = (last_touch - first_touch + 1) if touched else 0
    if r.nranges - removed + 1 > r.max_ranges:
        return BETANET_E_LIMIT
    if not r.have_first:
        r.primary = <uint8_t *>bnt_alloc(p.len)
        if r.primary == NULL:
            return BETANET_E_NOMEM
        memcpy(r.primary, buf + p.off, p.len)
        r.pview = p[0]
        r.pview.destination.off -= p.off
        r.pview.source.off -= p.off
        r.pview.report_to.off -= p.off
        r.pview.off = 0
        memcpy(r.adu_id, id, BETANET_BUNDLE_ADU_ID_BYTES)
        r.have_first = 1
    if a == 0 and not r.have_head:
        r.head_len = pl.off - view.blocks[0].off if view.payload > 0 else 0
        if r.head_len:
            r.head = <uint8_t *>bnt_alloc(r.head_len)
            if r.head == NULL:
                return BETANET_E_NOMEM
            memcpy(r.head, buf + view.blocks[0].off, r.head_len)
        r.payload_flags = pl.flags
        r.payload_crc = pl.crc_type
        r.have_head = 1
    if b > a:
        memcpy(r.adu + a, buf + pl.data_off, <size_t>(b - a))
        if touched:
            r.ranges[2 * first_touch] = ns
            r.ranges[2 * first_touch + 1] = ne
            if removed > 1:
                memmove(r.ranges + 2 * (first_touch + 1), r.ranges + 2 * (last_touch + 1),
                        16 * (r.nranges - last_touch - 1))
            r.nranges -= removed - 1
        else:
            k = 0
            while k < r.nranges and r.ranges[2 * k] < a:
                k += 1
            memmove(r.ranges + 2 * (k + 1), r.ranges + 2 * k, 16 * (r.nranges - k))
            r.ranges[2 * k] = a
            r.ranges[2 * k + 1] = b
            r.nranges += 1
    return reasm_complete(r)


cdef public size_t betanet_bundle_reasm_bytes(const betanet_bundle_reasm_t *handle) noexcept nogil:
    cdef const bnt_reasm *r = <const bnt_reasm *>handle
    cdef uint64_t flags
    if r == NULL or not reasm_complete(r):
        return 0
    flags = r.pview.flags & ~(<uint64_t>BETANET_BUNDLE_F_IS_FRAGMENT)
    return (2 + raw_primary_bytes(&r.pview, flags, 0, 0) + r.head_len
            + block_bytes(BETANET_BUNDLE_BLOCK_PAYLOAD, 1, r.payload_flags, r.payload_crc, <size_t>r.total))


cdef public int betanet_bundle_reasm_finish(const betanet_bundle_reasm_t *handle, uint8_t *out,
                                            size_t out_cap, size_t *out_len) noexcept nogil:
    cdef const bnt_reasm *r = <const bnt_reasm *>handle
    cdef size_t n, w
    cdef uint64_t flags
    if r == NULL or out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    if not reasm_complete(r):
        return BETANET_E_STATE
    n = betanet_bundle_reasm_bytes(handle)
    if out_cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    flags = r.pview.flags & ~(<uint64_t>BETANET_BUNDLE_F_IS_FRAGMENT)
    out[0] = 0x9F
    w = 1 + wr_raw_primary(out + 1, r.primary, &r.pview, flags, 0, 0)
    if r.head_len:
        memcpy(out + w, r.head, r.head_len)
        w += r.head_len
    w += wr_block(out + w, BETANET_BUNDLE_BLOCK_PAYLOAD, 1, r.payload_flags, r.payload_crc, r.adu,
                  <size_t>r.total)
    out[w] = 0xFF
    out_len[0] = w + 1
    return BETANET_OK


# ---- status reports ----------------------------------------------------------------------

cdef public int betanet_bundle_status_decode(const uint8_t *rec, size_t len, size_t max_eid_bytes,
                                             betanet_bundle_status_report_t *out) noexcept nogil:
    cdef rd_t r
    cdef uint64_t n, m, t, k
    cdef int major, i
    cdef uint8_t v
    if out == NULL or (rec == NULL and len != 0):
        return BETANET_E_INVALID
    memset(out, 0, sizeof(betanet_bundle_status_report_t))
    r.p = rec
    r.n = len
    r.i = 0
    r.err = 0
    r.err_at = 0
    if rd_array(&r, &n) < 0 or n != 2 or rd_uint(&r, &t) < 0:
        return BETANET_E_MALFORMED
    if t != BETANET_BUNDLE_ADMIN_STATUS_REPORT:
        return BETANET_E_UNSUPPORTED
    if rd_array(&r, &n) < 0 or (n != 4 and n != 6):
        return BETANET_E_MALFORMED
    if rd_array(&r, &m) < 0 or m != 4:
        return BETANET_E_MALFORMED
    for i in range(4):
        if rd_array(&r, &m) < 0 or (m != 1 and m != 2) or r.i >= r.n:
            return BETANET_E_MALFORMED
        v = rec[r.i]
        if v != 0xF4 and v != 0xF5:
            return BETANET_E_MALFORMED
        r.i += 1
        if v == 0xF5:
            out.asserted |= 1u << i
        if m == 2:
            if v != 0xF5 or rd_uint(&r, &out.times[i]) < 0:
                return BETANET_E_MALFORMED
            out.timed |= 1u << i
    if rd_uint(&r, &out.reason) < 0:
        return BETANET_E_MALFORMED
    if rd_eid(&r, max_eid_bytes, &out.source) < 0:
        return BETANET_E_LIMIT if r.err == BETANET_BUNDLE_ERR_EID_TOO_LONG else BETANET_E_MALFORMED
    if rd_array(&r, &m) < 0 or m != 2 or rd_uint(&r, &out.creation_ms) < 0 \
            or rd_uint(&r, &out.sequence) < 0:
        return BETANET_E_MALFORMED
    if n == 6:
        if rd_uint(&r, &out.fragment_offset) < 0 or rd_uint(&r, &out.payload_length) < 0:
            return BETANET_E_MALFORMED
        out.is_fragment = 1
    if r.i != r.n:
        return BETANET_E_MALFORMED
    return BETANET_OK


cdef public size_t betanet_bundle_status_bytes(const betanet_bundle_status_report_t *report,
                                               const betanet_bundle_eid_spec_t *source) noexcept nogil:
    cdef size_t n, e
    cdef int i
    if report == NULL or source == NULL or (report.timed & ~report.asserted) or report.asserted > 15:
        return 0
    e = eid_spec_bytes(source)
    if e == 0:
        return 0
    n = 4 + head_len(report.reason) + e + 1 + head_len(report.creation_ms) + head_len(report.sequence)
    for i in range(4):
        n += 2
        if report.timed & (1u << i):
            n += head_len(report.times[i])
    if report.is_fragment:
        n += head_len(report.fragment_offset) + head_len(report.payload_length)
    return n


cdef public int betanet_bundle_status_encode(const betanet_bundle_status_report_t *report,
                                             const betanet_bundle_eid_spec_t *source,
                                             uint8_t *out, size_t out_cap, size_t *out_len) noexcept nogil:
    cdef size_t n, w
    cdef int i
    if out == NULL or out_len == NULL:
        return BETANET_E_INVALID
    n = betanet_bundle_status_bytes(report, source)
    if n == 0:
        return BETANET_E_INVALID
    if out_cap < n:
        return BETANET_E_BUFFER_TOO_SMALL
    out[0] = 0x82
    out[1] = BETANET_BUNDLE_ADMIN_STATUS_REPORT
    out[2] = 0x86 if report.is_fragment else 0x84
    out[3] = 0x84
    w = 4
    for i in range(4):
        if report.timed & (1u << i):
            out[w] = 0x82
            out[w + 1] = 0xF5
            w += 2
            w += wr_head(out + w, 0, report.times[i])
        else:
            out[w] = 0x81
            out[w + 1] = 0xF5 if report.asserted & (1u << i) else 0xF4
            w += 2
    w += wr_head(out + w, 0, report.reason)
    w += wr_eid_spec(out + w, source)
    out[w] = 0x82
    w += 1
    w += wr_head(out + w, 0, report.creation_ms)
    w += wr_head(out + w, 0, report.sequence)
    if report.is_fragment:
        w += wr_head(out + w, 0, report.fragment_offset)
        w += wr_head(out + w, 0, report.payload_length)
    out_len[0] = w
    return BETANET_OK
