"""Mix frames inside HTX streams (``betanet.htx``): :class:`HtxTransport`, and
:func:`make_transport` to get any transport by its kind name (docs/sphinx.md, "HTX links")."""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

from betanet.errors import AuthenticationError, BetanetError, ExpiredError, InvalidArgumentError
from betanet.mix.transport import FrameHandler, LinkTable, PacketTransport, TcpTransport, read_frames
from betanet.mix.types import (HTX_WEB, MAX_FRAME, TCP_FRAMING, TRANSPORT_KINDS, Address, Descriptor,
                               MixCounters, encode_frame)

log = logging.getLogger(__name__)

__all__ = ["HtxTransport", "LinkBusyError", "make_transport"]


class LinkBusyError(ConnectionError):
    """Too many frames already wait for this link (back-pressure limit reached)."""


@dataclass
class _Link:
    """One outgoing HTX connection to a next hop and the stream carrying our frames."""

    lock: asyncio.Lock
    conn: object = None            # betanet.htx.Connection
    stream: object = None          # betanet.htx.Stream
    waiting: int = 0               # senders queued on the lock
    failures: int = 0              # consecutive connect failures (back-off)
    retry_at: float = 0.0


class HtxTransport(PacketTransport):
    """Mix frames inside HTX streams (``betanet.htx``).

    ``transport``: "tcp" (TLS 1.3), "quic", "plain" or "web". ``static_private_key``: this
    endpoint's X25519 HTX key (32 bytes or hex; a fresh one when None) — its public half is
    advertised in the :class:`~betanet.mix.Descriptor`, and peers pin it (Noise XK).

    "web" (kind "htx-web", docs/stealth.md): the listener is an ordinary HTTPS site serving
    ``site_root`` to everyone without a valid access ticket for ``ticket_key`` (a
    ``betanet.tls.tickets.TicketKey``; a fresh one when None; ``ticket_rate``/``ticket_burst``
    per /24 and /56); HTX arrives in WebSocket messages after a ticket. The descriptor
    advertises the ticket publication and the certificate's SPKI pin. Peers advertising
    "htx-web" are dialled with Chrome's ClientHello (``impersonate``, a
    ``betanet.tls.htxweb.CHROME_TARGETS`` name), a fresh ticket, and their pin (TLS fails
    closed on another key; without a pin the chain is verified against ``cafile``).

    TLS: the server presents ``certfile``/``keyfile``, or a self-signed certificate made at
    start. Clients do *not* verify certificates unless ``cafile`` is given (``verify``
    defaults to ``bool(cafile)``): the peer is authenticated by its HTX static key, which
    the descriptor pins, so TLS (and QUIC's TLS) only hides HTX as ordinary traffic.

    Outgoing: one connection per next hop (address, kind and key), opened at the first
    frame, reused for every later frame, reopened after a failure with exponential back-off
    (``retry_delay`` doubling up to ``retry_max``). Frames go on one client-opened stream per
    connection; the responder never writes on it (the reverse direction uses the
    responder's own connection to us). ``send`` waits on the stream's ``drain`` (back-
    pressure); at most ``max_waiting`` senders wait per link, more fail with LinkBusyError.
    Peers advertising "tcp-framing", and ``send(address, ...)`` (an endpoint known only by
    its address), are reached with plain framing (a :class:`TcpTransport`).

    Incoming: accepted HTX links are bounded like every transport's (``max_connections``,
    ``first_frame_timeout``, ``link_idle_timeout``; see :class:`~betanet.mix.transport.LinkTable`).
    """

    def __init__(self, transport: str = "tcp", host: str = "127.0.0.1", port: int = 0,
                 static_private_key: bytes | str | None = None, *,
                 certfile: str | os.PathLike | None = None, keyfile: str | os.PathLike | None = None,
                 cafile: str | os.PathLike | None = None, verify: bool | None = None,
                 max_frame: int = MAX_FRAME, connect_timeout: float = 5.0,
                 max_connections: int = 1024, max_streams_per_link: int = 4,
                 max_waiting: int = 256, retry_delay: float = 0.1, retry_max: float = 2.0,
                 idle_timeout: float | None = 60.0, counters: MixCounters | None = None,
                 first_frame_timeout: float = 10.0, link_idle_timeout: float | None = 120.0,
                 site_root: str | os.PathLike | None = None, ticket_key=None,
                 impersonate: str | None = None, ticket_rate: float = 5.0,
                 ticket_burst: float = 20.0) -> None:
        from betanet import htx
        from betanet.tls.htxweb import CHROME_TARGETS
        super().__init__(counters)
        if transport not in ("tcp", "quic", "plain", "web"):
            raise InvalidArgumentError(f"HTX transport must be 'tcp', 'quic', 'plain' or 'web', not {transport!r}")
        if transport == "web" and not (site_root and os.path.isdir(site_root)):
            raise InvalidArgumentError(f"htx-web needs site_root, the decoy site's folder (not {site_root!r})")
        if impersonate is not None and impersonate not in CHROME_TARGETS:
            raise InvalidArgumentError(f"impersonate must be one of {CHROME_TARGETS}, not {impersonate!r}")
        self.site_root, self.impersonate = site_root, impersonate or CHROME_TARGETS[0]
        self.ticket_rate, self.ticket_burst = ticket_rate, ticket_burst
        self.ticket_key = ticket_key
        if transport == "web" and ticket_key is None:
            from betanet.tls.tickets import TicketKey
            self.ticket_key = TicketKey.generate()
        self.spki_pin = ""                 # set by start() for "web": the pin peers dial with
        self.transport, self.host, self.port = transport, host, port
        self.kind = f"htx-{transport}"
        self._private = htx.keys.key_from(static_private_key) if static_private_key is not None \
            else htx.generate_private_key()
        self._public = htx.public_key(self._private)
        self.certfile, self.keyfile, self.cafile = certfile, keyfile, cafile
        self.verify = bool(cafile) if verify is None else verify
        self.max_frame, self.connect_timeout = max_frame, connect_timeout
        self.max_connections, self.max_streams_per_link = max_connections, max_streams_per_link
        self.max_waiting, self.retry_delay, self.retry_max = max_waiting, retry_delay, retry_max
        self.idle_timeout = idle_timeout
        # HTX keepalive PINGs keep a connection open; link_idle_timeout closes one that
        # carries no mix frame (a handshaken link must not hold a slot for free).
        self.accepted = LinkTable(max_connections, first_frame_timeout, link_idle_timeout, self.counters)
        self._sweeper: asyncio.Task | None = None
        self._server = None
        self._on_frame: FrameHandler | None = None
        self._links: dict[tuple, _Link] = {}
        self._framing: TcpTransport | None = None
        self._closed = False

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def open_links(self) -> int:
        """Outgoing HTX connections currently open."""
        return sum(1 for lk in self._links.values() if lk.conn is not None and not lk.conn.closed)

    def link_peer_key(self, link) -> bytes:
        # Every accepted HTX link ran Noise XK: its initiator proved this static key.
        return self.accepted.peer_key(link) or b""

    def advertised(self) -> dict:
        if self.transport != "web":
            return {}
        return {"ticket": self.ticket_key.publication.to_text(), "spki_pin": self.spki_pin}

    # ---- listening ---------------------------------------------------------------------
    async def start(self, on_frame: FrameHandler) -> Address:
        from betanet import htx
        from betanet.htx import tls
        self._on_frame = on_frame
        kw: dict = {}
        tmp = None
        if self.transport != "plain":
            certfile, keyfile = self.certfile, self.keyfile
            if not (certfile and keyfile):
                # A throw-away self-signed certificate, loaded and deleted at once.
                tmp = tempfile.mkdtemp(prefix="betanet-mix-tls-")
                certfile, keyfile = tls.write_self_signed(tmp, [self.host, "localhost"])
            if self.transport == "tcp":
                kw["ssl_context"] = tls.server_context(certfile, keyfile)
            elif self.transport == "web":
                from betanet.tls.htxweb import WebServer, server_context, spki_pin
                kw["ssl_context"] = server_context(certfile, keyfile)
                kw["web"] = WebServer(self.site_root, self.ticket_key, rate=self.ticket_rate,
                                      burst=self.ticket_burst)
                self.spki_pin = spki_pin(certfile)
            else:
                kw["certfile"], kw["keyfile"] = certfile, keyfile
        try:
            self._server = await htx.serve(self._accept, self.host, self.port, self._private,
                                           transport="htx-web" if self.transport == "web" else self.transport,
                                           idle_timeout=self.idle_timeout,
                                           handshake_timeout=self.connect_timeout,
                                           on_handshake_error=self._handshake_failed, **kw)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self._sweeper = asyncio.ensure_future(self.accepted.run_sweeper())
        return (self.host, self._server.port)

    def _handshake_failed(self, exc: BaseException) -> None:
        self._count("auth" if isinstance(exc, AuthenticationError) else "handshake")

    async def _accept(self, conn) -> None:
        from betanet.htx import ConnectionClosedError
        link = self.accepted.admit(lambda: asyncio.ensure_future(conn.close(timeout=0.5)))
        if link is None:
            return
        link.peer_key = conn.remote_static_public or b""
        readers: set[asyncio.Task] = set()
        try:
            while True:
                st = await conn.accept_stream()
                if len(readers) >= self.max_streams_per_link:
                    st.reset()
                    continue
                t = asyncio.ensure_future(self._read_stream(conn, st, link))
                readers.add(t)
                t.add_done_callback(readers.discard)
        except (ConnectionClosedError, BetanetError, ConnectionError):
            pass
        finally:
            self.accepted.remove(link)
            if readers:                    # they end with the connection
                await asyncio.gather(*readers, return_exceptions=True)

    async def _read_stream(self, conn, st, link) -> None:
        try:
            if await read_frames(st, self.max_frame, self._on_frame, link) == "bad-frame":
                self._count("bad-frame")
                from betanet.htx import CloseCode
                await conn.close(CloseCode.PROTOCOL_ERROR, "bad mix frame")
        except (BetanetError, ConnectionError):
            pass

    # ---- sending -----------------------------------------------------------------------
    async def send_to(self, peer: Descriptor, frame_type: int, data: bytes) -> None:
        if peer.transport == TCP_FRAMING or not peer.htx_public_key:
            if self._framing is None:
                self._framing = TcpTransport(max_frame=self.max_frame, connect_timeout=self.connect_timeout,
                                             counters=self.counters)
            await self._framing.send(peer.address, frame_type, data)
            return
        key = (peer.address[0], int(peer.address[1]), peer.transport, bytes(peer.htx_public_key))
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = _Link(asyncio.Lock())
        if link.waiting >= self.max_waiting:
            self._count("link-busy")
            raise LinkBusyError(f"{link.waiting} frames already wait for the link to "
                                f"{peer.address[0]}:{peer.address[1]}")
        link.waiting += 1
        try:
            async with link.lock:
                st = await self._stream(link, peer)
                try:
                    st.write(encode_frame(frame_type, data))
                    await st.drain()
                except (BetanetError, ConnectionError) as exc:
                    self._drop(link, "lost")
                    raise ConnectionResetError(f"HTX link to {peer.address[0]}:{peer.address[1]} "
                                               f"failed: {exc}") from exc
        finally:
            link.waiting -= 1

    def _drop(self, link: _Link, reason: str) -> None:
        if link.conn is not None:
            self._count(reason)
            conn, link.conn, link.stream = link.conn, None, None
            if not conn.closed:
                asyncio.ensure_future(conn.close(timeout=0.5))

    async def _stream(self, link: _Link, peer: Descriptor):
        """The link's stream, connecting (again) if needed. Called with the link's lock held."""
        from betanet import htx
        if link.conn is not None and link.conn.closed:
            self._drop(link, "lost")       # the peer went away since the last frame
        if link.conn is not None:
            return link.stream
        if self._closed:
            raise ConnectionAbortedError("transport closed")
        now = time.monotonic()
        if now < link.retry_at:
            raise ConnectionRefusedError(f"{peer.address[0]}:{peer.address[1]}: retrying in "
                                         f"{link.retry_at - now:.2f} s")
        host, port = peer.address[0], int(peer.address[1])
        try:
            conn = await asyncio.wait_for(
                htx.connect(host, port, peer.htx_public_key, static_private_key=self._private,
                            handshake_timeout=self.connect_timeout, idle_timeout=self.idle_timeout,
                            **self._dial_options(peer)),
                self.connect_timeout * 2)
        except (BetanetError, OSError, asyncio.TimeoutError) as exc:
            reason = ("auth" if isinstance(exc, AuthenticationError) else
                      "timeout" if isinstance(exc, (asyncio.TimeoutError, ExpiredError)) else
                      "connect" if isinstance(exc, OSError) else "handshake")
            self._count(reason)
            link.failures += 1
            link.retry_at = time.monotonic() + min(self.retry_max, self.retry_delay * 2 ** (link.failures - 1))
            log.info("HTX link to %s:%d failed (%s): %s", host, port, reason, exc)
            raise ConnectionRefusedError(f"HTX link to {host}:{port} failed ({reason}): {exc}") from exc
        link.failures, link.retry_at = 0, 0.0
        link.conn, link.stream = conn, await conn.open_stream()
        self.counters.links_opened += 1
        return link.stream

    def _dial_options(self, peer: Descriptor) -> dict:
        if peer.transport != HTX_WEB:
            return {"transport": peer.transport[len("htx-"):], "cafile": self.cafile, "verify": self.verify}
        from betanet.tls.htxweb import WebClient
        # A pinned key authenticates the origin's TLS by itself (self-signed is fine); the
        # chain is verified too when a CA is configured. Without a pin, only the chain.
        web = WebClient(peer.ticket, impersonate=self.impersonate, pin_sha256=peer.spki_pin or None)
        verify = bool(self.cafile) if peer.spki_pin else self.verify
        return {"transport": HTX_WEB, "web": web, "cafile": self.cafile, "verify": verify}

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        conns = [lk.conn for lk in self._links.values() if lk.conn is not None]
        for lk in self._links.values():
            lk.conn = lk.stream = None
        await asyncio.gather(*(c.close(timeout=1.0) for c in conns), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed(grace=1.0)
        if self._framing is not None:
            await self._framing.close()
        self._links.clear()


def make_transport(kind: str = "htx-tcp", host: str = "127.0.0.1", port: int = 0,
                   htx_private_key: bytes | str | None = None, **options) -> PacketTransport:
    """A transport by kind name (``TRANSPORT_KINDS``, as on the ``betanet mixnode`` CLI)."""
    if kind == TCP_FRAMING:
        return TcpTransport(host, port)
    if kind in TRANSPORT_KINDS:
        return HtxTransport(kind[len("htx-"):], host, port, htx_private_key, **options)
    raise InvalidArgumentError(f"transport must be one of {', '.join(TRANSPORT_KINDS)}, not {kind!r}")
