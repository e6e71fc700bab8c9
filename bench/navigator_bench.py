"""Navigator benchmark: libbetanet's routing core against scipy, networkx and a pure-Python
Martins reference, on the same graphs in one run (results: docs/benchmarks.md).

(1) single-objective shortest paths from one source on random geometric graphs
    (10 000 and 100 000 nodes): betanet 4-ary-heap Dijkstra vs
    scipy.sparse.csgraph.dijkstra and networkx.single_source_dijkstra_path_length;
(2) the full 4-objective Pareto frontier (K = 8) to all destinations on the 10 000-node
    graph vs bench/martins_reference.py (pure Python, same label-setting rule);
(3) CGR route search (earliest arrival, then Yen k = 5) on a 1 000-contact plan.

    python bench/navigator_bench.py [--smoke]
"""
from __future__ import annotations

import math
import sys

import numpy as np

import harness
import martins_reference
from betanet._native import navigator as N
from betanet.navigator import ContactPlan


def race(fns, reps: int) -> list[float]:
    """Best time of each function, runs interleaved so that all see the same machine load."""
    times = harness.interleaved(dict(enumerate(fns)), reps, harness.timed)
    return [min(times[i]) for i in range(len(fns))]


def radius_pairs(pts, r: float):
    """Index pairs (i < j) of points within distance r: scipy's k-d tree when installed,
    else a blocked brute force over NumPy (the same set of pairs)."""
    try:
        from scipy.spatial import cKDTree
    except ImportError:
        pass
    else:
        return cKDTree(pts).query_pairs(r, output_type="ndarray")
    out, block = [], 1024
    for i in range(0, len(pts), block):
        d = np.hypot(*(pts[i:i + block, None, :] - pts[None, :, :]).transpose(2, 0, 1))
        a, b = np.nonzero(d <= r)
        a += i
        keep = a < b
        out.append(np.stack([a[keep], b[keep]], axis=1))
    return np.concatenate(out)


def geometric_graph(n: int, degree: float, seed: int):
    """Random geometric graph in the unit square, links both ways within radius r
    (mean degree ≈ `degree`); costs: latency ∝ distance, random energy/failure/epsilon."""
    rng = np.random.default_rng(seed)
    pts = rng.random((n, 2))
    r = math.sqrt(degree / (math.pi * n))
    pairs = radius_pairs(pts, r)
    src = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.uint32)
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.uint32)
    m = len(src)
    costs = np.empty((m, 4))
    costs[:, 0] = 1 + 1000 * np.hypot(*(pts[src] - pts[dst]).T)          # ms
    costs[:, 1] = rng.uniform(1, 50, m)                                   # mJ
    costs[:, 2] = rng.uniform(0, 0.02, m)                                 # failure
    costs[:, 3] = rng.choice([0.0, 0.1, 0.5], m)                          # epsilon
    return src, dst, costs


def row(cells, widths):
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))


def bench_single(n: int, reps: int, nx_reps: int, peers: harness.Peers) -> list[tuple]:
    nx, scipy = peers.found.get("networkx"), peers.found.get("scipy")
    src, dst, costs = geometric_graph(n, 10, seed=n)
    g = N.Graph(n)
    g.load_edges(n, src, dst, costs)
    ours, _ = g.shortest(0, 0, False)
    if scipy is not None:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import dijkstra
        mat = csr_matrix((costs[:, 0], (src, dst)), shape=(n, n))
        ref = dijkstra(mat, indices=0)
        assert np.allclose(ours, ref), "betanet and scipy disagree"
    if nx is not None:
        G = nx.DiGraph()
        G.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), costs[:, 0].tolist()))
        nxd = nx.single_source_dijkstra_path_length(G, 0)
        assert all(abs(ours[v] - d) < 1e-6 for v, d in nxd.items())
    sides = [lambda: g.shortest(0, 0, False), lambda: g.shortest(0, 0, True)]
    if scipy is not None:
        sides.append(lambda: dijkstra(mat, indices=0))
    t_b, t_bp, *t_s = race(sides, reps)
    m = len(src)
    if scipy is None:
        scipy_row = ("", "scipy csgraph.dijkstra (peer missing)", "", "")
    else:
        scipy_row = ("", "scipy csgraph.dijkstra (dist)", t_s[0], harness.ratio(t_s[0] / t_b))
    if nx is None:
        nx_row = ("", "networkx (peer missing)", "", "")
    else:
        t_n = harness.best_of(lambda: nx.single_source_dijkstra_path_length(G, 0), nx_reps)
        nx_row = ("", "networkx single_source_dijkstra_path_length", t_n, harness.ratio(t_n / t_b))
    return [(f"single-objective n={n} m={m}", "betanet (dist)", t_b, ""),
            ("", "betanet (dist + pred)", t_bp, ""),
            scipy_row, nx_row]


def bench_frontier(n: int, reps: int) -> list[tuple]:
    src, dst, costs = geometric_graph(n, 10, seed=n)
    g = N.Graph(n)
    g.load_edges(n, src, dst, costs)
    w = (1.0, 1.0, 1.0, 1.0)

    def ours():
        g.set_link(int(src[0]), int(dst[0]), 0, tuple(costs[0]))       # defeat the result cache
        g.frontier(0, w, k=8)

    t_b = harness.best_of(ours, reps)
    labels = sum(len(g.frontier_labels(v)) for v in range(0, n, max(1, n // 200)))
    ref = None

    def reference():
        nonlocal ref
        ref = martins_reference.frontier(n, src, dst, costs, 0, w, k=8)
    t_r = harness.timed(reference)
    ref_labels = sum(len(ref[v]) for v in range(0, n, max(1, n // 200)))
    sampled = len(range(0, n, max(1, n // 200)))
    return [(f"frontier 4 objectives K=8 n={n} m={len(src)}", "betanet Martins + extremes", t_b, ""),
            ("", "pure-Python Martins (reference)", t_r, f"{t_r / t_b:.0f}×"),
            ("", f"labels/node: betanet {labels / sampled:.1f}, reference {ref_labels / sampled:.1f}", "", "")]


def contact_plan(contacts: int, nodes: int, seed: int) -> ContactPlan:
    rng = np.random.default_rng(seed)
    plan = ContactPlan()
    busy: dict[tuple[int, int], list[tuple[float, float]]] = {}
    added = 0
    while added < contacts:
        a, b = (int(x) for x in rng.choice(nodes, 2, replace=False))
        start = float(rng.uniform(0, 86400))
        end = start + float(rng.uniform(300, 3600))
        if any(s < end and start < e for s, e in busy.get((a, b), [])):
            continue
        busy.setdefault((a, b), []).append((start, end))
        plan.add_contact(a, b, start, end, float(rng.choice([1e3, 1e4, 1e5])),
                         owlt=float(rng.uniform(0, 2)), confidence=float(rng.uniform(0.5, 1)))
        added += 1
    return plan


def bench_cgr(contacts: int, nodes: int, queries: int) -> list[tuple]:
    plan = contact_plan(contacts, nodes, 7)
    rng = np.random.default_rng(1)
    pairs = [tuple(int(x) for x in rng.choice(nodes, 2, replace=False)) for _ in range(queries)]
    found = 0

    def run(k):
        nonlocal found
        found = 0
        for s, d in pairs:
            found += len(plan.routes(s, d, now=0, size=1000, k=k))

    t1 = harness.best_of(lambda: run(1), 3) / queries
    f1 = found / queries
    t5 = harness.best_of(lambda: run(5), 3) / queries
    f5 = found / queries
    return [(f"CGR {contacts} contacts, {nodes} nodes", f"earliest arrival (k=1), {f1:.2f} routes/query", t1, ""),
            ("", f"Yen k=5, {f5:.2f} routes/query", t5, "")]


def main() -> int:
    args = harness.parser(__doc__).parse_args()
    harness.header("Navigator (bench/navigator_bench.py)", args.smoke)
    peers = harness.Peers()
    peers.load("scipy", lambda: __import__("scipy.sparse.csgraph"))
    peers.load("networkx", lambda: __import__("networkx"))
    peers.load("pure-Python Martins", lambda: martins_reference)
    peers.report()
    rows = []
    if args.smoke:
        rows += bench_single(500, 2, 1, peers)
        rows += bench_frontier(300, 2)
        rows += bench_cgr(100, 10, 10)
    else:
        rows += bench_single(10_000, 7, 2, peers)
        rows += bench_single(100_000, 5, 1, peers)
        rows += bench_frontier(10_000, 5)
        rows += bench_cgr(1000, 50, 200)
    widths = (40, 46, 12, 16)
    print(row(("case", "implementation", "time", "betanet speedup"), widths))
    for case, impl, t, speedup in rows:
        print(row((case, impl, f"{t * 1e3:.3f} ms" if isinstance(t, float) else t, speedup), widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
