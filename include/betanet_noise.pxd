# Cython declarations of the types and constants of include/betanet/noise.h — the one copy,
# cimported by the core (src/core/noise.pyx) and the wrapper (betanet._native.noise).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

from libc.stdint cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_NOISE_KEY_BYTES, BETANET_NOISE_CIPHER_KEY_BYTES, BETANET_NOISE_HASH_BYTES
        BETANET_NOISE_TAG_BYTES, BETANET_NOISE_MAX_MESSAGE_BYTES
        BETANET_NOISE_XK_MAX_EMPTY_BYTES, BETANET_NOISE_XK_MAX_FRAME_BYTES
        BETANET_NOISE_HTX_PROLOGUE_BYTES, BETANET_NOISE_HTX_MAX_MESSAGE_BYTES
        BETANET_NOISE_INITIATOR, BETANET_NOISE_RESPONDER
        BETANET_NOISE_ACTION_WRITE, BETANET_NOISE_ACTION_READ
        BETANET_NOISE_ACTION_SPLIT, BETANET_NOISE_ACTION_DONE
    const char *BETANET_NOISE_HTX_PROLOGUE
    ctypedef struct betanet_noise_xk_t
