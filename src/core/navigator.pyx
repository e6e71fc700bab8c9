# navigator.pyx — routing core (include/betanet/navigator.h, docs/navigator.md):
# cost semiring, CSR link graph with in-place updates, single-objective Dijkstra (4-ary
# heap), Martins label-setting Pareto search with a capped frontier, QoS selection,
# contact graph routing (earliest arrival + Yen, SABR rules), ION contact-plan parser and
# a drift-plus-penalty scheduler.
#
# Every buffer a search touches belongs to its handle and only grows; nothing is
# allocated per relaxation. Module-level code never runs in libbetanet (DESIGN.md), so
# constants are C macros below.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memcpy, memset, memcmp
from libc.math cimport isnan, isfinite, log1p, expm1, INFINITY
from libc.stdlib cimport strtod
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free

from betanet_navigator cimport *

cdef extern from *:
    """
    #define NAV_UNSEEN   0xFFFFFFFFu
    #define NAV_SETTLED  0xFFFFFFFEu
    #define NAV_NONE     0xFFFFFFFFu
    #define NAV_TEMP 1
    #define NAV_PERM 2
    #define NAV_DEAD 3
    /* scalarisation scales: 100 ms, 100 mJ, 0.01 nats of failure, 1 epsilon */
    #define NAV_S_LAT 100.0
    #define NAV_S_ENE 100.0
    #define NAV_S_NATS 0.01
    #define NAV_S_EPS 1.0
    #define NAV_MAX_NODES 0x7FFFFFFFu
    #define NAV_MAX_LABELS 0xFFFFFFF0u
    #define CGR_MAX_K 64
    #define NAV_MAX_SLOTS ((size_t)1 << 26)   /* n * K label slots (44 bytes each) */
    """
    uint32_t NAV_UNSEEN, NAV_SETTLED, NAV_NONE, NAV_MAX_NODES, NAV_MAX_LABELS
    uint8_t NAV_TEMP, NAV_PERM, NAV_DEAD
    double NAV_S_LAT, NAV_S_ENE, NAV_S_NATS, NAV_S_EPS
    uint32_t CGR_MAX_K
    size_t NAV_MAX_SLOTS


# ---------------------------------------------------------------- memory helpers

cdef int regrow(void **p, size_t old_n, size_t new_n, size_t elem) noexcept nogil:
    """Replace *p by a zeroed block of new_n elements holding the first old_n of the old."""
    cdef void *q = bnt_alloc(new_n * elem if new_n else elem)
    if q == NULL:
        return BETANET_E_NOMEM
    if p[0] != NULL:
        if old_n:
            memcpy(q, p[0], (old_n if old_n < new_n else new_n) * elem)
        bnt_free(p[0])
    p[0] = q
    return 0


cdef inline size_t next_cap(size_t cur, size_t need) noexcept nogil:
    cdef size_t c = cur * 2 if cur else 16
    return c if c > need else need


# ---------------------------------------------------------------- cost semiring

cdef inline bint cost_ok(const double *c) noexcept nogil:
    cdef int j
    for j in range(4):
        if isnan(c[j]) or c[j] < 0 or not (c[j] < INFINITY):
            return False
    return c[2] <= 1.0


cdef inline void extend(const double *a, const double *b, double *out) noexcept nogil:
    out[0] = a[0] + b[0]
    out[1] = a[1] + b[1]
    # 1 - (1-a)(1-b), written a + b(1-a) so that 0 is an exact identity; 1 absorbs exactly
    out[2] = 1.0 if (a[2] >= 1.0 or b[2] >= 1.0) else a[2] + b[2] * (1.0 - a[2])
    out[3] = a[3] + b[3]


cdef inline bint leq4(const double *a, const double *b) noexcept nogil:
    return a[0] <= b[0] and a[1] <= b[1] and a[2] <= b[2] and a[3] <= b[3]


cdef inline double nats(double p) noexcept nogil:
    return -log1p(-p) if p < 1.0 else INFINITY


cdef inline double scal(const double *w, const double *c) noexcept nogil:
    return (w[0] * c[0] / NAV_S_LAT + w[1] * c[1] / NAV_S_ENE
            + (w[2] * nats(c[2]) / NAV_S_NATS if w[2] > 0 else 0.0) + w[3] * c[3] / NAV_S_EPS)


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


cdef public int betanet_nav_qos_preset(int preset, betanet_nav_qos_t *out) noexcept nogil:
    if out == NULL:
        return BETANET_E_INVALID
    memset(out, 0, sizeof(betanet_nav_qos_t))
    out.deadline_ms = INFINITY
    out.privacy_budget = INFINITY
    out.k = BETANET_NAV_DEFAULT_K
    # weights: latency, energy, reliability, privacy (pinned in docs/navigator.md)
    if preset == BETANET_NAV_PRESET_BALANCED:
        out.weights[0] = 1.0; out.weights[1] = 1.0; out.weights[2] = 1.0; out.weights[3] = 1.0
    elif preset == BETANET_NAV_PRESET_REAL_TIME:
        out.weights[0] = 10.0; out.weights[1] = 0.1; out.weights[2] = 1.0; out.weights[3] = 0.1
    elif preset == BETANET_NAV_PRESET_ENERGY_EFFICIENT:
        out.weights[0] = 0.1; out.weights[1] = 10.0; out.weights[2] = 0.5; out.weights[3] = 0.1
    elif preset == BETANET_NAV_PRESET_PRIVACY_FIRST:
        out.weights[0] = 0.1; out.weights[1] = 0.1; out.weights[2] = 0.5; out.weights[3] = 10.0
    else:
        return BETANET_E_INVALID
    return 0


# ---------------------------------------------------------------- graph storage

cdef struct NavGraph:
    uint32_t n
    uint32_t ncap
    uint64_t n_links
    uint64_t generation
    # CSR rows with room: row u = edges row_start[u] .. row_start[u] + row_len[u]
    uint64_t *row_start
    uint32_t *row_len
    uint32_t *row_cap
    uint64_t e_cap
    uint64_t e_used
    uint64_t e_holes
    uint32_t *e_dst
    double *e_w[4]          # one plane per objective: Dijkstra streams 8 bytes per edge
    double *e_nats          # -ln(1 - failure), the additive form of failure
    uint16_t *e_tr
    double *e_capa
    # Dijkstra workspace (n each)
    double *dist
    uint32_t *pos
    uint64_t *pred_e        # tree edge into each node
    uint32_t *pred_n        # tail of that edge
    uint32_t *order
    double *hk
    uint32_t *hv
    uint32_t wcap
    # labels of the last frontier search
    double *l_cost
    double *l_key
    uint32_t *l_node
    uint32_t *l_pred
    uint64_t *l_edge
    uint8_t *l_state
    size_t l_used
    size_t l_cap
    uint32_t *slots         # n * K label ids per node
    double *s_cost          # their costs (4 each), kept next to each other
    double *s_key           # their keys; -INFINITY once popped
    uint32_t *cnt
    size_t slots_cap
    size_t scap             # capacity of cnt / out_off (and of xl / 4)
    uint32_t *xl            # 4 * n extreme labels
    uint32_t *out_off       # n + 1, output frontier per node (CSR)
    uint32_t *out_lab
    size_t out_cap
    # cached search
    int have
    uint64_t res_gen
    uint32_t res_src
    betanet_nav_qos_t res_qos


cdef inline NavGraph *G(const betanet_nav_graph_t *g) noexcept nogil:
    return <NavGraph *> g


cdef int ensure_node_arrays(NavGraph *g, uint32_t n) noexcept nogil:
    cdef size_t c
    if n <= g.ncap:
        return 0
    c = next_cap(g.ncap, n)
    if (regrow(<void **> &g.row_start, g.ncap, c, sizeof(uint64_t)) or
            regrow(<void **> &g.row_len, g.ncap, c, sizeof(uint32_t)) or
            regrow(<void **> &g.row_cap, g.ncap, c, sizeof(uint32_t))):
        return BETANET_E_NOMEM
    g.ncap = <uint32_t> c
    return 0


cdef int ensure_edges(NavGraph *g, uint64_t need) noexcept nogil:
    cdef uint64_t c
    if need <= g.e_cap:
        return 0
    c = next_cap(g.e_cap, need)
    if (regrow(<void **> &g.e_dst, g.e_cap, c, sizeof(uint32_t)) or
            regrow(<void **> &g.e_w[0], g.e_cap, c, sizeof(double)) or
            regrow(<void **> &g.e_w[1], g.e_cap, c, sizeof(double)) or
            regrow(<void **> &g.e_w[2], g.e_cap, c, sizeof(double)) or
            regrow(<void **> &g.e_w[3], g.e_cap, c, sizeof(double)) or
            regrow(<void **> &g.e_nats, g.e_cap, c, sizeof(double)) or
            regrow(<void **> &g.e_tr, g.e_cap, c, sizeof(uint16_t)) or
            regrow(<void **> &g.e_capa, g.e_cap, c, sizeof(double))):
        return BETANET_E_NOMEM
    g.e_cap = c
    return 0


cdef inline void put_edge(NavGraph *g, uint64_t e, uint32_t to, const double *cost, uint16_t tr,
                          double capa) noexcept nogil:
    g.e_dst[e] = to
    g.e_w[0][e] = cost[0]; g.e_w[1][e] = cost[1]; g.e_w[2][e] = cost[2]; g.e_w[3][e] = cost[3]
    g.e_nats[e] = nats(cost[2])
    g.e_tr[e] = tr
    g.e_capa[e] = capa


cdef inline void edge_cost(const NavGraph *g, uint64_t e, double *out) noexcept nogil:
    out[0] = g.e_w[0][e]; out[1] = g.e_w[1][e]; out[2] = g.e_w[2][e]; out[3] = g.e_w[3][e]


cdef inline void move_edge(NavGraph *g, uint64_t dst, uint64_t src) noexcept nogil:
    g.e_dst[dst] = g.e_dst[src]
    g.e_w[0][dst] = g.e_w[0][src]; g.e_w[1][dst] = g.e_w[1][src]
    g.e_w[2][dst] = g.e_w[2][src]; g.e_w[3][dst] = g.e_w[3][src]
    g.e_nats[dst] = g.e_nats[src]
    g.e_tr[dst] = g.e_tr[src]
    g.e_capa[dst] = g.e_capa[src]


cdef void compact(NavGraph *g) noexcept nogil:
    """Slide every row down to close the holes left by moved rows (rows keep their room
    only as far as needed: capacity = length)."""
    cdef uint32_t u, i, k
    cdef uint64_t w = 0
    # rows are processed in order of their start so each slides down only
    # (order[] is free workspace only when no search is running; use a simple sort)
    cdef uint32_t *idx
    if ensure_work(g):
        return      # compaction is an optimisation; without memory keep the holes
    idx = g.order   # the handle's workspace (no search is running)
    for u in range(g.n):
        idx[u] = u
    sort_rows(idx, g.n, g.row_start)
    for k in range(g.n):
        u = idx[k]
        if g.row_start[u] != w:
            for i in range(g.row_len[u]):
                move_edge(g, w + i, g.row_start[u] + i)
        g.row_start[u] = w
        g.row_cap[u] = g.row_len[u]
        w += g.row_len[u]
    g.e_used = w
    g.e_holes = 0


cdef void sort_rows(uint32_t *idx, uint32_t n, const uint64_t *key) noexcept nogil:
    """Heap sort of idx by key (no recursion, no allocation)."""
    cdef uint32_t i, end, root, child, t
    if n < 2:
        return
    i = n // 2
    while i > 0:
        i -= 1
        sift_rows(idx, i, n, key)
    end = n - 1
    while end > 0:
        t = idx[0]; idx[0] = idx[end]; idx[end] = t
        sift_rows(idx, 0, end, key)
        end -= 1


cdef inline void sift_rows(uint32_t *idx, uint32_t root, uint32_t n, const uint64_t *key) noexcept nogil:
    cdef uint32_t child, t
    while True:
        child = 2 * root + 1
        if child >= n:
            return
        if child + 1 < n and key[idx[child + 1]] > key[idx[child]]:
            child += 1
        if key[idx[root]] >= key[idx[child]]:
            return
        t = idx[root]; idx[root] = idx[child]; idx[child] = t
        root = child


cdef public int betanet_nav_graph_new(uint32_t n_nodes, betanet_nav_graph_t **out) noexcept nogil:
    cdef NavGraph *g
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if n_nodes > NAV_MAX_NODES:
        return BETANET_E_LIMIT
    g = <NavGraph *> bnt_alloc(sizeof(NavGraph))
    if g == NULL:
        return BETANET_E_NOMEM
    if ensure_node_arrays(g, n_nodes if n_nodes else 1):
        betanet_nav_graph_free(<betanet_nav_graph_t *> g)
        return BETANET_E_NOMEM
    g.n = n_nodes
    out[0] = <betanet_nav_graph_t *> g
    return 0


cdef public void betanet_nav_graph_free(betanet_nav_graph_t *gp) noexcept nogil:
    cdef NavGraph *g = G(gp)
    if g == NULL:
        return
    bnt_free(g.row_start); bnt_free(g.row_len); bnt_free(g.row_cap)
    bnt_free(g.e_dst); bnt_free(g.e_w[0]); bnt_free(g.e_w[1]); bnt_free(g.e_w[2]); bnt_free(g.e_w[3])
    bnt_free(g.e_nats); bnt_free(g.e_tr); bnt_free(g.e_capa)
    bnt_free(g.dist); bnt_free(g.pos); bnt_free(g.pred_e); bnt_free(g.pred_n); bnt_free(g.order); bnt_free(g.hk); bnt_free(g.hv)
    bnt_free(g.l_cost); bnt_free(g.l_key); bnt_free(g.l_node); bnt_free(g.l_pred); bnt_free(g.l_edge)
    bnt_free(g.l_state); bnt_free(g.slots); bnt_free(g.s_cost); bnt_free(g.s_key); bnt_free(g.cnt)
    bnt_free(g.xl); bnt_free(g.out_off); bnt_free(g.out_lab)
    bnt_free(g)


cdef public uint32_t betanet_nav_graph_nodes(const betanet_nav_graph_t *g) noexcept nogil:
    return G(g).n if g != NULL else 0


cdef public uint64_t betanet_nav_graph_links(const betanet_nav_graph_t *g) noexcept nogil:
    return G(g).n_links if g != NULL else 0


cdef public int betanet_nav_graph_resize(betanet_nav_graph_t *gp, uint32_t n_nodes) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef uint32_t u
    if g == NULL or n_nodes < g.n:
        return BETANET_E_INVALID
    if n_nodes > NAV_MAX_NODES:
        return BETANET_E_LIMIT
    if ensure_node_arrays(g, n_nodes):
        return BETANET_E_NOMEM
    for u in range(g.n, n_nodes):
        g.row_start[u] = g.e_used
        g.row_len[u] = 0
        g.row_cap[u] = 0
    g.n = n_nodes
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
    if ensure_node_arrays(g, n_nodes if n_nodes else 1) or ensure_edges(g, m if m else 1):
        return BETANET_E_NOMEM
    g.n = n_nodes
    g.n_links = m
    g.e_used = m
    g.e_holes = 0
    g.generation += 1
    g.have = 0
    return 0


cdef public int betanet_nav_graph_load_csr(betanet_nav_graph_t *gp, uint32_t n_nodes, const uint64_t *indptr,
                                           const uint32_t *indices, const double *costs,
                                           const uint16_t *transports, const double *capacities) noexcept nogil:
    cdef NavGraph *g = G(gp)
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
    for u in range(n_nodes):
        g.row_start[u] = indptr[u]
        g.row_len[u] = <uint32_t> (indptr[u + 1] - indptr[u])
        g.row_cap[u] = g.row_len[u]
    for e in range(m):
        put_edge(g, e, indices[e], &costs[4 * e], transports[e] if transports != NULL else 0,
                 capacities[e] if capacities != NULL else 0.0)
    return 0


cdef public int betanet_nav_graph_load_edges(betanet_nav_graph_t *gp, uint32_t n_nodes, uint64_t m,
                                             const uint32_t *src, const uint32_t *dst, const double *costs,
                                             const uint16_t *transports, const double *capacities) noexcept nogil:
    cdef NavGraph *g = G(gp)
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
    # counting sort by source into CSR rows
    for u in range(n_nodes):
        g.row_len[u] = 0
    for e in range(m):
        g.row_len[src[e]] += 1
    acc = 0
    for u in range(n_nodes):
        g.row_start[u] = acc
        g.row_cap[u] = g.row_len[u]
        acc += g.row_len[u]
        g.row_len[u] = 0
    for e in range(m):
        u = src[e]
        w = g.row_start[u] + g.row_len[u]
        g.row_len[u] += 1
        put_edge(g, w, dst[e], &costs[4 * e], transports[e] if transports != NULL else 0,
                 capacities[e] if capacities != NULL else 0.0)
    return 0


cdef inline int64_t find_link(const NavGraph *g, uint32_t fr, uint32_t to, uint16_t tr) noexcept nogil:
    cdef uint64_t e = g.row_start[fr]
    cdef uint64_t end = e + g.row_len[fr]
    while e < end:
        if g.e_dst[e] == to and g.e_tr[e] == tr:
            return <int64_t> e
        e += 1
    return -1


cdef public int betanet_nav_graph_set_link(betanet_nav_graph_t *gp, uint32_t fr, uint32_t to, uint16_t tr,
                                           const double *cost, double capacity) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef int64_t f
    cdef uint32_t newcap, i
    cdef uint64_t base
    if g == NULL or cost == NULL or not cost_ok(cost) or isnan(capacity) or capacity < 0:
        return BETANET_E_INVALID
    if fr >= g.n or to >= g.n:
        return BETANET_E_NOT_FOUND
    g.generation += 1
    f = find_link(g, fr, to, tr)
    if f >= 0:                     # in place: no rebuild
        put_edge(g, <uint64_t> f, to, cost, tr, capacity)
        return 0
    if g.row_len[fr] == g.row_cap[fr]:
        # row full: move it to the end with doubled room (compact first when a third is holes)
        if g.e_holes > g.e_used // 3 and g.e_holes > 64:
            compact(g)
        newcap = g.row_cap[fr] * 2 if g.row_cap[fr] else 2
        if ensure_edges(g, g.e_used + newcap):
            return BETANET_E_NOMEM
        base = g.e_used
        for i in range(g.row_len[fr]):
            move_edge(g, base + i, g.row_start[fr] + i)
        g.e_holes += g.row_cap[fr]
        g.row_start[fr] = base
        g.row_cap[fr] = newcap
        g.e_used += newcap
    put_edge(g, g.row_start[fr] + g.row_len[fr], to, cost, tr, capacity)
    g.row_len[fr] += 1
    g.n_links += 1
    return 0


cdef public int betanet_nav_graph_remove_link(betanet_nav_graph_t *gp, uint32_t fr, uint32_t to,
                                              uint16_t tr) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef int64_t f
    if g == NULL:
        return BETANET_E_INVALID
    if fr >= g.n or to >= g.n:
        return BETANET_E_NOT_FOUND
    f = find_link(g, fr, to, tr)
    if f < 0:
        return BETANET_E_NOT_FOUND
    g.row_len[fr] -= 1
    move_edge(g, <uint64_t> f, g.row_start[fr] + g.row_len[fr])
    g.n_links -= 1
    g.generation += 1
    return 0


cdef public int betanet_nav_graph_get_link(const betanet_nav_graph_t *gp, uint32_t fr, uint32_t to, uint16_t tr,
                                           double *cost_out, double *capacity_out) noexcept nogil:
    cdef const NavGraph *g = G(gp)
    cdef int64_t f
    if g == NULL:
        return BETANET_E_INVALID
    if fr >= g.n or to >= g.n:
        return BETANET_E_NOT_FOUND
    f = find_link(g, fr, to, tr)
    if f < 0:
        return BETANET_E_NOT_FOUND
    if cost_out != NULL:
        edge_cost(g, <uint64_t> f, cost_out)
    if capacity_out != NULL:
        capacity_out[0] = g.e_capa[f]
    return 0


# ---------------------------------------------------------------- Dijkstra (4-ary heap)

cdef int ensure_work(NavGraph *g) noexcept nogil:
    cdef size_t c
    if g.n <= g.wcap:
        return 0
    c = next_cap(g.wcap, g.n)
    if (regrow(<void **> &g.dist, 0, c, sizeof(double)) or regrow(<void **> &g.pos, 0, c, sizeof(uint32_t))
            or regrow(<void **> &g.pred_e, 0, c, sizeof(uint64_t))
            or regrow(<void **> &g.pred_n, 0, c, sizeof(uint32_t))
            or regrow(<void **> &g.order, 0, c, sizeof(uint32_t))
            or regrow(<void **> &g.hk, 0, c, sizeof(double)) or regrow(<void **> &g.hv, 0, c, sizeof(uint32_t))):
        return BETANET_E_NOMEM
    g.wcap = <uint32_t> c
    return 0


cdef int ensure_per_node(NavGraph *g) noexcept nogil:
    """Per-node search arrays (label counts, extremes, output offsets), grown only."""
    cdef size_t c
    if g.n < g.scap:
        return 0
    c = next_cap(g.scap, <size_t> g.n + 1)
    if (regrow(<void **> &g.cnt, 0, c, sizeof(uint32_t)) or regrow(<void **> &g.xl, 0, 4 * c, sizeof(uint32_t))
            or regrow(<void **> &g.out_off, 0, c + 1, sizeof(uint32_t))):
        return BETANET_E_NOMEM
    g.scap = c
    return 0


cdef inline void h4_up(double *hk, uint32_t *hv, uint32_t *pos, uint32_t i, double k, uint32_t v) noexcept nogil:
    cdef uint32_t p
    while i > 0:
        p = (i - 1) >> 2
        if hk[p] <= k:
            break
        hk[i] = hk[p]; hv[i] = hv[p]; pos[hv[i]] = i
        i = p
    hk[i] = k; hv[i] = v; pos[v] = i


cdef inline void h4_down(double *hk, uint32_t *hv, uint32_t *pos, uint32_t n, double k, uint32_t v) noexcept nogil:
    # place (k, v) starting at the root of a heap of n entries
    h4_down_at(hk, hv, pos, 0, n, k, v)


cdef inline void h4_down_at(double *hk, uint32_t *hv, uint32_t *pos, uint32_t i, uint32_t n, double k,
                            uint32_t v) noexcept nogil:
    # place (k, v) starting at slot i of a heap of n entries, moving it down
    cdef uint32_t c, best, j, end
    cdef double bk
    while True:
        c = 4 * i + 1
        if c >= n:
            break
        best = c; bk = hk[c]
        end = c + 4 if c + 4 < n else n
        j = c + 1
        while j < end:
            if hk[j] < bk:
                bk = hk[j]; best = j
            j += 1
        if bk >= k:
            break
        hk[i] = bk; hv[i] = hv[best]; pos[hv[i]] = i
        i = best
    hk[i] = k; hv[i] = v; pos[v] = i


cdef uint32_t dijkstra(NavGraph *g, uint32_t src, int obj, double *dist) noexcept nogil:
    """Fill dist (n; g.dist or the caller's buffer, additive form), g.pred_e and g.order
    (settle order); return the number of settled nodes. For obj == failure the distance
    is in nats."""
    cdef uint32_t n = g.n, hn = 0, u, v, settled = 0, i
    cdef uint64_t e, end
    cdef double du, nd
    cdef const double *w
    cdef const uint32_t *edst = g.e_dst
    cdef uint64_t *pred_e = g.pred_e
    cdef uint32_t *pred_n = g.pred_n
    cdef uint32_t *pos = g.pos
    cdef double *hk = g.hk
    cdef uint32_t *hv = g.hv
    if obj == BETANET_NAV_FAILURE:
        w = g.e_nats
    else:
        w = g.e_w[obj]
    for i in range(n):
        dist[i] = INFINITY
        pos[i] = NAV_UNSEEN
    dist[src] = 0.0
    g.pred_e[src] = <uint64_t> -1
    h4_up(hk, hv, pos, 0, 0.0, src)
    hn = 1
    while hn:
        u = hv[0]; du = hk[0]
        pos[u] = NAV_SETTLED
        hn -= 1
        if hn:
            h4_down(hk, hv, pos, hn, hk[hn], hv[hn])
        g.order[settled] = u
        settled += 1
        e = g.row_start[u]
        end = e + g.row_len[u]
        while e < end:
            # settled nodes need no test: weights are >= 0, so nd >= du >= dist[v]
            v = edst[e]
            nd = du + w[e]
            if nd < dist[v]:
                dist[v] = nd
                pred_e[v] = e
                pred_n[v] = u
                if pos[v] == NAV_UNSEEN:
                    h4_up(hk, hv, pos, hn, nd, v)
                    hn += 1
                else:
                    h4_up(hk, hv, pos, pos[v], nd, v)
            e += 1
    return settled


cdef public int betanet_nav_shortest(betanet_nav_graph_t *gp, uint32_t source, int objective,
                                     double *dist, int64_t *pred) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef uint32_t i, s, u, v
    cdef uint64_t e, end
    cdef double d
    if g == NULL or dist == NULL or objective < 0 or objective > 3:
        return BETANET_E_INVALID
    if source >= g.n:
        return BETANET_E_NOT_FOUND
    if ensure_work(g):
        return BETANET_E_NOMEM
    if objective == BETANET_NAV_FAILURE:
        s = dijkstra(g, source, objective, g.dist)
        for i in range(g.n):
            d = g.dist[i]
            dist[i] = -expm1(-d) if d < INFINITY else INFINITY
    else:
        s = dijkstra(g, source, objective, dist)    # straight into the caller's buffer
    if pred != NULL:
        for i in range(g.n):
            pred[i] = -1
        for i in range(1, s):                       # order[0] is the source
            v = g.order[i]
            pred[v] = g.pred_n[v]
    return 0


# ---------------------------------------------------------------- Pareto label search

cdef int ensure_labels(NavGraph *g, size_t need) noexcept nogil:
    cdef size_t c
    if need <= g.l_cap:
        return 0
    if need > NAV_MAX_LABELS:
        return BETANET_E_LIMIT
    c = next_cap(g.l_cap, need)
    if (regrow(<void **> &g.l_cost, g.l_cap * 4, c * 4, sizeof(double))
            or regrow(<void **> &g.l_key, g.l_cap, c, sizeof(double))
            or regrow(<void **> &g.l_node, g.l_cap, c, sizeof(uint32_t))
            or regrow(<void **> &g.l_pred, g.l_cap, c, sizeof(uint32_t))
            or regrow(<void **> &g.l_edge, g.l_cap, c, sizeof(uint64_t))
            or regrow(<void **> &g.l_state, g.l_cap, c, sizeof(uint8_t))):
        return BETANET_E_NOMEM
    g.l_cap = c
    return 0


cdef inline uint32_t new_label(NavGraph *g, const double *c, double key, uint32_t node, uint32_t pred,
                               uint64_t edge, uint8_t state) noexcept nogil:
    cdef uint32_t l = <uint32_t> g.l_used
    g.l_used += 1
    memcpy(&g.l_cost[4 * l], c, 4 * sizeof(double))
    g.l_key[l] = key
    g.l_node[l] = node
    g.l_pred[l] = pred
    g.l_edge[l] = edge
    g.l_state[l] = state
    return l


cdef inline double link_key(const NavGraph *g, uint64_t e, const double *ec, double a0, double a1,
                            double a2, double a3) noexcept nogil:
    """A link's share of the QoS scalarisation (failure through its stored nats)."""
    cdef double k = a0 * ec[0] + a1 * ec[1] + a3 * ec[3]
    if a2 > 0:
        k += a2 * g.e_nats[e]
    return k


cdef inline double node_min(const NavGraph *g, size_t base, uint32_t c, uint32_t *at) noexcept nogil:
    """Smallest key among a node's temporary labels (INFINITY and at = NAV_NONE if none)."""
    cdef uint32_t i
    cdef double m = INFINITY
    at[0] = NAV_NONE
    for i in range(c):
        if g.s_key[base + i] > -INFINITY and (at[0] == NAV_NONE or g.s_key[base + i] < m):
            m = g.s_key[base + i]
            at[0] = i
    return m


cdef inline void node_heap_set(NavGraph *g, uint32_t *hn, uint32_t v, uint32_t at, double k) noexcept nogil:
    """Key node v by its best temporary label (at = NAV_NONE: v leaves the heap)."""
    cdef uint32_t p = g.pos[v], last
    if at == NAV_NONE:
        if p == NAV_UNSEEN:
            return
        g.pos[v] = NAV_UNSEEN
        hn[0] -= 1
        if p == hn[0]:
            return
        last = g.hv[hn[0]]
        if p > 0 and g.hk[(p - 1) >> 2] > g.hk[hn[0]]:
            h4_up(g.hk, g.hv, g.pos, p, g.hk[hn[0]], last)
        else:
            h4_down_at(g.hk, g.hv, g.pos, p, hn[0], g.hk[hn[0]], last)
        return
    if p == NAV_UNSEEN:
        h4_up(g.hk, g.hv, g.pos, hn[0], k, v)
        hn[0] += 1
    elif k < g.hk[p]:
        h4_up(g.hk, g.hv, g.pos, p, k, v)
    elif k > g.hk[p]:
        h4_down_at(g.hk, g.hv, g.pos, p, hn[0], k, v)


cdef int martins(NavGraph *g, uint32_t src, const betanet_nav_qos_t *q) noexcept nogil:
    """Label-setting search; per node at most K labels (see docs: trim rule).

    Each node's labels sit in K slots holding the label id, a copy of its cost and its
    key (or -INFINITY once popped, so it can never be evicted): dominance checks read one
    contiguous block per node. The priority queue is an indexed 4-ary heap of nodes keyed
    by their best temporary label, so it never holds more than n entries and evicted
    labels leave nothing behind in it."""
    cdef uint32_t K = q.k, n = g.n, l, u, v, i, j, o, c, worst, nl, at, hn = 0
    cdef uint64_t e, end
    cdef size_t need = <size_t> n * K, base
    cdef double cc[4]
    cdef double ec[4]
    cdef double pc[4]
    cdef double key, wk, pkey, m
    cdef const double *w = q.weights
    cdef double dl = q.deadline_ms, pb = q.privacy_budget
    cdef double a0 = w[0] / NAV_S_LAT, a1 = w[1] / NAV_S_ENE, a2 = w[2] / NAV_S_NATS, a3 = w[3] / NAV_S_EPS
    cdef uint32_t *slots
    cdef double *scost
    cdef double *skey
    cdef bint dominated
    if K == 0 or need / K != n or need > NAV_MAX_SLOTS:
        return BETANET_E_LIMIT
    if need > g.slots_cap:
        if (regrow(<void **> &g.slots, 0, need, sizeof(uint32_t))
                or regrow(<void **> &g.s_cost, 0, 4 * need, sizeof(double))
                or regrow(<void **> &g.s_key, 0, need, sizeof(double))):
            return BETANET_E_NOMEM
        g.slots_cap = need
    if ensure_per_node(g):
        return BETANET_E_NOMEM
    memset(g.cnt, 0, n * sizeof(uint32_t))
    for i in range(n):
        g.pos[i] = NAV_UNSEEN
    if ensure_labels(g, 2 * <size_t> n + 16):
        return BETANET_E_NOMEM
    g.l_used = 0
    cc[0] = 0; cc[1] = 0; cc[2] = 0; cc[3] = 0
    l = new_label(g, cc, 0.0, src, NAV_NONE, <uint64_t> -1, NAV_TEMP)
    base = <size_t> src * K
    g.slots[base] = l
    memcpy(&g.s_cost[4 * base], cc, sizeof(cc))
    g.s_key[base] = 0.0
    g.cnt[src] = 1
    node_heap_set(g, &hn, src, 0, 0.0)
    while hn:
        u = g.hv[0]
        base = <size_t> u * K
        node_min(g, base, g.cnt[u], &at)
        l = g.slots[base + at]
        g.s_key[base + at] = -INFINITY              # popped: final, never evicted
        g.l_state[l] = NAV_PERM
        m = node_min(g, base, g.cnt[u], &at)
        node_heap_set(g, &hn, u, at, m)
        memcpy(pc, &g.l_cost[4 * l], sizeof(pc))
        pkey = g.l_key[l]
        e = g.row_start[u]
        end = e + g.row_len[u]
        while e < end:
            v = g.e_dst[e]
            edge_cost(g, e, ec)
            extend(pc, ec, cc)
            e += 1
            if v == src or cc[0] > dl or cc[3] > pb:
                continue
            base = <size_t> v * K
            slots = g.slots + base
            scost = g.s_cost + 4 * base
            skey = g.s_key + base
            c = g.cnt[v]
            dominated = False
            for i in range(c):
                if leq4(&scost[4 * i], cc):
                    dominated = True
                    break
            if dominated:
                continue
            # the scalarisation is additive: parent key + the link's (no log per label)
            key = pkey + link_key(g, e - 1, ec, a0, a1, a2, a3)
            # drop labels the new one dominates
            j = 0
            for i in range(c):
                if leq4(cc, &scost[4 * i]):
                    o = slots[i]
                    if g.l_state[o] == NAV_TEMP:
                        g.l_state[o] = NAV_DEAD
                else:
                    if j != i:
                        slots[j] = slots[i]
                        memcpy(&scost[4 * j], &scost[4 * i], 4 * sizeof(double))
                        skey[j] = skey[i]
                    j += 1
            c = j
            if c == K:
                # full: evict the temporary label with the largest scalarisation, if it
                # is worse than the new one; otherwise the new label is the one dropped
                worst = 0
                wk = skey[0]
                for i in range(1, c):
                    if skey[i] > wk:
                        wk = skey[i]; worst = i
                if not (wk > key):
                    g.cnt[v] = c
                    m = node_min(g, base, c, &at)     # dominated temporaries may be gone
                    node_heap_set(g, &hn, v, at, m)
                    continue
                g.l_state[slots[worst]] = NAV_DEAD
                c -= 1
                slots[worst] = slots[c]
                memcpy(&scost[4 * worst], &scost[4 * c], 4 * sizeof(double))
                skey[worst] = skey[c]
            if g.l_used == g.l_cap and ensure_labels(g, g.l_used + 1):
                return BETANET_E_NOMEM
            nl = new_label(g, cc, key, v, l, e - 1, NAV_TEMP)
            slots[c] = nl
            memcpy(&scost[4 * c], cc, sizeof(cc))
            skey[c] = key
            g.cnt[v] = c + 1
            m = node_min(g, base, c + 1, &at)
            node_heap_set(g, &hn, v, at, m)
    return 0


cdef int merge_extremes(NavGraph *g, uint32_t src, const betanet_nav_qos_t *q) noexcept nogil:
    """Add each objective's exact optimum (a Dijkstra tree per objective) as labels, so the
    trimmed frontier always holds the four extremes (docs/navigator.md)."""
    cdef uint32_t n = g.n, s, i, u, v, pl, l
    cdef int j
    cdef uint64_t e, end
    cdef double cc[4]
    cdef double ec[4]
    cdef double a0 = q.weights[0] / NAV_S_LAT, a1 = q.weights[1] / NAV_S_ENE
    cdef double a2 = q.weights[2] / NAV_S_NATS, a3 = q.weights[3] / NAV_S_EPS
    for j in range(4):
        s = dijkstra(g, src, j, g.dist)
        if ensure_labels(g, g.l_used + s + 1):
            return BETANET_E_NOMEM
        for i in range(n):
            g.xl[j * n + i] = NAV_NONE
        g.xl[j * n + src] = 0        # the root label
        # settle order puts every tree parent before its children
        for i in range(1, s):
            v = g.order[i]
            pl = g.xl[j * n + g.pred_n[v]]
            if pl == NAV_NONE:
                continue                        # parent infeasible: subtree dropped too
            e = g.pred_e[v]
            edge_cost(g, e, ec)
            extend(&g.l_cost[4 * pl], ec, cc)
            if cc[0] <= q.deadline_ms and cc[3] <= q.privacy_budget:
                g.xl[j * n + v] = new_label(g, cc, g.l_key[pl] + link_key(g, e, ec, a0, a1, a2, a3),
                                            v, pl, e, NAV_PERM)
    return 0


cdef inline bint better_in(const NavGraph *g, uint32_t a, uint32_t b, int j) noexcept nogil:
    """a is a better representative than b for objective j (then by key)."""
    cdef double x = g.l_cost[4 * a + j], y = g.l_cost[4 * b + j]
    return x < y or (x == y and g.l_key[a] < g.l_key[b])


cdef int build_output(NavGraph *g, uint32_t K) noexcept nogil:
    """Per node: search labels + extremes, non-dominated, trimmed to K keeping the
    scalarisation optimum and the four extremes, ordered by scalarisation."""
    cdef uint32_t n = g.n, v, i, j, c, m, o, t, best
    cdef int ob
    cdef size_t total = 0
    cdef uint32_t cand[BETANET_NAV_MAX_K + 8]
    cdef uint8_t keep[BETANET_NAV_MAX_K + 8]
    cdef uint32_t prot[5]
    cdef bint dom
    cdef uint32_t *out
    if g.out_cap < <size_t> n * K:
        if regrow(<void **> &g.out_lab, 0, <size_t> n * K if n else 1, sizeof(uint32_t)):
            return BETANET_E_NOMEM
        g.out_cap = <size_t> n * K
    for v in range(n):
        g.out_off[v] = <uint32_t> total
        c = 0
        for i in range(g.cnt[v]):
            cand[c] = g.slots[<size_t> v * K + i]; c += 1
        for ob in range(4):
            o = g.xl[ob * n + v] if g.xl != NULL else NAV_NONE
            if o == NAV_NONE:
                continue
            dom = False
            for i in range(c):
                if leq4(&g.l_cost[4 * cand[i]], &g.l_cost[4 * o]):
                    dom = True
                    break
            if dom:
                continue
            m = 0
            for i in range(c):
                if not leq4(&g.l_cost[4 * o], &g.l_cost[4 * cand[i]]):
                    cand[m] = cand[i]; m += 1
            c = m
            cand[c] = o; c += 1
        # order candidates by key (insertion sort: c <= K + 4)
        for i in range(1, c):
            t = cand[i]
            j = i
            while j > 0 and g.l_key[cand[j - 1]] > g.l_key[t]:
                cand[j] = cand[j - 1]
                j -= 1
            cand[j] = t
        if c > K:
            memset(keep, 0, c)
            keep[0] = 1                  # best scalarisation
            m = 1
            for ob in range(4):
                best = 0
                for i in range(1, c):
                    if better_in(g, cand[i], cand[best], ob):
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
            c = m
        out = g.out_lab + total
        for i in range(c):
            out[i] = cand[i]
        total += c
    g.out_off[n] = <uint32_t> total
    return 0


cdef int run_frontier(NavGraph *g, uint32_t source, const betanet_nav_qos_t *qq) noexcept nogil:
    cdef betanet_nav_qos_t q
    cdef int rc = qos_fill(qq, &q)
    if rc:
        return rc
    if source >= g.n:
        return BETANET_E_NOT_FOUND
    if g.have and g.res_gen == g.generation and g.res_src == source and \
            memcmp(&g.res_qos, &q, sizeof(q)) == 0:
        return 0
    g.have = 0
    if ensure_work(g):
        return BETANET_E_NOMEM
    rc = martins(g, source, &q)
    if rc == 0:
        rc = merge_extremes(g, source, &q)
    if rc == 0:
        rc = build_output(g, q.k)
    if rc:
        return rc
    g.have = 1
    g.res_gen = g.generation
    g.res_src = source
    g.res_qos = q
    return 0


cdef public int betanet_nav_frontier(betanet_nav_graph_t *gp, uint32_t source,
                                     const betanet_nav_qos_t *qos) noexcept nogil:
    if gp == NULL:
        return BETANET_E_INVALID
    return run_frontier(G(gp), source, qos)


cdef inline bint result_ok(const NavGraph *g) noexcept nogil:
    return g.have and g.res_gen == g.generation


cdef public int betanet_nav_frontier_size(const betanet_nav_graph_t *gp, uint32_t dest,
                                          uint32_t *count) noexcept nogil:
    cdef const NavGraph *g = G(gp)
    if g == NULL or count == NULL:
        return BETANET_E_INVALID
    if not result_ok(g):
        return BETANET_E_STATE
    if dest >= g.n:
        return BETANET_E_NOT_FOUND
    count[0] = g.out_off[dest + 1] - g.out_off[dest]
    return 0


cdef int write_path(const NavGraph *g, uint32_t l, uint32_t *path, uint16_t *trs, size_t cap,
                    size_t *plen) noexcept nogil:
    cdef size_t hops = 0, i
    cdef uint32_t x = l
    while g.l_pred[x] != NAV_NONE:
        hops += 1
        x = g.l_pred[x]
    if plen != NULL:
        plen[0] = hops + 1
    if path == NULL and cap == 0:
        return 0
    if path == NULL or cap < hops + 1:
        return BETANET_E_BUFFER_TOO_SMALL
    x = l
    i = hops
    while True:
        path[i] = g.l_node[x]
        if g.l_pred[x] == NAV_NONE:
            break
        if trs != NULL:
            trs[i - 1] = g.e_tr[g.l_edge[x]]
        x = g.l_pred[x]
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
    if dest >= g.n or i >= g.out_off[dest + 1] - g.out_off[dest]:
        return BETANET_E_NOT_FOUND
    l = g.out_lab[g.out_off[dest] + i]
    if cost_out != NULL:
        memcpy(cost_out, &g.l_cost[4 * l], 4 * sizeof(double))
    return write_path(g, l, path, transports, path_cap, path_len)


cdef public int betanet_nav_select(betanet_nav_graph_t *gp, uint32_t source, uint32_t dest,
                                   const betanet_nav_qos_t *qos, betanet_nav_route_t *out, uint32_t *path,
                                   uint16_t *transports, size_t path_cap, size_t *path_len) noexcept nogil:
    cdef NavGraph *g = G(gp)
    cdef int rc
    cdef uint32_t l, x, first
    cdef double lat, eps
    cdef betanet_nav_qos_t q
    if g == NULL or out == NULL:
        return BETANET_E_INVALID
    memset(out, 0, sizeof(betanet_nav_route_t))
    rc = qos_fill(qos, &q)
    if rc:
        return rc
    if source >= g.n or dest >= g.n:
        return BETANET_E_NOT_FOUND
    if source == dest:
        out.reason = BETANET_NAV_REASON_SELF
        return BETANET_E_NO_PATH
    rc = run_frontier(g, source, &q)
    if rc:
        return rc
    if g.out_off[dest + 1] == g.out_off[dest]:
        # explain: unconstrained optima tell which bound failed
        dijkstra(g, source, BETANET_NAV_LATENCY, g.dist)
        lat = g.dist[dest]
        dijkstra(g, source, BETANET_NAV_PRIVACY, g.dist)
        eps = g.dist[dest]
        if not (lat < INFINITY):
            out.reason = BETANET_NAV_REASON_UNREACHABLE
        elif lat > q.deadline_ms:
            out.reason = BETANET_NAV_REASON_DEADLINE
        elif eps > q.privacy_budget:
            out.reason = BETANET_NAV_REASON_PRIVACY
        else:
            out.reason = BETANET_NAV_REASON_COMBINED
        return BETANET_E_NO_PATH
    l = g.out_lab[g.out_off[dest]]          # labels are ordered by scalarisation
    memcpy(out.cost, &g.l_cost[4 * l], 4 * sizeof(double))
    out.score = g.l_key[l]
    x = l
    first = l
    out.hops = 0
    while g.l_pred[x] != NAV_NONE:
        out.hops += 1
        first = x
        x = g.l_pred[x]
    out.next_hop = g.l_node[first]
    out.transport = g.e_tr[g.l_edge[first]]
    return write_path(g, l, path, transports, path_cap, path_len)


# ---------------------------------------------------------------- contact graph routing

cdef struct CgrPlan:
    uint32_t nc
    uint32_t ccap
    uint64_t *c_from
    uint64_t *c_to
    double *c_start
    double *c_end
    double *c_rate
    double *c_owlt_given
    double *c_conf
    double *c_resid
    uint32_t nr
    uint32_t rcap
    uint64_t *r_from
    uint64_t *r_to
    double *r_start
    double *r_end
    double *r_owlt
    # derived, rebuilt when dirty
    int dirty
    uint32_t dcap
    double *c_owlt          # resolved (NaN = unusable)
    uint32_t *by_from       # contact ids sorted by (from, start)
    # search workspace (per contact)
    double *arr
    uint32_t *pred
    uint8_t *done
    uint8_t *supp
    double *hk
    uint32_t *hv
    size_t hlen
    size_t hcap
    uint64_t *excl
    size_t nexcl
    size_t exclcap
    # routes (A then candidates); contacts of route r: rc[r_off[r] .. r_off[r] + r_len[r]]
    uint32_t nroutes        # routes in the answer
    uint32_t ncand
    uint32_t candcap
    uint32_t *r_off
    uint32_t *r_len
    double *r_arr
    uint8_t *r_state        # 0 candidate, 1 accepted, 2 taken/discarded
    uint32_t *rc
    size_t rc_used
    size_t rc_cap
    uint32_t *answer        # accepted route ids in order
    int have
    double q_bytes
    double q_now


cdef inline CgrPlan *P(const betanet_cgr_plan_t *p) noexcept nogil:
    return <CgrPlan *> p


cdef public int betanet_cgr_plan_new(betanet_cgr_plan_t **out) noexcept nogil:
    cdef CgrPlan *p
    if out == NULL:
        return BETANET_E_INVALID
    p = <CgrPlan *> bnt_alloc(sizeof(CgrPlan))
    out[0] = <betanet_cgr_plan_t *> p
    if p == NULL:
        return BETANET_E_NOMEM
    p.dirty = 1
    return 0


cdef public void betanet_cgr_plan_free(betanet_cgr_plan_t *pp) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    if p == NULL:
        return
    bnt_free(p.c_from); bnt_free(p.c_to); bnt_free(p.c_start); bnt_free(p.c_end); bnt_free(p.c_rate)
    bnt_free(p.c_owlt_given); bnt_free(p.c_conf); bnt_free(p.c_resid)
    bnt_free(p.r_from); bnt_free(p.r_to); bnt_free(p.r_start); bnt_free(p.r_end); bnt_free(p.r_owlt)
    bnt_free(p.c_owlt); bnt_free(p.by_from); bnt_free(p.arr); bnt_free(p.pred); bnt_free(p.done)
    bnt_free(p.supp); bnt_free(p.hk); bnt_free(p.hv); bnt_free(p.excl)
    bnt_free(p.r_off); bnt_free(p.r_len); bnt_free(p.r_arr); bnt_free(p.r_state); bnt_free(p.rc)
    bnt_free(p.answer)
    bnt_free(p)


cdef inline bint overlap(double a0, double a1, double b0, double b1) noexcept nogil:
    return a0 < b1 and b0 < a1


cdef public int betanet_cgr_plan_add_contact(betanet_cgr_plan_t *pp, uint64_t fr, uint64_t to, double start,
                                             double end, double rate, double owlt, double confidence,
                                             uint32_t *id_out) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef uint32_t i, c
    if p == NULL or fr == to or not isfinite(start) or not isfinite(end) or end <= start:
        return BETANET_E_INVALID
    if not isfinite(rate) or rate <= 0 or isnan(confidence) or confidence <= 0 or confidence > 1:
        return BETANET_E_INVALID
    if not isnan(owlt) and (owlt < 0 or not isfinite(owlt)):
        return BETANET_E_INVALID
    for i in range(p.nc):
        if p.c_from[i] == fr and p.c_to[i] == to and overlap(start, end, p.c_start[i], p.c_end[i]):
            return BETANET_E_INVALID
    if p.nc == 0xFFFFFFF0u:
        return BETANET_E_LIMIT
    if p.nc == p.ccap:
        c = <uint32_t> next_cap(p.ccap, p.nc + 1)
        if (regrow(<void **> &p.c_from, p.ccap, c, 8) or regrow(<void **> &p.c_to, p.ccap, c, 8)
                or regrow(<void **> &p.c_start, p.ccap, c, 8) or regrow(<void **> &p.c_end, p.ccap, c, 8)
                or regrow(<void **> &p.c_rate, p.ccap, c, 8) or regrow(<void **> &p.c_owlt_given, p.ccap, c, 8)
                or regrow(<void **> &p.c_conf, p.ccap, c, 8) or regrow(<void **> &p.c_resid, p.ccap, c, 8)):
            return BETANET_E_NOMEM
        p.ccap = c
    i = p.nc
    p.c_from[i] = fr; p.c_to[i] = to; p.c_start[i] = start; p.c_end[i] = end
    p.c_rate[i] = rate; p.c_owlt_given[i] = owlt; p.c_conf[i] = confidence
    p.c_resid[i] = rate * (end - start)
    p.nc += 1
    p.dirty = 1
    p.have = 0
    if id_out != NULL:
        id_out[0] = i
    return 0


cdef public int betanet_cgr_plan_add_range(betanet_cgr_plan_t *pp, uint64_t fr, uint64_t to, double start,
                                           double end, double owlt) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef uint32_t i, c
    if p == NULL or not isfinite(start) or not isfinite(end) or end <= start:
        return BETANET_E_INVALID
    if not isfinite(owlt) or owlt < 0:
        return BETANET_E_INVALID
    for i in range(p.nr):
        if p.r_from[i] == fr and p.r_to[i] == to and overlap(start, end, p.r_start[i], p.r_end[i]) \
                and p.r_owlt[i] != owlt:
            return BETANET_E_INVALID
    if p.nr == 0xFFFFFFF0u:
        return BETANET_E_LIMIT
    if p.nr == p.rcap:
        c = <uint32_t> next_cap(p.rcap, p.nr + 1)
        if (regrow(<void **> &p.r_from, p.rcap, c, 8) or regrow(<void **> &p.r_to, p.rcap, c, 8)
                or regrow(<void **> &p.r_start, p.rcap, c, 8) or regrow(<void **> &p.r_end, p.rcap, c, 8)
                or regrow(<void **> &p.r_owlt, p.rcap, c, 8)):
            return BETANET_E_NOMEM
        p.rcap = c
    i = p.nr
    p.r_from[i] = fr; p.r_to[i] = to; p.r_start[i] = start; p.r_end[i] = end; p.r_owlt[i] = owlt
    p.nr += 1
    p.dirty = 1
    p.have = 0
    return 0


cdef public uint32_t betanet_cgr_plan_contacts(const betanet_cgr_plan_t *p) noexcept nogil:
    return P(p).nc if p != NULL else 0


cdef double resolve_owlt(const CgrPlan *p, uint32_t c) noexcept nogil:
    cdef uint32_t i
    cdef double t = p.c_start[c]
    cdef double back = NAN_VALUE()
    if not isnan(p.c_owlt_given[c]):
        return p.c_owlt_given[c]
    for i in range(p.nr):
        if p.r_start[i] <= t and t < p.r_end[i]:
            if p.r_from[i] == p.c_from[c] and p.r_to[i] == p.c_to[c]:
                return p.r_owlt[i]
            if p.r_from[i] == p.c_to[c] and p.r_to[i] == p.c_from[c]:
                back = p.r_owlt[i]          # symmetric unless an explicit range exists
    return back


cdef extern from *:
    """
    static inline double NAN_VALUE(void) { return __builtin_nan(""); }
    """
    double NAN_VALUE() nogil


cdef public int betanet_cgr_plan_get_contact(const betanet_cgr_plan_t *pp, uint32_t id, uint64_t *fr, uint64_t *to,
                                             double *start, double *end, double *rate, double *owlt,
                                             double *confidence, double *residual) noexcept nogil:
    cdef const CgrPlan *p = P(pp)
    if p == NULL:
        return BETANET_E_INVALID
    if id >= p.nc:
        return BETANET_E_NOT_FOUND
    if fr != NULL: fr[0] = p.c_from[id]
    if to != NULL: to[0] = p.c_to[id]
    if start != NULL: start[0] = p.c_start[id]
    if end != NULL: end[0] = p.c_end[id]
    if rate != NULL: rate[0] = p.c_rate[id]
    if owlt != NULL: owlt[0] = resolve_owlt(p, id)
    if confidence != NULL: confidence[0] = p.c_conf[id]
    if residual != NULL: residual[0] = p.c_resid[id]
    return 0


cdef inline bint contact_lt(const CgrPlan *p, uint32_t a, uint32_t b) noexcept nogil:
    return p.c_from[a] < p.c_from[b] or (p.c_from[a] == p.c_from[b] and p.c_start[a] < p.c_start[b])


cdef int prepare(CgrPlan *p) noexcept nogil:
    """Resolve owlts and index contacts by sender (after any change)."""
    cdef uint32_t i, j, t, c, root, child, end
    cdef size_t n = p.nc
    if not p.dirty:
        return 0
    if n > p.dcap:
        c = <uint32_t> next_cap(p.dcap, n)
        if (regrow(<void **> &p.c_owlt, 0, c, 8) or regrow(<void **> &p.by_from, 0, c, 4)
                or regrow(<void **> &p.arr, 0, c, 8) or regrow(<void **> &p.pred, 0, c, 4)
                or regrow(<void **> &p.done, 0, c, 1) or regrow(<void **> &p.supp, 0, c, 1)):
            return BETANET_E_NOMEM
        p.dcap = c
    for i in range(n):
        p.c_owlt[i] = resolve_owlt(p, i)
        p.by_from[i] = i
    # heap sort by (from, start)
    if n > 1:
        i = <uint32_t> (n // 2)
        while True:
            if i == 0:
                break
            i -= 1
            cgr_sift(p, i, <uint32_t> n)
        end = <uint32_t> n - 1
        while end > 0:
            t = p.by_from[0]; p.by_from[0] = p.by_from[end]; p.by_from[end] = t
            cgr_sift(p, 0, end)
            end -= 1
    p.dirty = 0
    return 0


cdef inline void cgr_sift(CgrPlan *p, uint32_t root, uint32_t n) noexcept nogil:
    cdef uint32_t child, t
    while True:
        child = 2 * root + 1
        if child >= n:
            return
        if child + 1 < n and contact_lt(p, p.by_from[child], p.by_from[child + 1]):
            child += 1
        if not contact_lt(p, p.by_from[root], p.by_from[child]):
            return
        t = p.by_from[root]; p.by_from[root] = p.by_from[child]; p.by_from[child] = t
        root = child


cdef inline uint32_t first_from(const CgrPlan *p, uint64_t node) noexcept nogil:
    """Index in by_from of the first contact sent by node (nc if none)."""
    cdef uint32_t lo = 0, hi = p.nc, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if p.c_from[p.by_from[mid]] < node:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline int ch_push(CgrPlan *p, double k, uint32_t v) noexcept nogil:
    cdef size_t i, q, c
    if p.hlen == p.hcap:
        c = next_cap(p.hcap, p.hlen + 1)
        if regrow(<void **> &p.hk, p.hcap, c, 8) or regrow(<void **> &p.hv, p.hcap, c, 4):
            return BETANET_E_NOMEM
        p.hcap = c
    i = p.hlen
    p.hlen += 1
    while i > 0:
        q = (i - 1) >> 1
        if p.hk[q] <= k:
            break
        p.hk[i] = p.hk[q]; p.hv[i] = p.hv[q]
        i = q
    p.hk[i] = k; p.hv[i] = v
    return 0


cdef inline uint32_t ch_pop(CgrPlan *p) noexcept nogil:
    cdef uint32_t top = p.hv[0], v
    cdef size_t i = 0, c, n
    cdef double k
    p.hlen -= 1
    n = p.hlen
    if n == 0:
        return top
    k = p.hk[n]; v = p.hv[n]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and p.hk[c + 1] < p.hk[c]:
            c += 1
        if p.hk[c] >= k:
            break
        p.hk[i] = p.hk[c]; p.hv[i] = p.hv[c]
        i = c
    p.hk[i] = k; p.hv[i] = v
    return top


cdef inline bint is_excl(const CgrPlan *p, uint64_t node) noexcept nogil:
    cdef size_t i
    for i in range(p.nexcl):
        if p.excl[i] == node:
            return True
    return False


cdef inline double hop_arrival(const CgrPlan *p, uint32_t c, double t, double bytes) noexcept nogil:
    """Arrival at c's receiver when the bundle is at c's sender at t (INFINITY if c
    cannot carry it: ended, no volume, no owlt)."""
    cdef double tx = t if t > p.c_start[c] else p.c_start[c]
    cdef double done = tx + bytes / p.c_rate[c]
    if isnan(p.c_owlt[c]) or done > p.c_end[c] or p.c_resid[c] < bytes:
        return INFINITY
    return done + p.c_owlt[c]


cdef int cgr_dijkstra(CgrPlan *p, uint64_t src, double t0, uint64_t dest, double bytes, double deadline,
                      uint32_t *best) noexcept nogil:
    """Earliest-arrival search from src at t0; *best = final contact of the best route or
    NAV_NONE. Suppressed contacts (p.supp) and excluded nodes (p.excl) are avoided; the
    route never revisits a node (src included)."""
    cdef uint32_t i, c, d, x
    cdef double a
    cdef bint revisit
    best[0] = NAV_NONE
    for i in range(p.nc):
        p.arr[i] = INFINITY
        p.done[i] = 0
    p.hlen = 0
    i = first_from(p, src)
    while i < p.nc and p.c_from[p.by_from[i]] == src:
        c = p.by_from[i]
        i += 1
        if p.supp[c] or is_excl(p, p.c_to[c]):
            continue
        a = hop_arrival(p, c, t0, bytes)
        if a <= deadline and a < p.arr[c]:
            p.arr[c] = a
            p.pred[c] = NAV_NONE
            if ch_push(p, a, c):
                return BETANET_E_NOMEM
    while p.hlen:
        c = ch_pop(p)
        if p.done[c]:
            continue
        p.done[c] = 1
        if p.c_to[c] == dest:
            best[0] = c
            return 0
        i = first_from(p, p.c_to[c])
        while i < p.nc and p.c_from[p.by_from[i]] == p.c_to[c]:
            d = p.by_from[i]
            i += 1
            if p.done[d] or p.supp[d] or is_excl(p, p.c_to[d]) or p.c_to[d] == src:
                continue
            if p.c_end[d] <= p.arr[c]:
                continue                      # contact over before the bundle arrives
            # no node revisits along c's route
            revisit = False
            x = c
            while x != NAV_NONE:
                if p.c_from[x] == p.c_to[d]:
                    revisit = True
                    break
                x = p.pred[x]
            if revisit:
                continue
            a = hop_arrival(p, d, p.arr[c], bytes)
            if a <= deadline and a < p.arr[d]:
                p.arr[d] = a
                p.pred[d] = c
                if ch_push(p, a, d):
                    return BETANET_E_NOMEM
    return 0


cdef bint plan_knows(const CgrPlan *p, uint64_t source, uint64_t dest) noexcept nogil:
    """Both nodes appear in some contact of the plan (else the query names a stranger)."""
    cdef uint32_t i
    cdef bint s = False, d = False
    for i in range(p.nc):
        s = s or p.c_from[i] == source or p.c_to[i] == source
        d = d or p.c_from[i] == dest or p.c_to[i] == dest
        if s and d:
            return True
    return False


cdef int route_alloc(CgrPlan *p, size_t len_) noexcept nogil:
    """Start a new route record of len_ contacts; returns its id or a negative error."""
    cdef uint32_t c
    if p.ncand == p.candcap:
        c = <uint32_t> next_cap(p.candcap, p.ncand + 1)
        if (regrow(<void **> &p.r_off, p.candcap, c, 4) or regrow(<void **> &p.r_len, p.candcap, c, 4)
                or regrow(<void **> &p.r_arr, p.candcap, c, 8) or regrow(<void **> &p.r_state, p.candcap, c, 1)
                or regrow(<void **> &p.answer, p.candcap, c, 4)):
            return BETANET_E_NOMEM
        p.candcap = c
    if p.rc_used + len_ > p.rc_cap:
        c = <uint32_t> next_cap(p.rc_cap, p.rc_used + len_)
        if regrow(<void **> &p.rc, p.rc_cap, c, 4):
            return BETANET_E_NOMEM
        p.rc_cap = c
    p.r_off[p.ncand] = <uint32_t> p.rc_used
    p.r_len[p.ncand] = <uint32_t> len_
    p.r_state[p.ncand] = 0
    p.rc_used += len_
    p.ncand += 1
    return <int> (p.ncand - 1)


cdef double route_eval(const CgrPlan *p, const uint32_t *cs, uint32_t n, double t, double bytes) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        t = hop_arrival(p, cs[i], t, bytes)
    return t


cdef bint route_same(const CgrPlan *p, uint32_t a, uint32_t b) noexcept nogil:
    return p.r_len[a] == p.r_len[b] and memcmp(&p.rc[p.r_off[a]], &p.rc[p.r_off[b]],
                                                p.r_len[a] * sizeof(uint32_t)) == 0


cdef int store_spur(CgrPlan *p, uint32_t root_route, uint32_t root_len, uint32_t last, double t0,
                    double bytes) noexcept nogil:
    """Record root (first root_len contacts of root_route) + the pred chain ending in last."""
    cdef uint32_t n = 0, x = last, i, r, k
    cdef int rid
    while x != NAV_NONE:
        n += 1
        x = p.pred[x]
    rid = route_alloc(p, root_len + n)
    if rid < 0:
        return rid
    r = <uint32_t> rid
    for i in range(root_len):
        p.rc[p.r_off[r] + i] = p.rc[p.r_off[root_route] + i]
    x = last
    i = root_len + n
    while x != NAV_NONE:
        i -= 1
        p.rc[p.r_off[r] + i] = x
        x = p.pred[x]
    p.r_arr[r] = route_eval(p, &p.rc[p.r_off[r]], p.r_len[r], t0, bytes)
    for k in range(r):
        if route_same(p, k, r):
            p.ncand -= 1                     # duplicate: forget it
            p.rc_used -= p.r_len[r]
            return 0
    return 0


cdef public int betanet_cgr_routes(betanet_cgr_plan_t *pp, uint64_t source, uint64_t dest, double now,
                                   double bytes, double deadline, const uint64_t *excluded, size_t n_excluded,
                                   uint32_t k, uint32_t *found) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef uint32_t last, kk, prev, i, j, r, best, a, c
    cdef int rc
    cdef uint64_t spur
    cdef double t
    cdef bint same
    if p == NULL or found == NULL or k == 0 or k > CGR_MAX_K or source == dest:
        return BETANET_E_INVALID
    if not isfinite(now) or isnan(bytes) or bytes < 0 or not isfinite(bytes) or isnan(deadline):
        return BETANET_E_INVALID
    if n_excluded and excluded == NULL:
        return BETANET_E_INVALID
    found[0] = 0
    p.have = 0
    rc = prepare(p)
    if rc:
        return rc
    if not plan_knows(p, source, dest):
        return BETANET_E_NOT_FOUND
    if n_excluded + 64 > p.exclcap:
        if regrow(<void **> &p.excl, 0, n_excluded + 64, 8):
            return BETANET_E_NOMEM
        p.exclcap = n_excluded + 64
    if n_excluded:
        memcpy(p.excl, excluded, n_excluded * 8)
    p.nexcl = n_excluded
    if p.nc:
        memset(p.supp, 0, p.nc)
    p.ncand = 0
    p.rc_used = 0
    p.nroutes = 0
    rc = cgr_dijkstra(p, source, now, dest, bytes, deadline, &last)
    if rc:
        return rc
    if last != NAV_NONE:
        rc = store_spur(p, 0, 0, last, now, bytes)
        if rc < 0:
            return rc
        p.r_state[0] = 1
        p.answer[0] = 0
        p.nroutes = 1
    # Yen: spur from every contact of the previous route
    while p.nroutes and p.nroutes < k:
        prev = p.answer[p.nroutes - 1]
        for i in range(p.r_len[prev]):
            # root = first i contacts of prev; spur node = sender of contact i
            spur = p.c_from[p.rc[p.r_off[prev] + i]]
            t = route_eval(p, &p.rc[p.r_off[prev]], i, now, bytes)
            memset(p.supp, 0, p.nc)
            for j in range(p.nroutes):
                a = p.answer[j]
                if p.r_len[a] > i and memcmp(&p.rc[p.r_off[a]], &p.rc[p.r_off[prev]], i * 4) == 0:
                    p.supp[p.rc[p.r_off[a] + i]] = 1
            # root nodes may not be revisited
            if n_excluded + i + 1 > p.exclcap:
                if regrow(<void **> &p.excl, p.nexcl, n_excluded + i + 64, 8):
                    return BETANET_E_NOMEM
                p.exclcap = n_excluded + i + 64
            p.nexcl = n_excluded
            for j in range(i):
                p.excl[p.nexcl] = p.c_from[p.rc[p.r_off[prev] + j]]
                p.nexcl += 1
            rc = cgr_dijkstra(p, spur, t, dest, bytes, deadline, &last)
            if rc:
                return rc
            if last != NAV_NONE:
                # the root's source must not be re-entered by the spur either
                rc = store_spur(p, prev, i, last, now, bytes)
                if rc < 0:
                    return rc
        p.nexcl = n_excluded
        # best unused candidate by (arrival, hops)
        best = NAV_NONE
        for r in range(p.ncand):
            if p.r_state[r] != 0 or not (p.r_arr[r] <= deadline):
                continue
            if best == NAV_NONE or p.r_arr[r] < p.r_arr[best] or \
                    (p.r_arr[r] == p.r_arr[best] and p.r_len[r] < p.r_len[best]):
                best = r
        if best == NAV_NONE:
            break
        p.r_state[best] = 1
        p.answer[p.nroutes] = best
        p.nroutes += 1
    p.have = 1
    p.q_bytes = bytes
    p.q_now = now
    found[0] = p.nroutes
    return 0


cdef public int betanet_cgr_route_get(const betanet_cgr_plan_t *pp, uint32_t i, betanet_cgr_route_t *out,
                                      uint32_t *contacts, size_t cap, size_t *n) noexcept nogil:
    cdef const CgrPlan *p = P(pp)
    cdef uint32_t r, j, c
    cdef double conf = 1.0, vol = INFINITY
    if p == NULL:
        return BETANET_E_INVALID
    if not p.have:
        return BETANET_E_STATE
    if i >= p.nroutes:
        return BETANET_E_NOT_FOUND
    r = p.answer[i]
    for j in range(p.r_len[r]):
        c = p.rc[p.r_off[r] + j]
        conf *= p.c_conf[c]
        if p.c_resid[c] < vol:
            vol = p.c_resid[c]
    if out != NULL:
        out.arrival = p.r_arr[r]
        out.confidence = conf
        out.volume = vol
        out.next_hop = p.c_to[p.rc[p.r_off[r]]]
        out.hops = p.r_len[r]
    if n != NULL:
        n[0] = p.r_len[r]
    if contacts != NULL or cap:
        if contacts == NULL or cap < p.r_len[r]:
            return BETANET_E_BUFFER_TOO_SMALL
        memcpy(contacts, &p.rc[p.r_off[r]], p.r_len[r] * 4)
    return 0


cdef public int betanet_cgr_book(betanet_cgr_plan_t *pp, uint32_t i, double bytes) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef uint32_t r, j, c
    if p == NULL or isnan(bytes) or bytes < 0:
        return BETANET_E_INVALID
    if not p.have:
        return BETANET_E_STATE
    if i >= p.nroutes:
        return BETANET_E_NOT_FOUND
    r = p.answer[i]
    for j in range(p.r_len[r]):
        if p.c_resid[p.rc[p.r_off[r] + j]] < bytes:
            return BETANET_E_LIMIT
    for j in range(p.r_len[r]):
        c = p.rc[p.r_off[r] + j]
        p.c_resid[c] -= bytes
    return 0


# ---------------------------------------------------------------- ION contact plans

cdef inline bint is_space(char ch) noexcept nogil:
    return ch == c' ' or ch == c'\t' or ch == c'\r'


cdef int next_token(const char *s, size_t n, size_t *at, char *tok, size_t tokcap) noexcept nogil:
    """Copy the next whitespace-separated token of s[*at:n] into tok (NUL-terminated).
    Returns its length, 0 at end of line, -1 if longer than tokcap - 1."""
    cdef size_t i = at[0], L = 0
    while i < n and is_space(s[i]):
        i += 1
    while i < n and not is_space(s[i]):
        if L + 1 >= tokcap:
            return -1
        tok[L] = s[i]
        L += 1
        i += 1
    tok[L] = 0
    at[0] = i
    return <int> L


cdef bint parse_time(const char *tok, double *out) noexcept nogil:
    """"+N" or "N": seconds relative to the plan's clock (absolute dates unsupported)."""
    cdef const char *s = tok
    if s[0] == c'+':
        s += 1
    return parse_real(s, out)


cdef bint parse_real(const char *s, double *out) noexcept nogil:
    cdef char *end
    cdef const char *c = s
    if s[0] == 0:
        return False
    # digits, one dot, optional exponent only (strtod would also take inf/nan/hex)
    while c[0] != 0:
        if not ((c[0] >= c'0' and c[0] <= c'9') or c[0] == c'.' or c[0] == c'e' or c[0] == c'E'
                or c[0] == c'-' or c[0] == c'+'):
            return False
        c += 1
    out[0] = strtod(s, &end)
    return end[0] == 0 and isfinite(out[0])


cdef bint parse_node(const char *s, uint64_t *out) noexcept nogil:
    cdef uint64_t v = 0
    cdef int d
    if s[0] == 0:
        return False
    while s[0] != 0:
        if s[0] < c'0' or s[0] > c'9':
            return False
        d = s[0] - c'0'
        if v > ((<uint64_t> -1) - <uint64_t> d) // 10:
            return False
        v = v * 10 + <uint64_t> d
        s += 1
    out[0] = v
    return True


cdef int parse_line(CgrPlan *p, const char *s, size_t n) noexcept nogil:
    cdef size_t at = 0
    cdef char t0[64]
    cdef char t1[64]
    cdef char a[7][64]
    cdef int L, i, cnt = 0
    cdef double st, en, x, conf
    cdef uint64_t fr, to
    L = next_token(s, n, &at, t0, 64)
    if L < 0:
        return BETANET_E_MALFORMED
    if L == 0 or t0[0] == c'#':
        return 0
    if L == 1 and (t0[0] == c'1' or t0[0] == c's' or t0[0] == c'x' or t0[0] == c'm' or t0[0] == c'@'
                   or t0[0] == c'!'):
        return 0
    if not (L == 1 and t0[0] == c'a'):
        return BETANET_E_MALFORMED
    L = next_token(s, n, &at, t1, 64)
    if L <= 0:
        return BETANET_E_MALFORMED
    while cnt < 7:
        L = next_token(s, n, &at, a[cnt], 64)
        if L < 0:
            return BETANET_E_MALFORMED
        if L == 0:
            break
        cnt += 1
    if cnt == 7:
        return BETANET_E_MALFORMED       # trailing garbage
    if cnt < 5 or not parse_time(a[0], &st) or not parse_time(a[1], &en) \
            or not parse_node(a[2], &fr) or not parse_node(a[3], &to) or not parse_real(a[4], &x):
        return BETANET_E_MALFORMED
    if memcmp(t1, b"contact", 8) == 0:
        conf = 1.0
        if cnt == 6 and not parse_real(a[5], &conf):
            return BETANET_E_MALFORMED
        return betanet_cgr_plan_add_contact(<betanet_cgr_plan_t *> p, fr, to, st, en, x, NAN_VALUE(), conf, NULL)
    if memcmp(t1, b"range", 6) == 0:
        if cnt != 5:
            return BETANET_E_MALFORMED
        return betanet_cgr_plan_add_range(<betanet_cgr_plan_t *> p, fr, to, st, en, x)
    return BETANET_E_MALFORMED


cdef public int betanet_cgr_plan_load_ion(betanet_cgr_plan_t *pp, const char *text, size_t len,
                                          size_t *err_line) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef size_t i = 0, start, line = 0
    cdef uint32_t nc0, nr0
    cdef int rc
    if err_line != NULL:
        err_line[0] = 0
    if p == NULL or (len and text == NULL):
        return BETANET_E_INVALID
    nc0 = p.nc
    nr0 = p.nr
    while i < len:
        start = i
        while i < len and text[i] != c'\n':
            if text[i] == 0:
                break
            i += 1
        line += 1
        if i < len and text[i] == 0:
            rc = BETANET_E_MALFORMED
        else:
            rc = parse_line(p, text + start, i - start)
        if rc:
            p.nc = nc0                      # all or nothing
            p.nr = nr0
            p.dirty = 1
            p.have = 0
            if err_line != NULL:
                err_line[0] = line
            return rc
        i += 1
    return 0


# ---------------------------------------------------------------- drift-plus-penalty

cdef struct Dpp:
    uint32_t nq
    uint32_t no
    double v
    double *q
    double *energy
    double *service     # no * nq


cdef public int betanet_dpp_new(uint32_t n_queues, uint32_t n_options, double v, betanet_dpp_t **out) noexcept nogil:
    cdef Dpp *s
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if n_queues == 0 or n_options == 0 or n_queues > 65536 or n_options > 65536 or isnan(v) or v < 0 \
            or not isfinite(v):
        return BETANET_E_INVALID
    s = <Dpp *> bnt_alloc(sizeof(Dpp))
    if s == NULL:
        return BETANET_E_NOMEM
    s.nq = n_queues
    s.no = n_options
    s.v = v
    s.q = <double *> bnt_alloc(n_queues * sizeof(double))
    s.energy = <double *> bnt_alloc(n_options * sizeof(double))
    s.service = <double *> bnt_alloc(<size_t> n_options * n_queues * sizeof(double))
    if s.q == NULL or s.energy == NULL or s.service == NULL:
        betanet_dpp_free(<betanet_dpp_t *> s)
        return BETANET_E_NOMEM
    out[0] = <betanet_dpp_t *> s
    return 0


cdef public void betanet_dpp_free(betanet_dpp_t *sp) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    if s == NULL:
        return
    bnt_free(s.q); bnt_free(s.energy); bnt_free(s.service)
    bnt_free(s)


cdef public int betanet_dpp_set_option(betanet_dpp_t *sp, uint32_t o, double energy, const double *service) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    cdef uint32_t k
    if s == NULL or service == NULL or o >= s.no or isnan(energy) or energy < 0 or not isfinite(energy):
        return BETANET_E_INVALID
    for k in range(s.nq):
        if isnan(service[k]) or service[k] < 0 or not isfinite(service[k]):
            return BETANET_E_INVALID
    s.energy[o] = energy
    memcpy(&s.service[<size_t> o * s.nq], service, s.nq * sizeof(double))
    return 0


cdef public int betanet_dpp_set_v(betanet_dpp_t *sp, double v) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    if s == NULL or isnan(v) or v < 0 or not isfinite(v):
        return BETANET_E_INVALID
    s.v = v
    return 0


cdef public int betanet_dpp_step(betanet_dpp_t *sp, const double *arrivals, const uint8_t *available,
                                 int32_t *chosen, double *energy_out) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    cdef uint32_t k, o
    cdef int32_t best = -1
    cdef double bestv = 0.0, val, sv
    cdef const double *row
    if s == NULL or arrivals == NULL or chosen == NULL:
        return BETANET_E_INVALID
    for k in range(s.nq):
        if isnan(arrivals[k]) or arrivals[k] < 0 or not isfinite(arrivals[k]):
            return BETANET_E_INVALID
    # the arrivals term sum Q*a is the same for every option; idle scores 0
    for o in range(s.no):
        if available != NULL and not available[o]:
            continue
        row = &s.service[<size_t> o * s.nq]
        val = s.v * s.energy[o]
        for k in range(s.nq):
            sv = row[k] if row[k] < s.q[k] else s.q[k]     # cannot serve more than is queued
            val -= s.q[k] * sv
        if val < bestv:
            bestv = val
            best = <int32_t> o
    for k in range(s.nq):
        sv = s.service[<size_t> best * s.nq + k] if best >= 0 else 0.0
        s.q[k] = (s.q[k] - sv if s.q[k] > sv else 0.0) + arrivals[k]
    chosen[0] = best
    if energy_out != NULL:
        energy_out[0] = s.energy[best] if best >= 0 else 0.0
    return 0


cdef public int betanet_dpp_backlog(const betanet_dpp_t *sp, double *q) noexcept nogil:
    cdef const Dpp *s = <const Dpp *> sp
    if s == NULL or q == NULL:
        return BETANET_E_INVALID
    memcpy(q, s.q, s.nq * sizeof(double))
    return 0
