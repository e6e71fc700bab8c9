"""Scenario 5: the privacy QoS sends through mixnodes (real loopback sockets); what each
mixnode receives, and what a custodian stores, holds no plaintext and no destination
beyond the next hop."""
from __future__ import annotations

import asyncio

from betanet.mix.client import MixClient
from betanet.mix.local import LocalMixnet
from betanet.node.link_mix import MixLink, mix_id
from betanet.node.identity import Identity
from betanet.node.node import Node

from node_helpers import fast_config, introduce, make_node, take
from test_node_scenarios import run

SECRET = b"the plaintext no mixnode may see"


def test_5_privacy_qos_goes_through_mixnodes_and_they_learn_nothing(tmp_path):
    async def go():
        net = LocalMixnet(3, mean_delay_ms=5.0)
        await net.start()
        seen: dict[int, list[bytes]] = {i: [] for i in range(3)}
        for i, m in enumerate(net.nodes):          # log every frame each mixnode receives
            orig = m.protocol.receive_frame

            def spy(frame_type, data, now, link=None, orig=orig, i=i):
                seen[i].append(bytes(data))
                return orig(frame_type, data, now, link)
            m.protocol.receive_frame = spy
        nodes = []
        for name in ("a", "d"):
            n = make_node(tmp_path, name)
            client = MixClient(mix_id(n.me), net.directory, mean_delay_ms=5.0)
            n.links.append(MixLink(client, net.directory, n.peers, mean_delay_ms=5.0))
            nodes.append(n)
            await n.start()
        a, d = nodes
        introduce(nodes)
        assert d.me in a.links[-1].reaches()
        h = await a.send(d.me, SECRET, qos="privacy_first")
        await h.acked(20)
        assert h.transports == ["mix"] and h.qos == "privacy_first"
        got = await take(d, 1)
        assert got[0].body == SECRET and got[0].sender == a.me
        h2 = await a.send(d.me, b"balanced goes direct")
        await h2.acked(20)
        assert h2.transports == ["htx"]
        frames = [f for fs in seen.values() for f in fs]
        assert frames, "no frame went through the mixnodes"
        dest_ids = (d.identity.peer_id, mix_id(d.me))
        for f in frames:
            assert SECRET not in f
            assert not any(x in f for x in dest_ids), "a mixnode received the destination in clear"
        await asyncio.gather(*(n.stop() for n in nodes))
        await net.close()
    run(go(), 90)


def test_custodian_view_holds_no_plaintext(tmp_path):
    async def go():
        a, r = make_node(tmp_path, "a"), make_node(tmp_path, "r")
        await a.start()
        await r.start()
        introduce([a, r])
        third = Identity.generate()
        from betanet.node import envelope as env
        sealed = env.seal(a.identity, third.signing_public, third.exchange_public, SECRET)
        await a.links[0].send(r.me, b"\x01" + sealed, 5)
        bundles = await r.store.bundles.next_for(None, claim=False)
        assert len(bundles) == 1 and SECRET not in bundles[0].data
        assert bundles[0].destination == third.peer_id_text and a.me.encode() not in bundles[0].data
        await a.stop()
        await r.stop()
    run(go())
