"""Peer discovery over the mesh from announces: three nodes on a simulated air (a - b - c,
no records exchanged by configuration) learn each other's signed records from the record
hash in their announces (TLV 0x70, fetched over the mesh) and c sends to a; forged and
replayed records are refused and counted; learned records expire; the TLV round-trips and
stays invisible to a BitChat decoder."""
from __future__ import annotations

import asyncio
import hashlib
import os
import random

import pytest

from betanet.mesh.announce import PEER_RECORD_HASH, Announce
from betanet.mesh.router import Identity as MeshIdentity, MeshRouter
from betanet.node.identity import Identity
from betanet.node.link_mesh import MeshLink
from betanet.node.peers import PeerBook, PeerRecord

from node_helpers import LocalAir, make_node, wait_for

pytestmark = pytest.mark.timeout(120)


def run(coro, timeout=90):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def _chain(tmp_path, names="abc"):
    air = LocalAir()
    nodes = [make_node(tmp_path, n, htx=False, air=air, seed=i + 1) for i, n in enumerate(names)]
    mids = [n.links[-1].router.me for n in nodes]
    for x, y in zip(mids, mids[1:]):
        air.connect(x, y)
    return air, nodes


def test_announce_extra_tlv_round_trip_and_known_types_refused():
    a = Announce("n", b"\1" * 32, b"\2" * 32, capabilities=5, extra=((PEER_RECORD_HASH, b"\3" * 32),))
    b = Announce.decode(a.encode())
    assert b == a and b.tlv(PEER_RECORD_HASH) == b"\3" * 32 and b.tlv(0x71) is None
    # BitChat's TLVs first, ours after: a decoder that skips unknown types reads the same fields
    plain = Announce("n", b"\1" * 32, b"\2" * 32, capabilities=5).encode()
    assert a.encode().startswith(plain) and a.encode()[len(plain):] == bytes([PEER_RECORD_HASH, 32]) + b"\3" * 32
    with pytest.raises(ValueError):
        Announce("n", b"\1" * 32, b"\2" * 32, extra=((2, b"x"),)).encode()


def test_c_learns_a_over_the_mesh_without_config_and_sends_to_it(tmp_path):
    async def go():
        air, (a, b, c) = _chain(tmp_path)
        for n in (a, b, c):
            await n.start()
        assert len(c.peers) == 0 and a.me not in c.peers
        assert await wait_for(lambda: a.me in c.peers and c.me in a.peers, 30)
        assert a.me in b.peers and c.me in b.peers
        h = await c.send(a.me, b"found you over the air", topic="hi")
        await h.acked(30)
        assert h.transports == ["ble"]
        agen = a.messages()
        m = await agen.__anext__()
        await agen.aclose()
        assert (m.sender, m.body) == (c.me, b"found you over the air")
        lc = c.links[-1].stats()
        assert lc["records_imported"] >= 2 and lc["records_refused"] == 0
        assert a.links[-1].stats()["records_served"] >= 1
        for n in (a, b, c):
            await n.stop()
    run(go())


async def _bare(air, name: str, seed: int, rec_for=None) -> MeshLink:
    router = MeshRouter(MeshIdentity.generate(name, random.Random(seed)), rng=random.Random(seed))
    link = MeshLink(router, air.radio(router.me), PeerBook(), announce_s=0.2)
    await link.open()
    return link


def test_forged_and_replayed_records_refused_and_counted(tmp_path):
    async def go():
        air = LocalAir()
        c = make_node(tmp_path, "c", htx=False, air=air, seed=3)
        forger = await _bare(air, "forger", 11)
        replayer = await _bare(air, "replay", 12)
        air.connect(c.links[-1].router.me, forger.router.me)
        air.connect(c.links[-1].router.me, replayer.router.me)
        # a record whose signature does not verify
        fid = Identity.generate()
        good = PeerRecord.create(fid, 1, ble_id=forger.router.me)
        forged = good.raw[:-1] + bytes([good.raw[-1] ^ 1])
        forger.set_record(forged)
        # an older record of X than the one c holds (seq 5 after seq 10)
        xid = Identity.generate()
        new = PeerRecord.create(xid, 10, ble_id=replayer.router.me)
        old = PeerRecord.create(xid, 5, ble_id=replayer.router.me)
        replayer.set_record(old)
        await c.start()
        c.add_peer(new.raw)
        lc = c.links[-1]
        assert await wait_for(lambda: lc.stats()["records_refused"] >= 2, 30)
        assert lc.stats()["records_refused_AuthenticationError"] == 1
        assert lc.stats()["records_refused_ReplayError"] == 1 and c.peers.rejected["ReplayError"] == 1
        assert fid.peer_id_text not in c.peers and c.peers.get(xid.peer_id_text).seq == 10
        refused = lc.stats()["records_refused"]
        await asyncio.sleep(1.5)                  # refused hashes are not fetched again
        assert lc.stats()["records_refused"] == refused
        await c.stop()
        await forger.close()
        await replayer.close()
    run(go())


def test_record_naming_another_ble_peer_refused_and_learned_records_expire(tmp_path):
    async def go():
        air = LocalAir()
        c = make_node(tmp_path, "c", htx=False, air=air, seed=3)
        c.links[-1].expiry_s = 1.0
        liar = await _bare(air, "liar", 21)
        honest = await _bare(air, "honest", 22)
        air.connect(c.links[-1].router.me, liar.router.me)
        air.connect(c.links[-1].router.me, honest.router.me)
        lid, hid = Identity.generate(), Identity.generate()
        liar.set_record(PeerRecord.create(lid, 1, ble_id=honest.router.me))   # someone else's BLE id
        honest.set_record(PeerRecord.create(hid, 1, ble_id=honest.router.me))
        await c.start()
        lc = c.links[-1]
        assert await wait_for(lambda: hid.peer_id_text in c.peers and lc.stats()["records_refused"] >= 1, 30)
        assert lid.peer_id_text not in c.peers
        await honest.close()                       # its announces stop: the record expires
        assert await wait_for(lambda: hid.peer_id_text not in c.peers, 30)
        assert lc.stats()["records_expired"] == 1
        await c.stop()
        await liar.close()
    run(go())


def test_our_announce_carries_the_record_hash(tmp_path):
    async def go():
        air, (a, b) = _chain(tmp_path, "ab")
        await a.start()
        await b.start()
        rec = a.record()
        assert a.links[-1].router.extra_tlvs[PEER_RECORD_HASH] == hashlib.sha256(rec.raw).digest()
        assert await wait_for(lambda: a.links[-1].router.me in b.links[-1].service.peers, 10)
        ann = b.links[-1].service.peers[a.links[-1].router.me].announce
        assert ann.tlv(PEER_RECORD_HASH) == hashlib.sha256(rec.raw).digest()
        await a.stop()
        await b.stop()
    run(go())


def test_standalone_processes_discover_over_the_air_server(tmp_path):
    """``betanet node run`` processes on the cross-process air (a - b - c in a line, no record
    files): c learns a's record from the announces relayed by b and sends to it."""
    import subprocess
    import sys
    import time
    from node_procs import Proc, make, peer_id
    base = str(tmp_path)
    sock = os.path.join(base, "air.sock")
    air = subprocess.Popen([sys.executable, "-m", "betanet.mesh.air", "--socket", sock, "--range", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert "air listening" in air.stdout.readline()
    cfgs = [make(base, n, [], {"transport": {"htx_listen": "", "mesh": True, "mesh_air": sock,
                                             "mesh_x": 25.0 * i}, "application": {"name": n}})
            for i, n in enumerate("abc")]
    procs = []
    try:
        procs = [Proc(c) for c in cfgs]
        a, c = procs[0], procs[-1]
        A, C = peer_id(cfgs[0]), peer_id(cfgs[-1])
        end = time.monotonic() + 45
        while time.monotonic() < end:
            if A in c.control({"cmd": "status"})["links"][0]["reaches"] and \
                    C in {p["peer"] for p in a.control({"cmd": "peers"})["peers"]}:
                break
            time.sleep(0.2)
        r = c.send(A, b"learned from announces", wait=True, timeout=60)
        assert r["acked"] and r["transports"] == ["ble"]
        a.wait_event("received", 20)
        assert bytes.fromhex(a.received()[0]["data"]) == b"learned from announces"
        st = c.control({"cmd": "status"})["links"][0]["stats"]
        assert st["records_imported"] >= 2 and st["records_refused"] == 0
    finally:
        for p in procs:
            p.stop()
        air.terminate()
        air.wait(10)


def test_record_requests_answered_once_per_asker_per_period(tmp_path):
    async def go():
        air = LocalAir()
        owner = await _bare(air, "owner", 31)
        asker = await _bare(air, "asker", 32)
        air.connect(owner.router.me, asker.router.me)
        rec = PeerRecord.create(Identity.generate(), 1, ble_id=owner.router.me)
        owner.set_record(rec)
        req = bytes([0x70]) + hashlib.sha256(rec.raw).digest()
        for _ in range(20):                       # a flood of requests from one peer
            owner._on_record_message(asker.router.me, req)
        owner._on_record_message(asker.router.me, bytes([0x70]) + b"\0" * 32)
        assert owner.stats()["records_served"] == 1
        await owner.close()
        await asker.close()
    run(go())
