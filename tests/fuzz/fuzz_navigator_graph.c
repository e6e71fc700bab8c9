/* Fuzz the navigator graph API as a sequence of operations decoded from the input:
 * link updates (some invalid), removals, node growth, bulk loads, frontier searches,
 * selections and Dijkstra. Not a parser, but it puts the CSR row moves, compaction and
 * the label search under ASan/UBSan. Invariants: statuses are from the documented set,
 * returned paths start at the source and end at the destination.
 * At most MAX_SEARCHES searches per input: a search costs up to milliseconds under ASan, and
 * inputs grown to thousands of operations made a few inputs of 50-90 ms each dominate a run
 * (rate 2 800 -> 900 per CPU s over the campaign); later searches on the same graph find
 * nothing the first ones did not, so the mutations of the graph stay unbounded. */
#include <betanet.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP 64
#define MAX_SEARCHES 16

static void cost_from(const uint8_t *p, double c[4]) {
    c[0] = p[0] % 50;
    c[1] = p[1] % 20;
    c[2] = (p[0] & 7) / 8.0;
    c[3] = (p[1] >> 4) / 4.0;
    if (p[0] == 255) c[0] = NAN;
    if (p[1] == 255) c[1] = -1.0;
    if (p[0] == 254) c[2] = 1.0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    betanet_nav_graph_t *g = NULL;
    uint32_t n, path[CAP], count, j, k;
    uint16_t trs[CAP];
    size_t i = 1, plen;
    double c[4], dist[40];
    int64_t pred[40];
    betanet_nav_qos_t q;
    betanet_nav_route_t r;
    int rc, searches = 0;
    if (size < 2 || betanet_init() != 0)
        return 0;
    n = 1 + data[0] % 24;
    if (betanet_nav_graph_new(n, &g) != 0)
        return 0;
    while (i + 6 <= size) {
        const uint8_t *p = data + i;
        uint32_t a = p[1] % (n + 1), b = p[2] % (n + 1);
        uint16_t t = p[3] % 3;
        i += 6;
        cost_from(p + 4, c);
        switch (p[0] % 9) {
        case 0: case 1: case 2:
            rc = betanet_nav_graph_set_link(g, a, b, t, c, p[5] & 1 ? 100.0 : 0.0);
            if (rc != 0 && rc != BETANET_E_INVALID && rc != BETANET_E_NOT_FOUND) abort();
            break;
        case 3:
            rc = betanet_nav_graph_remove_link(g, a, b, t);
            if (rc != 0 && rc != BETANET_E_NOT_FOUND) abort();
            break;
        case 4:
            if (n < 36 && betanet_nav_graph_resize(g, n + 1 + a % 4) == 0)
                n = betanet_nav_graph_nodes(g);
            break;
        case 5: {                              /* bulk load of up to 8 links from the input */
            uint32_t m = p[1] % 9, src[8], dst[8];
            double cs[32];
            uint16_t tr[8];
            for (j = 0; j < m; j++) {
                const uint8_t *x = data + ((i + 5 * j) % (size - 1));   /* x[0], x[1] in bounds */
                src[j] = x[0] % n;
                dst[j] = (x[0] >> 3) % (n + (p[2] == 7));   /* sometimes out of range */
                tr[j] = x[0] & 1;
                cost_from(x, cs + 4 * j);
            }
            rc = betanet_nav_graph_load_edges(g, n, m, src, dst, cs, tr, NULL);
            if (rc != 0 && rc != BETANET_E_INVALID) abort();
            break;
        }
        case 6: case 7:
            if (++searches > MAX_SEARCHES) break;
            betanet_nav_qos_preset(p[4] % 4, &q);
            q.k = 1 + p[5] % 10;
            if (p[3] & 4) q.deadline_ms = p[4] % 120;
            if (p[3] & 8) q.privacy_budget = (p[5] % 8) / 2.0;
            if (p[0] % 9 == 6) {
                rc = betanet_nav_frontier(g, a, &q);
                if (rc == BETANET_E_NOT_FOUND) break;
                if (rc != 0) abort();
                for (j = 0; j < n; j++) {
                    if (betanet_nav_frontier_size(g, j, &count) != 0 || count > q.k + 4) abort();
                    for (k = 0; k < count; k++) {
                        if (betanet_nav_frontier_get(g, j, k, c, path, trs, CAP, &plen) != 0) abort();
                        if (plen < 1 || path[0] != a || path[plen - 1] != j) abort();
                        if (c[0] > q.deadline_ms || c[3] > q.privacy_budget) abort();
                    }
                }
            } else {
                rc = betanet_nav_select(g, a, b, &q, &r, path, trs, CAP, &plen);
                if (rc == 0 && (path[0] != a || path[plen - 1] != b || r.next_hop != path[1])) abort();
                if (rc != 0 && rc != BETANET_E_NO_PATH && rc != BETANET_E_NOT_FOUND) abort();
                if (rc == BETANET_E_NO_PATH && r.reason == BETANET_NAV_REASON_NONE) abort();
            }
            break;
        case 8:
            if (++searches > MAX_SEARCHES) break;
            rc = betanet_nav_shortest(g, a, p[2] % 5, dist, p[3] & 1 ? pred : NULL);
            if (rc != 0 && rc != BETANET_E_NOT_FOUND && rc != BETANET_E_INVALID) abort();
            if (rc == 0 && dist[a] != 0.0) abort();
            break;
        }
    }
    betanet_nav_graph_free(g);
    return 0;
}
