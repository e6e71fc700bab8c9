"""Helpers for the stealth tests: ClientHellos captured off the wire before any TLS library
sees them (curl_cffi's Chrome impersonation, Python's ssl)."""
from __future__ import annotations

import socket
import ssl
import threading

from betanet.tls.clienthello import hello_bytes_needed


def read_hello(conn: socket.socket, timeout: float = 10.0) -> bytes:
    """The exact bytes of the first handshake message's records off ``conn``."""
    conn.settimeout(timeout)
    buf = bytearray()
    while not (n := hello_bytes_needed(buf)):
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError(f"closed after {len(buf)} bytes")
        buf += chunk
    return bytes(buf[:n])


def capture_curl(target: str, kind: str = "ws", host: str = "localhost") -> bytes:
    """Raw ClientHello records curl_cffi sends impersonating ``target`` for a WebSocket
    (``kind="ws"``) or a page load (``kind="https"``)."""
    from curl_cffi.requests import Session
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    out: list[bytes | BaseException] = []

    def accept() -> None:
        try:
            conn, _ = srv.accept()
            with conn:
                out.append(read_hello(conn))
        except BaseException as exc:   # noqa: BLE001 - reported to the caller
            out.append(exc)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    srv.settimeout(10)
    with Session(impersonate=target) as s:
        try:
            if kind == "ws":
                s.ws_connect(f"wss://{host}:{port}/", timeout=5)
            else:
                s.get(f"https://{host}:{port}/", timeout=5, verify=False)
        except Exception:   # noqa: BLE001 - the listener drops the connection after the hello
            pass
    t.join(10)
    srv.close()
    if not out or isinstance(out[0], BaseException):
        raise RuntimeError(f"no ClientHello captured: {out}")
    return out[0]


def capture_python_ssl(alpn: list[str] | None = None, server_name: str | None = "example.com") -> bytes:
    """The ClientHello Python's ssl (OpenSSL defaults) writes, without a network."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class HelloRelay:
    """A TCP listener in front of a real server: it reads the client's first TLS handshake
    message off the socket (before any TLS library sees it), records it, then relays both
    directions to ``target_port`` unchanged."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hellos: list[bytes] = []
        self.server_hellos: list[bytes] = []
        self.server = None
        self.port = 0

    async def start(self) -> "HelloRelay":
        import asyncio
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader, writer) -> None:
        import asyncio
        buf = bytearray()
        try:
            while not (n := hello_bytes_needed(buf)):
                chunk = await reader.read(65536)
                if not chunk:
                    writer.close()
                    return
                buf += chunk
            self.hellos.append(bytes(buf[:n]))
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except Exception:   # noqa: BLE001 - a test relay: drop the connection
            writer.close()
            return
        uw.write(bytes(buf))

        async def pipe(r, w, record: bool = False) -> None:
            seen = bytearray()
            try:
                while data := await r.read(1 << 16):
                    if record and seen is not None:
                        seen += data
                        if n := hello_bytes_needed(seen):
                            self.server_hellos.append(bytes(seen[:n]))
                            seen = None
                    w.write(data)
                    await w.drain()
            except Exception:   # noqa: BLE001
                pass
            finally:
                w.close()
        await asyncio.gather(pipe(reader, uw), pipe(ur, writer, True))

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def upgrade_request(host: str, path: str = "/", *, cookie: str | None = None,
                    body: bytes | None = None, method: str | None = None) -> bytes:
    """A WebSocket upgrade request as a browser-like client writes it (for raw tests)."""
    lines = [f"{method or ('POST' if body is not None else 'GET')} {path} HTTP/1.1", f"Host: {host}",
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "User-Agent: Mozilla/5.0"]
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    if body is not None:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def read_response(sock) -> bytes:
    """One HTTP/1.1 response (head + Content-Length body) from a blocking socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return buf
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    if head.startswith(b"HTTP/1.1 101") or head.startswith(b"HTTP/1.1 304"):
        n = 0
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            break
        rest += d
    return head + b"\r\n\r\n" + rest[:n]
