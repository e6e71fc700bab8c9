# Cython declarations of the types and constants of include/betanet/dpp.h — the one copy,
# cimported by the core (src/core/dpp.pyx) and the wrapper (betanet._native.dpp).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_DPP_MAX_QUEUES
        BETANET_DPP_MAX_OPTIONS
        BETANET_DPP_MAX_CELLS
    ctypedef struct betanet_dpp_scheduler_t:
        pass
