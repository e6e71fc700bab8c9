"""asyncio adapter for the TCPCLv4 session: it only moves bytes, runs TLS and timers.

- :func:`open_session` (active entity) and :func:`serve` (passive entity) return
  :class:`TcpclConnection` objects once SESS_INIT negotiation finished.
- ``await conn.send_bundle(data)`` returns when the peer's final XFER_ACK covers the whole
  bundle; if the session drops first it raises :class:`SessionClosedError` and the bundle is
  listed in ``conn.unacknowledged()``. :class:`TcpclClient` retries those on the next session.
- Received bundles go to ``on_bundle(data)`` (awaited before the final XFER_ACK: store the
  bundle there to make the acknowledgment mean "durable"), or to ``async for data in conn``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl as _ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from betanet.dtn.tcpcl.events import (BundleReceived, Event, RefuseReason, SessionClosed,
                                      SessionEstablished, SessTermReason, StartTls,
                                      TransferAcknowledged, TransferRefused)
from betanet.dtn.tcpcl.protocol import Session, SessionConfig
from betanet.errors import (BetanetError, LimitExceededError, MalformedError, ProtocolError,
                            StateError)

__all__ = ["TcpclConnection", "TcpclServer", "TcpclClient", "SessionClosedError",
           "TransferRefusedError", "open_session", "serve", "client_context", "server_context",
           "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 4556
_READ = 1 << 16

OnBundle = Callable[[bytes], Awaitable[Any]]


class SessionClosedError(StateError):
    """The session closed before the transfer was fully acknowledged."""


class TransferRefusedError(ProtocolError):
    """The peer refused the transfer (``reason`` is the RFC 9174 XFER_REFUSE code)."""

    def __init__(self, message: str, reason: int) -> None:
        super().__init__(message)
        self.reason = reason


def client_context(cafile: str | None = None, certfile: str | None = None,
                   keyfile: str | None = None, verify: bool = True) -> _ssl.SSLContext:
    """TLS 1.3 client context for the active entity; verification on unless ``verify=False``.
    RFC 9174 §4.4.1 asks the active entity for a client certificate: pass ``certfile``."""
    ctx = _ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_3
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


def server_context(certfile: str, keyfile: str | None = None, cafile: str | None = None,
                   require_client_cert: bool = True) -> _ssl.SSLContext:
    """TLS 1.3 server context for the passive entity; it requests and (with ``cafile``)
    verifies the client certificate, as RFC 9174 §4.4.1 asks."""
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(certfile, keyfile)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = _ssl.CERT_REQUIRED if require_client_cert else _ssl.CERT_OPTIONAL
    return ctx


_REFUSE_ERRORS: dict[int, type[BetanetError]] = {
    RefuseReason.NO_RESOURCES: LimitExceededError,
    RefuseReason.NOT_ACCEPTABLE: MalformedError,
    RefuseReason.EXTENSION_FAILURE: MalformedError,
}


class TcpclConnection:
    """One TCPCLv4 session over an asyncio stream. Create with :func:`open_session` or get one
    from :func:`serve`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 active: bool, config: SessionConfig, ssl: _ssl.SSLContext | None = None,
                 server_hostname: str | None = None, on_bundle: OnBundle | None = None,
                 window: int = 32, max_pending_bytes: int = 8 << 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reader, self._writer = reader, writer
        self._clock = clock
        self.session = Session(active=active, config=config, now=clock())
        self._ssl, self._server_hostname = ssl, server_hostname
        self._on_bundle = on_bundle
        self._window = max(1, window)
        self._max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0
        self._acks: deque[tuple[int, int, asyncio.Future]] = deque()
        self._acks_added = asyncio.Event()
        self._acks_progress = asyncio.Event()
        self._flush_scheduled = False
        self._received: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=self._window)
        self._sending: dict[int, tuple[asyncio.Future, bytes, float]] = {}
        self._established: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._unacked: list[bytes] = []
        # link measurements
        self.rtt: float | None = None          # EWMA of send -> final XFER_ACK, small bundles
        self.bundles_sent = 0
        self.bundles_received = 0
        self.bytes_acked = 0
        self.started_at = clock()
        self._tasks = [asyncio.create_task(self._read_loop(), name="tcpcl-read"),
                       asyncio.create_task(self._ack_pump(), name="tcpcl-ack"),
                       asyncio.create_task(self._ticker(), name="tcpcl-tick")]
        self._flush()

    # ---- properties ---------------------------------------------------------------------
    @property
    def peer_node_id(self) -> str:
        return self.session.peer_node_id

    @property
    def tls(self) -> bool:
        return self.session.tls

    @property
    def peer_address(self) -> Any:
        return self._writer.get_extra_info("peername")

    def unacknowledged(self) -> list[bytes]:
        """Bundles sent on this session that were not fully acknowledged when it closed."""
        return list(self._unacked)

    async def wait_established(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.shield(self._established), timeout)

    # ---- byte movement ------------------------------------------------------------------
    def _flush_soon(self) -> None:
        # Writes of one event-loop iteration (acks, small bundles) leave as one TLS record
        # and one syscall instead of one each.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _read_loop(self) -> None:
        try:
            while not self.session.closed:
                try:
                    data = await self._reader.read(_READ)
                except (ConnectionError, OSError, _ssl.SSLError) as e:
                    log.debug("tcpcl read failed: %s", e)
                    data = b""
                if not data:
                    await self._handle(self.session.connection_lost(self._clock()))
                    break
                await self._handle(self.session.receive_data(data, self._clock()))
                self._flush()
                # A peer that does not read our acks must not grow our write buffer: stop
                # reading from it until the buffer drains.
                try:
                    await self._writer.drain()
                except (ConnectionError, OSError):
                    pass
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not leave the peer hanging
            log.exception("tcpcl session failed")
            self.session.connection_lost(self._clock())
            self._finish(f"internal error: {e}")
        finally:
            if not self.closed.is_set():
                self._finish(self.session.close_reason or "connection lost")

    async def _handle(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, BundleReceived):
                await self._accept(ev)
            elif isinstance(ev, TransferAcknowledged):
                if ev.complete:
                    entry = self._sending.pop(ev.transfer_id, None)
                    if entry is not None:
                        fut, data, t0 = entry
                        self.bundles_sent += 1
                        self.bytes_acked += len(data)
                        if len(data) <= 4096:
                            sample = self._clock() - t0
                            self.rtt = sample if self.rtt is None else 0.875 * self.rtt + 0.125 * sample
                        if not fut.done():
                            fut.set_result(None)
            elif isinstance(ev, TransferRefused):
                entry = self._sending.pop(ev.transfer_id, None)
                if entry is not None and not entry[0].done():
                    if ev.reason == RefuseReason.COMPLETED:  # the peer already has it
                        entry[0].set_result(None)
                    else:
                        cls = _REFUSE_ERRORS.get(ev.reason, TransferRefusedError)
                        msg = f"peer refused the transfer (reason {ev.reason})"
                        entry[0].set_exception(TransferRefusedError(msg, ev.reason)
                                               if cls is TransferRefusedError else cls(msg))
            elif isinstance(ev, StartTls):
                await self._start_tls(ev.server_side)
            elif isinstance(ev, SessionEstablished):
                log.debug("tcpcl session with %r established (keepalive %d, tls %s)",
                          ev.peer_node_id, ev.keepalive, ev.tls)
                if not self._established.done():
                    self._established.set_result(ev)
            elif isinstance(ev, SessionClosed):
                self._flush()
                self._finish(ev.reason)

    async def _start_tls(self, server_side: bool) -> None:
        if self._ssl is None:  # cannot happen: can_tls is only set with a context
            raise StateError("TLS negotiated without an SSL context")
        self._flush()
        try:
            await self._writer.start_tls(
                self._ssl, server_hostname=None if server_side else self._server_hostname)
        except (_ssl.SSLError, ConnectionError, OSError) as e:
            log.info("tcpcl TLS handshake failed: %s", e)
            self.session.connection_lost(self._clock())
            self._finish(f"TLS handshake failed: {e}")
            return
        await self._handle(self.session.tls_established(self._clock()))
        self._flush()

    async def _accept(self, ev: BundleReceived) -> None:
        # Backpressure: the read loop waits here while the window of unacknowledged received
        # bundles is full, so a fast sender cannot make us buffer more than window bundles.
        while self._acks and (len(self._acks) >= self._window
                              or self._pending_bytes > self._max_pending_bytes):
            self._acks_progress.clear()
            await self._acks_progress.wait()
        self._pending_bytes += len(ev.data)
        if self._on_bundle is not None:
            fut = asyncio.ensure_future(self._on_bundle(ev.data))
        else:
            fut = asyncio.ensure_future(self._received.put(ev.data))
        self._acks.append((ev.transfer_id, len(ev.data), fut))
        self._acks_added.set()

    async def _ack_pump(self) -> None:
        while True:
            while not self._acks:
                self._acks_added.clear()
                await self._acks_added.wait()
            tid, size, fut = self._acks[0]
            try:
                if fut.done():
                    fut.result()
                else:  # shield: closing the session must not cancel the application's store
                    await asyncio.shield(fut)
                ok, reason = True, 0
            except asyncio.CancelledError:
                raise
            except LimitExceededError as e:
                ok, reason = False, RefuseReason.NO_RESOURCES
                log.info("tcpcl: refused transfer %d: %s", tid, e)
            except MalformedError as e:
                ok, reason = False, RefuseReason.NOT_ACCEPTABLE
                log.info("tcpcl: refused transfer %d: %s", tid, e)
            except Exception as e:
                ok, reason = False, RefuseReason.UNKNOWN
                log.warning("tcpcl: bundle handler failed on transfer %d: %s", tid, e)
            self._acks.popleft()
            self._pending_bytes -= size
            if ok:
                self.bundles_received += 1
            if not self.session.closed:
                if ok:
                    events = self.session.ack_transfer(tid)
                else:
                    events = self.session.refuse_transfer(tid, reason)
                if events:
                    await self._handle(events)
                self._flush_soon()
            self._acks_progress.set()

    async def _ticker(self) -> None:
        while not self.session.closed:
            await asyncio.sleep(1.0)
            await self._handle(self.session.tick(self._clock()))
            self._flush()

    def _finish(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        for tid in sorted(self._sending):
            fut, data, _ = self._sending[tid]
            self._unacked.append(data)
            if not fut.done():
                fut.set_exception(SessionClosedError(f"session closed ({reason}) before transfer "
                                                     f"{tid} was acknowledged"))
        self._sending.clear()
        if not self._established.done():
            self._established.set_exception(SessionClosedError(f"session not established: {reason}"))
            self._established.exception()  # retrieved: nobody may be waiting
        try:
            self._received.put_nowait(None)
        except asyncio.QueueFull:
            pass
        self._writer.close()
        self.closed.set()
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current and t.get_name() != "tcpcl-read":
                t.cancel()
        log.debug("tcpcl session closed: %s", reason)

    # ---- public API ---------------------------------------------------------------------
    async def send_bundle(self, data: bytes | bytearray | memoryview) -> None:
        """Send one bundle; returns when the peer acknowledged all of it."""
        if not self._established.done():
            await asyncio.shield(self._established)
        if self.closed.is_set():
            raise SessionClosedError(f"session closed ({self.close_reason})")
        payload = bytes(data)
        tid = self.session.send_transfer(payload)
        fut = asyncio.get_running_loop().create_future()
        self._sending[tid] = (fut, payload, self._clock())
        self._flush_soon()
        if self._writer.transport.get_write_buffer_size() > _READ:
            try:
                await self._writer.drain()
            except (ConnectionError, OSError):
                pass  # the read loop sees the loss and fails the future
        await fut

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        while True:
            data = await self._received.get()
            if data is None:
                return
            yield data

    async def close(self, reason: SessTermReason = SessTermReason.UNKNOWN,
                    timeout: float = 5.0) -> None:
        """Terminate cleanly (SESS_TERM both ways, pending transfers may finish), then close."""
        if not self.closed.is_set():
            await self._handle(self.session.terminate(reason, self._clock()))
            self._flush()
            try:
                await asyncio.wait_for(self.closed.wait(), timeout)
            except asyncio.TimeoutError:
                self.session.connection_lost(self._clock())
                self._finish("termination timed out")
        for t in self._tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError, _ssl.SSLError):
            pass

    def abort(self) -> None:
        """Drop the TCP connection now, without SESS_TERM (tests use it to cut a session)."""
        transport = self._writer.transport
        transport.abort()


def _tls_config(config: SessionConfig, ssl: _ssl.SSLContext | None,
                require_tls: bool | None) -> SessionConfig:
    want = ssl is not None
    require = want if require_tls is None else require_tls
    return dataclasses.replace(config, can_tls=want, require_tls=require and want)


async def open_session(host: str, port: int = DEFAULT_PORT, *,
                       config: SessionConfig = SessionConfig(),
                       ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None,
                       require_tls: bool | None = None, on_bundle: OnBundle | None = None,
                       timeout: float = 30.0, **kw: Any) -> TcpclConnection:
    """Connect as the active entity; returns once the session is established. With ``ssl``,
    CAN_TLS is offered and (unless ``require_tls=False``) required."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    conn = TcpclConnection(reader, writer, active=True, config=_tls_config(config, ssl, require_tls),
                           ssl=ssl, server_hostname=server_hostname or host,
                           on_bundle=on_bundle, **kw)
    try:
        await conn.wait_established(timeout)
    except BaseException:
        await conn.close(timeout=1.0)
        raise
    return conn


class TcpclServer:
    """A listening passive entity. Bundles from every session go to ``on_bundle`` or, without
    one, to ``async for conn, data in server.received()``."""

    def __init__(self, config: SessionConfig, ssl: _ssl.SSLContext | None,
                 on_bundle: OnBundle | None, handler: Callable[[TcpclConnection], Awaitable[Any]] | None,
                 max_sessions: int, conn_kw: dict[str, Any]) -> None:
        self.config, self._ssl = config, ssl
        self._on_bundle, self._handler = on_bundle, handler
        self.max_sessions = max_sessions
        self._conn_kw = conn_kw
        self.connections: set[TcpclConnection] = set()
        self._queue: asyncio.Queue[tuple[TcpclConnection, bytes]] = asyncio.Queue(maxsize=256)
        self._server: asyncio.AbstractServer | None = None
        self.refused_sessions = 0
        self._handler_tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= self.max_sessions:
            self.refused_sessions += 1
            log.warning("tcpcl server: %d sessions open, refusing %s", len(self.connections),
                        writer.get_extra_info("peername"))
            writer.close()
            return
        on_bundle = self._on_bundle
        conn: TcpclConnection

        async def to_queue(data: bytes) -> None:
            await self._queue.put((conn, data))

        conn = TcpclConnection(reader, writer, active=False, config=self.config, ssl=self._ssl,
                               on_bundle=on_bundle or to_queue, **self._conn_kw)
        self.connections.add(conn)
        try:
            try:
                await conn.wait_established(self.config.contact_timeout + 5)
            except (SessionClosedError, asyncio.TimeoutError):
                return
            if self._handler is not None:
                await self._handler(conn)
            await conn.closed.wait()
        finally:
            self.connections.discard(conn)
            await conn.close(timeout=1.0)

    async def received(self) -> AsyncIterator[tuple[TcpclConnection, bytes]]:
        while True:
            yield await self._queue.get()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(c.close(SessTermReason.UNKNOWN, timeout=2.0)
                               for c in list(self.connections)), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpclServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                config: SessionConfig = SessionConfig(), ssl: _ssl.SSLContext | None = None,
                require_tls: bool | None = None, on_bundle: OnBundle | None = None,
                handler: Callable[[TcpclConnection], Awaitable[Any]] | None = None,
                max_sessions: int = 64, **kw: Any) -> TcpclServer:
    """Listen as the passive entity. ``port=0`` picks a free port (``server.port``)."""
    srv = TcpclServer(_tls_config(config, ssl, require_tls), ssl, on_bundle, handler,
                      max_sessions, kw)
    srv._server = await asyncio.start_server(srv._on_connect, host, port)
    return srv


class TcpclClient:
    """A sender that keeps one session to a peer and survives its loss: a bundle whose transfer
    was not fully acknowledged when the session dropped is sent again on the next session
    (``retried`` counts those; the receiver's store dedup makes delivery exactly once)."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, attempts: int = 5,
                 backoff: float = 0.05, max_backoff: float = 60.0, **session_kw: Any) -> None:
        self.host, self.port = host, port
        self.attempts = attempts
        self.backoff, self.max_backoff = backoff, max_backoff
        self._kw = session_kw
        self.conn: TcpclConnection | None = None
        self._lock = asyncio.Lock()
        self.sessions_opened = 0
        self.retried = 0
        self.retried_log: list[str] = []
        # counters of the sessions already replaced (the current one is read live)
        self.past = {"bytes_sent": 0, "bytes_received": 0, "bytes_acked": 0,
                     "bundles_sent": 0, "bundles_received": 0}

    def totals(self) -> dict[str, int]:
        """Counters summed over every session this client opened."""
        out = dict(self.past)
        if self.conn is not None:
            self._add(out, self.conn)
        return out

    @staticmethod
    def _add(acc: dict[str, int], c: TcpclConnection) -> None:
        acc["bytes_sent"] += c.session.bytes_sent
        acc["bytes_received"] += c.session.bytes_received
        acc["bytes_acked"] += c.bytes_acked
        acc["bundles_sent"] += c.bundles_sent
        acc["bundles_received"] += c.bundles_received

    async def _session(self) -> TcpclConnection:
        async with self._lock:
            if self.conn is None or self.conn.closed.is_set():
                if self.conn is not None:
                    self._add(self.past, self.conn)
                    self.conn = None
                self.conn = await open_session(self.host, self.port, **self._kw)
                self.sessions_opened += 1
            return self.conn

    async def send_bundle(self, data: bytes) -> None:
        delay = self.backoff
        last: BaseException | None = None
        for attempt in range(self.attempts):
            try:
                conn = await self._session()
                await conn.send_bundle(data)
                return
            except (SessionClosedError, ConnectionError, OSError, asyncio.TimeoutError) as e:
                last = e
                self.retried += 1
                note = f"attempt {attempt + 1}: {len(data)}-byte bundle not acknowledged ({e})"
                self.retried_log.append(note)
                log.info("tcpcl client %s:%d: %s; retrying", self.host, self.port, note)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise SessionClosedError(f"bundle not delivered after {self.attempts} sessions: {last}")

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
