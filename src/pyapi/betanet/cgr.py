"""Contact graph routing: routes over scheduled contacts in a delay-tolerant network.

:class:`ContactPlan` holds scheduled contacts (satellites, buses, phones that meet) and
ranges, finds earliest-arrival routes — k of them by Yen's algorithm, following SABR
(CCSDS 734.3-B-1) — books bundle volume on them, and loads ION ``ionadmin`` contact
plans. A plan holds at most ``max_entries`` contacts + ranges (default
:data:`DEFAULT_MAX_ENTRIES`), so a plan from an untrusted source cannot grow without bound.
Core: ``include/betanet/cgr.h``, ``docs/cgr.md``. Also ``betanet cgr`` on the command line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from betanet._native import cgr as _cgr
from betanet._check import integer, real
from betanet.errors import InvalidArgumentError, StateError

__all__ = ["Contact", "CgrRoute", "ContactPlan", "DEFAULT_MAX_ENTRIES", "MAX_K"]

#: Entries (contacts + ranges) a plan holds unless told otherwise (docs/limits.md).
DEFAULT_MAX_ENTRIES: int = _cgr.DEFAULT_MAX_ENTRIES
#: Most routes one query returns.
MAX_K: int = _cgr.MAX_K
_NODE_MAX = 2**64 - 1


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

    def __init__(self, contacts: Iterable[Contact | Sequence] = (), *,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        max_entries = integer(max_entries, "max_entries", 1, _cgr.MAX_ENTRIES_LIMIT)
        self._plan = _cgr.ContactPlan(max_entries)
        self._query = 0
        for c in contacts:
            self.add(c if isinstance(c, Contact) else Contact(*c))

    def set_limit(self, max_entries: int) -> None:
        """Change the bound on contacts + ranges (not below the plan's current size)."""
        self._plan.set_limit(integer(max_entries, "max_entries", 1, _cgr.MAX_ENTRIES_LIMIT))

    @classmethod
    def from_ion(cls, text: str | bytes, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> ContactPlan:
        """Parse ION ``ionadmin`` text (``a contact +S +E F T RATE [CONF]``,
        ``a range +S +E F T OWLT``) in O(n log² n). Errors carry ``.line`` (1-based); a
        plan over ``max_entries`` contacts + ranges raises LimitExceededError."""
        plan = cls(max_entries=max_entries)
        plan.load_ion(text)
        return plan

    def load_ion(self, text: str | bytes) -> None:
        """Add the contacts and ranges of ION text; all or nothing."""
        if isinstance(text, str):
            data = text.encode()
        elif isinstance(text, (bytes, bytearray, memoryview)):
            data = bytes(text)
        else:
            raise InvalidArgumentError(f"an ION plan is str or bytes, not {type(text).__name__}")
        self._plan.load_ion(data)
        self._query += 1

    def add(self, c: Contact) -> int:
        if not isinstance(c, Contact):
            raise InvalidArgumentError(f"expected a Contact, not {type(c).__name__}")
        return self.add_contact(c.src, c.dst, c.start, c.end, c.rate, owlt=c.owlt, confidence=c.confidence)

    def add_contact(self, src: int, dst: int, start: float, end: float, rate: float, *,
                    owlt: float | None = None, confidence: float = 1.0) -> int:
        """Add a contact; returns its id. Overlapping contacts of one pair are rejected."""
        args = (integer(src, "src", 0, _NODE_MAX), integer(dst, "dst", 0, _NODE_MAX),
                real(start, "start", -math.inf), real(end, "end", -math.inf), real(rate, "rate"),
                math.nan if owlt is None else real(owlt, "owlt"), real(confidence, "confidence", 0.0, 1.0))
        cid = self._plan.add_contact(*args)
        self._query += 1
        return cid

    def add_range(self, src: int, dst: int, start: float, end: float, owlt: float) -> None:
        """Add a range (one-way light time ``owlt`` s for ``src`` -> ``dst`` during [start, end))."""
        self._plan.add_range(integer(src, "src", 0, _NODE_MAX), integer(dst, "dst", 0, _NODE_MAX),
                             real(start, "start", -math.inf), real(end, "end", -math.inf), real(owlt, "owlt"))
        self._query += 1

    def __len__(self) -> int:
        return self._plan.contacts

    def contact(self, cid: int) -> tuple[Contact, float]:
        """(contact, residual volume in bytes)."""
        f, t, s, e, r, o, c, res = self._plan.contact(integer(cid, "contact id", 0, 0xFFFFFFFF))
        return Contact(f, t, s, e, r, None if math.isnan(o) else o, c), res

    def routes(self, source: int, destination: int, *, now: float = 0.0, size: float = 0.0,
               deadline: float | None = None, exclude: Iterable[int] = (), k: int = 1) -> list[CgrRoute]:
        """Up to ``k`` routes for a bundle of ``size`` bytes ready at ``now``, earliest
        arrival first (Yen's k shortest over the contact graph)."""
        args = (integer(source, "source", 0, _NODE_MAX), integer(destination, "destination", 0, _NODE_MAX),
                real(now, "now", -math.inf), real(size, "size"),
                math.inf if deadline is None else real(deadline, "deadline", -math.inf, finite=False),
                [integer(x, "excluded node", 0, _NODE_MAX) for x in exclude], integer(k, "k", 1, MAX_K))
        self._query += 1
        found = self._plan.routes(*args)
        return [CgrRoute(a, c, v, nh, ids, i, self._query) for i, (a, c, v, nh, ids) in enumerate(found)]

    def book(self, route: CgrRoute, size: float) -> None:
        """Reserve ``size`` bytes on every contact of ``route`` (from the latest query)."""
        if not isinstance(route, CgrRoute):
            raise InvalidArgumentError(f"expected a CgrRoute, not {type(route).__name__}")
        size = real(size, "size")
        if route.query != self._query:
            raise StateError("route is from an older query; query again before booking")
        self._plan.book(route.index, size)


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
