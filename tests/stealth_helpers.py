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
