# grow.pxd — growable arrays owned by a handle (navigator, cgr): buffers only grow, so a
# search allocates nothing per step. Inline functions only (DESIGN.md: core modules share
# code through .pxd files, never by cimporting each other's cdef functions).

from libc.stdint cimport SIZE_MAX
from libc.string cimport memcpy
from betanet_common cimport BETANET_E_NOMEM
from bnt_internal cimport bnt_alloc, bnt_free


cdef inline int regrow(void **p, size_t old_n, size_t new_n, size_t elem) noexcept nogil:
    """Replace *p by a zeroed block of new_n elements holding the first old_n of the old
    (BETANET_E_NOMEM, *p untouched, if the size overflows or the allocator fails)."""
    cdef void *q
    if elem and new_n > SIZE_MAX // elem:
        return BETANET_E_NOMEM
    q = bnt_alloc(new_n * elem if new_n else elem)
    if q == NULL:
        return BETANET_E_NOMEM
    if p[0] != NULL:
        if old_n:
            memcpy(q, p[0], (old_n if old_n < new_n else new_n) * elem)
        bnt_free(p[0])
    p[0] = q
    return 0


cdef inline size_t next_cap(size_t cur, size_t need) noexcept nogil:
    """Doubling growth: the next capacity that holds need elements."""
    cdef size_t c = cur * 2 if cur else 16
    return c if c > need else need
