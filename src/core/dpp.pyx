# dpp.pyx — drift-plus-penalty scheduler (include/betanet/dpp.h, docs/dpp.md): each slot
# serve the option minimising V * energy + sum_q Q_q * (arrivals_q - service_q).
# Module-level code never runs in libbetanet (DESIGN.md).

from libc.stdint cimport uint8_t, uint32_t, int32_t, uint64_t
from libc.string cimport memcpy
from libc.math cimport isfinite
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free

from betanet_dpp cimport *


cdef struct Dpp:
    uint32_t nq
    uint32_t no
    double v
    double *q           # backlog per queue
    double *energy      # per option, mJ
    double *service     # no * nq, row o = option o


cdef inline bint nonneg(double x) noexcept nogil:
    """x is a finite number >= 0 (NaN fails both tests)."""
    return isfinite(x) and x >= 0


cdef public int betanet_dpp_new(uint32_t n_queues, uint32_t n_options, double v,
                                betanet_dpp_scheduler_t **out) noexcept nogil:
    cdef Dpp *s
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if n_queues == 0 or n_options == 0 or n_queues > BETANET_DPP_MAX_QUEUES \
            or n_options > BETANET_DPP_MAX_OPTIONS or not nonneg(v):
        return BETANET_E_INVALID
    if <uint64_t> n_queues * n_options > BETANET_DPP_MAX_CELLS:   # bounds the service matrix
        return BETANET_E_LIMIT
    rc = betanet_init()
    if rc:
        return rc
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
        betanet_dpp_free(<betanet_dpp_scheduler_t *> s)
        return BETANET_E_NOMEM
    out[0] = <betanet_dpp_scheduler_t *> s
    return 0


cdef public void betanet_dpp_free(betanet_dpp_scheduler_t *sp) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    if s == NULL:
        return
    bnt_free(s.q); bnt_free(s.energy); bnt_free(s.service)
    bnt_free(s)


cdef public int betanet_dpp_set_option(betanet_dpp_scheduler_t *sp, uint32_t o, double energy,
                                       const double *service) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    cdef uint32_t k
    if s == NULL or service == NULL or o >= s.no or not nonneg(energy):
        return BETANET_E_INVALID
    for k in range(s.nq):
        if not nonneg(service[k]):
            return BETANET_E_INVALID
    s.energy[o] = energy
    memcpy(&s.service[<size_t> o * s.nq], service, s.nq * sizeof(double))
    return 0


cdef public int betanet_dpp_set_v(betanet_dpp_scheduler_t *sp, double v) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    if s == NULL or not nonneg(v):
        return BETANET_E_INVALID
    s.v = v
    return 0


cdef int32_t best_option(const Dpp *s, const uint8_t *available) noexcept nogil:
    """The option minimising the drift-plus-penalty bound, -1 for idle. The arrivals term
    sum Q*a is the same for every option and idle scores 0, so ties go to idle, then to
    the lower index."""
    cdef uint32_t k, o
    cdef int32_t best = -1
    cdef double bestv = 0.0, val, sv
    cdef const double *row
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
    return best


cdef public int betanet_dpp_step(betanet_dpp_scheduler_t *sp, const double *arrivals, const uint8_t *available,
                                 int32_t *chosen, double *energy_out) noexcept nogil:
    cdef Dpp *s = <Dpp *> sp
    cdef uint32_t k
    cdef int32_t best
    cdef double sv
    if s == NULL or arrivals == NULL or chosen == NULL:
        return BETANET_E_INVALID
    for k in range(s.nq):
        if not nonneg(arrivals[k]):
            return BETANET_E_INVALID
    best = best_option(s, available)
    for k in range(s.nq):
        sv = s.service[<size_t> best * s.nq + k] if best >= 0 else 0.0
        s.q[k] = (s.q[k] - sv if s.q[k] > sv else 0.0) + arrivals[k]
    chosen[0] = best
    if energy_out != NULL:
        energy_out[0] = s.energy[best] if best >= 0 else 0.0
    return 0


cdef public int betanet_dpp_backlog(const betanet_dpp_scheduler_t *sp, double *q) noexcept nogil:
    cdef const Dpp *s = <const Dpp *> sp
    if s == NULL or q == NULL:
        return BETANET_E_INVALID
    memcpy(q, s.q, s.nq * sizeof(double))
    return 0
