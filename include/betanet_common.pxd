# Cython declarations of the common section of betanet.h (status codes, CPU bits, init).
# The one copy, cimported by the core (src/core/bnt.pxd) and by the wrappers
# (src/pyapi/betanet/_native/_common.pxd); capability sections are declared by their modules.

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_OK
        BETANET_E_INVALID
        BETANET_E_BUFFER_TOO_SMALL
        BETANET_E_MALFORMED
        BETANET_E_AUTH
        BETANET_E_REPLAY
        BETANET_E_LIMIT
        BETANET_E_NOMEM
        BETANET_E_UNCORRECTABLE
        BETANET_E_EXPIRED
        BETANET_E_STATE
        BETANET_E_NOT_FOUND
        BETANET_E_NO_PATH
        BETANET_E_CRYPTO
        BETANET_E_UNSUPPORTED
        BETANET_E_PROTOCOL
    enum:
        BETANET_CPU_SSSE3
        BETANET_CPU_AVX2
        BETANET_CPU_AVX512
        BETANET_CPU_GFNI
        BETANET_CPU_NEON
        BETANET_CPU_AVX512IFMA
        BETANET_CPU_SSE42
    const char *betanet_strerror(int code)
    int betanet_init()
