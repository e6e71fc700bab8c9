"""Helpers for the node tests: an in-process BLE air (Radio protocol, real time), a TCP
relay that can be cut (blackholed) like a downed interface, and a node factory."""
from __future__ import annotations

import asyncio
import contextlib
import os
import random

from betanet.mesh.radio import Energy
from betanet.mesh.router import Identity as MeshIdentity, MeshRouter
from betanet.node import config as nconfig
from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.link_mesh import MeshLink
from betanet.node.node import Node


class LocalRadio:
    def __init__(self, air: "LocalAir", peer_id: bytes) -> None:
        self.air, self.peer_id = air, peer_id
        self.energy = Energy()
        self.on_frame = None
        self.on_neighbour = None

    def send(self, frame: bytes) -> None:
        self.energy.frames_sent += 1
        self.energy.bytes_sent += len(frame)
        for n in self.neighbours():
            r = self.air.radios[n]
            self.air.frames += 1
            if r.on_frame is not None:
                asyncio.get_running_loop().call_soon(r.on_frame, frame, self.peer_id)

    def neighbours(self) -> list[bytes]:
        return [b for a, b in self.air.edges if a == self.peer_id and frozenset((a, b)) not in self.air.blocked]

    def link_quality(self, peer: bytes) -> float:
        return 1.0


class LocalAir:
    """Radios with neighbour links set by hand; ``set_blocked`` cuts one (a partition)."""

    def __init__(self) -> None:
        self.radios: dict[bytes, LocalRadio] = {}
        self.edges: set[tuple[bytes, bytes]] = set()
        self.blocked: set[frozenset] = set()
        self.frames = 0

    def radio(self, peer_id: bytes) -> LocalRadio:
        r = self.radios[peer_id] = LocalRadio(self, peer_id)
        return r

    def connect(self, a: bytes, b: bytes) -> None:
        self.edges |= {(a, b), (b, a)}

    def set_blocked(self, a: bytes, b: bytes, blocked: bool) -> None:
        (self.blocked.add if blocked else self.blocked.discard)(frozenset((a, b)))
        for x, y in ((a, b), (b, a)):
            r = self.radios.get(x)
            if r is not None and r.on_neighbour is not None:
                r.on_neighbour(y, not blocked)


class CutProxy:
    """A TCP relay in front of a listener. ``cut()`` blackholes it: open connections stop
    carrying bytes and new ones are accepted but never forwarded (what a downed
    interface looks like to the sender: silence, no reset). ``restore()`` undoes it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cutoff = False
        self._pairs: list = []
        self.server = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, r, w) -> None:
        if self.cutoff:
            self._pairs.append((None, w))
            return
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            w.close()
            return
        self._pairs.append((tw, w))

        async def pump(src, dst):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    if self.cutoff:
                        continue              # swallowed: the link is down
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()
        asyncio.ensure_future(pump(r, tw))
        asyncio.ensure_future(pump(tr, w))

    def cut(self) -> None:
        self.cutoff = True

    def restore(self) -> None:
        """Back up; connections that went silent are closed so the sender reconnects."""
        self.cutoff = False
        for a, b in self._pairs:
            for x in (a, b):
                if x is not None:
                    with contextlib.suppress(Exception):
                        x.close()
        self._pairs.clear()

    async def close(self) -> None:
        self.restore()
        self.server.close()


def fast_config(**over) -> dict:
    cfg = nconfig.defaults()
    cfg["routing"].update(hop_timeout_ms=400, ack_timeout_ms=1500, retry_interval_ms=100)
    for section, kv in over.items():
        cfg[section].update(kv)
    return cfg


def make_node(tmp, name: str, *, htx: bool = True, air: LocalAir | None = None, config=None,
              power=None, seed: int = 0) -> Node:
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    ident = Identity.generate()
    peers_holder = []
    cfg = config or fast_config()
    node = Node(ident, os.path.join(d, "store.db"), config=cfg, power=power)
    if htx:
        node.links.append(HtxLink(ident, node.peers, listen="127.0.0.1:0", cert_dir=d, retry_s=0.5,
                                  connect_timeout=0.5))
    if air is not None:
        mid = MeshIdentity.generate(name, random.Random(seed))
        router = MeshRouter(mid, rng=random.Random(seed))
        node.links.append(MeshLink(router, air.radio(router.me), node.peers, announce_s=0.2))
    del peers_holder
    return node


def introduce(nodes, records=None) -> None:
    """Every node learns every other node's record."""
    recs = records or [n.record() for n in nodes]
    for n in nodes:
        for r in recs:
            if r.peer != n.me:
                n.add_peer(r.raw)


async def wait_for(pred, timeout: float = 10.0, step: float = 0.02):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()
