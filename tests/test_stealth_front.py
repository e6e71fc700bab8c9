"""The htx-web front, sans-IO: request parsing bounds, the upgrade gate, WebSocket framing,
and a bounded fuzz run (never anything but bytes out or ProtocolError)."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betanet.errors import ProtocolError
from betanet.tls.tickets import FIELD, TicketKey, TicketVerifier, make_ticket
from betanet.tls.web import MAX_HEAD, StaticSite, WebFront, WsFramer, ws_accept

T = 1767225600.0


@pytest.fixture()
def front(tmp_path):
    (tmp_path / "index.html").write_bytes(b"<h1>hi</h1>")
    key = TicketKey.generate()
    site = StaticSite(tmp_path, lambda: T)
    ver = TicketVerifier(key, rate=100, burst=100)
    return lambda: WebFront(site, ver, "192.0.2.7", lambda: T), key


def _upgrade(extra: str = "", path: str = "/") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n").encode()


def _masked(payload: bytes, opcode: int = 2, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                    bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else
                                    bytes([0x80 | 127]) + n.to_bytes(8, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_rfc6455_accept_example():
    assert ws_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_upgrade_with_ticket_in_one_read_then_frames(front):
    make, key = front
    f = make()
    t = make_ticket(key.publication, T)
    msg = b"htx bytes " * 2000
    reply, htx = f.received(_upgrade(f"Cookie: a=b; {key.publication.cookie_name}={t.encoded}\r\n")
                            + _masked(msg[:100]) + _masked(b"", 9) + _masked(msg[100:], 0))
    assert reply.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in reply
    assert f.upgraded and htx == msg
    assert f.ws.replies == [b"\x8a\x00"]              # PONG
    # byte at a time still works, and CLOSE is answered
    out = b"".join(f.received(bytes([b]))[1] for b in _masked(b"abc") + _masked(b"\x03\xe8", 8))
    assert out == b"abc" and f.ws.closed
    for bad in (b"\x82\x03abc",                      # unmasked client frame
                b"\xc2\x80" + bytes(4),              # RSV1 without an extension
                b"\x82\xff" + (1 << 40).to_bytes(8, "big") + bytes(4),   # larger than the bound
                b"\x89\xfe\x00\x7e" + bytes(130)):   # control frame over 125 bytes
        with pytest.raises(ProtocolError):
            WsFramer().feed(bad)
    assert WsFramer.frame(b"x" * 70000)[:10] == b"\x82\x7f" + (70000).to_bytes(8, "big")


def test_gate_refusals_are_the_site(front):
    make, key = front
    base = make().received(_upgrade())[0]
    assert base.startswith(b"HTTP/1.1 200 OK") and base.endswith(b"<h1>hi</h1>")
    t = make_ticket(key.publication, T)
    cookie = f"Cookie: {key.publication.cookie_name}={t.encoded}\r\n"
    for name, req in {"wrong path": _upgrade(cookie, "/ws"),
                      "no version": _upgrade(cookie).replace(b"Sec-WebSocket-Version: 13\r\n", b""),
                      "bad key": _upgrade(cookie).replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short"),
                      "two cookies": _upgrade(cookie + cookie)}.items():
        f = make()
        reply, _ = f.received(req)
        assert not f.upgraded, name
        if name != "wrong path":
            assert reply == base, name
    many = "&".join(f"k{i}=v" for i in range(40))
    for name, req in {"40 query fields": _upgrade(cookie, f"/?{many}"),
                      "40 form fields": _upgrade(cookie).replace(b"GET", b"POST").replace(
                          b"\r\n\r\n", b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                          + f"Content-Length: {len(many)}\r\n\r\n{many}".encode()),
                      "non-ascii form": _upgrade(cookie).replace(b"GET", b"POST").replace(
                          b"\r\n\r\n", b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                          b"Content-Length: 2\r\n\r\n\xff\xfe")}.items():
        f = make()
        reply, _ = f.received(req)
        assert not f.upgraded and reply.startswith(b"HTTP/1.1 "), name
    f = make()
    assert f.received(_upgrade(cookie))[0].startswith(b"HTTP/1.1 101")


def test_request_bounds(front):
    make, _ = front
    f = make()
    assert f.received(b"A" * (MAX_HEAD + 1))[0].startswith(b"HTTP/1.1 400") and f.closing
    f = make()
    assert f.received(b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n")[0].startswith(b"HTTP/1.1 413")
    f = make()
    assert f.received(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")[0].startswith(b"HTTP/1.1 501")
    f = make()
    assert f.received(b"GET / HTTP/1.0\r\n\r\n")[0].startswith(b"HTTP/1.1 200") and f.closing
    f = make()                                        # pipelined requests answered in order
    out, _ = f.received(b"GET /x HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert out.index(b"404 Not Found") < out.index(b"200 OK")
    f = make()
    out, _ = f.received(b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab")
    assert out == b"" and f.received(b"c")[0].startswith(b"HTTP/1.1 200")


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.one_of(st.binary(max_size=200), st.sampled_from(
    [b"GET / HTTP/1.1\r\n", b"\r\n", b"Upgrade: websocket\r\n", f"Cookie: __Host-bnsid={'A' * 200}\r\n".encode(),
     f"GET /?{FIELD}=AAAA HTTP/1.1\r\n".encode(), b"Content-Length: 5\r\n", b"Connection: Upgrade\r\n",
     b"Sec-WebSocket-Version: 13\r\n", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
     ("GET /?" + "&".join(f"k{i}=v" for i in range(40)) + " HTTP/1.1\r\n").encode(),
     b"Content-Type: application/x-www-form-urlencoded\r\n", b"POST / HTTP/1.1\r\n", b"\xff\xfe\xfd"])),
    max_size=12))
def test_fuzz_front(tmp_path_factory, chunks):
    d = tmp_path_factory.mktemp("fz")
    (d / "index.html").write_bytes(b"x")
    key = TicketKey.generate()
    f = WebFront(StaticSite(d, lambda: T), TicketVerifier(key), "192.0.2.1", lambda: T)
    for c in chunks:
        try:
            reply, htx = f.received(c)
        except ProtocolError:
            break
        assert isinstance(reply, bytes) and htx == b""        # nobody has a valid ticket here
        assert not f.upgraded


def test_demo_section():
    import io

    from betanet import demo
    out = io.StringIO()
    assert demo.run(["stealth"], out=out) == 0, out.getvalue()
    assert "t13d1516h1_8daaf6152771_5b37b36a67c0" in out.getvalue()   # Chromium 156, captured
