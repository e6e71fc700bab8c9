"""``transport="htx-web"``: HTX inside binary WebSocket messages on a TLS connection whose
ClientHello is Chrome's (curl_cffi / BoringSSL impersonation), opened with an access ticket;
the listener is an ordinary static HTTPS site for everyone else (``betanet.tls.web``).

Client: ``WebClient`` (ticket publication, Chrome version) → ``connect_chrome``.
Server: ``WebServer`` (site folder, ticket key, rate limits) → the HTX listener's web front.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable

from betanet.errors import AuthenticationError, InvalidArgumentError, ProtocolError
from betanet.tls.origin import OriginExpectation, OriginGate
from betanet.tls.tickets import FIELD, TicketKey, TicketPublication, TicketVerifier, make_ticket
from betanet.tls.web import StaticSite, WebFront

__all__ = ["WebClient", "WebServer", "SessionCache", "CHROME_TARGETS", "connect_chrome", "server_context",
           "spki_pin"]

# curl_cffi impersonation targets supported here, newest first (the default). N-2 policy: keep
# the newest few current. chrome152 (curl_cffi 0.17's newest) sends the hello real Chromium 156
# sends (JA4, JA3N, structure; tests/vectors/chrome156/, docs/stealth.md).
CHROME_TARGETS = ("chrome152", "chrome151", "chrome142")
WS_CARRIERS = ("cookie", "query")        # what a WebSocket upgrade can carry (curl sends no body)
_CHUNK = 64 * 1024
_HIGH, _LOW = 1 << 20, 256 * 1024


def spki_pin(cert_pem: bytes | str | os.PathLike) -> str:
    """``sha256//<base64>`` of a certificate's SubjectPublicKeyInfo (PEM bytes or a file),
    the form ``WebClient(pin_sha256=...)`` takes: the client fails closed on any other key."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    data = cert_pem if isinstance(cert_pem, bytes) else open(cert_pem, "rb").read()
    spki = x509.load_pem_x509_certificate(data).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def server_context(certfile: str | os.PathLike, keyfile: str | os.PathLike) -> ssl.SSLContext:
    """What an HTTP/1.1 web server offers: TLS 1.2 and 1.3, ALPN http/1.1 (a server without
    h2 selects http/1.1 for Chrome's page loads and WebSockets alike)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(certfile), str(keyfile))
    return ctx


@dataclass
class WebServer:
    """Server side of htx-web: the decoy site's folder, the ticket key, the WebSocket path,
    token-bucket limits per /24 and /56, and the clock (unix seconds; injectable)."""
    site_root: str | os.PathLike
    ticket_key: TicketKey
    path: str = "/"
    rate: float = 5.0
    burst: float = 20.0
    clock: Callable[[], float] = time.time
    verifier: TicketVerifier | None = None

    def __post_init__(self) -> None:
        self.site = StaticSite(self.site_root, self.clock)
        if self.verifier is None:
            self.verifier = TicketVerifier(self.ticket_key, rate=self.rate, burst=self.burst)

    def front(self, peer: str) -> WebFront:
        return WebFront(self.site, self.verifier, peer, self.clock, self.path)


class SessionCache:
    """TLS sessions shared by htx-web connections (a locked curl share handle): a later
    connection to the same origin (curl keys sessions by host, port and TLS settings) offers
    resumption with a PSK as Chrome does; never 0-RTT (curl sends no early data unless asked).
    Trade-off (docs/stealth.md, "Resumption"): the PSK identity travels in clear and links
    this client's connections to that origin for an observer."""

    def __init__(self) -> None:
        from curl_cffi.curl import CurlShare
        self._share = CurlShare(dns=False, ssl_session=True)

    def attach(self, curl) -> None:
        from curl_cffi.const import CurlOpt
        curl.setopt(CurlOpt.SHARE, self._share._curl_share)
        curl._share = self._share            # curl_cffi's own pattern: the share outlives the handle


@dataclass
class WebClient:
    """Client side of htx-web: the server's ticket publication (object or its text), the
    Chrome version to present, the WebSocket path, the clock and randomness."""
    publication: TicketPublication | str
    impersonate: str = CHROME_TARGETS[0]
    path: str = "/"
    clock: Callable[[], float] = time.time
    randbytes: Callable[[int], bytes] = field(default=secrets.token_bytes)
    extra_curl_options: dict = field(default_factory=dict)
    carrier: str | None = None               # force "cookie" or "query" (tests); None: by the policy
    pin_sha256: str | None = None            # expected server key (``spki_pin``); mismatch fails closed
    # origin calibration (§5.1): TLS version, ALPN and optionally the exact chain, checked
    # after the TLS handshake and before the request carrying the ticket (betanet.tls.origin);
    # None: not checked
    origin: OriginExpectation | None = field(default_factory=OriginExpectation)
    # TLS session resumption across connections (SessionCache shared by the connections that
    # should resume, e.g. one per dialling node); None: every connection is a full handshake
    sessions: SessionCache | None = None

    def __post_init__(self) -> None:
        if isinstance(self.publication, str):
            self.publication = TicketPublication.from_text(self.publication)
        if self.impersonate not in CHROME_TARGETS:
            raise InvalidArgumentError(f"htx-web: impersonate must be one of {CHROME_TARGETS}, not {self.impersonate!r}")
        if not self.path.startswith("/"):
            raise InvalidArgumentError("htx-web: path must start with '/'")
        if self.sessions is not None and self.origin is not None and self.origin.chain_sha256 is not None:
            # a resumed handshake carries no certificate: the chain could not be checked
            raise InvalidArgumentError("htx-web: chain_sha256 cannot be checked on resumed sessions; "
                                       "use pin_sha256 with sessions, or no sessions")
        if self.carrier not in (None,) + WS_CARRIERS:
            raise InvalidArgumentError(f"htx-web: a WebSocket upgrade carries the ticket in {WS_CARRIERS}")


def _translate(exc: BaseException) -> BaseException:
    """curl's errors as the errors HTX callers already handle."""
    from curl_cffi.const import CurlECode
    from curl_cffi.curl import CurlError
    if not isinstance(exc, CurlError):
        return exc
    if exc.code in (CurlECode.SSL_PINNEDPUBKEYNOTMATCH, CurlECode.PEER_FAILED_VERIFICATION):
        return AuthenticationError(f"htx-web: server certificate refused: {exc}")
    if exc.code in (CurlECode.OPERATION_TIMEDOUT,):
        return TimeoutError(f"htx-web: {exc}")
    if exc.code in (CurlECode.COULDNT_CONNECT, CurlECode.COULDNT_RESOLVE_HOST, CurlECode.SEND_ERROR,
                    CurlECode.RECV_ERROR, CurlECode.GOT_NOTHING, CurlECode.SSL_CONNECT_ERROR):
        return ConnectionError(f"htx-web: {exc}")
    # e.g. an HTTP answer instead of 101: the site did not take the ticket
    return ProtocolError(f"htx-web: no WebSocket upgrade (ticket not accepted?): {exc}")


class _ChromeChannel:
    """Moves bytes between an HTX ``Connection`` and a connected curl handle (WebSocket,
    CONNECT_ONLY): readiness from the event loop on curl's socket, ``curl_ws_recv`` until
    EAGAIN, ``curl_ws_send`` resuming partial frames exactly as libcurl requires."""

    def __init__(self, curl) -> None:
        from curl_cffi.const import CurlInfo
        self.curl = curl
        self.fd = curl.getinfo(CurlInfo.ACTIVESOCKET)
        self.loop = asyncio.get_running_loop()
        self.conn = None
        self._out: list[bytes] = []
        self._off = 0
        self._queued = 0
        self._paused = False
        self._writing = False
        self._done = False
        self._closing: asyncio.Future | None = None
        self.origin = None                   # OriginObservation when calibrated (resumption too)
        self._gate = None                    # keeps the pre-request callback alive with the handle

    def start(self, conn) -> None:
        self.conn = conn
        self.loop.add_reader(self.fd, self._readable)
        self.loop.call_soon(self._readable)        # bytes curl buffered with the 101 response

    def _readable(self) -> None:
        from curl_cffi.const import CurlECode, CurlWsFlag
        from curl_cffi.curl import CurlError
        for _ in range(256):                         # bounded per wake-up; the loop calls again
            if self._paused or self._done:
                return
            try:
                data, frame = self.curl.ws_recv()
            except CurlError as exc:
                if exc.code == CurlECode.AGAIN:
                    return
                self._lost(exc)
                return
            if frame.flags & CurlWsFlag.CLOSE:
                self._lost(None)
                return
            if data:
                self.conn._data_received(bytes(data))
        self.loop.call_soon(self._readable)

    def write(self, data: bytes) -> None:
        if self._done:
            return
        for i in range(0, len(data), _CHUNK):
            chunk = bytes(data[i:i + _CHUNK])
            self._queued += len(chunk)
            self._out.append(chunk)
        self._flush()
        if self._queued > _HIGH and self.conn is not None:
            self.conn._pause()

    def _flush(self) -> None:
        from curl_cffi.const import CurlECode
        from curl_cffi.curl import CurlError
        while self._out and not self._done:
            chunk = self._out[0]
            try:
                n = self.curl.ws_send(memoryview(chunk)[self._off:])
            except CurlError as exc:
                if exc.code == CurlECode.AGAIN:
                    n = 0
                else:
                    self._lost(exc)
                    return
            if n == 0:
                if not self._writing:
                    self._writing = True
                    self.loop.add_writer(self.fd, self._flush)
                return
            self._off += n
            if self._off >= len(chunk):
                self._out.pop(0)
                self._off = 0
                self._queued -= len(chunk)
        if self._writing:
            self._writing = False
            self.loop.remove_writer(self.fd)
        if self._queued < _LOW and self.conn is not None:
            self.conn._resume()

    def _lost(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        if self.conn is not None:
            self.conn._connection_lost(exc)
            self.conn._transport_lost()
        with contextlib.suppress(Exception):
            self.curl.close()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self.loop.call_soon(self._readable)

    async def _shutdown(self) -> None:
        from curl_cffi.const import CurlWsFlag
        deadline = self.loop.time() + 5.0
        while self._out and not self._done and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        if not self._done:
            with contextlib.suppress(Exception):
                self.curl.ws_send(b"\x03\xe8", CurlWsFlag.CLOSE)
        self._lost(None)

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown())
            if self.conn is not None:
                self.conn._transport_closing = self._closing

    def abort(self) -> None:
        self._lost(None)


async def connect_chrome(web: WebClient, host: str, port: int, *, server_hostname: str | None = None,
                         cafile: str | os.PathLike | None = None, verify: bool = True,
                         timeout: float | None = None) -> _ChromeChannel:
    """TCP + TLS (Chrome's ClientHello) + WebSocket upgrade carrying a fresh access ticket."""
    from curl_cffi import Curl
    from curl_cffi.const import CurlOpt

    pub = web.publication
    ticket = make_ticket(pub, web.clock(), randbytes=web.randbytes)
    carrier = web.carrier or ticket.carrier
    if carrier not in WS_CARRIERS:           # re-draw by the policy restricted to what a WebSocket carries
        from betanet.tls.tickets import choose_carrier
        carrier = choose_carrier(pub.policy.restricted(WS_CARRIERS),
                                 int.from_bytes(web.randbytes(4), "big") / 2 ** 32)
    name = server_hostname or host
    url = f"wss://{'[' + name + ']' if ':' in name else name}:{port}{web.path}"
    headers = []
    if carrier == "query":
        url += f"?{FIELD}={ticket.encoded}"
    else:
        headers.append(f"Cookie: {pub.cookie_name}={ticket.encoded}".encode())
    curl = Curl()
    try:
        curl.setopt(CurlOpt.URL, url.encode())
        curl.impersonate(web.impersonate, default_headers=True)
        if headers:
            curl.setopt(CurlOpt.HTTPHEADER, headers)
        if not verify:
            curl.setopt(CurlOpt.SSL_VERIFYPEER, 0)
            curl.setopt(CurlOpt.SSL_VERIFYHOST, 0)
        elif cafile:
            curl.setopt(CurlOpt.CAINFO, str(cafile).encode())
        if web.pin_sha256:
            curl.setopt(CurlOpt.PINNEDPUBLICKEY, web.pin_sha256.encode())
        if name != host:
            curl.setopt(CurlOpt.RESOLVE, [f"{name}:{port}:{host}".encode()])
        if timeout:
            curl.setopt(CurlOpt.TIMEOUT_MS, int(timeout * 1000))
        curl.setopt(CurlOpt.TCP_NODELAY, 1)
        curl.setopt(CurlOpt.CONNECT_ONLY, 2)         # WebSocket: stop after the upgrade
        if web.sessions is not None:
            web.sessions.attach(curl)
        gate = None
        if web.origin is not None:
            gate = OriginGate(web.origin)
            gate.install(curl)
        for k, v in web.extra_curl_options.items():
            curl.setopt(k, v)
    except BaseException:
        curl.close()
        raise
    # perform() blocks (TCP + TLS + upgrade) in a worker thread; the handle is the worker's
    # until it returns (TIMEOUT_MS ends it), so a cancelled wait closes it only then.
    task = asyncio.ensure_future(asyncio.to_thread(curl.perform))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except BaseException as exc:
        # the gate (its cffi callback) must outlive a perform() still running in the worker
        task.add_done_callback(lambda _t, _keep=gate: curl.close())
        if gate is not None and gate.failure is not None:
            raise gate.failure from None         # the origin was refused before the request
        raise _translate(exc) from exc
    curl.setopt(CurlOpt.TIMEOUT_MS, 0)
    if gate is not None:
        try:
            gate.after_upgrade(curl)
        except BaseException:
            curl.close()
            raise
    chan = _ChromeChannel(curl)
    chan.origin = gate.observation if gate is not None else None
    chan._gate = gate                        # curl holds its callback pointer as long as the handle
    return chan
