# Shared by the _native modules: the common part of betanet.h and status checking.
# Capability modules declare their own section with `cdef extern from "betanet.h"`.

from betanet_common cimport *


cdef inline int check(int rc, str context=None) except -1:
    """Raise the betanet exception for a negative status; return it otherwise."""
    if rc < 0:
        from betanet.errors import error_for
        raise error_for(rc, context or "")
    return rc
