"""Bounded parser of TLS ClientHello and ServerHello messages (RFC 8446 §4.1.2-4.1.3).

Reads the record layer (one or more handshake records, as a ClientHello can span several
records), the handshake header, every field and every extension, and decodes the
extensions fingerprints use. Anything truncated, overlong, duplicated where TLS forbids it,
or larger than ``MAX_HELLO`` raises ``MalformedError``; nothing else is ever raised.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from betanet.errors import MalformedError

__all__ = ["ClientHello", "ServerHello", "parse_client_hello", "parse_server_hello",
           "parse_handshake", "record_length", "is_grease", "MAX_HELLO", "MAX_RECORD"]

MAX_RECORD = 16384 + 256      # TLSPlaintext.length limit (RFC 8446 §5.1), with slack for compression-era peers
MAX_HELLO = 1 << 16           # a hello larger than this is not from a browser (Chrome's is < 2 KiB)

CONTENT_HANDSHAKE = 22
HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_KEY_SHARE = 0x0033


def is_grease(v: int) -> bool:
    """RFC 8701 GREASE value (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


class _Reader:
    """Cursor over bytes; every read is bounds-checked and raises MalformedError."""

    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf: bytes | memoryview, what: str, start: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = start
        self.end = len(buf) if end is None else end
        self.what = what

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise MalformedError(f"tls: truncated {self.what} (need {n} bytes, {self.end - self.pos} left)")
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vec(self, lenbytes: int, what: str) -> "_Reader":
        """A sub-reader over a length-prefixed vector; the parent skips past it."""
        n = int.from_bytes(self.take(lenbytes), "big")
        if n > self.end - self.pos:
            raise MalformedError(f"tls: {what} length {n} overruns its container ({self.end - self.pos} left)")
        sub = _Reader(self.buf, what, self.pos, self.pos + n)
        self.pos += n
        return sub

    def done(self) -> None:
        if self.pos != self.end:
            raise MalformedError(f"tls: {self.end - self.pos} trailing bytes in {self.what}")


def _u16_list(r: _Reader, what: str, *, even: bool = True, min_len: int = 0) -> list[int]:
    if even and r.left() % 2:
        raise MalformedError(f"tls: odd length in {what}")
    if r.left() < min_len:
        raise MalformedError(f"tls: empty {what}")
    out = [r.u16() for _ in range(r.left() // 2)]
    r.done()
    return out


@dataclass
class ClientHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: list[tuple[int, bytes]]          # (type, body) in wire order, GREASE included
    server_name: str | None = None
    alpn: list[bytes] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    signature_algorithms: list[int] = field(default_factory=list)
    supported_groups: list[int] = field(default_factory=list)
    ec_point_formats: list[int] = field(default_factory=list)
    key_shares: list[tuple[int, int]] = field(default_factory=list)   # (group, key length)

    @property
    def extension_types(self) -> list[int]:
        return [t for t, _ in self.extensions]


@dataclass
class ServerHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: list[tuple[int, bytes]]
    selected_version: int | None = None
    key_share_group: int | None = None
    alpn: bytes | None = None

    @property
    def extension_types(self) -> list[int]:
        return [t for t, _ in self.extensions]

    @property
    def version(self) -> int:
        return self.selected_version if self.selected_version is not None else self.legacy_version


def record_length(data: bytes | memoryview) -> int | None:
    """Total length of the first TLS record in ``data`` (header included), None while fewer
    than 5 bytes are known. Raises MalformedError if the header is not a handshake record."""
    if len(data) < 5:
        return None
    if data[0] != CONTENT_HANDSHAKE:
        raise MalformedError(f"tls: record content type {data[0]} is not handshake (22)")
    if data[1] != 3:
        raise MalformedError(f"tls: record version {data[1]:#x}{data[2]:02x} is not TLS")
    n = (data[3] << 8) | data[4]
    if n == 0 or n > MAX_RECORD:
        raise MalformedError(f"tls: record length {n} out of range 1..{MAX_RECORD}")
    return 5 + n


def parse_handshake(data: bytes | memoryview) -> tuple[int, bytes]:
    """Reassemble the first handshake message from TLS records: (type, body). ``data`` must
    hold the whole message; a message larger than ``MAX_HELLO`` is refused."""
    payload = bytearray()
    pos = 0
    need: int | None = None
    while need is None or len(payload) < need:
        rl = record_length(data[pos:pos + 5])
        if rl is None:
            raise MalformedError("tls: truncated record header")
        if pos + rl > len(data):
            raise MalformedError(f"tls: truncated record (need {rl} bytes, {len(data) - pos} left)")
        payload += data[pos + 5:pos + rl]
        pos += rl
        if need is None and len(payload) >= 4:
            need = 4 + int.from_bytes(payload[1:4], "big")
            if need - 4 > MAX_HELLO:
                raise MalformedError(f"tls: handshake message of {need - 4} bytes exceeds {MAX_HELLO}")
        if len(payload) > MAX_HELLO + 4:
            raise MalformedError("tls: handshake data exceeds the hello limit")
    # Bytes after the message in the same record belong to the next message; ignore them.
    return payload[0], bytes(payload[4:need])


def _read_extensions(r: _Reader, what: str) -> list[tuple[int, bytes]]:
    if r.left() == 0:
        return []                       # extensions are optional before TLS 1.3 (RFC 5246 §7.4.1.2)
    ext = r.vec(2, f"{what} extensions")
    r.done()
    out: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    while ext.left():
        t = ext.u16()
        n = ext.u16()
        body = ext.take(n)
        if t in seen:                   # RFC 8446 §4.2: no two extensions of the same type
            raise MalformedError(f"tls: duplicate extension {t:#06x} in {what}")
        seen.add(t)
        out.append((t, body))
    return out


def _decode_client_extensions(ch: ClientHello) -> None:
    for t, body in ch.extensions:
        r = _Reader(body, f"extension {t:#06x}")
        if t == EXT_SERVER_NAME:
            if not body:
                continue                # a server echoes it empty; a client should not, but JA4 only needs presence
            lst = r.vec(2, "server_name_list")
            r.done()
            while lst.left():
                kind = lst.u8()
                nm = lst.vec(2, "server name")
                raw = nm.take(nm.left())
                if kind == 0 and ch.server_name is None:
                    try:
                        ch.server_name = raw.decode("ascii")
                    except UnicodeDecodeError as exc:
                        raise MalformedError("tls: SNI host name is not ASCII") from exc
        elif t == EXT_ALPN:
            lst = r.vec(2, "ALPN list")
            r.done()
            while lst.left():
                p = lst.vec(1, "ALPN protocol")
                if p.left() == 0:
                    raise MalformedError("tls: empty ALPN protocol name")
                ch.alpn.append(p.take(p.left()))
            if not ch.alpn:
                raise MalformedError("tls: empty ALPN list")
        elif t == EXT_SUPPORTED_VERSIONS:
            ch.supported_versions = _u16_list(r.vec(1, "supported_versions"), "supported_versions", min_len=2)
            r.done()
        elif t == EXT_SIGNATURE_ALGORITHMS:
            ch.signature_algorithms = _u16_list(r.vec(2, "signature_algorithms"), "signature_algorithms", min_len=2)
            r.done()
        elif t == EXT_SUPPORTED_GROUPS:
            ch.supported_groups = _u16_list(r.vec(2, "supported_groups"), "supported_groups", min_len=2)
            r.done()
        elif t == EXT_EC_POINT_FORMATS:
            f = r.vec(1, "ec_point_formats")
            r.done()
            ch.ec_point_formats = list(f.take(f.left()))
        elif t == EXT_KEY_SHARE:
            lst = r.vec(2, "key_share")
            r.done()
            while lst.left():
                g = lst.u16()
                k = lst.vec(2, "key_exchange")
                if k.left() == 0:
                    raise MalformedError("tls: empty key_exchange")
                ch.key_shares.append((g, k.left()))
                k.pos = k.end


def _decode_server_extensions(sh: ServerHello) -> None:
    for t, body in sh.extensions:
        r = _Reader(body, f"extension {t:#06x}")
        if t == EXT_SUPPORTED_VERSIONS:
            sh.selected_version = r.u16()
            r.done()
        elif t == EXT_KEY_SHARE:
            sh.key_share_group = r.u16()        # HelloRetryRequest carries the group alone
            if r.left():
                k = r.vec(2, "key_exchange")
                k.pos = k.end
            r.done()
        elif t == EXT_ALPN:
            lst = r.vec(2, "ALPN list")
            r.done()
            p = lst.vec(1, "ALPN protocol")
            lst.done()
            if p.left() == 0:
                raise MalformedError("tls: empty selected ALPN protocol")
            sh.alpn = p.take(p.left())


def _body(data: bytes | memoryview, want: int, record: bool) -> bytes:
    if record:
        kind, body = parse_handshake(data)
    else:
        if len(data) > MAX_HELLO + 4:
            raise MalformedError(f"tls: handshake message exceeds {MAX_HELLO} bytes")
        r = _Reader(data, "handshake header")
        kind = r.u8()
        body = r.take(r.u24())
        r.done()
    if kind != want:
        raise MalformedError(f"tls: handshake type {kind} is not {want}")
    return body


def parse_client_hello(data: bytes | memoryview, *, record: bool = True) -> ClientHello:
    """Parse a ClientHello from TLS records (``record=True``) or from a bare handshake
    message (type, 24-bit length, body)."""
    r = _Reader(_body(data, HS_CLIENT_HELLO, record), "ClientHello")
    version = r.u16()
    random = r.take(32)
    sid = r.vec(1, "legacy_session_id")
    if sid.left() > 32:
        raise MalformedError("tls: session id longer than 32 bytes")
    session_id = sid.take(sid.left())
    cs = r.vec(2, "cipher_suites")
    if cs.left() == 0 or cs.left() % 2:
        raise MalformedError("tls: empty or odd-length cipher_suites")
    ciphers = _u16_list(cs, "cipher_suites")
    cm = r.vec(1, "compression_methods")
    if cm.left() == 0:
        raise MalformedError("tls: empty compression_methods")
    compression = cm.take(cm.left())
    ch = ClientHello(version, random, session_id, ciphers, compression,
                     _read_extensions(r, "ClientHello"))
    _decode_client_extensions(ch)
    return ch


def parse_server_hello(data: bytes | memoryview, *, record: bool = True) -> ServerHello:
    r = _Reader(_body(data, HS_SERVER_HELLO, record), "ServerHello")
    version = r.u16()
    random = r.take(32)
    sid = r.vec(1, "legacy_session_id_echo")
    if sid.left() > 32:
        raise MalformedError("tls: session id longer than 32 bytes")
    session_id = sid.take(sid.left())
    suite = r.u16()
    comp = r.u8()
    sh = ServerHello(version, random, session_id, suite, comp, _read_extensions(r, "ServerHello"))
    _decode_server_extensions(sh)
    return sh


def hello_bytes_needed(data: bytes | memoryview) -> int:
    """How many leading bytes of a TLS stream hold its first handshake message: 0 while more
    data is needed to tell. Raises MalformedError on a stream that is not TLS or whose
    first message would exceed ``MAX_HELLO``. Lets a listener read exactly the ClientHello
    off a socket before any TLS library sees it."""
    pos = 0
    payload = 0
    need: int | None = None
    head = bytearray()
    while True:
        rl = record_length(data[pos:pos + 5])
        if rl is None or pos + rl > len(data):
            return 0
        body = data[pos + 5:pos + rl]
        if need is None:
            head += body[:4 - len(head)]
            if len(head) >= 4:
                need = 4 + int.from_bytes(head[1:4], "big")
                if need - 4 > MAX_HELLO:
                    raise MalformedError(f"tls: handshake message of {need - 4} bytes exceeds {MAX_HELLO}")
        payload += rl - 5
        pos += rl
        if need is not None and payload >= need:
            return pos
