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


def test_client_takes_deliver_and_reply_frames_only_from_a_mixnode_on_authenticated_links():
    nodes = [protocol_node() for _ in range(2)]
    d = directory_of(nodes)
    mixnode_key, stranger_key = secrets.token_bytes(32), secrets.token_bytes(32)
    d.add(Descriptor(nodes[0].node_id, ("127.0.0.1", 9), nodes[0].key.public_key, 100,
                     mixnode_key, "htx-tcp"))
    c = client(d)
    other = secrets.token_bytes(32)
    d.add(Descriptor(other, ("127.0.0.1", 9), b"", 0, stranger_key, "htx-tcp"))   # a client, not a mixnode
    body = encode_body(G, mix.KIND_DATA, b"for the client")
    deliver = c.client_id + body
    reply = c.client_id + bytes(16) + bytes(G.payload_bytes)
    for key in (stranger_key, secrets.token_bytes(32), b""):
        assert c.receive_frame(FRAME_DELIVER, deliver, 0.0, 1, key) == [mix.Drop("unexpected-sender")]
        assert c.receive_frame(FRAME_REPLY, reply, 0.0, 1, key) == [mix.Drop("unexpected-sender")]
    assert c.counters.delivered == 0 and c.counters.dropped["unexpected-sender"] == 6
    ok = [MessageReceived(mix.Message(c.client_id, b"for the client"))]
    assert c.receive_frame(FRAME_DELIVER, deliver, 0.0, 1, mixnode_key) == ok
    assert c.receive_frame(FRAME_REPLY, reply, 0.0, 1, mixnode_key) == [mix.Drop("unknown-surb")]
    # plain framing authenticates nobody (peer_key None): accepted, the documented limitation
    assert c.receive_frame(FRAME_DELIVER, deliver, 0.0, 1, None) == ok
    for n in nodes:
        n.close()


# ---- bounds (issue 9): the same limits as tests/test_hostile_mix.py, without sockets -------

def test_delays_above_the_cap_are_dropped_and_clients_never_draw_them():
    a, b = protocol_node(), protocol_node()
    a = protocol_node(a, directory_of([a, b]), mean_delay_ms=10.0)
    assert a.max_delay_ms == 50.0
    for delay in (0xFFFFFFFF, 51):
        a.receive_frame(FRAME_PACKET, sphinx.create_packet(G, 1, route_through([a, b], [delay, 0]),
                                                           b.node_id, b""), 0.0)
    a.receive_frame(FRAME_PACKET, sphinx.create_packet(G, 1, route_through([a, b], [50, 0]), b.node_id, b""), 0.0)
    assert a.process(0.0) == [mix.Drop("delay-over-cap")] * 2 and len(a.held) == 1
    rb = mix.RouteBuilder(b"c" * 32, G, directory_of([a, b]), 1, None, 2, mean_delay_ms=10.0)
    rng = random.Random(3)
    assert max(d for _ in range(2000) for d in rb.choose_route(b.node_id, rng).delays_ms) <= 50
    for n in (a, b):
        n.close()


def test_held_store_is_shared_fairly_between_links():
    from betanet.mix.held import ADMITTED, EVICTED_OTHER, REFUSED, HeldPackets
    h = HeldPackets(10)
    assert [h.add(100.0, ("flood", i), "attacker") for i in range(12)] == [ADMITTED] * 10 + [REFUSED] * 2
    assert h.add(1.0, "honest", "honest-link") == EVICTED_OTHER
    assert h.held_by("attacker") == 9 and len(h) == 10
    assert list(h.pop_due(1.0)) == ["honest"]
    for i in range(4):                               # honest gets up to an even share
        h.add(2.0, i, "honest-link")
    assert h.held_by("honest-link") == 4 and h.held_by("attacker") == 6
    assert h.add(2.0, "x", "honest-link") == EVICTED_OTHER and h.add(2.0, "y", "honest-link") == REFUSED


def test_every_kind_of_held_packet_counts_toward_the_limit():
    n = protocol_node()
    client_id = secrets.token_bytes(32)
    d = directory_of([n])
    d.add(Descriptor(client_id, ("127.0.0.1", 9)))
    n = protocol_node(n, d, held_limit=5, mean_delay_ms=1000.0)
    for _ in range(8):                               # final-hop deliveries to a client
        n.receive_frame(FRAME_PACKET, sphinx.create_packet(G, 1, route_through([n], [4000]), client_id,
                                                           encode_body(G, mix.KIND_DROP)), 0.0, link=1)
    assert n.process(0.0) == [mix.Drop("held-full")] * 3 and len(n.held) == 5
    assert [type(e) for e in n.tick(4.0)] == [mix.Deliver] * 5
    n.close()


def test_a_mixnode_takes_no_deliver_or_reply_frame_from_a_link_peer():
    a = protocol_node()
    a = protocol_node(a, directory_of([a]))
    surb, _ = sphinx.create_surb(G, 1, route_through([a], [0]), b"attacker" * 4)
    body = encode_body(G, mix.KIND_DATA, b"injected", surb.data)
    assert a.receive_frame(FRAME_DELIVER, a.node_id + body, 0.0) == [mix.Drop("unexpected-frame")]
    assert a.receive_frame(FRAME_REPLY, a.node_id + bytes(16) + bytes(G.payload_bytes), 0.0) == [
        mix.Drop("unexpected-frame")]
    assert a.counters.delivered == 0 and a.queued == 0
    a.close()


def test_a_final_hop_never_hands_a_body_to_another_mixnode():
    a, b = protocol_node(), protocol_node()
    a = protocol_node(a, directory_of([a, b]))
    # a Sphinx route ending at a with b as the destination: b must process its own packets
    a.receive_frame(FRAME_PACKET, sphinx.create_packet(G, 1, route_through([a], [0]), b.node_id,
                                                       encode_body(G, mix.KIND_DATA, b"x")), 0.0)
    assert a.process(0.0) == [mix.Drop("deliver-to-mixnode")]
    for n in (a, b):
        n.close()


def test_routes_to_a_mixnode_end_at_it():
    nodes = [protocol_node() for _ in range(4)]
    rb = mix.RouteBuilder(b"c" * 32, G, directory_of(nodes), 1, None, 3, mean_delay_ms=1.0)
    for _ in range(20):
        hops = [h.node_id for h in rb.choose_route(nodes[0].node_id).hops]
        assert len(hops) == 3 and hops[-1] == nodes[0].node_id and len(set(hops)) == 3
    for n in nodes:
        n.close()


def test_link_table_times_out_silent_links_and_evicts_the_longest_idle_when_full():
    from betanet.mix.transport import LinkTable
    now = [0.0]
    closed: list[int] = []
    t = LinkTable(3, first_frame_timeout=5.0, idle_timeout=60.0, counters=mix.MixCounters(),
                  clock=lambda: now[0])
    links = []
    for i in range(3):
        now[0] = float(i)
        links.append(t.admit(lambda i=i: closed.append(i)))
    links[0].frames, links[0].last = 1, 2.5          # link 0 sent a frame lately
    links[1].busy = 1                                # link 1 is in the middle of one
    now[0] = 3.0
    assert t.admit(lambda: closed.append(3)) is not None and closed == [2]   # longest idle, not busy
    links[1].busy = 0
    now[0] = 9.0
    t.sweep()                                         # no first frame within 5 s
    assert sorted(closed) == [1, 2, 3] and set(t.links) == {links[0].link_id}
    now[0] = 63.0
    t.sweep()
    assert closed[-1] == 0 and not t.links
    c = t.counters.link_errors
    assert (c["evicted"], c["first-frame-timeout"], c["idle-timeout"]) == (1, 2, 1)


def test_rate_limited_log_sums_suppressed_lines(caplog):
    from betanet.mix.ratelog import RateLimitedLog
    now = [0.0]
    r = RateLimitedLog(logging.getLogger("betanet.mix.test"), interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="betanet.mix.test"):
        assert [r.warning("k", "refused %d", i) for i in range(100)] == [True] + [False] * 99
        now[0] = 10.0
        assert r.warning("k", "refused %d", 100)
    assert [x.getMessage() for x in caplog.records] == [
        "refused 0", "refused 100 (99 more like this since the last report)"]
