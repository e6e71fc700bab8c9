"""The BLE mesh link: node frames as directed BitChat packets through a MeshRouter on a Radio.

This is the thin asyncio driver of the sans-IO :class:`betanet.mesh.router.MeshRouter`: radio
frames in, router frames out, router timers on the event loop, and an announce (TTL 7, so
peers several hops away learn of us) every ``announce_s``. A peer is reachable over the mesh
while its announce is fresh in the router and its peer record names its BLE peer id. The
mesh has no hop acknowledgment: ``send`` returns once the frame is queued on the radio; the
end-to-end acknowledgment tells the node whether it arrived.
"""
from __future__ import annotations

import asyncio
import logging
import time

from betanet.errors import BetanetError
from betanet.mesh.packet import MESSAGE
from betanet.mesh.router import Delivered, MeshRouter, PeerAnnounced
from betanet.node.links import ENERGY, NOMINAL_BYTES, PRIVACY_EPS, LinkError
from betanet.node.peers import PeerBook

log = logging.getLogger(__name__)

HOP_LATENCY_MS = 60.0      # a connection interval (30 ms) plus airtime and relay delay per hop


class MeshLink:
    transport = "ble"

    def __init__(self, router: MeshRouter, radio, peers: PeerBook, *, announce_s: float = 1.0,
                 max_tasks: int = 256) -> None:
        self.router, self.radio, self.peers = router, radio, peers
        self.announce_s = announce_s
        self.on_frame = None
        self.on_change = None
        self._timer: asyncio.TimerHandle | None = None
        self._announcer: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._max_tasks = max_tasks
        self._t0 = time.monotonic()
        self._known: set[str] = set()
        self.counters = {"frames_sent": 0, "frames_received": 0, "dropped_busy": 0, "radio_errors": 0}
        self.enabled = True

    def _now(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.radio.on_frame = lambda f, src: self._loop.call_soon_threadsafe(self._rx, f, src)
        self.radio.on_neighbour = lambda p, up: self._loop.call_soon_threadsafe(self._nb, p, up)
        for n in self.radio.neighbours():
            self.router.link_up(n, 1.0 - self.radio.link_quality(n), self._now())
        self._announcer = asyncio.ensure_future(self._announce_loop())

    async def close(self) -> None:
        if self._announcer:
            self._announcer.cancel()
        if self._timer:
            self._timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        self.radio.on_frame = self.radio.on_neighbour = None
        if hasattr(self.radio, "close"):
            await self.radio.close()

    async def _announce_loop(self) -> None:
        while True:
            if self.enabled:
                self.router.announce(self._now(), ttl=7)
                self._flush()
            self._check_reach()
            await asyncio.sleep(self.announce_s)

    def _nb(self, peer: bytes, up: bool) -> None:
        if up:
            self.router.link_up(peer, 1.0 - self.radio.link_quality(peer), self._now())
        else:
            self.router.link_down(peer)
        self._flush()

    def _rx(self, frame: bytes, src: bytes) -> None:
        if not self.enabled:
            return
        for ev in self.router.receive(frame, src, self._now()):
            if isinstance(ev, Delivered) and ev.packet.type == MESSAGE and ev.packet.recipient == self.router.me:
                self.counters["frames_received"] += 1
                if self.on_frame is None:
                    continue
                if len(self._tasks) >= self._max_tasks:
                    self.counters["dropped_busy"] += 1      # the sender retries end to end
                    continue
                t = asyncio.ensure_future(self.on_frame(bytes(ev.packet.payload)))
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
            elif isinstance(ev, PeerAnnounced):
                self._check_reach()
        self._flush()

    def _flush(self) -> None:
        for f in self.router.frames_to_send():
            try:
                self.radio.send(f)
            except (BetanetError, OSError) as e:      # the radio is gone: the frames are lost,
                self.counters["radio_errors"] += 1      # end-to-end retries cover them
                log.debug("mesh radio send failed: %s", e)
        t = self.router.next_timer()
        if t is not None:
            if self._timer:
                self._timer.cancel()
            self._timer = self._loop.call_later(max(0.001, (t - self._now()) / 1000), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.router.tick(self._now())
        self._flush()

    def _check_reach(self) -> None:
        now = self.reaches()
        for p in now - self._known:
            if self.on_change:
                self.on_change(p, True)
        for p in self._known - now:
            if self.on_change:
                self.on_change(p, False)
        self._known = now

    def reaches(self) -> set[str]:
        if not self.enabled or not self.router.links:      # no neighbour: nobody, however fresh
            return set()
        out = set()
        now = self._now()
        for ble, peer in self.router.peers.items():
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
        self.router.send_to(rec.ble_id, frame, self._now())
        self._flush()
        self.counters["frames_sent"] += 1
        return 0.0

    def measure(self, peer: str) -> dict:
        # loss: the router's neighbour estimates, over the 3 hops the energy model assumes
        losses = list(self.router.links.values())
        loss = sum(losses) / len(losses) if losses else 0.0
        return {"latency_ms": 3 * HOP_LATENCY_MS,
                "energy_mj": ENERGY["ble"].energy_mj(NOMINAL_BYTES),
                "failure": min(0.99, 1 - (1 - loss) ** 3), "privacy_eps": PRIVACY_EPS["ble"]}

    def stats(self) -> dict:
        return {**self.counters, "neighbours": len(self.router.links), "mesh_peers": len(self.router.peers),
                **{f"router_{k}": v for k, v in self.router.counters.items()}}
