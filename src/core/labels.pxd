# labels.pxd — the Pareto search's labels (navigator.pyx, docs/navigator.md): a growing
# pool of labels (cost, scalarisation key, node, predecessor, edge, state) and each node's
# K slots holding label ids with copies of their costs and keys side by side, so a
# dominance check reads one contiguous block. Inline functions only (DESIGN.md).

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libc.math cimport INFINITY
from betanet_common cimport BETANET_E_NOMEM, BETANET_E_LIMIT
from grow cimport regrow, next_cap

cdef extern from *:
    """
    #define NAV_NONE       0xFFFFFFFFu   /* no label / no predecessor */
    #define NAV_MAX_LABELS 0xFFFFFFF0u
    """
    uint32_t NAV_NONE, NAV_MAX_LABELS


cdef enum LabelState:
    LABEL_TEMP = 1      # in a node's slots, not yet popped
    LABEL_PERM = 2      # popped (final) or an extreme from merge_extremes
    LABEL_DEAD = 3      # dominated or evicted while temporary


cdef struct LabelPool:
    # labels of the last frontier search
    size_t used
    size_t cap
    double *cost            # 4 each
    double *key
    uint32_t *node
    uint32_t *pred
    uint64_t *edge
    uint8_t *state          # LabelState


cdef struct NodeSlots:
    # per node K label ids with copies of their costs and keys side by side
    size_t cap              # of ids / key (cost: 4 * cap)
    uint32_t *ids
    double *cost
    double *key             # -INFINITY once popped
    size_t ncap             # of cnt (and extremes / 4)
    uint32_t *cnt
    uint32_t *extremes      # 4 * n: each objective's optimum label (merge_extremes)


cdef inline int ensure_labels(LabelPool *P, size_t need) noexcept nogil:
    cdef size_t c
    if need <= P.cap:
        return 0
    if need > NAV_MAX_LABELS:
        return BETANET_E_LIMIT
    c = next_cap(P.cap, need)
    if (regrow(<void **> &P.cost, P.cap * 4, c * 4, sizeof(double))
            or regrow(<void **> &P.key, P.cap, c, sizeof(double))
            or regrow(<void **> &P.node, P.cap, c, sizeof(uint32_t))
            or regrow(<void **> &P.pred, P.cap, c, sizeof(uint32_t))
            or regrow(<void **> &P.edge, P.cap, c, sizeof(uint64_t))
            or regrow(<void **> &P.state, P.cap, c, sizeof(uint8_t))):
        return BETANET_E_NOMEM
    P.cap = c
    return 0


cdef inline uint32_t new_label(LabelPool *P, const double *c, double key, uint32_t node, uint32_t pred,
                               uint64_t edge, LabelState state) noexcept nogil:
    cdef uint32_t l = <uint32_t> P.used
    P.used += 1
    memcpy(&P.cost[4 * l], c, 4 * sizeof(double))
    P.key[l] = key
    P.node[l] = node
    P.pred[l] = pred
    P.edge[l] = edge
    P.state[l] = state
    return l


cdef inline double node_min(const NodeSlots *S, size_t base, uint32_t c, uint32_t *at) noexcept nogil:
    """Smallest key among a node's temporary labels (INFINITY and at = NAV_NONE if none)."""
    cdef uint32_t i
    cdef double m = INFINITY
    at[0] = NAV_NONE
    for i in range(c):
        if S.key[base + i] > -INFINITY and (at[0] == NAV_NONE or S.key[base + i] < m):
            m = S.key[base + i]
            at[0] = i
    return m


cdef inline void slot_put(NodeSlots *S, size_t base, uint32_t i, uint32_t label, const double *c,
                          double key) noexcept nogil:
    S.ids[base + i] = label
    memcpy(&S.cost[4 * (base + i)], c, 4 * sizeof(double))
    S.key[base + i] = key


cdef inline void slot_move(NodeSlots *S, size_t base, uint32_t to, uint32_t frm) noexcept nogil:
    S.ids[base + to] = S.ids[base + frm]
    memcpy(&S.cost[4 * (base + to)], &S.cost[4 * (base + frm)], 4 * sizeof(double))
    S.key[base + to] = S.key[base + frm]


cdef inline bint better_in(const LabelPool *P, uint32_t a, uint32_t b, int j) noexcept nogil:
    """a is a better representative than b for objective j (then by key)."""
    cdef double x = P.cost[4 * a + j], y = P.cost[4 * b + j]
    return x < y or (x == y and P.key[a] < P.key[b])
