# navigator.pyx — routing core (include/betanet/navigator.h, docs/navigator.md): cost
# semiring, CSR link graph with in-place updates, single-objective Dijkstra, Martins
# label-setting Pareto search with a capped frontier, and QoS selection. Contact graph
# routing is cgr.pyx, the drift-plus-penalty scheduler dpp.pyx.
#
# The pieces it is built from are .pxd files of inline functions: the cost algebra
# (semiring.pxd), the CSR link storage (linkstore.pxd), the label pool and node slots
# (labels.pxd), the handle layout (navigator.pxd), the one priority queue (heap4.pxd).
# Every buffer a search touches belongs to its handle and only grows (grow.pxd); nothing
# is allocated per relaxation. Module-level code never runs in libbetanet (DESIGN.md), so
# constants are C macros or enums.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy, memset, memcmp
from libc.math cimport isnan, isfinite, expm1, INFINITY
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free
from grow cimport regrow, next_cap
from semiring cimport *
from linkstore cimport *
from labels cimport *
from heap4 cimport Heap4, HEAP_ABSENT, HEAP_DONE, heap4_set, heap4_pop, heap4_remove

from betanet_navigator cimport *

cdef extern from *:
    """
    #define NAV_MAX_NODES  0x7FFFFFFFu
    #define NAV_MAX_SLOTS  ((size_t)1 << 26)   /* n * K label slots (44 bytes each) */
    """
    uint32_t NAV_MAX_NODES
    size_t NAV_MAX_SLOTS

# ---------------------------------------------------------------- cost semiring (semiring.pxd)

cdef public int betanet_nav_cost_extend(const double *a, const double *b, double *out) noexcept nogil:
    cdef double r[4]
    if a == NULL or b == NULL or out == NULL or not cost_ok(a) or not cost_ok(b):
        return BETANET_E_INVALID
    extend(a, b, r)
    memcpy(out, r, sizeof(r))
    return 0


cdef public int betanet_nav_cost_dominates(const double *a, const double *b) noexcept nogil:
    if a == NULL or b == NULL:
        return 0
    return 1 if leq4(a, b) and memcmp(a, b, 4 * sizeof(double)) != 0 else 0


cdef int qos_fill(const betanet_nav_qos_t *q, betanet_nav_qos_t *out) noexcept nogil:
    """Validate q (NULL = balanced) and normalise into out (k defaulted)."""
    cdef int j
    cdef double s = 0
    if q == NULL:
        return betanet_nav_qos_preset(BETANET_NAV_PRESET_BALANCED, out)
    memset(out, 0, sizeof(betanet_nav_qos_t))
    for j in range(4):
        if isnan(q.weights[j]) or q.weights[j] < 0 or not isfinite(q.weights[j]):
            return BETANET_E_INVALID
        s += q.weights[j]
        out.weights[j] = q.weights[j]
    if s <= 0:
        return BETANET_E_INVALID
    if isnan(q.deadline_ms) or q.deadline_ms < 0 or isnan(q.privacy_budget) or q.privacy_budget < 0:
        return BETANET_E_INVALID
    out.deadline_ms = q.deadline_ms
    out.privacy_budget = q.privacy_budget
    out.k = q.k if q.k else BETANET_NAV_DEFAULT_K
    if out.k > BETANET_NAV_MAX_K:
        return BETANET_E_LIMIT
    return 0


cdef inline void weights_set(double *w, double lat, double ene, double rel, double priv) noexcept nogil:
    w[0] = lat; w[1] = ene; w[2] = rel; w[3] = priv


cdef public int betanet_nav_qos_preset(int preset, betanet_nav_qos_t *out) noexcept nogil:
    if out == NULL:
        return BETANET_E_INVALID
    memset(out, 0, sizeof(betanet_nav_qos_t))
    out.deadline_ms = INFINITY
    out.privacy_budget = INFINITY
    out.k = BETANET_NAV_DEFAULT_K
    # weights: latency, energy, reliability, privacy (pinned in docs/navigator.md)
    if preset == BETANET_NAV_PRESET_BALANCED:
        weights_set(out.weights, 1.0, 1.0, 1.0, 1.0)
    elif preset == BETANET_NAV_PRESET_REAL_TIME:
        weights_set(out.weights, 10.0, 0.1, 1.0, 0.1)
    elif preset == BETANET_NAV_PRESET_ENERGY_EFFICIENT:
        weights_set(out.weights, 0.1, 10.0, 0.5, 0.1)
    elif preset == BETANET_NAV_PRESET_PRIVACY_FIRST:
        weights_set(out.weights, 0.1, 0.1, 0.5, 10.0)
    else:
        return BETANET_E_INVALID
    return 0


cdef inline NavGraph *G(const betanet_nav_graph_t *g) noexcept nogil:
    return <NavGraph *> g


# ---------------------------------------------------------------- graph storage

cdef void compact(NavGraph *g) noexcept nogil:
    """Slide every row down to close the holes left by moved rows (rows keep their room
    only as far as needed: capacity = length). Rows are taken in order of their start
    (heap sort through the tree workspace's heap: no search is running) so each slides
    down only."""
    cdef LinkStore *L = &g.links
    cdef Heap4 *h = &g.tree.heap
    cdef uint32_t u, i
    cdef uint64_t w = 0
    if ensure_work(g):
        return      # compaction is an optimisation; without memory keep the holes
    h.len = 0
    for u in range(L.n):
        h.pos[u] = HEAP_ABSENT
        heap4_set(h, u, <double> L.row_start[u])    # exact: edge indices stay below 2^53
    while h.len:
        u = heap4_pop(h)
        if L.row_start[u] != w:
            for i in range(L.row_len[u]):
                move_edge(L, w + i, L.row_start[u] + i)
        L.row_start[u] = w
        L.row_cap[u] = L.row_len[u]
        w += L.row_len[u]
    L.e_used = w
    L.e_holes = 0


cdef public int betanet_nav_graph_new(uint32_t n_nodes, betanet_nav_graph_t **out) noexcept nogil:
    cdef NavGraph *g
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if n_nodes > NAV_MAX_NODES:
        return BETANET_E_LIMIT
    rc = betanet_init()
    if rc:
        return rc
    g = <NavGraph *> bnt_alloc(sizeof(NavGraph))
    if g == NULL:
        return BETANET_E_NOMEM
    if ensure_node_arrays(&g.links, n_nodes if n_nodes else 1):
        betanet_nav_graph_free(<betanet_nav_graph_t *> g)
        return BETANET_E_NOMEM
    g.links.n = n_nodes
    out[0] = <betanet_nav_graph_t *> g
    return 0


cdef public void betanet_nav_graph_free(betanet_nav_graph_t *gp) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef int j
    if g == NULL:
        return
    bnt_free(g.links.row_start); bnt_free(g.links.row_len); bnt_free(g.links.row_cap)
    bnt_free(g.links.dst)
    for j in range(4):
        bnt_free(g.links.w[j])
    bnt_free(g.links.nats); bnt_free(g.links.tr); bnt_free(g.links.capa)
    bnt_free(g.tree.dist); bnt_free(g.tree.pred_e); bnt_free(g.tree.pred_n); bnt_free(g.tree.order)
    bnt_free(g.tree.heap.key); bnt_free(g.tree.heap.item); bnt_free(g.tree.heap.pos)
    bnt_free(g.labels.cost); bnt_free(g.labels.key); bnt_free(g.labels.node); bnt_free(g.labels.pred)
    bnt_free(g.labels.edge); bnt_free(g.labels.state)
    bnt_free(g.slots.ids); bnt_free(g.slots.cost); bnt_free(g.slots.key); bnt_free(g.slots.cnt)
    bnt_free(g.slots.extremes)
    bnt_free(g.out.off); bnt_free(g.out.lab)
    bnt_free(g)


cdef public uint32_t betanet_nav_graph_nodes(const betanet_nav_graph_t *g) noexcept nogil:
    return G(g).links.n if g != NULL else 0


cdef public uint64_t betanet_nav_graph_links(const betanet_nav_graph_t *g) noexcept nogil:
    return G(g).links.n_links if g != NULL else 0


cdef public int betanet_nav_graph_resize(betanet_nav_graph_t *gp, uint32_t n_nodes) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef uint32_t u
    if g == NULL or n_nodes < g.links.n:
        return BETANET_E_INVALID
    if n_nodes > NAV_MAX_NODES:
        return BETANET_E_LIMIT
    if ensure_node_arrays(&g.links, n_nodes):
        return BETANET_E_NOMEM
    for u in range(g.links.n, n_nodes):
        g.links.row_start[u] = g.links.e_used
        g.links.row_len[u] = 0
        g.links.row_cap[u] = 0
    g.links.n = n_nodes
    g.generation += 1
    return 0


cdef int check_links(uint32_t n, uint64_t m, const uint32_t *dst, const double *costs,
                     const double *capas) noexcept nogil:
    cdef uint64_t e
    for e in range(m):
        if dst[e] >= n or not cost_ok(&costs[4 * e]):
            return BETANET_E_INVALID
        if capas != NULL and (isnan(capas[e]) or capas[e] < 0):
            return BETANET_E_INVALID
    return 0


cdef int load_begin(NavGraph *g, uint32_t n_nodes, uint64_t m) noexcept nogil:
    if n_nodes > NAV_MAX_NODES:
        return BETANET_E_LIMIT
    if ensure_node_arrays(&g.links, n_nodes if n_nodes else 1) or ensure_edges(&g.links, m if m else 1):
        return BETANET_E_NOMEM
    g.links.n = n_nodes
    g.links.n_links = m
    g.links.e_used = m
    g.links.e_holes = 0
    g.generation += 1
    g.out.have = 0
    return 0


cdef public int betanet_nav_graph_load_csr(betanet_nav_graph_t *gp, uint32_t n_nodes, const uint64_t *indptr,
                                           const uint32_t *indices, const double *costs,
                                           const uint16_t *transports, const double *capacities) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef LinkStore *L
    cdef uint32_t u
    cdef uint64_t e, m
    if g == NULL or indptr == NULL or indptr[0] != 0:
        return BETANET_E_INVALID
    for u in range(n_nodes):
        if indptr[u + 1] < indptr[u] or indptr[u + 1] - indptr[u] > 0xFFFFFFFFu:
            return BETANET_E_INVALID
    m = indptr[n_nodes]
    if m and (indices == NULL or costs == NULL):
        return BETANET_E_INVALID
    if check_links(n_nodes, m, indices, costs, capacities):
        return BETANET_E_INVALID
    if load_begin(g, n_nodes, m):
        return BETANET_E_NOMEM
    L = &g.links
    for u in range(n_nodes):
        L.row_start[u] = indptr[u]
        L.row_len[u] = <uint32_t> (indptr[u + 1] - indptr[u])
        L.row_cap[u] = L.row_len[u]
    for e in range(m):
        put_edge(L, e, indices[e], &costs[4 * e], transports[e] if transports != NULL else 0,
                 capacities[e] if capacities != NULL else 0.0)
    return 0


cdef public int betanet_nav_graph_load_edges(betanet_nav_graph_t *gp, uint32_t n_nodes, uint64_t m,
                                             const uint32_t *src, const uint32_t *dst, const double *costs,
                                             const uint16_t *transports, const double *capacities) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef LinkStore *L
    cdef uint32_t u
    cdef uint64_t e, w, acc
    if g == NULL or (m and (src == NULL or dst == NULL or costs == NULL)):
        return BETANET_E_INVALID
    for e in range(m):
        if src[e] >= n_nodes:
            return BETANET_E_INVALID
    if check_links(n_nodes, m, dst, costs, capacities):
        return BETANET_E_INVALID
    if load_begin(g, n_nodes, m):
        return BETANET_E_NOMEM
    L = &g.links
    # counting sort by source into CSR rows
    for u in range(n_nodes):
        L.row_len[u] = 0
    for e in range(m):
        L.row_len[src[e]] += 1
    acc = 0
    for u in range(n_nodes):
        L.row_start[u] = acc
        L.row_cap[u] = L.row_len[u]
        acc += L.row_len[u]
        L.row_len[u] = 0
    for e in range(m):
        u = src[e]
        w = L.row_start[u] + L.row_len[u]
        L.row_len[u] += 1
        put_edge(L, w, dst[e], &costs[4 * e], transports[e] if transports != NULL else 0,
                 capacities[e] if capacities != NULL else 0.0)
    return 0


cdef int grow_row(NavGraph *g, uint32_t fr) noexcept nogil:
    """Row fr is full: move it to the end of the edge arrays with doubled room (compact
    first when a third of the arrays is holes)."""
    cdef LinkStore *L = &g.links
    cdef uint32_t newcap, i
    cdef uint64_t base
    if L.e_holes > L.e_used // 3 and L.e_holes > 64:
        compact(g)
    newcap = L.row_cap[fr] * 2 if L.row_cap[fr] else 2
    if ensure_edges(L, L.e_used + newcap):
        return BETANET_E_NOMEM
    base = L.e_used
    for i in range(L.row_len[fr]):
        move_edge(L, base + i, L.row_start[fr] + i)
    L.e_holes += L.row_cap[fr]
    L.row_start[fr] = base
    L.row_cap[fr] = newcap
    L.e_used += newcap
    return 0


cdef public int betanet_nav_graph_set_link(betanet_nav_graph_t *gp, uint32_t fr, uint32_t to, uint16_t tr,
                                           const double *cost, double capacity) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef LinkStore *L
    cdef int64_t f
    if g == NULL or cost == NULL or not cost_ok(cost) or isnan(capacity) or capacity < 0:
        return BETANET_E_INVALID
    L = &g.links
    if fr >= L.n or to >= L.n:
        return BETANET_E_NOT_FOUND
    g.generation += 1
    f = find_link(L, fr, to, tr)
    if f >= 0:                     # in place: no rebuild
        put_edge(L, <uint64_t> f, to, cost, tr, capacity)
        return 0
    if L.row_len[fr] == L.row_cap[fr] and grow_row(g, fr):
        return BETANET_E_NOMEM
    put_edge(L, L.row_start[fr] + L.row_len[fr], to, cost, tr, capacity)
    L.row_len[fr] += 1
    L.n_links += 1
    return 0


cdef public int betanet_nav_graph_remove_link(betanet_nav_graph_t *gp, uint32_t fr, uint32_t to,
                                              uint16_t tr) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef LinkStore *L
    cdef int64_t f
    if g == NULL:
        return BETANET_E_INVALID
    L = &g.links
    if fr >= L.n or to >= L.n:
        return BETANET_E_NOT_FOUND
    f = find_link(L, fr, to, tr)
    if f < 0:
        return BETANET_E_NOT_FOUND
    L.row_len[fr] -= 1
    move_edge(L, <uint64_t> f, L.row_start[fr] + L.row_len[fr])
    L.n_links -= 1
    g.generation += 1
    return 0


cdef public int betanet_nav_graph_get_link(const betanet_nav_graph_t *gp, uint32_t fr, uint32_t to, uint16_t tr,
                                           double *cost_out, double *capacity_out) noexcept nogil:
    cdef const NavGraph *g = G(gp)
    cdef int64_t f
    if g == NULL:
        return BETANET_E_INVALID
    if fr >= g.links.n or to >= g.links.n:
        return BETANET_E_NOT_FOUND
    f = find_link(&g.links, fr, to, tr)
    if f < 0:
        return BETANET_E_NOT_FOUND
    if cost_out != NULL:
        edge_cost(&g.links, <uint64_t> f, cost_out)
    if capacity_out != NULL:
        capacity_out[0] = g.links.capa[f]
    return 0


# ---------------------------------------------------------------- Dijkstra

cdef int ensure_work(NavGraph *g) noexcept nogil:
    cdef TreeWork *t = &g.tree
    cdef size_t c
    if g.links.n <= t.cap:
        return 0
    c = next_cap(t.cap, g.links.n)
    if (regrow(<void **> &t.dist, 0, c, sizeof(double)) or regrow(<void **> &t.heap.pos, 0, c, sizeof(uint32_t))
            or regrow(<void **> &t.pred_e, 0, c, sizeof(uint64_t))
            or regrow(<void **> &t.pred_n, 0, c, sizeof(uint32_t))
            or regrow(<void **> &t.order, 0, c, sizeof(uint32_t))
            or regrow(<void **> &t.heap.key, 0, c, sizeof(double))
            or regrow(<void **> &t.heap.item, 0, c, sizeof(uint32_t))):
        return BETANET_E_NOMEM
    t.cap = <uint32_t> c
    return 0


cdef uint32_t dijkstra(NavGraph *g, uint32_t src, int obj, double *dist) noexcept nogil:
    """Fill dist (n; g.tree.dist or the caller's buffer, additive form), the tree's pred_e,
    pred_n and order (settle order); return the number of settled nodes. For obj ==
    failure the distance is in nats."""
    cdef uint32_t n = g.links.n, u, v, settled = 0, i
    cdef uint64_t e, end
    cdef double du, nd
    cdef const double *w = g.links.nats if obj == BETANET_NAV_FAILURE else g.links.w[obj]
    cdef const uint32_t *edst = g.links.dst
    cdef const uint64_t *row_start = g.links.row_start
    cdef const uint32_t *row_len = g.links.row_len
    cdef uint64_t *pred_e = g.tree.pred_e
    cdef uint32_t *pred_n = g.tree.pred_n
    cdef uint32_t *order = g.tree.order
    cdef Heap4 h = g.tree.heap          # a local copy the compiler can keep in registers
    for i in range(n):
        dist[i] = INFINITY
        h.pos[i] = HEAP_ABSENT
    dist[src] = 0.0
    pred_e[src] = <uint64_t> -1
    h.len = 0
    heap4_set(&h, src, 0.0)
    while h.len:
        du = h.key[0]
        u = heap4_pop(&h)
        order[settled] = u
        settled += 1
        e = row_start[u]
        end = e + row_len[u]
        while e < end:
            # settled nodes need no test: weights are >= 0, so nd >= du >= dist[v]
            v = edst[e]
            nd = du + w[e]
            if nd < dist[v]:
                dist[v] = nd
                pred_e[v] = e
                pred_n[v] = u
                heap4_set(&h, v, nd)
            e += 1
    return settled


cdef public int betanet_nav_shortest(betanet_nav_graph_t *gp, uint32_t source, int objective,
                                     double *dist, int64_t *pred) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef uint32_t i, s, v
    cdef double d
    if g == NULL or dist == NULL or objective < 0 or objective > 3:
        return BETANET_E_INVALID
    if source >= g.links.n:
        return BETANET_E_NOT_FOUND
    if ensure_work(g):
        return BETANET_E_NOMEM
    if objective == BETANET_NAV_FAILURE:
        s = dijkstra(g, source, objective, g.tree.dist)
        for i in range(g.links.n):
            d = g.tree.dist[i]
            dist[i] = -expm1(-d) if d < INFINITY else INFINITY
    else:
        s = dijkstra(g, source, objective, dist)    # straight into the caller's buffer
    if pred != NULL:
        for i in range(g.links.n):
            pred[i] = -1
        for i in range(1, s):                       # order[0] is the source
            v = g.tree.order[i]
            pred[v] = g.tree.pred_n[v]
    return 0


# ---------------------------------------------------------------- Pareto label search

cdef inline void requeue(NavGraph *g, uint32_t v, uint32_t K) noexcept nogil:
    """Key node v in the node queue by its best temporary label (out if it has none)."""
    cdef uint32_t at
    cdef double m = node_min(&g.slots, <size_t> v * K, g.slots.cnt[v], &at)
    if at == NAV_NONE:
        heap4_remove(&g.tree.heap, v)
    else:
        heap4_set(&g.tree.heap, v, m)


cdef int martins_prepare(NavGraph *g, uint32_t K) noexcept nogil:
    """Size the slots (n * K), per-node arrays and label pool; empty the node queue."""
    cdef NodeSlots *S = &g.slots
    cdef uint32_t n = g.links.n, i
    cdef size_t need = <size_t> n * K, c
    if K == 0 or need / K != n or need > NAV_MAX_SLOTS:
        return BETANET_E_LIMIT
    if need > S.cap:
        if (regrow(<void **> &S.ids, 0, need, sizeof(uint32_t))
                or regrow(<void **> &S.cost, 0, 4 * need, sizeof(double))
                or regrow(<void **> &S.key, 0, need, sizeof(double))):
            return BETANET_E_NOMEM
        S.cap = need
    if n >= S.ncap:
        c = next_cap(S.ncap, <size_t> n + 1)
        if (regrow(<void **> &S.cnt, 0, c, sizeof(uint32_t))
                or regrow(<void **> &S.extremes, 0, 4 * c, sizeof(uint32_t))):
            return BETANET_E_NOMEM
        S.ncap = c
    memset(S.cnt, 0, n * sizeof(uint32_t))
    for i in range(n):
        g.tree.heap.pos[i] = HEAP_ABSENT
    g.tree.heap.len = 0
    if ensure_labels(&g.labels, 2 * <size_t> n + 16):
        return BETANET_E_NOMEM
    g.labels.used = 0
    return 0


cdef uint32_t drop_dominated(NavGraph *g, size_t base, uint32_t c, const double *cc) noexcept nogil:
    """Remove a node's labels that cc dominates (temporaries die); return the new count."""
    cdef NodeSlots *S = &g.slots
    cdef uint32_t i, j = 0, o
    for i in range(c):
        if leq4(cc, &S.cost[4 * (base + i)]):
            o = S.ids[base + i]
            if g.labels.state[o] == LABEL_TEMP:
                g.labels.state[o] = LABEL_DEAD
        else:
            if j != i:
                slot_move(S, base, j, i)
            j += 1
    return j


cdef bint evict_worst(NavGraph *g, size_t base, uint32_t *c, double key) noexcept nogil:
    """A full node: evict the temporary label with the largest scalarisation if it is
    worse than key (popped labels have key -INFINITY, so are never evicted). False if
    the newcomer is the one to drop."""
    cdef NodeSlots *S = &g.slots
    cdef uint32_t worst = 0, i
    cdef double wk = S.key[base]
    for i in range(1, c[0]):
        if S.key[base + i] > wk:
            wk = S.key[base + i]; worst = i
    if not (wk > key):
        return False
    g.labels.state[S.ids[base + worst]] = LABEL_DEAD
    c[0] -= 1
    slot_move(S, base, worst, c[0])
    return True


cdef int relax(NavGraph *g, uint32_t l, uint64_t e, uint32_t K, const betanet_nav_qos_t *q,
               const KeyWeights *kw) noexcept nogil:
    """Extend popped label l along link e and offer the result to the link's head."""
    cdef NodeSlots *S = &g.slots
    cdef uint32_t v = g.links.dst[e], c, i, nl
    cdef size_t base = <size_t> v * K
    cdef double cc[4]
    cdef double ec[4]
    cdef double key
    edge_cost(&g.links, e, ec)
    extend(&g.labels.cost[4 * l], ec, cc)
    if cc[0] > q.deadline_ms or cc[3] > q.privacy_budget:
        return 0
    c = S.cnt[v]
    for i in range(c):
        if leq4(&S.cost[4 * (base + i)], cc):
            return 0                                # weakly dominated: dropped
    # the scalarisation is additive: parent key + the link's (no log per label)
    key = g.labels.key[l] + link_key(&g.links, e, ec, kw)
    c = drop_dominated(g, base, c, cc)
    if c == K and not evict_worst(g, base, &c, key):
        S.cnt[v] = c
        requeue(g, v, K)                            # dominated temporaries may be gone
        return 0
    if g.labels.used == g.labels.cap and ensure_labels(&g.labels, g.labels.used + 1):
        return BETANET_E_NOMEM
    nl = new_label(&g.labels, cc, key, v, l, e, LABEL_TEMP)
    slot_put(S, base, c, nl, cc, key)
    S.cnt[v] = c + 1
    requeue(g, v, K)
    return 0


cdef int martins(NavGraph *g, uint32_t src, const betanet_nav_qos_t *q) noexcept nogil:
    """Label-setting search; per node at most K labels (see docs: trim rule).

    Each node's labels sit in K slots holding the label id, a copy of its cost and its
    key (or -INFINITY once popped, so it can never be evicted): dominance checks read one
    contiguous block per node. The priority queue is the indexed heap of nodes keyed by
    their best temporary label, so it never holds more than n entries and evicted labels
    leave nothing behind in it."""
    cdef uint32_t K = q.k, l, u, at
    cdef uint64_t e, end
    cdef size_t base
    cdef double zero[4]
    cdef KeyWeights kw
    cdef int rc = martins_prepare(g, K)
    if rc:
        return rc
    key_weights(q, &kw)
    memset(zero, 0, sizeof(zero))
    l = new_label(&g.labels, zero, 0.0, src, NAV_NONE, <uint64_t> -1, LABEL_TEMP)
    slot_put(&g.slots, <size_t> src * K, 0, l, zero, 0.0)
    g.slots.cnt[src] = 1
    heap4_set(&g.tree.heap, src, 0.0)
    while g.tree.heap.len:
        u = g.tree.heap.item[0]
        base = <size_t> u * K
        node_min(&g.slots, base, g.slots.cnt[u], &at)
        l = g.slots.ids[base + at]
        g.slots.key[base + at] = -INFINITY          # popped: final, never evicted
        g.labels.state[l] = LABEL_PERM
        requeue(g, u, K)
        e = g.links.row_start[u]
        end = e + g.links.row_len[u]
        while e < end:
            if g.links.dst[e] != src:
                rc = relax(g, l, e, K, q, &kw)
                if rc:
                    return rc
            e += 1
    return 0


cdef int merge_extremes(NavGraph *g, uint32_t src, const betanet_nav_qos_t *q) noexcept nogil:
    """Add each objective's exact optimum (a Dijkstra tree per objective) as labels, so the
    trimmed frontier always holds the four extremes (docs/navigator.md)."""
    cdef uint32_t n = g.links.n, s, i, v, pl
    cdef uint32_t *xl
    cdef int j
    cdef uint64_t e
    cdef double cc[4]
    cdef double ec[4]
    cdef KeyWeights kw
    key_weights(q, &kw)
    for j in range(4):
        s = dijkstra(g, src, j, g.tree.dist)
        if ensure_labels(&g.labels, g.labels.used + s + 1):
            return BETANET_E_NOMEM
        xl = g.slots.extremes + <size_t> j * n
        for i in range(n):
            xl[i] = NAV_NONE
        xl[src] = 0        # the root label
        # settle order puts every tree parent before its children
        for i in range(1, s):
            v = g.tree.order[i]
            pl = xl[g.tree.pred_n[v]]
            if pl == NAV_NONE:
                continue                        # parent infeasible: subtree dropped too
            e = g.tree.pred_e[v]
            edge_cost(&g.links, e, ec)
            extend(&g.labels.cost[4 * pl], ec, cc)
            if cc[0] <= q.deadline_ms and cc[3] <= q.privacy_budget:
                xl[v] = new_label(&g.labels, cc, g.labels.key[pl] + link_key(&g.links, e, ec, &kw),
                                  v, pl, e, LABEL_PERM)
    return 0


# ---------------------------------------------------------------- output trim

cdef uint32_t gather_candidates(const NavGraph *g, uint32_t v, uint32_t K, uint32_t *cand) noexcept nogil:
    """A node's search labels plus the non-dominated extremes (which remove the labels
    they dominate); returns the count (<= K + 4)."""
    cdef const LabelPool *P = &g.labels
    cdef uint32_t n = g.links.n, c = 0, i, m, o
    cdef int ob
    cdef bint dom
    for i in range(g.slots.cnt[v]):
        cand[c] = g.slots.ids[<size_t> v * K + i]; c += 1
    for ob in range(4):
        o = g.slots.extremes[ob * n + v]
        if o == NAV_NONE:
            continue
        dom = False
        for i in range(c):
            if leq4(&P.cost[4 * cand[i]], &P.cost[4 * o]):
                dom = True
                break
        if dom:
            continue
        m = 0
        for i in range(c):
            if not leq4(&P.cost[4 * o], &P.cost[4 * cand[i]]):
                cand[m] = cand[i]; m += 1
        c = m
        cand[c] = o; c += 1
    return c


cdef void sort_by_key(const LabelPool *P, uint32_t *cand, uint32_t c) noexcept nogil:
    """Insertion sort by scalarisation (c <= K + 4, stable)."""
    cdef uint32_t i, j, t
    for i in range(1, c):
        t = cand[i]
        j = i
        while j > 0 and P.key[cand[j - 1]] > P.key[t]:
            cand[j] = cand[j - 1]
            j -= 1
        cand[j] = t


cdef uint32_t trim(const LabelPool *P, uint32_t *cand, uint32_t c, uint32_t K) noexcept nogil:
    """Keep K of c key-sorted candidates: the best scalarisation, the best in each
    objective, then by scalarisation; order is kept. Returns the new count."""
    cdef uint8_t keep[BETANET_NAV_MAX_K + 8]
    cdef uint32_t i, m = 1, best
    cdef int ob
    memset(keep, 0, c)
    keep[0] = 1
    for ob in range(4):
        best = 0
        for i in range(1, c):
            if better_in(P, cand[i], cand[best], ob):
                best = i
        if not keep[best] and m < K:
            keep[best] = 1; m += 1
    for i in range(c):
        if m >= K:
            break
        if not keep[i]:
            keep[i] = 1; m += 1
    m = 0
    for i in range(c):
        if keep[i]:
            cand[m] = cand[i]; m += 1
    return m


cdef int build_output(NavGraph *g, uint32_t K) noexcept nogil:
    """Per node: search labels + extremes, non-dominated, trimmed to K keeping the
    scalarisation optimum and the four extremes, ordered by scalarisation."""
    cdef Frontier *F = &g.out
    cdef uint32_t n = g.links.n, v, i, c
    cdef size_t total = 0
    cdef uint32_t cand[BETANET_NAV_MAX_K + 8]
    if F.lab_cap < <size_t> n * K:
        if regrow(<void **> &F.lab, 0, <size_t> n * K if n else 1, sizeof(uint32_t)):
            return BETANET_E_NOMEM
        F.lab_cap = <size_t> n * K
    if F.off_cap < <size_t> n + 1:
        if regrow(<void **> &F.off, 0, g.slots.ncap + 1, sizeof(uint32_t)):
            return BETANET_E_NOMEM
        F.off_cap = g.slots.ncap + 1
    for v in range(n):
        F.off[v] = <uint32_t> total
        c = gather_candidates(g, v, K, cand)
        sort_by_key(&g.labels, cand, c)
        if c > K:
            c = trim(&g.labels, cand, c, K)
        for i in range(c):
            F.lab[total + i] = cand[i]
        total += c
    F.off[n] = <uint32_t> total
    return 0


cdef int run_frontier(NavGraph *g, uint32_t source, const betanet_nav_qos_t *qq) noexcept nogil:
    cdef Frontier *F = &g.out
    cdef betanet_nav_qos_t q
    cdef int rc = qos_fill(qq, &q)
    if rc:
        return rc
    if source >= g.links.n:
        return BETANET_E_NOT_FOUND
    if F.have and F.gen == g.generation and F.src == source and memcmp(&F.qos, &q, sizeof(q)) == 0:
        return 0
    F.have = 0
    if ensure_work(g):
        return BETANET_E_NOMEM
    rc = martins(g, source, &q)
    if rc == 0:
        rc = merge_extremes(g, source, &q)
    if rc == 0:
        rc = build_output(g, q.k)
    if rc:
        return rc
    F.have = 1
    F.gen = g.generation
    F.src = source
    F.qos = q
    return 0


cdef public int betanet_nav_frontier(betanet_nav_graph_t *gp, uint32_t source,
                                     const betanet_nav_qos_t *qos) noexcept nogil:
    if gp == NULL:
        return BETANET_E_INVALID
    return run_frontier(G(gp), source, qos)


cdef inline bint result_ok(const NavGraph *g) noexcept nogil:
    return g.out.have and g.out.gen == g.generation


cdef public int betanet_nav_frontier_size(const betanet_nav_graph_t *gp, uint32_t dest,
                                          uint32_t *count) noexcept nogil:
    cdef const NavGraph *g = G(gp)
    if g == NULL or count == NULL:
        return BETANET_E_INVALID
    if not result_ok(g):
        return BETANET_E_STATE
    if dest >= g.links.n:
        return BETANET_E_NOT_FOUND
    count[0] = g.out.off[dest + 1] - g.out.off[dest]
    return 0


cdef int write_path(const NavGraph *g, uint32_t l, uint32_t *path, uint16_t *trs, size_t cap,
                    size_t *plen) noexcept nogil:
    cdef const LabelPool *P = &g.labels
    cdef size_t hops = 0, i
    cdef uint32_t x = l
    while P.pred[x] != NAV_NONE:
        hops += 1
        x = P.pred[x]
    if plen != NULL:
        plen[0] = hops + 1
    if path == NULL and cap == 0:
        return 0
    if path == NULL or cap < hops + 1:
        return BETANET_E_BUFFER_TOO_SMALL
    x = l
    i = hops
    while True:
        path[i] = P.node[x]
        if P.pred[x] == NAV_NONE:
            break
        if trs != NULL:
            trs[i - 1] = g.links.tr[P.edge[x]]
        x = P.pred[x]
        i -= 1
    return 0


cdef public int betanet_nav_frontier_get(const betanet_nav_graph_t *gp, uint32_t dest, uint32_t i, double *cost_out,
                                         uint32_t *path, uint16_t *transports, size_t path_cap,
                                         size_t *path_len) noexcept nogil:
    cdef const NavGraph *g = G(gp)
    cdef uint32_t l
    if g == NULL:
        return BETANET_E_INVALID
    if not result_ok(g):
        return BETANET_E_STATE
    if dest >= g.links.n or i >= g.out.off[dest + 1] - g.out.off[dest]:
        return BETANET_E_NOT_FOUND
    l = g.out.lab[g.out.off[dest] + i]
    if cost_out != NULL:
        memcpy(cost_out, &g.labels.cost[4 * l], 4 * sizeof(double))
    return write_path(g, l, path, transports, path_cap, path_len)


# ---------------------------------------------------------------- selection

cdef uint16_t no_path_reason(NavGraph *g, uint32_t source, uint32_t dest,
                             const betanet_nav_qos_t *q) noexcept nogil:
    """Why dest has no feasible label: unconstrained optima tell which bound failed."""
    cdef double lat, eps
    dijkstra(g, source, BETANET_NAV_LATENCY, g.tree.dist)
    lat = g.tree.dist[dest]
    dijkstra(g, source, BETANET_NAV_PRIVACY, g.tree.dist)
    eps = g.tree.dist[dest]
    if not (lat < INFINITY):
        return BETANET_NAV_REASON_UNREACHABLE
    if lat > q.deadline_ms:
        return BETANET_NAV_REASON_DEADLINE
    if eps > q.privacy_budget:
        return BETANET_NAV_REASON_PRIVACY
    return BETANET_NAV_REASON_COMBINED


cdef void route_summary(const NavGraph *g, uint32_t l, betanet_nav_route_t *out) noexcept nogil:
    """Cost, score, hop count, next hop and first transport of label l's path."""
    cdef const LabelPool *P = &g.labels
    cdef uint32_t x = l, first = l
    memcpy(out.cost, &P.cost[4 * l], 4 * sizeof(double))
    out.score = P.key[l]
    out.hops = 0
    while P.pred[x] != NAV_NONE:
        out.hops += 1
        first = x
        x = P.pred[x]
    out.next_hop = P.node[first]
    out.transport = g.links.tr[P.edge[first]]


cdef public int betanet_nav_select(betanet_nav_graph_t *gp, uint32_t source, uint32_t dest,
                                   const betanet_nav_qos_t *qos, betanet_nav_route_t *out, uint32_t *path,
                                   uint16_t *transports, size_t path_cap, size_t *path_len) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef int rc
    cdef uint32_t l
    cdef betanet_nav_qos_t q
    if g == NULL or out == NULL:
        return BETANET_E_INVALID
    memset(out, 0, sizeof(betanet_nav_route_t))
    rc = qos_fill(qos, &q)
    if rc:
        return rc
    if source >= g.links.n or dest >= g.links.n:
        return BETANET_E_NOT_FOUND
    if source == dest:
        out.reason = BETANET_NAV_REASON_SELF
        return BETANET_E_NO_PATH
    rc = run_frontier(g, source, &q)
    if rc:
        return rc
    if g.out.off[dest + 1] == g.out.off[dest]:
        out.reason = no_path_reason(g, source, dest, &q)
        return BETANET_E_NO_PATH
    l = g.out.lab[g.out.off[dest]]          # labels are ordered by scalarisation
    route_summary(g, l, out)
    return write_path(g, l, path, transports, path_cap, path_len)
