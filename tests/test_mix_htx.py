"""Mixnodes linked by HTX (betanet.mix.htx_transport.HtxTransport) on loopback: real TLS 1.3,
real QUIC, real Noise XK; delivery, SURB replies, cover traffic, connection reuse,
restart and reconnect, a wrong HTX key, the CLI, no leaks."""
from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys

import pytest

from betanet import htx, mix, sphinx
from betanet.mix import (FRAME_PACKET, Descriptor, HtxTransport, LocalMixnet, MixClient, Mixnode,
                         encode_body, make_transport)
from betanet.sphinx import Geometry, NodeInfo, Route
from mix_helpers import echo, eventually, run

G = Geometry()
KINDS = ["htx-tcp", "htx-quic", "htx-plain"]


def fixed_route(*nodes: Mixnode, delay_ms: int = 1) -> Route:
    return Route([NodeInfo(n.node_id, n.key.public_key) for n in nodes], [delay_ms] * len(nodes))


def assert_links_reused(*endpoints) -> None:
    # Every outgoing link opened is still open: one HTX connection per neighbour, none
    # reopened, and no link error anywhere.
    for e in endpoints:
        assert e.counters.links_opened == e.transport.open_links, e.counters.summary()
        assert not e.counters.link_errors, e.counters.summary()


@pytest.mark.parametrize("kind", KINDS)
def test_mixnet_over_htx_delivers_replies_and_cover(kind):
    async def main():
        got: list[bytes] = []

        def app(node, m):
            got.append(m.data)
            echo(node, m)
        async with LocalMixnet(3, mean_delay_ms=3, loop_rate=15.0, on_message=app, transport=kind) as net:
            assert all(n.descriptor().transport == kind and len(n.descriptor().htx_public_key) == 32
                       for n in net.nodes)
            client = MixClient(secrets.token_bytes(32), net.directory, hops=3, mean_delay_ms=3,
                               loop_rate=15.0, drop_rate=15.0, transport=make_transport(kind))
            async with client:
                net.directory.add(client.descriptor())
                futs = [await client.send(net.nodes[i % 3].node_id, b"hello %d" % i) for i in range(4)]
                replies = await asyncio.wait_for(asyncio.gather(*futs), 20)
                assert sorted(replies) == [b"re: hello %d" % i for i in range(4)]
                assert sorted(got) == [b"hello %d" % i for i in range(4)]
                # cover traffic flows over the same HTX links
                await eventually(lambda: client.counters.loops_returned > 0
                                 and sum(n.counters.loops_returned for n in net.nodes) > 0
                                 and sum(n.counters.cover_dropped for n in net.nodes) > 0)
                # at most one outgoing connection per neighbour: 3 nodes (a SURB route may
                # start at the replying node itself) and the client
                for e in (*net.nodes, client):
                    assert 1 <= e.counters.links_opened <= 4
                assert_links_reused(*net.nodes, client)
                assert sum(n.counters.forwarded for n in net.nodes) > sum(
                    n.counters.links_opened for n in net.nodes)
                assert not any(n.counters.dropped for n in net.nodes)

    run(main())


def test_one_connection_per_neighbour_is_reused():
    async def main():
        async with LocalMixnet(3, mean_delay_ms=1, transport="htx-tcp") as net:
            a, b, c = net.nodes
            client = MixClient(secrets.token_bytes(32), net.directory, transport=make_transport("htx-tcp"))
            async with client:
                net.directory.add(client.descriptor())
                for i in range(12):
                    await client.send(c.node_id, b"m%d" % i, route=fixed_route(a, b, c), want_reply=False)
                await eventually(lambda: c.counters.delivered == 12)
                assert client.counters.sent == 12 and client.counters.links_opened == 1
                assert a.counters.forwarded == 12 and a.counters.links_opened == 1
                assert b.counters.forwarded == 12 and b.counters.links_opened == 1
                assert (a.counters.links_accepted, b.counters.links_accepted, c.counters.links_accepted) == (1, 1, 1)
                assert c.counters.links_opened == 0
                assert_links_reused(a, b, c, client)

    run(main())


@pytest.mark.parametrize("kind", ["htx-tcp", "htx-quic"])
def test_restarted_mixnode_is_reconnected(kind):
    async def main():
        async with LocalMixnet(3, mean_delay_ms=1, transport=kind) as net:
            a, b, c = net.nodes
            src = HtxTransport(kind[4:])            # an injecting sender
            await src.start(lambda *frame: None)
            send = lambda i: src.send_to(a.descriptor(), FRAME_PACKET, sphinx.create_packet(
                G, 1, fixed_route(a, b, c), c.node_id, encode_body(G, mix.KIND_DATA, b"x%d" % i)))
            await send(0)
            await eventually(lambda: c.counters.delivered == 1)
            # restart b: same node id, Sphinx key, HTX key and port
            b_key, b_port, b_htx = b.key, b.address[1], b.transport._private
            await b.close()
            b2 = Mixnode(b.node_id, b_key, net.directory, as_group=b.sender.as_group,
                         transport=HtxTransport(kind[4:], port=b_port, static_private_key=b_htx))
            net.nodes[1] = b2
            await b2.start()
            assert b2.descriptor() == b.descriptor()
            i = 1
            while c.counters.delivered < 2:        # a's link notices, reconnects, delivery resumes
                await send(i)
                i += 1
                await asyncio.sleep(0.05)
                assert i < 200, a.counters.summary()
            assert a.counters.links_opened == 2, a.counters.summary()
            assert a.counters.link_errors["lost"] >= 1
            assert b2.counters.forwarded >= 1 and b2.counters.links_accepted == 1
            await src.close()

    run(main())


def test_wrong_htx_key_is_rejected_and_counted():
    async def main():
        async with LocalMixnet(3, mean_delay_ms=1, transport="htx-tcp") as net:
            a, b, c = net.nodes
            real = b.descriptor()
            # The directory pins another HTX key for b's address: whoever answers there is
            # not the node a expects, so the Noise XK handshake must fail.
            impostor_key = htx.public_key(htx.generate_private_key())
            net.directory.add(Descriptor(real.node_id, real.address, real.sphinx_public_key,
                                         real.as_group, impostor_key, real.transport))
            src = HtxTransport("tcp")
            await src.start(lambda *frame: None)
            packet = lambda i: sphinx.create_packet(G, 1, fixed_route(a, b, c), c.node_id,
                                                    encode_body(G, mix.KIND_DATA, b"y%d" % i))
            await src.send_to(a.descriptor(), FRAME_PACKET, packet(0))
            await eventually(lambda: a.counters.dropped["send-failed"] == 1)
            errs = a.counters.link_errors
            # the initiator only sees the responder hang up during the handshake
            assert dict(errs) == {"handshake": 1} and a.counters.links_opened == 0, a.counters.summary()
            await eventually(lambda: b.counters.link_errors["auth"] == 1)   # b saw it too
            assert c.counters.delivered == 0 and b.counters.received == 0
            # with the right key published again, a connects (after its short back-off)
            net.directory.add(real)
            i = 1
            while c.counters.delivered == 0:
                await src.send_to(a.descriptor(), FRAME_PACKET, packet(i))
                i += 1
                await asyncio.sleep(0.05)
                assert i < 200
            assert a.counters.links_opened == 1
            await src.close()

    run(main())


def test_htx_transport_stands_in_for_its_base_and_reaches_framing_peers():
    async def main():
        # an HTX node reaches a node that only speaks tcp-framing: through its descriptor,
        # or by address alone (PacketTransport.send: an address-only endpoint is plain framing)
        async with LocalMixnet(2, mean_delay_ms=1, transport="tcp-framing") as net:
            target = net.nodes[1]
            sender = HtxTransport("tcp")
            assert isinstance(sender, mix.PacketTransport)
            await sender.start(lambda *frame: None)
            packet = lambda: sphinx.create_packet(G, 1, fixed_route(target), target.node_id,
                                                  encode_body(G, mix.KIND_DROP))
            await sender.send_to(target.descriptor(), FRAME_PACKET, packet())
            await sender.send(target.address, FRAME_PACKET, packet())
            await eventually(lambda: target.counters.cover_dropped == 2)
            with pytest.raises(ConnectionRefusedError):     # unreachable: OSError, as the base says
                await sender.send(("127.0.0.1", 1), FRAME_PACKET, packet())
            await sender.close()

    run(main())


def test_descriptor_json_carries_transport_and_htx_key():
    key = htx.public_key(htx.generate_private_key())
    d = Descriptor(b"\x01" * 32, ("127.0.0.1", 4000), b"\x02" * 32, 7, key, "htx-quic")
    j = json.loads(json.dumps(d.to_json()))
    assert j["transport"] == "htx-quic" and j["htx_public_key"] == key.hex()
    assert Descriptor.from_json(j) == d
    old = {k: v for k, v in j.items() if k not in ("transport", "htx_public_key")}
    assert Descriptor.from_json(old).transport == "tcp-framing"
    with pytest.raises(mix.InvalidArgumentError):
        Descriptor.from_json({**j, "htx_public_key": ""})
    with pytest.raises(mix.InvalidArgumentError):
        Descriptor.from_json({**j, "transport": "carrier-pigeon"})


def test_mixnode_cli_htx_key_and_descriptor(tmp_path):
    keyfile = tmp_path / "node.key"
    priv = htx.generate_private_key()
    htx.save_private_key(keyfile, priv)
    proc = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--htx-key", str(keyfile),
                           "--print-descriptor", "--duration", "0.3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout.splitlines()[0])
    assert d["transport"] == "htx-tcp" and d["htx_public_key"] == htx.public_key(priv).hex()
    assert "(htx-tcp, HTX key " in proc.stdout
    # a missing key file is created (mode 0600) with its .pub
    new = tmp_path / "fresh.key"
    proc = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--htx-key", str(new),
                           "--transport", "htx-quic", "--print-descriptor", "--duration", "0.2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (new.stat().st_mode & 0o777) == 0o600
    d = json.loads(proc.stdout.splitlines()[0])
    assert d["transport"] == "htx-quic"
    assert d["htx_public_key"] == htx.load_public_key(str(new) + ".pub").hex()


def test_mixnode_cli_local_network_over_quic():
    proc = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--local", "3", "--messages", "3",
                           "--mean-delay-ms", "5", "--transport", "htx-quic"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "over htx-quic" in proc.stdout and "replies received through SURBs: 3/3" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_mix_frame_inside_htx_closes_the_link_and_is_counted():
    async def main():
        async with LocalMixnet(1, mean_delay_ms=1, transport="htx-plain") as net:
            node = net.nodes[0]
            d = node.descriptor()
            conn = await htx.connect(*d.address, d.htx_public_key, transport="plain")
            st = await conn.open_stream()
            st.write((0).to_bytes(4, "big"))      # a zero-length mix frame
            await eventually(lambda: conn.closed)
            assert node.counters.link_errors["bad-frame"] == 1 and node.counters.received == 0
            assert conn.error is not None and conn.error.close_code == htx.CloseCode.PROTOCOL_ERROR
            await conn.close()

    run(main())


def test_stalled_next_hop_applies_back_pressure_and_bounds_waiting_senders():
    from betanet.mix import LinkBusyError

    async def main():
        priv = htx.generate_private_key()

        async def never_reads(conn):           # accepts the link, never reads a byte
            await conn.wait_closed()
        server = await htx.serve(never_reads, "127.0.0.1", 0, priv, transport="plain")
        peer = Descriptor(b"\x09" * 32, ("127.0.0.1", server.port), b"", 0, htx.public_key(priv), "htx-plain")
        t = HtxTransport("plain", max_waiting=4, counters=mix.MixCounters())
        frame = bytes(G.packet_bytes)
        sends = [asyncio.ensure_future(t.send_to(peer, FRAME_PACKET, frame)) for _ in range(300)]
        await eventually(lambda: sum(s.done() for s in sends) >= 300 - 5)
        busy = [s for s in sends if s.done() and isinstance(s.exception(), LinkBusyError)]
        ok = [s for s in sends if s.done() and s.exception() is None]
        # the windows and the stream's write buffer took some frames; then drain() blocked
        # one sender, 4 waited, and every later one was refused at once
        assert busy and ok and len(busy) + len(ok) >= 295
        assert t.counters.link_errors["link-busy"] == len(busy)
        assert sum(not s.done() for s in sends) <= 5
        await t.close()                       # blocked senders fail instead of hanging
        results = await asyncio.gather(*sends, return_exceptions=True)
        assert all(r is None or isinstance(r, (LinkBusyError, ConnectionError)) for r in results)
        server.close()
        await server.wait_closed()

    run(main())


def test_htx_client_takes_deliver_frames_only_from_mixnodes():
    # A link peer that is not a mixnode (its HTX key proven in Noise XK is in no mixnode's
    # descriptor) cannot hand the client a "delivered" message or a reply.
    async def main():
        async with LocalMixnet(3, mean_delay_ms=1, transport="htx-tcp") as net:
            a, b, c = net.nodes
            client = MixClient(secrets.token_bytes(32), net.directory, transport=make_transport("htx-tcp"))
            async with client:
                net.directory.add(client.descriptor())
                attacker = HtxTransport("tcp")
                await attacker.start(lambda *frame: None)
                body = encode_body(G, mix.KIND_DATA, b"injected")
                await attacker.send_to(client.descriptor(), mix.FRAME_DELIVER, client.client_id + body)
                await attacker.send_to(client.descriptor(), mix.FRAME_REPLY,
                                       client.client_id + bytes(16) + bytes(G.payload_bytes))
                await eventually(lambda: client.counters.dropped["unexpected-sender"] == 2)
                assert client.inbox.empty() and client.counters.delivered == 0
                # a mixnode's delivery still arrives (the last hop delivers to the client)
                await client.send(client.client_id, b"to myself", route=fixed_route(a, b, c),
                                  want_reply=False)
                m = await asyncio.wait_for(client.inbox.get(), 10)
                assert m.data == b"to myself" and client.counters.dropped["unexpected-sender"] == 2
                await attacker.close()

    run(main())
