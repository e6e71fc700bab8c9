"""Navigator: choose how to reach a peer — Pareto routing, contact graph routing, scheduling.

Three tools over libbetanet's routing core (``include/betanet/navigator.h``,
``docs/navigator.md``):

* :class:`Navigator` keeps a directed link graph fed by live measurements from the
  transports (``observe`` / ``update_link``) and answers
  ``select(destination, qos=..., deadline_ms=..., privacy_budget=...)`` with the best
  feasible :class:`Route` from the Pareto frontier of (latency ms, energy mJ, failure
  probability, privacy epsilon). Graphs can be bulk-loaded from NumPy arrays.
* :class:`ContactPlan` holds scheduled contacts (satellites, buses, phones that meet) and
  finds earliest-arrival routes, k of them by Yen's algorithm, SABR style; it loads ION
  ``ionadmin`` contact plans.
* :class:`Scheduler` picks, each slot, which queue a link serves by Neely's
  drift-plus-penalty rule, trading backlog against transport energy with ``V``.
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

import numpy as np

from betanet._native import navigator as _nav
from betanet.errors import InvalidArgumentError, NoPathError, NotFoundError, StateError

__all__ = [
    "Cost", "QoS", "PRESETS", "TRANSPORTS", "Route", "Navigator", "Contact", "CgrRoute",
    "ContactPlan", "Scheduler", "OBJECTIVES", "DEFAULT_K",
]

log = logging.getLogger(__name__)

DEFAULT_K: int = _nav.DEFAULT_K
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
    return qos


def _bound(x: float | None, what: str) -> float:
    if x is None:
        return math.inf
    x = float(x)
    if math.isnan(x) or x < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {x}")
    return x


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
        if not 0 < ewma <= 1:
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
            i = self._ids.get(name)
            if i is None:
                i = len(self._names)
                self._ids[name] = i
                self._names.append(name)
                if i >= self._graph.nodes:
                    self._graph.resize(max(2 * self._graph.nodes, i + 1, 16))
            return i

    def _known(self, name: Hashable) -> int:
        try:
            return self._ids[name]
        except KeyError:
            raise NotFoundError(f"unknown node {name!r}") from None

    def transport_id(self, name: str) -> int:
        """The id of a transport name, registering a new one if needed."""
        with self._lock:
            i = self._transports.get(name)
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
        with self._lock:
            s, d, t = self.node_id(src), self.node_id(dst), self.transport_id(transport)
            self._graph.set_link(s, d, t, (latency_ms, energy_mj, failure, privacy_eps), capacity)

    def observe(self, src: Hashable, dst: Hashable, transport: str, *, latency_ms: float,
                energy_mj: float | None = None, failure: float | None = None,
                privacy_eps: float | None = None, capacity: float | None = None) -> Cost:
        """Fold a live measurement from a transport into the link (exponential moving
        average with weight ``ewma`` for latency, energy and failure; epsilon and capacity
        are taken as given). A new link takes the measurement as is. Returns the new cost."""
        with self._lock:
            s, d, t = self.node_id(src), self.node_id(dst), self.transport_id(transport)
            try:
                old, old_cap = self._graph.get_link(s, d, t)
            except NotFoundError:
                old, old_cap = None, 0.0
            new = [latency_ms, energy_mj, failure, privacy_eps]
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
        src = np.ascontiguousarray(src, dtype=np.uint32)
        dst = np.ascontiguousarray(dst, dtype=np.uint32)
        costs = np.ascontiguousarray(costs, dtype=np.float64).reshape(-1, 4)
        n = int(n_nodes if n_nodes is not None else (max(int(src.max(initial=0)), int(dst.max(initial=0))) + 1))
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
        indptr = np.ascontiguousarray(indptr, dtype=np.uint64)
        n = len(indptr) - 1
        nav = cls._bare(n, node)
        nav._graph.load_csr(indptr, np.ascontiguousarray(indices, dtype=np.uint32),
                            np.ascontiguousarray(costs, dtype=np.float64).reshape(-1, 4),
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


# ------------------------------------------------------------------ contact graph routing

@dataclass(frozen=True)
class Contact:
    """A scheduled contact: ``src`` can send to ``dst`` during [start, end) seconds at
    ``rate`` bytes/s with one-way light time ``owlt`` s (None: from the plan's ranges)."""

    src: int
    dst: int
    start: float
    end: float
    rate: float
    owlt: float | None = None
    confidence: float = 1.0


@dataclass(frozen=True)
class CgrRoute:
    """A contact-graph route: best-case arrival, product of confidences, the smallest
    residual volume on it (bytes) and the contact ids in order."""

    arrival: float
    confidence: float
    volume: float
    next_hop: int
    contacts: list[int]
    index: int = field(repr=False, default=0)
    query: int = field(repr=False, default=0)


class ContactPlan:
    """Contacts and ranges of a delay-tolerant network, with CGR route search."""

    def __init__(self, contacts: Iterable[Contact | Sequence] = ()) -> None:
        self._plan = _nav.ContactPlan()
        self._query = 0
        for c in contacts:
            self.add(c if isinstance(c, Contact) else Contact(*c))

    @classmethod
    def from_ion(cls, text: str | bytes) -> ContactPlan:
        """Parse ION ``ionadmin`` text (``a contact +S +E F T RATE [CONF]``,
        ``a range +S +E F T OWLT``). Errors carry ``.line`` (1-based)."""
        plan = cls()
        plan.load_ion(text)
        return plan

    def load_ion(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else bytes(text)
        self._plan.load_ion(data)
        self._query += 1

    def add(self, c: Contact) -> int:
        return self.add_contact(c.src, c.dst, c.start, c.end, c.rate, owlt=c.owlt, confidence=c.confidence)

    def add_contact(self, src: int, dst: int, start: float, end: float, rate: float, *,
                    owlt: float | None = None, confidence: float = 1.0) -> int:
        """Add a contact; returns its id. Overlapping contacts of one pair are rejected."""
        self._query += 1
        return self._plan.add_contact(src, dst, start, end, rate, math.nan if owlt is None else owlt, confidence)

    def add_range(self, src: int, dst: int, start: float, end: float, owlt: float) -> None:
        self._query += 1
        self._plan.add_range(src, dst, start, end, owlt)

    def __len__(self) -> int:
        return self._plan.contacts

    def contact(self, cid: int) -> tuple[Contact, float]:
        """(contact, residual volume in bytes)."""
        f, t, s, e, r, o, c, res = self._plan.contact(cid)
        return Contact(f, t, s, e, r, None if math.isnan(o) else o, c), res

    def routes(self, source: int, destination: int, *, now: float = 0.0, size: float = 0.0,
               deadline: float | None = None, exclude: Iterable[int] = (), k: int = 1) -> list[CgrRoute]:
        """Up to ``k`` routes for a bundle of ``size`` bytes ready at ``now``, earliest
        arrival first (Yen's k shortest over the contact graph)."""
        self._query += 1
        found = self._plan.routes(source, destination, now, size,
                                  math.inf if deadline is None else deadline, list(exclude), k)
        return [CgrRoute(a, c, v, nh, ids, i, self._query) for i, (a, c, v, nh, ids) in enumerate(found)]

    def book(self, route: CgrRoute, size: float) -> None:
        """Reserve ``size`` bytes on every contact of ``route`` (from the latest query)."""
        if route.query != self._query:
            raise StateError("route is from an older query; query again before booking")
        self._plan.book(route.index, size)


# ------------------------------------------------------------------ scheduling

class Scheduler:
    """Drift-plus-penalty scheduler (Neely): each slot serve the option minimising
    ``V·energy + Σ Q_k·(arrivals_k − service_k)``; larger V spends less energy and
    tolerates more backlog.

    ``options`` maps a name to (energy mJ per slot, service per queue per slot)."""

    def __init__(self, n_queues: int, options: dict[str, tuple[float, Sequence[float]]], v: float) -> None:
        if not options:
            raise InvalidArgumentError("at least one service option is needed")
        self._names = list(options)
        self._s = _nav.Scheduler(n_queues, len(options), v)
        self._v = float(v)
        self.n_queues = n_queues
        for i, (energy, service) in enumerate(options.values()):
            self._s.set_option(i, energy, service)

    @property
    def v(self) -> float:
        return self._v

    @v.setter
    def v(self, value: float) -> None:
        self._s.set_v(value)
        self._v = float(value)

    def step(self, arrivals: Sequence[float], available: Iterable[str] | None = None) -> tuple[str | None, float]:
        """Advance one slot; returns (option served or None for idle, its energy)."""
        mask = None
        if available is not None:
            avail = set(available)
            mask = [1 if n in avail else 0 for n in self._names]
        i, energy = self._s.step(arrivals, mask)
        return (None if i < 0 else self._names[i]), energy

    @property
    def backlog(self) -> np.ndarray:
        return self._s.backlog()


# ------------------------------------------------------------------ operator command

def add_parser(sub) -> None:
    """``betanet cgr PLAN -s SRC -d DST``: routes from an ION contact plan."""
    p = sub.add_parser("cgr", help="contact graph routes from an ION contact plan")
    # nothing is required at parse time (the CLI builds every parser bare); _cgr_main checks
    p.add_argument("plan", nargs="?", help="ionadmin file with 'a contact' / 'a range' lines ('-' = stdin)")
    p.add_argument("-s", "--source", type=int, help="source node number (required)")
    p.add_argument("-d", "--dest", type=int, help="destination node number (required)")
    p.add_argument("--size", type=float, default=0.0, help="bundle size in bytes (default 0)")
    p.add_argument("--now", type=float, default=0.0, help="time the bundle is ready, s (default 0)")
    p.add_argument("--deadline", type=float, default=None, help="latest acceptable arrival, s")
    p.add_argument("--exclude", type=int, nargs="*", default=[], help="nodes the route must avoid")
    p.add_argument("-k", type=int, default=3, help="number of routes (Yen, default 3)")
    p.set_defaults(func=_cgr_main)


def _cgr_main(args) -> int:
    import sys

    from betanet.errors import BetanetError
    if args.plan is None or args.source is None or args.dest is None:
        print("betanet cgr: give a plan file, -s SOURCE and -d DEST (see --help)", file=sys.stderr)
        return 2
    text = sys.stdin.read() if args.plan == "-" else open(args.plan, encoding="utf-8", errors="replace").read()
    try:
        plan = ContactPlan.from_ion(text)
    except BetanetError as e:
        print(f"betanet cgr: {args.plan}:{getattr(e, 'line', '?')}: {e}", file=sys.stderr)
        return 2
    try:
        routes = plan.routes(args.source, args.dest, now=args.now, size=args.size,
                             deadline=args.deadline, exclude=args.exclude, k=args.k)
    except BetanetError as e:
        print(f"betanet cgr: {e}", file=sys.stderr)
        return 2
    print(f"{len(plan)} contacts; {len(routes)} route(s) {args.source} -> {args.dest}")
    for i, r in enumerate(routes):
        hops = [args.source] + [plan.contact(c)[0].dst for c in r.contacts]
        print(f"  {i + 1}. arrive {r.arrival:.3f} s  confidence {r.confidence:.3f}  "
              f"volume {r.volume:.0f} B  via {' -> '.join(map(str, hops))}")
    return 0 if routes else 1
