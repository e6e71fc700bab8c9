"""Route choice and packet creation, shared by mixnodes and clients (sans-IO: the random
source is injected, nothing is sent).

A route to a *mixnode* destination (a message for the application it hosts, a mixnode's
own loop) ends at that mixnode: it Sphinx-processes the packet itself, so it never has to
trust a DELIVER frame from a link peer. A route to a client ends at a mixnode that hands
the body over in a DELIVER frame."""
from __future__ import annotations

import random
import secrets
from typing import Protocol, Sequence

from betanet import sphinx
from betanet.errors import InvalidArgumentError, NoPathError
from betanet.mix.types import DELAY_CAP_FACTOR, Descriptor, Directory
from betanet.sphinx import Geometry, NodeInfo, Route

__all__ = ["RouteSelectorLike", "RandomSelector", "RouteBuilder", "exp_delay_ms", "SYSTEM_RNG"]

#: The default random source: delays and picks must not be predictable.
SYSTEM_RNG: random.Random = secrets.SystemRandom()

_SELECT_TRIES = 32                     # fresh VRF draws to find a path avoiding excluded nodes


class RouteSelectorLike(Protocol):
    """What a client needs from a route selector (``betanet.vrf.RouteSelector`` fits)."""

    def select(self, src_peer_id: bytes, dst_peer_id: bytes, stream_nonce: bytes, hops: int,
               src_as: int, dst_as: int, epoch: int) -> list: ...


class RandomSelector:
    """Uniformly random distinct hops (when no VRF selector is configured)."""

    def __init__(self, mixnodes: Sequence, rng: random.Random | None = None) -> None:
        self._nodes = list(mixnodes)
        self._rng = rng or SYSTEM_RNG

    def select(self, src_peer_id: bytes, dst_peer_id: bytes, stream_nonce: bytes, hops: int,
               src_as: int, dst_as: int, epoch: int) -> list:
        pool = list(self._nodes)
        if len(pool) < hops:
            raise NoPathError(f"{hops} hops needed, {len(pool)} mixnodes known")
        return [pool.pop(self._rng.randrange(len(pool))) for _ in range(hops)]


def exp_delay_ms(rng: random.Random, mean_ms: float, cap_ms: float) -> int:
    """An exponential delay (Poisson mixing) with mean ``mean_ms``, redrawn above ``cap_ms``
    (so the distribution is truncated, not piled up at the cap)."""
    if mean_ms <= 0 or cap_ms <= 0:
        return 0
    while True:
        d = int(rng.expovariate(1.0 / mean_ms))
        if d <= cap_ms:
            return d


class RouteBuilder:
    """Chooses routes (selector or uniform) with per-hop delays and builds Sphinx packets."""

    def __init__(self, node_id: bytes, geometry: Geometry, directory: Directory, epoch: int,
                 selector: RouteSelectorLike | None, hops: int, mean_delay_ms: float,
                 as_group: int = 0, max_delay_ms: float | None = None) -> None:
        if hops < 1:
            raise InvalidArgumentError("hops must be at least 1")
        self.node_id, self.geometry, self.directory, self.epoch = node_id, geometry, directory, epoch
        self.selector, self.hops, self.mean_delay_ms = selector, hops, mean_delay_ms
        self.as_group = as_group
        self.max_delay_ms = DELAY_CAP_FACTOR * mean_delay_ms if max_delay_ms is None else max_delay_ms

    def _pick(self, dst: bytes, n: int, excluded: set[bytes], dst_as: int,
              rng: random.Random) -> list:
        if self.selector is None:
            pool = [m for m in self.directory.mixnodes if m.node_id not in excluded]
            return RandomSelector(pool, rng).select(self.node_id, dst, b"", n, self.as_group,
                                                    dst_as, self.epoch)
        for _ in range(_SELECT_TRIES):
            chosen = self.selector.select(self.node_id, dst, rng.randbytes(16), n, self.as_group,
                                          dst_as, self.epoch)
            if not any(bytes(h.node_id) in excluded for h in chosen):
                return chosen
        raise NoPathError(f"the selector found no {n}-hop path avoiding the destination")

    def choose_route(self, dst: bytes, rng: random.Random | None = None,
                     exclude: bytes | None = None) -> Route:
        """A route of ``hops`` hops for a packet to ``dst``; a mixnode destination is the
        last hop. NoPathError when too few mixnodes are known."""
        rng = rng or SYSTEM_RNG
        dst_entry = self.directory.get(dst)
        at_mixnode = dst_entry is not None and dst_entry.is_mixnode
        excluded = {e for e in (exclude, dst if at_mixnode else None) if e is not None}
        n = self.hops - 1 if at_mixnode else self.hops
        chosen: list = self._pick(dst, n, excluded, dst_entry.as_group if dst_entry else 0,
                                  rng) if n else []
        hops = [NodeInfo(bytes(h.node_id), bytes(h.sphinx_public_key)) for h in chosen]
        if at_mixnode:
            hops.append(NodeInfo(dst_entry.node_id, dst_entry.sphinx_public_key))
        return Route(hops, [exp_delay_ms(rng, self.mean_delay_ms, self.max_delay_ms) for _ in hops])

    def packet(self, dst: bytes, body: bytes, route: Route | None = None,
               rng: random.Random | None = None) -> tuple[bytes, bytes, Route]:
        """(first hop, Sphinx packet, route) carrying ``body`` to ``dst``."""
        route = route or self.choose_route(dst, rng)
        return route.hops[0].node_id, sphinx.create_packet(self.geometry, self.epoch, route, dst, body), route

    def any_mixnode(self, rng: random.Random | None = None) -> Descriptor:
        """A uniformly chosen known mixnode (drop cover's destination)."""
        mixnodes = self.directory.mixnodes
        if not mixnodes:
            raise NoPathError("no mixnode known")
        return mixnodes[(rng or SYSTEM_RNG).randrange(len(mixnodes))]
