"""Navigator: choose how to reach a peer over a graph of live links (Pareto routing).

:class:`Navigator` keeps a directed link graph fed by live measurements from the
transports (``observe`` / ``update_link``) and answers
``select(destination, qos=..., deadline_ms=..., privacy_budget=...)`` with the best
feasible :class:`Route` from the Pareto frontier of (latency ms, energy mJ, failure
probability, privacy epsilon). Graphs can be bulk-loaded from NumPy arrays. Core:
``include/betanet/navigator.h``, ``docs/navigator.md``.

The two other routing tools live in their own modules and are re-exported here:
:class:`~betanet.cgr.ContactPlan` (contact graph routing, ``betanet.cgr``) and
:class:`~betanet.dpp.Scheduler` (drift-plus-penalty scheduling, ``betanet.dpp``).
"""
from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Hashable, Iterator, Sequence

import numpy as np

from betanet._native import navigator as _nav
from betanet._check import integer, real
from betanet.cgr import CgrRoute, Contact, ContactPlan, add_parser  # noqa: F401  (re-exports)
from betanet.dpp import Scheduler  # noqa: F401  (re-export)
from betanet.errors import InvalidArgumentError, NoPathError, NotFoundError

__all__ = [
    "Cost", "QoS", "PRESETS", "TRANSPORTS", "Route", "Navigator", "Contact", "CgrRoute",
    "ContactPlan", "Scheduler", "OBJECTIVES", "DEFAULT_K",
]

log = logging.getLogger(__name__)

DEFAULT_K: int = _nav.DEFAULT_K
MAX_K: int = _nav.MAX_K
OBJECTIVES = ("latency", "energy", "failure", "privacy")
#: Well-known transport ids (any name can be registered with :meth:`Navigator.transport_id`).
TRANSPORTS: dict[str, int] = {"htx": 0, "quic": 1, "ble": 2, "dtn": 3, "lora": 4}


@dataclass(frozen=True)
class Cost:
    """A path or link cost. Energy is in millijoules everywhere in betanet."""

    latency_ms: float = 0.0
    energy_mj: float = 0.0
    failure: float = 0.0
    privacy_eps: float = 0.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.latency_ms, self.energy_mj, self.failure, self.privacy_eps)

    def extend(self, other: Cost) -> Cost:
        """⊗: latency, energy and epsilon add; failure composes 1 − (1 − a)(1 − b)."""
        return Cost(*_nav.cost_extend(self.as_tuple(), other.as_tuple()))

    __mul__ = extend

    def dominates(self, other: Cost) -> bool:
        """True if no worse in every objective and better in one."""
        return _nav.cost_dominates(self.as_tuple(), other.as_tuple())


@dataclass(frozen=True)
class QoS:
    """Importance of latency, energy, reliability and privacy (>= 0), and the frontier cap."""

    latency: float = 1.0
    energy: float = 1.0
    reliability: float = 1.0
    privacy: float = 1.0
    k: int = DEFAULT_K

    def __post_init__(self) -> None:
        for name in ("latency", "energy", "reliability", "privacy"):
            object.__setattr__(self, name, real(getattr(self, name), f"QoS weight {name}"))
        if not any(self.weights):
            raise InvalidArgumentError("QoS weights must not all be 0")
        object.__setattr__(self, "k", integer(self.k, "QoS k (frontier cap)", 1, MAX_K))

    @property
    def weights(self) -> tuple[float, float, float, float]:
        return (self.latency, self.energy, self.reliability, self.privacy)


def _preset(i: int) -> QoS:
    return QoS(*_nav.qos_preset(i))


#: The four presets; their weights are pinned in the core and in docs/navigator.md.
PRESETS: dict[str, QoS] = {
    "balanced": _preset(0), "real_time": _preset(1),
    "energy_efficient": _preset(2), "privacy_first": _preset(3),
}


def _qos(qos: QoS | str | None) -> QoS:
    if qos is None:
        return PRESETS["balanced"]
    if isinstance(qos, str):
        try:
            return PRESETS[qos]
        except KeyError:
            raise InvalidArgumentError(f"unknown QoS preset {qos!r}; choose from {', '.join(PRESETS)}") from None
    if not isinstance(qos, QoS):
        raise InvalidArgumentError(f"qos must be a QoS, a preset name or None, not {type(qos).__name__}")
    return qos


def _bound(x: float | None, what: str) -> float:
    return math.inf if x is None else real(x, what, finite=False)


def _cost(latency_ms: float, energy_mj: float, failure: float, privacy_eps: float) -> tuple[float, ...]:
    """A link cost checked as the core checks it (finite, >= 0, failure <= 1)."""
    return (real(latency_ms, "latency_ms"), real(energy_mj, "energy_mj"),
            real(failure, "failure", 0.0, 1.0), real(privacy_eps, "privacy_eps"))


def _hashable(name: Hashable, what: str) -> Hashable:
    try:
        hash(name)
    except TypeError:
        raise InvalidArgumentError(f"a {what} must be hashable, not {type(name).__name__}") from None
    return name


def _costs(costs: np.ndarray | Sequence, m: int) -> np.ndarray:
    """Link costs as a C-contiguous m x 4 float64 array (the core checks the values)."""
    try:
        c = np.ascontiguousarray(costs, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError("costs must be numbers (m x 4: latency, energy, failure, epsilon)") from None
    if c.size != 4 * m:
        raise InvalidArgumentError(f"costs must be {m} x 4, got shape {c.shape}")
    return c.reshape(m, 4)


def _ids(a: np.ndarray | Sequence[int], what: str) -> np.ndarray:
    """Node ids as a uint32 array: integers in [0, 2^32), read in place when already so."""
    arr = np.asarray(a)
    if arr.dtype == np.uint32:
        return np.ascontiguousarray(arr)
    if arr.size and arr.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{what} must hold integer node ids, not {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFFFFFF):
        raise InvalidArgumentError(f"{what} node ids must be in [0, 2^32), got {int(arr.min())}..{int(arr.max())}")
    return np.ascontiguousarray(arr, dtype=np.uint32)


@dataclass(frozen=True)
class Route:
    """A chosen path: where to send next, on which transport, and what it costs."""

    destination: Hashable
    next_hop: Hashable
    transport: str
    path: list[Hashable]
    transports: list[str]
    cost: Cost
    score: float        # QoS scalarisation (lower is better)

    @property
    def hops(self) -> int:
        return len(self.path) - 1


class Navigator:
    """Routing table of one node, kept current by link measurements.

    Nodes are any hashable names; ``node`` is this node (the default source). Links are
    directed and keyed by (src, dst, transport), so a pair may have an HTX and a BLE link.
    Thread-safe.
    """

    def __init__(self, node: Hashable = "self", *, ewma: float = 0.3) -> None:
        ewma = real(ewma, "ewma", 0.0, 1.0)
        if ewma == 0:
            raise InvalidArgumentError("ewma must be in (0, 1]")
        self.node = node
        self.ewma = ewma
        self._graph = _nav.Graph(0)
        self._ids: dict[Hashable, int] = {}
        self._names: list[Hashable] = []
        self._transports = dict(TRANSPORTS)
        self._transport_names = {v: k for k, v in self._transports.items()}
        self._lock = threading.RLock()
        self.node_id(node)

    # -- nodes and transports ----------------------------------------------------------
    def node_id(self, name: Hashable) -> int:
        """The dense id of a node, adding it if new."""
        with self._lock:
            i = self._ids.get(_hashable(name, "node name"))
            if i is None:
                i = len(self._names)
                self._ids[name] = i
                self._names.append(name)
                if i >= self._graph.nodes:
                    self._graph.resize(max(2 * self._graph.nodes, i + 1, 16))
            return i

    @contextmanager
    def _undo_on_error(self) -> Iterator[None]:
        """Forget nodes and transports registered in the block if it raises, so a
        failed call leaves no trace (the graph keeps its room: nodes without links)."""
        n, transports = len(self._names), dict(self._transports)
        try:
            yield
        except BaseException:
            for name in self._names[n:]:
                del self._ids[name]
            del self._names[n:]
            self._transports = transports
            self._transport_names = {v: k for k, v in transports.items()}
            raise

    def _known(self, name: Hashable) -> int:
        try:
            return self._ids[_hashable(name, "node name")]
        except KeyError:
            raise NotFoundError(f"unknown node {name!r}") from None

    def transport_id(self, name: str) -> int:
        """The id of a transport name, registering a new one if needed."""
        with self._lock:
            i = self._transports.get(_hashable(name, "transport name"))
            if i is None:
                i = max(self._transports.values()) + 1
                if i > 0xFFFF:
                    raise InvalidArgumentError("too many transports")
                self._transports[name] = i
                self._transport_names[i] = name
            return i

    def _tname(self, i: int) -> str:
        return self._transport_names.get(i, str(i))

    @property
    def nodes(self) -> list[Hashable]:
        return list(self._names)

    @property
    def links(self) -> int:
        return self._graph.links

    # -- links ------------------------------------------------------------------------
    def update_link(self, src: Hashable, dst: Hashable, transport: str, *, latency_ms: float,
                    energy_mj: float = 0.0, failure: float = 0.0, privacy_eps: float = 0.0,
                    capacity: float = 0.0) -> None:
        """Set a link's cost exactly (insert or update in place)."""
        cost = _cost(latency_ms, energy_mj, failure, privacy_eps)
        cap = real(capacity, "capacity")
        with self._lock, self._undo_on_error():
            s, d, t = self.node_id(src), self.node_id(dst), self.transport_id(transport)
            self._graph.set_link(s, d, t, cost, cap)

    def observe(self, src: Hashable, dst: Hashable, transport: str, *, latency_ms: float,
                energy_mj: float | None = None, failure: float | None = None,
                privacy_eps: float | None = None, capacity: float | None = None) -> Cost:
        """Fold a live measurement from a transport into the link (exponential moving
        average with weight ``ewma`` for latency, energy and failure; epsilon and capacity
        are taken as given). A new link takes the measurement as is. Returns the new cost."""
        new = [real(latency_ms, "latency_ms"),
               None if energy_mj is None else real(energy_mj, "energy_mj"),
               None if failure is None else real(failure, "failure", 0.0, 1.0),
               None if privacy_eps is None else real(privacy_eps, "privacy_eps")]
        if capacity is not None:
            capacity = real(capacity, "capacity")
        with self._lock, self._undo_on_error():
            s, d, t = self.node_id(src), self.node_id(dst), self.transport_id(transport)
            try:
                old, old_cap = self._graph.get_link(s, d, t)
            except NotFoundError:
                old, old_cap = None, 0.0
            if old is None:
                cost = tuple(0.0 if x is None else float(x) for x in new)
            else:
                a = self.ewma
                cost = tuple(
                    old[j] if new[j] is None else
                    (float(new[j]) if j == 3 else (1 - a) * old[j] + a * float(new[j]))
                    for j in range(4))
            self._graph.set_link(s, d, t, cost, old_cap if capacity is None else capacity)
            log.debug("link %r -> %r over %s now %s", src, dst, transport, cost)
            return Cost(*cost)

    def remove_link(self, src: Hashable, dst: Hashable, transport: str) -> None:
        """Forget a link (e.g. the transport reported it down)."""
        with self._lock:
            self._graph.remove_link(self._known(src), self._known(dst), self.transport_id(transport))

    def link(self, src: Hashable, dst: Hashable, transport: str) -> Cost:
        with self._lock:
            c, _ = self._graph.get_link(self._known(src), self._known(dst), self.transport_id(transport))
            return Cost(*c)

    # -- bulk construction --------------------------------------------------------------
    @classmethod
    def from_arrays(cls, src: np.ndarray, dst: np.ndarray, costs: np.ndarray, *,
                    transports: np.ndarray | None = None, capacities: np.ndarray | None = None,
                    n_nodes: int | None = None, node: int = 0) -> Navigator:
        """A navigator over integer nodes 0..n-1 from an edge list: src, dst (uint32),
        costs (m x 4 float64), transports (uint16), capacities (float64). C-contiguous
        arrays of those dtypes are read in place (no copy)."""
        src, dst = _ids(src, "src"), _ids(dst, "dst")
        costs = _costs(costs, len(src))
        n = (integer(n_nodes, "n_nodes", 0, 0x7FFFFFFF) if n_nodes is not None
             else max(int(src.max(initial=0)), int(dst.max(initial=0))) + 1)
        nav = cls._bare(n, node)
        nav._graph.load_edges(n, src, dst, costs,
                              None if transports is None else np.ascontiguousarray(transports, dtype=np.uint16),
                              None if capacities is None else np.ascontiguousarray(capacities, dtype=np.float64))
        return nav

    @classmethod
    def from_csr(cls, indptr: np.ndarray, indices: np.ndarray, costs: np.ndarray, *,
                 transports: np.ndarray | None = None, capacities: np.ndarray | None = None,
                 node: int = 0) -> Navigator:
        """A navigator from CSR arrays (indptr uint64 n+1, indices uint32, costs m x 4)."""
        ptr = np.asarray(indptr)
        if ptr.ndim != 1 or len(ptr) == 0:
            raise InvalidArgumentError("indptr needs n + 1 >= 1 entries")
        if ptr.dtype != np.uint64 and (ptr.dtype.kind not in "iu" or int(ptr.min()) < 0):
            raise InvalidArgumentError("indptr must hold non-negative integers")
        indptr = np.ascontiguousarray(ptr, dtype=np.uint64)
        n = integer(len(indptr) - 1, "node count", 0, 0x7FFFFFFF)
        indices = _ids(indices, "indices")
        nav = cls._bare(n, node)
        nav._graph.load_csr(indptr, indices, _costs(costs, len(indices)),
                            None if transports is None else np.ascontiguousarray(transports, dtype=np.uint16),
                            None if capacities is None else np.ascontiguousarray(capacities, dtype=np.float64))
        return nav

    @classmethod
    def _bare(cls, n: int, node: int) -> Navigator:
        nav = cls.__new__(cls)
        nav.node = node
        nav.ewma = 0.3
        nav._graph = _nav.Graph(n)
        nav._names = list(range(n))
        nav._ids = {i: i for i in range(n)}
        nav._transports = dict(TRANSPORTS)
        nav._transport_names = {v: k for k, v in TRANSPORTS.items()}
        nav._lock = threading.RLock()
        return nav

    # -- queries ------------------------------------------------------------------------
    def select(self, destination: Hashable, qos: QoS | str | None = "balanced", *,
               deadline_ms: float | None = None, privacy_budget: float | None = None,
               source: Hashable | None = None) -> Route:
        """The best feasible route to ``destination`` for ``qos`` (a :class:`QoS` or a
        preset name). Raises :class:`NoPathError` whose ``reason`` is ``"unreachable"``,
        ``"deadline"``, ``"privacy"``, ``"combined"`` or ``"self"``."""
        q = _qos(qos)
        dl, pb = _bound(deadline_ms, "deadline_ms"), _bound(privacy_budget, "privacy_budget")
        with self._lock:
            s = self._known(self.node if source is None else source)
            d = self._known(destination)
            nh, tr, cost, score, path, trs = self._graph.select(s, d, q.weights, dl, pb, q.k)
            return Route(destination, self._names[nh], self._tname(tr), [self._names[i] for i in path],
                         [self._tname(t) for t in trs], Cost(*cost), score)

    def frontier(self, destination: Hashable, qos: QoS | str | None = "balanced", *,
                 deadline_ms: float | None = None, privacy_budget: float | None = None,
                 source: Hashable | None = None) -> list[Route]:
        """The (capped) Pareto frontier of routes to ``destination``, best score first."""
        q = _qos(qos)
        dl, pb = _bound(deadline_ms, "deadline_ms"), _bound(privacy_budget, "privacy_budget")
        with self._lock:
            s = self._known(self.node if source is None else source)
            d = self._known(destination)
            self._graph.frontier(s, q.weights, dl, pb, q.k)
            out = []
            for cost, path, trs in self._graph.frontier_labels(d):
                if len(path) < 2:
                    continue
                c = Cost(*cost)
                out.append(Route(destination, self._names[path[1]], self._tname(trs[0]),
                                 [self._names[i] for i in path], [self._tname(t) for t in trs], c,
                                 _score(q, c)))
            return out

    def shortest_paths(self, objective: str = "latency", source: Hashable | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Single-objective Dijkstra from ``source``: (distance per node id, predecessor
        id or -1). For ``"failure"`` the distance is the composed failure probability."""
        try:
            j = OBJECTIVES.index(objective)
        except ValueError:
            raise InvalidArgumentError(f"objective must be one of {OBJECTIVES}") from None
        with self._lock:
            s = self._known(self.node if source is None else source)
            dist, pred = self._graph.shortest(s, j)
            n = len(self._names)
            return dist[:n], pred[:n]


def _score(q: QoS, c: Cost) -> float:
    """The core's scalarisation (docs/navigator.md), for display of frontier labels."""
    nats = -math.log1p(-c.failure) if c.failure < 1 else math.inf
    return (q.latency * c.latency_ms / 100 + q.energy * c.energy_mj / 100
            + (q.reliability * nats / 0.01 if q.reliability else 0.0) + q.privacy * c.privacy_eps)
