"""betanet._native: the Cython wrappers over include/betanet.h, one module per capability.

This package is the only place Python touches C. Each module links the shared libbetanet
that ships beside it, so Python exercises exactly the ABI that C hosts use.
"""
