# bnt.pxd — what every core module may cimport: status codes and CPU bits from betanet.h,
# and libsodium. The internal helpers of base.pyx are in bnt_internal.pxd.
# Only extern declarations and inline functions live here (DESIGN.md).

from libc.stdint cimport uint8_t, uint32_t, uint64_t

from betanet_common cimport *

cdef extern from "sodium.h" nogil:
    int sodium_init()
    void sodium_memzero(void *pnt, size_t length)
    int sodium_memcmp(const void *b1, const void *b2, size_t length)
    void randombytes_buf(void *buf, size_t size)
