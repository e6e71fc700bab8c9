"""htx-web end to end: Chrome's ClientHello on the wire (JA4 against real Chrome's), HTX
through it, access tickets on the wire, byte-identical decoy responses, rate limits, probes."""
from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
from pathlib import Path

import pytest

from betanet.htx import connect, serve
from betanet.htx.keys import generate_private_key, public_key
from betanet.htx.tls import write_self_signed
from betanet.tls.clienthello import parse_client_hello
from betanet.tls.fingerprint import fingerprints, ja4_from_raw
from betanet.tls.htxweb import CHROME_TARGETS, WebClient, WebServer
from betanet.tls.tickets import FIELD, TicketKey, TicketPublication, b64url_encode, make_ticket
from stealth_helpers import HelloRelay, read_response, upgrade_request

pytestmark = pytest.mark.timeout(300)

# JA4 of real Chrome, per version and connection kind (sources: docs/stealth.md).
# Measured here: real Chromium 156 (tests/vectors/chrome156/, tools/chrome_capture.py), whose
# hellos chrome152 reproduces (tests/test_tls_chrome_capture.py).
_CAPTURED = json.loads((Path(__file__).parent / "vectors/chrome156/meta.json").read_text())["captures"]
# WebSocket (ALPN http/1.1 only, no ALPS): chrome142 from real Chrome 149 opening a wss://
# connection (Chrome 142-149 send the same hello).
CHROME_WS_JA4 = {"chrome142": "t13d1515h1_8daaf6152771_0a20fe35d3a5",
                 "chrome152": _CAPTURED["ws_localhost_1.bin"]["ja4"]}
# Page loads (ALPN h2,http/1.1 + ALPS), captured from real Chrome: 135-149 (browserleaks,
# curl_cffi issue #529; apify/impit PR #510 for 142) and 151.0.7922.72 (apify/impit PR #510).
CHROME_PAGE_JA4 = {"chrome142": "t13d1516h2_8daaf6152771_d8a2da3f94cd",
                   "chrome151": "t13d1516h2_8daaf6152771_806a8c22fdea",
                   "chrome152": _CAPTURED["page_localhost.bin"]["ja4"]}
CHROME151_PAGE_JA4_R = ("t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
                        "0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_"
                        "0904,0905,0906,0403,0804,0401,0503,0805,0501,0806,0601")


def ws_kind_from_page(ja4_r: str) -> str:
    """Chrome's WebSocket hello is its page-load hello with ALPN http/1.1 only and no ALPS
    (the rule the Chromium 156 capture shows; used to derive chrome151's WebSocket value)."""
    head, ciphers, exts, sigs = ja4_r.split("_")
    exts = ",".join(e for e in exts.split(",") if e not in ("44cd", "4469"))
    n = int(head[6:8]) - 1
    return ja4_from_raw(f"{head[:6]}{n:02d}h1_{ciphers}_{exts}_{sigs}")


CHROME_WS_JA4["chrome151"] = ws_kind_from_page(CHROME151_PAGE_JA4_R)
PAGE = b"<!doctype html><title>Bakery</title><h1>Fresh bread daily</h1>\n"
T = 1767225600.0 + 1800


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return write_self_signed(d, ["localhost", "127.0.0.1"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    (d / "index.html").write_bytes(PAGE)
    (d / "about.html").write_bytes(b"<p>about us</p>\n")
    (d / ".secret").write_bytes(b"no")
    return d


async def _echo_hash(conn):
    """Per stream: read to EOF, answer SHA-256 of what came, then `n` bytes if asked."""
    while True:
        try:
            st = await conn.accept_stream()
        except Exception:   # noqa: BLE001 - connection over
            return
        h, first = hashlib.sha256(), b""
        while d := await st.read(1 << 16):
            if not first:
                first = d[:12]
            h.update(d)
        st.write(h.digest())
        want = int.from_bytes(first[4:12], "big") if first.startswith(b"DOWN") else 0
        data = bytes(range(256)) * 256
        while want > 0:
            st.write(data[:min(want, len(data))])
            want -= len(data)
            await st.drain()
        await st.close()


async def _server(site, certs, key=None, **kw):
    sk = generate_private_key()
    tk = key or TicketKey.generate()
    web = WebServer(site, tk, **kw)
    srv = await serve(_echo_hash, "127.0.0.1", 0, sk, transport="htx-web", certfile=certs[0],
                      keyfile=certs[1], web=web)
    return srv, sk, tk, web


def _client(tk, target="chrome142", **kw):
    return WebClient(tk.publication.to_text(), impersonate=target, **kw)


async def _connect(port, sk, certs, web):
    return await connect("127.0.0.1", port, public_key(sk), transport="htx-web", cafile=certs[0],
                         server_hostname="localhost", web=web)


@pytest.mark.parametrize("target", CHROME_TARGETS)
def test_clienthello_is_chromes(site, certs, target):
    async def main():
        srv, sk, tk, _ = await _server(site, certs)
        async with srv:
            relay = await HelloRelay(srv.port).start()
            try:
                for _ in range(3):
                    conn = await _connect(relay.port, sk, certs, _client(tk, target))
                    await conn.ping()
                    await conn.close()
                # a page load by the same client kind: Chrome's other fingerprint, and the site
                from curl_cffi.requests import AsyncSession
                async with AsyncSession(impersonate=target) as s:
                    r = await s.get(f"https://localhost:{relay.port}/", verify=str(certs[0]))
                    assert r.status_code == 200 and r.content == PAGE
            finally:
                await relay.close()
            return relay.hellos, relay.server_hellos
    hellos, server_hellos = asyncio.run(main())
    fps = [fingerprints(parse_client_hello(h)) for h in hellos]
    ws, page = fps[:3], fps[3]
    assert page.ja4 == CHROME_PAGE_JA4[target]                 # real Chrome's page-load hello
    # ... so its lists are real Chrome's; the WebSocket hello is that one by Chrome's WS rule
    assert {f.ja4 for f in ws} == {ws_kind_from_page(page.ja4_r)}
    if target in CHROME_WS_JA4:                                 # and, where published, measured
        assert {f.ja4 for f in ws} == {CHROME_WS_JA4[target]}
    assert len({f.ja3n for f in ws}) == 1                     # stable ...
    assert len({f.ja4_o for f in ws}) == 3                    # ... while Chrome permutes extensions
    ch = parse_client_hello(hellos[0])
    assert ch.alpn == [b"http/1.1"] and ch.server_name == "localhost"
    assert 0x11EC in [g for g, _ in ch.key_shares] and 0xFE0D in ch.extension_types   # ML-KEM share, ECH GREASE
    # the server's hello: TLS 1.3 (its ALPN choice travels encrypted; see _tls for it)
    from betanet.tls.clienthello import parse_server_hello
    assert len(server_hellos) == 4
    for raw in server_hellos:
        sh = parse_server_hello(raw)
        assert sh.version == 0x0304 and sh.cipher_suite in (0x1301, 0x1302, 0x1303)
        assert sh.key_share_group in (0x11EC, 0x001D)


def test_htx_end_to_end_through_chrome_tls(site, certs):
    async def main():
        srv, sk, tk, _ = await _server(site, certs)
        async with srv:
            conn = await _connect(srv.port, sk, certs, _client(tk, "chrome151"))
            up = bytes(range(256)) * (32 * 4096)                    # 32 MiB up
            st = await conn.open_stream()
            for i in range(0, len(up), 1 << 16):
                st.write(up[i:i + (1 << 16)])
                await st.drain()
                if i == len(up) // 2:
                    await conn.update_key()
            st.write_eof()
            got = await st.readexactly(32)
            assert got == hashlib.sha256(up).digest()
            # 8 MiB down, on a second stream
            st = await conn.open_stream()
            req = b"DOWN" + (8 << 20).to_bytes(8, "big")
            st.write(req)
            st.write_eof()
            data = b""
            while chunk := await st.read():
                data += chunk
            assert data[:32] == hashlib.sha256(req).digest()
            body = data[32:]
            assert len(body) == 8 << 20
            assert hashlib.sha256(body).digest() == hashlib.sha256((bytes(range(256)) * 256) * 128).digest()
            await conn.close()
    asyncio.run(main())


def _tls(port, source=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])             # as a browser offers; an HTTP/1.1 site picks h1
    raw = socket.create_connection(("127.0.0.1", port), timeout=20,
                                   source_address=(source, 0) if source else None)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    assert s.selected_alpn_protocol() == "http/1.1"
    return s


def _exchange(port, req: bytes, source=None) -> bytes:
    with _tls(port, source) as s:
        s.sendall(req)
        return read_response(s)


def test_tickets_on_the_wire_and_identical_decoys(site, certs):
    async def main():
        srv, sk, tk, web = await _server(site, certs, clock=lambda: T)
        pub = tk.publication
        cookie = pub.cookie_name

        async def ask(req, source=None):
            return await asyncio.to_thread(_exchange, srv.port, req, source)
        async with srv:
            # valid: cookie and query over curl (Chrome), body over a raw client
            for carrier in ("cookie", "query"):
                conn = await _connect(srv.port, sk, certs, _client(tk, carrier=carrier, clock=lambda: T))
                assert await conn.ping() >= 0
                await conn.close()
            t = make_ticket(pub, T)
            r = await ask(upgrade_request("localhost", body=f"{FIELD}={t.encoded}".encode()))
            assert r.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            assert web.verifier.counters["ok"] == 3
            # failures: each gets exactly the bytes of the same request without a ticket
            base = await ask(upgrade_request("localhost"))
            assert base.startswith(b"HTTP/1.1 200 OK\r\n") and base.endswith(PAGE) and b"Server: nginx" in base
            replay = make_ticket(pub, T)
            other = TicketKey.generate()
            good = make_ticket(pub, T).payload
            cases = {
                "wrong hour": make_ticket(pub, T - 2 * 3600).encoded,
                "wrong key id": make_ticket(other.publication, T).encoded,
                "wrong key": make_ticket(TicketPublication(other.publication.public_key, pub.key_id), T).encoded,
                "malformed": "%%%not-base64%%%",
                "truncated": b64url_encode(good[:90]),
                "oversized": b64url_encode(good[:105] + bytes(900)),
                "short padding": b64url_encode(good[:105 + 10]),
                "replay-1": replay.encoded,
            }
            for name, enc in cases.items():
                cases[name] = await ask(upgrade_request("localhost", cookie=f"{cookie}={enc}"))
            cases["replay-2"] = await ask(upgrade_request("localhost", cookie=f"{cookie}={replay.encoded}"))
            assert cases.pop("replay-1").startswith(b"HTTP/1.1 101")
            cases["query wrong hour"] = await ask(upgrade_request(
                "localhost", f"/?{FIELD}={make_ticket(pub, T + 7200).encoded}"))
            two = make_ticket(pub, T).encoded
            cases["two carriers"] = await ask(upgrade_request("localhost", f"/?{FIELD}={two}",
                                                              cookie=f"{cookie}={two}"))
            cases["valid ticket, not an upgrade"] = await ask(
                f"GET /?{FIELD}={make_ticket(pub, T).encoded} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            for name, resp in cases.items():
                assert resp == base, name
            # POST carriers that fail answer as the site answers any POST
            post = await ask(upgrade_request("localhost", body=b"x=1"))
            assert post.startswith(b"HTTP/1.1 405 Not Allowed") and b"Allow: GET, HEAD" in post
            bad_post = await ask(upgrade_request("localhost", body=f"{FIELD}={cases and 'AAAA'}".encode()))
            assert bad_post == post
            reasons = web.verifier.counters
            for r in ("ticket", "key-id", "malformed", "padding", "replay"):   # oversized: refused before
                assert reasons.get(r, 0) >= 1, (r, reasons)
    asyncio.run(main())


def test_flood_from_one_prefix_is_limited_while_another_is_served(site, certs):
    async def main():
        srv, sk, tk, web = await _server(site, certs, rate=0.01, burst=3)
        pub = tk.publication
        async with srv:
            def flood(i):
                return _exchange(srv.port, upgrade_request(
                    "localhost", cookie=f"{pub.cookie_name}={make_ticket(pub, T - 9 * 3600).encoded}"),
                    source=f"127.0.1.{10 + i}")
            answers = await asyncio.gather(*[asyncio.to_thread(flood, i) for i in range(12)])
            assert all(a.startswith(b"HTTP/1.1 200 OK") for a in answers)
            assert web.verifier.counters.get("rate", 0) >= 8
            # a valid ticket from the flooded /24 is refused now; another prefix is served
            t = make_ticket(pub, __import__("time").time())
            r = await asyncio.to_thread(_exchange, srv.port, upgrade_request(
                "localhost", cookie=f"{pub.cookie_name}={t.encoded}"), "127.0.1.99")
            assert r.startswith(b"HTTP/1.1 200 OK")
            conn = await _connect(srv.port, sk, certs, _client(tk))
            assert await conn.ping() >= 0
            await conn.close()
    asyncio.run(main())


def test_probes_see_an_ordinary_site(site, certs):
    async def main():
        srv, sk, tk, web = await _server(site, certs)
        async with srv:
            def probe():
                out = {}
                with _tls(srv.port) as s:                            # keep-alive: several requests
                    for name, req in (("index", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                                      ("head", b"HEAD /about.html HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                                      ("missing", b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                                      ("hidden", b"GET /.secret HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                                      ("escape", b"GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                                      ("post", b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi")):
                        s.sendall(req)
                        out[name] = read_response(s) if name != "head" else s.recv(65536)
                    etag = [ln.split(b": ", 1)[1] for ln in out["index"].split(b"\r\n") if ln.startswith(b"ETag")][0]
                    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: " + etag + b"\r\n\r\n")
                    out["304"] = read_response(s)
                    s.sendall(b"GARBAGE\r\n\r\n")
                    out["bad"] = read_response(s)
                return out
            out = await asyncio.to_thread(probe)
            assert out["index"].startswith(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: ") and out["index"].endswith(PAGE)
            assert b"Content-Type: text/html; charset=utf-8" in out["index"]
            assert out["head"].startswith(b"HTTP/1.1 200 OK") and out["head"].endswith(b"\r\n\r\n")
            assert b"Content-Length: 16" in out["head"]
            for k in ("missing", "hidden", "escape"):
                assert out[k].startswith(b"HTTP/1.1 404 Not Found"), k
            assert out["post"].startswith(b"HTTP/1.1 405")
            assert out["304"].startswith(b"HTTP/1.1 304 Not Modified")
            assert out["bad"].startswith(b"HTTP/1.1 400 Bad Request") and b"Connection: close" in out["bad"]
            # the system curl, as a scanner would use it
            proc = await asyncio.create_subprocess_exec(
                "curl", "-sk", "--http1.1", f"https://127.0.0.1:{srv.port}/", stdout=asyncio.subprocess.PIPE)
            body, _ = await proc.communicate()
            assert body == PAGE
            assert web.verifier.counters == {}                  # nobody presented a ticket
    asyncio.run(main())


def test_client_pins_and_refusals(site, certs, tmp_path):
    from betanet.errors import AuthenticationError, InvalidArgumentError, ProtocolError
    from betanet.tls.htxweb import spki_pin
    other_cert, _ = write_self_signed(tmp_path, ["localhost"])

    async def main():
        srv, sk, tk, web = await _server(site, certs)
        async with srv:
            conn = await _connect(srv.port, sk, certs, _client(tk, pin_sha256=spki_pin(certs[0])))
            assert await conn.ping() >= 0
            await conn.close()
            with pytest.raises(AuthenticationError):           # origin key not the expected one
                await _connect(srv.port, sk, certs, _client(tk, pin_sha256=spki_pin(other_cert)))
            with pytest.raises(ProtocolError):                 # the site answered; no upgrade
                await _connect(srv.port, sk, certs, _client(TicketKey.generate()))
            assert web.verifier.counters.get("key-id") == 1
    asyncio.run(main())
    with pytest.raises(InvalidArgumentError):
        WebClient(TicketKey.generate().publication, impersonate="firefox133")
    with pytest.raises(InvalidArgumentError):
        WebClient(TicketKey.generate().publication, carrier="body")


def test_decoy_visitors_hold_a_handshake_slot_until_the_deadline(site, certs):
    """A client that never finishes its request (or just browses) is closed at the handshake
    timeout, and the listener's admission counts return to zero."""
    async def main():
        sk = generate_private_key()
        srv = await serve(_echo_hash, "127.0.0.1", 0, sk, transport="htx-web", certfile=certs[0],
                          keyfile=certs[1], web=WebServer(site, TicketKey.generate()), handshake_timeout=1.0)
        async with srv:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            r, w = await asyncio.open_connection("127.0.0.1", srv.port, ssl=ctx, server_hostname="localhost")
            w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")     # never finished
            await w.drain()
            await asyncio.sleep(0.3)
            assert srv.stats()["handshakes"] == 1
            assert await asyncio.wait_for(r.read(), 10) == b""             # closed by the server
            w.close()
            for _ in range(50):
                if srv.stats()["connections"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert srv.stats()["connections"] == 0 and srv.stats()["handshakes"] == 0
    asyncio.run(main())
