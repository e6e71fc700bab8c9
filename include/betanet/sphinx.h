/* betanet/sphinx.h — section of the public C API; include <betanet.h>, not this file. */
#ifndef BETANET_SPHINX_H
#define BETANET_SPHINX_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/sphinx.h"
#endif

#endif /* BETANET_SPHINX_H */
