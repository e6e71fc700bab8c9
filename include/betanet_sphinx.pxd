# Cython declarations of the types and constants of include/betanet/sphinx.h — the one copy,
# cimported by the core (src/core/sphinx.pyx) and the wrapper (betanet._native.sphinx).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

from libc.stdint cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_SPHINX_DEFAULT_HOPS
        BETANET_SPHINX_DEFAULT_PAYLOAD_BYTES
        BETANET_SPHINX_MAX_HOPS
        BETANET_SPHINX_MIN_PAYLOAD_BYTES
        BETANET_SPHINX_MAX_PAYLOAD_BYTES
        BETANET_SPHINX_ENTRY_BYTES
        BETANET_SPHINX_KEY_BYTES
        BETANET_SPHINX_ID_BYTES
        BETANET_SPHINX_MAX_EPOCHS
        BETANET_SPHINX_RELAY
        BETANET_SPHINX_DELIVER
        BETANET_SPHINX_REPLY
    ctypedef struct betanet_sphinx_hop_t:
        uint8_t node_id[32]
        uint8_t public_key[32]
        uint32_t delay_ms
    ctypedef struct betanet_sphinx_result_t:
        int32_t status
        uint32_t action
        uint32_t delay_ms
        uint32_t epoch
        uint32_t out_len
        uint8_t node_id[32]
        uint8_t surb_id[16]
    ctypedef struct betanet_sphinx_node_t:
        pass
