/* betanet/vrf.h — section of the public C API; include <betanet.h>, not this file. */
#ifndef BETANET_VRF_H
#define BETANET_VRF_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/vrf.h"
#endif

#endif /* BETANET_VRF_H */
