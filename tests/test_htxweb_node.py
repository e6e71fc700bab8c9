"""htx-web in the node: `transport.htx_mode: web` (validated like every key), peer records
carrying the ticket line and SPKI pin, two nodes exchanging messages over htx-web, a curl
probe of a node's port getting the decoy site, and configurable per-prefix ticket limits
(node config, mixnode CLI)."""
from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from betanet.errors import MalformedError, ProtocolError
from betanet.htx import connect
from betanet.htx.keys import generate_private_key, public_key
from betanet.htx.tls import write_self_signed
from betanet.node import config as nconfig
from betanet.node import service
from betanet.node.identity import Identity
from betanet.node.peers import PeerRecord
from betanet.tls.weblink import WebLink
from betanet.tls.tickets import TicketKey
from node_helpers import introduce

pytest.importorskip("curl_cffi")
pytestmark = pytest.mark.timeout(120)
PAGE = b"<!doctype html><title>Allotment</title><p>Plots available.</p>\n"


def _site(tmp_path):
    d = tmp_path / "www"
    d.mkdir(exist_ok=True)
    (d / "index.html").write_bytes(PAGE)
    return d


def _node(tmp_path, name, **transport):
    path = service.init(str(tmp_path / name), extra={"transport": transport, "network": {"mdns": False},
                                                      "platform": {"power_source": "none"},
                                                      "routing": {"hop_timeout_ms": 2000}})
    return service.build(nconfig.load(path))


@pytest.mark.parametrize("data, match", [
    ({"transport": {"htx_mode": "quic"}}, r"transport\.htx_mode"),
    ({"transport": {"htx_mode": "web"}}, "htx_mode web needs"),
    ({"transport": {"htx_mode": "web", "htx_decoy_site": "www", "htx_listen": ""}}, "htx_mode web needs"),
    ({"transport": {"htx_chrome": "chrome99"}}, r"transport\.htx_chrome"),
    ({"transport": {"htx_ticket_rate": 0}}, r"transport\.htx_ticket_rate"),
    ({"transport": {"htx_ticket_burst": 0.5}}, r"transport\.htx_ticket_burst"),
    ({"transport": {"htx_ticket_burst": "many"}}, r"transport\.htx_ticket_burst"),
])
def test_web_keys_are_validated(data, match):
    with pytest.raises(nconfig.ConfigError, match=match):
        nconfig.from_dict(data)


def test_web_config_builds_the_link(tmp_path):
    _site(tmp_path)
    cfg = nconfig.from_dict({"transport": {"htx_mode": "web", "htx_decoy_site": str(tmp_path / "www"),
                                           "htx_chrome": "chrome151", "htx_ticket_rate": 50,
                                           "htx_ticket_burst": 200}})
    cfg["application"]["data_dir"] = str(tmp_path)
    web = service.web_link(cfg)
    assert (web.impersonate, web.rate, web.burst, web.listens) == ("chrome151", 50.0, 200.0, True)
    assert oct(os.stat(tmp_path / "ticket.key").st_mode & 0o777) == "0o600"
    assert service.web_link(cfg).ticket_key.key_id == web.ticket_key.key_id       # loaded, not replaced
    assert service.web_link(nconfig.defaults()) is None                             # tls mode


def test_peer_record_carries_ticket_and_pin_and_refuses_bad_ones(tmp_path):
    ident, key = Identity.generate(), TicketKey.generate()
    cert, _ = write_self_signed(tmp_path)
    from betanet.tls.htxweb import spki_pin
    line, pin = key.publication.to_text(), spki_pin(cert)
    rec = PeerRecord.decode(PeerRecord.create(ident, 1, htx_tcp=["127.0.0.1:1"], htx_ticket=line,
                                              htx_pin=pin).raw)
    assert (rec.htx_ticket, rec.htx_pin) == (line, pin)
    plain = PeerRecord.create(ident, 2, htx_tcp=["127.0.0.1:1"])
    assert plain.htx_ticket is None and b"htx_ticket" not in plain.raw       # older records unchanged
    for bad in ({"htx_ticket": line}, {"htx_pin": pin}, {"htx_ticket": "BN-Ticket: v2", "htx_pin": pin},
                {"htx_ticket": line, "htx_pin": "sha256//short="}):
        with pytest.raises(MalformedError):
            PeerRecord.create(ident, 3, **bad)


def test_two_nodes_exchange_messages_over_htx_web_and_curl_sees_the_decoy(tmp_path):
    site = _site(tmp_path)

    async def main():
        a = _node(tmp_path, "a", htx_mode="web", htx_decoy_site=str(site))
        b = _node(tmp_path, "b", htx_mode="web", htx_decoy_site=str(site))
        await a.start()
        await b.start()
        try:
            ra, rb = a.record(), b.record()
            assert ra.htx_ticket and ra.htx_pin and rb.htx_ticket and ra.htx_ticket != rb.htx_ticket
            introduce([a, b], [ra, rb])
            h = await a.send(b.me, b"over the web", topic="t")
            await h.acked(30)
            assert h.transports == ["htx"]
            back = await b.send(a.me, b"and back", topic="t")
            await back.acked(30)
            got_b = await asyncio.wait_for(b.messages().__anext__(), 10)
            got_a = await asyncio.wait_for(a.messages().__anext__(), 10)
            assert (got_b.body, got_a.body) == (b"over the web", b"and back")
            # both directions went through the ticket gate
            for n in (a, b):
                link = n.links[0]
                assert link.web.server.verifier.counters.get("ok", 0) >= 1 and link.counters["connects"] >= 1
            port = rb.htx_tcp[0].rpartition(":")[2]
            probe = await asyncio.to_thread(subprocess.run, ["curl", "-sk", "-i", f"https://127.0.0.1:{port}/"],
                                            capture_output=True, timeout=30)
            assert probe.returncode == 0 and probe.stdout.startswith(b"HTTP/1.1 200 OK")
            assert probe.stdout.endswith(PAGE) and b"Server: nginx" in probe.stdout
        finally:
            await a.stop()
            await b.stop()
    asyncio.run(main())


def test_a_plain_node_dials_an_htx_web_peer(tmp_path):
    site = _site(tmp_path)

    async def main():
        a = _node(tmp_path, "a")                                     # tls mode
        b = _node(tmp_path, "b", htx_mode="web", htx_decoy_site=str(site))
        await a.start()
        await b.start()
        try:
            ra, rb = a.record(), b.record()
            assert ra.htx_ticket is None and rb.htx_ticket
            introduce([a, b], [ra, rb])
            h = await a.send(b.me, b"hello", topic="t")
            await h.acked(30)
            assert (await asyncio.wait_for(b.messages().__anext__(), 10)).body == b"hello"
            assert b.links[0].web.server.verifier.counters.get("ok", 0) >= 1
        finally:
            await a.stop()
            await b.stop()
    asyncio.run(main())


@pytest.mark.parametrize("burst, connects", [(1.0, 1), (3.0, 3)])
def test_ticket_limit_per_prefix_is_configurable(tmp_path, burst, connects):
    """Three dialers from one /24 (co-located peers): a bucket of 1 lets one in and shows the
    others the site; a bucket sized for the deployment lets all three in."""
    site = _site(tmp_path)
    cert, key = write_self_signed(tmp_path / "tls")

    async def main():
        from betanet.htx import serve
        web = WebLink(site, TicketKey.generate(), rate=0.001, burst=burst)
        sk = generate_private_key()

        async def handler(conn):
            await asyncio.sleep(5)
        srv = await serve(handler, "127.0.0.1", 0, sk, **web.serve_options(str(cert), str(key)))
        adv = web.advertised()
        ok = refused = 0
        async with srv:
            for _ in range(3):
                try:
                    c = await connect("127.0.0.1", srv.port, public_key(sk), verify=False, handshake_timeout=10,
                                      **WebLink().dial_options(adv["htx_ticket"], adv["htx_pin"]))
                    ok += 1
                    await c.close()
                except ProtocolError:                     # the site answered: no ticket taken
                    refused += 1
        return ok, refused
    assert asyncio.run(main()) == (connects, 3 - connects)


def test_mixnode_cli_takes_ticket_limits(tmp_path):
    import argparse

    from betanet.mix import cli as mixcli
    ap = argparse.ArgumentParser()
    mixcli.add_parser(ap.add_subparsers())
    args = ap.parse_args(["mixnode", "--transport", "htx-web", "--decoy-site", str(_site(tmp_path)),
                          "--ticket-rate", "40", "--ticket-burst", "400"])
    t = mixcli._cli_transport(args)
    assert (t.ticket_rate, t.ticket_burst) == (40.0, 400.0)
    with pytest.raises(SystemExit):
        ap.parse_args(["mixnode", "--ticket-burst", "0"])
