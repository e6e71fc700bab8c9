"""The sans-IO mix protocols driven directly: injected time and randomness, no sockets."""
from __future__ import annotations

import logging
import random
import secrets

import pytest

from betanet import mix, sphinx
from betanet.mix import (FRAME_DELIVER, FRAME_PACKET, FRAME_REPLY, Descriptor, Directory, Forward,
                         MessageReceived, MixClientProtocol, ReplyReceived, SendPacket, encode_body)
from betanet.sphinx import Geometry, NodeInfo, Route
from mix_helpers import directory_of, protocol_node

G = Geometry()
pytestmark = pytest.mark.usefixtures("no_leaks")


def route_through(nodes, delays):
    return Route([NodeInfo(n.node_id, n.key.public_key) for n in nodes], delays)


def test_relay_is_held_for_its_delay_then_forwarded():
    a, b = protocol_node(), protocol_node()
    a = protocol_node(a, directory_of([a, b]))
    packet = sphinx.create_packet(G, 1, route_through([a, b], [7, 0]), b.node_id, b"")
    assert a.receive_frame(FRAME_PACKET, packet, now=100.0) == []
    assert a.process(now=100.0) == [] and len(a.held) == 1
    assert a.next_deadline() == pytest.approx(100.007)
    assert a.tick(100.006) == []
    (fwd,) = a.tick(100.007)
    assert isinstance(fwd, Forward) and fwd.next_node == b.node_id and len(fwd.packet) == G.packet_bytes
    assert a.counters.processed == 1 and len(a.held) == 0 and a.next_deadline() is None
    a.close()
    b.close()


def test_local_delivery_loop_and_drop_dispatch_once():
    n = protocol_node()
    n = protocol_node(n, directory_of([n]))
    r = route_through([n], [0])
    for kind, data in ((mix.KIND_DATA, b"hi"), (mix.KIND_LOOP, b""), (mix.KIND_DROP, b"")):
        n.receive_frame(FRAME_PACKET, sphinx.create_packet(G, 1, r, n.node_id, encode_body(G, kind, data)), 0.0)
    events = n.process(0.0)
    assert events == [MessageReceived(mix.Message(n.node_id, b"hi"))]
    c = n.counters
    assert (c.delivered, c.loops_returned, c.cover_dropped) == (1, 1, 1)
    n.close()


def test_mixnode_loop_cover_follows_injected_randomness():
    nodes = [protocol_node() for _ in range(3)]
    d = directory_of(nodes)
    n = protocol_node(nodes[0], d, loop_rate=10.0, hops=2)
    rng = random.Random(7)
    assert n.tick(0.0, rng) == [] and n.next_deadline() is not None    # the stream starts
    events = n.tick(n.next_deadline(), rng)
    assert [type(e) for e in events] == [SendPacket] and n.counters.loops_sent == 1
    assert events[0].first_hop in {x.node_id for x in nodes[1:]}      # through another node first
    for x in nodes:
        x.close()
    n.close()


def client(directory, **kw):
    return MixClientProtocol(secrets.token_bytes(32), directory, mean_delay_ms=1.0, **kw)


def test_client_ticks_without_mixnodes_are_counted_and_logged_then_queued_messages_leave(caplog):
    nodes = [protocol_node() for _ in range(3)]
    directory = Directory()
    c = client(directory, payload_rate=10.0)
    rng = random.Random(1)
    ticket, events = c.send(nodes[0].node_id, b"queued early", rng=rng)
    assert events == [] and c.queued == 1
    now = 0.0
    with caplog.at_level(logging.WARNING, logger="betanet.mix.protocol"):
        for _ in range(5):
            assert c.tick(now, rng) == []
            now = c.next_deadline()
    assert sum(c.counters.tick_errors.values()) == 4 and c.queued == 1      # first tick only starts
    assert any("payload tick failed" in r.getMessage() for r in caplog.records)
    for d in directory_of(nodes).mixnodes:              # the mixnodes become known
        directory.add(d)
    events = c.tick(now, rng)
    assert [type(e) for e in events] == [SendPacket] and c.queued == 0
    assert len(c.routes) == 1 and c.routes[0].hops[-1].node_id == nodes[0].node_id
    events = c.tick(c.next_deadline(), rng)             # nothing queued: drop cover
    assert [type(e) for e in events] == [SendPacket] and c.counters.drops_sent == 1
    c.close()
    for n in nodes:
        n.close()


def test_client_route_history_is_bounded():
    nodes = [protocol_node() for _ in range(3)]
    c = client(directory_of(nodes), route_history=4)
    for i in range(10):
        c.send(nodes[i % 3].node_id, b"m", want_reply=False)
    assert len(c.routes) == 4
    for n in nodes:
        n.close()


def carry(nodes, hop, packet):
    """Hand a packet hop by hop through sans-IO nodes; the first event that is no Forward."""
    by_id = {n.node_id: n for n in nodes}
    while True:
        node = by_id[hop]
        node.receive_frame(FRAME_PACKET, packet, 0.0)
        events = node.process(0.0) + node.tick(1.0)
        (e,) = events
        if not isinstance(e, Forward):
            return e
        hop, packet = e.next_node, e.packet


def test_client_reply_round_trip_through_protocols():
    bare = [protocol_node() for _ in range(2)]
    d = directory_of(bare)
    c = client(d, hops=2)
    d.add(Descriptor(c.client_id, ("127.0.0.1", 9)))
    nodes = [protocol_node(n, d) for n in bare]
    ticket, (send,) = c.send(nodes[1].node_id, b"ping")
    e = carry(nodes, send.first_hop, send.packet)
    assert isinstance(e, MessageReceived) and e.message.data == b"ping"
    reply = nodes[1].reply(e.message, b"pong")
    e = carry(nodes, reply.first_hop, reply.packet)
    assert isinstance(e, mix.Reply) and e.destination == c.client_id
    assert c.receive_frame(FRAME_REPLY, e.destination + e.surb_id + e.payload, 0.0) == [ReplyReceived(ticket, b"pong")]
    assert c.receive_frame(FRAME_REPLY, e.destination + e.surb_id + e.payload, 0.0) == [mix.Drop("unknown-surb")]
    for n in bare + nodes:
        n.close()


def test_client_accepts_deliveries_and_rejects_junk_frames():
    c = client(Directory())
    body = encode_body(G, mix.KIND_DATA, b"for the client")
    assert c.receive_frame(FRAME_DELIVER, c.client_id + body, 0.0) == [
        MessageReceived(mix.Message(c.client_id, b"for the client"))]
    assert c.receive_frame(FRAME_PACKET, b"x", 0.0) == [mix.Drop("bad-frame")]
