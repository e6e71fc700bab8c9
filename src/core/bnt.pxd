# bnt.pxd — what every core module may cimport: status codes and CPU bits from betanet.h,
# and libsodium (sodium.pxd, the one declaration of it). The internal helpers of base.pyx are in bnt_internal.pxd.
# Only extern declarations and inline functions live here (DESIGN.md).

from libc.stdint cimport uint8_t, uint32_t, uint64_t

from betanet_common cimport *

from sodium cimport *
