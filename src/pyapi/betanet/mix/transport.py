"""Links between mix endpoints: the :class:`PacketTransport` interface, the bookkeeping of
accepted links every transport shares, and :class:`TcpTransport` (docs/sphinx.md, "Links").

Every link carries the same mix frames, ``BE32(len) ‖ type (1) ‖ data``. A transport
reports frames to ``on_frame(type, data, link)``, ``link`` naming the accepted connection
they came on (the node shares held capacity fairly between links), and updates the
:class:`~betanet.mix.types.MixCounters` given at construction: ``links_opened``,
``links_accepted`` and ``link_errors`` by reason.

Accepted links are bounded (``max_connections``): a link that sends no complete frame
within ``first_frame_timeout`` or none for ``idle_timeout`` is closed, and when the table is
full a new link evicts the one idle longest (never one in the middle of a frame); only when
every link is mid-frame is the new one refused. Refusals are logged at most every 10 s.
"""
from __future__ import annotations

import abc
import asyncio
import collections
import itertools
import logging
import time
from typing import Callable, Hashable

from betanet.mix.ratelog import RateLimitedLog
from betanet.mix.types import MAX_FRAME, TCP_FRAMING, Address, Descriptor, MixCounters, encode_frame

log = logging.getLogger(__name__)

__all__ = ["PacketTransport", "TcpTransport", "FrameHandler", "LinkTable", "read_frames"]

FrameHandler = Callable[[int, bytes, Hashable], None]


class _Accepted:
    """One accepted link: when it opened, its last complete frame, whether a frame is
    being read right now (traffic in flight), and how to close it."""

    __slots__ = ("link_id", "opened", "last", "frames", "busy", "closer", "closing", "peer_key")

    def __init__(self, link_id: int, now: float, closer: Callable[[], None]) -> None:
        self.link_id, self.opened, self.last, self.frames = link_id, now, now, 0
        self.busy, self.closer, self.closing = 0, closer, False
        self.peer_key: bytes | None = None     # the peer's authenticated static key (HTX links)


class LinkTable:
    """Accepted links of one transport: admission with eviction, timeouts (``sweep``)."""

    def __init__(self, max_links: int, first_frame_timeout: float, idle_timeout: float | None,
                 counters: MixCounters, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_links, self.first_frame_timeout = max_links, first_frame_timeout
        self.idle_timeout, self.counters, self.clock = idle_timeout, counters, clock
        self.links: dict[int, _Accepted] = {}
        self._ids = itertools.count(1)
        self._log = RateLimitedLog(log)

    def __len__(self) -> int:
        return len(self.links)

    def admit(self, closer: Callable[[], None]) -> _Accepted | None:
        """Register a new link (evicting the longest-idle one when full), or None."""
        if len(self.links) >= self.max_links:
            idle = [a for a in self.links.values() if not a.busy and not a.closing]
            if not idle:
                self.counters.link_errors["too-many-links"] += 1
                self._log.warning("refused", "refusing a link: %d links open, all busy", len(self.links))
                return None
            victim = min(idle, key=lambda a: a.last)
            self._close(victim, "evicted")
            self._log.warning("evicted", "links full (%d): evicted the longest-idle link", self.max_links)
        a = _Accepted(next(self._ids), self.clock(), closer)
        self.links[a.link_id] = a
        self.counters.links_accepted += 1
        return a

    def peer_key(self, link_id: Hashable) -> bytes | None:
        """The static key the link's peer authenticated; b"" for a link gone already."""
        a = self.links.get(link_id)
        return b"" if a is None else a.peer_key

    def remove(self, a: _Accepted) -> None:
        self.links.pop(a.link_id, None)

    def _close(self, a: _Accepted, reason: str) -> None:
        self.counters.link_errors[reason] += 1
        a.closing = True
        self.links.pop(a.link_id, None)
        a.closer()

    def sweep(self) -> None:
        """Close links that sent nothing in time."""
        now = self.clock()
        for a in list(self.links.values()):
            if a.frames == 0 and now - a.opened > self.first_frame_timeout:
                self._close(a, "first-frame-timeout")
            elif self.idle_timeout is not None and now - a.last > self.idle_timeout:
                self._close(a, "idle-timeout")

    def sweep_interval(self) -> float:
        return max(0.05, min(self.first_frame_timeout, self.idle_timeout or 1e9) / 4)

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval())
            self.sweep()


async def read_frames(reader, max_frame: int, on_frame: FrameHandler, link: _Accepted) -> str:
    """Read frames from anything with ``readexactly`` until it ends; returns why it ended
    ("eof", "bad-frame", or "handler-error" when ``on_frame`` raised, which is logged with its
    traceback). Raises what the reader raises on a broken link."""
    while True:
        try:
            head = await reader.readexactly(4)
        except asyncio.IncompleteReadError as exc:
            return "eof" if not exc.partial else "bad-frame"
        n = int.from_bytes(head, "big")
        if n < 1 or n > max_frame:
            log.info("closing link: frame of %d bytes", n)
            return "bad-frame"
        link.busy += 1
        try:
            data = await reader.readexactly(n)
        except asyncio.IncompleteReadError:
            return "bad-frame"
        finally:
            link.busy -= 1
        link.frames += 1
        link.last = time.monotonic()
        try:
            on_frame(data[0], data[1:], link.link_id)
        except Exception:
            # Our bug, not the peer's doing: say so loudly and end this link only.
            log.exception("closing link: the frame handler raised")
            return "handler-error"


class PacketTransport(abc.ABC):
    """Moves typed mix frames between endpoints.

    ``send_to(peer, ...)`` is the one sending operation; ``send(address, ...)`` reaches an
    endpoint known only by its address, i.e. one that speaks plain framing — every transport
    can do that, so each one stands in for this class."""

    #: the transport kind a :class:`~betanet.mix.types.Descriptor` advertises
    kind: str = TCP_FRAMING

    def __init__(self, counters: MixCounters | None = None) -> None:
        #: shared with the endpoint using the transport (links_opened, link_errors, ...)
        self.counters = counters if counters is not None else MixCounters()

    @property
    def public_key(self) -> bytes:
        """The link-level static public key peers need to reach us (b"" when none)."""
        return b""

    def advertised(self) -> dict:
        """Extra :class:`~betanet.mix.types.Descriptor` fields a dialer needs (htx-web: the
        ticket publication and SPKI pin); valid once started."""
        return {}

    def link_peer_key(self, link: Hashable) -> bytes | None:
        """The static key the peer of accepted link ``link`` proved, or None when this
        transport's links authenticate nobody (plain framing)."""
        return None

    @abc.abstractmethod
    async def start(self, on_frame: FrameHandler) -> Address:
        """Start listening; call ``on_frame(type, data, link)`` for each frame; return the address."""

    @abc.abstractmethod
    async def send_to(self, peer: Descriptor, frame_type: int, data: bytes) -> None:
        """Send one frame to a directory entry (raises OSError when it is unreachable)."""

    async def send(self, address: Address, frame_type: int, data: bytes) -> None:
        """Send one frame to an endpoint known only by its address (plain framing)."""
        await self.send_to(Descriptor.at_address(address), frame_type, data)

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop listening and close every connection."""

    def _count(self, reason: str) -> None:
        self.counters.link_errors[reason] += 1


class TcpTransport(PacketTransport):
    """Length-prefixed frames over TCP, one outgoing connection per peer, reused."""

    kind = TCP_FRAMING

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_frame: int = MAX_FRAME,
                 connect_timeout: float = 5.0, max_connections: int = 1024, *,
                 counters: MixCounters | None = None, first_frame_timeout: float = 10.0,
                 idle_timeout: float | None = 120.0) -> None:
        super().__init__(counters)
        self.host, self.port, self.max_frame = host, port, max_frame
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.accepted = LinkTable(max_connections, first_frame_timeout, idle_timeout, self.counters)
        self._server: asyncio.base_events.Server | None = None
        self._out: dict[Address, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._locks: dict[Address, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._readers: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._on_frame: FrameHandler | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self, on_frame: FrameHandler) -> Address:
        self._on_frame = on_frame
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self._sweeper = asyncio.ensure_future(self.accepted.run_sweeper())
        return self._server.sockets[0].getsockname()[:2]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = self.accepted.admit(writer.close)
        if link is None:
            writer.close()
            return
        task = asyncio.current_task()
        self._readers[task] = writer
        try:
            if await read_frames(reader, self.max_frame, self._on_frame, link) == "bad-frame":
                self._count("bad-frame")
        except ConnectionError:
            pass
        finally:
            self.accepted.remove(link)
            self._readers.pop(task, None)
            writer.close()

    async def send_to(self, peer: Descriptor, frame_type: int, data: bytes) -> None:
        await self.send(peer.address, frame_type, data)

    async def send(self, address: Address, frame_type: int, data: bytes) -> None:
        address = (address[0], int(address[1]))
        async with self._locks[address]:
            conn = self._out.get(address)
            if conn is None or conn[1].is_closing():
                try:
                    conn = await asyncio.wait_for(asyncio.open_connection(*address), self.connect_timeout)
                except (OSError, asyncio.TimeoutError) as exc:
                    self._count("connect")
                    raise ConnectionRefusedError(f"{address[0]}:{address[1]}: {exc}") from exc
                self._out[address] = conn
                self.counters.links_opened += 1
            w = conn[1]
            w.write(encode_frame(frame_type, data))
            try:
                await w.drain()
            except ConnectionError:
                self._out.pop(address, None)
                self._count("lost")
                raise

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for _, w in self._out.values():
            w.close()
        # Closing the sockets ends the reader tasks normally (cancelling them would make
        # asyncio's stream callback log a CancelledError).
        for w in list(self._readers.values()):
            w.close()
        if self._readers:
            await asyncio.wait(list(self._readers), timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
        if self._sweeper is not None:
            await asyncio.gather(self._sweeper, return_exceptions=True)
        self._out.clear()
