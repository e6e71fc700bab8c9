"""Forwarding strategies of the bundle protocol agent, behind one sans-IO interface.

The agent asks ``choose(held, now_ms, up)`` which of the peers in contact now (``up``: node ids
such as ``"ipn:2.0"`` or ``"dtn://b/"``) should get a copy of a held bundle; an empty answer
means "keep it and ask again when contacts change". ``replicate`` strategies keep their copy
after a successful send (it leaves the store at expiry or once the destination node has it);
the others hand the bundle on and forget it.

- :class:`StaticRoutes`: ``(pattern, next hop)`` pairs matched (fnmatch) on the destination EID.
- :class:`ContactGraphRouting`: routes over the scheduled contacts of a
  :class:`~betanet.cgr.ContactPlan` (ipn nodes), booking the bundle's volume on the route.
- :class:`Epidemic`: every peer that does not have it (summary vectors at contact start).
- :class:`SprayAndWait`: binary spray of ``copies`` copies, then direct delivery only.
Every strategy delivers directly when the destination node itself is in contact.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from betanet.dtn.eid import SCHEME_IPN, EID
from betanet.errors import InvalidArgumentError

if TYPE_CHECKING:
    from betanet.cgr import ContactPlan
    from betanet.dtn.agent import Held

__all__ = ["Strategy", "StaticRoutes", "ContactGraphRouting", "Epidemic", "SprayAndWait",
           "make_strategy"]


class Strategy(Protocol):
    name: str
    replicate: bool          # keep the bundle after a successful send
    wants_summary: bool      # exchange summary vectors at contact start

    def choose(self, h: Held, now_ms: int, up: frozenset[str]) -> list[str]: ...

    def copies_for(self, h: Held, peer: str) -> int | None:
        """The SPRAY block value of the copy sent to peer (None: no block)."""
        ...

    def on_sent(self, h: Held, peer: str) -> None: ...


class _Base:
    name = "base"
    replicate = False
    wants_summary = False

    def copies_for(self, h: Held, peer: str) -> int | None:
        return None

    def on_sent(self, h: Held, peer: str) -> None:
        pass

    @staticmethod
    def _direct(h: Held, up: frozenset[str]) -> list[str] | None:
        if h.dest_node in up and h.dest_node not in h.sent_to:
            return [h.dest_node]
        return None


class StaticRoutes(_Base):
    """Static routes: the first pattern that matches the destination EID names the next hop."""

    name = "static"

    def __init__(self, routes: Iterable[tuple[str, str]] = ()) -> None:
        self.routes: list[tuple[str, str]] = []
        for pattern, hop in routes:
            self.add(pattern, hop)

    def add(self, pattern: str, next_hop: str | EID) -> None:
        hop = EID.parse(next_hop) if isinstance(next_hop, str) else next_hop
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgumentError("a route pattern is a non-empty string (fnmatch)")
        self.routes.append((pattern, str(hop.node_id)))

    def next_hop(self, destination: str) -> str | None:
        return next((hop for pat, hop in self.routes if fnmatch.fnmatchcase(destination, pat)), None)

    def choose(self, h: Held, now_ms: int, up: frozenset[str]) -> list[str]:
        direct = self._direct(h, up)
        if direct is not None:
            return direct
        hop = self.next_hop(str(h.destination))
        return [hop] if hop is not None and hop in up and hop != h.prev else []


class ContactGraphRouting(_Base):
    """CGR over ipn node numbers. Plan times are seconds since ``epoch_ms`` (DTN time);
    routes are found anew on every decision, so a missed contact simply re-plans. A bundle
    leaves only inside the planned window of its route's first contact (with a session to that
    neighbour up); a destination in direct contact takes it at once, plan or not."""

    name = "cgr"

    def __init__(self, plan: ContactPlan, local_node: int, *, epoch_ms: int = 0, k: int = 3) -> None:
        self.plan, self.local, self.epoch_ms, self.k = plan, int(local_node), int(epoch_ms), k
        self.booked = 0
        self.no_route = 0

    def _t(self, ms: int) -> float:
        return (ms - self.epoch_ms) / 1000.0

    def choose(self, h: Held, now_ms: int, up: frozenset[str]) -> list[str]:
        direct = self._direct(h, up)
        if direct is not None:
            return direct
        if h.destination.scheme != SCHEME_IPN:
            return []
        exclude = [h.prev_ipn] if h.prev_ipn is not None else []
        routes = self.plan.routes(self.local, h.destination.node, now=self._t(now_ms), size=h.size,
                                  deadline=self._t(h.expires_ms), exclude=exclude, k=self.k)
        if not routes:
            self.no_route += 1
        t = self._t(now_ms)
        for r in routes:
            hop = f"ipn:{r.next_hop}.0"
            # the first contact of the route must be open now: a session to that neighbour
            # before its planned window is not the contact the route was computed for (as ION
            # transmits only inside planned contacts); the bundle waits and is re-planned
            first, _ = self.plan.contact(r.contacts[0])
            if hop in up and hop not in h.sent_to and first.start <= t < first.end:
                self.plan.book(r, h.size)
                self.booked += 1
                return [hop]
        return []


class Epidemic(_Base):
    """Every peer in contact that does not hold the bundle yet gets a copy."""

    name = "epidemic"
    replicate = True
    wants_summary = True

    def choose(self, h: Held, now_ms: int, up: frozenset[str]) -> list[str]:
        direct = self._direct(h, up)
        if direct is not None:
            return direct
        return [p for p in up if p != h.prev and p not in h.sent_to and not h.known_by(p)]


class SprayAndWait(_Base):
    """Binary spray and wait: a holder of n > 1 copies gives n // 2 to a peer without the
    bundle; with one copy left it waits for the destination node."""

    name = "spray"
    replicate = True
    wants_summary = True

    def __init__(self, copies: int = 8) -> None:
        if not 1 <= copies <= 1 << 16:
            raise InvalidArgumentError("spray copies must be 1..65536")
        self.copies = copies

    def choose(self, h: Held, now_ms: int, up: frozenset[str]) -> list[str]:
        direct = self._direct(h, up)
        if direct is not None:
            return direct
        if self._copies(h) <= 1:
            return []
        for p in sorted(up):
            if p != h.prev and p not in h.sent_to and not h.known_by(p):
                return [p]
        return []

    def _copies(self, h: Held) -> int:
        return self.copies if h.copies is None else h.copies

    def copies_for(self, h: Held, peer: str) -> int | None:
        return 1 if peer == h.dest_node else self._copies(h) // 2

    def on_sent(self, h: Held, peer: str) -> None:
        if peer != h.dest_node:
            h.copies = self._copies(h) - self._copies(h) // 2


def make_strategy(name: str, *, routes: Sequence[tuple[str, str]] = (), plan: ContactPlan | None = None,
                  local_node: int | None = None, copies: int = 8, epoch_ms: int = 0) -> Strategy:
    """A strategy by configuration name: static, cgr, epidemic or spray."""
    if name == "static":
        return StaticRoutes(routes)
    if name == "cgr":
        if plan is None or local_node is None:
            raise InvalidArgumentError("cgr needs a contact plan and the local ipn node number")
        return ContactGraphRouting(plan, local_node, epoch_ms=epoch_ms)
    if name == "epidemic":
        return Epidemic()
    if name == "spray":
        return SprayAndWait(copies)
    raise InvalidArgumentError(f"unknown forwarding strategy {name!r}: static, cgr, epidemic or spray")
