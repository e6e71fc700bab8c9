"""``connect`` and ``serve``: HTX over TCP+TLS 1.3 ("tcp"), QUIC v1 ("quic", HTX inside one
bidirectional QUIC stream) or plain TCP ("plain", for local links)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from typing import Awaitable, Callable, Literal

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio import connect as quic_connect
from aioquic.asyncio import serve as quic_serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamDataReceived, StreamReset

from betanet.errors import InvalidArgumentError
from betanet.htx import tls as _tls
from betanet.htx.aio import Connection, _run_handler
from betanet.htx.connection import HTXConfig, HTXConnection
from betanet.htx.keys import key_from
from betanet.htx.protocol import ALPN, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, CloseCode

log = logging.getLogger(__name__)

__all__ = ["connect", "serve", "Server"]

Transport = Literal["tcp", "quic", "plain"]
Handler = Callable[[Connection], Awaitable[None]]


class _StreamProtocol(asyncio.Protocol):
    """asyncio TCP (or TLS) protocol carrying one HTX connection."""

    def __init__(self, make_htx: Callable[[], HTXConnection], name: str,
                 idle_timeout: float | None, handshake_timeout: float | None,
                 on_connection: Callable[[Connection], None] | None = None) -> None:
        self._make_htx = make_htx
        self._name = name
        self._idle = idle_timeout
        self._hs_timeout = handshake_timeout
        self._on_connection = on_connection
        self.conn: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                import socket
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=1 << 20)
        self.conn = Connection(self._make_htx(), transport.write, transport.close,
                               transport=self._name, idle_timeout=self._idle)
        self.conn._start(self._hs_timeout)
        if self._on_connection:
            self._on_connection(self.conn)

    def data_received(self, data: bytes) -> None:
        self.conn._data_received(data)

    def eof_received(self) -> bool | None:
        self.conn._connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn._connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn._pause()

    def resume_writing(self) -> None:
        self.conn._resume()


class _QuicProtocol(QuicConnectionProtocol):
    """aioquic protocol carrying one HTX connection inside one bidirectional QUIC stream
    (the client's first, id 0)."""

    def __init__(self, *args, make_htx=None, name="quic", idle_timeout=None, handshake_timeout=None,
                 on_connection=None, **kw) -> None:
        super().__init__(*args, **kw)
        self._make_htx = make_htx
        self._idle = idle_timeout
        self._hs_timeout = handshake_timeout
        self._on_connection = on_connection
        self._sid: int | None = None
        self.conn: Connection | None = None

    def _write(self, data: bytes) -> None:
        self._quic.send_stream_data(self._sid, data)
        self.transmit()

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._quic.send_stream_data(self._sid, b"", end_stream=True)
        self.close()

    def start_htx(self) -> Connection:
        self._sid = self._quic.get_next_available_stream_id()
        self.conn = Connection(self._make_htx(), self._write, self._close, transport="quic",
                               idle_timeout=self._idle)
        self.conn._start(self._hs_timeout)
        return self.conn

    def quic_event_received(self, event) -> None:
        if isinstance(event, StreamDataReceived):
            if self.conn is None:          # server: the client's first stream carries HTX
                self._sid = event.stream_id
                self.conn = Connection(self._make_htx(), self._write, self._close, transport="quic",
                                       idle_timeout=self._idle)
                self.conn._start(self._hs_timeout)
                if self._on_connection:
                    self._on_connection(self.conn)
            if event.stream_id != self._sid:
                return
            if event.data:
                self.conn._data_received(event.data)
            if event.end_stream:
                self.conn._connection_lost(None)
        elif isinstance(event, StreamReset) and self.conn is not None and event.stream_id == self._sid:
            self.conn._connection_lost(ConnectionResetError("QUIC stream reset"))
        elif isinstance(event, ConnectionTerminated) and self.conn is not None:
            self.conn._connection_lost(ConnectionResetError(f"QUIC connection terminated: {event.reason_phrase}"))


def _htx_factory(client: bool, static_private_key, remote_public, config) -> Callable[[], HTXConnection]:
    return lambda: HTXConnection(client=client, static_private_key=static_private_key,
                                 remote_static_public=remote_public, config=config)


async def connect(host: str, port: int, server_public_key: bytes | str, *,
                  transport: Transport = "tcp", static_private_key: bytes | None = None,
                  ssl_context: ssl.SSLContext | None = None, cafile: str | os.PathLike | None = None,
                  verify: bool = True, server_hostname: str | None = None,
                  config: HTXConfig | None = None,
                  handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
                  idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT) -> Connection:
    """Open an HTX connection and finish the Noise XK handshake.

    ``server_public_key``: the server's static X25519 key (32 bytes or hex).
    ``transport``: "tcp" (TLS 1.3; ``cafile``/``ssl_context``; ``verify=False`` turns
    certificate verification off explicitly), "quic" (same TLS options) or "plain".
    ``static_private_key``: our static key (an ephemeral one when None).
    Raises AuthenticationError for a wrong server key, HTXTimeoutError on timeout.
    """
    remote = key_from(server_public_key)
    make = _htx_factory(True, static_private_key, remote, config)
    loop = asyncio.get_running_loop()
    if transport in ("tcp", "plain"):
        ctx = None
        if transport == "tcp":
            ctx = ssl_context or _tls.client_context(cafile, verify)
        proto = _StreamProtocol(make, transport, idle_timeout, handshake_timeout)
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
                              handshake_timeout=handshake_timeout, **kw)
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
    else:
        raise InvalidArgumentError(f"htx transport must be 'tcp', 'quic' or 'plain', not {transport!r}")
    try:
        await conn._wait_handshake()
    except BaseException:
        conn._finish(conn.error)
        raise
    return conn


class Server:
    """A listening HTX server (``async with`` closes it). ``port``: the bound port."""

    def __init__(self, transport: str, on_handshake_error: Callable[[BaseException], None] | None = None) -> None:
        self.transport = transport
        self._on_handshake_error = on_handshake_error
        self._server = None
        self._quic = None
        self.port = 0
        self.connections: set[Connection] = set()
        self._tasks: set[asyncio.Task] = set()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._quic is not None:
            self._quic.close()
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
                on_handshake_error: Callable[[BaseException], None] | None = None) -> Server:
    """Listen for HTX connections; ``await handler(connection)`` runs for each one after
    its handshake, and the connection is closed when the handler returns.
    ``on_handshake_error(exc)`` is called for each connection whose handshake failed
    (wrong key, timeout, garbage), e.g. to count them.

    "tcp" and "quic" need a certificate: ``certfile``/``keyfile`` (or ``ssl_context`` for tcp);
    ``betanet.htx.tls.write_self_signed`` makes one for tests.
    """
    priv = key_from(static_private_key)
    make = _htx_factory(False, priv, None, config)
    loop = asyncio.get_running_loop()
    server = Server(transport, on_handshake_error)
    if transport in ("tcp", "plain"):
        ctx = None
        if transport == "tcp":
            if ssl_context is None and not (certfile and keyfile):
                raise InvalidArgumentError("htx serve over tcp (TLS) needs certfile and keyfile or ssl_context")
            ctx = ssl_context or _tls.server_context(certfile, keyfile)
        server._server = await loop.create_server(
            lambda: _StreamProtocol(make, transport, idle_timeout, handshake_timeout,
                                    on_connection=lambda c: server._accepted(c, handler)),
            host, port, ssl=ctx, ssl_handshake_timeout=handshake_timeout if ctx else None)
        server.port = server._server.sockets[0].getsockname()[1]
    elif transport == "quic":
        if not (certfile and keyfile):
            raise InvalidArgumentError("htx serve over quic needs certfile and keyfile")
        qc = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
        qc.load_cert_chain(str(certfile), str(keyfile))

        def create(*a, **kw):
            return _QuicProtocol(*a, make_htx=make, idle_timeout=idle_timeout,
                                 handshake_timeout=handshake_timeout,
                                 on_connection=lambda c: server._accepted(c, handler), **kw)
        server._quic = await quic_serve(host, port, configuration=qc, create_protocol=create)
        server.port = server._quic._transport.get_extra_info("sockname")[1]
    else:
        raise InvalidArgumentError(f"htx transport must be 'tcp', 'quic' or 'plain', not {transport!r}")
    return server
