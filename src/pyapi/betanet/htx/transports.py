"""``connect`` and ``serve``: HTX over TCP+TLS 1.3 ("tcp"), QUIC v1 ("quic", HTX inside one
bidirectional QUIC stream) or plain TCP ("plain", for local links)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from typing import Awaitable, Callable, Literal

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio import connect as quic_connect
from aioquic.asyncio import serve as quic_serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamDataReceived, StreamReset
from aioquic.quic.packet import QuicErrorCode

from betanet._log import Throttle, escape
from betanet.errors import InvalidArgumentError, LimitExceededError
from betanet.htx import tls as _tls
from betanet.htx.admission import Admission
from betanet.htx.aio import Connection, HTXTimeoutError, _run_handler
from betanet.htx.connection import HTXConfig, HTXConnection
from betanet.htx.keys import key_from
from betanet.htx.protocol import (ALPN, MAX_HANDSHAKE_MESSAGE, DEFAULT_CLOSE_GRACE, DEFAULT_CONTROL_BACKLOG, DEFAULT_HANDSHAKE_TIMEOUT,
                                  DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES,
                                  DEFAULT_MAX_HANDSHAKES_PER_HOST, CloseCode)

log = logging.getLogger(__name__)

__all__ = ["connect", "serve", "Server"]

Transport = Literal["tcp", "quic", "plain", "htx-web"]
_WRITE_HIGH = 1 << 20         # transport write buffer above which HTX stops sealing stream data
_WRITE_LOW = 256 * 1024       # ... and below which it resumes
Handler = Callable[[Connection], Awaitable[None]]


class _StreamProtocol(asyncio.Protocol):
    """asyncio TCP (or TLS) protocol carrying one HTX connection.

    On a server it first asks the admission control (``server``); with ``tls`` (a server
    SSL context) it runs the TLS handshake itself (``start_tls``) so that a pending TLS
    handshake is counted and can be shed."""

    def __init__(self, make_htx: Callable[[], HTXConnection], name: str,
                 idle_timeout: float | None, handshake_timeout: float | None,
                 on_connection: Callable[[Connection], None] | None = None, *,
                 conn_options: dict | None = None, server: "Server | None" = None,
                 tls: ssl.SSLContext | None = None, web=None) -> None:
        self._make_htx = make_htx
        self._web = web                      # htx-web: WebServer whose front gates the connection
        self._front = None
        self._peer = "?"
        self._name = name
        self._idle = idle_timeout
        self._hs_timeout = handshake_timeout
        self._on_connection = on_connection
        self._conn_options = conn_options or {}
        self._server = server
        self._tls = tls
        self._deadline: float | None = None
        self._shed_done = False
        self._transport: asyncio.BaseTransport | None = None
        self._early: list[bytes] = []        # TLS data that arrived before start_tls returned
        self._lost = False
        self._tls_task: asyncio.Task | None = None
        self.conn: Connection | None = None

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return self._hs_timeout
        return max(0.001, self._deadline - asyncio.get_running_loop().time())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._server is not None:
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if peer else "?"
            self._peer = host
            if not self._server._admit(self, host):
                transport.abort()
                return
            if self._hs_timeout:
                self._deadline = asyncio.get_running_loop().time() + self._hs_timeout
            if self._tls is not None:
                transport.pause_reading()       # the ClientHello is for the TLS layer
                self._tls_task = self._server._spawn(self._start_tls(transport))
                return
        self._setup(transport)

    async def _start_tls(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(raw, self, self._tls, server_side=True,
                                             ssl_handshake_timeout=self._remaining())
        except (Exception, asyncio.CancelledError) as exc:
            raw.abort()
            self._release()
            if not self._shed_done and isinstance(exc, Exception):
                self._server._handshake_failed(exc)
            return
        if transport is None or self._shed_done or self._lost:   # closed meanwhile
            if transport is not None:
                transport.abort()
            raw.abort()
            self._release()
            return
        if self._web is not None:
            self._start_front(transport)
            return
        self._setup(transport)
        early, self._early = self._early, []
        for data in early:
            self.conn._data_received(data)

    def _setup(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=_WRITE_HIGH)
        writer = transport.write if self._front is None else self._ws_write
        self.conn = Connection(self._make_htx(), writer, transport.close,
                               transport=self._name, idle_timeout=self._idle,
                               pause_reading=transport.pause_reading,
                               resume_reading=transport.resume_reading,
                               abort=transport.abort, **self._conn_options)
        self.conn._start(self._remaining())
        if self._server is not None:
            self.conn._handshake.add_done_callback(self._handshake_done)
        if self._on_connection:
            self._on_connection(self.conn)

    def _handshake_done(self, fut: asyncio.Future) -> None:
        if not fut.cancelled() and fut.exception() is None:
            self._server._admission.established(self)

    def _shed(self) -> None:
        """Admission control gave this pending handshake's slot to a newer connection."""
        self._shed_done = True
        if self._tls_task is not None:
            self._tls_task.cancel()          # frees the TLS state now, not at its timeout
        if self.conn is not None:
            self.conn._abort(LimitExceededError("htx: pending handshake shed (too many handshakes)"))
        if self._transport is not None:
            self._transport.abort()

    def _release(self) -> None:
        if self._server is not None:
            self._server._admission.release(self)

    # htx-web: an ordinary HTTPS site until a valid access ticket upgrades the connection
    # to a WebSocket; HTX then travels in binary messages (betanet.tls.web).
    def _start_front(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._front = self._web.front(self._peer)
        if self._deadline is not None:       # the whole TLS + HTTP + Noise set-up has one deadline
            asyncio.get_running_loop().call_at(self._deadline, self._front_expired)
        early, self._early = self._early, []
        for data in early:
            self._front_received(data)

    def _front_expired(self) -> None:
        if self.conn is None and self._transport is not None:
            self._transport.abort()

    def _ws_write(self, data: bytes) -> None:
        from betanet.tls.web import WsFramer
        for i in range(0, len(data), 16 * 1024):      # one WebSocket message per TLS record's worth
            self._transport.write(WsFramer.frame(data[i:i + 16 * 1024]))

    def _front_received(self, data: bytes) -> None:
        from betanet.errors import ProtocolError
        try:
            reply, htx = self._front.received(data)
        except ProtocolError as exc:
            if self.conn is not None:
                self.conn._abort(exc)
            self._transport.abort()
            return
        if reply:
            self._transport.write(reply)
        if self._front.closing:
            self._transport.close()
            return
        if self._front.upgraded:
            if self.conn is None:
                self._setup(self._transport)
            ws = self._front.ws
            for r in ws.replies:
                self._transport.write(r)
            ws.replies.clear()
            if htx:
                self.conn._data_received(htx)
            if ws.closed:
                self.conn._connection_lost(None)

    def data_received(self, data: bytes) -> None:
        if self._front is not None:
            self._front_received(data)
            return
        if self.conn is None:
            # The TLS layer delivers what followed its handshake before start_tls returns;
            # one read at most, the Noise message 1.
            self._early.append(data)
            limit = MAX_HANDSHAKE_MESSAGE + 2 if self._web is None else 32 * 1024   # htx-web: an HTTP request
            if sum(map(len, self._early)) > limit:
                self._shed_done = True
                self._transport.abort()
            return
        self.conn._data_received(data)

    def eof_received(self) -> bool | None:
        if self.conn is not None:
            self.conn._connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self.conn is not None:
            self.conn._connection_lost(exc)
            self.conn._transport_lost()
        self._release()

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn._pause()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn._resume()


class _QuicProtocol(QuicConnectionProtocol):
    """aioquic protocol carrying one HTX connection inside one bidirectional QUIC stream
    (the client's first, id 0). Write back-pressure comes from the stream's unacknowledged
    send buffer; on a server, admission control sees the connection at its first datagram
    and the handshake timeout runs from there (a client that never opens its HTX stream)."""

    def __init__(self, *args, make_htx=None, name="quic", idle_timeout=None, handshake_timeout=None,
                 on_connection=None, conn_options=None, server=None, **kw) -> None:
        super().__init__(*args, **kw)
        self._make_htx = make_htx
        self._idle = idle_timeout
        self._hs_timeout = handshake_timeout
        self._on_connection = on_connection
        self._conn_options = conn_options or {}
        self._server = server
        self._admitted = False
        self._hs_timer: asyncio.TimerHandle | None = None
        self._sid: int | None = None
        self.conn: Connection | None = None

    def _buffered(self) -> int:
        """Bytes of the HTX stream not yet acknowledged by the peer."""
        stream = self._quic._streams.get(self._sid) if self._sid is not None else None
        return len(stream.sender._buffer) if stream is not None else 0

    def _write(self, data: bytes) -> None:
        self._quic.send_stream_data(self._sid, data)
        self.transmit()
        if self.conn is not None and not self.conn._paused and self._buffered() > _WRITE_HIGH:
            self.conn._pause()

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._quic.send_stream_data(self._sid, b"", end_stream=True)
        self.close()

    def _new_connection(self) -> Connection:
        conn = Connection(self._make_htx(), self._write, self._close, transport="quic",
                          idle_timeout=self._idle, **self._conn_options)
        self.conn = conn
        conn._start(self._hs_timeout)
        return conn

    def start_htx(self) -> Connection:
        self._sid = self._quic.get_next_available_stream_id()
        return self._new_connection()

    def datagram_received(self, data, addr) -> None:
        if self._server is not None and not self._admitted:
            self._admitted = True
            if not self._server._admit(self, str(addr[0])):
                # Read the Initial first: closing needs its keys.
                super().datagram_received(data, addr)
                self._quic.close(error_code=QuicErrorCode.CONNECTION_REFUSED, reason_phrase="server busy")
                self.transmit()
                return
            if self._hs_timeout:
                self._hs_timer = self._loop.call_later(self._hs_timeout, self._handshake_expired)
        super().datagram_received(data, addr)
        conn = self.conn
        if conn is not None and conn._paused and self._buffered() <= _WRITE_LOW:
            conn._resume()

    def _handshake_expired(self) -> None:
        if self.conn is None:             # the HTX stream never opened
            self._server._handshake_failed(HTXTimeoutError("htx handshake timed out (no HTX stream)"))
            self.close()

    def _shed(self) -> None:
        if self.conn is not None:
            self.conn._abort(LimitExceededError("htx: pending handshake shed (too many handshakes)"))
        self.close()

    def _gone(self) -> None:
        if self._hs_timer is not None:
            self._hs_timer.cancel()
        if self._server is not None:
            self._server._admission.release(self)

    def quic_event_received(self, event) -> None:
        if isinstance(event, StreamDataReceived):
            if self.conn is None:          # server: the client's first stream carries HTX
                self._sid = event.stream_id
                conn = self._new_connection()
                if self._server is not None:
                    conn._handshake.add_done_callback(self._handshake_done)
                if self._on_connection:
                    self._on_connection(conn)
            if event.stream_id != self._sid:
                return
            if event.data:
                self.conn._data_received(event.data)
            if event.end_stream:
                self.conn._connection_lost(None)
        elif isinstance(event, StreamReset) and self.conn is not None and event.stream_id == self._sid:
            self.conn._connection_lost(ConnectionResetError("QUIC stream reset"))
        elif isinstance(event, ConnectionTerminated):
            if self.conn is not None:
                self.conn._connection_lost(ConnectionResetError(
                    f"QUIC connection terminated: {escape(event.reason_phrase)}"))
            self._gone()

    def _handshake_done(self, fut: asyncio.Future) -> None:
        if self._hs_timer is not None:
            self._hs_timer.cancel()
        if not fut.cancelled() and fut.exception() is None:
            self._server._admission.established(self)


def _htx_factory(client: bool, static_private_key, remote_public, config) -> Callable[[], HTXConnection]:
    return lambda: HTXConnection(client=client, static_private_key=static_private_key,
                                 remote_static_public=remote_public, config=config)


async def connect(host: str, port: int, server_public_key: bytes | str, *,
                  transport: Transport = "tcp", static_private_key: bytes | None = None,
                  ssl_context: ssl.SSLContext | None = None, cafile: str | os.PathLike | None = None,
                  verify: bool = True, server_hostname: str | None = None,
                  config: HTXConfig | None = None,
                  handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
                  idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                  close_grace: float | None = DEFAULT_CLOSE_GRACE,
                  max_control_backlog: int = DEFAULT_CONTROL_BACKLOG, web=None) -> Connection:
    """Open an HTX connection and finish the Noise XK handshake.

    ``server_public_key``: the server's static X25519 key (32 bytes or hex).
    ``transport``: "tcp" (TLS 1.3; ``cafile``/``ssl_context``; ``verify=False`` turns
    certificate verification off explicitly), "quic" (same TLS options), "plain", or
    "htx-web" (``web``: a ``betanet.tls.htxweb.WebClient``; Chrome's TLS ClientHello, an
    access ticket, HTX in WebSocket messages; same TLS options as "tcp").
    ``static_private_key``: our static key (an ephemeral one when None).
    ``close_grace``, ``max_control_backlog``: bounds against a peer that does not read
    (``Connection``; docs/limits.md).
    Raises AuthenticationError for a wrong server key, HTXTimeoutError on timeout.
    """
    remote = key_from(server_public_key)
    opts = _conn_options(close_grace, max_control_backlog)
    make = _htx_factory(True, static_private_key, remote, config)
    loop = asyncio.get_running_loop()
    if transport in ("tcp", "plain"):
        ctx = None
        if transport == "tcp":
            ctx = ssl_context or _tls.client_context(cafile, verify)
        proto = _StreamProtocol(make, transport, idle_timeout, handshake_timeout, conn_options=opts)
        await asyncio.wait_for(
            loop.create_connection(lambda: proto, host, port, ssl=ctx,
                                   server_hostname=(server_hostname or host) if ctx else None),
            handshake_timeout)
        conn = proto.conn
    elif transport == "quic":
        qc = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name=server_hostname or host)
        if not verify:
            qc.verify_mode = ssl.CERT_NONE
        elif cafile:
            qc.load_verify_locations(str(cafile))
        stack = contextlib.AsyncExitStack()
        proto_holder: dict = {}

        def create(*a, **kw):
            p = _QuicProtocol(*a, make_htx=make, idle_timeout=idle_timeout,
                              handshake_timeout=handshake_timeout, conn_options=opts, **kw)
            proto_holder["p"] = p
            return p
        try:
            qproto = await asyncio.wait_for(
                stack.enter_async_context(quic_connect(host, port, configuration=qc, create_protocol=create)),
                handshake_timeout)
        except BaseException:
            await stack.aclose()
            raise
        conn = qproto.start_htx()
        closer = qproto._close

        def close_all() -> None:
            closer()
            # aioquic finishes its close in the context exit; wait_closed() awaits it.
            conn._transport_closing = asyncio.ensure_future(stack.aclose())
        conn._close_transport = close_all
    elif transport == "htx-web":
        from betanet.tls.htxweb import WebClient, connect_chrome
        if not isinstance(web, WebClient):
            raise InvalidArgumentError("htx connect over htx-web needs web=betanet.tls.htxweb.WebClient(...)")
        chan = await connect_chrome(web, host, port, server_hostname=server_hostname, cafile=cafile,
                                    verify=verify, timeout=handshake_timeout)
        conn = Connection(make(), chan.write, chan.close, transport=transport, idle_timeout=idle_timeout,
                          pause_reading=chan.pause_reading, resume_reading=chan.resume_reading,
                          abort=chan.abort, **opts)
        chan.start(conn)
        conn._start(handshake_timeout)
    else:
        raise InvalidArgumentError(f"htx transport must be 'tcp', 'quic', 'plain' or 'htx-web', not {transport!r}")
    try:
        await conn._wait_handshake()
    except BaseException:
        conn._finish(conn.error)
        raise
    return conn


def _conn_options(close_grace: float | None, max_control_backlog: int) -> dict:
    if close_grace is not None and not close_grace >= 0:
        raise InvalidArgumentError(f"htx: close_grace must be >= 0 seconds or None, not {close_grace!r}")
    if isinstance(max_control_backlog, bool) or not isinstance(max_control_backlog, int) or max_control_backlog < 1:
        raise InvalidArgumentError(f"htx: max_control_backlog must be a positive integer, not {max_control_backlog!r}")
    return {"close_grace": close_grace, "max_control_backlog": max_control_backlog}


class Server:
    """A listening HTX server (``async with`` closes it). ``port``: the bound port.
    ``connections``: the connections whose handler runs; ``stats()``: admission counts."""

    def __init__(self, transport: str, on_handshake_error: Callable[[BaseException], None] | None = None,
                 admission: Admission | None = None) -> None:
        self.transport = transport
        self._on_handshake_error = on_handshake_error
        self._admission = admission or Admission(DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES,
                                                 DEFAULT_MAX_HANDSHAKES_PER_HOST)
        self._server = None
        self._quic = None
        self.port = 0
        self.connections: set[Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._throttle = Throttle(10.0)

    def stats(self) -> dict:
        """``connections`` (handshaking or established), ``handshakes`` (pending) and the
        counters ``admitted``, ``refused``, ``shed``."""
        a = self._admission
        return {"connections": a.connections, "handshakes": a.handshakes, **a.counters}

    def _admit(self, proto, host: str) -> bool:
        a = self._admission
        shed = a.counters["shed"]
        ok = a.admit(proto, host, proto._shed)
        if a.counters["shed"] != shed or not ok:
            suppressed = self._throttle.allow()
            if suppressed is not None:
                log.warning("htx server at its limits (%d connections, %d handshakes pending): "
                            "%d refused, %d handshakes shed so far%s", a.connections, a.handshakes,
                            a.counters["refused"], a.counters["shed"],
                            f" ({suppressed} similar messages suppressed)" if suppressed else "")
        return ok

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _handshake_failed(self, exc: BaseException) -> None:
        log.info("htx handshake failed (%s): %s", self.transport, escape(exc))
        if self._on_handshake_error is not None:
            self._on_handshake_error(exc)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._quic is not None:
            self._quic.close()
        for shed in list(self._admission._pending.values()):
            shed()                       # handshakes in progress (TLS ones have no Connection yet)
        for c in list(self.connections):
            if not c.closed:
                c.htx.close(CloseCode.NO_ERROR, "server shutting down")
                c._finish(None)

    async def wait_closed(self, grace: float = 2.0) -> None:
        """Wait for the listener and the handlers; handlers still running after ``grace``
        seconds (their connections are closed, so they normally end at once) are cancelled."""
        if self._server is not None:
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        await self.wait_closed()

    def _accepted(self, conn: Connection, handler: Handler) -> None:
        self.connections.add(conn)
        task = asyncio.ensure_future(_run_handler(conn, handler, self._on_handshake_error))
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            self.connections.discard(conn)
        task.add_done_callback(done)


async def serve(handler: Handler, host: str, port: int, static_private_key: bytes | str, *,
                transport: Transport = "tcp", ssl_context: ssl.SSLContext | None = None,
                certfile: str | os.PathLike | None = None, keyfile: str | os.PathLike | None = None,
                config: HTXConfig | None = None,
                handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
                idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                on_handshake_error: Callable[[BaseException], None] | None = None,
                max_connections: int = DEFAULT_MAX_CONNECTIONS,
                max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
                max_handshakes_per_host: int = DEFAULT_MAX_HANDSHAKES_PER_HOST,
                close_grace: float | None = DEFAULT_CLOSE_GRACE,
                max_control_backlog: int = DEFAULT_CONTROL_BACKLOG, web=None) -> Server:
    """Listen for HTX connections; ``await handler(connection)`` runs for each one after
    its handshake, and the connection is closed when the handler returns.
    ``on_handshake_error(exc)`` is called for each connection whose handshake failed
    (wrong key, timeout, garbage), e.g. to count them.

    "tcp" and "quic" need a certificate: ``certfile``/``keyfile`` (or ``ssl_context`` for tcp);
    ``betanet.htx.tls.write_self_signed`` makes one for tests.

    Limits (docs/limits.md): at most ``max_connections`` connections (handshaking or
    established), ``max_handshakes`` handshakes in progress (TLS + Noise), of those at most
    ``max_handshakes_per_host`` from one source address; at a limit the oldest pending
    handshake is shed, a new connection is refused only when all slots are established.
    ``close_grace``, ``max_control_backlog``: per connection, see ``Connection``.
    "htx-web" (``web``: a ``betanet.tls.htxweb.WebServer``) serves a static decoy site to every
    request without a valid access ticket (certfile/keyfile as for tcp); a decoy visitor
    holds a handshake slot until the handshake timeout.
    """
    priv = key_from(static_private_key)
    make = _htx_factory(False, priv, None, config)
    loop = asyncio.get_running_loop()
    opts = _conn_options(close_grace, max_control_backlog)
    server = Server(transport, on_handshake_error,
                    Admission(max_connections, max_handshakes, max_handshakes_per_host))
    if transport in ("tcp", "plain"):
        ctx = None
        if transport == "tcp":
            if ssl_context is None and not (certfile and keyfile):
                raise InvalidArgumentError("htx serve over tcp (TLS) needs certfile and keyfile or ssl_context")
            ctx = ssl_context or _tls.server_context(certfile, keyfile)
        # TLS runs in the protocol (start_tls), after admission, not in the listener.
        server._server = await loop.create_server(
            lambda: _StreamProtocol(make, transport, idle_timeout, handshake_timeout,
                                    on_connection=lambda c: server._accepted(c, handler),
                                    conn_options=opts, server=server, tls=ctx),
            host, port)
        server.port = server._server.sockets[0].getsockname()[1]
    elif transport == "htx-web":
        from betanet.tls.htxweb import WebServer, server_context as web_context
        if not isinstance(web, WebServer):
            raise InvalidArgumentError("htx serve over htx-web needs web=betanet.tls.htxweb.WebServer(...)")
        if ssl_context is None and not (certfile and keyfile):
            raise InvalidArgumentError("htx serve over htx-web needs certfile and keyfile or ssl_context")
        ctx = ssl_context or web_context(certfile, keyfile)
        server._server = await loop.create_server(
            lambda: _StreamProtocol(make, transport, idle_timeout, handshake_timeout,
                                    on_connection=lambda c: server._accepted(c, handler),
                                    conn_options=opts, server=server, tls=ctx, web=web),
            host, port)
        server.port = server._server.sockets[0].getsockname()[1]
    elif transport == "quic":
        if not (certfile and keyfile):
            raise InvalidArgumentError("htx serve over quic needs certfile and keyfile")
        qc = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
        qc.load_cert_chain(str(certfile), str(keyfile))

        def create(*a, **kw):
            return _QuicProtocol(*a, make_htx=make, idle_timeout=idle_timeout,
                                 handshake_timeout=handshake_timeout,
                                 on_connection=lambda c: server._accepted(c, handler),
                                 conn_options=opts, server=server, **kw)
        server._quic = await quic_serve(host, port, configuration=qc, create_protocol=create)
        server.port = server._quic._transport.get_extra_info("sockname")[1]
    else:
        raise InvalidArgumentError(f"htx transport must be 'tcp', 'quic', 'plain' or 'htx-web', not {transport!r}")
    return server
