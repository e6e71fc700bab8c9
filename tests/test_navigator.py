"""Navigator: cost semiring, graph storage and updates, Dijkstra, Pareto frontier, selection."""
from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from betanet import errors
from betanet._native import navigator as N
from betanet.navigator import PRESETS, Cost, Navigator, QoS

ZERO = (0.0, 0.0, 0.0, 0.0)
FAILS = [0.0, 0.1, 0.25, 0.5]

comp = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
prob = st.floats(min_value=0, max_value=1, allow_nan=False)
costs = st.tuples(comp, comp, prob, comp)


pytestmark = pytest.mark.usefixtures("no_leaks")   # conftest.py: libbetanet leak check


# ------------------------------------------------------------------ algebra

@given(costs, costs, costs)
def test_extend_is_associative(a, b, c):
    left = N.cost_extend(N.cost_extend(a, b), c)
    right = N.cost_extend(a, N.cost_extend(b, c))
    assert left == pytest.approx(right, rel=1e-12, abs=1e-12)


@given(costs)
def test_identity_and_absorbing(a):
    assert N.cost_extend(a, ZERO) == pytest.approx(a)
    assert N.cost_extend(ZERO, a) == pytest.approx(a)
    # failure 1 absorbs: a path through a certainly-failing link certainly fails
    assert N.cost_extend(a, (0, 0, 1.0, 0))[2] == 1.0


@given(costs, costs, costs)
def test_extend_is_monotone(a, b, c):
    ac = N.cost_extend(a, c)
    assert all(x >= y - 1e-9 * max(1, y) for x, y in zip(ac, a))      # extending never improves
    lo = tuple(min(x, y) for x, y in zip(a, b))
    lc, bc = N.cost_extend(lo, c), N.cost_extend(b, c)
    assert all(x <= y + 1e-9 * max(1, y) for x, y in zip(lc, bc))      # order is preserved


def test_dominance_and_cost_class():
    assert Cost(1, 1, 0, 0).dominates(Cost(1, 2, 0, 0))
    assert not Cost(1, 1, 0, 0).dominates(Cost(1, 1, 0, 0))
    assert not Cost(1, 3, 0, 0).dominates(Cost(2, 1, 0, 0))
    assert Cost(10, 1, 0.1, 0.5).extend(Cost(5, 2, 0.2, 0.25)) == pytest.approx(Cost(15, 3, 0.28, 0.75))


@pytest.mark.parametrize("bad", [(-1, 0, 0, 0), (0, math.nan, 0, 0), (0, 0, 1.5, 0), (0, 0, 0, math.inf)])
def test_extend_rejects_invalid(bad):
    with pytest.raises(errors.InvalidArgumentError):
        N.cost_extend(bad, ZERO)


def test_empty_frontier_absorbs():
    # the ⊕ identity (no path) absorbs ⊗: whatever lies behind an unreachable node stays unreachable
    g = N.Graph(4)
    g.set_link(1, 2, 0, (1, 1, 0, 0))
    g.set_link(2, 3, 0, (1, 1, 0, 0))
    g.frontier(0, (1, 1, 1, 1))
    assert g.frontier_labels(2) == [] and g.frontier_labels(3) == []


# ------------------------------------------------------------------ brute force reference

def random_graph(rng: random.Random, n: int, p: float):
    edges = []
    for u in range(n):
        for v in range(n):
            if u != v and rng.random() < p:
                for t in range(rng.choice([1, 1, 2])):
                    edges.append((u, v, t, (float(rng.randint(0, 5)), float(rng.randint(0, 5)),
                                            rng.choice(FAILS), float(rng.randint(0, 3)) / 2)))
    return edges


def ext(a, b):
    # the core's exact float formula for 1 - (1 - a)(1 - b)
    f = 1.0 if (a[2] >= 1 or b[2] >= 1) else a[2] + b[2] * (1.0 - a[2])
    return (a[0] + b[0], a[1] + b[1], f, a[3] + b[3])


def brute_costs(n, edges, src):
    """Cost vector of every simple path from src, per destination."""
    adj = {u: [] for u in range(n)}
    for u, v, t, c in edges:
        adj[u].append((v, c))
    out = {v: [] for v in range(n)}

    def walk(u, seen, cost):
        out[u].append(cost)
        for v, c in adj[u]:
            if v not in seen:
                walk(v, seen | {v}, ext(cost, c))

    walk(src, {src}, ZERO)
    return out


def pareto(vs):
    vs = set(vs)
    return {a for a in vs if not any(b != a and all(x <= y for x, y in zip(b, a)) for b in vs)}


def load(g, n, edges):
    src = np.array([e[0] for e in edges], dtype=np.uint32)
    dst = np.array([e[1] for e in edges], dtype=np.uint32)
    tr = np.array([e[2] for e in edges], dtype=np.uint16)
    c = np.array([e[3] for e in edges], dtype=np.float64).reshape(-1, 4)
    g.load_edges(n, src, dst, c, tr)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.floats(0.2, 0.7))
def test_uncapped_frontier_equals_brute_force(seed, n, p):
    rng = random.Random(seed)
    edges = random_graph(rng, n, p)
    g = N.Graph(n)
    load(g, n, edges)
    g.frontier(0, (1, 1, 1, 1), k=N.MAX_K)
    ref = brute_costs(n, edges, 0)
    for v in range(1, n):
        got = [c for c, path, trs in g.frontier_labels(v)]
        assert len(got) == len(set(got))
        assert set(got) == pareto(ref[v])
        for c, path, trs in g.frontier_labels(v):
            # every label is a real simple path with exactly that cost
            assert path[0] == 0 and path[-1] == v and len(set(path)) == len(path)
            acc = ZERO
            for (a, b), t in zip(zip(path, path[1:]), trs):
                acc = ext(acc, g.get_link(a, b, t)[0])
            assert acc == c


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(5, 7), st.sampled_from(list(PRESETS)))
def test_capped_frontier_keeps_extremes_and_scalar_optimum(seed, n, preset):
    rng = random.Random(seed)
    edges = random_graph(rng, n, 0.5)
    q = PRESETS[preset]
    g = N.Graph(n)
    load(g, n, edges)
    k = 5
    g.frontier(0, q.weights, k=k)
    ref = brute_costs(n, edges, 0)
    for v in range(1, n):
        labels = [c for c, _, _ in g.frontier_labels(v)]
        front = pareto(ref[v])
        if not front:
            assert labels == []
            continue
        assert 1 <= len(labels) <= k
        for a, b in itertools.permutations(labels, 2):
            assert not (all(x <= y for x, y in zip(a, b)))            # mutually non-dominated
        for j in range(4):
            assert min(c[j] for c in labels) == pytest.approx(min(c[j] for c in front))
        score = lambda c: _score(q, c)
        assert score(labels[0]) == pytest.approx(min(score(c) for c in front))


def _score(q: QoS, c):
    nats = -math.log1p(-c[2]) if c[2] < 1 else math.inf
    return q.latency * c[0] / 100 + q.energy * c[1] / 100 + (q.reliability * nats / 0.01 if q.reliability else 0) \
        + q.privacy * c[3]


# ------------------------------------------------------------------ single objective vs scipy

def geometric(n, radius, seed):
    rng = np.random.default_rng(seed)
    pts = rng.random((n, 2))
    src, dst = [], []
    for i in range(n):
        d = np.hypot(*(pts - pts[i]).T)
        nb = np.nonzero((d < radius) & (d > 0))[0]
        src += [i] * len(nb)
        dst += nb.tolist()
    src, dst = np.array(src, dtype=np.uint32), np.array(dst, dtype=np.uint32)
    m = len(src)
    c = np.empty((m, 4))
    c[:, 0] = np.hypot(*(pts[src] - pts[dst]).T) * 1000
    c[:, 1] = rng.random(m) * 10
    c[:, 2] = rng.random(m) * 0.05
    c[:, 3] = rng.random(m)
    return src, dst, c


@pytest.mark.parametrize("objective", range(4))
def test_single_objective_matches_scipy(objective):
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    n = 600
    src, dst, c = geometric(n, 0.08, objective)
    g = N.Graph(n)
    g.load_edges(n, src, dst, c)
    dist, pred = g.shortest(0, objective)
    w = -np.log1p(-c[:, 2]) if objective == 2 else c[:, objective]
    w = np.where(w == 0, 1e-300, w)        # scipy drops explicit zeros
    ref = dijkstra(csr_matrix((w, (src, dst)), shape=(n, n)), indices=0)
    assert np.array_equal(np.isinf(dist), np.isinf(ref))      # unreachable: INFINITY
    fin = np.isfinite(ref)
    if objective == 2:
        ref = -np.expm1(-ref)
    assert fin.sum() > n // 2
    assert np.allclose(dist[fin], ref[fin], rtol=1e-9, atol=1e-12)
    # the predecessor tree realises the distances
    for v in np.nonzero(np.isfinite(dist))[0][:50]:
        if v != 0:
            assert pred[v] >= 0


# ------------------------------------------------------------------ selection

def mixed():
    """a -> d: fast expensive internet path, slow frugal BLE mesh, private-but-slow relay."""
    nav = Navigator("a")
    nav.update_link("a", "b", "htx", latency_ms=20, energy_mj=40, failure=0.001, privacy_eps=0.5)
    nav.update_link("b", "d", "htx", latency_ms=20, energy_mj=40, failure=0.001, privacy_eps=0.5)
    nav.update_link("a", "c", "ble", latency_ms=150, energy_mj=2, failure=0.002, privacy_eps=0.3)
    nav.update_link("c", "d", "ble", latency_ms=150, energy_mj=2, failure=0.002, privacy_eps=0.3)
    nav.update_link("a", "m", "htx", latency_ms=200, energy_mj=60, failure=0.001, privacy_eps=0.0)
    nav.update_link("m", "d", "htx", latency_ms=200, energy_mj=60, failure=0.001, privacy_eps=0.0)
    return nav


def test_presets_pick_the_expected_paths():
    nav = mixed()
    assert nav.select("d", "real_time").path == ["a", "b", "d"]
    assert nav.select("d", "energy_efficient").path == ["a", "c", "d"]
    r = nav.select("d", "privacy_first")
    assert r.path == ["a", "m", "d"] and r.cost.privacy_eps == 0
    assert r.next_hop == "m" and r.transport == "htx" and r.transports == ["htx", "htx"]
    assert nav.select("d", "balanced").cost.latency_ms > 0
    assert set(PRESETS) == {"real_time", "energy_efficient", "privacy_first", "balanced"}


def test_deadline_and_privacy_budget():
    nav = mixed()
    # frugal BLE path takes 300 ms; a 100 ms deadline forces the internet path
    assert nav.select("d", "energy_efficient", deadline_ms=100).path == ["a", "b", "d"]
    # privacy budget 0.7 excludes the internet path (eps 1.0)
    assert nav.select("d", "real_time", privacy_budget=0.7).path == ["a", "c", "d"]
    with pytest.raises(errors.NoPathError) as e:
        nav.select("d", deadline_ms=10)
    assert e.value.reason == "deadline"
    with pytest.raises(errors.NoPathError) as e:
        nav.select("d", deadline_ms=50, privacy_budget=0.1)
    assert e.value.reason in ("deadline", "privacy", "combined")
    with pytest.raises(errors.NoPathError) as e:
        nav.select("d", deadline_ms=100, privacy_budget=0.2)
    assert e.value.reason == "combined"          # 40 ms path has eps 1, eps-0 path takes 400 ms
    nav.update_link("z", "a", "ble", latency_ms=1)
    with pytest.raises(errors.NoPathError) as e:
        nav.select("z")
    assert e.value.reason == "unreachable"
    with pytest.raises(errors.NoPathError) as e:
        nav.select("a")
    assert e.value.reason == "self"
    with pytest.raises(errors.NotFoundError):
        nav.select("nowhere")


def test_frontier_lists_tradeoffs():
    nav = mixed()
    routes = nav.frontier("d")
    assert {tuple(r.path) for r in routes} == {("a", "b", "d"), ("a", "c", "d"), ("a", "m", "d")}
    assert [r.score for r in routes] == sorted(r.score for r in routes)


def test_observe_smooths_and_updates_selection():
    nav = mixed()
    nav.observe("a", "b", "htx", latency_ms=2000)        # congestion on the internet path
    assert nav.link("a", "b", "htx").latency_ms == pytest.approx(0.7 * 20 + 0.3 * 2000)
    for _ in range(10):
        nav.observe("a", "b", "htx", latency_ms=2000)
    assert nav.select("d", "real_time").path == ["a", "c", "d"]
    nav.remove_link("a", "c", "ble")
    nav.remove_link("a", "m", "htx")
    assert nav.select("d", "real_time").path == ["a", "b", "d"]


# ------------------------------------------------------------------ incremental updates

def test_incremental_updates_match_rebuild():
    rng = random.Random(7)
    n = 40
    g = N.Graph(n)
    links = {}
    for step in range(3000):
        u, v, t = rng.randrange(n), rng.randrange(n), rng.randrange(3)
        if u == v:
            continue
        if (u, v, t) in links and rng.random() < 0.3:
            g.remove_link(u, v, t)
            del links[(u, v, t)]
        else:
            c = (rng.random() * 10, rng.random(), rng.random() * 0.1, rng.random())
            g.set_link(u, v, t, c)
            links[(u, v, t)] = c
    assert g.links == len(links)
    for (u, v, t), c in links.items():
        assert g.get_link(u, v, t)[0] == c
    fresh = N.Graph(n)
    load(fresh, n, [(u, v, t, c) for (u, v, t), c in links.items()])
    for j in range(4):
        assert np.allclose(g.shortest(0, j)[0], fresh.shortest(0, j)[0], equal_nan=True)
    g.frontier(0, (1, 1, 1, 1))
    fresh.frontier(0, (1, 1, 1, 1))
    for v in range(n):
        assert sorted(c for c, _, _ in g.frontier_labels(v)) == sorted(c for c, _, _ in fresh.frontier_labels(v))


def test_row_growth_and_compaction_keep_links():
    # round-robin adds move every row several times; the hole accounting compacts the
    # edge arrays three times on the way (see docs: graph storage)
    rng = random.Random(11)
    n = 300
    g = N.Graph(n)
    links = {}
    for i in range(n * 20):
        u, v = i % n, rng.randrange(n)
        if u == v:
            continue
        c = (float(rng.randint(1, 9)), 1.0, 0.0, 0.0)
        g.set_link(u, v, i % 7, c)
        links[(u, v, i % 7)] = c
    assert g.links == len(links)
    for (u, v, t), c in links.items():
        assert g.get_link(u, v, t)[0] == c
    fresh = N.Graph(n)
    load(fresh, n, [(u, v, t, c) for (u, v, t), c in links.items()])
    assert np.array_equal(g.shortest(0, 0)[0], fresh.shortest(0, 0)[0])


def test_cached_frontier_is_invalidated_by_changes():
    g = N.Graph(3)
    g.set_link(0, 1, 0, (1, 0, 0, 0))
    g.frontier(0, (1, 1, 1, 1))
    g.set_link(1, 2, 0, (1, 0, 0, 0))
    with pytest.raises(errors.StateError):
        g.frontier_labels(2)
    assert g.select(0, 2, (1, 1, 1, 1))[4] == [0, 1, 2]


def test_csr_load_and_grow():
    indptr = np.array([0, 2, 3, 3], dtype=np.uint64)
    indices = np.array([1, 2, 2], dtype=np.uint32)
    c = np.array([[1, 0, 0, 0], [5, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float64)
    nav = Navigator.from_csr(indptr, indices, c)
    assert nav.shortest_paths()[0].tolist() == [0, 1, 2]
    nav.update_link(2, 3, "ble", latency_ms=1)          # node 3 is new: the graph grows
    assert nav.select(3, "real_time").path == [0, 1, 2, 3]


# ------------------------------------------------------------------ invalid input

@pytest.mark.parametrize("cost", [(-1, 0, 0, 0), (math.nan, 0, 0, 0), (0, 0, 1.01, 0), (0, 0, 0, -0.1),
                                  (math.inf, 0, 0, 0)])
def test_invalid_link_costs(cost):
    g = N.Graph(2)
    with pytest.raises(errors.InvalidArgumentError):
        g.set_link(0, 1, 0, cost)
    src = np.array([0], dtype=np.uint32)
    with pytest.raises(errors.InvalidArgumentError):
        g.load_edges(2, src, src + 1, np.array([cost], dtype=np.float64))


def test_invalid_graph_input():
    g = N.Graph(2)
    with pytest.raises(errors.NotFoundError):
        g.set_link(0, 5, 0, ZERO)
    with pytest.raises(errors.InvalidArgumentError):
        g.set_link(0, 1, 0, ZERO, capacity=-1)
    with pytest.raises(errors.InvalidArgumentError):      # destination out of range
        g.load_edges(2, np.array([0], np.uint32), np.array([2], np.uint32), np.zeros((1, 4)))
    with pytest.raises(errors.InvalidArgumentError):      # decreasing indptr
        g.load_csr(np.array([0, 2, 1], np.uint64), np.array([1], np.uint32), np.zeros((1, 4)))
    with pytest.raises(errors.NotFoundError):
        g.remove_link(0, 1, 0)
    with pytest.raises(errors.NotFoundError):
        g.shortest(9, 0)
    with pytest.raises(errors.InvalidArgumentError):
        g.shortest(0, 4)
    with pytest.raises(errors.InvalidArgumentError):
        g.frontier(0, (0, 0, 0, 0))
    with pytest.raises(errors.InvalidArgumentError):
        g.frontier(0, (1, -1, 0, 0))
    with pytest.raises(errors.InvalidArgumentError):
        g.frontier(0, (1, 1, 1, 1), deadline=math.nan)
    with pytest.raises(errors.LimitExceededError):
        g.frontier(0, (1, 1, 1, 1), k=N.MAX_K + 1)
    big = N.Graph(100_000)
    with pytest.raises(errors.LimitExceededError):        # n * k > 2^26 label slots
        big.frontier(0, (1, 1, 1, 1), k=N.MAX_K)
    nav = Navigator("a")
    with pytest.raises(errors.InvalidArgumentError):
        nav.select("a", "turbo")
    with pytest.raises(errors.InvalidArgumentError):
        nav.select("a", deadline_ms=-5)


def test_concurrent_queries_and_updates():
    """The GIL is released inside searches; per-handle locks keep one thread in a handle."""
    import threading
    n = 400
    src, dst, c = geometric(n, 0.12, 5)
    nav = Navigator.from_arrays(src, dst, c, n_nodes=n)
    errors_seen = []

    def query(seed):
        rng = random.Random(seed)
        try:
            for _ in range(30):
                d = rng.randrange(1, n)
                try:
                    r = nav.select(d, rng.choice(list(PRESETS)))
                    assert r.path[0] == 0 and r.path[-1] == d
                except errors.NoPathError as e:
                    assert e.reason == "unreachable"
                nav.update_link(int(src[0]), int(dst[0]), "htx", latency_ms=rng.random() * 10)
        except Exception as e:          # pragma: no cover - reported below
            errors_seen.append(e)

    threads = [threading.Thread(target=query, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors_seen


# ------------------------------------------------------------------ bad arguments (issue 9, defect 13)

def _is_arg_error(e: pytest.ExceptionInfo) -> None:
    assert isinstance(e.value, errors.BetanetError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("kw", [
    {"k": -1}, {"k": 0}, {"k": 1.5}, {"k": 2.0}, {"k": N.MAX_K + 1}, {"k": True}, {"k": "8"},
    {"latency": -1.0}, {"energy": math.nan}, {"privacy": math.inf}, {"reliability": "x"},
    {"latency": 0, "energy": 0, "reliability": 0, "privacy": 0},
])
def test_qos_rejects_bad_arguments(kw):
    with pytest.raises(errors.InvalidArgumentError) as e:
        QoS(**kw)
    _is_arg_error(e)


def test_qos_accepts_integral_k():
    assert QoS(k=np.uint16(3)).k == 3 and QoS(k=N.MAX_K).k == N.MAX_K


def _pair() -> Navigator:
    nav = Navigator("a")
    nav.update_link("a", "b", "htx", latency_ms=10, energy_mj=1, failure=0.01, privacy_eps=0.1)
    return nav


@pytest.mark.parametrize("qos", [5, 1.0, object(), ("latency",), PRESETS["balanced"].weights])
def test_select_and_frontier_reject_bad_qos(qos):
    nav = _pair()
    for call in (nav.select, nav.frontier):
        with pytest.raises(errors.InvalidArgumentError) as e:
            call("b", qos)
        _is_arg_error(e)
    with pytest.raises(errors.InvalidArgumentError):
        nav.select("b", deadline_ms=math.nan)
    assert nav.select("b").next_hop == "b"


@pytest.mark.parametrize("kw", [
    {"latency_ms": -1}, {"latency_ms": math.nan}, {"latency_ms": math.inf}, {"latency_ms": 5, "energy_mj": -1},
    {"latency_ms": 5, "failure": 1.5}, {"latency_ms": 5, "failure": -0.1}, {"latency_ms": 5, "privacy_eps": -2},
    {"latency_ms": 5, "capacity": -1}, {"latency_ms": "fast"},
])
def test_observe_rejects_bad_measurements(kw):
    nav = _pair()
    before = nav.link("a", "b", "htx")
    with pytest.raises(errors.InvalidArgumentError):
        nav.observe("a", "b", "htx", **kw)
    assert nav.link("a", "b", "htx") == before          # the EWMA did not absorb it
    with pytest.raises(errors.InvalidArgumentError):
        nav.observe("a", "c", "ble", **kw)              # a new link: nothing registered
    assert nav.nodes == ["a", "b"]


@pytest.mark.parametrize("kw", [{"latency_ms": -5}, {"latency_ms": 1, "failure": 2}, {"latency_ms": 1, "capacity": math.nan}])
def test_failed_update_link_leaves_no_trace(kw):
    nav = _pair()
    with pytest.raises(errors.InvalidArgumentError):
        nav.update_link("a", "new", "lora2", **kw)
    assert nav.nodes == ["a", "b"] and nav.links == 1
    with pytest.raises(errors.NotFoundError):
        nav.select("new")
    # a failure after the first name was registered rolls that back too
    with pytest.raises(errors.InvalidArgumentError):
        nav.update_link("fresh", ["unhashable"], "htx", latency_ms=1)
    assert nav.nodes == ["a", "b"]
    assert nav.transport_id("lora2") == max(nav.transport_id(t) for t in ("htx", "quic", "ble", "dtn", "lora")) + 1


@pytest.mark.parametrize("src, dst", [
    ([-1, 0], [1, 1]), ([0, 1], [1, -3]), ([0.5, 1], [1, 0]), ([0, 2**32], [1, 0]), (["a", "b"], [1, 0]),
])
def test_from_arrays_rejects_bad_ids(src, dst):
    with pytest.raises(errors.InvalidArgumentError) as e:
        Navigator.from_arrays(np.array(src), np.array(dst), np.ones((2, 4)) * 0.1)
    _is_arg_error(e)


def test_from_arrays_rejects_bad_shapes_and_counts():
    with pytest.raises(errors.InvalidArgumentError):
        Navigator.from_arrays(np.array([0, 1]), np.array([1, 0]), np.ones((3, 4)) * 0.1)
    with pytest.raises(errors.InvalidArgumentError):
        Navigator.from_arrays(np.array([0]), np.array([1]), np.ones((1, 4)) * 0.1, n_nodes=-1)
    # uint32 arrays are still read as they are
    nav = Navigator.from_arrays(np.array([0], np.uint32), np.array([1], np.uint32), np.full((1, 4), 0.1))
    assert nav.links == 1


@pytest.mark.parametrize("indptr", [[], np.zeros(0, np.uint64), [0, -1], [[0, 1]], [0.0, 1.5]])
def test_from_csr_rejects_bad_indptr(indptr):
    with pytest.raises(errors.InvalidArgumentError) as e:
        Navigator.from_csr(np.asarray(indptr), np.zeros(0, np.uint32), np.zeros((0, 4)))
    _is_arg_error(e)
    assert Navigator.from_csr(np.array([0], np.uint64), np.zeros(0, np.uint32), np.zeros((0, 4))).links == 0


def test_navigator_rejects_bad_ewma_and_unhashable_names():
    for ewma in (0, -0.5, 1.5, math.nan):
        with pytest.raises(errors.InvalidArgumentError):
            Navigator(ewma=ewma)
    nav = _pair()
    with pytest.raises(errors.InvalidArgumentError):
        nav.select(["b"])
    with pytest.raises(errors.InvalidArgumentError):
        nav.node_id({})
