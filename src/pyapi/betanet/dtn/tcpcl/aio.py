"""asyncio adapter for the TCPCLv4 session: it only moves bytes, runs TLS and timers.

- :func:`open_session` (active entity) and :func:`serve` (passive entity) return
  :class:`TcpclConnection` objects once SESS_INIT negotiation finished.
- ``await conn.send_bundle(data)`` returns when the peer's final XFER_ACK covers the whole
  bundle; if the session drops first it raises :class:`SessionClosedError` and the bundle is
  listed in ``conn.unacknowledged()``. :class:`TcpclClient` retries those on the next session.
- Pipelined sending: ``await conn.send(data, wait="queued")`` returns as soon as the transfer
  is queued (waiting only while ``send_window`` transfers are unacknowledged); acks complete
  transfers in order without a future or task per bundle; ``await conn.flush()`` waits for
  all of them. :meth:`TcpclClient.send` does the same across sessions, keeping every bundle
  until its final XFER_ACK and re-sending it on the next session if one drops.
- Received bundles go to ``on_bundle(data)`` (its completion comes before the final XFER_ACK:
  store the bundle there to make the acknowledgment mean "durable"; a plain function is
  called inline, a coroutine function gets a task), or to ``async for data in conn``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import ssl as _ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from betanet.dtn.reliable import WAIT_MODES, DeliveryError, ReliableSender
from betanet.dtn.reliable import settle as _settle
from betanet.dtn.tcpcl.certs import certificate_node_ids
from betanet.dtn.tcpcl.events import (BundleReceived, Event, RefuseReason, SessionClosed,
                                      SessionEstablished, SessTermReason, StartTls,
                                      TransferAcknowledged, TransferRefused)
from betanet.dtn.tcpcl.protocol import Session, SessionConfig
from betanet.errors import (BetanetError, InvalidArgumentError, LimitExceededError,
                            MalformedError, ProtocolError, StateError)

__all__ = ["TcpclConnection", "TcpclServer", "TcpclClient", "SessionClosedError",
           "TransferRefusedError", "open_session", "serve", "client_context", "server_context",
           "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 4556
_READ = 1 << 16

OnBundle = Callable[[bytes], Awaitable[Any] | Any]
OnDone = Callable[[BaseException | None], Any]


class SessionClosedError(DeliveryError):
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
                 window: int = 32, max_pending_bytes: int = 8 << 20, send_window: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reader, self._writer = reader, writer
        self._clock = clock
        self.session = Session(active=active, config=config, now=clock())
        self._ssl, self._server_hostname = ssl, server_hostname
        self._on_bundle = on_bundle
        self._window = max(1, window)
        self._max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0
        # received transfers in arrival order: [tid, size, outcome]; outcome None while the
        # application still processes it, else (ok, refuse reason). Acks leave in this order.
        self._acks: deque[list[Any]] = deque()
        self._acks_progress = asyncio.Event()
        self._flush_scheduled = False
        self._received: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=self._window)
        # our transfers not yet fully acknowledged: tid -> (bundle, send time, on_done)
        self._sending: dict[int, tuple[bytes, float, OnDone | None]] = {}
        self.send_window = max(1, send_window)
        self._send_room = asyncio.Event()
        self._send_room.set()
        self._send_idle = asyncio.Event()
        self._send_idle.set()
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
                       asyncio.create_task(self._ticker(), name="tcpcl-tick")]
        self._flush()

    # ---- properties ---------------------------------------------------------------------
    @property
    def peer_node_id(self) -> str:
        return self.session.peer_node_id

    @property
    def peer_node_id_authenticated(self) -> bool:
        """The peer's validated certificate names its Node ID (RFC 9174 §4.4.4.3)."""
        return self.session.peer_node_id_authenticated

    @property
    def tls(self) -> bool:
        return self.session.tls

    @property
    def peer_address(self) -> Any:
        return self._writer.get_extra_info("peername")

    @property
    def in_flight(self) -> int:
        """Our transfers queued or sent on this session and not yet acknowledged."""
        return len(self._sending)

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
        received = False
        for ev in events:
            if type(ev) is BundleReceived:  # the two per-bundle events first, exact type
                received = True
                if (len(self._acks) < self._window and self._pending_bytes <= self._max_pending_bytes
                        and (self._on_bundle is not None or not self._received.full())):
                    self._accept_now(ev)  # no coroutine per bundle while there is room
                else:
                    await self._accept(ev)
            elif type(ev) is TransferAcknowledged:
                if ev.complete:
                    entry = self._sending.pop(ev.transfer_id, None)
                    if entry is not None:
                        data, t0, on_done = entry
                        self.bundles_sent += 1
                        self.bytes_acked += len(data)
                        if len(data) <= 4096:
                            sample = self._clock() - t0
                            self.rtt = sample if self.rtt is None else 0.875 * self.rtt + 0.125 * sample
                        self._sent_done(on_done, None)
            elif isinstance(ev, TransferRefused):
                entry = self._sending.pop(ev.transfer_id, None)
                if entry is not None:
                    if ev.reason == RefuseReason.COMPLETED:  # the peer already has it
                        self._sent_done(entry[2], None)
                    else:
                        cls = _REFUSE_ERRORS.get(ev.reason, TransferRefusedError)
                        msg = f"peer refused the transfer (reason {ev.reason})"
                        self._sent_done(entry[2], TransferRefusedError(msg, ev.reason)
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
        if received:
            self._drain_acks()

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
        try:
            ids = self._peer_certificate_node_ids()
        except MalformedError as e:
            log.info("tcpcl: peer certificate: %s", e)
            ids = ()  # a malformed NODE-ID authenticates nothing
        await self._handle(self.session.tls_established(self._clock(), ids))
        self._flush()

    def _peer_certificate_node_ids(self) -> tuple[str, ...] | None:
        """NODE-IDs of the peer's certificate if TLS validated it, else None (an
        unvalidated certificate proves nothing)."""
        sslobj = self._writer.get_extra_info("ssl_object")
        if sslobj is None or sslobj.context.verify_mode == _ssl.CERT_NONE:
            return None
        der = sslobj.getpeercert(binary_form=True)
        return certificate_node_ids(der) if der else None

    async def _accept(self, ev: BundleReceived) -> None:
        # Backpressure: the read loop waits here while the window of unacknowledged received
        # bundles is full, so a fast sender cannot make us buffer more than window bundles.
        while self._acks and (len(self._acks) >= self._window
                              or self._pending_bytes > self._max_pending_bytes):
            self._drain_acks()  # handlers that finished inline in this batch
            if not (len(self._acks) >= self._window
                    or self._pending_bytes > self._max_pending_bytes):
                break
            self._acks_progress.clear()
            await self._acks_progress.wait()
        if self._on_bundle is None and self._received.full():
            await self._received.put(ev.data)  # the reader waits: backpressure
            self._acks.append([ev.transfer_id, 0, (True, 0)])
            return
        self._accept_now(ev)

    def _accept_now(self, ev: BundleReceived) -> None:
        self._pending_bytes += len(ev.data)
        entry: list[Any] = [ev.transfer_id, len(ev.data), None]
        self._acks.append(entry)
        if self._on_bundle is None:
            self._received.put_nowait(ev.data)  # room checked by the caller
            entry[2] = (True, 0)
        else:
            try:
                res = self._on_bundle(ev.data)
            except Exception as e:
                entry[2] = self._outcome(ev.transfer_id, e)
            else:
                if res is not None and inspect.isawaitable(res):
                    # One task per bundle only for a handler that really waits (a store's
                    # group commit); it is never cancelled by closing the session.
                    fut = asyncio.ensure_future(res)
                    fut.add_done_callback(lambda f, e=entry: self._resolved(e, f))
                else:
                    entry[2] = (True, 0)

    @staticmethod
    def _outcome(tid: int, e: BaseException | None) -> tuple[bool, int]:
        if e is None:
            return True, 0
        if isinstance(e, LimitExceededError):
            log.info("tcpcl: refused transfer %d: %s", tid, e)
            return False, RefuseReason.NO_RESOURCES
        if isinstance(e, MalformedError):
            log.info("tcpcl: refused transfer %d: %s", tid, e)
            return False, RefuseReason.NOT_ACCEPTABLE
        log.warning("tcpcl: bundle handler failed on transfer %d: %s", tid, e)
        return False, RefuseReason.UNKNOWN

    def _resolved(self, entry: list[Any], fut: asyncio.Future) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled():
            exc = StateError("bundle handler cancelled")
        entry[2] = self._outcome(entry[0], exc)
        self._drain_acks()

    def _drain_acks(self) -> None:
        """Send the final XFER_ACK (or XFER_REFUSE) of every processed transfer at the head."""
        acks, session = self._acks, self.session
        if not acks or acks[0][2] is None:
            return
        ok_tids: list[int] = []
        events: list[Event] = []
        while acks and acks[0][2] is not None:
            tid, size, (ok, reason) = acks.popleft()
            self._pending_bytes -= size
            if ok:
                self.bundles_received += 1
                ok_tids.append(tid)
            elif not session.closed:
                if ok_tids:
                    events += session.ack_transfers(ok_tids)
                    ok_tids = []
                events += session.refuse_transfer(tid, reason)
        if ok_tids and not session.closed:
            events += session.ack_transfers(ok_tids)
        for ev in events:  # an ack can only finish an ending session
            if isinstance(ev, SessionClosed):
                self._flush()
                self._finish(ev.reason)
        if not session.closed:
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
        sending, self._sending = self._sending, {}
        for tid in sorted(sending):
            data, _, on_done = sending[tid]
            self._unacked.append(data)
            self._sent_done(on_done, SessionClosedError(
                f"session closed ({reason}) before transfer {tid} was acknowledged"))
        self._send_room.set()  # waiters wake and see the session closed
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
    def _sent_done(self, on_done: OnDone | None, exc: BaseException | None) -> None:
        if on_done is not None:
            try:
                on_done(exc)
            except Exception:  # a caller's callback must not break the session
                log.exception("tcpcl: transfer completion callback failed")
        n = len(self._sending)
        if n < self.send_window:
            self._send_room.set()
        if not n:
            self._send_idle.set()

    def submit(self, data: bytes | bytearray | memoryview, on_done: OnDone | None = None) -> int:
        """Queue one bundle now, without waiting (pipelined sending); returns its transfer id.
        ``on_done(None)`` runs at its final XFER_ACK, ``on_done(exc)`` if it is refused or the
        session closes first (the bundle is then in ``unacknowledged()``). Ignores the send
        window: :meth:`send` is the form that respects it."""
        if self.closed.is_set() or not self.session.established:
            raise SessionClosedError(f"session {'closed' if self.closed.is_set() else 'ending'}"
                                     f" ({self.close_reason or self.session.close_reason})")
        payload = bytes(data)
        tid = self.session.send_transfer(payload)
        self._sending[tid] = (payload, self._clock(), on_done)
        if len(self._sending) >= self.send_window:
            self._send_room.clear()
        self._send_idle.clear()
        self._flush_soon()
        return tid

    async def send(self, data: bytes | bytearray | memoryview, *, wait: str = "acked") -> None:
        """Send one bundle. ``wait="acked"`` returns at the peer's final XFER_ACK (raises if it
        is refused or the session closes first); ``wait="queued"`` returns once the transfer is
        queued on the session — at most ``send_window`` transfers are unacknowledged, the
        caller waits for room — and :meth:`flush` reports the outcome."""
        if wait == "queued" and self._send_room.is_set() and self._established.done():
            self.submit(data)  # the pipelined fast path: nothing to wait for
            if self._writer.transport.get_write_buffer_size() > _READ:
                try:
                    await self._writer.drain()
                except (ConnectionError, OSError):
                    pass
            return
        if wait not in WAIT_MODES:
            raise InvalidArgumentError(f"wait must be one of {WAIT_MODES}, not {wait!r}")
        if not self._established.done():
            await asyncio.shield(self._established)
        while not self._send_room.is_set():
            await self._send_room.wait()
        fut: asyncio.Future | None = None
        if wait == "acked":
            fut = asyncio.get_running_loop().create_future()
        self.submit(data, None if fut is None else functools.partial(_settle, fut))
        if self._writer.transport.get_write_buffer_size() > _READ:
            try:
                await self._writer.drain()
            except (ConnectionError, OSError):
                pass  # the read loop sees the loss and fails the transfer
        if fut is not None:
            await fut

    async def send_bundle(self, data: bytes | bytearray | memoryview) -> None:
        """Send one bundle; returns when the peer acknowledged all of it."""
        await self.send(data, wait="acked")

    async def flush(self) -> None:
        """Wait until every transfer sent on this session is acknowledged; raises
        :class:`SessionClosedError` if the session closed with some unacknowledged."""
        while self._sending:  # closing the session empties it too
            await self._send_idle.wait()
        if self._unacked:
            raise SessionClosedError(f"session closed ({self.close_reason}) with "
                                     f"{len(self._unacked)} transfers unacknowledged")

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


# refusals that say "not on this session", not "not this bundle" (RFC 9174 §5.2.4)
_RETRY_REFUSALS = (RefuseReason.SESSION_TERMINATING, RefuseReason.RETRANSMIT)


class TcpclClient(ReliableSender):
    """A sender that keeps one session to a peer and survives its loss (see
    :class:`~betanet.dtn.reliable.ReliableSender`): every bundle is held until its final
    XFER_ACK and re-sent, in order, on the next session if the one carrying it dropped
    (``retried`` counts those; the receiver's store dedup makes delivery exactly once)."""

    closed_error = SessionClosedError

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, attempts: int = 5,
                 backoff: float = 0.05, max_backoff: float = 60.0, window: int = 256,
                 max_bytes: int = 64 << 20, **session_kw: Any) -> None:
        super().__init__(f"tcpcl {host}:{port}", attempts=attempts, backoff=backoff,
                         max_backoff=max_backoff, window=window, max_bytes=max_bytes)
        self.host, self.port = host, port
        self._kw = session_kw
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

    async def _open(self) -> TcpclConnection:
        return await open_session(self.host, self.port, **self._kw)

    def _retired(self, conn: Any) -> None:
        self._add(self.past, conn)

    def _usable(self, conn: Any) -> bool:
        return conn.session.established and not conn.closed.is_set()

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, SessionClosedError) or (
            isinstance(exc, TransferRefusedError) and exc.reason in _RETRY_REFUSALS)
