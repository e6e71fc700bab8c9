"""GATT framing (betanet.mesh.gatt): ATT_MTU negotiation, frames cut again for small-MTU
links as BitChat iOS does, joined per link, and the air radio using it end to end."""
from __future__ import annotations

import asyncio
import os
import random
import tempfile

import pytest

from betanet.errors import InvalidArgumentError
from betanet.mesh.air import AirRadio, AirServer
from betanet.mesh.fragment import split
from betanet.mesh.gatt import (MIN_WRITE_LIMIT, WriteAssembler, chunk_for, negotiate_mtu, plan_writes,
                               write_limit)
from betanet.mesh.packet import FRAGMENT, MESSAGE, Packet
from betanet.mesh.router import Delivered, Identity, MeshRouter
from betanet.mesh.service import MeshService


def _pair(seed=1):
    rng = random.Random(seed)
    a, b = (MeshRouter(Identity.generate(n, rng), rng=random.Random(i)) for i, n in enumerate("ab"))
    a.link_up(b.me)
    b.link_up(a.me)
    return a, b, rng


def test_mtu_negotiation_and_write_limit():
    assert negotiate_mtu(517, 185) == 185 and negotiate_mtu(23, 517) == 23
    assert write_limit(23) == 20 and write_limit(185) == 182 and write_limit(517) == 512
    assert write_limit(1000) == 512                       # an attribute value is at most 512
    assert chunk_for(512) == 469                          # BitChat's default slice
    assert chunk_for(100) == 64
    for bad in (22, 0, -1, "517", None):
        with pytest.raises(InvalidArgumentError):
            negotiate_mtu(bad, 517)
        with pytest.raises(InvalidArgumentError):
            write_limit(bad)


@pytest.mark.parametrize("att_mtu", [110, 185, 247, 517])
def test_frames_cut_for_a_small_link_are_rebuilt_by_the_router(att_mtu):
    a, b, rng = _pair()
    limit = write_limit(att_mtu)
    broadcast, directed = rng.randbytes(3000), rng.randbytes(700)
    a.broadcast(broadcast, 0)
    a.send_to(b.me, directed, 0)
    a.send_to(b.me, b"routed", 0, route=(rng.randbytes(8), rng.randbytes(8), rng.randbytes(8)))
    asm, got, writes = WriteAssembler(), [], 0
    for frame in a.frames_to_send():
        for w in plan_writes(frame, limit):
            assert len(w) <= limit
            writes += 1
            for f in asm.feed(w):
                got += [e.packet.payload for e in b.receive(f, a.me, 1) if isinstance(e, Delivered)]
    assert sorted(got) == sorted([broadcast, directed, b"routed"])
    assert asm.dropped_bytes == 0 and asm.pending == 0
    if att_mtu < 517:
        assert writes > 8                              # really cut again


def test_plan_writes_keeps_small_frames_and_refuses_tiny_links():
    a, b, rng = _pair()
    a.broadcast(b"short", 0)
    (frame,) = a.frames_to_send()
    assert len(frame) == 256                            # padded to BitChat's first block
    assert plan_writes(frame, 256) == [frame] and plan_writes(frame, 512) == [frame]
    assert len(plan_writes(frame, 182)) == 2            # padding counts: it is cut, as in BitChat
    unpadded = Packet(type=MESSAGE, sender=a.me, payload=b"x", timestamp=1).encode(pad=False)
    assert plan_writes(unpadded, MIN_WRITE_LIMIT) == [unpadded]
    with pytest.raises(InvalidArgumentError):
        plan_writes(unpadded, MIN_WRITE_LIMIT - 1)      # ATT_MTU below 110 cannot carry BitChat


def test_write_assembler_joins_split_frames_and_resyncs():
    a, b, rng = _pair()
    a.broadcast(rng.randbytes(150), 0)
    a.broadcast(rng.randbytes(150), 0)
    f1, f2 = a.frames_to_send()
    asm = WriteAssembler(cap=1024)
    assert asm.feed(f1[:100]) == [] and asm.feed(f1[100:200]) == [] and asm.feed(f1[200:]) == [f1]
    # a lost middle piece: the next whole frame still comes out, the stale bytes are counted
    assert asm.feed(f2[:100]) == []
    assert asm.feed(f1) == [f1] and asm.dropped_bytes == 100
    # junk never grows past the cap
    for _ in range(50):
        assert asm.feed(b"\x07" * 100) == []
        assert asm.pending <= 1024 + 100
    assert asm.dropped_bytes > 1000 and asm.feed(f2) == [f2]


def test_router_refuses_fragments_nested_too_deep():
    a, b, rng = _pair()
    p = Packet(type=MESSAGE, sender=a.me, payload=rng.randbytes(600), timestamp=5)
    layer = [p]
    for _ in range(3):                                  # three levels of fragments
        layer = [Packet.decode(f.encode(pad=False)) for q in layer for f in split(q, chunk=300)]
    events = []
    for q in layer:
        assert q.type == FRAGMENT
        events += b.receive(q.encode(pad=False), a.me, 1)
    assert not any(isinstance(e, Delivered) for e in events)
    assert b.counters.get("rejected_fragment_nesting", 0) >= 1


def test_air_radios_with_a_small_mtu_carry_a_large_message():
    async def run(tmp):
        path = os.path.join(tmp, "air.sock")
        async with AirServer(path, rng=random.Random(2)):
            rng = random.Random(4)
            ia, ib = Identity.generate("a", rng), Identity.generate("b", rng)
            ra = await AirRadio.connect(path, ia.peer_id, 0, 0, att_mtu=517)
            rb = await AirRadio.connect(path, ib.peer_id, 10, 0, att_mtu=185)
            a, b = MeshService(MeshRouter(ia), ra), MeshService(MeshRouter(ib), rb)
            await a.start()
            await b.start()
            while ra.link_mtu(ib.peer_id) is None:
                await asyncio.sleep(0.01)
            assert ra.link_mtu(ib.peer_id) == 185 == rb.link_mtu(ia.peer_id)
            sizes = []
            write = ra._conn.write
            ra._conn.write = lambda kind, body: (sizes.append(len(body)), write(kind, body))
            body = rng.randbytes(2500)
            waiter = b.wait_for(lambda ev: isinstance(ev, Delivered) and ev.packet.payload == body, 10)
            a.send_to(ib.peer_id, body)
            await waiter
            assert sizes and max(sizes) <= 182 and len(sizes) > 6
            with pytest.raises(InvalidArgumentError):
                await AirRadio.connect(path, b"\x05" * 8, att_mtu=100)      # too small for BitChat
            for s in (a, b):
                await s.stop()
                await s.radio.close()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))


def test_directed_parity_fragments_fit_the_mtu():
    # parity fragments carry a 17-byte header and a directed packet an 8-byte recipient:
    # with 469-byte slices they were 516 bytes, over BitChat's 512 (the radio refused them)
    rng = random.Random(8)
    a = MeshRouter(Identity.generate("a", rng), rng=random.Random(1), fec_parity=2)
    a.send_to(b"\x02" * 8, rng.randbytes(5000), 0)
    a.send_to(b"\x02" * 8, rng.randbytes(5000), 0, route=(b"\x03" * 8, b"\x04" * 8))
    frames = a.frames_to_send()
    assert len(frames) > 20 and max(map(len, frames)) <= 512
