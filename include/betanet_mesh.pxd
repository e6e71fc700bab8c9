# Cython declarations of the types and constants of include/betanet/mesh.h — the one copy,
# cimported by the core (src/core/mesh.pyx) and the wrapper (betanet._native.mesh).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "betanet.h" nogil:
    ctypedef struct betanet_mesh_packet_t:
        uint8_t version
        uint8_t type
        uint8_t ttl
        uint8_t compressed
        uint8_t rsr
        uint64_t timestamp
        const uint8_t *sender
        const uint8_t *recipient
        const uint8_t *route
        size_t route_hops
        const uint8_t *payload
        size_t payload_len
        uint32_t original_size
        const uint8_t *signature
    ctypedef struct betanet_mesh_view_t:
        uint8_t version
        uint8_t type
        uint8_t ttl
        uint8_t flags
        uint64_t timestamp
        uint32_t original_size
        size_t sender_off
        size_t recipient_off
        size_t route_off
        size_t route_hops
        size_t payload_off
        size_t payload_len
        size_t signature_off
        size_t packet_len
    ctypedef struct betanet_mesh_fragment_t:
        uint8_t id[8]
        uint16_t index
        uint16_t total
        uint8_t parity
        uint8_t original_type
        uint32_t original_len
        size_t data_off
        size_t data_len
    ctypedef struct betanet_mesh_reasm_t:
        pass
    ctypedef struct betanet_mesh_reasm_stats_t:
        uint64_t completed
        uint64_t recovered
        uint64_t malformed
        uint64_t inconsistent
        uint64_t oversized
        uint64_t evicted
        uint64_t expired
        uint64_t in_flight
        uint64_t bytes_held
    ctypedef struct betanet_mesh_dedup_t:
        pass
    enum:
        BETANET_MESH_V1_HEADER_BYTES
        BETANET_MESH_V2_HEADER_BYTES
        BETANET_MESH_PEER_ID_BYTES
        BETANET_MESH_SIGNATURE_BYTES
        BETANET_MESH_FRAGMENT_HEADER_BYTES
        BETANET_MESH_PARITY_HEADER_BYTES
        BETANET_MESH_MAX_FRAGMENTS
        BETANET_MESH_MAX_PAYLOAD_BYTES
        BETANET_MESH_FLAG_HAS_RECIPIENT
        BETANET_MESH_FLAG_HAS_SIGNATURE
        BETANET_MESH_FLAG_IS_COMPRESSED
        BETANET_MESH_FLAG_HAS_ROUTE
        BETANET_MESH_FLAG_IS_RSR
        BETANET_MESH_DEDUP_BITS_PER_ENTRY
        BETANET_MESH_DEDUP_PROBES
        BETANET_MESH_CHUNK_BYTES
        BETANET_MESH_MTU_BYTES
        BETANET_MESH_PACKET_ID_BYTES
        BETANET_MESH_TYPE_FEC_PARITY
