"""The mixnet service on loopback: real TCP, real Sphinx, ≥3 mixnodes, SURB replies, cover
traffic, VRF-selected routes, replay on the wire, bounded queues, counters, CLI, shutdown."""
from __future__ import annotations

import asyncio
import gc
import secrets
import subprocess
import sys

import pytest

from betanet import mix, sphinx
from betanet._native import core
from betanet.mix import (FRAME_PACKET, LocalMixnet, MixClient, TcpTransport, decode_body,
                         encode_body)
from betanet.sphinx import Geometry, KeyPair
import mix_helpers
from mix_helpers import echo, eventually, run

G = Geometry()


class RecordingTransport(TcpTransport):
    """The real TCP transport, recording the size of every frame it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int, int]] = []

    async def send(self, address, frame_type, data):
        self.sent.append((frame_type, len(data)))
        await super().send(address, frame_type, data)


def test_body_encoding_round_trip_and_limits():
    body = encode_body(G, mix.KIND_DATA, b"hello", b"S" * 10)
    assert decode_body(body + bytes(100)) == (mix.KIND_DATA, b"hello", b"S" * 10)
    with pytest.raises(Exception):
        encode_body(G, mix.KIND_DATA, b"x" * G.body_bytes)
    with pytest.raises(Exception):
        decode_body(b"\x09\x00\x00\x00\x00")


def test_three_mixnodes_deliver_messages_and_surb_replies():
    gc.collect()
    before = core.live_allocations()

    async def main():
        got: list[tuple[bytes, bytes]] = []

        def on_message(node, m):
            got.append((node.node_id, m.data))
            echo(node, m)

        async with LocalMixnet(3, mean_delay_ms=5, on_message=on_message) as net:
            client = MixClient(secrets.token_bytes(32), net.directory, hops=3, mean_delay_ms=5)
            async with client:
                net.directory.add(client.descriptor())
                futs = [await client.send(net.nodes[i % 3].node_id, b"msg %d" % i) for i in range(6)]
                replies = await asyncio.wait_for(asyncio.gather(*futs), 15)
                assert sorted(replies) == sorted(b"re: msg %d" % i for i in range(6))
                assert sorted(d for _, d in got) == sorted(b"msg %d" % i for i in range(6))
                assert all(len(r) == 3 for r in client.routes)
                assert client.counters.replies == 6
            total = mix.MixCounters()
            for n in net.nodes:
                c = n.counters
                total.received += c.received
                total.forwarded += c.forwarded
                total.replies += c.replies
                assert not c.dropped, c.dropped
            # 6 messages + 6 replies over 3 hops: 36 packets received, 24 relayed onwards
            assert total.received == 36 and total.forwarded == 24 and total.replies == 6

    run(main())
    gc.collect()
    assert core.live_allocations() == before


def test_vrf_selected_routes():
    vrf = pytest.importorskip("betanet.vrf")

    async def main():
        async with LocalMixnet(4, mean_delay_ms=2, on_message=echo) as net:
            selector = vrf.RouteSelector(net.vrf_descriptors(), vrf.VRFKeyPair.from_seed(b"\x01" * 32),
                                         vrf.LocalBeacon(b"demo"))
            client = MixClient(secrets.token_bytes(32), net.directory, hops=3, selector=selector,
                               mean_delay_ms=2, as_group=1)
            async with client:
                net.directory.add(client.descriptor())
                futs = [await client.send(net.nodes[0].node_id, b"vrf %d" % i) for i in range(3)]
                assert len(await asyncio.wait_for(asyncio.gather(*futs), 15)) == 3
                ids = {n.node_id for n in net.nodes}
                assert all({h.node_id for h in r.hops} <= ids and len(set(h.node_id for h in r.hops)) == 3
                           for r in client.routes)

    run(main())


def test_cover_traffic_is_indistinguishable_on_the_wire():
    async def main():
        async with LocalMixnet(3, mean_delay_ms=2, loop_rate=20.0) as net:
            transport = RecordingTransport()
            client = MixClient(secrets.token_bytes(32), net.directory, hops=3, mean_delay_ms=2,
                               loop_rate=20.0, drop_rate=20.0, payload_rate=20.0, transport=transport)
            async with client:
                net.directory.add(client.descriptor())
                fut = await client.send(net.nodes[1].node_id, b"real", want_reply=False)
                assert fut is None
                await eventually(lambda: client.counters.loops_returned >= 3
                                 and client.counters.drops_sent >= 3
                                 and sum(n.counters.loops_returned for n in net.nodes) >= 3
                                 and sum(n.counters.delivered for n in net.nodes) >= 1)
            assert {t for t, _ in transport.sent} == {FRAME_PACKET}
            assert {n for _, n in transport.sent} == {G.packet_bytes}
            assert sum(n.counters.cover_dropped for n in net.nodes) >= 1

    run(main())


def test_replayed_packet_is_dropped_and_counted():
    async def main():
        async with LocalMixnet(3, mean_delay_ms=1) as net:
            nodes = net.nodes
            route = sphinx.Route([sphinx.NodeInfo(n.node_id, n.key.public_key) for n in nodes], [0, 0, 0])
            packet = sphinx.create_packet(G, 1, route, nodes[2].node_id, encode_body(G, mix.KIND_DATA, b"x"))
            t = TcpTransport()
            for _ in range(3):
                await t.send(nodes[0].address, FRAME_PACKET, packet)
            await t.send(nodes[0].address, FRAME_PACKET, b"\x00" * 10)
            await eventually(lambda: nodes[0].counters.dropped["replay"] == 2
                             and nodes[0].counters.dropped["malformed"] == 1
                             and nodes[2].counters.delivered == 1)
            await t.close()

    run(main())


def test_bounded_queue_drops_with_reason():
    # Driven through the sans-IO protocol: a burst the node has not processed yet.
    nodes = [mix_helpers.protocol_node() for _ in range(3)]
    directory = mix_helpers.directory_of(nodes)
    node = mix_helpers.protocol_node(nodes[0], directory, queue_limit=5)
    route = sphinx.Route([sphinx.NodeInfo(n.node_id, n.key.public_key) for n in nodes])
    packets = [sphinx.create_packet(G, 1, route, nodes[2].node_id, b"") for _ in range(40)]
    events = [e for p in packets for e in node.receive_frame(FRAME_PACKET, p, now=0.0)]
    assert events == [mix.Drop("queue-full")] * 35
    assert node.counters.dropped["queue-full"] == 35 and node.queued == 5
    out = node.process(now=0.0)
    assert node.counters.processed == 5
    assert [type(e) for e in out] == [mix.Forward] * 5
    node.close()
    for n in nodes:
        n.close()


def test_clean_shutdown_with_packets_held():
    async def main():
        async with LocalMixnet(3, mean_delay_ms=60_000) as net:
            client = MixClient(secrets.token_bytes(32), net.directory, hops=3, mean_delay_ms=60_000)
            async with client:
                net.directory.add(client.descriptor())
                await client.send(net.nodes[0].node_id, b"held for a minute")
                await eventually(lambda: net.nodes[0].counters.received + net.nodes[1].counters.received
                                 + net.nodes[2].counters.received >= 1)
        others = [t.get_coro().__qualname__ for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == ["wait_for"], others     # only the test's own timeout wrapper

    run(main())


def test_mixnode_cli_local_network():
    proc = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--local", "3", "--messages", "3",
                           "--mean-delay-ms", "5", "--loop-rate", "5", "--duration", "0.5"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "replies received through SURBs: 3/3" in proc.stdout
    assert proc.stdout.count("received=") >= 4 and "forwarded=" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_mixnode_cli_single_node_runs_and_stops(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "betanet", "mixnode", "--key-seed", "11" * 32,
                           "--print-descriptor", "--duration", "0.3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    import json
    d = json.loads(proc.stdout.splitlines()[0])
    assert d["sphinx_public_key"] == KeyPair.from_seed(bytes.fromhex("11" * 32)).public_key.hex()
    assert "counters: received=0" in proc.stdout


def test_demo_section_runs():
    proc = subprocess.run([sys.executable, "-m", "betanet", "demo", "mixnet"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failure(s)" in proc.stdout and "VRF route" in proc.stdout


def test_benchmark_quick_runs():
    from pathlib import Path
    bench = Path(__file__).resolve().parent.parent / "bench" / "sphinx_bench.py"
    proc = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "per-hop processing" in proc.stdout and "throughput, 2 threads" in proc.stdout


def test_key_rotation_expires_old_epochs():
    node = mix_helpers.protocol_node()
    old_key = node.key
    route_old = sphinx.Route([sphinx.NodeInfo(node.node_id, old_key.public_key)])
    stale = sphinx.create_packet(G, 1, route_old, node.node_id, encode_body(G, mix.KIND_DROP))
    new_keys = [KeyPair.generate() for _ in range(2)]
    node.rotate_key(2, new_keys[0])
    # epoch 1 still accepted during epoch 2
    still = sphinx.create_packet(G, 1, route_old, node.node_id, encode_body(G, mix.KIND_DROP))
    node.receive_frame(FRAME_PACKET, still, now=0.0)
    assert node.process(now=0.0) == [] and node.counters.cover_dropped == 1
    node.rotate_key(3, new_keys[1])
    node.receive_frame(FRAME_PACKET, stale, now=0.0)
    fresh = sphinx.create_packet(G, 3, sphinx.Route([sphinx.NodeInfo(node.node_id, new_keys[1].public_key)]),
                                 node.node_id, encode_body(G, mix.KIND_DROP))
    node.receive_frame(FRAME_PACKET, fresh, now=0.0)
    assert node.process(now=0.0) == [mix.Drop("expired")]
    assert node.counters.dropped["expired"] == 1 and node.counters.cover_dropped == 2
    node.close()


def test_unreachable_next_hop_and_failing_application_are_counted():
    import socket

    def broken_app(node, m):
        raise RuntimeError("application bug")

    async def main():
        async with LocalMixnet(3, mean_delay_ms=1, on_message=broken_app) as net:
            n0, n1, n2 = net.nodes
            route = sphinx.Route([sphinx.NodeInfo(n.node_id, n.key.public_key) for n in (n0, n2)])
            t = TcpTransport()
            # the application raises: the message still counts as delivered, the link survives
            await t.send(n0.address, FRAME_PACKET,
                         sphinx.create_packet(G, 1, route, n2.node_id, encode_body(G, mix.KIND_DATA, b"a")))
            await eventually(lambda: n2.counters.delivered == 1)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                dead = s.getsockname()
            net.directory.add(mix.Descriptor(n1.node_id, dead, n1.key.public_key, 101))
            route = sphinx.Route([sphinx.NodeInfo(n.node_id, n.key.public_key) for n in (n0, n1)])
            await t.send(n0.address, FRAME_PACKET,
                         sphinx.create_packet(G, 1, route, n1.node_id, encode_body(G, mix.KIND_DATA, b"b")))
            await eventually(lambda: n0.counters.dropped["send-failed"] == 1)
            await t.close()

    run(main())


def test_client_with_no_mixnode_known_yet_sends_queued_messages_once_they_are(caplog):
    # Regression: the payload ticker died on its first tick without a mixnode (drop cover
    # to a random mixnode of none), silently; later messages were never sent.
    async def main():
        async with LocalMixnet(3, mean_delay_ms=1, on_message=echo) as net:
            directory = mix.Directory()                 # the client knows nobody yet
            client = MixClient(secrets.token_bytes(32), directory, hops=3, mean_delay_ms=1,
                               payload_rate=100.0)
            async with client:
                net.directory.add(client.descriptor())
                early = await client.send(net.nodes[1].node_id, b"queued before any mixnode")
                await asyncio.sleep(0.3)                # ~30 ticks with no mixnode known
                for n in net.nodes:                     # now the mixnodes are known
                    directory.add(n.descriptor())
                fut = await client.send(net.nodes[0].node_id, b"late but delivered")
                assert await asyncio.wait_for(early, 15) == b"re: queued before any mixnode"
                assert await asyncio.wait_for(fut, 15) == b"re: late but delivered"
                await eventually(lambda: client.counters.drops_sent >= 1)
                assert sum(client.counters.tick_errors.values()) >= 1
        assert any("tick failed" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)

    run(main())
