"""Demo section: phones with no internet — a BitChat-compatible BLE mesh, simulated.

All on the discrete-event radio (simulated seconds, no sleeping): a broadcast crossing a
neighbourhood in several hops, a private message the relays cannot read, a phone asleep
90 % of the time catching up through its friend, and FEC against 20 % frame loss.
"""
from __future__ import annotations

import random

from betanet.mesh.radio import Scheduler, SimMedium
from betanet.mesh.router import Identity, MeshRouter, PrivateMessage
from betanet.mesh.sim import SimMesh, SimNode

TITLE = "Mesh: phones without internet relay BitChat packets over Bluetooth LE (simulated)"


def run(report) -> None:
    # 1. a broadcast across the neighbourhood
    mesh = SimMesh(40, area_m=140, range_m=30, seed=3)
    mesh.announce_all()
    res = mesh.broadcast_round(1, size=120, ttl=7)
    s = res.summary()
    report.line(f"40 phones in a 140 m square, 30 m radio range: one broadcast reached "
                f"{res.delivered}/{res.reachable} reachable phones in up to {s['max_hops']} hops, "
                f"mean {s['mean_latency_ms']} ms, {res.frames_sent} transmissions")
    report.result(res.delivered == res.reachable and s["max_hops"] >= 3,
                  "broadcast delivered to every reachable phone, several hops away")

    # 2. a private message over Noise XX, relayed by phones that cannot read it
    frames: list[bytes] = []
    transmit = mesh.medium.transmit
    mesh.medium.transmit = lambda radio, frame: (frames.append(frame), transmit(radio, frame))
    src, far = _far_pair(mesh)
    got: list[PrivateMessage] = []
    receive = far.router.receive
    far.router.receive = lambda f, link, now: _keep(receive(f, link, now), got)
    secret = "the water point at the school is open"
    src.router.send_private(far.router.me, secret, src.now_ms())
    src.flush()
    mesh.scheduler.run(until=mesh.scheduler.now + 5.0)
    hops = mesh.hop_distances(src)[far.router.me]
    readable = any(secret.encode() in f for f in frames)
    report.line(f"private message {hops} hops away: Noise XX handshake + 1 message, "
                f"{len(frames)} frames on the air, plaintext in none of them: {not readable}")
    report.result([m.content for m in got] == [secret] and not readable,
                  "only the recipient read the private message")

    # 3. a phone asleep 90 % of the time, served by a powered friend
    got_all, polled = _sleeping_phone()
    report.line(f"phone asleep 90 % of the time (wakes 1 s in 10, polls its friend): "
                f"{got_all[0]}/{got_all[1]} broadcasts received, {polled} frames handed over by the friend")
    report.result(got_all[0] == got_all[1], "the sleeping phone missed nothing")

    # 4. FEC against 20 % frame loss (3 kB messages: 7 fragments each)
    ratios = {}
    for parity in (0, 3):
        lossy = SimMesh(25, area_m=100, range_m=30, loss=0.2, seed=5, fec_parity=parity)
        lossy.announce_all()
        ratios[parity] = lossy.broadcast_round(4, size=3000).delivery_ratio
    report.line(f"20 % frame loss, 3 kB messages (7 fragments): delivered {ratios[0]:.1%} without FEC, "
                f"{ratios[3]:.1%} with 3 parity fragments")
    report.result(ratios[3] >= ratios[0] and ratios[3] >= 0.95, "FEC recovers what loss took")


def _keep(events, into):
    into += [e for e in events if isinstance(e, PrivateMessage)]
    return events


def _far_pair(mesh: SimMesh, max_hops: int = 5):
    """Two phones as far apart as possible within reach of a TTL-7 packet."""
    best = None
    for node in mesh.nodes[:10]:
        for pid, hops in mesh.hop_distances(node).items():
            if hops <= max_hops and (best is None or hops > best[2]):
                best = (node, mesh.by_id[pid], hops)
    return best[0], best[1]


def _sleeping_phone() -> tuple[tuple[int, int], int]:
    sched = Scheduler()
    med = SimMedium(sched, range_m=12, rng=random.Random(3))
    rng = random.Random(8)
    nodes = {}
    for name, (x, y) in {"a": (0, 0), "friend": (10, 0), "phone": (20, 0)}.items():
        ident = Identity.generate(name, rng)
        router = MeshRouter(ident, rng=random.Random(len(nodes)), friend=name == "friend", relay=name != "phone")
        nodes[name] = SimNode(router, med.add(ident.peer_id, x, y), sched)
    for n in nodes.values():
        for peer in n.radio.neighbours():
            n._on_neighbour(peer, True)
        n.router.announce(n.now_ms())
        n.flush()
    sched.run(until=1.0)
    phone, friend, a = nodes["phone"], nodes["friend"], nodes["a"]
    phone.router.poll_friend(friend.router.me, phone.now_ms())      # sets up the friendship
    phone.flush()
    sched.run(until=1.5)
    phone.radio.set_asleep(True)

    def wake() -> None:
        phone.radio.set_asleep(False)
        phone.router.poll_friend(friend.router.me, phone.now_ms())
        phone.flush()
        sched.call_later(1.0, lambda: phone.radio.set_asleep(True))
        sched.call_later(10.0, wake)

    sched.call_later(9.0, wake)
    bodies = [b"bulletin %d" % i for i in range(8)]
    for i, body in enumerate(bodies):
        sched.call_at(2.0 + 4.0 * i, lambda body=body: (a.router.broadcast(body, a.now_ms()), a.flush()))
    sched.run(until=45.0)
    got = {ev.packet.payload for ev, _ in phone.delivered} & set(bodies)
    return (len(got), len(bodies)), friend.router.counters.get("friend_frames", 0)
