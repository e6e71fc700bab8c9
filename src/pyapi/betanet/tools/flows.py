"""What ``betanet.tools.relay`` forwards: one ``TcpFlow`` per relayed TCP connection, one
``UdpMapping`` per UDP client address (like a NAT entry) behind a ``UdpListener``, and the
``Forwarder`` that delivers their chunks in order at the times the link's ``Pipe``
(``betanet.tools.shaper``) gave them. The ``Relay`` owns the link: its settings, pipes,
counters and tasks.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Callable

from betanet._log import escape
from betanet.tools.shaper import Pipe

if TYPE_CHECKING:
    from betanet.tools.relay import Relay

__all__ = ["Forwarder", "TcpFlow", "UdpMapping", "UdpListener", "splice"]

log = logging.getLogger("betanet.relay")

READ_HIGH = 256 * 1024      # bytes of one TCP direction held before we stop reading its source
UDP_IDLE_S = 60.0           # a UDP mapping with no traffic this long is closed
MAX_UDP_MAPPINGS = 1024


async def splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Copy bytes both ways between two connections, unshaped, until both directions end
    (a reset counts as an end); each writer is closed when its direction ends. For taps that
    look at the first bytes and then get out of the way (the demo's ClientHello recorder,
    tools/chrome_capture.py)."""
    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()
    await asyncio.gather(pipe(a[0], b[1]), pipe(b[0], a[1]))


class Forwarder:
    """Delivers chunks in order at the times a ``Pipe`` gave them; holds them while cut."""

    def __init__(self, relay: "Relay", write: Callable[[bytes], None],
                 on_drain: Callable[[], None] | None = None) -> None:
        self._relay = relay
        self._write = write
        self._on_drain = on_drain
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def push(self, at: float, data: bytes) -> None:
        self._queue.append((at, data))
        self.queued += len(data)
        self.kick()

    def kick(self) -> None:
        if self._timer is None and self._queue and not self.closed and not self._relay.settings.cut:
            self._timer = self._relay.loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        now = self._relay.loop.time()
        while self._queue and self._queue[0][0] <= now and not self._relay.settings.cut:
            _, data = self._queue.popleft()
            self.queued -= len(data)
            if not self.closed:
                self._write(data)
        if self._on_drain is not None and self.queued < READ_HIGH // 2:
            self._on_drain()
        self.kick()

    def drop_queued(self) -> int:
        """Forget what is waiting for its delivery time; returns how many chunks that was."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dropped = len(self._queue)
        self._queue.clear()
        self.queued = 0
        return dropped

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.queued = 0


class TcpFlow:
    """One relayed TCP connection: client side accepted, upstream connected when the link
    allows; bytes each way pass through the relay's pipes."""

    def __init__(self, relay: "Relay", target: tuple[str, int], client: asyncio.StreamReader,
                 client_w: asyncio.StreamWriter) -> None:
        self.relay = relay
        self.target = target
        self.client_r, self.client_w = client, client_w
        self.up_w: asyncio.StreamWriter | None = None
        self.forwarders: list[Forwarder] = []

    async def run(self) -> None:
        r = self.relay
        try:
            await r.link_usable()            # a cut link: the connect waits (as a SYN would)
            up_r, self.up_w = await asyncio.wait_for(asyncio.open_connection(*self.target), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            r.counters["tcp_upstream_failed"] += 1
            suppressed = r.throttle.allow()
            if suppressed is not None:
                log.info("relay: upstream %s:%d failed: %s%s", *self.target, escape(exc),
                         f" ({suppressed} similar suppressed)" if suppressed else "")
            self.abort()
            return
        fwd_up = Forwarder(r, self.up_w.write)
        fwd_down = Forwarder(r, self.client_w.write)
        self.forwarders = [fwd_up, fwd_down]
        pumps = [asyncio.ensure_future(self._pump(self.client_r, r.up, fwd_up, self.up_w)),
                 asyncio.ensure_future(self._pump(up_r, r.down, fwd_down, self.client_w))]
        clean = False
        try:
            # both directions end with EOF (a clean close), or one fails and both go
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            clean = all(t.done() and not t.cancelled() and t.exception() is None for t in pumps)
        finally:
            for t in pumps:
                t.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            fwd_up.close()
            fwd_down.close()
            if clean:
                for w in (self.client_w, self.up_w):
                    w.close()
            else:
                self.abort()

    async def _pump(self, reader: asyncio.StreamReader, pipe: Pipe, fwd: Forwarder,
                    dest: asyncio.StreamWriter) -> None:
        r = self.relay
        drained = asyncio.Event()
        fwd._on_drain = drained.set
        while True:
            await r.link_usable()
            data = await reader.read(65536)
            if not data:
                # EOF: pass it on once everything before it has been delivered
                while fwd.queued and not fwd.closed:
                    drained.clear()
                    await drained.wait()
                if dest.can_write_eof():
                    dest.write_eof()
                return
            r.seen(pipe, data)
            at = pipe.admit(len(data), r.loop.time(), droppable=False)
            if at is None:                   # cut between the wait and the read: hold it
                at = r.loop.time()
            fwd.push(at, data)
            while fwd.queued >= READ_HIGH and not fwd.closed:
                drained.clear()
                await drained.wait()
            await dest.drain()

    def abort(self) -> None:
        for w in (self.client_w, self.up_w):
            if w is not None and not w.is_closing():
                w.transport.abort()


class UdpMapping(asyncio.DatagramProtocol):
    """The upstream socket of one client address (like a NAT entry)."""

    def __init__(self, relay: "Relay", listener: "UdpListener", client: tuple) -> None:
        self.relay, self.listener, self.client = relay, listener, client
        self.transport: asyncio.DatagramTransport | None = None
        self.fwd_up: Forwarder | None = None
        self.fwd_down = Forwarder(relay, lambda d: listener.transport.sendto(d, client))
        self.last = relay.loop.time()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.fwd_up = Forwarder(self.relay, transport.sendto)

    def datagram_received(self, data: bytes, addr) -> None:
        self.last = self.relay.loop.time()
        self.relay.forward_datagram(self.relay.down, self.fwd_down, data)

    def error_received(self, exc) -> None:
        self.relay.counters["udp_errors"] += 1

    def close(self) -> None:
        self.fwd_down.close()
        if self.fwd_up is not None:
            self.fwd_up.close()
        if self.transport is not None:
            self.transport.close()


class UdpListener(asyncio.DatagramProtocol):
    def __init__(self, relay: "Relay", target: tuple[str, int]) -> None:
        self.relay, self.target = relay, target
        self.transport: asyncio.DatagramTransport | None = None
        self.mappings: dict[tuple, UdpMapping] = {}
        self._opening: dict[tuple, list[bytes]] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        m = self.mappings.get(addr)
        if m is not None and m.fwd_up is not None:
            m.last = self.relay.loop.time()
            self.relay.forward_datagram(self.relay.up, m.fwd_up, data)
        elif addr in self._opening:
            self._opening[addr].append(data)
        elif len(self.mappings) + len(self._opening) >= MAX_UDP_MAPPINGS:
            self.relay.counters["udp_mappings_refused"] += 1
        else:
            self._opening[addr] = [data]
            self.relay.spawn(self._open(addr))

    async def _open(self, addr) -> None:
        r = self.relay
        try:
            _, m = await r.loop.create_datagram_endpoint(lambda: UdpMapping(r, self, addr),
                                                         remote_addr=self.target)
        except OSError as exc:
            if r.throttle.allow() is not None:
                log.info("relay: udp upstream %s:%d failed: %s", *self.target, escape(exc))
            self._opening.pop(addr, None)
            return
        self.mappings[addr] = m
        for data in self._opening.pop(addr, []):
            r.forward_datagram(r.up, m.fwd_up, data)

    def expire(self, now: float) -> None:
        for addr, m in list(self.mappings.items()):
            if now - m.last > UDP_IDLE_S:
                m.close()
                del self.mappings[addr]

    def close(self) -> None:
        for m in self.mappings.values():
            m.close()
        self.mappings.clear()
        if self.transport is not None:
            self.transport.close()
