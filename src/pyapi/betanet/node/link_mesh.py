"""The BLE mesh link: node frames as directed BitChat packets through the mesh.

:class:`betanet.mesh.service.MeshService` drives the router (radio callbacks, timers, the
announce every ``announce_s`` with TTL 7, so peers several hops away learn of us); this
adapter only maps its events and measurements onto the node's link interface. A peer is
reachable over the mesh while its announce is fresh in the router and its peer record names
its BLE peer id. The mesh has no hop acknowledgment: ``send`` returns once the frame is
queued on the radio; the end-to-end acknowledgment tells the node whether it arrived.
``enabled = False`` takes the link out of the node's routes and drops the frames it hears
(the service keeps relaying for others).
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Callable

from betanet.errors import BetanetError
from betanet.mesh.packet import MESSAGE
from betanet.mesh.router import MeshRouter
from betanet.mesh.service import Delivered, MeshService, NeighbourChanged, PeerAnnounced
from betanet.node.links import ENERGY, NOMINAL_BYTES, PRIVACY_EPS, LinkError
from betanet.node.peers import PeerBook

HOP_LATENCY_MS = 60.0      # a connection interval (30 ms) plus airtime and relay delay per hop


class MeshLink:
    transport = "ble"

    def __init__(self, router: MeshRouter, radio, peers: PeerBook, *, announce_s: float = 1.0,
                 max_tasks: int = 256, clock: Callable[[], float] = time.time) -> None:
        self.service = MeshService(router, radio, announce_interval_s=announce_s, clock=clock)
        self.router, self.radio, self.peers = router, radio, peers
        self.announce_s = announce_s
        self.on_frame = None
        self.on_change = None
        self._reader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._max_tasks = max_tasks
        self._known: set[str] = set()
        self.counters = {"frames_sent": 0, "frames_received": 0, "dropped_busy": 0}
        self.enabled = True

    async def open(self) -> None:
        events = self.service.events()           # subscribed before the first frame can arrive
        await self.service.start()
        self._reader = asyncio.ensure_future(self._read(events))

    async def close(self) -> None:
        for t in [self._reader, *self._tasks]:
            if t is not None:
                t.cancel()
        await self.service.stop()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        if hasattr(self.radio, "close"):
            await self.radio.close()

    async def _read(self, events) -> None:
        # announces age out with time, not with events: re-check reach at least every announce
        nxt = asyncio.ensure_future(events.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({nxt}, timeout=self.announce_s)
                if not done:
                    self._check_reach()
                    continue
                try:
                    ev = nxt.result()
                except StopAsyncIteration:
                    return
                nxt = asyncio.ensure_future(events.__anext__())
                self._on_event(ev)
        finally:
            nxt.cancel()

    def _on_event(self, ev) -> None:
        if isinstance(ev, Delivered):
            if ev.packet.type != MESSAGE or ev.packet.recipient != self.router.me or not self.enabled:
                return
            self.counters["frames_received"] += 1
            if self.on_frame is None:
                return
            if len(self._tasks) >= self._max_tasks:
                self.counters["dropped_busy"] += 1      # the sender retries end to end
                return
            t = asyncio.ensure_future(self.on_frame(bytes(ev.packet.payload)))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        elif isinstance(ev, (PeerAnnounced, NeighbourChanged)):
            self._check_reach()

    def _check_reach(self) -> None:
        now = self.reaches()
        if self.on_change:
            for p in now - self._known:
                self.on_change(p, True)
            for p in self._known - now:
                self.on_change(p, False)
        self._known = now

    def reaches(self) -> set[str]:
        if not self.enabled or not self.router.links:      # no neighbour: nobody, however fresh
            return set()
        out = set()
        now = self.service.now_ms()
        for ble, peer in self.service.peers.items():
            if now - peer.seen_ms > 3 * self.announce_s * 1000 + 500:
                continue
            rec = self.peers.by_ble(ble)
            if rec is not None:
                out.add(rec.peer)
        return out

    async def send(self, peer: str, frame: bytes, timeout: float) -> float:
        rec = self.peers.find(peer)
        if not self.enabled or rec is None or rec.ble_id is None or peer not in self.reaches():
            raise LinkError(f"ble: {peer} is not on the mesh")
        try:
            self.service.send_to(rec.ble_id, frame)
        except (BetanetError, OSError) as e:        # the radio refused it: the node takes the next route
            raise LinkError(f"ble: send failed: {type(e).__name__} {e}") from None
        self.counters["frames_sent"] += 1
        return 0.0

    def measure(self, peer: str) -> dict:
        # loss: the radio's estimates for our neighbours, over the 3 hops the energy model assumes
        losses = [self.service.observe_kwargs(n)["failure"] for n in self.service.neighbours()]
        loss = sum(losses) / len(losses) if losses else 0.0
        return {"latency_ms": 3 * HOP_LATENCY_MS,
                "energy_mj": ENERGY["ble"].energy_mj(NOMINAL_BYTES),
                "failure": min(0.99, 1 - (1 - loss) ** 3), "privacy_eps": PRIVACY_EPS["ble"]}

    def stats(self) -> dict:
        m = self.service.metrics()
        return {**self.counters, "radio_errors": self.service.counters.get("send_failed", 0),
                "neighbours": m.neighbours, "mesh_peers": m.peers,
                **{f"service_{k}": v for k, v in self.service.counters.items()},
                **{f"router_{k}": v for k, v in self.router.counters.items()}}
