# cgr.pxd — layout of a contact plan handle (cgr.pyx): contacts and ranges with their
# interval indexes, the derived per-contact data, the search workspace and the routes of
# the last query. Declarations only.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from heap4 cimport Heap4


cdef enum RouteState:
    ROUTE_CANDIDATE = 0     # found by a spur search, not yet chosen
    ROUTE_ACCEPTED = 1      # in the answer


cdef struct IntervalIndex:
    # Entry ids in Bentley–Saxe runs (one sorted run per set bit of n, largest first),
    # each sorted by (from, to, start, id). Per position, over the run's entries of the
    # same (from, to) up to it: the largest end (e1) and its tag (w1), and the largest end
    # among entries whose tag differs from w1 (e2). Insertion O(log n) amortised, queries
    # O(log^2 n).
    uint32_t n
    uint32_t cap
    uint32_t *ids
    uint32_t *tmp
    double *e1
    double *w1
    double *e2


cdef struct EntryKeys:
    # what an IntervalIndex orders and aggregates: a table's columns (tag NULL = all 0)
    const uint64_t *fr
    const uint64_t *to
    const double *start
    const double *end
    const double *tag


cdef struct ContactTable:
    uint32_t n
    uint32_t cap
    uint64_t *fr
    uint64_t *to
    double *start
    double *end
    double *rate
    double *owlt_given      # NaN = from the ranges
    double *conf
    double *resid           # bytes still bookable
    IntervalIndex index     # no two contacts of one (from, to) overlap


cdef struct RangeTable:
    uint32_t n
    uint32_t cap
    uint64_t *fr
    uint64_t *to
    double *start
    double *end
    double *owlt
    IntervalIndex index     # overlapping ranges of one (from, to) agree on owlt


cdef struct Derived:
    # rebuilt after any change, before a query
    int dirty
    uint32_t cap
    double *owlt            # resolved (NaN = unusable)
    uint32_t *by_from       # contact ids sorted by (from, start)


cdef struct SearchWork:
    # earliest-arrival search over contacts (cap = Derived.cap)
    double *arr
    uint32_t *pred
    uint8_t *supp           # contacts suppressed by Yen
    Heap4 heap
    uint64_t *excl          # excluded nodes (the query's, then the root's)
    size_t nexcl
    size_t exclcap


cdef struct RouteStore:
    # candidate routes; contacts of route r: rc[off[r] .. off[r] + len[r]]
    uint32_t nroutes        # routes in the answer
    uint32_t ncand
    uint32_t candcap
    uint32_t *off
    uint32_t *len
    double *arr
    uint8_t *state          # RouteState
    uint32_t *rc
    size_t rc_used
    size_t rc_cap
    uint32_t *answer        # accepted route ids in order
    int have


cdef struct CgrPlan:
    ContactTable contacts
    RangeTable ranges
    uint32_t max_entries    # contacts + ranges
    Derived derived
    SearchWork work
    RouteStore routes
