"""The sans-IO mesh router on the simulated radio: coverage, relay policy, FEC under loss,
and hostile input (tampered signatures, forged announces, hostile fragments, floods)."""
from __future__ import annotations

import random

import pytest

from betanet.mesh.announce import Announce
from betanet.mesh.fragment import split
from betanet.mesh.packet import ANNOUNCE, Packet
from betanet.mesh.radio import MTU_BYTES, Scheduler, SimMedium
from betanet.mesh.router import Delivered, Identity, MeshRouter, PeerAnnounced, Rejected
from betanet.mesh.sim import SimMesh


def _pair(seed=1, **kw):
    rng = random.Random(seed)
    a, b = Identity.generate("a", rng), Identity.generate("b", rng)
    ra, rb = MeshRouter(a, rng=random.Random(1), **kw), MeshRouter(b, rng=random.Random(2), **kw)
    ra.link_up(b.peer_id)
    rb.link_up(a.peer_id)
    return ra, rb


def _introduce(ra: MeshRouter, rb: MeshRouter, now=0):
    ra.announce(now)
    for f in ra.frames_to_send():
        rb.receive(f, ra.me, now)
    rb.announce(now)
    for f in rb.frames_to_send():
        ra.receive(f, rb.me, now)


@pytest.mark.parametrize("policy", ["adaptive", "flood"])
def test_50_nodes_broadcast_reaches_all_within_ttl_at_most_twice_per_node(policy):
    """Every node transmits each message at most once, plus at most once more when a copy
    with more hops left arrives after its relay (a TTL upgrade, counted)."""
    mesh = SimMesh(50, policy=policy, seed=7)
    mesh.announce_all()
    res = mesh.broadcast_round(5, size=80, ttl=7)
    assert res.reachable > 5 * 40                      # the placement is mostly connected
    assert res.delivered == res.reachable, res.summary()
    for node in mesh.nodes:
        tx = node.router.transmitted.values()
        assert max(tx, default=0) <= 2
        assert sum(t - 1 for t in tx if t > 1) <= node.router.counters.get("relay_upgrades", 0)
    assert max(res.hops) <= 7


def test_adaptive_policy_sends_fewer_frames_than_flooding():
    out = {}
    for policy in ("flood", "adaptive"):
        mesh = SimMesh(60, area_m=80, policy=policy, seed=11)      # dense
        mesh.announce_all()
        out[policy] = mesh.broadcast_round(5, size=80)
        assert out[policy].delivery_ratio == 1.0
    assert out["adaptive"].frames_sent < out["flood"].frames_sent
    print("frames per delivered: flood", out["flood"].tx_per_delivered,
          "adaptive", out["adaptive"].tx_per_delivered)


def test_fec_raises_delivery_under_20_percent_loss():
    ratios = {}
    for parity in (0, 3):
        mesh = SimMesh(40, area_m=120, range_m=30, loss=0.2, seed=5, fec_parity=parity)
        mesh.announce_all()
        ratios[parity] = mesh.broadcast_round(12, size=1400).delivery_ratio
    print("delivery under 20 % loss: without FEC", ratios[0], "with FEC (m=3)", ratios[3])
    assert ratios[3] >= ratios[0] and ratios[3] >= 0.99


def test_frames_respect_the_mtu():
    mesh = SimMesh(5, area_m=10, seed=2, fec_parity=2)
    mesh.announce_all()
    mesh.broadcast_round(2, size=5000)          # SimMedium raises on a frame over 512 bytes
    with pytest.raises(ValueError):
        mesh.medium.transmit(mesh.nodes[0].radio, b"x" * (MTU_BYTES + 1))


def test_signed_delivery_and_tampered_packet_rejected():
    ra, rb = _pair()
    _introduce(ra, rb)
    ra.broadcast(b"hello", 10)
    frame = ra.frames_to_send()[0]
    bad = bytearray(frame)
    bad[24] ^= 1                                # a payload byte
    ev = rb.receive(bytes(bad), ra.me, 11)
    assert isinstance(ev[0], Rejected) and rb.counters["rejected_signature"] == 1
    ev = rb.receive(frame, ra.me, 12)
    assert isinstance(ev[0], Delivered) and ev[0].verified and ev[0].packet.payload == b"hello"
    assert rb.receive(frame, ra.me, 13) == [] and rb.counters["duplicates"] == 1


def test_forged_announces_rejected():
    ra, rb = _pair()
    _introduce(ra, rb)
    ident = ra.identity
    mallory = Identity.generate("mallory", random.Random(99))
    # 1) sender id is not the hash of the announced Noise key
    a = Announce("evil", mallory.noise_public, mallory.signing_public)
    p = Packet(type=ANNOUNCE, sender=ident.peer_id, payload=a.encode(), timestamp=5, ttl=1).signed(mallory.signing_secret)
    # 2) a's own Noise key but mallory's signing key: conflicts with the pinned key
    a2 = Announce("a", ident.noise_public, mallory.signing_public)
    p2 = Packet(type=ANNOUNCE, sender=ident.peer_id, payload=a2.encode(), timestamp=6, ttl=1).signed(mallory.signing_secret)
    # 3) correct fields, signature by someone else
    a3 = Announce("a", ident.noise_public, ident.signing_public)
    p3 = Packet(type=ANNOUNCE, sender=ident.peer_id, payload=a3.encode(), timestamp=7, ttl=1).signed(mallory.signing_secret)
    # 4) unsigned
    p4 = Packet(type=ANNOUNCE, sender=ident.peer_id, payload=a3.encode(), timestamp=8, ttl=1)
    for pkt in (p, p2, p3, p4):
        ev = rb.receive(pkt.encode(), ra.me, 20)
        assert isinstance(ev[0], Rejected)
    assert rb.counters["rejected_forged_announce"] == 4
    assert rb.peers[ident.peer_id].announce.signing_key == ident.signing_public


def test_hostile_fragments_rejected_counted_and_bounded():
    ra, rb = _pair(reasm_assemblies=8, reasm_bytes=16384)
    _introduce(ra, rb)
    p = Packet(type=2, sender=ra.me, payload=random.Random(1).randbytes(2000), timestamp=9).signed(ra.identity.signing_secret)
    for n, fid in enumerate((b"O" * 8, b"T" * 8, b"R" * 8)):
        frags = split(p, fragment_id=fid)
        rb.receive(frags[0].encode(), ra.me, 30)
        hostile = [frags[0].payload[:13] + b"\0" * 469,                          # overlap
                   frags[1].payload[:10] + b"\x00\x63" + frags[1].payload[12:],  # wrong total
                   frags[1].payload + b"more"][n]                                # overrun
        rb.receive(Packet(type=0x20, sender=ra.me, timestamp=9 + n, payload=hostile).encode(), ra.me, 31)
    assert rb.counters["rejected_fragment"] == 3
    for i in range(500):                                    # an assembly flood
        payload = i.to_bytes(8, "big") + b"\x00\x00\x00\x05\x02" + b"f" * 400
        rb.receive(Packet(type=0x20, sender=i.to_bytes(8, "big"), timestamp=100, payload=payload).encode(), ra.me, 40 + i)
    st = rb._reasm.stats()
    assert st["in_flight"] <= 8 and st["bytes_held"] <= 8 * 16384 and st["evicted"] >= 490


def test_rate_limit_per_sender():
    ra, rb = _pair(rate_per_s=1.0, burst=5)
    _introduce(ra, rb)
    for i in range(20):
        ra.broadcast(b"spam %d" % i, 100)
    evs = [e for f in ra.frames_to_send() for e in rb.receive(f, ra.me, 100)]
    assert sum(isinstance(e, Delivered) for e in evs) == 4       # the announce used one token
    assert rb.counters["rejected_rate"] == 16


def test_source_route_only_listed_hops_relay():
    rng = random.Random(4)
    ids = [Identity.generate(f"n{i}", rng) for i in range(4)]
    routers = [MeshRouter(i, rng=random.Random(k)) for k, i in enumerate(ids)]
    src, hop, other, dst = routers
    src.send_to(dst.me, b"routed", 0, route=(hop.me,))
    frame = src.frames_to_send()[0]
    assert Packet.decode(frame).version == 2
    hop.receive(frame, src.me, 1)
    other.receive(frame, src.me, 1)
    other.tick(10_000)
    assert len(hop.frames_to_send()) == 1 and other.frames_to_send() == []
    ev = dst.receive(frame, hop.me, 2)
    assert isinstance(ev[0], Delivered) and ev[0].packet.payload == b"routed"


def test_peer_table_expiry():
    ra, rb = _pair(peer_ttl_ms=1000)
    ra.announce(0)
    ev = rb.receive(ra.frames_to_send()[0], ra.me, 0)
    assert isinstance(ev[0], PeerAnnounced) and ra.me in rb.peers
    rb.tick(500)
    assert ra.me in rb.peers
    rb.tick(1501)
    assert ra.me not in rb.peers and rb.counters["peers_expired"] == 1


def test_malformed_frame_rejected():
    ra, rb = _pair()
    ev = rb.receive(b"\x07garbage", ra.me, 0)
    assert isinstance(ev[0], Rejected) and rb.counters["rejected_malformed"] == 1


def test_scheduler_runs_in_simulated_time():
    s = Scheduler()
    seen = []
    s.call_later(5.0, lambda: seen.append(s.now))
    s.call_later(1.0, lambda: seen.append(s.now))
    s.run(until=3.0)
    assert seen == [1.0] and s.now == 3.0
    s.run()
    assert seen == [1.0, 5.0]


def test_energy_counters():
    s = Scheduler()
    med = SimMedium(s, range_m=10)
    a, b = med.add(b"A" * 8, 0, 0), med.add(b"B" * 8, 5, 0)
    got = []
    b.on_frame = lambda f, src: got.append((f, src))
    a.send(b"x" * 100)
    s.run(until=10.0)
    med.settle_energy()
    assert got == [(b"x" * 100, b"A" * 8)]
    assert a.energy.tx > 0 and b.energy.rx > 0 and a.energy.idle == pytest.approx(10 * 30e-6)
    b.set_asleep(True)
    a.send(b"y")
    s.run(until=20.0)
    med.settle_energy()
    assert len(got) == 1 and b.energy.sleep == pytest.approx(10 * 4.5e-6)


def test_low_power_node_asleep_90_percent_gets_everything_through_its_friend():
    from betanet.mesh.sim import SimNode
    sched = Scheduler()
    med = SimMedium(sched, range_m=12, rng=random.Random(3))
    rng = random.Random(8)
    spots = {"a": (0, 0), "c": (5, 5), "friend": (10, 0), "lpn": (20, 0)}
    nodes = {}
    for name, (x, y) in spots.items():
        ident = Identity.generate(name, rng)
        router = MeshRouter(ident, rng=random.Random(len(nodes)), friend=name == "friend",
                            relay=name != "lpn")
        nodes[name] = SimNode(router, med.add(ident.peer_id, x, y), sched)
    for n in nodes.values():
        for peer in n.radio.neighbours():
            n._on_neighbour(peer, True)
    lpn, friend = nodes["lpn"], nodes["friend"]
    assert lpn.radio.neighbours() == [friend.router.me]
    for n in nodes.values():
        n.router.announce(n.now_ms())
        n.flush()
    sched.run(until=1.0)
    lpn.router.poll_friend(friend.router.me, lpn.now_ms())     # the first poll sets up the friendship
    lpn.flush()
    sched.run(until=1.5)
    lpn.radio.set_asleep(True)

    def wake():
        lpn.radio.set_asleep(False)
        lpn.router.poll_friend(friend.router.me, lpn.now_ms())
        lpn.flush()
        sched.call_later(1.0, lambda: lpn.radio.set_asleep(True))
        sched.call_later(10.0, wake)

    sched.call_later(9.0, wake)
    bodies = []
    for i in range(20):
        src = nodes["a" if i % 2 else "c"]
        body = b"news %d" % i
        bodies.append(body)
        sched.call_at(2.0 + 3.0 * i, lambda src=src, body=body: (src.router.broadcast(body, src.now_ms()), src.flush()))
    sched.run(until=75.0)
    got = {ev.packet.payload for ev, _ in lpn.delivered}
    assert got >= set(bodies)
    assert friend.router.counters["friend_frames"] >= 15 and friend.router.friends.dropped == 0
    assert lpn.router.counters.get("relayed", 0) == 0
    med.settle_energy()
    assert lpn.radio.energy.sleep > 0 and lpn.radio.energy.idle < nodes["a"].radio.energy.idle


def test_partitioned_mesh_heals_and_delivers_what_was_stored():
    mesh = SimMesh(30, area_m=60, range_m=25, seed=12)
    left = [n for n in mesh.nodes if n.radio.x < 30]
    right = [n for n in mesh.nodes if n.radio.x >= 30]
    cut = [(a.router.me, b.router.me) for a in left for b in right if mesh.medium.in_range(a.radio, b.radio)]
    assert cut and left and right
    for a, b in cut:
        mesh.medium.set_blocked(a, b, True)
    mesh.announce_all()
    src = left[0]
    src.router.broadcast(b"across the river", src.now_ms())
    src.flush()
    mesh.scheduler.run(until=mesh.scheduler.now + 3.0)

    def got(n):
        return any(ev.packet.payload == b"across the river" for ev, _ in n.delivered)
    assert not any(got(n) for n in right)
    for a, b in cut:                                     # the partition heals
        mesh.medium.set_blocked(a, b, False)
    mesh.scheduler.run(until=mesh.scheduler.now + 3.0)
    assert all(got(n) for n in right + left[1:])
    assert sum(n.router.counters.get("healed_frames", 0) for n in mesh.nodes) > 0


def test_a_link_queues_writes_in_order_and_is_bounded():
    sched = Scheduler()
    med = SimMedium(sched, rng=random.Random(1))
    a, b = med.add(b"A" * 8, 0, 0), med.add(b"B" * 8, 5, 0)
    got = []
    b.on_frame = lambda frame, src: got.append((sched.now, frame))
    frames = [bytes([i % 256]) * 500 for i in range(3000)]        # 1.5 MB at once
    for f in frames:
        a.send(f)
    sched.run()
    airtime = 500 * 8 / med.throughput_bps
    assert [f for _, f in got] == frames[:len(got)]                 # in order, none reordered
    assert all(t2 - t1 >= airtime - 1e-9 for (t1, _), (t2, _) in zip(got, got[1:]))
    assert 1990 <= len(got) <= 2000                                 # about 1 MB queued ...
    assert len(got) + med.link_overflows == 3000                    # ... the rest dropped, counted


def _relay_copy(rb: MeshRouter, frame: bytes, ttl: int, link: bytes, now: int) -> list[int]:
    """Hand rb a copy of `frame` with `ttl` and run its timers: the TTLs it transmitted."""
    rb.receive(frame[:2] + bytes([ttl]) + frame[3:], link, now)
    rb.tick(now + 10_000)
    return [f[2] for f in rb.frames_to_send()]


@pytest.mark.parametrize("first_ttl", [1, 2])
def test_a_later_copy_with_more_hops_left_is_relayed_once_more(first_ttl):
    """First copy wins de-duplication; a copy from a shorter path arriving after the relay
    (or after a copy with TTL 1, which cannot be relayed) must still carry the packet as far
    as its TTL allows — once: a third, even better copy is not relayed again."""
    ra, rb = _pair(policy="flood")
    far, near = b"\x01" * 8, b"\x02" * 8
    rb.link_up(far)
    rb.link_up(near)
    ra.broadcast(b"hello", 1000, ttl=7)
    frame = ra.frames_to_send()[0]
    assert _relay_copy(rb, frame, first_ttl, far, 1000) == ([first_ttl - 1] if first_ttl > 1 else [])
    assert _relay_copy(rb, frame, 6, near, 20_000) == [5]
    assert rb.counters["relay_upgrades"] == 1
    assert _relay_copy(rb, frame, 7, ra.me, 40_000) == ([6] if first_ttl == 1 else [])
    assert _relay_copy(rb, frame, 7, ra.me, 60_000) == []          # never more than MAX_RELAYS
    assert max(rb.transmitted.values()) <= 2
    assert _relay_copy(rb, frame, 3, far, 80_000) == []            # fewer hops left: a plain copy


def test_per_packet_relay_state_is_bounded():
    """A long-running router keeps its relay state and transmit counts for recent packets
    only (before: one entry per packet it ever sent, forever)."""
    ra, rb = _pair(dedup_capacity=256, policy="flood")      # relay memory 32 packets
    for i in range(200):
        ra.broadcast(b"m%d" % i, 1000 + i)
        for f in ra.frames_to_send():
            rb.receive(f, ra.me, 1000 + i)
        rb.tick(10_000 + i)
        rb.frames_to_send()
    assert len(ra.transmitted) == len(rb.transmitted) == 32 and len(rb._relays) == 32
