# betanet._native.navigator — wraps include/betanet/navigator.h. Arrays are read in place
# (typed memoryviews over any C-contiguous buffer); heavy calls release the GIL. Each
# handle carries a lock: the C handles are single-threaded and the GIL is released.
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
    int betanet_cgr_plan_new(betanet_cgr_plan_t **out)
    void betanet_cgr_plan_free(betanet_cgr_plan_t *p)
    int betanet_cgr_plan_add_contact(betanet_cgr_plan_t *p, uint64_t fr, uint64_t to, double start, double end,
                                     double rate, double owlt, double confidence, uint32_t *id_out)
    int betanet_cgr_plan_add_range(betanet_cgr_plan_t *p, uint64_t fr, uint64_t to, double start, double end,
                                   double owlt)
    int betanet_cgr_plan_load_ion(betanet_cgr_plan_t *p, const char *text, size_t len, size_t *err_line)
    uint32_t betanet_cgr_plan_contacts(const betanet_cgr_plan_t *p)
    int betanet_cgr_plan_get_contact(const betanet_cgr_plan_t *p, uint32_t id, uint64_t *fr, uint64_t *to,
                                     double *start, double *end, double *rate, double *owlt,
                                     double *confidence, double *residual)
    int betanet_cgr_routes(betanet_cgr_plan_t *p, uint64_t source, uint64_t dest, double now, double bytes,
                           double deadline, const uint64_t *excluded, size_t n_excluded, uint32_t k,
                           uint32_t *found)
    int betanet_cgr_route_get(const betanet_cgr_plan_t *p, uint32_t i, betanet_cgr_route_t *out,
                              uint32_t *contacts, size_t cap, size_t *n)
    int betanet_cgr_book(betanet_cgr_plan_t *p, uint32_t i, double bytes)
    int betanet_dpp_new(uint32_t n_queues, uint32_t n_options, double v, betanet_dpp_t **out)
    void betanet_dpp_free(betanet_dpp_t *s)
    int betanet_dpp_set_option(betanet_dpp_t *s, uint32_t option, double energy, const double *service)
    int betanet_dpp_set_v(betanet_dpp_t *s, double v)
    int betanet_dpp_step(betanet_dpp_t *s, const double *arrivals, const uint8_t *available, int32_t *chosen,
                         double *energy_out)
    int betanet_dpp_backlog(const betanet_dpp_t *s, double *q)

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
            if rc == -12:
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


cdef class ContactPlan:
    cdef betanet_cgr_plan_t *p
    cdef object lock

    def __cinit__(self):
        self.lock = threading.Lock()
        check(betanet_cgr_plan_new(&self.p), "betanet_cgr_plan_new")

    def __dealloc__(self):
        betanet_cgr_plan_free(self.p)
        self.p = NULL

    def add_contact(self, uint64_t fr, uint64_t to, double start, double end, double rate,
                    double owlt=float("nan"), double confidence=1.0) -> int:
        cdef uint32_t cid
        with self.lock:
            check(betanet_cgr_plan_add_contact(self.p, fr, to, start, end, rate, owlt, confidence, &cid),
                  f"contact {fr}->{to} [{start}, {end}) (end > start, rate > 0, 0 < confidence <= 1, "
                  f"owlt >= 0, no overlap with another {fr}->{to} contact)")
        return cid

    def add_range(self, uint64_t fr, uint64_t to, double start, double end, double owlt):
        with self.lock:
            check(betanet_cgr_plan_add_range(self.p, fr, to, start, end, owlt),
                  f"range {fr}->{to} [{start}, {end}) (end > start, owlt >= 0, consistent with other ranges)")

    def load_ion(self, const unsigned char[::1] text):
        cdef size_t line = 0
        cdef int rc
        cdef size_t n = text.shape[0]
        cdef const char *pt = <const char *> &text[0] if n else NULL
        with self.lock:
            with nogil:
                rc = betanet_cgr_plan_load_ion(self.p, pt, n, &line)
        if rc < 0:
            from betanet.errors import error_for
            e = error_for(rc, f"ION contact plan line {line}")
            e.line = line
            raise e

    @property
    def contacts(self) -> int:
        return betanet_cgr_plan_contacts(self.p)

    def contact(self, uint32_t cid):
        cdef uint64_t fr, to
        cdef double s, e, r, o, c, res
        check(betanet_cgr_plan_get_contact(self.p, cid, &fr, &to, &s, &e, &r, &o, &c, &res), "contact")
        return (fr, to, s, e, r, o, c, res)

    def routes(self, uint64_t source, uint64_t dest, double now=0.0, double bytes=0.0,
               double deadline=INFINITY, excluded=(), uint32_t k=1):
        """[(arrival, confidence, volume, next_hop, [contact ids])]"""
        ex = np.ascontiguousarray(np.asarray(list(excluded), dtype=np.uint64))
        cdef const uint64_t[::1] exv = ex
        cdef const uint64_t *pe = &exv[0] if ex.shape[0] else NULL
        cdef size_t nex = ex.shape[0]
        cdef uint32_t found = 0, i
        cdef int rc
        cdef betanet_cgr_route_t r
        cdef size_t nc
        cdef uint32_t[::1] cv
        out = []
        with self.lock:
            with nogil:
                rc = betanet_cgr_routes(self.p, source, dest, now, bytes, deadline, pe, nex, k, &found)
            if rc == -11:
                check(rc, f"routes: node {source} or {dest} appears in no contact of the plan")
            check(rc, "routes (k in 1..64, source != dest, finite now, bytes >= 0)")
            for i in range(found):
                check(betanet_cgr_route_get(self.p, i, &r, NULL, 0, &nc), "route_get")
                ids = np.empty(nc, dtype=np.uint32)
                cv = ids
                check(betanet_cgr_route_get(self.p, i, &r, &cv[0], nc, &nc), "route_get")
                out.append((r.arrival, r.confidence, r.volume, r.next_hop, ids.tolist()))
        return out

    def book(self, uint32_t route, double bytes):
        with self.lock:
            check(betanet_cgr_book(self.p, route, bytes), "book")


cdef class Scheduler:
    cdef betanet_dpp_t *s
    cdef uint32_t nq, no
    cdef object lock

    def __cinit__(self, uint32_t n_queues, uint32_t n_options, double v):
        self.lock = threading.Lock()
        check(betanet_dpp_new(n_queues, n_options, v, &self.s), "scheduler (queues/options 1..65536, V >= 0)")
        self.nq = n_queues
        self.no = n_options

    def __dealloc__(self):
        betanet_dpp_free(self.s)
        self.s = NULL

    def set_option(self, uint32_t option, double energy, service):
        sv = np.ascontiguousarray(service, dtype=np.float64)
        if sv.shape != (self.nq,):
            raise ValueError(f"service needs {self.nq} entries")
        cdef const double[::1] v = sv
        with self.lock:
            check(betanet_dpp_set_option(self.s, option, energy, &v[0]), "set_option")

    def set_v(self, double v):
        with self.lock:
            check(betanet_dpp_set_v(self.s, v), "set_v")

    def step(self, arrivals, available=None):
        av = np.ascontiguousarray(arrivals, dtype=np.float64)
        if av.shape != (self.nq,):
            raise ValueError(f"arrivals needs {self.nq} entries")
        cdef const double[::1] a = av
        cdef const uint8_t[::1] m
        cdef const uint8_t *pm = NULL
        cdef int32_t chosen
        cdef double energy
        if available is not None:
            mv = np.ascontiguousarray(available, dtype=np.uint8)
            if mv.shape != (self.no,):
                raise ValueError(f"available needs {self.no} entries")
            m = mv
            pm = &m[0]
        with self.lock:
            check(betanet_dpp_step(self.s, &a[0], pm, &chosen, &energy), "step (arrivals >= 0, finite)")
        return chosen, energy

    def backlog(self):
        q = np.empty(self.nq, dtype=np.float64)
        cdef double[::1] qv = q
        check(betanet_dpp_backlog(self.s, &qv[0]), "backlog")
        return q
