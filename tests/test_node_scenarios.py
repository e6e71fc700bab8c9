"""Issue 14 scenarios, in process on real localhost sockets (HTX over TCP+TLS) and an
in-process BLE air: 1 online, 2 internet cut mid-stream -> mesh, 3 everything down -> store
-> delivered in order on contact, 6 battery low -> energy route; plus bad input at the node."""
from __future__ import annotations

import asyncio
import time

import pytest

from betanet.errors import (ExpiredError, InvalidArgumentError, LimitExceededError, NotFoundError,
                            StateError)
from betanet.node import envelope as env
from betanet.node.identity import Identity
from betanet.node.power import PushedPowerSource

from node_helpers import CutProxy, LocalAir, fast_config, introduce, make_node, take, wait_for


def run(coro, timeout=60):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def test_1_online_over_htx_route_and_ack(tmp_path):
    async def go():
        a, d = make_node(tmp_path, "a"), make_node(tmp_path, "d")
        await a.start()
        await d.start()
        introduce([a, d])
        h = await a.send(d.me, b"hello over htx", topic="chat")
        assert len(h.message_id) == 16
        await h.acked(10)
        assert h.route == [a.me, d.me] and h.transports == ["htx"] and h.policy == "normal"
        got = await take(d, 1)
        assert (got[0].sender, got[0].topic, got[0].body) == (a.me, "chat", b"hello over htx")
        st = await d.store.counts()
        assert st["inbox_delivered"] == 1
        await a.stop()
        await d.stop()
    run(go())


def _mesh_chain(tmp_path, power=None):
    """A - B - C - D on the air; A and D also on HTX, A reaching D through a cuttable relay."""
    air = LocalAir()
    nodes = [make_node(tmp_path, n, htx=n in "ad", air=air, seed=i,
                       power=power if n == "a" else None) for i, n in enumerate("abcd")]
    mids = [n.links[-1].router.me for n in nodes]
    for x, y in zip(mids, mids[1:]):
        air.connect(x, y)
    return air, nodes


async def _start_chain(nodes, proxy_to_d=True):
    for n in nodes:
        await n.start()
    a, d = nodes[0], nodes[-1]
    recs = [n.record() for n in nodes]
    proxy = None
    if proxy_to_d:
        proxy = CutProxy(d.links[0].port)
        await proxy.start()
        # A knows D's HTX endpoint as the relay's address (its "internet path")
        d_rec = recs[-1]
        from betanet.node.peers import PeerRecord
        recs_for_a = [r for r in recs if r.peer != d.me] + [PeerRecord.create(
            d.identity, d_rec.seq, htx_tcp=[f"127.0.0.1:{proxy.port}"], ble_id=d_rec.ble_id)]
        for r in recs_for_a:
            if r.peer != a.me:
                a.add_peer(r.raw)
        introduce(nodes[1:], recs)
    else:
        introduce(nodes, recs)
    # the mesh learns everyone (announces, TTL 7)
    assert await wait_for(lambda: d.me in a.links[-1].reaches() and a.me in d.links[-1].reaches(), 10)
    return proxy


def test_2_internet_cut_mid_stream_moves_to_the_mesh(tmp_path):
    async def go():
        air, nodes = _mesh_chain(tmp_path)
        a, d = nodes[0], nodes[-1]
        proxy = await _start_chain(nodes)
        handles = []
        for i in range(5):
            h = await a.send(d.me, b"m%d" % i)
            await h.acked(10)
            handles.append(h)
        assert all(h.transports == ["htx"] for h in handles)
        proxy.cut()
        t_cut = time.monotonic()
        for i in range(5, 15):
            handles.append(await a.send(d.me, b"m%d" % i))
        for h in handles[5:]:
            await h.acked(20)
        assert "ble" in handles[5].transports and handles[5].fallbacks >= 1
        assert all(h.transports[-1] == "ble" for h in handles[5:])
        got = await take(d, 15)
        assert [m.body for m in got] == [b"m%d" % i for i in range(15)]     # none lost, none twice, in order
        await asyncio.sleep(0.5)
        assert await d.store.ready() == []
        assert d.counters.get("messages_received") == 15
        print(f"first mesh delivery {handles[5].attempts[-1].at - t_cut + time.time() - time.time():.2f}s after the cut")
        assert a.counters["fallbacks"] >= 1
        await proxy.close()
        for n in nodes:
            await n.stop()
    run(go(), 90)


def test_3_everything_down_then_contact_delivers_in_order(tmp_path):
    async def go():
        air, nodes = _mesh_chain(tmp_path)
        a, b, c, d = nodes
        proxy = await _start_chain(nodes)
        proxy.cut()
        air.set_blocked(a.links[-1].router.me, b.links[-1].router.me, True)
        assert await wait_for(lambda: d.me not in a.links[-1].reaches(), 10)
        handles = [await a.send(d.me, b"w%d" % i) for i in range(6)]
        assert await wait_for(lambda: all("dtn" in h.transports for h in handles), 10)
        assert (await a.store.counts())["outbox_pending"] == 6
        await asyncio.sleep(1.0)
        assert d.counters.get("messages_received", 0) == 0
        proxy.restore()                                    # a contact: the internet is back
        for h in handles:
            await h.acked(20)
        got = await take(d, 6)
        assert [m.body for m in got] == [b"w%d" % i for i in range(6)]
        assert (await a.store.counts())["outbox_pending"] == 0
        await proxy.close()
        for n in nodes:
            await n.stop()
    run(go(), 90)


def test_3b_deadline_passes_and_the_application_hears_why(tmp_path):
    async def go():
        a, d = make_node(tmp_path, "a"), make_node(tmp_path, "d")
        await a.start()
        await d.start()
        introduce([a, d])
        await d.stop()
        h = await a.send(d.me, b"never", deadline_ms=800)
        with pytest.raises(ExpiredError, match="deadline"):
            await h.acked(10)
        assert (await a.store.counts())["outbox_failed"] == 1
        await a.stop()
    run(go())


def test_6_battery_low_takes_the_energy_route(tmp_path):
    async def go():
        power = PushedPowerSource()
        air, nodes = _mesh_chain(tmp_path, power=power)
        a, d = nodes[0], nodes[-1]
        await _start_chain(nodes, proxy_to_d=False)
        h1 = await a.send(d.me, b"mains")
        await h1.acked(10)
        assert h1.transports == ["htx"] and h1.policy == "normal"
        power.push(battery_percent=8.0, charging=False)
        h2 = await a.send(d.me, b"battery low")
        await h2.acked(20)
        assert h2.policy == "energy (battery)" and h2.qos == "energy_efficient"
        assert h2.transports == ["ble"]
        power.push(battery_percent=8.0, charging=True)
        h3 = await a.send(d.me, b"charging")
        await h3.acked(10)
        assert h3.transports == ["htx"]
        assert [m.body for m in await take(d, 3)] == [b"mains", b"battery low", b"charging"]
        for n in nodes:
            await n.stop()
    run(go(), 90)


def test_bad_sends_are_clear_errors(tmp_path):
    async def go():
        cfg = fast_config(application={"max_message_bytes": 1000})
        a = make_node(tmp_path, "a", config=cfg)
        with pytest.raises(StateError):
            await a.send("x", b"")
        await a.start()
        with pytest.raises(NotFoundError):
            await a.send(Identity.generate().peer_id_text, b"hi")
        other = make_node(tmp_path, "o")
        await other.start()
        introduce([a, other])
        with pytest.raises(LimitExceededError, match="max_message_bytes"):
            await a.send(other.me, bytes(1001))
        with pytest.raises(InvalidArgumentError):
            await a.send(other.me, b"x", qos="fastest")
        with pytest.raises(InvalidArgumentError):
            await a.send(other.me, b"x", deadline_ms=-5)
        with pytest.raises(InvalidArgumentError):
            await a.send(other.me, None)
        assert (await a.store.counts())["outbox_pending"] == 0
        await a.stop()
        await other.stop()
    run(go())


def test_hostile_frames_are_counted_drops(tmp_path):
    from betanet.node.links import LinkError

    async def go():
        a, d = make_node(tmp_path, "a"), make_node(tmp_path, "d")
        await a.start()
        await d.start()
        introduce([a, d])
        link, mallory, third = a.links[0], Identity.generate(), Identity.generate()

        async def refused(frame):
            with pytest.raises(LinkError, match="refused"):
                await link.send(d.me, frame, 5)
        await refused(b"\x07garbage")
        to_third = env.seal(a.identity, third.signing_public, third.exchange_public, b"x")
        await refused(b"\x01" + to_third[:1] + d.identity.peer_id + to_third[35:])   # sealed to someone else
        s = bytearray(env.seal(a.identity, d.identity.signing_public, d.identity.exchange_public, b"y"))
        s[-5] ^= 1
        await refused(b"\x01" + bytes(s))
        assert d.counters["dropped_malformed"] >= 1 and d.counters["dropped_auth"] >= 1
        # a message for a third peer is taken into custody (relay), not opened
        await link.send(d.me, b"\x01" + env.seal(a.identity, third.signing_public, third.exchange_public, b"z"), 5)
        assert d.counters["relay_custody"] == 1
        # a flood from one (valid) sender: bounded by the rate limit and the inbox limit
        d.config["application"]["inbox_limit"] = 50
        d.store.inbox_limit = 50
        sent = refused_n = 0
        for i in range(120):
            f = b"\x01" + env.seal(mallory, d.identity.signing_public, d.identity.exchange_public, b"f",
                                   seq=i)
            try:
                await link.send(d.me, f, 5)
                sent += 1
            except LinkError:
                refused_n += 1
        counts = await d.store.counts()
        assert counts["inbox_ready"] + counts["inbox_held"] <= 50
        assert refused_n >= 70 and d.counters["dropped_inbox_full"] >= 70
        await a.stop()
        await d.stop()
    run(go(), 90)


def test_1b_online_over_quic(tmp_path):
    from betanet.node.link_htx import HtxLink
    from betanet.node.node import Node

    async def go():
        nodes = []
        for name in ("a", "d"):
            d = tmp_path / name
            d.mkdir()
            ident = Identity.generate()
            n = Node(ident, str(d / "store.db"), config=fast_config())
            n.links.append(HtxLink(ident, n.peers, transport="quic", listen="127.0.0.1:0", cert_dir=str(d)))
            nodes.append(n)
            await n.start()
        a, d = nodes
        introduce(nodes)
        assert a.record().htx_quic and not a.record().htx_tcp
        h = await a.send(d.me, b"over quic")
        await h.acked(15)
        assert h.transports == ["quic"]
        assert [m.body for m in await take(d, 1)] == [b"over quic"]
        for n in nodes:
            await n.stop()
    run(go())
