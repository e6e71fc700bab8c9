/* betanet/bundle.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Bundle Protocol version 7 (RFC 9171) codec: zero-copy parsing of a bundle into a view of
 * offsets and lengths into the caller's buffer, serialisation into caller buffers whose
 * size a twin function tells, CRC-16/X.25 and CRC-32C (§4.2.1), the unprocessable-block
 * policy (§4.2.4), fragmentation (§5.8) and reassembly (§5.9), a fixed-size bundle id for
 * hosts, and bundle status reports (§6.1.1). Every choice the RFC leaves open is pinned in
 * docs/dtn.md. The parser never allocates; only the reassembler owns memory.
 *
 * Thread-safety: every function is reentrant; a reassembler handle is used by one thread
 * at a time. Functions that need the library initialised call betanet_init() themselves.
 */
#ifndef BETANET_BUNDLE_H
#define BETANET_BUNDLE_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/bundle.h"
#endif

#ifndef BETANET_NODISCARD
#if defined(__GNUC__) || defined(__clang__)
#define BETANET_NODISCARD __attribute__((warn_unused_result))
#else
#define BETANET_NODISCARD
#endif
#endif

/* ---- constants from RFC 9171 ------------------------------------------------------ */
#define BETANET_BUNDLE_VERSION            7
#define BETANET_BUNDLE_CRC_NONE           0
#define BETANET_BUNDLE_CRC_16             1   /* CRC-16/X.25, 2 bytes */
#define BETANET_BUNDLE_CRC_32C            2   /* CRC-32C (Castagnoli), 4 bytes */

#define BETANET_BUNDLE_EID_DTN            1   /* URI scheme codes (§4.2.5.1) */
#define BETANET_BUNDLE_EID_IPN            2

#define BETANET_BUNDLE_BLOCK_PAYLOAD      1   /* block type codes (§9.1, RFC 9172) */
#define BETANET_BUNDLE_BLOCK_PREVIOUS_NODE 6
#define BETANET_BUNDLE_BLOCK_BUNDLE_AGE   7
#define BETANET_BUNDLE_BLOCK_HOP_COUNT    10
#define BETANET_BUNDLE_BLOCK_BIB          11
#define BETANET_BUNDLE_BLOCK_BCB          12

/* Bundle processing control flags (§4.2.3). */
#define BETANET_BUNDLE_F_IS_FRAGMENT      0x000001u
#define BETANET_BUNDLE_F_ADMIN_RECORD     0x000002u
#define BETANET_BUNDLE_F_MUST_NOT_FRAGMENT 0x000004u
#define BETANET_BUNDLE_F_ACK_REQUESTED    0x000020u
#define BETANET_BUNDLE_F_STATUS_TIME      0x000040u
#define BETANET_BUNDLE_F_REPORT_RECEPTION 0x004000u
#define BETANET_BUNDLE_F_REPORT_FORWARDING 0x010000u
#define BETANET_BUNDLE_F_REPORT_DELIVERY  0x020000u
#define BETANET_BUNDLE_F_REPORT_DELETION  0x040000u

/* Block processing control flags (§4.2.4). */
#define BETANET_BUNDLE_BF_REPLICATE       0x01u  /* replicate in every fragment */
#define BETANET_BUNDLE_BF_REPORT          0x02u  /* status report if unprocessable */
#define BETANET_BUNDLE_BF_DELETE_BUNDLE   0x04u  /* delete the bundle if unprocessable */
#define BETANET_BUNDLE_BF_DISCARD         0x10u  /* discard the block if unprocessable */

/* Status report reason codes (§6.1.1, §9.5). */
#define BETANET_BUNDLE_REASON_NO_INFO          0
#define BETANET_BUNDLE_REASON_LIFETIME_EXPIRED 1
#define BETANET_BUNDLE_REASON_UNIDIRECTIONAL   2
#define BETANET_BUNDLE_REASON_CANCELED         3
#define BETANET_BUNDLE_REASON_DEPLETED_STORAGE 4
#define BETANET_BUNDLE_REASON_DEST_UNINTELLIGIBLE 5
#define BETANET_BUNDLE_REASON_NO_ROUTE         6
#define BETANET_BUNDLE_REASON_NO_CONTACT       7
#define BETANET_BUNDLE_REASON_BLOCK_UNINTELLIGIBLE 8
#define BETANET_BUNDLE_REASON_HOP_LIMIT        9
#define BETANET_BUNDLE_REASON_TRAFFIC_PARED    10
#define BETANET_BUNDLE_REASON_BLOCK_UNSUPPORTED 11

/* ---- limits ------------------------------------------------------------------------ */
#define BETANET_BUNDLE_DEFAULT_MAX_BYTES  (64u << 20)  /* 64 MiB */
#define BETANET_BUNDLE_DEFAULT_MAX_BLOCKS 64
#define BETANET_BUNDLE_DEFAULT_MAX_EID    1024          /* bytes of a dtn-scheme SSP */

/* Parse flags (betanet_bundle_limits_t.flags). Default 0. */
#define BETANET_BUNDLE_PARSE_PREFIX  0x1u  /* bytes may follow the bundle; view.len says where it ends */
#define BETANET_BUNDLE_PARSE_STRICT  0x2u  /* sender obligations too: primary CRC unless a BIB covers
                                            * block 0 (§4.3.1), a bundle age block when the creation
                                            * time is 0 (§4.4.2), no status report requests in an
                                            * administrative record or from dtn:none (§4.2.3) */

typedef struct betanet_bundle_limits {
    size_t max_bytes;     /* whole bundle; larger inputs fail before anything is read */
    size_t max_blocks;    /* canonical blocks (the caller's block array is a limit too) */
    size_t max_eid_bytes; /* SSP text of a dtn-scheme EID */
    uint32_t flags;       /* BETANET_BUNDLE_PARSE_* */
} betanet_bundle_limits_t;

/* Fill `out` with the defaults above. Errors: BETANET_E_INVALID (NULL). */
int betanet_bundle_limits_default(betanet_bundle_limits_t *out);

/* ---- the view: offsets and lengths into the parsed buffer --------------------------- */
typedef struct betanet_bundle_eid {
    uint32_t scheme;       /* BETANET_BUNDLE_EID_DTN or _IPN */
    uint32_t is_none;      /* 1 for dtn:none */
    uint64_t node;         /* ipn node number */
    uint64_t service;      /* ipn service number */
    size_t ssp_off, ssp_len; /* dtn: the SSP text (e.g. "//node/svc"), without "dtn:" */
    size_t off, len;       /* the EID's whole CBOR encoding */
} betanet_bundle_eid_t;

typedef struct betanet_bundle_primary {
    uint64_t flags;        /* BETANET_BUNDLE_F_* */
    uint32_t crc_type;
    betanet_bundle_eid_t destination, source, report_to;
    uint64_t creation_ms;  /* DTN time: ms since 2000-01-01T00:00:00Z, 0 = no clock */
    uint64_t sequence;
    uint64_t lifetime_ms;
    uint64_t fragment_offset;   /* when flags & BETANET_BUNDLE_F_IS_FRAGMENT */
    uint64_t total_adu_length;  /* ditto */
    size_t off, len;       /* the primary block's encoding */
} betanet_bundle_primary_t;

/* Block status the parser and the policy report. */
#define BETANET_BUNDLE_BLOCK_OK            0
#define BETANET_BUNDLE_BLOCK_UNKNOWN       1   /* a type this codec does not interpret */
#define BETANET_BUNDLE_BLOCK_UNINTELLIGIBLE 2  /* a known type whose data does not decode */
/* Action the policy chose for a block (betanet_bundle_policy). */
#define BETANET_BUNDLE_ACTION_KEEP     0
#define BETANET_BUNDLE_ACTION_DISCARD  1

typedef struct betanet_bundle_block {
    uint64_t type;
    uint64_t number;
    uint64_t flags;        /* BETANET_BUNDLE_BF_* */
    uint32_t crc_type;
    uint32_t status;       /* BETANET_BUNDLE_BLOCK_OK / _UNKNOWN / _UNINTELLIGIBLE */
    uint32_t action;       /* set by betanet_bundle_policy */
    size_t data_off, data_len; /* block-type-specific data (inside its byte string) */
    size_t off, len;       /* the block's whole encoding */
} betanet_bundle_block_t;

typedef struct betanet_bundle_view {
    betanet_bundle_primary_t primary;
    betanet_bundle_block_t *blocks;  /* the caller's array, in bundle order */
    size_t nblocks;
    size_t payload;        /* index of the payload block in blocks (always nblocks - 1) */
    size_t len;            /* bytes of the bundle (with PARSE_PREFIX, where it ends) */
    /* decoded extension blocks (has_* is 0 when absent or unintelligible) */
    uint32_t has_previous_node, has_age, has_hop_count;
    betanet_bundle_eid_t previous_node;
    uint64_t age_ms;
    uint64_t hop_limit, hop_count;
    /* on failure: what and where (BETANET_BUNDLE_ERR_*) */
    int error;
    size_t error_offset;
} betanet_bundle_view_t;

/* Detail of a parse failure (view.error). */
#define BETANET_BUNDLE_ERR_NONE        0
#define BETANET_BUNDLE_ERR_TRUNCATED   1   /* the input ends inside the bundle */
#define BETANET_BUNDLE_ERR_CBOR        2   /* not well-formed, not deterministic, or wrong type */
#define BETANET_BUNDLE_ERR_VERSION     3   /* version is not 7 */
#define BETANET_BUNDLE_ERR_PRIMARY     4   /* primary block structure */
#define BETANET_BUNDLE_ERR_EID         5   /* an endpoint ID */
#define BETANET_BUNDLE_ERR_CRC_TYPE    6   /* unknown CRC type or CRC field of the wrong size */
#define BETANET_BUNDLE_ERR_CRC         7   /* CRC mismatch: the block is corrupted */
#define BETANET_BUNDLE_ERR_BLOCK       8   /* canonical block structure */
#define BETANET_BUNDLE_ERR_BLOCK_NUMBER 9  /* zero or duplicate block number */
#define BETANET_BUNDLE_ERR_PAYLOAD     10  /* payload block missing, not last, not number 1, twice */
#define BETANET_BUNDLE_ERR_FRAGMENT    11  /* fragment overruns its ADU */
#define BETANET_BUNDLE_ERR_EXTENSION   12  /* previous node / age / hop count block twice */
#define BETANET_BUNDLE_ERR_TRAILING    13  /* bytes after the bundle */
#define BETANET_BUNDLE_ERR_TOO_LARGE   14  /* limits.max_bytes */
#define BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS 15 /* limits.max_blocks or the block array */
#define BETANET_BUNDLE_ERR_EID_TOO_LONG 16 /* limits.max_eid_bytes */
#define BETANET_BUNDLE_ERR_STRICT      17  /* a BETANET_BUNDLE_PARSE_STRICT rule */

/* A static English description of a BETANET_BUNDLE_ERR_* code. Never NULL. */
const char *betanet_bundle_error_string(int error);

/* Parse the bundle in buf[0, len) into `view`, describing its canonical blocks in the
 * caller's array blocks[0, blocks_cap). Nothing is copied or allocated: the view holds
 * offsets into buf, which must outlive it. Every block CRC is checked. `limits` may be NULL
 * (the defaults). Strict where RFC 9171 says SHALL: version 7, deterministic CBOR
 * (shortest heads, definite lengths inside blocks), exactly one payload block, last,
 * number 1, unique non-zero block numbers, CRC field of the size its type says, a fragment
 * within its ADU. Unknown block types are reported (status UNKNOWN), not rejected; see
 * betanet_bundle_policy.
 * Errors: BETANET_E_MALFORMED (view.error/error_offset say what and where),
 *         BETANET_E_LIMIT (size, blocks, EID length), BETANET_E_INVALID (NULL). */
BETANET_NODISCARD int betanet_bundle_parse(const uint8_t *buf, size_t len,
                                           const betanet_bundle_limits_t *limits,
                                           betanet_bundle_block_t *blocks, size_t blocks_cap,
                                           betanet_bundle_view_t *view);

/* Apply RFC 9171 §4.2.4 to a parsed bundle. A block is unprocessable when it is
 * UNINTELLIGIBLE, or, when known_types is NULL, UNKNOWN; when known_types is not NULL, any
 * other block whose type is not one of known_types[0, n_known) is unprocessable too (a host
 * passes the types it processes: its own extension types, without 11/12 if it has no BPSec).
 * Sets blocks[i].action and writes to *verdict a set of BETANET_BUNDLE_VERDICT_* bits and
 * to *reason the status report reason (BLOCK_UNSUPPORTED or BLOCK_UNINTELLIGIBLE) or 0.
 * Errors: BETANET_E_INVALID (NULL). */
#define BETANET_BUNDLE_VERDICT_DELETE  0x1u  /* delete the bundle */
#define BETANET_BUNDLE_VERDICT_DISCARD 0x2u  /* some blocks are to be discarded */
#define BETANET_BUNDLE_VERDICT_REPORT  0x4u  /* send a status report */
BETANET_NODISCARD int betanet_bundle_policy(betanet_bundle_view_t *view, const uint64_t *known_types,
                                            size_t n_known, uint32_t *verdict, uint32_t *reason);

/* Bytes betanet_bundle_rewrite writes for this view (0 when the view is NULL). */
size_t betanet_bundle_rewrite_bytes(const betanet_bundle_view_t *view);
/* Copy the bundle buf (as parsed into view) to out without the blocks whose action is
 * DISCARD; every other block is copied byte for byte.
 * Errors: BETANET_E_BUFFER_TOO_SMALL, BETANET_E_INVALID. */
int betanet_bundle_rewrite(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                           uint8_t *out, size_t out_cap, size_t *out_len);

/* ---- CRC (§4.2.1) ------------------------------------------------------------------- */
/* CRC-16/X.25 or CRC-32C of data[0, len) (no CBOR framing: the raw checksum), through the
 * CPU's CRC32 instruction when present (BETANET_CPU_SSE42) and a portable path otherwise.
 * Errors: BETANET_E_INVALID (NULL, crc_type not 1 or 2). */
int betanet_bundle_crc(uint32_t crc_type, const uint8_t *data, size_t len, uint32_t *out);

/* ---- serialising ------------------------------------------------------------------- */
/* An EID to encode. dtn: ssp is the text after "dtn:" (e.g. "//node/svc"); ssp_len 0
 * means dtn:none. ipn: node and service numbers. */
typedef struct betanet_bundle_eid_spec {
    uint32_t scheme;
    uint64_t node, service;
    const uint8_t *ssp;
    size_t ssp_len;
} betanet_bundle_eid_spec_t;

typedef struct betanet_bundle_primary_spec {
    uint64_t flags;
    uint32_t crc_type;
    betanet_bundle_eid_spec_t destination, source, report_to;
    uint64_t creation_ms, sequence, lifetime_ms;
    uint64_t fragment_offset, total_adu_length; /* used when flags has IS_FRAGMENT */
} betanet_bundle_primary_spec_t;

typedef struct betanet_bundle_block_spec {
    uint64_t type, number, flags;
    uint32_t crc_type;
    const uint8_t *data;   /* block-type-specific data (may be NULL when data_len is 0) */
    size_t data_len;
} betanet_bundle_block_spec_t;

/* Exact bytes betanet_bundle_encode writes for these specs; 0 if they are invalid. */
size_t betanet_bundle_encoded_bytes(const betanet_bundle_primary_spec_t *primary,
                                    const betanet_bundle_block_spec_t *blocks, size_t nblocks);
/* Encode a bundle (deterministic CBOR, CRCs computed) into out. The blocks go in the order
 * given; exactly one is the payload block, the last, number 1; numbers unique and non-zero.
 * Errors: BETANET_E_INVALID (a rule above, bad CRC type or scheme, NULL),
 *         BETANET_E_BUFFER_TOO_SMALL. */
int betanet_bundle_encode(const betanet_bundle_primary_spec_t *primary,
                          const betanet_bundle_block_spec_t *blocks, size_t nblocks,
                          uint8_t *out, size_t out_cap, size_t *out_len);

/* Bytes of the CBOR encoding of an EID spec (0 if invalid), and the encoding itself (the
 * form used inside a previous node block and status reports).
 * Errors: BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL. */
size_t betanet_bundle_eid_encoded_bytes(const betanet_bundle_eid_spec_t *eid);
int betanet_bundle_eid_encode(const betanet_bundle_eid_spec_t *eid, uint8_t *out, size_t out_cap,
                              size_t *out_len);

/* ---- bundle id ---------------------------------------------------------------------- */
/* A fixed-size key for a bundle: BLAKE2b-256 of the source EID's encoding (32 bytes) ||
 * creation ms || sequence || fragment offset || fragment payload length, each a big-endian
 * uint64; the last two are all-ones for a bundle that is not a fragment. The first
 * BETANET_BUNDLE_ADU_ID_BYTES identify the ADU (all fragments of one bundle share them).
 * Errors: BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL (id_len < 64). */
#define BETANET_BUNDLE_ID_BYTES     64
#define BETANET_BUNDLE_ADU_ID_BYTES 48
int betanet_bundle_id(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                      uint8_t *id, size_t id_len);

/* ---- fragmentation (§5.8) ------------------------------------------------------------- */
/* Bytes of the fragment carrying payload bytes [offset, offset + frag_len) of the bundle
 * buf/view (0 if the range is empty or out of bounds). */
size_t betanet_bundle_fragment_bytes(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                                     uint64_t offset, uint64_t frag_len);
/* Write that fragment: the primary block with IS_FRAGMENT set and the offset/ADU length
 * (relative to the original ADU when the input is itself a fragment), the blocks flagged
 * REPLICATE in every fragment and all other extension blocks only in the fragment at ADU
 * offset 0 (byte for byte), then the payload slice with the payload block's CRC type.
 * Errors: BETANET_E_INVALID (range empty or beyond the payload, MUST_NOT_FRAGMENT set,
 *         NULL), BETANET_E_BUFFER_TOO_SMALL. */
int betanet_bundle_fragment(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                            uint64_t offset, uint64_t frag_len,
                            uint8_t *out, size_t out_cap, size_t *out_len);

/* ---- reassembly (§5.9) -------------------------------------------------------------- */
/* Collects the fragments of one ADU. The handle owns a buffer of the ADU's length
 * (bounded by max_adu_bytes) and at most max_ranges disjoint received ranges. */
typedef struct betanet_bundle_reasm betanet_bundle_reasm_t;

/* Errors: BETANET_E_INVALID (out NULL, max_ranges 0 or above SIZE_MAX / 16),
 *         BETANET_E_LIMIT (total_adu_length > max_adu_bytes), BETANET_E_NOMEM. */
int betanet_bundle_reasm_new(uint64_t total_adu_length, size_t max_adu_bytes, size_t max_ranges,
                             betanet_bundle_reasm_t **out);
void betanet_bundle_reasm_free(betanet_bundle_reasm_t *r);
/* Add a parsed fragment. Overlaps are accepted only where the bytes agree.
 * Returns 1 when the ADU is now complete, 0 when more is needed.
 * Errors: BETANET_E_MALFORMED (not a fragment, another ADU length, another bundle than the
 *         first fragment added, fragment beyond its ADU, overlap with different bytes),
 *         BETANET_E_LIMIT (more than max_ranges gaps), BETANET_E_NOMEM, BETANET_E_INVALID. */
BETANET_NODISCARD int betanet_bundle_reasm_add(betanet_bundle_reasm_t *r, const uint8_t *buf, size_t len,
                                               const betanet_bundle_view_t *view);
/* Bytes of the reassembled bundle (0 until complete). */
size_t betanet_bundle_reasm_bytes(const betanet_bundle_reasm_t *r);
/* Write the reassembled bundle: the primary block of the fragments without the fragment
 * fields (its CRC type kept), the extension blocks of the fragment at offset 0, and the
 * whole ADU as payload (with that fragment's payload CRC type).
 * Errors: BETANET_E_STATE (not complete), BETANET_E_BUFFER_TOO_SMALL, BETANET_E_INVALID. */
int betanet_bundle_reasm_finish(const betanet_bundle_reasm_t *r, uint8_t *out, size_t out_cap,
                                size_t *out_len);

/* ---- status reports (§6.1.1) ------------------------------------------------------- */
#define BETANET_BUNDLE_ADMIN_STATUS_REPORT 1
#define BETANET_BUNDLE_STATUS_RECEIVED   0x1u
#define BETANET_BUNDLE_STATUS_FORWARDED  0x2u
#define BETANET_BUNDLE_STATUS_DELIVERED  0x4u
#define BETANET_BUNDLE_STATUS_DELETED    0x8u

typedef struct betanet_bundle_status_report {
    uint32_t asserted;     /* BETANET_BUNDLE_STATUS_* bits */
    uint32_t timed;        /* which assertions carry a time */
    uint64_t times[4];     /* DTN ms of received, forwarded, delivered, deleted */
    uint64_t reason;       /* BETANET_BUNDLE_REASON_* */
    betanet_bundle_eid_t source; /* subject bundle's source (offsets into the record) */
    uint64_t creation_ms, sequence;
    uint32_t is_fragment;
    uint64_t fragment_offset, payload_length;
} betanet_bundle_status_report_t;

/* Decode an administrative record (a payload of a bundle flagged ADMIN_RECORD) holding a
 * status report. Errors: BETANET_E_MALFORMED, BETANET_E_UNSUPPORTED (another record type),
 *         BETANET_E_LIMIT (EID longer than max_eid_bytes), BETANET_E_INVALID. */
BETANET_NODISCARD int betanet_bundle_status_decode(const uint8_t *rec, size_t len, size_t max_eid_bytes,
                                                   betanet_bundle_status_report_t *out);
/* Encode a status report record about the subject bundle (source, timestamp, fragment
 * fields from report; the source given as a spec). Twin: betanet_bundle_status_bytes.
 * Errors: BETANET_E_INVALID, BETANET_E_BUFFER_TOO_SMALL. */
size_t betanet_bundle_status_bytes(const betanet_bundle_status_report_t *report,
                                   const betanet_bundle_eid_spec_t *source);
int betanet_bundle_status_encode(const betanet_bundle_status_report_t *report,
                                 const betanet_bundle_eid_spec_t *source,
                                 uint8_t *out, size_t out_cap, size_t *out_len);

#endif /* BETANET_BUNDLE_H */
