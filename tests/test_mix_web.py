"""Mixnodes linked by htx-web (HtxTransport("web")): every link is HTX in WebSocket messages
behind a decoy HTTPS site, opened with an access ticket and Chrome's ClientHello; the
descriptor carries the ticket publication and SPKI pin. Real TLS, real curl_cffi, loopback."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import ssl
import subprocess
import sys

import pytest

from betanet import mix
from betanet.errors import InvalidArgumentError, MalformedError
from betanet.mix import (Descriptor, HtxTransport, LocalMixnet, MixClient, Mixnode, encode_body,
                         make_transport)
from betanet.sphinx import Geometry, NodeInfo, Route
from mix_helpers import echo, eventually, run

pytest.importorskip("curl_cffi")
G = Geometry()
PAGE = b"<!doctype html><title>Plant notes</title><p>Watering schedules.</p>\n"


@pytest.fixture
def site(tmp_path):
    d = tmp_path / "site"
    d.mkdir()
    (d / "index.html").write_bytes(PAGE)
    return d


def fixed_route(*nodes: Mixnode, delay_ms: int = 1) -> Route:
    return Route([NodeInfo(n.node_id, n.key.public_key) for n in nodes], [delay_ms] * len(nodes))


async def probe(port: int, path: str = "/") -> tuple[bytes, bytes]:
    """An HTTPS GET without a ticket (Python's ssl, no verification): (status line, body)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    w.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = await r.read()
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def test_three_mixnodes_over_htx_web_deliver_and_reply_and_probes_see_the_site(site):
    async def main():
        got: list[bytes] = []

        def app(node, m):
            got.append(m.data)
            echo(node, m)
        async with LocalMixnet(3, mean_delay_ms=2, on_message=app, transport="htx-web",
                               transport_options={"site_root": site}) as net:
            a, b, c = net.nodes
            for n in net.nodes:
                d = n.descriptor()
                assert d.transport == "htx-web" and len(d.htx_public_key) == 32
                assert d.ticket.startswith("BN-Ticket: v1;") and d.spki_pin.startswith("sha256//")
                assert Descriptor.from_json(json.loads(json.dumps(d.to_json()))) == d
            client = MixClient(secrets.token_bytes(32), net.directory, hops=3, mean_delay_ms=2,
                               transport=make_transport("htx-web", site_root=site))
            async with client:
                net.directory.add(client.descriptor())
                assert client.descriptor().transport == "htx-web"
                fut = await client.send(c.node_id, b"over the web", route=fixed_route(a, b, c),
                                        reply_route=fixed_route(b, a, c))
                assert await asyncio.wait_for(fut, 20) == b"re: over the web"
                assert got == [b"over the web"]
                # every link was htx-web: client→a→b→c, c→b (reply), b→a, a→c, c→client
                for e, n_out in ((client, 1), (a, 2), (b, 2), (c, 2)):
                    assert e.counters.links_opened == n_out, e.counters.summary()
                    assert not e.counters.link_errors, e.counters.summary()
                # a probe without a ticket gets the decoy page from a mixnode's port
                status, body = await probe(b.address[1])
                assert status.startswith(b"HTTP/1.1 200") and body == PAGE
                status, _ = await probe(b.address[1], "/missing")
                assert status.startswith(b"HTTP/1.1 404")
                assert b.counters.link_errors == {} and b.counters.links_accepted == 2

    run(main())


def test_a_wrong_pin_or_ticket_key_fails_the_link_closed(site):
    async def main():
        async with LocalMixnet(1, mean_delay_ms=1, transport="htx-web",
                               transport_options={"site_root": site}) as net:
            (a,) = net.nodes
            good = a.descriptor()
            src = HtxTransport("web", site_root=site)
            await src.start(lambda *frame: None)
            other_pin = "sha256//" + "A" * 43 + "="
            with pytest.raises(ConnectionRefusedError, match="auth"):
                await src.send_to(dataclasses.replace(good, spki_pin=other_pin), mix.FRAME_PACKET, b"x")
            from betanet.tls.tickets import TicketKey
            wrong_key = dataclasses.replace(good, ticket=TicketKey.generate().publication.to_text())
            src2 = HtxTransport("web", site_root=site)
            await src2.start(lambda *frame: None)
            with pytest.raises(ConnectionRefusedError, match="handshake"):
                await src2.send_to(wrong_key, mix.FRAME_PACKET, b"x")
            assert a.counters.links_accepted == 0
            await src.close()
            await src2.close()

    run(main())


def test_htx_web_descriptors_and_options_are_checked(site):
    t = HtxTransport("web", site_root=site)
    assert t.kind == "htx-web" and t.ticket_key is not None
    with pytest.raises(InvalidArgumentError, match="site_root"):
        HtxTransport("web")
    with pytest.raises(InvalidArgumentError, match="impersonate"):
        HtxTransport("web", site_root=site, impersonate="firefox133")
    d = Descriptor(b"\x01" * 32, ("127.0.0.1", 1), b"", 0, b"\x02" * 32, "htx-web",
                   t.ticket_key.publication.to_text(), "")
    assert Descriptor.from_json(d.to_json()) == d                   # no pin: the chain is verified
    with pytest.raises(InvalidArgumentError, match="spki_pin"):
        Descriptor.from_json({**d.to_json(), "spki_pin": "sha256//short"})
    with pytest.raises(MalformedError):
        Descriptor.from_json({**d.to_json(), "ticket": ""})
    assert "ticket" not in dataclasses.replace(d, transport="htx-tcp").to_json()


def test_mixnode_cli_over_htx_web(site, tmp_path):
    # --local over htx-web: nodes behind decoy sites, a client with Chrome's ClientHello.
    out = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--local", "3", "--messages", "2",
                          "--mean-delay-ms", "2", "--transport", "htx-web", "--decoy-site", str(site)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "replies received through SURBs: 2/2" in out.stdout
    # one node: the ticket key file is created, the descriptor carries its publication
    key = tmp_path / "ticket.key"
    out = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--listen", "127.0.0.1:0",
                          "--transport", "htx-web", "--decoy-site", str(site), "--ticket-key", str(key),
                          "--print-descriptor", "--duration", "0.5"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    d = Descriptor.from_json(json.loads(out.stdout.splitlines()[0]))
    from betanet.tls.tickets import TicketKey
    assert d.ticket == TicketKey.load(key).publication.to_text() and d.spki_pin
    out = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--listen", "127.0.0.1:0",
                          "--transport", "htx-web", "--duration", "0.1"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "--decoy-site" in out.stderr
