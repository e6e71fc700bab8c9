# Cython declarations of the types and constants of include/betanet/navigator.h — the one copy,
# cimported by the core (src/core/navigator.pyx) and the wrapper (betanet._native.navigator).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

from libc.stdint cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_NAV_LATENCY
        BETANET_NAV_ENERGY
        BETANET_NAV_FAILURE
        BETANET_NAV_PRIVACY
        BETANET_NAV_DEFAULT_K
        BETANET_NAV_MAX_K
        BETANET_NAV_PRESET_BALANCED
        BETANET_NAV_PRESET_REAL_TIME
        BETANET_NAV_PRESET_ENERGY_EFFICIENT
        BETANET_NAV_PRESET_PRIVACY_FIRST
        BETANET_NAV_REASON_NONE
        BETANET_NAV_REASON_UNREACHABLE
        BETANET_NAV_REASON_DEADLINE
        BETANET_NAV_REASON_PRIVACY
        BETANET_NAV_REASON_COMBINED
        BETANET_NAV_REASON_SELF
    ctypedef struct betanet_nav_qos_t:
        double weights[4]
        double deadline_ms
        double privacy_budget
        uint32_t k
    ctypedef struct betanet_nav_route_t:
        uint32_t next_hop
        uint16_t transport
        uint16_t reason
        double cost[4]
        double score
        uint32_t hops
    ctypedef struct betanet_nav_graph_t:
        pass
