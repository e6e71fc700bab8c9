# heap4.pxd — the routing core's one priority queue: an indexed 4-ary min-heap of uint32
# items keyed by doubles, with decrease/increase-key and removal in place. pos[item] is
# the item's slot, HEAP_ABSENT (never pushed or removed) or HEAP_DONE (popped). Users:
# Dijkstra and the Martins node queue (navigator.pyx), earliest-arrival search over
# contacts (cgr.pyx), and heap sort of CSR rows (navigator.pyx, compaction).
# Inline functions only: see grow.pxd for why.

from libc.stdint cimport uint32_t

cdef extern from *:
    """
    #define BNT_HEAP_ABSENT 0xFFFFFFFFu
    #define BNT_HEAP_DONE   0xFFFFFFFEu
    """
    uint32_t HEAP_ABSENT "BNT_HEAP_ABSENT"
    uint32_t HEAP_DONE "BNT_HEAP_DONE"


cdef struct Heap4:
    double *key         # slot -> key
    uint32_t *item      # slot -> item
    uint32_t *pos       # item -> slot (or HEAP_ABSENT / HEAP_DONE)
    uint32_t len        # live slots


cdef inline void heap4_up(Heap4 *h, uint32_t i, double k, uint32_t v) noexcept nogil:
    """Place (k, v) at slot i or above it."""
    cdef uint32_t p
    while i > 0:
        p = (i - 1) >> 2
        if h.key[p] <= k:
            break
        h.key[i] = h.key[p]; h.item[i] = h.item[p]; h.pos[h.item[i]] = i
        i = p
    h.key[i] = k; h.item[i] = v; h.pos[v] = i


cdef inline void heap4_down(Heap4 *h, uint32_t i, double k, uint32_t v) noexcept nogil:
    """Place (k, v) at slot i or below it."""
    cdef uint32_t c, best, j, end, n = h.len
    cdef double bk
    while True:
        c = 4 * i + 1
        if c >= n:
            break
        best = c; bk = h.key[c]
        end = c + 4 if c + 4 < n else n
        j = c + 1
        while j < end:
            if h.key[j] < bk:
                bk = h.key[j]; best = j
            j += 1
        if bk >= k:
            break
        h.key[i] = bk; h.item[i] = h.item[best]; h.pos[h.item[i]] = i
        i = best
    h.key[i] = k; h.item[i] = v; h.pos[v] = i


cdef inline void heap4_set(Heap4 *h, uint32_t v, double k) noexcept nogil:
    """Insert v with key k (absent or popped before), or move it to key k."""
    cdef uint32_t p = h.pos[v]
    if p == HEAP_ABSENT or p == HEAP_DONE:
        h.len += 1
        heap4_up(h, h.len - 1, k, v)
    elif k < h.key[p]:
        heap4_up(h, p, k, v)
    elif k > h.key[p]:
        heap4_down(h, p, k, v)


cdef inline uint32_t heap4_pop(Heap4 *h) noexcept nogil:
    """Remove and return the item with the smallest key (h.len > 0); its pos becomes
    HEAP_DONE."""
    cdef uint32_t top = h.item[0]
    h.pos[top] = HEAP_DONE
    h.len -= 1
    if h.len:
        heap4_down(h, 0, h.key[h.len], h.item[h.len])
    return top


cdef inline void heap4_remove(Heap4 *h, uint32_t v) noexcept nogil:
    """Take v out of the heap if it is there; its pos becomes HEAP_ABSENT."""
    cdef uint32_t p = h.pos[v], last
    cdef double k
    if p == HEAP_ABSENT or p == HEAP_DONE:
        return
    h.pos[v] = HEAP_ABSENT
    h.len -= 1
    if p == h.len:
        return
    last = h.item[h.len]
    k = h.key[h.len]
    if p > 0 and h.key[(p - 1) >> 2] > k:
        heap4_up(h, p, k, last)
    else:
        heap4_down(h, p, k, last)
