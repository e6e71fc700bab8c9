"""Simulated meshes: routers on SimRadios on one discrete-event clock (tests, CLI, demo)."""
from __future__ import annotations

import random
import statistics
from collections import deque
from dataclasses import dataclass, field

from betanet.mesh.radio import Scheduler, SimMedium, SimRadio
from betanet.mesh.router import Delivered, Identity, MeshRouter


class SimNode:
    """A MeshRouter driven by a SimRadio: frames in, frames out, timers on the scheduler."""

    def __init__(self, router: MeshRouter, radio: SimRadio, scheduler: Scheduler) -> None:
        self.router, self.radio, self.scheduler = router, radio, scheduler
        self.delivered: list[tuple[Delivered, float]] = []
        self._timer_at: float | None = None
        radio.on_frame = self._on_frame
        radio.on_neighbour = self._on_neighbour

    def now_ms(self) -> int:
        return round(self.scheduler.now * 1000)

    def _on_neighbour(self, peer: bytes, up: bool) -> None:
        if up:
            self.router.link_up(peer, 1.0 - self.radio.link_quality(peer), self.now_ms())
            self.flush()
        else:
            self.router.link_down(peer)

    def _on_frame(self, frame: bytes, src: bytes) -> None:
        for ev in self.router.receive(frame, src, self.now_ms()):
            if isinstance(ev, Delivered):
                self.delivered.append((ev, self.scheduler.now))
        self.flush()

    def flush(self) -> None:
        for f in self.router.frames_to_send():
            self.radio.send(f)
        t = self.router.next_timer()
        if t is not None:
            when = max(t / 1000.0, self.scheduler.now + 0.001)   # never re-fire at the same instant
            if self._timer_at is None or when < self._timer_at or self._timer_at < self.scheduler.now:
                self._timer_at = when
                self.scheduler.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer_at = None
        self.router.tick(self.now_ms())
        self.flush()


@dataclass
class SimResult:
    nodes: int
    messages: int
    reachable: int                  # (message, node) pairs the topology allows within TTL
    delivered: int
    hops: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    link_writes: int = 0
    frames_sent: int = 0
    energy_j: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def delivery_ratio(self) -> float:
        return self.delivered / self.reachable if self.reachable else 1.0

    @property
    def tx_per_delivered(self) -> float:
        return self.frames_sent / self.delivered if self.delivered else float("inf")

    def summary(self) -> dict:
        return dict(nodes=self.nodes, messages=self.messages, delivery_ratio=round(self.delivery_ratio, 4),
                    mean_hops=round(statistics.fmean(self.hops), 2) if self.hops else 0.0,
                    max_hops=max(self.hops, default=0),
                    mean_latency_ms=round(1000 * statistics.fmean(self.latency_s), 1) if self.latency_s else 0.0,
                    frames_sent=self.frames_sent, tx_per_delivered=round(self.tx_per_delivered, 3),
                    energy_mj_per_delivered=round(1000 * self.energy_j / self.delivered, 4) if self.delivered else 0.0)


class SimMesh:
    """N nodes placed uniformly at random in a square; all routers share the settings
    (`neighbour_index=False`: the medium scans every pair, the reference for the index)."""

    def __init__(self, n: int, *, area_m: float = 100.0, range_m: float = 30.0, loss: float = 0.0,
                 seed: int = 1, neighbour_index: bool = True, **router_kw) -> None:
        self.rng = random.Random(seed)
        self.scheduler = Scheduler()
        self.medium = SimMedium(self.scheduler, range_m=range_m, loss=loss, rng=random.Random(seed + 1),
                                neighbour_index=neighbour_index)
        self.nodes: list[SimNode] = []
        for i in range(n):
            ident = Identity.generate(f"node{i}", self.rng)
            radio = self.medium.add(ident.peer_id, self.rng.uniform(0, area_m), self.rng.uniform(0, area_m))
            router = MeshRouter(ident, rng=random.Random(seed * 1000 + i), **router_kw)
            self.nodes.append(SimNode(router, radio, self.scheduler))
        for node in self.nodes:
            for peer in node.radio.neighbours():
                node.router.link_up(peer, 1.0 - node.radio.link_quality(peer))
        self.by_id = {n.router.me: n for n in self.nodes}

    def hop_distances(self, src: SimNode) -> dict[bytes, int]:
        dist = {src.router.me: 0}
        q = deque([src])
        while q:
            a = q.popleft()
            for pid in a.radio.neighbours():
                if pid not in dist:
                    dist[pid] = dist[a.router.me] + 1
                    q.append(self.by_id[pid])
        return dist

    def announce_all(self, settle_s: float = 1.0) -> None:
        for node in self.nodes:
            node.router.announce(node.now_ms())
            node.flush()
        self.scheduler.run(until=self.scheduler.now + settle_s)

    def broadcast_round(self, messages: int, size: int = 64, ttl: int = 7, gap_s: float = 2.0,
                        progress=None) -> SimResult:
        start_frames = sum(n.radio.energy.frames_sent for n in self.nodes)
        start_writes = self.medium.link_writes
        self.medium.settle_energy()
        start_energy = sum(n.radio.energy.total for n in self.nodes)
        res = SimResult(len(self.nodes), messages, 0, 0)
        sent: list[tuple[SimNode, bytes, float, dict[bytes, int]]] = []
        for _ in range(messages):
            src = self.rng.choice(self.nodes)
            body = self.rng.randbytes(size)
            dist = self.hop_distances(src)
            for node in self.nodes:
                node.delivered.clear()
            t0 = self.scheduler.now
            src.router.broadcast(body, src.now_ms(), ttl=ttl)
            src.flush()
            self.scheduler.run(until=self.scheduler.now + gap_s)
            reach = {pid for pid, d in dist.items() if 0 < d <= ttl}
            res.reachable += len(reach)
            for node in self.nodes:
                got = [(ev, t) for ev, t in node.delivered if ev.packet.payload == body]
                if got and node.router.me in reach:
                    res.delivered += 1
                    ev, t = got[0]
                    res.hops.append(ttl - ev.packet.ttl + 1 if ev.packet.ttl else dist[node.router.me])
                    res.latency_s.append(t - t0)
            sent.append((src, body, t0, dist))
            if progress is not None:
                progress(len(sent), messages, res)
        self.medium.settle_energy()
        res.frames_sent = sum(n.radio.energy.frames_sent for n in self.nodes) - start_frames
        res.link_writes = self.medium.link_writes - start_writes
        res.energy_j = sum(n.radio.energy.total for n in self.nodes) - start_energy
        for node in self.nodes:
            for k, v in node.router.counters.items():
                res.counters[k] = res.counters.get(k, 0) + v
        return res
