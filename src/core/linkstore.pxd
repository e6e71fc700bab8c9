# linkstore.pxd — the navigator graph's link storage (docs/navigator.md, "Graph
# storage"): CSR rows with spare room over structure-of-arrays edges, and the inline
# accessors the searches use. Inline functions only (DESIGN.md).

from libc.stdint cimport uint16_t, uint32_t, uint64_t, int64_t
from betanet_common cimport BETANET_E_NOMEM
from grow cimport regrow, next_cap
from semiring cimport KeyWeights, nats


cdef struct LinkStore:
    # CSR rows with room: row u = edges row_start[u] .. row_start[u] + row_len[u]
    uint32_t n
    uint32_t ncap
    uint64_t n_links
    uint64_t *row_start
    uint32_t *row_len
    uint32_t *row_cap
    uint64_t e_cap
    uint64_t e_used
    uint64_t e_holes
    uint32_t *dst
    double *w[4]            # one plane per objective: Dijkstra streams 8 bytes per edge
    double *nats            # -ln(1 - failure), the additive form of failure
    uint16_t *tr
    double *capa


cdef inline int ensure_node_arrays(LinkStore *L, uint32_t n) noexcept nogil:
    cdef size_t c
    if n <= L.ncap:
        return 0
    c = next_cap(L.ncap, n)
    if (regrow(<void **> &L.row_start, L.ncap, c, sizeof(uint64_t)) or
            regrow(<void **> &L.row_len, L.ncap, c, sizeof(uint32_t)) or
            regrow(<void **> &L.row_cap, L.ncap, c, sizeof(uint32_t))):
        return BETANET_E_NOMEM
    L.ncap = <uint32_t> c
    return 0


cdef inline int ensure_edges(LinkStore *L, uint64_t need) noexcept nogil:
    cdef uint64_t c
    cdef int j
    if need <= L.e_cap:
        return 0
    c = next_cap(L.e_cap, need)
    if regrow(<void **> &L.dst, L.e_cap, c, sizeof(uint32_t)):
        return BETANET_E_NOMEM
    for j in range(4):
        if regrow(<void **> &L.w[j], L.e_cap, c, sizeof(double)):
            return BETANET_E_NOMEM
    if (regrow(<void **> &L.nats, L.e_cap, c, sizeof(double)) or
            regrow(<void **> &L.tr, L.e_cap, c, sizeof(uint16_t)) or
            regrow(<void **> &L.capa, L.e_cap, c, sizeof(double))):
        return BETANET_E_NOMEM
    L.e_cap = c
    return 0


cdef inline void put_edge(LinkStore *L, uint64_t e, uint32_t to, const double *cost, uint16_t tr,
                          double capa) noexcept nogil:
    L.dst[e] = to
    L.w[0][e] = cost[0]; L.w[1][e] = cost[1]; L.w[2][e] = cost[2]; L.w[3][e] = cost[3]
    L.nats[e] = nats(cost[2])
    L.tr[e] = tr
    L.capa[e] = capa


cdef inline void edge_cost(const LinkStore *L, uint64_t e, double *out) noexcept nogil:
    out[0] = L.w[0][e]; out[1] = L.w[1][e]; out[2] = L.w[2][e]; out[3] = L.w[3][e]


cdef inline void move_edge(LinkStore *L, uint64_t dst, uint64_t src) noexcept nogil:
    L.dst[dst] = L.dst[src]
    L.w[0][dst] = L.w[0][src]; L.w[1][dst] = L.w[1][src]
    L.w[2][dst] = L.w[2][src]; L.w[3][dst] = L.w[3][src]
    L.nats[dst] = L.nats[src]
    L.tr[dst] = L.tr[src]
    L.capa[dst] = L.capa[src]


cdef inline int64_t find_link(const LinkStore *L, uint32_t fr, uint32_t to, uint16_t tr) noexcept nogil:
    cdef uint64_t e = L.row_start[fr]
    cdef uint64_t end = e + L.row_len[fr]
    while e < end:
        if L.dst[e] == to and L.tr[e] == tr:
            return <int64_t> e
        e += 1
    return -1


cdef inline double link_key(const LinkStore *L, uint64_t e, const double *ec, const KeyWeights *kw) noexcept nogil:
    """A link's share of the QoS scalarisation (failure through its stored nats)."""
    cdef double k = kw.a0 * ec[0] + kw.a1 * ec[1] + kw.a3 * ec[3]
    if kw.a2 > 0:
        k += kw.a2 * L.nats[e]
    return k
