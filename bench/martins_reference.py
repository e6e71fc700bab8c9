"""Reference for bench/navigator_bench.py: a straightforward pure-Python Martins
label-setting search over the same cost semiring and the same per-node cap rule as the
core (at most K labels per node; when full, the temporary label with the largest
scalarisation is evicted if the new one is better). No Dijkstra extremes are merged, so
it is the plain textbook algorithm. Clarity over speed: this is the yardstick, not a tool.
"""
from __future__ import annotations

import heapq
import math


def scal(w, c):
    nats = -math.log1p(-c[2]) if c[2] < 1 else math.inf
    return w[0] * c[0] / 100 + w[1] * c[1] / 100 + (w[2] * nats / 0.01 if w[2] else 0) + w[3] * c[3]


def extend(a, b):
    f = 1.0 if (a[2] >= 1 or b[2] >= 1) else a[2] + b[2] * (1.0 - a[2])
    return (a[0] + b[0], a[1] + b[1], f, a[3] + b[3])


def leq(a, b):
    return a[0] <= b[0] and a[1] <= b[1] and a[2] <= b[2] and a[3] <= b[3]


def frontier(n, src, dst, costs, source, w, k=8):
    """Per node, the list of non-dominated cost vectors found (at most k)."""
    adj = [[] for _ in range(n)]
    for u, v, c in zip(src.tolist(), dst.tolist(), costs.tolist()):
        adj[u].append((v, tuple(c)))
    labels = [[] for _ in range(n)]          # per node: [key, cost, alive, permanent, node]
    root = [0.0, (0.0, 0.0, 0.0, 0.0), True, False, source]
    labels[source].append(root)
    heap = [(0.0, 0, root)]
    tick = 1
    while heap:
        _, _, lab = heapq.heappop(heap)
        if not lab[2] or lab[3]:
            continue
        lab[3] = True
        u_cost = lab[1]
        for v, c in adj[lab[4]]:
            if v == source:
                continue
            nc = extend(u_cost, c)
            here = labels[v]
            if any(leq(o[1], nc) for o in here):
                continue
            for o in here:
                if leq(nc, o[1]):
                    o[2] = False
            here[:] = [o for o in here if o[2]]
            key = scal(w, nc)
            if len(here) >= k:
                temps = [o for o in here if not o[3]]
                if not temps:
                    continue
                worst = max(temps, key=lambda o: o[0])
                if worst[0] <= key:
                    continue
                worst[2] = False
                here.remove(worst)
            new = [key, nc, True, False, v]
            here.append(new)
            heapq.heappush(heap, (key, tick, new))
            tick += 1
    return [[o[1] for o in labels[v]] for v in range(n)]
