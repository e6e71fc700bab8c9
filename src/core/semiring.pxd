# semiring.pxd — the navigator's cost algebra (docs/navigator.md): a cost is 4 doubles
# (latency ms, energy mJ, failure probability, epsilon); extend (⊗) adds latency, energy
# and epsilon and composes failure; leq4 is the dominance order; the QoS scalarisation
# weighs each objective by its scale. Inline functions only (DESIGN.md).

from libc.math cimport isnan, log1p, INFINITY
from betanet_navigator cimport betanet_nav_qos_t

cdef extern from *:
    """
    /* scalarisation scales: 100 ms, 100 mJ, 0.01 nats of failure, 1 epsilon */
    #define NAV_S_LAT 100.0
    #define NAV_S_ENE 100.0
    #define NAV_S_NATS 0.01
    #define NAV_S_EPS 1.0
    """
    double NAV_S_LAT, NAV_S_ENE, NAV_S_NATS, NAV_S_EPS


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


cdef struct KeyWeights:
    # the QoS weights divided by their scales: a link's share of the scalarisation
    double a0, a1, a2, a3


cdef inline void key_weights(const betanet_nav_qos_t *q, KeyWeights *kw) noexcept nogil:
    kw.a0 = q.weights[0] / NAV_S_LAT
    kw.a1 = q.weights[1] / NAV_S_ENE
    kw.a2 = q.weights[2] / NAV_S_NATS
    kw.a3 = q.weights[3] / NAV_S_EPS
