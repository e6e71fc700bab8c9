/* betanet/fec.h — section of the public C API; include <betanet.h>, not this file. */
#ifndef BETANET_FEC_H
#define BETANET_FEC_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/fec.h"
#endif

#endif /* BETANET_FEC_H */
