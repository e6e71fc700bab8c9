/* betanet/navigator.h — section of the public C API; include <betanet.h>, not this file.
 *
 * Navigator: multi-objective routing over a directed link graph (Pareto frontiers in a
 * cost semiring), single-objective Dijkstra and QoS selection. Prefix betanet_nav_.
 * See docs/navigator.md for the algebra, the trim rule and the presets. Contact graph
 * routing is in betanet/cgr.h, the drift-plus-penalty scheduler in betanet/dpp.h.
 *
 * Units: latency in milliseconds, energy in millijoules (mJ), failure as a probability
 * in [0, 1], privacy as a differential-privacy epsilon (>= 0).
 *
 * Initialisation: betanet_nav_graph_new calls betanet_init() itself on first use; the
 * other functions need no initialisation.
 * Thread-safety: a handle is used by one thread at a time (searches write the handle's
 * workspace); distinct handles are independent. Functions without a handle are thread-safe.
 */
#ifndef BETANET_NAVIGATOR_H
#define BETANET_NAVIGATOR_H
#ifndef BETANET_H_INSIDE
#error "include <betanet.h> instead of betanet/navigator.h"
#endif

/* ---- cost semiring ------------------------------------------------------------------
 * A cost is 4 doubles, indexed by BETANET_NAV_LATENCY.. BETANET_NAV_PRIVACY.
 * Extend (⊗): latency, energy and epsilon add; failure composes 1 - (1 - a)(1 - b).
 * Choose (⊕): Pareto frontier (non-dominated set), capped at K labels. */
#define BETANET_NAV_OBJECTIVES 4
#define BETANET_NAV_LATENCY    0   /* milliseconds */
#define BETANET_NAV_ENERGY     1   /* millijoules */
#define BETANET_NAV_FAILURE    2   /* probability in [0, 1] */
#define BETANET_NAV_PRIVACY    3   /* epsilon >= 0 */
#define BETANET_NAV_DEFAULT_K  8
#define BETANET_NAV_MAX_K      4096

/* Well-known transport ids (a link's transport is any uint16; these are conventions). */
#define BETANET_NAV_TRANSPORT_HTX  0
#define BETANET_NAV_TRANSPORT_QUIC 1
#define BETANET_NAV_TRANSPORT_BLE  2
#define BETANET_NAV_TRANSPORT_DTN  3
#define BETANET_NAV_TRANSPORT_LORA 4

/* ⊗: out = a ⊗ b (out may alias a or b). Errors: BETANET_E_INVALID on NULL, NaN,
 * negative components or failure > 1. Thread-safe. */
int betanet_nav_cost_extend(const double *a, const double *b, double *out);
/* 1 if a dominates b (a <= b in every component and a != b), else 0. Thread-safe. */
int betanet_nav_cost_dominates(const double *a, const double *b);

/* ---- QoS ------------------------------------------------------------------------------
 * weights: importance of latency, energy, reliability, privacy (>= 0, not all 0).
 * The scalarisation of a cost c is
 *   sum_j weights[j] * t_j(c_j) / scale_j   with t_failure(p) = -ln(1 - p), others identity,
 *   scales (100 ms, 100 mJ, 0.01 nats ≈ 1 % failure, 1.0 epsilon).
 * It is additive along paths, so its optimum obeys Dijkstra's subpath property.
 * deadline_ms: latency bound (INFINITY = none); privacy_budget: epsilon bound
 * (INFINITY = none); k: frontier cap (0 = BETANET_NAV_DEFAULT_K). */
typedef struct betanet_nav_qos {
    double weights[4];
    double deadline_ms;
    double privacy_budget;
    uint32_t k;
} betanet_nav_qos_t;

#define BETANET_NAV_PRESET_BALANCED         0
#define BETANET_NAV_PRESET_REAL_TIME        1
#define BETANET_NAV_PRESET_ENERGY_EFFICIENT 2
#define BETANET_NAV_PRESET_PRIVACY_FIRST    3
/* Fill *out with a preset (weights pinned in docs/navigator.md; no deadline, no budget,
 * default K). Errors: BETANET_E_INVALID (NULL, unknown preset). Thread-safe. */
int betanet_nav_qos_preset(int preset, betanet_nav_qos_t *out);

/* ---- graph ----------------------------------------------------------------------------
 * Nodes are dense ids 0..n-1. A link is (from, to, transport) and carries a cost and a
 * capacity (bytes/s; 0 = unknown). Links live in CSR rows with spare room: bulk loads
 * lay rows out contiguously; adding a link to a full row moves that row to the end of
 * the edge arrays with doubled room; the arrays are compacted when more than a third is
 * holes (adds cost amortised O(average degree) at worst). Cost updates of existing links are in place (no rebuild). */
typedef struct betanet_nav_graph betanet_nav_graph_t;

/* New graph with n_nodes nodes and no links (calls betanet_init() on first use).
 * Errors: BETANET_E_INVALID (out NULL), BETANET_E_NOMEM, BETANET_E_LIMIT (n_nodes >= 2^31),
 * BETANET_E_CRYPTO (betanet_init failed). */
BETANET_NODISCARD int betanet_nav_graph_new(uint32_t n_nodes, betanet_nav_graph_t **out);
/* Free a graph (NULL is ignored). */
void betanet_nav_graph_free(betanet_nav_graph_t *g);
/* Number of nodes / live links (0 for NULL). */
uint32_t betanet_nav_graph_nodes(const betanet_nav_graph_t *g);
uint64_t betanet_nav_graph_links(const betanet_nav_graph_t *g);
/* Grow the node count to n_nodes (never shrinks; new nodes have no links).
 * Errors: BETANET_E_INVALID (n_nodes < current), BETANET_E_NOMEM, BETANET_E_LIMIT. */
int betanet_nav_graph_resize(betanet_nav_graph_t *g, uint32_t n_nodes);
/* Replace all links by a CSR description: row u holds links indptr[u]..indptr[u+1]-1,
 * to indices[e], cost costs[4e..4e+3], transport transports[e] (NULL = all 0),
 * capacity capacities[e] (NULL = all 0). indptr has n_nodes + 1 entries, indptr[0] = 0,
 * non-decreasing. Inputs are read in place and copied into the graph.
 * Errors: BETANET_E_INVALID (bad indptr, node out of range, NaN/negative cost,
 * failure > 1, negative capacity; the graph is left unchanged), BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_nav_graph_load_csr(betanet_nav_graph_t *g, uint32_t n_nodes, const uint64_t *indptr,
                               const uint32_t *indices, const double *costs,
                               const uint16_t *transports, const double *capacities);
/* Replace all links by an edge list of m links (src[e] -> dst[e]); same rules. */
BETANET_NODISCARD int betanet_nav_graph_load_edges(betanet_nav_graph_t *g, uint32_t n_nodes, uint64_t m,
                                 const uint32_t *src, const uint32_t *dst, const double *costs,
                                 const uint16_t *transports, const double *capacities);
/* Insert or update the link (from, to, transport): cost[4] and capacity (>= 0).
 * Updating is in place. Errors: BETANET_E_INVALID (bad cost), BETANET_E_NOT_FOUND
 * (node >= n), BETANET_E_NOMEM. */
int betanet_nav_graph_set_link(betanet_nav_graph_t *g, uint32_t from, uint32_t to, uint16_t transport,
                               const double *cost, double capacity);
/* Remove the link (from, to, transport). Errors: BETANET_E_INVALID (g NULL),
 * BETANET_E_NOT_FOUND. */
int betanet_nav_graph_remove_link(betanet_nav_graph_t *g, uint32_t from, uint32_t to, uint16_t transport);
/* Read the link (from, to, transport): cost_out[4] and *capacity_out (either may be NULL).
 * Errors: BETANET_E_INVALID (g NULL), BETANET_E_NOT_FOUND. */
BETANET_NODISCARD int betanet_nav_graph_get_link(const betanet_nav_graph_t *g, uint32_t from, uint32_t to, uint16_t transport,
                               double *cost_out, double *capacity_out);

/* ---- single-objective fast path --------------------------------------------------------
 * Dijkstra (4-ary heap) from source on one objective. dist[n] receives the path cost in
 * that objective (INFINITY if unreachable; for BETANET_NAV_FAILURE the composed failure
 * probability), pred[n] the predecessor node (-1 for the source / unreachable);
 * pred may be NULL. Errors: BETANET_E_INVALID, BETANET_E_NOT_FOUND (source), NOMEM. */
BETANET_NODISCARD int betanet_nav_shortest(betanet_nav_graph_t *g, uint32_t source, int objective,
                         double *dist, int64_t *pred);

/* ---- multi-objective frontier ------------------------------------------------------------
 * Label-setting search (Martins, labels popped in order of the QoS scalarisation) from
 * source to every node. Labels whose latency exceeds qos->deadline_ms or whose epsilon
 * exceeds qos->privacy_budget are pruned. Each node keeps at most K labels; see
 * docs/navigator.md for the trim rule. The result stays in the graph's workspace until
 * the next search or graph change. qos NULL = balanced preset.
 * Errors: BETANET_E_INVALID, BETANET_E_NOT_FOUND (source), BETANET_E_NOMEM,
 * BETANET_E_LIMIT (k > BETANET_NAV_MAX_K or n*k > 2^26). */
BETANET_NODISCARD int betanet_nav_frontier(betanet_nav_graph_t *g, uint32_t source, const betanet_nav_qos_t *qos);
/* Number of frontier labels at dest from the last search (0 if unreachable).
 * Errors: BETANET_E_INVALID (NULL), BETANET_E_STATE (no search since the last change),
 * BETANET_E_NOT_FOUND. */
BETANET_NODISCARD int betanet_nav_frontier_size(const betanet_nav_graph_t *g, uint32_t dest, uint32_t *count);
/* Label i (0 = best scalarisation, then increasing) at dest: cost_out[4], the path
 * (source first, dest last) into path[path_cap] with its node count in *path_len, and
 * the transport of each hop into transports[path_cap] (may be NULL; hop h is
 * path[h] -> path[h+1]). Errors: BETANET_E_INVALID (g NULL), BETANET_E_STATE,
 * BETANET_E_NOT_FOUND (dest or i),
 * BETANET_E_BUFFER_TOO_SMALL (*path_len tells the need). */
BETANET_NODISCARD int betanet_nav_frontier_get(const betanet_nav_graph_t *g, uint32_t dest, uint32_t i, double *cost_out,
                             uint32_t *path, uint16_t *transports, size_t path_cap, size_t *path_len);

/* ---- selection --------------------------------------------------------------------------- */
#define BETANET_NAV_REASON_NONE        0
#define BETANET_NAV_REASON_UNREACHABLE 1  /* no path at all */
#define BETANET_NAV_REASON_DEADLINE    2  /* every path misses the deadline */
#define BETANET_NAV_REASON_PRIVACY     3  /* every path exceeds the privacy budget */
#define BETANET_NAV_REASON_COMBINED    4  /* each bound alone is met, not both at once */
#define BETANET_NAV_REASON_SELF        5  /* source == destination */
typedef struct betanet_nav_route {
    uint32_t next_hop;     /* path[1] */
    uint16_t transport;    /* transport of the first hop */
    uint16_t reason;       /* BETANET_NAV_REASON_* (NONE on success) */
    double cost[4];        /* expected end-to-end cost */
    double score;          /* QoS scalarisation of cost */
    uint32_t hops;         /* links on the path */
} betanet_nav_route_t;
/* Best feasible path source -> dest under qos (NULL = balanced): minimum scalarisation
 * among frontier labels meeting the deadline and budget. Reuses the last frontier when
 * source, qos and graph are unchanged. path/transports as in betanet_nav_frontier_get
 * (path may be NULL with path_cap 0 if only the route summary is wanted).
 * Errors: BETANET_E_NO_PATH with out->reason set, BETANET_E_INVALID, BETANET_E_NOT_FOUND,
 * BETANET_E_BUFFER_TOO_SMALL, BETANET_E_NOMEM. */
BETANET_NODISCARD int betanet_nav_select(betanet_nav_graph_t *g, uint32_t source, uint32_t dest, const betanet_nav_qos_t *qos,
                       betanet_nav_route_t *out, uint32_t *path, uint16_t *transports, size_t path_cap,
                       size_t *path_len);

#endif /* BETANET_NAVIGATOR_H */
