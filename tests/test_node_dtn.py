"""The node's store-and-forward path through the bundle agent (link_dtn.py): node frames as
custody bundles over TCPCL between nodes with no other link, in order and exactly once, the
end-to-end acknowledgment coming back as a bundle; a contact that closes and reopens; a
restart with bundles held; relayed rows of an older store migrated; config errors."""
from __future__ import annotations

import asyncio
import os

import pytest
import yaml

from betanet.configschema import ConfigError
from betanet.node import config as nconfig
from betanet.node.identity import Identity
from betanet.node.link_dtn import DtnLink, load_dtn_config, node_endpoint
from betanet.node.node import Node

from node_helpers import fast_config, introduce, wait_for

pytestmark = pytest.mark.timeout(120)


def run(coro, timeout=90):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def _dtn_file(d, name, body: dict) -> str:
    path = os.path.join(d, f"{name}.dtn.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(body, f)
    return path


def dtn_node(tmp, name, body: dict, ident: Identity | None = None, cfg: dict | None = None) -> Node:
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    ident = ident or Identity.generate()
    cfg = cfg or fast_config()
    node = Node(ident, os.path.join(d, "store.db"), config=cfg)
    dcfg = load_dtn_config(_dtn_file(d, name, body), ident.peer_id_text)
    node.links.append(DtnLink(ident.peer_id_text, node.store_path, node.peers, dcfg, resend_s=600))
    return node


LISTEN = {"listen": {"tcpcl": [{"address": "127.0.0.1:0"}]}}


def _to(port: int, peer: Node) -> dict:
    return {"peers": {"links": [{"node": f"dtn://{peer.me}/", "cla": "tcpcl",
                                 "address": f"127.0.0.1:{port}"}]}}


async def collect(node, n, timeout=30.0):
    got = []
    agen = node.messages(manual_ack=True)

    async def go():
        async for m in agen:
            got.append(m)
            await m.ack()
            if len(got) >= n:
                break
    await asyncio.wait_for(go(), timeout)
    await agen.aclose()
    return got


def test_only_dtn_between_two_nodes_in_order_exactly_once_and_acked(tmp_path):
    async def go():
        d = dtn_node(tmp_path, "d", LISTEN)
        await d.start()
        port = d.links[0].ports["tcpcl"][0]
        a = dtn_node(tmp_path, "a", _to(port, d))
        await a.start()
        introduce([a, d])
        assert list(a.record().dtn_eids) == [f"dtn://{a.me}/"]
        hs = [await a.send(d.me, b"b%02d" % i, topic="t") for i in range(10)]
        got = await collect(d, 10)
        assert [m.body for m in got] == [b"b%02d" % i for i in range(10)]
        for h in hs:
            await h.acked(30)                      # the acknowledgment came back as a bundle
            assert h.transports == ["dtn"] and h.route == [a.me, d.me]
        assert a.links[0].stats()["frames_bundled"] == 10
        assert d.links[0].stats()["frames_in"] == 10
        assert a.counters["sent_dtn"] == 10 and d.counters["sent_dtn"] >= 10     # acks
        await asyncio.sleep(0.5)
        assert (await d.store.counts())["inbox_delivered"] == 10
        await a.stop()
        await d.stop()
    run(go())


def test_contact_down_bundles_wait_then_arrive_after_restart_of_sender(tmp_path):
    async def go():
        d = dtn_node(tmp_path, "d", LISTEN)
        await d.start()
        port = d.links[0].ports["tcpcl"][0]
        ident = Identity.generate()
        a = dtn_node(tmp_path, "a", _to(port, d), ident)
        await a.start()
        introduce([a, d])
        dlink = f"dtn://{d.me}/"
        a.links[0].dtn.set_contact(dlink, False)
        await wait_for(lambda: not a.links[0].dtn.contacts[dlink], 10)
        for i in range(5):
            await a.send(d.me, b"w%d" % i)
        await wait_for(lambda: a.links[0].stats()["frames_bundled"] == 5, 10)
        await asyncio.sleep(0.5)
        assert (await d.store.counts())["inbox_ready"] == 0          # nothing crossed
        await a.stop()                                  # bundles held in a's store
        a = dtn_node(tmp_path, "a", _to(port, d), ident)
        await a.start()                                 # contact up again: they leave
        introduce([a, d])
        got = await collect(d, 5)
        assert [m.body for m in got] == [b"w%d" % i for i in range(5)]
        await wait_for(lambda: a.counters.get("messages_acked", 0) == 5, 30)
        assert a.counters["messages_acked"] == 5
        await asyncio.sleep(0.5)
        assert (await d.store.counts())["inbox_delivered"] == 5       # no duplicates
        await a.stop()
        await d.stop()
    run(go())


def test_relay_rows_of_an_older_store_become_bundles(tmp_path):
    async def go():
        from betanet.dtn.store import BundleStore
        from betanet.node import envelope as env
        d = dtn_node(tmp_path, "d", LISTEN)
        await d.start()
        port = d.links[0].ports["tcpcl"][0]
        r_ident, sender = Identity.generate(), Identity.generate()
        introduce([d])
        rec = d.record()
        sealed = env.seal(sender, rec.signing_public, rec.exchange_public, b"kept for d",
                          message_id=b"\1" * 16, seq=0)
        os.makedirs(tmp_path / "r", exist_ok=True)
        old = BundleStore(str(tmp_path / "r" / "store.db"))
        import time
        await old.put("raw1", sealed, destination=d.me, source="relay", expires_at=time.time() + 600)
        await old.close()
        r = dtn_node(tmp_path, "r", _to(port, d), r_ident)
        await r.start()
        introduce([r, d])
        got = await collect(d, 1)
        assert got[0].body == b"kept for d" and r.links[0].stats()["migrated"] == 1
        st = await r.store.bundles.get("raw1")
        assert st.data is None                          # the raw row retired
        await r.stop()
        await d.stop()
    run(go())


def test_config_keys_and_errors(tmp_path):
    cfg = nconfig.from_dict({"transport": {"dtn_config": "x.yaml"}})
    assert cfg["transport"]["dtn_resend_ms"] == 600_000
    with pytest.raises(ConfigError, match="transport.dtn_config needs transport.dtn true"):
        nconfig.from_dict({"transport": {"dtn_config": "x.yaml", "dtn": False}})
    me = Identity.generate().peer_id_text
    for body, msg in [({"store": {"path": "other.db"}}, "store.path is set by the node"),
                      ({"node": {"register": ["dtn://x/y"]}}, "node.register is set by the node"),
                      ({"routing": {"strategy": "cgr", "plan": "p.txt"}}, "cgr needs an ipn node id"),
                      ({"node": {"id": "dtn://x/inbox"}}, "node.id must be a node id"),
                      ({"routing": {"strategy": "flood"}}, "routing.strategy")]:
        with pytest.raises(ConfigError, match=msg):
            load_dtn_config(_dtn_file(str(tmp_path), "bad", body), me)
    ok = load_dtn_config(_dtn_file(str(tmp_path), "ok", {"node": {"id": "ipn:7.0"}}), me)
    assert ok["node"]["id"] == "ipn:7.0"
    assert str(node_endpoint("ipn:7.0")) == "ipn:7.16"
    assert str(node_endpoint(f"dtn://{me}/")) == f"dtn://{me}/node"


def test_epidemic_through_a_relay_node_with_custody(tmp_path):
    """a - r - d, each contact a TCPCL link dialled by the left node, epidemic routing: a's
    message crosses r's agent (custody), d's acknowledgment comes back the same way."""
    async def go():
        epi = {"routing": {"strategy": "epidemic"}}
        d = dtn_node(tmp_path, "d", {**epi, **LISTEN})
        await d.start()
        r = dtn_node(tmp_path, "r", {**epi, **LISTEN, **_to(d.links[0].ports["tcpcl"][0], d)})
        await r.start()
        a = dtn_node(tmp_path, "a", {**epi, **_to(r.links[0].ports["tcpcl"][0], r)})
        await a.start()
        introduce([a, d])                      # a and d know each other; r is only a DTN hop
        hs = [await a.send(d.me, b"e%d" % i) for i in range(3)]
        got = await collect(d, 3)
        assert [m.body for m in got] == [b"e0", b"e1", b"e2"]
        for h in hs:
            await h.acked(30)
            assert h.transports == ["dtn"]
        ra = r.links[0].stats()["agent"]
        assert ra["custody_accepted"] >= 3 and r.links[0].stats()["frames_in"] == 0   # r only carried
        for n in (a, r, d):
            await n.stop()
    run(go())


def test_a_frame_the_receiver_refuses_comes_back_to_the_sender_and_is_offered_again(tmp_path):
    """d's inbox holds one message, so d's node refuses the second frame. The refusal goes
    back to a's bundle agent as a custody refusal: a keeps the bundle and offers it again
    after its back-off (seconds), not after transport.dtn_resend_ms (600 s here)."""
    async def go():
        d = dtn_node(tmp_path, "d", LISTEN, cfg=fast_config(application={"inbox_limit": 1}))
        await d.start()
        a = dtn_node(tmp_path, "a", _to(d.links[0].ports["tcpcl"][0], d))
        await a.start()
        introduce([a, d])
        h1 = await a.send(d.me, b"first")
        await wait_for(lambda: d.counters.get("messages_received", 0) == 1, 30)
        h2 = await a.send(d.me, b"second")
        await wait_for(lambda: d.links[0].stats()["frames_refused"] >= 1, 30)
        assert d.counters["dropped_inbox_full"] >= 1
        await wait_for(lambda: a.links[0].stats()["agent"]["custody_refused"] >= 1, 30)
        assert a.links[0].stats()["agent"]["custody_refused"] >= 1     # the refusal reached a
        assert a.links[0].stats()["held"] >= 1                          # a keeps that bundle
        got = await collect(d, 2, timeout=60)   # taking the first makes room for the second
        assert [m.body for m in got] == [b"first", b"second"]
        await h1.acked(30)
        await h2.acked(30)
        assert a.links[0].stats()["frames_bundled"] == 2               # never bundled again
        await a.stop()
        await d.stop()
    run(go(), timeout=110)


def test_a_frame_that_can_never_be_taken_is_accepted_and_dropped_not_offered_again(tmp_path):
    """A frame sealed to d that does not open (a flipped ciphertext byte): d's node drops it
    (DROPPED, not REFUSED), so d's agent accepts custody and a's agent releases the bundle
    instead of offering it again at every back-off until its lifetime ends."""
    async def go():
        import time
        from betanet.node import envelope as env
        d = dtn_node(tmp_path, "d", LISTEN)
        await d.start()
        a = dtn_node(tmp_path, "a", _to(d.links[0].ports["tcpcl"][0], d))
        await a.start()
        introduce([a, d])
        rec = d.record()
        sealed = bytearray(env.seal(a.identity, rec.signing_public, rec.exchange_public, b"x" * 40,
                                    message_id=b"\2" * 16, seq=0))
        sealed[-20] ^= 1
        await a.links[0].bundle(d.me, b"\x01" + bytes(sealed), time.time() + 600)
        await wait_for(lambda: d.links[0].stats()["frames_dropped"] == 1, 30)
        await wait_for(lambda: a.links[0].stats()["agent"]["custody_released"] >= 1, 30)
        assert d.counters["dropped_auth"] == 1
        assert d.links[0].stats()["frames_refused"] == 0
        assert a.links[0].stats()["agent"]["custody_refused"] == 0 and a.links[0].stats()["held"] == 0
        await a.stop()
        await d.stop()
    run(go())


def test_relay_rows_for_an_ipn_named_peer_go_to_its_record_address(tmp_path):
    """The old row is migrated before any peer record is loaded; it waits in the relay's own
    holding endpoint and leaves for d's record address (ipn:7.16), not dtn://<PeerID>/node."""
    async def go():
        import time
        from betanet.dtn.store import BundleStore
        from betanet.node import envelope as env
        d = dtn_node(tmp_path, "d", {**LISTEN, "node": {"id": "ipn:7.0"}})
        await d.start()
        sender = Identity.generate()
        rec = d.record()
        assert list(rec.dtn_eids) == ["ipn:7.0"]
        sealed = env.seal(sender, rec.signing_public, rec.exchange_public, b"kept for ipn d",
                          message_id=b"\2" * 16, seq=0)
        os.makedirs(tmp_path / "r", exist_ok=True)
        old = BundleStore(str(tmp_path / "r" / "store.db"))
        await old.put("raw1", sealed, destination=d.me, source="relay", expires_at=time.time() + 600)
        await old.close()
        r = dtn_node(tmp_path, "r", {"peers": {"links": [{"node": "ipn:7.0", "cla": "tcpcl",
                     "address": f"127.0.0.1:{d.links[0].ports['tcpcl'][0]}"}]}})
        await r.start()
        assert r.links[0].stats()["migrated"] == 1
        await asyncio.sleep(0.5)              # records arrive after the start (as from files)
        introduce([r, d])
        got = await collect(d, 1)
        assert got[0].body == b"kept for ipn d" and r.links[0].stats()["rehomed"] == 1
        await r.stop()
        await d.stop()
    run(go())


CGR_PLAN = """
# 1 -> 2 only from 3 s after start (each agent's own clock); everything else open
a contact +3 +3600 1 2 1000000
a contact +0 +3600 2 1 1000000
a contact +0 +3600 2 3 1000000
a contact +0 +3600 3 2 1000000
a range +0 +3600 1 2 0
a range +0 +3600 2 3 0
"""


def test_cgr_over_a_contact_plan_carries_node_messages_through_a_relay_at_the_planned_time(tmp_path):
    """a (ipn:1) - b (ipn:2) - c (ipn:3) with routing.strategy cgr. a's TCPCL session to b is
    up from the start, but b is not the destination and the plan opens 1->2 only at +3 s: a's
    node messages to c wait in a's agent until then, go to b by the plan (booked), b takes
    custody and hands them to c (its direct contact); c gets them in order, once, and its
    acknowledgments come back 3->2->1."""
    async def go():
        with open(tmp_path / "plan.ion", "w") as f:
            f.write(CGR_PLAN)

        def body(n, extra):
            return {"node": {"id": f"ipn:{n}.0"},
                    "routing": {"strategy": "cgr", "plan": str(tmp_path / "plan.ion")}, **extra}

        def to(port, n):
            return {"peers": {"links": [{"node": f"ipn:{n}.0", "cla": "tcpcl",
                                         "address": f"127.0.0.1:{port}"}]}}
        loop = asyncio.get_running_loop()
        c = dtn_node(tmp_path, "c", body(3, LISTEN))
        await c.start()
        b = dtn_node(tmp_path, "b", body(2, {**LISTEN, **to(c.links[0].ports["tcpcl"][0], 3)}))
        await b.start()
        t0 = loop.time()
        a = dtn_node(tmp_path, "a", body(1, to(b.links[0].ports["tcpcl"][0], 2)))
        await a.start()
        introduce([a, c])                           # b is only a DTN hop
        assert list(c.record().dtn_eids) == ["ipn:3.0"]
        await wait_for(lambda: a.links[0].dtn.contacts.get("ipn:2.0"), 10)
        hs = [await a.send(c.me, b"g%d" % i) for i in range(3)]
        await wait_for(lambda: a.links[0].stats()["frames_bundled"] == 3, 10)
        await asyncio.sleep(max(0.0, 1.5 - (loop.time() - t0)))
        assert b.links[0].stats()["agent"].get("custody_accepted", 0) == 0   # held at a
        got = await collect(c, 3, timeout=30)
        arrived = loop.time() - t0
        assert [m.body for m in got] == [b"g0", b"g1", b"g2"]
        assert arrived >= 2.5, arrived                 # not before the planned contact
        assert a.links[0].dtn.agent.strategy.booked >= 3
        assert b.links[0].stats()["agent"]["custody_accepted"] >= 3
        for h in hs:
            await h.acked(30)
            assert h.transports == ["dtn"]
        assert b.links[0].stats()["frames_in"] == 0    # b only carried
        await asyncio.sleep(0.5)
        assert (await c.store.counts())["inbox_delivered"] == 3
        for n in (a, b, c):
            await n.stop()
    run(go())
