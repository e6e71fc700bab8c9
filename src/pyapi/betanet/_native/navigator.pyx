# betanet._native.navigator — wraps include/betanet/navigator.h (link graph, Dijkstra,
# Pareto frontier, selection). Arrays are read in place (typed memoryviews over any
# C-contiguous buffer); heavy calls release the GIL. Each handle carries a lock: the C
# handles are single-threaded and the GIL is released.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.math cimport INFINITY
from betanet._native._common cimport *
import threading
import numpy as np

from betanet_navigator cimport *

cdef extern from "betanet.h" nogil:
    int betanet_nav_cost_extend(const double *a, const double *b, double *out)
    int betanet_nav_cost_dominates(const double *a, const double *b)
    int betanet_nav_qos_preset(int preset, betanet_nav_qos_t *out)
    int betanet_nav_graph_new(uint32_t n_nodes, betanet_nav_graph_t **out)
    void betanet_nav_graph_free(betanet_nav_graph_t *g)
    uint32_t betanet_nav_graph_nodes(const betanet_nav_graph_t *g)
    uint64_t betanet_nav_graph_links(const betanet_nav_graph_t *g)
    int betanet_nav_graph_resize(betanet_nav_graph_t *g, uint32_t n_nodes)
    int betanet_nav_graph_load_csr(betanet_nav_graph_t *g, uint32_t n_nodes, const uint64_t *indptr,
                                   const uint32_t *indices, const double *costs,
                                   const uint16_t *transports, const double *capacities)
    int betanet_nav_graph_load_edges(betanet_nav_graph_t *g, uint32_t n_nodes, uint64_t m,
                                     const uint32_t *src, const uint32_t *dst, const double *costs,
                                     const uint16_t *transports, const double *capacities)
    int betanet_nav_graph_set_link(betanet_nav_graph_t *g, uint32_t fr, uint32_t to, uint16_t transport,
                                   const double *cost, double capacity)
    int betanet_nav_graph_remove_link(betanet_nav_graph_t *g, uint32_t fr, uint32_t to, uint16_t transport)
    int betanet_nav_graph_get_link(const betanet_nav_graph_t *g, uint32_t fr, uint32_t to, uint16_t transport,
                                   double *cost_out, double *capacity_out)
    int betanet_nav_shortest(betanet_nav_graph_t *g, uint32_t source, int objective, double *dist, int64_t *pred)
    int betanet_nav_frontier(betanet_nav_graph_t *g, uint32_t source, const betanet_nav_qos_t *qos)
    int betanet_nav_frontier_size(const betanet_nav_graph_t *g, uint32_t dest, uint32_t *count)
    int betanet_nav_frontier_get(const betanet_nav_graph_t *g, uint32_t dest, uint32_t i, double *cost_out,
                                 uint32_t *path, uint16_t *transports, size_t path_cap, size_t *path_len)
    int betanet_nav_select(betanet_nav_graph_t *g, uint32_t source, uint32_t dest, const betanet_nav_qos_t *qos,
                           betanet_nav_route_t *out, uint32_t *path, uint16_t *transports, size_t path_cap,
                           size_t *path_len)

DEFAULT_K = BETANET_NAV_DEFAULT_K
MAX_K = BETANET_NAV_MAX_K
REASONS = {0: "none", 1: "unreachable", 2: "deadline", 3: "privacy", 4: "combined", 5: "self"}


def _cost4(c):
    cdef double[4] out
    if len(c) != 4:
        raise ValueError("a cost has 4 components (latency_ms, energy_mj, failure, privacy_eps)")
    for j in range(4):
        out[j] = float(c[j])
    return out


def cost_extend(a, b):
    cdef double[4] x = _cost4(a)
    cdef double[4] y = _cost4(b)
    cdef double[4] o
    check(betanet_nav_cost_extend(x, y, o), "cost_extend")
    return (o[0], o[1], o[2], o[3])


def cost_dominates(a, b) -> bool:
    cdef double[4] x = _cost4(a)
    cdef double[4] y = _cost4(b)
    return betanet_nav_cost_dominates(x, y) == 1


def qos_preset(int preset):
    cdef betanet_nav_qos_t q
    check(betanet_nav_qos_preset(preset, &q), "qos_preset")
    return (q.weights[0], q.weights[1], q.weights[2], q.weights[3])


cdef int _qos(betanet_nav_qos_t *q, weights, double deadline, double budget, uint32_t k) except -1:
    if len(weights) != 4:
        raise ValueError("QoS weights are 4 numbers (latency, energy, reliability, privacy)")
    for j in range(4):
        q.weights[j] = float(weights[j])
    q.deadline_ms = deadline
    q.privacy_budget = budget
    q.k = k
    return 0


cdef class Graph:
    cdef betanet_nav_graph_t *g
    cdef object lock

    def __cinit__(self, uint32_t n_nodes=0):
        self.lock = threading.Lock()
        check(betanet_nav_graph_new(n_nodes, &self.g), "betanet_nav_graph_new")

    def __dealloc__(self):
        betanet_nav_graph_free(self.g)
        self.g = NULL

    @property
    def nodes(self) -> int:
        return betanet_nav_graph_nodes(self.g)

    @property
    def links(self) -> int:
        return betanet_nav_graph_links(self.g)

    def resize(self, uint32_t n_nodes):
        with self.lock:
            check(betanet_nav_graph_resize(self.g, n_nodes), "resize")

    def load_edges(self, uint32_t n_nodes, const uint32_t[::1] src, const uint32_t[::1] dst,
                   const double[:, ::1] costs, const uint16_t[::1] transports=None,
                   const double[::1] capacities=None):
        cdef size_t m = src.shape[0]
        cdef int rc
        if dst.shape[0] != m or costs.shape[0] != m or costs.shape[1] != 4:
            raise ValueError("src, dst and costs (m x 4) must have the same number of links")
        if (transports is not None and transports.shape[0] != m) or (capacities is not None and capacities.shape[0] != m):
            raise ValueError("transports and capacities need one entry per link")
        cdef const uint32_t *ps = &src[0] if m else NULL
        cdef const uint32_t *pd = &dst[0] if m else NULL
        cdef const double *pc = &costs[0, 0] if m else NULL
        cdef const uint16_t *pt = &transports[0] if transports is not None and m else NULL
        cdef const double *pk = &capacities[0] if capacities is not None and m else NULL
        with self.lock:
            with nogil:
                rc = betanet_nav_graph_load_edges(self.g, n_nodes, m, ps, pd, pc, pt, pk)
        check(rc, "load_edges (bad node index, NaN or negative cost, failure > 1, negative capacity?)")

    def load_csr(self, const uint64_t[::1] indptr, const uint32_t[::1] indices, const double[:, ::1] costs,
                 const uint16_t[::1] transports=None, const double[::1] capacities=None):
        cdef size_t n = indptr.shape[0] - 1 if indptr.shape[0] else 0
        cdef size_t m = indices.shape[0]
        cdef int rc
        if indptr.shape[0] == 0 or indptr[n] != m or costs.shape[0] != m or costs.shape[1] != 4:
            raise ValueError("indptr (n+1), indices (m) and costs (m x 4) do not agree")
        if (transports is not None and transports.shape[0] != m) or (capacities is not None and capacities.shape[0] != m):
            raise ValueError("transports and capacities need one entry per link")
        cdef const uint32_t *pi = &indices[0] if m else NULL
        cdef const double *pc = &costs[0, 0] if m else NULL
        cdef const uint16_t *pt = &transports[0] if transports is not None and m else NULL
        cdef const double *pk = &capacities[0] if capacities is not None and m else NULL
        with self.lock:
            with nogil:
                rc = betanet_nav_graph_load_csr(self.g, <uint32_t> n, &indptr[0], pi, pc, pt, pk)
        check(rc, "load_csr (bad indptr, node index, NaN or negative cost?)")

    def set_link(self, uint32_t fr, uint32_t to, uint16_t transport, cost, double capacity=0.0):
        cdef double[4] c = _cost4(cost)
        with self.lock:
            check(betanet_nav_graph_set_link(self.g, fr, to, transport, c, capacity), "set_link")

    def remove_link(self, uint32_t fr, uint32_t to, uint16_t transport):
        with self.lock:
            check(betanet_nav_graph_remove_link(self.g, fr, to, transport), "remove_link")

    def get_link(self, uint32_t fr, uint32_t to, uint16_t transport):
        cdef double[4] c
        cdef double cap
        with self.lock:
            check(betanet_nav_graph_get_link(self.g, fr, to, transport, c, &cap), "get_link")
        return (c[0], c[1], c[2], c[3]), cap

    def shortest(self, uint32_t source, int objective, bint with_pred=True):
        cdef uint32_t n = betanet_nav_graph_nodes(self.g)
        dist = np.empty(n, dtype=np.float64)
        pred = np.empty(n, dtype=np.int64) if with_pred else None
        cdef double[::1] d = dist
        cdef int64_t[::1] p
        cdef int64_t *pp = NULL
        cdef double *pd = &d[0] if n else NULL
        cdef int rc
        if with_pred:
            p = pred
            pp = &p[0] if n else NULL
        if n == 0:
            raise IndexError("empty graph")
        with self.lock:
            with nogil:
                rc = betanet_nav_shortest(self.g, source, objective, pd, pp)
        check(rc, "shortest")
        return dist, pred

    def frontier(self, uint32_t source, weights, double deadline=INFINITY, double budget=INFINITY,
                 uint32_t k=0):
        """Run the search; results are read with frontier_size / frontier_get."""
        cdef betanet_nav_qos_t q
        cdef int rc
        _qos(&q, weights, deadline, budget, k)
        with self.lock:
            with nogil:
                rc = betanet_nav_frontier(self.g, source, &q)
        check(rc, "frontier")

    def frontier_labels(self, uint32_t dest):
        """[(cost, path, transports)] of the last frontier at dest, best scalarisation first."""
        cdef uint32_t count, i
        cdef double[4] c
        cdef size_t plen
        cdef uint32_t[::1] pv
        cdef uint16_t[::1] tv
        out = []
        with self.lock:
            check(betanet_nav_frontier_size(self.g, dest, &count), "frontier_size")
            for i in range(count):
                check(betanet_nav_frontier_get(self.g, dest, i, c, NULL, NULL, 0, &plen), "frontier_get")
                path = np.empty(plen, dtype=np.uint32)
                trs = np.empty(plen, dtype=np.uint16)
                pv = path
                tv = trs
                check(betanet_nav_frontier_get(self.g, dest, i, c, &pv[0], &tv[0], plen, &plen), "frontier_get")
                out.append(((c[0], c[1], c[2], c[3]), path.tolist(), trs[:plen - 1].tolist()))
        return out

    def select(self, uint32_t source, uint32_t dest, weights, double deadline=INFINITY,
               double budget=INFINITY, uint32_t k=0):
        """(next_hop, transport, cost, score, path, transports) or NoPathError with .reason."""
        cdef betanet_nav_qos_t q
        cdef betanet_nav_route_t r
        cdef int rc
        cdef size_t plen = 0
        cdef uint32_t[::1] pv
        cdef uint16_t[::1] tv
        _qos(&q, weights, deadline, budget, k)
        with self.lock:
            with nogil:
                rc = betanet_nav_select(self.g, source, dest, &q, &r, NULL, NULL, 0, &plen)
            if rc == BETANET_E_NO_PATH:
                from betanet.errors import NoPathError
                e = NoPathError(f"no feasible path {source} -> {dest}: {REASONS.get(r.reason, '?')}", rc)
                e.reason = REASONS.get(r.reason, "unknown")
                raise e
            check(rc, "select")
            path = np.empty(plen, dtype=np.uint32)
            trs = np.empty(plen, dtype=np.uint16)
            pv = path
            tv = trs
            check(betanet_nav_select(self.g, source, dest, &q, &r, &pv[0], &tv[0], plen, &plen), "select")
        return (r.next_hop, r.transport, (r.cost[0], r.cost[1], r.cost[2], r.cost[3]), r.score,
                path.tolist(), trs[:plen - 1].tolist())
