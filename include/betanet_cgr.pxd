# Cython declarations of the types and constants of include/betanet/cgr.h — the one copy,
# cimported by the core (src/core/cgr.pyx) and the wrapper (betanet._native.cgr).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

from libc.stdint cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_CGR_MAX_K
        BETANET_CGR_DEFAULT_MAX_ENTRIES
        BETANET_CGR_MAX_ENTRIES_LIMIT
    ctypedef struct betanet_cgr_plan_t:
        pass
    ctypedef struct betanet_cgr_route_t:
        double arrival
        double confidence
        double volume
        uint64_t next_hop
        uint32_t hops
