# Cython declarations of the types and constants of include/betanet/bundle.h — the one copy,
# cimported by the core (src/core/bundle.pyx) and the wrapper (betanet._native.bundle).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

from libc.stdint cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_BUNDLE_VERSION
        BETANET_BUNDLE_CRC_NONE
        BETANET_BUNDLE_CRC_16
        BETANET_BUNDLE_CRC_32C
        BETANET_BUNDLE_EID_DTN
        BETANET_BUNDLE_EID_IPN
        BETANET_BUNDLE_BLOCK_PAYLOAD
        BETANET_BUNDLE_BLOCK_PREVIOUS_NODE
        BETANET_BUNDLE_BLOCK_BUNDLE_AGE
        BETANET_BUNDLE_BLOCK_HOP_COUNT
        BETANET_BUNDLE_BLOCK_BIB
        BETANET_BUNDLE_BLOCK_BCB
        BETANET_BUNDLE_F_IS_FRAGMENT
        BETANET_BUNDLE_F_ADMIN_RECORD
        BETANET_BUNDLE_F_MUST_NOT_FRAGMENT
        BETANET_BUNDLE_F_REPORT_RECEPTION
        BETANET_BUNDLE_F_REPORT_FORWARDING
        BETANET_BUNDLE_F_REPORT_DELIVERY
        BETANET_BUNDLE_F_REPORT_DELETION
        BETANET_BUNDLE_BF_REPLICATE
        BETANET_BUNDLE_BF_REPORT
        BETANET_BUNDLE_BF_DELETE_BUNDLE
        BETANET_BUNDLE_BF_DISCARD
        BETANET_BUNDLE_REASON_BLOCK_UNINTELLIGIBLE
        BETANET_BUNDLE_REASON_BLOCK_UNSUPPORTED
        BETANET_BUNDLE_DEFAULT_MAX_BYTES
        BETANET_BUNDLE_DEFAULT_MAX_BLOCKS
        BETANET_BUNDLE_DEFAULT_MAX_EID
        BETANET_BUNDLE_PARSE_PREFIX
        BETANET_BUNDLE_PARSE_STRICT
        BETANET_BUNDLE_BLOCK_OK
        BETANET_BUNDLE_BLOCK_UNKNOWN
        BETANET_BUNDLE_BLOCK_UNINTELLIGIBLE
        BETANET_BUNDLE_ACTION_KEEP
        BETANET_BUNDLE_ACTION_DISCARD
        BETANET_BUNDLE_ERR_NONE
        BETANET_BUNDLE_ERR_TRUNCATED
        BETANET_BUNDLE_ERR_CBOR
        BETANET_BUNDLE_ERR_VERSION
        BETANET_BUNDLE_ERR_PRIMARY
        BETANET_BUNDLE_ERR_EID
        BETANET_BUNDLE_ERR_CRC_TYPE
        BETANET_BUNDLE_ERR_CRC
        BETANET_BUNDLE_ERR_BLOCK
        BETANET_BUNDLE_ERR_BLOCK_NUMBER
        BETANET_BUNDLE_ERR_PAYLOAD
        BETANET_BUNDLE_ERR_FRAGMENT
        BETANET_BUNDLE_ERR_EXTENSION
        BETANET_BUNDLE_ERR_TRAILING
        BETANET_BUNDLE_ERR_TOO_LARGE
        BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS
        BETANET_BUNDLE_ERR_EID_TOO_LONG
        BETANET_BUNDLE_ERR_STRICT
        BETANET_BUNDLE_VERDICT_DELETE
        BETANET_BUNDLE_VERDICT_DISCARD
        BETANET_BUNDLE_VERDICT_REPORT
        BETANET_BUNDLE_ID_BYTES
        BETANET_BUNDLE_ADU_ID_BYTES
        BETANET_BUNDLE_ADMIN_STATUS_REPORT
        BETANET_BUNDLE_STATUS_RECEIVED
        BETANET_BUNDLE_STATUS_FORWARDED
        BETANET_BUNDLE_STATUS_DELIVERED
        BETANET_BUNDLE_STATUS_DELETED

    ctypedef struct betanet_bundle_limits_t:
        size_t max_bytes
        size_t max_blocks
        size_t max_eid_bytes
        uint32_t flags

    ctypedef struct betanet_bundle_eid_t:
        uint32_t scheme
        uint32_t is_none
        uint64_t node
        uint64_t service
        size_t ssp_off
        size_t ssp_len
        size_t off
        size_t len

    ctypedef struct betanet_bundle_primary_t:
        uint64_t flags
        uint32_t crc_type
        betanet_bundle_eid_t destination
        betanet_bundle_eid_t source
        betanet_bundle_eid_t report_to
        uint64_t creation_ms
        uint64_t sequence
        uint64_t lifetime_ms
        uint64_t fragment_offset
        uint64_t total_adu_length
        size_t off
        size_t len

    ctypedef struct betanet_bundle_block_t:
        uint64_t type
        uint64_t number
        uint64_t flags
        uint32_t crc_type
        uint32_t status
        uint32_t action
        size_t data_off
        size_t data_len
        size_t off
        size_t len

    ctypedef struct betanet_bundle_view_t:
        betanet_bundle_primary_t primary
        betanet_bundle_block_t *blocks
        size_t nblocks
        size_t payload
        size_t len
        uint32_t has_previous_node
        uint32_t has_age
        uint32_t has_hop_count
        betanet_bundle_eid_t previous_node
        uint64_t age_ms
        uint64_t hop_limit
        uint64_t hop_count
        int error
        size_t error_offset

    ctypedef struct betanet_bundle_eid_spec_t:
        uint32_t scheme
        uint64_t node
        uint64_t service
        const uint8_t *ssp
        size_t ssp_len

    ctypedef struct betanet_bundle_primary_spec_t:
        uint64_t flags
        uint32_t crc_type
        betanet_bundle_eid_spec_t destination
        betanet_bundle_eid_spec_t source
        betanet_bundle_eid_spec_t report_to
        uint64_t creation_ms
        uint64_t sequence
        uint64_t lifetime_ms
        uint64_t fragment_offset
        uint64_t total_adu_length

    ctypedef struct betanet_bundle_block_spec_t:
        uint64_t type
        uint64_t number
        uint64_t flags
        uint32_t crc_type
        const uint8_t *data
        size_t data_len

    ctypedef struct betanet_bundle_reasm_t:
        pass

    ctypedef struct betanet_bundle_status_report_t:
        uint32_t asserted
        uint32_t timed
        uint64_t times[4]
        uint64_t reason
        betanet_bundle_eid_t source
        uint64_t creation_ms
        uint64_t sequence
        uint32_t is_fragment
        uint64_t fragment_offset
        uint64_t payload_length
