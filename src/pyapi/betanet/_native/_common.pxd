# Shared by the _native modules: the common part of betanet.h and status checking.
# Capability modules declare their own section with `cdef extern from "betanet.h"`.

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
    const char *betanet_strerror(int code)
    int betanet_init()


cdef inline int check(int rc, str context=None) except -1:
    """Raise the betanet exception for a negative status; return it otherwise."""
    if rc < 0:
        from betanet.errors import error_for
        raise error_for(rc, context or "")
    return rc
