"""MTCP (draft-ietf-dtn-mtcpcl): each bundle is one CBOR byte string on a TCP stream.

There is no handshake and no acknowledgment: a bundle counts as sent once the bytes are
handed to TCP (µD3TN, dtn7zero and pyd3tn speak it). :class:`MtcpFramer` is the sans-IO
framing, bounded by ``max_bundle_bytes`` so a hostile length is refused before any buffer
grows; :func:`open_mtcp` / :func:`serve_mtcp` are the asyncio adapter.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from betanet.errors import LimitExceededError, MalformedError, StateError

__all__ = ["MtcpFramer", "MtcpConnection", "MtcpServer", "frame", "open_mtcp", "serve_mtcp",
           "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 4224  # what µD3TN and pyd3tn use by default; MTCP has no registered port
_READ = 1 << 16


def frame(bundle: bytes | bytearray | memoryview) -> bytes:
    """The CBOR byte string (major type 2, shortest definite length) carrying ``bundle``."""
    n = len(bundle)
    if n < 24:
        head = bytes([0x40 | n])
    elif n < 1 << 8:
        head = bytes([0x58, n])
    elif n < 1 << 16:
        head = b"\x59" + struct.pack("!H", n)
    elif n < 1 << 32:
        head = b"\x5a" + struct.pack("!I", n)
    else:
        head = b"\x5b" + struct.pack("!Q", n)
    return head + bytes(bundle)


class MtcpFramer:
    """Incremental decoder of a stream of CBOR byte strings."""

    def __init__(self, max_bundle_bytes: int = 16 << 20) -> None:
        self.max_bundle_bytes = max_bundle_bytes
        self._buf = bytearray()
        self._need: int | None = None  # payload length of the item being read
        self._head = 0
        self.error: MalformedError | LimitExceededError | None = None  # the stream is unusable

    @property
    def partial(self) -> int:
        """Bytes buffered of an incomplete bundle (a stream that ends here lost them)."""
        return len(self._buf)

    def receive_data(self, data: bytes) -> list[bytes]:
        """Feed bytes; returns the complete bundles. Raises :class:`MalformedError` for an item
        that is not a definite-length byte string and :class:`LimitExceededError` for a length
        over ``max_bundle_bytes`` (the stream cannot be resynchronised: close it). Bundles
        complete before the bad item are returned first; the error is then kept in ``error``
        and raised by the next call."""
        if self.error is not None:
            raise self.error
        self._buf += data
        out: list[bytes] = []
        try:
            self._parse(out)
        except (MalformedError, LimitExceededError) as e:
            self.error = e
            if not out:
                raise
        return out

    def _parse(self, out: list[bytes]) -> None:
        while True:
            if self._need is None:
                if not self._buf:
                    break
                ib = self._buf[0]
                major, info = ib >> 5, ib & 0x1F
                if major != 2:
                    raise MalformedError(f"MTCP item is CBOR major type {major}, not a byte string")
                if info < 24:
                    self._head, self._need = 1, info
                elif info <= 27:
                    width = 1 << (info - 24)
                    if len(self._buf) < 1 + width:
                        break
                    self._head = 1 + width
                    self._need = int.from_bytes(self._buf[1:1 + width], "big")
                else:
                    raise MalformedError("MTCP item is not a definite-length byte string")
                if self._need > self.max_bundle_bytes:
                    raise LimitExceededError(f"MTCP bundle of {self._need} bytes exceeds "
                                             f"{self.max_bundle_bytes}")
            end = self._head + self._need
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[self._head:end]))
            del self._buf[:end]
            self._need = None


class MtcpConnection:
    """One MTCP connection. Sending and receiving both work on either end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 max_bundle_bytes: int = 16 << 20,
                 on_bundle: Callable[[bytes], Awaitable[Any]] | None = None,
                 queue_size: int = 64) -> None:
        self._reader, self._writer = reader, writer
        self._framer = MtcpFramer(max_bundle_bytes)
        self._on_bundle = on_bundle
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size)
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.bundles_sent = self.bundles_received = 0
        self.bytes_sent = self.bytes_received = 0
        self.started_at = time.monotonic()
        self._task = asyncio.create_task(self._read_loop(), name="mtcp-read")

    async def _read_loop(self) -> None:
        reason = "connection closed"
        try:
            while True:
                try:
                    data = await self._reader.read(_READ)
                except (ConnectionError, OSError) as e:
                    reason = f"read failed: {e}"
                    break
                if not data:
                    if self._framer.partial:
                        reason = f"closed inside a bundle ({self._framer.partial} bytes dropped)"
                        log.info("mtcp: %s", reason)
                    break
                self.bytes_received += len(data)
                try:
                    bundles = self._framer.receive_data(data)
                except (MalformedError, LimitExceededError) as e:
                    reason = str(e)
                    log.warning("mtcp: closing %s: %s", self.peer_address, e)
                    break
                for b in bundles:
                    self.bundles_received += 1
                    if self._on_bundle is not None:
                        await self._on_bundle(b)
                    else:
                        await self._queue.put(b)  # full queue: stop reading (backpressure)
                if self._framer.error is not None:
                    reason = str(self._framer.error)
                    log.warning("mtcp: closing %s: %s", self.peer_address, reason)
                    break
        finally:
            self.close_reason = reason
            self._writer.close()
            self.closed.set()
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                pass

    @property
    def peer_address(self) -> Any:
        return self._writer.get_extra_info("peername")

    async def send_bundle(self, data: bytes | bytearray | memoryview) -> None:
        """Write one bundle; returns when TCP accepted it (MTCP has no acknowledgment)."""
        if self.closed.is_set() or self._writer.is_closing():
            raise StateError(f"MTCP connection closed ({self.close_reason})")
        msg = frame(data)
        self._writer.write(msg)
        await self._writer.drain()
        self.bundles_sent += 1
        self.bytes_sent += len(msg)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        while True:
            b = await self._queue.get()
            if b is None:
                return
            yield b

    async def close(self) -> None:
        self._writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def open_mtcp(host: str, port: int = DEFAULT_PORT, *, timeout: float = 30.0,
                    **kw: Any) -> MtcpConnection:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    return MtcpConnection(reader, writer, **kw)


class MtcpServer:
    def __init__(self, max_connections: int, conn_kw: dict[str, Any]) -> None:
        self.max_connections = max_connections
        self._kw = conn_kw
        self.connections: set[MtcpConnection] = set()
        self._server: asyncio.AbstractServer | None = None
        self.refused_connections = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= self.max_connections:
            self.refused_connections += 1
            writer.close()
            return
        conn = MtcpConnection(reader, writer, **self._kw)
        self.connections.add(conn)
        try:
            await conn.closed.wait()
        finally:
            self.connections.discard(conn)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(c.close() for c in list(self.connections)), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def serve_mtcp(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                     on_bundle: Callable[[bytes], Awaitable[Any]],
                     max_connections: int = 64, **kw: Any) -> MtcpServer:
    """Listen for MTCP peers; every received bundle is passed to ``on_bundle``."""
    srv = MtcpServer(max_connections, dict(kw, on_bundle=on_bundle))
    srv._server = await asyncio.start_server(srv._on_connect, host, port)
    return srv
