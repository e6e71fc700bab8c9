"""Origin calibration (Betanet 1.1 §5.1) of htx-web clients: TLS version, ALPN and the
certificate chain checked after the TLS handshake and before the request that carries the
access ticket; each mismatch fails closed with a clear AuthenticationError and the server sees
no ticket attempt. Real curl_cffi against local origins."""
from __future__ import annotations

import asyncio
import ssl

import pytest

from betanet.errors import AuthenticationError, InvalidArgumentError
from betanet.htx import connect, serve
from betanet.htx.keys import generate_private_key, public_key
from betanet.htx.tls import write_self_signed
from betanet.tls.htxweb import WebClient, WebServer, server_context
from betanet.tls.origin import OriginExpectation, OriginObservation, chain_sha256, check_origin
from betanet.tls.tickets import TicketKey

pytest.importorskip("curl_cffi")
pytestmark = pytest.mark.timeout(120)
PAGE = b"<!doctype html><title>Tea</title><p>Loose leaf.</p>\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return write_self_signed(tmp_path_factory.mktemp("certs"), ["localhost", "127.0.0.1"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    (d / "index.html").write_bytes(PAGE)
    return d


def _context(certs, *, max_tls12=False, alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    ctx.load_cert_chain(str(certs[0]), str(certs[1]))
    return ctx


async def _attempt(site, certs, ctx, origin):
    """Connect a ticket-holding client to an htx-web origin served with ``ctx``; returns
    whether it connected (and the error if not). A refused origin has seen no HTX connection
    and no ticket attempt (the server-side count of ticket verifications is 0)."""
    sk, tk = generate_private_key(), TicketKey.generate()
    seen = []

    async def handler(conn):
        seen.append(conn)
    server_web = WebServer(site, tk)
    srv = await serve(handler, "127.0.0.1", 0, sk, transport="htx-web", ssl_context=ctx,
                      web=server_web, handshake_timeout=3)
    async with srv:
        web = WebClient(tk.publication, origin=origin)
        try:
            conn = await connect("127.0.0.1", srv.port, public_key(sk), transport="htx-web",
                                 cafile=certs[0], server_hostname="localhost", web=web,
                                 handshake_timeout=10)
            await conn.close()
            assert server_web.verifier.counters == {"ok": 1}
            return True, None
        except AuthenticationError as exc:
            await asyncio.sleep(0.1)
            assert not seen                      # no Noise handshake reached the server
            assert sum(server_web.verifier.counters.values()) == 0, server_web.verifier.counters
            return False, exc


def test_expected_origin_passes_with_and_without_a_chain(site, certs):
    async def main():
        ok, _ = await _attempt(site, certs, server_context(*certs), OriginExpectation())
        assert ok
        chain = chain_sha256([open(certs[0]).read()])
        ok, _ = await _attempt(site, certs, server_context(*certs), OriginExpectation(chain_sha256=chain))
        assert ok
    asyncio.run(main())


def test_tls_version_mismatch_fails_closed(site, certs):
    async def main():
        ok, exc = await _attempt(site, certs, _context(certs, max_tls12=True), OriginExpectation())
        assert not ok and "TLS version TLSv1.2, expected TLSv1.3" in str(exc)
        # an origin known to speak 1.2 may be expected to
        ok, _ = await _attempt(site, certs, _context(certs, max_tls12=True),
                               OriginExpectation(tls_versions=("TLSv1.2",)))
        assert ok
    asyncio.run(main())


def test_alpn_mismatch_fails_closed(site, certs):
    async def main():
        ok, exc = await _attempt(site, certs, _context(certs, alpn=()), OriginExpectation())
        assert not ok and "ALPN none, expected http/1.1" in str(exc)
        ok, _ = await _attempt(site, certs, _context(certs, alpn=()), OriginExpectation(alpn=None))
        assert ok
    asyncio.run(main())


def test_chain_mismatch_fails_closed(site, certs, tmp_path):
    other, _ = write_self_signed(tmp_path, ["localhost"])

    async def main():
        ok, exc = await _attempt(site, certs, server_context(*certs),
                                 OriginExpectation(chain_sha256=chain_sha256([open(other).read()])))
        assert not ok and "certificate chain" in str(exc)
    asyncio.run(main())


def test_check_origin_fails_closed_on_what_curl_did_not_report():
    good = OriginObservation("TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", True, 2, ("ab" * 32,))
    check_origin(OriginExpectation(), good)
    cases = {"TLS version not reported": OriginObservation(None, None, "http/1.1", True, 2),
             "did not report the ALPN": OriginObservation("TLSv1.3", "x", None, False, 2),
             "ALPN h2, expected http/1.1": OriginObservation("TLSv1.3", "x", "h2", True, 3),
             "HTTP version 3 does not match": OriginObservation("TLSv1.3", "x", "http/1.1", True, 3)}
    for words, obs in cases.items():
        with pytest.raises(AuthenticationError, match=words):
            check_origin(OriginExpectation(), obs)
    for bad in ({"tls_versions": ("SSLv3",)}, {"tls_versions": ()}, {"alpn": "spdy"},
                {"chain_sha256": ()}, {"chain_sha256": ("zz",)}):
        with pytest.raises(InvalidArgumentError):
            OriginExpectation(**bad)


def test_resumption_follows_the_origin_and_is_visible(site, certs):
    """With a SessionCache, the second connection to an origin offers a PSK (as Chrome does),
    the server takes it, curl's handshake trace shows it (no Certificate message), and origin
    calibration still sees the chain; never early data (0-RTT); without one, never a PSK."""
    from betanet.tls.clienthello import parse_client_hello
    from betanet.tls.htxweb import SessionCache, connect_chrome, spki_pin
    from stealth_helpers import HelloRelay

    async def main():
        tk = TicketKey.generate()
        srv = await serve(lambda c: asyncio.sleep(1), "127.0.0.1", 0, generate_private_key(),
                          transport="htx-web", certfile=certs[0], keyfile=certs[1], web=WebServer(site, tk))
        chain = chain_sha256([open(certs[0]).read()])
        out = []
        async with srv:
            relay = await HelloRelay(srv.port).start()
            try:
                for sessions in (SessionCache(), None):
                    for _ in range(2):
                        # a resumed session has no certificate to see: the key pin (curl's
                        # PINNEDPUBLICKEY) is what holds across resumption, not chain_sha256
                        web = WebClient(tk.publication, sessions=sessions, pin_sha256=spki_pin(certs[0]),
                                        origin=OriginExpectation(chain_sha256=None if sessions else chain))
                        chan = await connect_chrome(web, "127.0.0.1", relay.port, server_hostname="localhost",
                                                    cafile=certs[0], timeout=10)
                        out.append(chan.origin)
                        chan.abort()
            finally:
                await relay.close()
        return out, relay.hellos
    obs, hellos = asyncio.run(main())
    exts = [{t for t, _ in parse_client_hello(h).extensions} for h in hellos]
    assert [0x0029 in e for e in exts] == [False, True, False, False]       # pre_shared_key
    assert not any(0x002A in e for e in exts)                                # early_data: never
    assert [(o.offered_resumption, o.resumed) for o in obs] == [(False, False), (True, True),
                                                                 (False, False), (False, False)]
    assert [bool(o.chain_sha256) for o in obs] == [True, False, True, True]   # no chain when resumed
    with pytest.raises(InvalidArgumentError, match="resum"):
        WebClient(TicketKey.generate().publication, sessions=SessionCache(),
                  origin=OriginExpectation(chain_sha256=("ab" * 32,)))


def test_a_wrong_pin_fails_even_with_a_cached_session(site, certs, tmp_path):
    from betanet.tls.htxweb import SessionCache, connect_chrome, spki_pin
    other, _ = write_self_signed(tmp_path, ["localhost"])

    async def main():
        tk = TicketKey.generate()
        srv = await serve(lambda c: asyncio.sleep(1), "127.0.0.1", 0, generate_private_key(),
                          transport="htx-web", certfile=certs[0], keyfile=certs[1], web=WebServer(site, tk))
        sessions = SessionCache()
        async with srv:
            chan = await connect_chrome(WebClient(tk.publication, sessions=sessions, pin_sha256=spki_pin(certs[0])),
                                        "127.0.0.1", srv.port, server_hostname="localhost", verify=False, timeout=10)
            chan.abort()
            with pytest.raises(AuthenticationError):
                await connect_chrome(WebClient(tk.publication, sessions=sessions, pin_sha256=spki_pin(other)),
                                     "127.0.0.1", srv.port, server_hostname="localhost", verify=False, timeout=10)
    asyncio.run(main())
