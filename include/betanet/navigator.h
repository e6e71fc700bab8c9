/* betanet/navigator.h — section of the public C API; include <betanet.h>, not this file. */
#ifndef BETANET_NAVIGATOR_H
#define BETANET_NAVIGATOR_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/navigator.h"
#endif

#endif /* BETANET_NAVIGATOR_H */
