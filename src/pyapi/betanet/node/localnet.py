"""A small network on one machine, in real time: an in-process BLE air (``LocalAir``, radios
that implement ``betanet.mesh.radio.Radio``, neighbour links set by hand, cut with
``set_blocked``) and a TCP relay that can be cut like a downed interface (``CutProxy``).
The node tests, the node benchmark and the demo use them; across processes the mesh uses
the cross-process air (``betanet.mesh.air``)."""
from __future__ import annotations

import asyncio
import contextlib

from betanet.mesh.radio import Energy

__all__ = ["LocalAir", "LocalRadio", "CutProxy"]


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
