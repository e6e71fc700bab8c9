/* betanet/htx.h — section of the public C API; include <betanet.h>, not this file. */
#ifndef BETANET_HTX_H
#define BETANET_HTX_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/htx.h"
#endif

#endif /* BETANET_HTX_H */
