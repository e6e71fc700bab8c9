/* betanet/cgr.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Contact graph routing (CCSDS 734.3-B-1, SABR style) over a contact plan: contacts and
 * ranges, the ION ionadmin plan parser, earliest-arrival routes and k routes by Yen's
 * algorithm, volume booking. Prefix betanet_cgr_. See docs/cgr.md.
 *
 * Units: seconds for times and one-way light time (owlt), bytes/second for rates, bytes
 * for volume. Node ids are uint64 (ION node numbers).
 *
 * Initialisation: betanet_cgr_plan_new calls betanet_init() itself on first use.
 * Thread-safety: a plan is used by one thread at a time (queries write its workspace);
 * distinct plans are independent.
 * Cost: adding a contact or range costs O(log^2 n) (n = entries in the plan), loading an
 * ION plan O(n log^2 n), the first query after a change O(n log^2 n).
 */
#ifndef BETANET_CGR_H
#define BETANET_CGR_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/cgr.h"
#endif

/* Routes per query (the k of betanet_cgr_routes) */
#define BETANET_CGR_MAX_K 64
/* Default bound on the entries (contacts + ranges) of one plan: a plan from an untrusted
 * source cannot grow without bound. Change it per plan with betanet_cgr_plan_set_limit. */
#define BETANET_CGR_DEFAULT_MAX_ENTRIES 262144u
/* Largest limit betanet_cgr_plan_set_limit accepts. */
#define BETANET_CGR_MAX_ENTRIES_LIMIT 0x10000000u

/* A contact plan: contacts (from, to, start, end, rate, owlt, confidence) and ranges
 * (from, to, start, end, owlt). A contact's one-way light time is its own when given
 * (>= 0) or, when NaN, that of the range covering its start (either direction, as ION
 * presumes ranges symmetric); a contact with neither is unusable. Times are seconds on
 * the plan's clock. */
typedef struct betanet_cgr_plan betanet_cgr_plan_t;

/* New empty plan holding at most BETANET_CGR_DEFAULT_MAX_ENTRIES entries (calls
 * betanet_init() on first use). Errors: BETANET_E_INVALID (out NULL), BETANET_E_NOMEM,
 * BETANET_E_CRYPTO (betanet_init failed); *out is NULL on error. */
BETANET_NODISCARD int betanet_cgr_plan_new(betanet_cgr_plan_t **out);
/* Free a plan (NULL is ignored). */
void betanet_cgr_plan_free(betanet_cgr_plan_t *p);
/* Bound the number of entries (contacts + ranges) of the plan; adds beyond it fail with
 * BETANET_E_LIMIT. Errors: BETANET_E_INVALID (NULL, 0, above
 * BETANET_CGR_MAX_ENTRIES_LIMIT), BETANET_E_LIMIT (the plan already holds more). */
int betanet_cgr_plan_set_limit(betanet_cgr_plan_t *p, uint32_t max_entries);
/* Add a contact; *id_out (may be NULL) receives its index. rate in bytes/s (> 0),
 * confidence in (0, 1]. Errors: BETANET_E_INVALID (end <= start, NaN times, from == to,
 * rate <= 0, bad confidence, negative owlt, or overlapping an existing contact of the
 * same from -> to: an inconsistent plan), BETANET_E_LIMIT (plan full), BETANET_E_NOMEM. */
int betanet_cgr_plan_add_contact(betanet_cgr_plan_t *p, uint64_t from, uint64_t to, double start, double end,
                                 double rate, double owlt, double confidence, uint32_t *id_out);
/* Add a range. Errors: BETANET_E_INVALID (end <= start, owlt < 0 or NaN, overlapping range
 * of the same pair with a different owlt), BETANET_E_LIMIT (plan full), BETANET_E_NOMEM. */
int betanet_cgr_plan_add_range(betanet_cgr_plan_t *p, uint64_t from, uint64_t to, double start, double end,
                               double owlt);
/* Parse ION ionadmin text (len bytes, need not be NUL-terminated): "a contact +S +E F T RATE [CONF]"
 * and "a range +S +E F T OWLT"; times are seconds ("+N" or "N"). Blank lines, "#"
 * comments and the ionadmin commands 1, s, x, m, @, ! are ignored. All or nothing: on error
 * the plan is unchanged and *err_line (may be NULL) holds the 1-based line.
 * Errors: BETANET_E_MALFORMED (syntax), BETANET_E_INVALID (inconsistent values),
 * BETANET_E_LIMIT (the plan's entry limit), BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_cgr_plan_load_ion(betanet_cgr_plan_t *p, const char *text, size_t len,
                                                size_t *err_line);
/* Number of contacts (0 for NULL). */
uint32_t betanet_cgr_plan_contacts(const betanet_cgr_plan_t *p);
/* Read contact id: fields; residual volume (bytes still bookable) in *residual.
 * Any output pointer may be NULL. owlt is the resolved one (NaN if unusable).
 * Errors: BETANET_E_INVALID (p NULL), BETANET_E_NOT_FOUND (id >= contacts). */
BETANET_NODISCARD int betanet_cgr_plan_get_contact(const betanet_cgr_plan_t *p, uint32_t id, uint64_t *from,
                                                   uint64_t *to, double *start, double *end, double *rate,
                                                   double *owlt, double *confidence, double *residual);

typedef struct betanet_cgr_route {
    double arrival;       /* best-case delivery time at the destination */
    double confidence;    /* product of contact confidences */
    double volume;        /* min residual volume over the route's contacts (bytes) */
    uint64_t next_hop;    /* receiving node of the first contact */
    uint32_t hops;        /* contacts on the route */
} betanet_cgr_route_t;
/* Up to k (1..BETANET_CGR_MAX_K) routes source -> dest for a bundle of `bytes` bytes
 * ready at time now, by earliest arrival (Dijkstra over contacts) then Yen's algorithm.
 * Contacts ending before the bundle could use them are skipped, nodes are not revisited,
 * contacts with less residual volume than the bundle are skipped, routes arriving after
 * `deadline` (INFINITY = none) or through any of excluded[n_excluded] are dropped. Routes
 * are ordered by arrival, then hops. Results stay in the plan until the next query or
 * change. *found receives the count (0 is not an error). Errors: BETANET_E_INVALID,
 * BETANET_E_LIMIT (n_excluded above BETANET_CGR_MAX_ENTRIES_LIMIT),
 * BETANET_E_NOT_FOUND (source or dest appears in no contact of the plan), NOMEM. */
BETANET_NODISCARD int betanet_cgr_routes(betanet_cgr_plan_t *p, uint64_t source, uint64_t dest, double now,
                                         double bytes, double deadline, const uint64_t *excluded,
                                         size_t n_excluded, uint32_t k, uint32_t *found);
/* Route i of the last query: summary into *out and its contact ids into
 * contacts[cap] with the count in *n (out and n may be NULL; contacts may be NULL with
 * cap 0). Errors: BETANET_E_INVALID (p NULL), BETANET_E_STATE (no query since the last
 * change), BETANET_E_NOT_FOUND, BETANET_E_BUFFER_TOO_SMALL (*n tells the need). */
BETANET_NODISCARD int betanet_cgr_route_get(const betanet_cgr_plan_t *p, uint32_t i, betanet_cgr_route_t *out,
                                            uint32_t *contacts, size_t cap, size_t *n);
/* Book `bytes` on every contact of route i of the last query (reduce residual volume),
 * as when a bundle is forwarded on it. Errors: BETANET_E_INVALID (NULL, bytes NaN or
 * negative), BETANET_E_STATE, BETANET_E_NOT_FOUND,
 * BETANET_E_LIMIT (a contact lacks the volume; nothing is booked). */
BETANET_NODISCARD int betanet_cgr_book(betanet_cgr_plan_t *p, uint32_t i, double bytes);

#endif /* BETANET_CGR_H */
