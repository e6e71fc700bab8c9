# bnt.pxd — what every core module may cimport: status codes and CPU bits from betanet.h,
# and libsodium. The internal helpers of base.pyx are in bnt_internal.pxd.
# Only extern declarations and inline functions live here (DESIGN.md).

from libc.stdint cimport uint8_t, uint32_t, uint64_t

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

cdef extern from "sodium.h" nogil:
    int sodium_init()
    void sodium_memzero(void *pnt, size_t length)
    int sodium_memcmp(const void *b1, const void *b2, size_t length)
    void randombytes_buf(void *buf, size_t size)
