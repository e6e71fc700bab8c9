# betanet._native.dpp — wraps include/betanet/dpp.h (drift-plus-penalty scheduler). Each
# scheduler carries a lock (the C handle is single-threaded).
from libc.stdint cimport uint8_t, uint32_t, int32_t
from betanet._native._common cimport *
import threading
import numpy as np

from betanet_dpp cimport *

cdef extern from "betanet.h" nogil:
    int betanet_dpp_new(uint32_t n_queues, uint32_t n_options, double v, betanet_dpp_scheduler_t **out)
    void betanet_dpp_free(betanet_dpp_scheduler_t *s)
    int betanet_dpp_set_option(betanet_dpp_scheduler_t *s, uint32_t option, double energy, const double *service)
    int betanet_dpp_set_v(betanet_dpp_scheduler_t *s, double v)
    int betanet_dpp_step(betanet_dpp_scheduler_t *s, const double *arrivals, const uint8_t *available,
                         int32_t *chosen, double *energy_out)
    int betanet_dpp_backlog(const betanet_dpp_scheduler_t *s, double *q)

MAX_QUEUES = BETANET_DPP_MAX_QUEUES
MAX_OPTIONS = BETANET_DPP_MAX_OPTIONS


cdef class Scheduler:
    cdef betanet_dpp_scheduler_t *s
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
