"""The web front of an ``htx-web`` listener, sans-IO: an ordinary static HTTPS site (HTTP/1.1,
keep-alive, GET/HEAD, ETag/Last-Modified, 304/404/405/400) for every request, except a
WebSocket upgrade that carries a valid access ticket: that one gets ``101 Switching
Protocols`` and the connection carries HTX inside binary WebSocket messages.

Any failure (no ticket, bad ticket, replay, rate limit, not an upgrade) produces exactly the
response the site gives the same request without a ticket: the site never looks at tickets
when it answers, so the responses are byte-identical whatever the reason.
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import mimetypes
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from betanet.errors import InvalidArgumentError, ProtocolError
from betanet.tls.tickets import FIELD, MAX_ENCODED, TicketVerifier

__all__ = ["StaticSite", "WebFront", "WsFramer", "ws_accept"]

MAX_HEAD = 16 * 1024
MAX_BODY = 8 * 1024
MAX_FILE = 16 << 20
MAX_WS_FRAME = 1 << 20
SERVER = "nginx"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_STATUS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found",
           405: "Not Allowed", 413: "Request Entity Too Large", 501: "Not Implemented"}


def ws_accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _WS_GUID, usedforsecurity=False).digest())


def _error_page(code: int) -> bytes:
    title = f"{code} {_STATUS[code]}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"<hr><center>{SERVER}</center>\r\n</body>\r\n</html>\r\n").encode()


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        vals = [v for k, v in self.headers if k == name]
        return ", ".join(vals) if vals else None


class StaticSite:
    """Files under ``root`` (``/`` → ``index.html``); ``clock()`` gives unix seconds for
    ``Date``. Files are read on each request (bounded by ``MAX_FILE``)."""

    def __init__(self, root: str | os.PathLike, clock: Callable[[], float]) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidArgumentError(f"htx-web: site folder {root} is not a directory")
        self.clock = clock

    def _head(self, code: int, headers: list[tuple[str, str]], length: int, close: bool) -> bytes:
        lines = [f"HTTP/1.1 {code} {_STATUS[code]}", f"Server: {SERVER}",
                 f"Date: {email.utils.formatdate(self.clock(), usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if code != 304:
            lines.append(f"Content-Length: {length}")
        lines.append("Connection: close" if close else "Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def error(self, code: int, head_only: bool = False, close: bool = False,
              extra: list[tuple[str, str]] | None = None) -> bytes:
        body = _error_page(code)
        return self._head(code, [("Content-Type", "text/html")] + (extra or []), len(body), close) + \
            (b"" if head_only else body)

    def _path(self, target: str) -> Path | None:
        path = unquote(urlsplit(target).path, errors="strict")
        if not path.startswith("/") or "\x00" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." or p.startswith(".") for p in parts):
            return None
        p = self.root.joinpath(*parts)
        if path.endswith("/") or p == self.root:
            p = p / "index.html"
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if self.root not in real.parents or not real.is_file():
            return None
        return real

    def respond(self, req: Request, close: bool) -> bytes:
        head_only = req.method == "HEAD"
        if req.method not in ("GET", "HEAD"):
            return self.error(405, close=close, extra=[("Allow", "GET, HEAD")])
        try:
            p = self._path(req.target)
        except UnicodeDecodeError:
            p = None
        try:
            if p is None:
                raise FileNotFoundError
            st = p.stat()
            if st.st_size > MAX_FILE:
                raise FileNotFoundError
            body = b"" if head_only else p.read_bytes()
        except OSError:                      # missing, unreadable, or gone since the lookup
            return self.error(404, head_only, close)
        etag = f'"{int(st.st_mtime):x}-{st.st_size:x}"'
        ctype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        hdrs = [("Content-Type", ctype),
                ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
                ("ETag", etag), ("Accept-Ranges", "bytes")]
        if req.header("if-none-match") == etag:
            return self._head(304, hdrs, 0, close)
        return self._head(200, hdrs, len(body) if not head_only else st.st_size, close) + body


def _parse_head(raw: bytes) -> Request:
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError as exc:          # pragma: no cover - latin-1 decodes everything
        raise ProtocolError("bad head") from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper() or \
            parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1]:
        raise ProtocolError("bad request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            raise ProtocolError("bad header line")
        headers.append((name.lower(), value.strip()))
    return Request(parts[0], parts[1], parts[2], headers)


class WsFramer:
    """Server side of RFC 6455 framing for binary messages: unmasks client frames (masking
    required), answers PING, reports CLOSE; frames outgoing bytes unmasked."""

    def __init__(self, max_frame: int = MAX_WS_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self.closed = False
        self.replies: list[bytes] = []          # control frames to send (PONG, CLOSE)

    @staticmethod
    def frame(data: bytes | bytearray | memoryview, opcode: int = 2) -> bytes:
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        return head + bytes(data)

    def feed(self, data: bytes) -> bytes:
        """Wire bytes in, message payload bytes out (may be empty). Raises ProtocolError."""
        self._buf += data
        out = bytearray()
        buf = self._buf
        while len(buf) >= 2 and not self.closed:
            b0, b1 = buf[0], buf[1]
            op, n, pos = b0 & 0x0F, b1 & 0x7F, 2
            if b0 & 0x70 or not b1 & 0x80:
                raise ProtocolError("websocket: reserved bits set or unmasked client frame")
            if n == 126:
                if len(buf) < 4:
                    break
                n, pos = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
            if n > self._max or (op >= 8 and (n > 125 or not b0 & 0x80)):
                raise ProtocolError("websocket: frame too large or bad control frame")
            if len(buf) < pos + 4 + n:
                break
            mask = np.frombuffer(bytes(buf[pos:pos + 4]), dtype=np.uint32)[0]
            start = pos + 4
            # Unmask four bytes at a time: the 32-bit mask repeats every 4 payload bytes.
            words = np.frombuffer(bytes(buf[start:start + n]) + bytes(-n % 4), dtype=np.uint32)
            payload = (words ^ mask).tobytes()[:n]
            del buf[:start + n]
            if op in (0, 1, 2):
                out += payload
            elif op == 9:
                self.replies.append(self.frame(payload, 10))
            elif op == 8:
                self.closed = True
                self.replies.append(self.frame(payload[:2], 8))
            elif op != 10:
                raise ProtocolError(f"websocket: unknown opcode {op}")
        return bytes(out)


class WebFront:
    """One connection's HTTP side. ``received(data)`` returns the bytes to write back and,
    once a valid ticket upgraded the connection, any HTX bytes that followed (``upgraded``
    turns True). ``closing`` asks the caller to close after writing."""

    def __init__(self, site: StaticSite, verifier: TicketVerifier, peer: str,
                 clock: Callable[[], float], ws_path: str = "/") -> None:
        self.site, self.verifier, self.peer, self.clock = site, verifier, peer, clock
        self.ws_path = ws_path
        self._buf = bytearray()
        self._pending: Request | None = None
        self._need = 0
        self.upgraded = False
        self.closing = False
        self.ws: WsFramer | None = None
        self.last_reason: str | None = None

    def _ticket(self, req: Request) -> str | None:
        """The one carried ticket, or None (none, or more than one carrier)."""
        found: list[str] = []
        cookie_name = self.verifier.key.publication.cookie_name
        for k, v in req.headers:
            if k == "cookie":
                for c in v.split(";"):
                    n, _, val = c.strip().partition("=")
                    if n == cookie_name:
                        found.append(val)
        try:                                 # too many fields, bad bytes: no ticket, like any refusal
            q = urlsplit(req.target).query
            if q:
                found += parse_qs(q, max_num_fields=32).get(FIELD, [])
            if req.body and (req.header("content-type") or "").split(";")[0].strip() == \
                    "application/x-www-form-urlencoded":
                found += parse_qs(req.body.decode("ascii"), max_num_fields=32).get(FIELD, [])
        except (UnicodeDecodeError, ValueError):
            return None
        return found[0] if len(found) == 1 else None

    def _upgrade(self, req: Request) -> bytes | None:
        key = req.header("sec-websocket-key")
        if (req.method not in ("GET", "POST") or (req.header("upgrade") or "").lower() != "websocket"
                or "upgrade" not in (req.header("connection") or "").lower().replace(" ", "").split(",")
                or req.header("sec-websocket-version") != "13" or key is None
                or urlsplit(req.target).path != self.ws_path):
            return None
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                return None
        except ValueError:
            return None
        ticket = self._ticket(req)
        if ticket is None or len(ticket) > MAX_ENCODED:
            self.last_reason = "no-ticket" if ticket is None else "oversized"
            return None
        res = self.verifier.verify(ticket, self.peer, self.clock())
        self.last_reason = res.reason
        if not res.ok:
            return None
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + ws_accept(key.encode()) + b"\r\n\r\n")

    def received(self, data: bytes) -> tuple[bytes, bytes]:
        """(bytes to send, HTX bytes). After ``upgraded`` the second part is HTX payload."""
        if self.upgraded:
            return b"", self.ws.feed(data)
        if self.closing:
            return b"", b""
        self._buf += data
        out = bytearray()
        while not self.closing and not self.upgraded:
            if self._pending is None:
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD:
                        out += self.site.error(400, close=True)
                        self.closing = True
                    break
                if end + 4 > MAX_HEAD:
                    out += self.site.error(400, close=True)
                    self.closing = True
                    break
                try:
                    req = _parse_head(bytes(self._buf[:end]))
                except ProtocolError:
                    out += self.site.error(400, close=True)
                    self.closing = True
                    break
                del self._buf[:end + 4]
                if req.header("transfer-encoding") is not None:
                    out += self.site.error(501, close=True)
                    self.closing = True
                    break
                cl = req.header("content-length")
                if cl is not None and (not cl.isdigit() or len(cl) > 9):
                    out += self.site.error(400, close=True)
                    self.closing = True
                    break
                self._need = int(cl or 0)
                if self._need > MAX_BODY:
                    out += self.site.error(413, close=True)
                    self.closing = True
                    break
                self._pending = req
            if len(self._buf) < self._need:
                break
            req, self._pending = self._pending, None
            req.body = bytes(self._buf[:self._need])
            del self._buf[:self._need]
            switch = self._upgrade(req)
            if switch is not None:
                out += switch
                self.upgraded = True
                self.ws = WsFramer()
                rest = bytes(self._buf)
                self._buf.clear()
                return bytes(out), self.ws.feed(rest)
            close = (req.version == "HTTP/1.0" or
                     "close" in (req.header("connection") or "").lower())
            out += self.site.respond(req, close)
            if close:
                self.closing = True
        return bytes(out), b""
