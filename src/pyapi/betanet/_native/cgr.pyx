# betanet._native.cgr — wraps include/betanet/cgr.h (contact plans, ION parser, CGR
# routes, booking). Parsing and route queries release the GIL; each plan carries a lock
# (the C handle is single-threaded).
from libc.stdint cimport uint32_t, uint64_t
from libc.math cimport INFINITY
from betanet._native._common cimport *
import threading
import numpy as np

from betanet_cgr cimport *

cdef extern from "betanet.h" nogil:
    int betanet_cgr_plan_new(betanet_cgr_plan_t **out)
    void betanet_cgr_plan_free(betanet_cgr_plan_t *p)
    int betanet_cgr_plan_set_limit(betanet_cgr_plan_t *p, uint32_t max_entries)
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

MAX_K = BETANET_CGR_MAX_K
DEFAULT_MAX_ENTRIES = BETANET_CGR_DEFAULT_MAX_ENTRIES
MAX_ENTRIES_LIMIT = BETANET_CGR_MAX_ENTRIES_LIMIT


cdef class ContactPlan:
    cdef betanet_cgr_plan_t *p
    cdef object lock

    def __cinit__(self, uint32_t max_entries=BETANET_CGR_DEFAULT_MAX_ENTRIES):
        self.lock = threading.Lock()
        check(betanet_cgr_plan_new(&self.p), "betanet_cgr_plan_new")
        check(betanet_cgr_plan_set_limit(self.p, max_entries),
              f"plan limit {max_entries} (1..{BETANET_CGR_MAX_ENTRIES_LIMIT} entries)")

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

    def set_limit(self, uint32_t max_entries):
        with self.lock:
            check(betanet_cgr_plan_set_limit(self.p, max_entries),
                  f"plan limit {max_entries} (1..{BETANET_CGR_MAX_ENTRIES_LIMIT}, not below the plan's size)")

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
            if rc == BETANET_E_NOT_FOUND:
                check(rc, f"routes: node {source} or {dest} appears in no contact of the plan")
            check(rc, f"routes (k in 1..{BETANET_CGR_MAX_K}, source != dest, finite now, bytes >= 0)")
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
