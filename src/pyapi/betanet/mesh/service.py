"""MeshService: a MeshRouter driven in real time over any Radio on the asyncio loop.

The router is sans-IO; this adapter only moves bytes and runs timers. Frames the radio
hears go to `router.receive`, neighbour up/down to `link_up`/`link_down`, whatever the
router wants sent goes to `radio.send`, and one loop timer fires `router.tick` at
`router.next_timer()` (or after `housekeeping_s`, for peer expiry). Packet timestamps are
Unix milliseconds (BitChat's), from the injected `clock`. Events (router events plus
`NeighbourChanged`) fan out to every `events()` iterator, each with a bounded queue: a
consumer that falls behind loses the oldest events and `counters["events_dropped"]` says
how many.

Link measurements: `link_quality(peer)` is the radio's delivery probability for the link;
`link_stats(peer)` adds frames/bytes heard from that neighbour and when; `metrics()` gives
the node's totals (frames sent and received, energy) and `observe_kwargs(peer)` maps one
link onto `Navigator.observe`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from betanet.errors import InvalidArgumentError, StateError
from betanet.mesh.packet import MESSAGE
from betanet.mesh.radio import Energy, Radio
from betanet.mesh.router import Delivered, MeshRouter, PeerAnnounced, PrivateMessage, Rejected

__all__ = ["MeshService", "NeighbourChanged", "LinkStats", "MeshMetrics",
           "Delivered", "PeerAnnounced", "PrivateMessage", "Rejected"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NeighbourChanged:
    peer_id: bytes
    up: bool
    quality: float


@dataclass(frozen=True)
class LinkStats:
    peer_id: bytes
    up: bool
    quality: float                # the radio's delivery probability for this link
    frames_received: int
    bytes_received: int
    last_heard: float | None      # clock seconds of the last frame from this neighbour


@dataclass(frozen=True)
class MeshMetrics:
    neighbours: int
    peers: int                    # announced peers known (any distance)
    frames_sent: int
    bytes_sent: int
    frames_received: int
    energy_j: float
    delivered: int
    relayed: int
    rejected: int


class _Link:
    __slots__ = ("frames", "bytes", "last")

    def __init__(self) -> None:
        self.frames, self.bytes, self.last = 0, 0, None


class MeshService:
    """Runs one node's mesh over a radio (SimRadio on `air.local_medium()`, AirRadio, BleakRadio)."""

    def __init__(self, router: MeshRouter, radio: Radio, *, announce_interval_s: float = 30.0,
                 announce_ttl: int = 7, housekeeping_s: float = 1.0, events_max: int = 1024,
                 clock: Callable[[], float] = time.time) -> None:
        if announce_interval_s <= 0 or housekeeping_s <= 0 or events_max < 1:
            raise InvalidArgumentError("announce interval, housekeeping period and events_max must be positive")
        if radio.peer_id != router.me:
            raise InvalidArgumentError("the radio's peer id is not the router's")
        self.router, self.radio = router, radio
        self.announce_interval_s, self.housekeeping_s = announce_interval_s, housekeeping_s
        self.announce_ttl = announce_ttl
        self.events_max = events_max
        self.clock = clock
        self.counters: dict[str, int] = {}
        self._subscribers: list[asyncio.Queue] = []
        self._links: dict[bytes, _Link] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._announcer: asyncio.Task | None = None
        self._running = False

    @property
    def peer_id(self) -> bytes:
        return self.router.me

    @property
    def running(self) -> bool:
        return self._running

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._running:
            raise StateError("the mesh service is already running")
        self._loop = asyncio.get_running_loop()
        self._running = True
        self.radio.on_frame = self._on_frame
        self.radio.on_frames = self._on_frames       # radios that deliver bursts (ble.hand_up)
        self.radio.on_neighbour = self._on_neighbour
        for peer in self.radio.neighbours():
            self.router.link_up(peer, 1.0 - self.radio.link_quality(peer))
        self._announcer = self._loop.create_task(self._announce_loop())
        self._schedule()

    async def stop(self) -> None:
        """Stop driving the router (the radio stays open: its owner closes it)."""
        if not self._running:
            return
        self._running = False
        self.radio.on_frame = None
        self.radio.on_frames = None
        self.radio.on_neighbour = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._announcer is not None:
            self._announcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._announcer
        for q in self._subscribers:
            self._put(q, None)

    async def __aenter__(self) -> "MeshService":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- sending ------------------------------------------------------------------------
    def broadcast(self, payload: bytes, *, ttl: int = 7, ptype: int = MESSAGE) -> bytes:
        """Sign and flood a public message; returns its packet identity."""
        self._check_running()
        pid = self.router.broadcast(bytes(payload), self.now_ms(), ttl=ttl, ptype=ptype)
        self._flush()
        return pid

    def send_to(self, peer_id: bytes, payload: bytes, *, ttl: int = 7,
                route: tuple[bytes, ...] = (), ptype: int = MESSAGE) -> bytes:
        """A signed packet directed to `peer_id` (relayed by the mesh like a broadcast;
        with `route`, a v2 source-routed one); returns its packet identity."""
        self._check_running()
        pid = self.router.send_to(bytes(peer_id), bytes(payload), self.now_ms(), ttl=ttl, route=route,
                                  ptype=ptype)
        self._flush()
        return pid

    def send_private(self, peer_id: bytes, text: str) -> None:
        """A Noise-encrypted private message (the XX handshake runs first if needed)."""
        self._check_running()
        self.router.send_private(bytes(peer_id), text, self.now_ms())
        self._flush()

    def announce(self, ttl: int | None = None) -> None:
        """Announce this node (nickname, keys, neighbours); TTL `announce_ttl` by default
        so peers beyond one hop learn the signing key that verifies our broadcasts."""
        self._check_running()
        self.router.announce(self.now_ms(), ttl=self.announce_ttl if ttl is None else ttl)
        self._flush()

    def poll_friend(self, friend: bytes) -> None:
        self._check_running()
        self.router.poll_friend(friend, self.now_ms())
        self._flush()

    # ---- events -------------------------------------------------------------------------
    def events(self) -> AsyncIterator[object]:
        """Every event from this call on (Delivered, PeerAnnounced, PrivateMessage,
        Rejected, NeighbourChanged) until the service stops. The subscription starts at
        the call, so nothing is missed between calling and iterating."""
        q: asyncio.Queue = asyncio.Queue()
        self._subscribers.append(q)
        return self._drain(q)

    async def _drain(self, q: asyncio.Queue) -> AsyncIterator[object]:
        try:
            while self._running or not q.empty():
                ev = await q.get()
                if ev is None:
                    return
                yield ev
        finally:
            self._subscribers.remove(q)

    def wait_for(self, predicate: Callable[[object], bool], timeout: float) -> Awaitable[object]:
        """An awaitable of the first event from this call on that satisfies `predicate`
        (subscribed at the call: create it before the action whose result it waits for)."""
        events = self.events()

        async def first() -> object:
            async for ev in events:
                if predicate(ev):
                    return ev
            raise StateError("the mesh service stopped")
        return asyncio.wait_for(first(), timeout)

    def _emit(self, ev: object) -> None:
        for q in self._subscribers:
            self._put(q, ev)

    def _put(self, q: asyncio.Queue, ev: object) -> None:
        if q.qsize() >= self.events_max:
            q.get_nowait()
            self._inc("events_dropped")
        q.put_nowait(ev)

    # ---- measurements -------------------------------------------------------------------
    def neighbours(self) -> list[bytes]:
        return self.radio.neighbours()

    def link_quality(self, peer_id: bytes) -> float:
        return self.radio.link_quality(peer_id)

    def link_stats(self, peer_id: bytes) -> LinkStats:
        link = self._links.get(peer_id) or _Link()
        return LinkStats(peer_id, peer_id in self.radio.neighbours(), self.radio.link_quality(peer_id),
                         link.frames, link.bytes, link.last)

    def observe_kwargs(self, peer_id: bytes) -> dict[str, float]:
        """One link as `Navigator.observe` keyword arguments (failure = 1 - quality)."""
        out = {"failure": 1.0 - self.radio.link_quality(peer_id)}
        cfg = getattr(self.radio, "config", None) or {}
        if "throughput_bps" in cfg:
            out["capacity"] = float(cfg["throughput_bps"]) / 8
        return out

    @property
    def energy(self) -> Energy:
        return self.radio.energy

    def metrics(self) -> MeshMetrics:
        c = self.router.counters
        e = self.radio.energy
        return MeshMetrics(len(self.radio.neighbours()), len(self.router.peers), e.frames_sent, e.bytes_sent,
                           c.get("rx_frames", 0), e.total, c.get("delivered", 0) + c.get("private_delivered", 0),
                           c.get("relayed", 0), sum(v for k, v in c.items() if k.startswith("rejected_")))

    @property
    def peers(self) -> dict:
        """Announced peers: peer id -> router.Peer (announce and when it was seen)."""
        return self.router.peers

    # ---- plumbing -----------------------------------------------------------------------
    def _check_running(self) -> None:
        if not self._running:
            raise StateError("the mesh service is not running")

    def _inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _on_frame(self, frame: bytes, src: bytes) -> None:
        self._on_frames([frame], src)

    def _on_frames(self, frames: list[bytes], src: bytes) -> None:
        link = self._links.setdefault(src, _Link())
        link.frames += len(frames)
        link.bytes += sum(map(len, frames))
        link.last = self.clock()
        try:
            if len(frames) == 1:
                events = self.router.receive(frames[0], src, self.now_ms())
            else:
                events = self.router.receive_batch(frames, src, self.now_ms())
        except Exception:                         # the radio's reader must survive any frame
            log.exception("mesh router failed on a frame from %s", src.hex())
            self._inc("receive_errors")
            events = []
        for ev in events:
            self._emit(ev)
        self._flush()

    def _on_neighbour(self, peer: bytes, up: bool) -> None:
        quality = self.radio.link_quality(peer) if up else 0.0
        if up:
            fresh = peer not in self.router.links
            self.router.link_up(peer, 1.0 - quality, self.now_ms())
            if fresh:
                # let the newcomer learn us now rather than at the next periodic announce
                self.router.announce(self.now_ms(), ttl=self.announce_ttl)
        else:
            self.router.link_down(peer)
        self._emit(NeighbourChanged(peer, up, quality))
        self._flush()

    def _flush(self) -> None:
        for frame in self.router.frames_to_send():
            try:
                self.radio.send(frame)
            except StateError:
                self._inc("send_failed")         # radio gone: the router's store re-sends on heal
        self._schedule()

    def _schedule(self) -> None:
        if not self._running:
            return
        t = self.router.next_timer()
        delay = self.housekeeping_s if t is None else min(max((t - self.now_ms()) / 1000.0, 0.001),
                                                          self.housekeeping_s)
        when = self._loop.time() + delay
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        if not self._running:
            return
        try:
            self.router.tick(self.now_ms())
        except Exception:                         # a timer must never die silently
            log.exception("mesh router tick failed")
            self._inc("tick_errors")
        self._flush()

    async def _announce_loop(self) -> None:
        while self._running:
            try:
                self.announce()
            except StateError:
                return
            await asyncio.sleep(self.announce_interval_s)
