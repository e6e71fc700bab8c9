"""The one convergence-layer interface, and its TCPCLv4, MTCP and UDP implementations.

A :class:`ConvergenceLayer` is a link to one peer: ``open_contact()`` / ``close_contact()``,
``send(bundle)`` (returns when the link's acknowledgment says the peer has it — see
``acknowledged``), ``received()`` (bundles the peer sent over this link), and
``metrics()`` for the Navigator (RTT, throughput, bytes, up/down; ``observe_kwargs()`` maps
them onto ``Navigator.observe``). Bundles are opaque bytes here.
"""
from __future__ import annotations

import abc
import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from betanet.dtn.fragments import FragmentCollector, split
from betanet.dtn.mtcp import MtcpConnection, open_mtcp
from betanet.dtn.tcpcl.aio import TcpclClient, TcpclConnection
from betanet.errors import InvalidArgumentError, LimitExceededError, StateError

__all__ = ["LinkMetrics", "ConvergenceLayer", "TcpclLink", "MtcpLink", "UdpLink",
           "UDP_MAX_BUNDLE", "UDP_IPV4_OVERHEAD", "path_mtu"]

log = logging.getLogger(__name__)

UDP_MAX_BUNDLE = 65507  # largest IPv4 UDP payload
UDP_IPV4_OVERHEAD = 28  # IPv4 header (20, no options) + UDP header (8)
_IP_MTU = getattr(socket, "IP_MTU", 14)  # Linux: the route's path MTU of a connected socket


def path_mtu(host: str, port: int, default: int = 1500) -> int:
    """The kernel's path MTU toward (host, port) (Linux ``IP_MTU`` of a connected UDP
    socket: the route's MTU, lowered by what path-MTU discovery learned); ``default``
    where the platform does not say."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return int(s.getsockopt(socket.IPPROTO_IP, _IP_MTU))
    except OSError:
        return default


@dataclass(frozen=True)
class LinkMetrics:
    up: bool
    rtt: float | None             # seconds, smoothed; None before the first sample
    throughput: float | None      # acknowledged bytes per second since the contact opened
    bytes_sent: int
    bytes_received: int
    bundles_sent: int
    bundles_received: int
    failures: int                 # sends that failed or had to be retried
    since: float                  # monotonic time the contact opened (0 if never)

    def observe_kwargs(self) -> dict[str, float]:
        """Keyword arguments for ``Navigator.observe`` (latency_ms, failure, capacity)."""
        out: dict[str, float] = {}
        if self.rtt is not None:
            out["latency_ms"] = self.rtt * 1000.0
        attempts = self.bundles_sent + self.failures
        if attempts:
            out["failure"] = self.failures / attempts
        if self.throughput is not None:
            out["capacity"] = self.throughput
        return out


class ConvergenceLayer(abc.ABC):
    """A link to one peer over one convergence layer."""

    name: str = "cla"
    acknowledged: bool = False   # True if send() returning means the peer acknowledged

    def __init__(self) -> None:
        self._rx: asyncio.Queue[bytes] = asyncio.Queue(maxsize=256)
        self._opened_at = 0.0
        self.failures = 0

    @abc.abstractmethod
    async def open_contact(self) -> None: ...

    @abc.abstractmethod
    async def close_contact(self) -> None: ...

    @abc.abstractmethod
    async def send(self, bundle: bytes) -> None: ...

    @property
    @abc.abstractmethod
    def up(self) -> bool: ...

    @abc.abstractmethod
    def metrics(self) -> LinkMetrics: ...

    async def received(self) -> AsyncIterator[bytes]:
        """Bundles the peer sends over this link, in arrival order."""
        while True:
            yield await self._rx.get()

    async def _deliver(self, bundle: bytes) -> None:
        await self._rx.put(bundle)

    def _throughput(self, acked_bytes: int) -> float | None:
        if not self._opened_at or not acked_bytes:
            return None
        return acked_bytes / max(time.monotonic() - self._opened_at, 1e-6)

    async def __aenter__(self) -> ConvergenceLayer:
        await self.open_contact()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_contact()


class TcpclLink(ConvergenceLayer):
    """TCPCLv4: ``send`` returns after the final XFER_ACK; a session that drops mid-transfer is
    replaced and the transfer retried (``retried``)."""

    name = "tcpcl"
    acknowledged = True

    def __init__(self, host: str, port: int = 4556, **session_kw: Any) -> None:
        super().__init__()
        on_bundle = session_kw.pop("on_bundle", None)
        self._client = TcpclClient(host, port, on_bundle=on_bundle or self._deliver, **session_kw)

    @property
    def retried(self) -> int:
        return self._client.retried

    @property
    def connection(self) -> TcpclConnection | None:
        return self._client.conn

    async def open_contact(self) -> None:
        await self._client.open()
        self._opened_at = time.monotonic()

    async def close_contact(self) -> None:
        await self._client.close()

    @property
    def sessions_opened(self) -> int:
        return self._client.sessions_opened

    async def send(self, bundle: bytes, *, wait: str = "acked") -> None:
        """``wait="queued"`` pipelines (returns once the link holds the bundle; see
        :meth:`flush`), ``"acked"`` returns at the final XFER_ACK."""
        try:
            await self._client.send(bundle, wait=wait)
        except Exception:
            self.failures += 1
            raise

    async def flush(self) -> None:
        """Wait until every bundle sent is acknowledged (raises if some could not be)."""
        await self._client.flush()

    @property
    def up(self) -> bool:
        c = self._client.conn
        return c is not None and not c.closed.is_set()

    def metrics(self) -> LinkMetrics:
        c = self._client.conn
        t = self._client.totals()
        return LinkMetrics(self.up, c.rtt if c else None, self._throughput(t["bytes_acked"]),
                           t["bytes_sent"], t["bytes_received"], t["bundles_sent"],
                           t["bundles_received"], self.failures + self._client.retried,
                           self._opened_at)


class MtcpLink(ConvergenceLayer):
    """MTCP: no acknowledgment; ``send`` returns when TCP took the bytes."""

    name = "mtcp"
    acknowledged = False

    def __init__(self, host: str, port: int = 4224, **kw: Any) -> None:
        super().__init__()
        self.host, self.port, self._kw = host, port, kw
        self._conn: MtcpConnection | None = None

    async def open_contact(self) -> None:
        if self._conn is None or self._conn.closed.is_set():
            self._conn = await open_mtcp(self.host, self.port, on_bundle=self._deliver, **self._kw)
            self._opened_at = time.monotonic()

    async def close_contact(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def send(self, bundle: bytes) -> None:
        if not self.up:
            await self.open_contact()
        assert self._conn is not None
        try:
            await self._conn.send_bundle(bundle)
        except Exception:
            self.failures += 1
            raise

    @property
    def up(self) -> bool:
        return self._conn is not None and not self._conn.closed.is_set()

    def metrics(self) -> LinkMetrics:
        c = self._conn
        return LinkMetrics(self.up, None, self._throughput(c.bytes_sent if c else 0),
                           c.bytes_sent if c else 0, c.bytes_received if c else 0,
                           c.bundles_sent if c else 0, c.bundles_received if c else 0,
                           self.failures, self._opened_at)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, link: UdpLink) -> None:
        self.link = link

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.link._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.link.failures += 1
        log.debug("udp cla: %s", exc)


class UdpLink(ConvergenceLayer):
    """UDP: one bundle per datagram, no acknowledgment. A bundle larger than one datagram
    (``max_bundle``; by default the path MTU toward the peer — ``mtu``, or the kernel's
    estimate — minus 28 header bytes) is sent as RFC 9171 §5.8 fragments made by the core;
    the receiving link reassembles them (:class:`~betanet.dtn.fragments.FragmentCollector`:
    bounded, and what does not complete within ``reassembly_timeout`` is handed up as
    fragments, never dropped). Bytes over the limit that are not a fragmentable bundle are
    refused with :class:`LimitExceededError`. Datagrams from addresses other than the peer
    are dropped and counted (``dropped``)."""

    name = "udp"
    acknowledged = False

    def __init__(self, host: str, port: int, *, local: tuple[str, int] = ("127.0.0.1", 0),
                 max_bundle: int | None = None, mtu: int | None = None,
                 reassembly_timeout: float = 30.0, reassembly_bytes: int = 16 << 20,
                 on_bundle: Callable[[bytes], Awaitable[Any]] | None = None) -> None:
        super().__init__()
        if max_bundle is not None and not 1 <= max_bundle <= UDP_MAX_BUNDLE:
            raise InvalidArgumentError(f"max_bundle must be 1..{UDP_MAX_BUNDLE}")
        if mtu is not None and not UDP_IPV4_OVERHEAD < mtu <= 65535:
            raise InvalidArgumentError("mtu must be 29..65535")
        self.peer = (host, port)
        self.local = local
        self.mtu = mtu
        self.max_bundle = max_bundle if max_bundle is not None else (
            min(mtu - UDP_IPV4_OVERHEAD, UDP_MAX_BUNDLE) if mtu is not None else UDP_MAX_BUNDLE)
        self._auto_size = max_bundle is None and mtu is None
        self._on_bundle = on_bundle
        self._transport: asyncio.DatagramTransport | None = None
        self.bytes_sent = self.bytes_received = 0
        self.bundles_sent = self.bundles_received = 0
        self.fragments_sent = 0
        self.dropped = 0
        self.collector = FragmentCollector(timeout=reassembly_timeout, max_bytes=reassembly_bytes)
        self._expiry: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task] = set()
        self._peer_addr: tuple[str, int] | None = None

    @property
    def local_address(self) -> tuple[str, int]:
        if self._transport is None:
            raise StateError("UDP link not open")
        return self._transport.get_extra_info("sockname")[:2]

    async def open_contact(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(*self.peer, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        self._peer_addr = infos[0][4][:2]
        if self._auto_size:  # the path MTU as the kernel knows it now
            self.mtu = await loop.run_in_executor(None, path_mtu, *self._peer_addr)
            self.max_bundle = min(self.mtu - UDP_IPV4_OVERHEAD, UDP_MAX_BUNDLE)
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=self.local, family=socket.AF_INET)
        sock = self._transport.get_extra_info("socket")
        try:  # room for the fragments of a few large bundles (the kernel may cap it)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        self._opened_at = time.monotonic()

    async def close_contact(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        if tuple(addr[:2]) != self._peer_addr:
            self.dropped += 1
            return
        self.bytes_received += len(data)
        for bundle in self.collector.add(data, time.monotonic()):
            self._hand_up(bundle)
        if self.collector.held_bytes and self._expiry is None:
            self._expiry = asyncio.get_running_loop().call_later(self.collector.timeout,
                                                                 self._expire)

    def _expire(self) -> None:
        self._expiry = None
        for bundle in self.collector.expire(time.monotonic()):
            self._hand_up(bundle)
        if self.collector.held_bytes and self._transport is not None:
            self._expiry = asyncio.get_running_loop().call_later(1.0, self._expire)

    def _hand_up(self, data: bytes) -> None:
        self.bundles_received += 1
        handler = self._on_bundle or self._deliver
        if len(self._pending) >= 256 or (self._on_bundle is None and self._rx.full()):
            self.dropped += 1  # nobody keeps up: drop, counted, never grow without bound
            return
        task = asyncio.ensure_future(handler(data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def send(self, bundle: bytes) -> None:
        if self._transport is None:
            await self.open_contact()
        try:
            datagrams = split(bytes(bundle), self.max_bundle)
        except LimitExceededError:
            self.failures += 1
            raise
        assert self._transport is not None
        for i, d in enumerate(datagrams):
            if i and not i % 16:
                # a burst of fragments must not outrun the receiver's socket buffer: let
                # the loop run (and the kernel drain our send buffer) between batches
                await asyncio.sleep(0)
                if self._transport is None:
                    raise StateError("UDP link closed while sending")
            self._transport.sendto(d, self._peer_addr)
            self.bytes_sent += len(d)
        self.bundles_sent += 1
        if len(datagrams) > 1:
            self.fragments_sent += len(datagrams)

    @property
    def up(self) -> bool:
        return self._transport is not None

    def metrics(self) -> LinkMetrics:
        return LinkMetrics(self.up, None, self._throughput(self.bytes_sent), self.bytes_sent,
                           self.bytes_received, self.bundles_sent, self.bundles_received,
                           self.failures, self._opened_at)
