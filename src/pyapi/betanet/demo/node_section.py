"""Demo section: the node — one conversation over the internet, the BLE mesh and the store."""
from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time

TITLE = "Node: a conversation that survives the internet going away, then a full partition"


async def _network(tmp: str):
    from betanet.mesh.router import Identity as MeshIdentity, MeshRouter
    from betanet.node import config as nconfig
    from betanet.node.identity import Identity
    from betanet.node.link_htx import HtxLink
    from betanet.node.link_mesh import MeshLink
    from betanet.node.localnet import CutProxy, LocalAir
    from betanet.node.node import Node
    from betanet.node.peers import PeerRecord

    air = LocalAir()
    cfg = nconfig.defaults()
    cfg["routing"].update(hop_timeout_ms=400, ack_timeout_ms=1500, retry_interval_ms=100)
    nodes = []
    for i, name in enumerate(("alice", "bus", "kiosk", "dana")):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        ident = Identity.generate()
        n = Node(ident, os.path.join(d, "store.db"), config=cfg)
        if name in ("alice", "dana"):
            n.links.append(HtxLink(ident, n.peers, cert_dir=d, retry_s=0.3, connect_timeout=0.5))
        router = MeshRouter(MeshIdentity.generate(name, random.Random(i)), rng=random.Random(i))
        # records are handed out below (alice's copy of dana's names the cuttable proxy), so
        # no discovery over the mesh: it would offer dana's own record with the same seq
        n.links.append(MeshLink(router, air.radio(router.me), n.peers, announce_s=0.2,
                                discovery=False))
        nodes.append(n)
    mids = [n.links[-1].router.me for n in nodes]
    for x, y in zip(mids, mids[1:]):
        air.connect(x, y)                       # alice - bus - kiosk - dana
    for n in nodes:
        await n.start()
    a, d = nodes[0], nodes[-1]
    internet = CutProxy(d.links[0].port)        # alice's internet path to dana
    await internet.start()
    recs = [n.record() for n in nodes]
    d_via = PeerRecord.create(d.identity, recs[-1].seq, htx_tcp=[f"127.0.0.1:{internet.port}"],
                              ble_id=recs[-1].ble_id, features=recs[-1].features)
    for n in nodes:
        for r in recs:
            if r.peer != n.me:
                n.add_peer(d_via.raw if (n is a and r.peer == d.me) else r.raw)
    while d.me not in a.links[-1].reaches():
        await asyncio.sleep(0.05)
    return air, nodes, internet, mids


async def run(report) -> None:
    with tempfile.TemporaryDirectory(prefix="betanet-demo-node-") as tmp:
        air, nodes, internet, mids = await _network(tmp)
        a, d = nodes[0], nodes[-1]
        received: list[bytes] = []

        async def on_chat(m):
            received.append(m.body)
        d.on("chat", on_chat)
        t0 = time.monotonic()
        report.line("alice, bus, kiosk, dana: alice and dana on the internet (HTX), all four in a")
        report.line("BLE chain alice - bus - kiosk - dana. alice writes to dana; table: what carried each.")
        report.line(f"{'#':>2}  {'message':<28} {'while':<22} {'transports':<16} acked at")
        rows = []

        async def say(i: int, text: str, phase: str, wait: bool = True):
            h = await a.send(d.me, text.encode(), topic="chat")
            rows.append((i, text, phase, h))
            if wait:
                await h.acked(30)
                report.line(f"{i:>2}  {text:<28} {phase:<22} {'+'.join(h.transports):<16} "
                            f"{time.monotonic() - t0:5.2f} s")
        for i, text in enumerate(("hi dana", "the train is late", "see you at 6"), 1):
            await say(i, text, "online")
        internet.cut()
        report.line("   -- alice's internet goes away --")
        for i, text in enumerate(("still there?", "mesh works", "walking over"), 4):
            await say(i, text, "internet down")
        air.set_blocked(mids[0], mids[1], True)
        report.line("   -- and alice walks out of BLE range: nothing reaches dana --")
        waiting = []
        for i, text in enumerate(("out of range now", "will send later"), 7):
            await say(i, text, "full partition", wait=False)
            waiting.append(rows[-1])
        await asyncio.sleep(1.0)
        held = (await a.store.counts())["outbox_pending"]
        report.line(f"   {held} messages wait in alice's store")
        internet.restore()
        report.line("   -- the internet comes back --")
        for i, text, phase, h in waiting:
            await h.acked(30)
            report.line(f"{i:>2}  {text:<28} {phase:<22} {'+'.join(h.transports):<16} "
                        f"{time.monotonic() - t0:5.2f} s")
        end = time.monotonic() + 10
        while len(received) < len(rows) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        sent = [text.encode() for _, text, _, _ in rows]
        report.result(received == sent, f"dana got all {len(sent)} messages once each, in order")
        report.result(all(h.transports == ["htx"] for _, _, p, h in rows if p == "online"),
                      "online: over the internet (HTX)")
        report.result(all(h.transports[-1] == "ble" for _, _, p, h in rows if p == "internet down"),
                      f"internet down: over the BLE mesh ({a.counters.get('fallbacks', 0)} fallbacks)")
        report.result(held == 2 and all(h.transports[0] == "dtn" and h.transports[-1] == "htx"
                                        for _, _, _, h in waiting),
                      "full partition: stored, delivered when the internet returned")
        await internet.close()
        for n in nodes:
            await n.stop()
