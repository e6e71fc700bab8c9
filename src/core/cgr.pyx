# cgr.pyx — contact graph routing (include/betanet/cgr.h, docs/cgr.md): contact plans with
# interval indexes that keep every add O(log^2 n), the ION ionadmin parser, earliest
# arrival over contacts (heap4.pxd), k routes by Yen's algorithm and SABR's rules.
#
# Every buffer belongs to the plan and only grows (grow.pxd). Module-level code never
# runs in libbetanet (DESIGN.md), so constants are C macros or enums.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset, memcmp
from libc.math cimport isnan, isfinite, INFINITY
from libc.stdlib cimport strtod
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free
from grow cimport regrow, next_cap
from heap4 cimport Heap4, HEAP_ABSENT, HEAP_DONE, heap4_set, heap4_pop

from betanet_cgr cimport *

cdef extern from *:
    """
    #define CGR_NONE 0xFFFFFFFFu
    static inline double CGR_NAN(void) { return __builtin_nan(""); }
    """
    uint32_t CGR_NONE
    double CGR_NAN() nogil


cdef inline CgrPlan *P(const betanet_cgr_plan_t *p) noexcept nogil:
    return <CgrPlan *> p


# ---------------------------------------------------------------- interval index

cdef inline int key_cmp(const EntryKeys *k, uint32_t a, uint64_t fr, uint64_t to, double start) noexcept nogil:
    """Order of entry a against the key (fr, to, start): -1, 0 or 1."""
    if k.fr[a] != fr:
        return -1 if k.fr[a] < fr else 1
    if k.to[a] != to:
        return -1 if k.to[a] < to else 1
    if k.start[a] != start:
        return -1 if k.start[a] < start else 1
    return 0


cdef inline bint entry_lt(const EntryKeys *k, uint32_t a, uint32_t b) noexcept nogil:
    cdef int c = key_cmp(k, a, k.fr[b], k.to[b], k.start[b])
    return c < 0 or (c == 0 and a < b)


cdef inline bint same_pair(const EntryKeys *k, uint32_t a, uint32_t b) noexcept nogil:
    return k.fr[a] == k.fr[b] and k.to[a] == k.to[b]


cdef void index_aggregate(IntervalIndex *ix, const EntryKeys *k, uint32_t lo, uint32_t hi) noexcept nogil:
    """Recompute e1/w1/e2 over the run ids[lo:hi] (see cgr.pxd)."""
    cdef uint32_t p, a
    cdef double e1 = -INFINITY, w1 = CGR_NAN(), e2 = -INFINITY, end, tag
    for p in range(lo, hi):
        a = ix.ids[p]
        if p == lo or not same_pair(k, a, ix.ids[p - 1]):
            e1 = -INFINITY; w1 = CGR_NAN(); e2 = -INFINITY
        end = k.end[a]
        tag = k.tag[a] if k.tag != NULL else 0.0
        if end > e1:
            if tag != w1:
                e2 = e1         # every other tag's end is <= the old maximum
            e1 = end; w1 = tag
        elif end > e2 and tag != w1:
            e2 = end
        ix.e1[p] = e1; ix.w1[p] = w1; ix.e2[p] = e2


cdef void index_merge(IntervalIndex *ix, const EntryKeys *k, uint32_t lo, uint32_t mid, uint32_t hi) noexcept nogil:
    """Merge the sorted runs ids[lo:mid] and ids[mid:hi] into one."""
    cdef uint32_t i = lo, j = mid, o = lo
    while i < mid or j < hi:
        if j >= hi or (i < mid and entry_lt(k, ix.ids[i], ix.ids[j])):
            ix.tmp[o] = ix.ids[i]; i += 1
        else:
            ix.tmp[o] = ix.ids[j]; j += 1
        o += 1
    memcpy(&ix.ids[lo], &ix.tmp[lo], (hi - lo) * sizeof(uint32_t))
    index_aggregate(ix, k, lo, hi)


cdef int index_grow(IntervalIndex *ix, uint32_t need) noexcept nogil:
    cdef size_t c
    if need <= ix.cap:
        return 0
    c = next_cap(ix.cap, need)
    if (regrow(<void **> &ix.ids, ix.cap, c, sizeof(uint32_t)) or regrow(<void **> &ix.tmp, 0, c, sizeof(uint32_t))
            or regrow(<void **> &ix.e1, ix.cap, c, sizeof(double))
            or regrow(<void **> &ix.w1, ix.cap, c, sizeof(double))
            or regrow(<void **> &ix.e2, ix.cap, c, sizeof(double))):
        return BETANET_E_NOMEM
    ix.cap = <uint32_t> c
    return 0


cdef void index_insert(IntervalIndex *ix, const EntryKeys *k, uint32_t id) noexcept nogil:
    """Add entry id (room reserved by index_grow): a new run of one, then merge equal-size
    trailing runs, as a binary counter carries."""
    cdef uint32_t old = ix.n, s = 1, end
    ix.ids[old] = id
    ix.n = old + 1
    end = ix.n
    index_aggregate(ix, k, end - 1, end)
    while old & s:
        index_merge(ix, k, end - 2 * s, end - s, end)
        s <<= 1


cdef void index_rebuild(IntervalIndex *ix, const EntryKeys *k, uint32_t n) noexcept nogil:
    """The index of entries 0..n-1 (after a rollback)."""
    cdef uint32_t i
    ix.n = 0
    for i in range(n):
        index_insert(ix, k, i)


cdef inline uint32_t run_upper(const IntervalIndex *ix, const EntryKeys *k, uint32_t lo, uint32_t hi,
                               uint64_t fr, uint64_t to, double x, bint inclusive) noexcept nogil:
    """First position in run [lo, hi) whose key is above (fr, to, x) — at or above when
    not inclusive."""
    cdef uint32_t mid
    cdef int c
    while lo < hi:
        mid = lo + (hi - lo) // 2
        c = key_cmp(k, ix.ids[mid], fr, to, x)
        if c < 0 or (inclusive and c == 0):
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef bint index_conflict(const IntervalIndex *ix, const EntryKeys *k, uint64_t fr, uint64_t to, double s,
                         double e, double tag, bint any_tag) noexcept nogil:
    """Some indexed (fr, to) entry overlaps [s, e) — with a tag other than `tag` unless
    any_tag."""
    cdef uint32_t size = 1u << 31, lo = 0, p
    cdef double m
    while size:
        if ix.n & size:
            p = run_upper(ix, k, lo, lo + size, fr, to, e, False)    # entries starting before e
            if p > lo and k.fr[ix.ids[p - 1]] == fr and k.to[ix.ids[p - 1]] == to:
                m = ix.e1[p - 1] if (any_tag or ix.w1[p - 1] != tag) else ix.e2[p - 1]
                if m > s:
                    return True
            lo += size
        size >>= 1
    return False


cdef bint index_cover(const IntervalIndex *ix, const EntryKeys *k, uint64_t fr, uint64_t to, double t,
                      double *tag) noexcept nogil:
    """Some indexed (fr, to) entry covers t (start <= t < end): *tag receives its tag."""
    cdef uint32_t size = 1u << 31, lo = 0, p
    while size:
        if ix.n & size:
            p = run_upper(ix, k, lo, lo + size, fr, to, t, True)     # entries starting at or before t
            if p > lo and k.fr[ix.ids[p - 1]] == fr and k.to[ix.ids[p - 1]] == to and ix.e1[p - 1] > t:
                tag[0] = ix.w1[p - 1]
                return True
            lo += size
        size >>= 1
    return False


cdef inline void contact_keys(const CgrPlan *p, EntryKeys *k) noexcept nogil:
    k.fr = p.contacts.fr; k.to = p.contacts.to; k.start = p.contacts.start; k.end = p.contacts.end
    k.tag = NULL


cdef inline void range_keys(const CgrPlan *p, EntryKeys *k) noexcept nogil:
    k.fr = p.ranges.fr; k.to = p.ranges.to; k.start = p.ranges.start; k.end = p.ranges.end
    k.tag = p.ranges.owlt


# ---------------------------------------------------------------- plans

cdef inline void changed(CgrPlan *p) noexcept nogil:
    p.derived.dirty = 1
    p.routes.have = 0


cdef public int betanet_cgr_plan_new(betanet_cgr_plan_t **out) noexcept nogil:
    cdef CgrPlan *p
    cdef int rc
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    rc = betanet_init()
    if rc:
        return rc
    p = <CgrPlan *> bnt_alloc(sizeof(CgrPlan))
    if p == NULL:
        return BETANET_E_NOMEM
    p.max_entries = BETANET_CGR_DEFAULT_MAX_ENTRIES
    p.derived.dirty = 1
    out[0] = <betanet_cgr_plan_t *> p
    return 0


cdef void index_free(IntervalIndex *ix) noexcept nogil:
    bnt_free(ix.ids); bnt_free(ix.tmp); bnt_free(ix.e1); bnt_free(ix.w1); bnt_free(ix.e2)


cdef public void betanet_cgr_plan_free(betanet_cgr_plan_t *pp) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    if p == NULL:
        return
    bnt_free(p.contacts.fr); bnt_free(p.contacts.to); bnt_free(p.contacts.start); bnt_free(p.contacts.end)
    bnt_free(p.contacts.rate); bnt_free(p.contacts.owlt_given); bnt_free(p.contacts.conf)
    bnt_free(p.contacts.resid); index_free(&p.contacts.index)
    bnt_free(p.ranges.fr); bnt_free(p.ranges.to); bnt_free(p.ranges.start); bnt_free(p.ranges.end)
    bnt_free(p.ranges.owlt); index_free(&p.ranges.index)
    bnt_free(p.derived.owlt); bnt_free(p.derived.by_from)
    bnt_free(p.work.arr); bnt_free(p.work.pred); bnt_free(p.work.supp)
    bnt_free(p.work.heap.key); bnt_free(p.work.heap.item); bnt_free(p.work.heap.pos); bnt_free(p.work.excl)
    bnt_free(p.routes.off); bnt_free(p.routes.len); bnt_free(p.routes.arr); bnt_free(p.routes.state)
    bnt_free(p.routes.rc); bnt_free(p.routes.answer)
    bnt_free(p)


cdef public int betanet_cgr_plan_set_limit(betanet_cgr_plan_t *pp, uint32_t max_entries) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    if p == NULL or max_entries == 0 or max_entries > BETANET_CGR_MAX_ENTRIES_LIMIT:
        return BETANET_E_INVALID
    if <uint64_t> p.contacts.n + p.ranges.n > max_entries:
        return BETANET_E_LIMIT
    p.max_entries = max_entries
    return 0


cdef inline bint plan_full(const CgrPlan *p) noexcept nogil:
    return <uint64_t> p.contacts.n + p.ranges.n >= p.max_entries


cdef int grow_contacts(ContactTable *t) noexcept nogil:
    cdef size_t c
    if t.n < t.cap:
        return 0
    c = next_cap(t.cap, <size_t> t.n + 1)
    if (regrow(<void **> &t.fr, t.cap, c, 8) or regrow(<void **> &t.to, t.cap, c, 8)
            or regrow(<void **> &t.start, t.cap, c, 8) or regrow(<void **> &t.end, t.cap, c, 8)
            or regrow(<void **> &t.rate, t.cap, c, 8) or regrow(<void **> &t.owlt_given, t.cap, c, 8)
            or regrow(<void **> &t.conf, t.cap, c, 8) or regrow(<void **> &t.resid, t.cap, c, 8)):
        return BETANET_E_NOMEM
    t.cap = <uint32_t> c
    return 0


cdef int grow_ranges(RangeTable *t) noexcept nogil:
    cdef size_t c
    if t.n < t.cap:
        return 0
    c = next_cap(t.cap, <size_t> t.n + 1)
    if (regrow(<void **> &t.fr, t.cap, c, 8) or regrow(<void **> &t.to, t.cap, c, 8)
            or regrow(<void **> &t.start, t.cap, c, 8) or regrow(<void **> &t.end, t.cap, c, 8)
            or regrow(<void **> &t.owlt, t.cap, c, 8)):
        return BETANET_E_NOMEM
    t.cap = <uint32_t> c
    return 0


cdef public int betanet_cgr_plan_add_contact(betanet_cgr_plan_t *pp, uint64_t fr, uint64_t to, double start,
                                             double end, double rate, double owlt, double confidence,
                                             uint32_t *id_out) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef ContactTable *t
    cdef EntryKeys k
    cdef uint32_t i
    if p == NULL or fr == to or not isfinite(start) or not isfinite(end) or end <= start:
        return BETANET_E_INVALID
    if not isfinite(rate) or rate <= 0 or isnan(confidence) or confidence <= 0 or confidence > 1:
        return BETANET_E_INVALID
    if not isnan(owlt) and (owlt < 0 or not isfinite(owlt)):
        return BETANET_E_INVALID
    t = &p.contacts
    contact_keys(p, &k)
    if index_conflict(&t.index, &k, fr, to, start, end, 0.0, True):
        return BETANET_E_INVALID
    if plan_full(p):
        return BETANET_E_LIMIT
    if grow_contacts(t) or index_grow(&t.index, t.n + 1):
        return BETANET_E_NOMEM
    i = t.n
    t.fr[i] = fr; t.to[i] = to; t.start[i] = start; t.end[i] = end
    t.rate[i] = rate; t.owlt_given[i] = owlt; t.conf[i] = confidence
    t.resid[i] = rate * (end - start)
    t.n += 1
    contact_keys(p, &k)                     # the columns may have moved
    index_insert(&t.index, &k, i)
    changed(p)
    if id_out != NULL:
        id_out[0] = i
    return 0


cdef public int betanet_cgr_plan_add_range(betanet_cgr_plan_t *pp, uint64_t fr, uint64_t to, double start,
                                           double end, double owlt) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef RangeTable *t
    cdef EntryKeys k
    cdef uint32_t i
    if p == NULL or not isfinite(start) or not isfinite(end) or end <= start:
        return BETANET_E_INVALID
    if not isfinite(owlt) or owlt < 0:
        return BETANET_E_INVALID
    t = &p.ranges
    range_keys(p, &k)
    if index_conflict(&t.index, &k, fr, to, start, end, owlt, False):
        return BETANET_E_INVALID
    if plan_full(p):
        return BETANET_E_LIMIT
    if grow_ranges(t) or index_grow(&t.index, t.n + 1):
        return BETANET_E_NOMEM
    i = t.n
    t.fr[i] = fr; t.to[i] = to; t.start[i] = start; t.end[i] = end; t.owlt[i] = owlt
    t.n += 1
    range_keys(p, &k)
    index_insert(&t.index, &k, i)
    changed(p)
    return 0


cdef void truncate(CgrPlan *p, uint32_t nc, uint32_t nr) noexcept nogil:
    """Forget every contact from id nc and range from id nr on (load_ion's rollback)."""
    cdef EntryKeys k
    if p.contacts.n != nc:
        p.contacts.n = nc
        contact_keys(p, &k)
        index_rebuild(&p.contacts.index, &k, nc)
    if p.ranges.n != nr:
        p.ranges.n = nr
        range_keys(p, &k)
        index_rebuild(&p.ranges.index, &k, nr)
    changed(p)


cdef public uint32_t betanet_cgr_plan_contacts(const betanet_cgr_plan_t *p) noexcept nogil:
    return P(p).contacts.n if p != NULL else 0


cdef double resolve_owlt(const CgrPlan *p, uint32_t c) noexcept nogil:
    """A contact's own owlt, else that of a range of its pair covering its start, else
    of the reverse pair's (ION presumes ranges symmetric), else NaN (unusable)."""
    cdef const ContactTable *t = &p.contacts
    cdef EntryKeys k
    cdef double w
    if not isnan(t.owlt_given[c]):
        return t.owlt_given[c]
    range_keys(p, &k)
    if index_cover(&p.ranges.index, &k, t.fr[c], t.to[c], t.start[c], &w):
        return w
    if index_cover(&p.ranges.index, &k, t.to[c], t.fr[c], t.start[c], &w):
        return w
    return CGR_NAN()


cdef public int betanet_cgr_plan_get_contact(const betanet_cgr_plan_t *pp, uint32_t id, uint64_t *fr, uint64_t *to,
                                             double *start, double *end, double *rate, double *owlt,
                                             double *confidence, double *residual) noexcept nogil:
    cdef const CgrPlan *p = P(pp)
    cdef const ContactTable *t
    if p == NULL:
        return BETANET_E_INVALID
    t = &p.contacts
    if id >= t.n:
        return BETANET_E_NOT_FOUND
    if fr != NULL: fr[0] = t.fr[id]
    if to != NULL: to[0] = t.to[id]
    if start != NULL: start[0] = t.start[id]
    if end != NULL: end[0] = t.end[id]
    if rate != NULL: rate[0] = t.rate[id]
    if owlt != NULL: owlt[0] = resolve_owlt(p, id)
    if confidence != NULL: confidence[0] = t.conf[id]
    if residual != NULL: residual[0] = t.resid[id]
    return 0


# ---------------------------------------------------------------- per-query preparation

cdef inline bint from_lt(const ContactTable *t, uint32_t a, uint32_t b) noexcept nogil:
    return t.fr[a] < t.fr[b] or (t.fr[a] == t.fr[b] and (t.start[a] < t.start[b]
                                                        or (t.start[a] == t.start[b] and a < b)))


cdef uint32_t *sort_by_from(const ContactTable *t, uint32_t *ids, uint32_t *tmp, uint32_t n) noexcept nogil:
    """Bottom-up merge sort of ids[n] by (from, start, id) with scratch tmp[n]; returns the
    buffer (ids or tmp) that holds the result."""
    cdef uint32_t w = 1, lo, mid, hi, i, j, o
    cdef uint32_t *x
    while w < n:
        lo = 0
        while lo < n:
            mid = lo + w if lo + w < n else n
            hi = mid + w if mid + w < n else n
            i = lo; j = mid; o = lo
            while i < mid or j < hi:
                if j >= hi or (i < mid and from_lt(t, ids[i], ids[j])):
                    tmp[o] = ids[i]; i += 1
                else:
                    tmp[o] = ids[j]; j += 1
                o += 1
            lo = hi
        x = ids; ids = tmp; tmp = x
        w *= 2
    return ids


cdef int ensure_derived(CgrPlan *p) noexcept nogil:
    cdef size_t c
    cdef uint32_t n = p.contacts.n
    if n <= p.derived.cap:
        return 0
    c = next_cap(p.derived.cap, n)
    if (regrow(<void **> &p.derived.owlt, 0, c, 8) or regrow(<void **> &p.derived.by_from, 0, 2 * c, 4)
            or regrow(<void **> &p.work.arr, 0, c, 8) or regrow(<void **> &p.work.pred, 0, c, 4)
            or regrow(<void **> &p.work.supp, 0, c, 1) or regrow(<void **> &p.work.heap.key, 0, c, 8)
            or regrow(<void **> &p.work.heap.item, 0, c, 4) or regrow(<void **> &p.work.heap.pos, 0, c, 4)):
        return BETANET_E_NOMEM
    p.derived.cap = <uint32_t> c
    return 0


cdef int prepare(CgrPlan *p) noexcept nogil:
    """Resolve owlts and index contacts by sender (after any change)."""
    cdef uint32_t i, n = p.contacts.n
    cdef uint32_t *sorted_ids
    if not p.derived.dirty:
        return 0
    if n == 0:                       # empty plan: nothing to index (by_from may be NULL)
        p.derived.dirty = 0
        return 0
    if ensure_derived(p):
        return BETANET_E_NOMEM
    for i in range(n):
        p.derived.owlt[i] = resolve_owlt(p, i)
        p.derived.by_from[i] = i
    # by_from has room for 2n: the upper half is the sort's scratch
    sorted_ids = sort_by_from(&p.contacts, p.derived.by_from, p.derived.by_from + p.derived.cap, n)
    if sorted_ids != p.derived.by_from:
        memcpy(p.derived.by_from, sorted_ids, n * sizeof(uint32_t))
    p.derived.dirty = 0
    return 0


# ---------------------------------------------------------------- earliest arrival

cdef inline uint32_t first_from(const CgrPlan *p, uint64_t node) noexcept nogil:
    """Index in by_from of the first contact sent by node (n if none)."""
    cdef uint32_t lo = 0, hi = p.contacts.n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if p.contacts.fr[p.derived.by_from[mid]] < node:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline bint is_excl(const SearchWork *w, uint64_t node) noexcept nogil:
    cdef size_t i
    for i in range(w.nexcl):
        if w.excl[i] == node:
            return True
    return False


cdef inline double hop_arrival(const CgrPlan *p, uint32_t c, double t, double bytes) noexcept nogil:
    """Arrival at c's receiver when the bundle is at c's sender at t (INFINITY if c
    cannot carry it: ended, no volume, no owlt)."""
    cdef const ContactTable *ct = &p.contacts
    cdef double tx = t if t > ct.start[c] else ct.start[c]
    cdef double done = tx + bytes / ct.rate[c]
    if isnan(p.derived.owlt[c]) or done > ct.end[c] or ct.resid[c] < bytes:
        return INFINITY
    return done + p.derived.owlt[c]


cdef inline bint revisits(const CgrPlan *p, uint32_t c, uint64_t node) noexcept nogil:
    """node sends a contact on the route ending in contact c (it was visited)."""
    cdef uint32_t x = c
    while x != CGR_NONE:
        if p.contacts.fr[x] == node:
            return True
        x = p.work.pred[x]
    return False


cdef inline void offer(CgrPlan *p, uint32_t d, uint32_t pred, double a, double deadline) noexcept nogil:
    """Contact d reached at a through pred: keep it if it is the best so far."""
    if a <= deadline and a < p.work.arr[d]:
        p.work.arr[d] = a
        p.work.pred[d] = pred
        heap4_set(&p.work.heap, d, a)


cdef uint32_t earliest_arrival(CgrPlan *p, uint64_t src, double t0, uint64_t dest, double bytes,
                               double deadline) noexcept nogil:
    """Dijkstra over contacts from src at t0: the final contact of the best route to dest,
    or CGR_NONE. Suppressed contacts (work.supp) and excluded nodes (work.excl) are
    avoided; the route never revisits a node (src included)."""
    cdef const ContactTable *ct = &p.contacts
    cdef SearchWork *w = &p.work
    cdef uint32_t i, c, d
    for i in range(ct.n):
        w.arr[i] = INFINITY
        w.heap.pos[i] = HEAP_ABSENT
    w.heap.len = 0
    i = first_from(p, src)
    while i < ct.n and ct.fr[p.derived.by_from[i]] == src:
        c = p.derived.by_from[i]
        i += 1
        if not w.supp[c] and not is_excl(w, ct.to[c]):
            offer(p, c, CGR_NONE, hop_arrival(p, c, t0, bytes), deadline)
    while w.heap.len:
        c = heap4_pop(&w.heap)
        if ct.to[c] == dest:
            return c
        i = first_from(p, ct.to[c])
        while i < ct.n and ct.fr[p.derived.by_from[i]] == ct.to[c]:
            d = p.derived.by_from[i]
            i += 1
            if w.heap.pos[d] == HEAP_DONE or w.supp[d] or is_excl(w, ct.to[d]) or ct.to[d] == src:
                continue
            if ct.end[d] <= w.arr[c]:
                continue                      # contact over before the bundle arrives
            if not revisits(p, c, ct.to[d]):
                offer(p, d, c, hop_arrival(p, d, w.arr[c], bytes), deadline)
    return CGR_NONE


cdef bint plan_knows(const CgrPlan *p, uint64_t source, uint64_t dest) noexcept nogil:
    """Both nodes appear in some contact of the plan (else the query names a stranger)."""
    cdef const ContactTable *t = &p.contacts
    cdef uint32_t i
    cdef bint s = False, d = False
    for i in range(t.n):
        s = s or t.fr[i] == source or t.to[i] == source
        d = d or t.fr[i] == dest or t.to[i] == dest
        if s and d:
            return True
    return False


# ---------------------------------------------------------------- routes (Yen)

cdef int route_alloc(RouteStore *R, size_t len_) noexcept nogil:
    """Start a new route record of len_ contacts; returns its id or a negative error."""
    cdef size_t c
    if R.ncand == R.candcap:
        c = next_cap(R.candcap, R.ncand + 1)
        if (regrow(<void **> &R.off, R.candcap, c, 4) or regrow(<void **> &R.len, R.candcap, c, 4)
                or regrow(<void **> &R.arr, R.candcap, c, 8) or regrow(<void **> &R.state, R.candcap, c, 1)
                or regrow(<void **> &R.answer, R.candcap, c, 4)):
            return BETANET_E_NOMEM
        R.candcap = <uint32_t> c
    if R.rc_used + len_ > R.rc_cap:
        c = next_cap(R.rc_cap, R.rc_used + len_)
        if regrow(<void **> &R.rc, R.rc_cap, c, 4):
            return BETANET_E_NOMEM
        R.rc_cap = c
    R.off[R.ncand] = <uint32_t> R.rc_used
    R.len[R.ncand] = <uint32_t> len_
    R.state[R.ncand] = ROUTE_CANDIDATE
    R.rc_used += len_
    R.ncand += 1
    return <int> (R.ncand - 1)


cdef double route_eval(const CgrPlan *p, const uint32_t *cs, uint32_t n, double t, double bytes) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        t = hop_arrival(p, cs[i], t, bytes)
    return t


cdef bint route_same(const RouteStore *R, uint32_t a, uint32_t b) noexcept nogil:
    return R.len[a] == R.len[b] and memcmp(&R.rc[R.off[a]], &R.rc[R.off[b]], R.len[a] * sizeof(uint32_t)) == 0


cdef int store_spur(CgrPlan *p, uint32_t root_route, uint32_t root_len, uint32_t last, double t0,
                    double bytes) noexcept nogil:
    """Record root (first root_len contacts of root_route) + the pred chain ending in last."""
    cdef RouteStore *R = &p.routes
    cdef uint32_t n = 0, x = last, i, r, k
    cdef int rid
    while x != CGR_NONE:
        n += 1
        x = p.work.pred[x]
    rid = route_alloc(R, root_len + n)
    if rid < 0:
        return rid
    r = <uint32_t> rid
    for i in range(root_len):
        R.rc[R.off[r] + i] = R.rc[R.off[root_route] + i]
    x = last
    i = root_len + n
    while x != CGR_NONE:
        i -= 1
        R.rc[R.off[r] + i] = x
        x = p.work.pred[x]
    R.arr[r] = route_eval(p, &R.rc[R.off[r]], R.len[r], t0, bytes)
    for k in range(r):
        if route_same(R, k, r):
            R.ncand -= 1                     # duplicate: forget it
            R.rc_used -= R.len[r]
            return 0
    return 0


cdef int reserve_excl(SearchWork *w, size_t need, size_t keep) noexcept nogil:
    if need <= w.exclcap:
        return 0
    if regrow(<void **> &w.excl, keep, need + 64, 8):
        return BETANET_E_NOMEM
    w.exclcap = need + 64
    return 0


cdef int spur_from(CgrPlan *p, uint32_t prev, uint32_t i, size_t n_excluded, uint64_t dest, double now,
                   double bytes, double deadline) noexcept nogil:
    """Yen's spur at contact i of accepted route prev: root = its first i contacts, whose
    senders may not be revisited; the next contact of every accepted route sharing the
    root is suppressed. Stores the spur route found, if any."""
    cdef RouteStore *R = &p.routes
    cdef SearchWork *w = &p.work
    cdef const uint32_t *root = &R.rc[R.off[prev]]
    cdef uint32_t j, a, last
    cdef double t = route_eval(p, root, i, now, bytes)
    memset(w.supp, 0, p.contacts.n)
    for j in range(R.nroutes):
        a = R.answer[j]
        if R.len[a] > i and memcmp(&R.rc[R.off[a]], root, i * 4) == 0:
            w.supp[R.rc[R.off[a] + i]] = 1
    if reserve_excl(w, n_excluded + i + 1, w.nexcl):
        return BETANET_E_NOMEM
    w.nexcl = n_excluded
    for j in range(i):
        w.excl[w.nexcl] = p.contacts.fr[root[j]]
        w.nexcl += 1
    last = earliest_arrival(p, p.contacts.fr[root[i]], t, dest, bytes, deadline)
    if last == CGR_NONE:
        return 0
    return store_spur(p, prev, i, last, now, bytes)


cdef uint32_t best_candidate(const RouteStore *R, double deadline) noexcept nogil:
    """The unused candidate with the earliest arrival, then fewest hops (CGR_NONE if none)."""
    cdef uint32_t r, best = CGR_NONE
    for r in range(R.ncand):
        if R.state[r] != ROUTE_CANDIDATE or not (R.arr[r] <= deadline):
            continue
        if best == CGR_NONE or R.arr[r] < R.arr[best] or (R.arr[r] == R.arr[best] and R.len[r] < R.len[best]):
            best = r
    return best


cdef inline void accept(RouteStore *R, uint32_t r) noexcept nogil:
    R.state[r] = ROUTE_ACCEPTED
    R.answer[R.nroutes] = r
    R.nroutes += 1


cdef int query_begin(CgrPlan *p, uint64_t source, uint64_t dest, const uint64_t *excluded,
                     size_t n_excluded) noexcept nogil:
    """Prepare the plan and the workspace for a query."""
    cdef int rc = prepare(p)
    if rc:
        return rc
    if not plan_knows(p, source, dest):
        return BETANET_E_NOT_FOUND
    if reserve_excl(&p.work, n_excluded + 64, 0):
        return BETANET_E_NOMEM
    if n_excluded:
        memcpy(p.work.excl, excluded, n_excluded * 8)
    p.work.nexcl = n_excluded
    if p.contacts.n:
        memset(p.work.supp, 0, p.contacts.n)
    p.routes.ncand = 0
    p.routes.rc_used = 0
    p.routes.nroutes = 0
    return 0


cdef public int betanet_cgr_routes(betanet_cgr_plan_t *pp, uint64_t source, uint64_t dest, double now,
                                   double bytes, double deadline, const uint64_t *excluded, size_t n_excluded,
                                   uint32_t k, uint32_t *found) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef RouteStore *R
    cdef uint32_t last, prev, i, best
    cdef int rc
    if p == NULL or found == NULL or k == 0 or k > BETANET_CGR_MAX_K or source == dest:
        return BETANET_E_INVALID
    if not isfinite(now) or isnan(bytes) or bytes < 0 or not isfinite(bytes) or isnan(deadline):
        return BETANET_E_INVALID
    if n_excluded and excluded == NULL:
        return BETANET_E_INVALID
    if n_excluded > BETANET_CGR_MAX_ENTRIES_LIMIT:   # keeps n_excluded + k + 64 from wrapping
        return BETANET_E_LIMIT
    found[0] = 0
    p.routes.have = 0
    rc = query_begin(p, source, dest, excluded, n_excluded)
    if rc:
        return rc
    R = &p.routes
    last = earliest_arrival(p, source, now, dest, bytes, deadline)
    if last != CGR_NONE:
        rc = store_spur(p, 0, 0, last, now, bytes)
        if rc < 0:
            return rc
        accept(R, 0)
    # Yen: spur from every contact of the previous route
    while R.nroutes and R.nroutes < k:
        prev = R.answer[R.nroutes - 1]
        for i in range(R.len[prev]):
            rc = spur_from(p, prev, i, n_excluded, dest, now, bytes, deadline)
            if rc < 0:
                return rc
        p.work.nexcl = n_excluded
        best = best_candidate(R, deadline)
        if best == CGR_NONE:
            break
        accept(R, best)
    R.have = 1
    found[0] = R.nroutes
    return 0


cdef inline int answer_route(const CgrPlan *p, uint32_t i, uint32_t *r) noexcept nogil:
    """Route i of the last query (its RouteStore index in r), or the status saying why not."""
    if not p.routes.have:
        return BETANET_E_STATE
    if i >= p.routes.nroutes:
        return BETANET_E_NOT_FOUND
    r[0] = p.routes.answer[i]
    return 0


cdef public int betanet_cgr_route_get(const betanet_cgr_plan_t *pp, uint32_t i, betanet_cgr_route_t *out,
                                      uint32_t *contacts, size_t cap, size_t *n) noexcept nogil:
    cdef const CgrPlan *p = P(pp)
    cdef const RouteStore *R
    cdef uint32_t r, j, c
    cdef double conf = 1.0, vol = INFINITY
    cdef int rc
    if p == NULL:
        return BETANET_E_INVALID
    rc = answer_route(p, i, &r)
    if rc:
        return rc
    R = &p.routes
    for j in range(R.len[r]):
        c = R.rc[R.off[r] + j]
        conf *= p.contacts.conf[c]
        if p.contacts.resid[c] < vol:
            vol = p.contacts.resid[c]
    if out != NULL:
        out.arrival = R.arr[r]
        out.confidence = conf
        out.volume = vol
        out.next_hop = p.contacts.to[R.rc[R.off[r]]]
        out.hops = R.len[r]
    if n != NULL:
        n[0] = R.len[r]
    if contacts != NULL or cap:
        if contacts == NULL or cap < R.len[r]:
            return BETANET_E_BUFFER_TOO_SMALL
        memcpy(contacts, &R.rc[R.off[r]], R.len[r] * 4)
    return 0


cdef public int betanet_cgr_book(betanet_cgr_plan_t *pp, uint32_t i, double bytes) noexcept nogil:
    cdef CgrPlan *p = P(pp)
    cdef const RouteStore *R
    cdef uint32_t r, j
    cdef int rc
    if p == NULL or isnan(bytes) or bytes < 0:
        return BETANET_E_INVALID
    rc = answer_route(p, i, &r)
    if rc:
        return rc
    R = &p.routes
    for j in range(R.len[r]):
        if p.contacts.resid[R.rc[R.off[r] + j]] < bytes:
            return BETANET_E_LIMIT
    for j in range(R.len[r]):
        p.contacts.resid[R.rc[R.off[r] + j]] -= bytes
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
        return betanet_cgr_plan_add_contact(<betanet_cgr_plan_t *> p, fr, to, st, en, x, CGR_NAN(), conf, NULL)
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
    nc0 = p.contacts.n
    nr0 = p.ranges.n
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
            truncate(p, nc0, nr0)           # all or nothing
            if err_line != NULL:
                err_line[0] = line
            return rc
        i += 1
    return 0
