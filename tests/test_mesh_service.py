"""MeshService in real time over the air: in one process (local medium and AirServer on a
Unix socket) and across real processes; links cut, loss applied, server gone."""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile

import pytest

from betanet.errors import InvalidArgumentError, NotFoundError, StateError
from betanet.mesh.air import AirControl, AirRadio, AirServer, local_medium
from betanet.mesh.packet import MESSAGE, Packet
from betanet.mesh.radio import MTU_BYTES
from betanet.mesh.router import Delivered, Identity, MeshRouter, PeerAnnounced, PrivateMessage
from betanet.mesh.service import MeshService, NeighbourChanged

HERE = os.path.dirname(__file__)
WAIT = 10.0            # generous: the machine is shared; nothing here asserts on timing


def _ids(n, seed=7):
    rng = random.Random(seed)
    return [Identity.generate(f"n{i}", rng) for i in range(n)]


def _delivered(payload):
    return lambda ev: isinstance(ev, Delivered) and ev.packet.payload == payload


async def _knows(svc, other, timeout=WAIT):
    """Wait until `svc` has `other`'s announce (it may have arrived already)."""
    events = svc.events()
    while other.peer_id not in svc.peers:
        other.announce()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(anext(events), 1.0)
        timeout -= 1.0
        assert timeout > 0, "announce never arrived"


async def _nothing_delivered(svc, payload, quiet_s=1.0):
    with pytest.raises(asyncio.TimeoutError):
        await svc.wait_for(_delivered(payload), quiet_s)


async def _local_line(n, spacing=20.0, **medium_kw):
    """n services on a line, each in range (30 m) of its direct neighbours only."""
    medium = local_medium(rng=random.Random(3), **medium_kw)
    svcs = []
    for i, ident in enumerate(_ids(n)):
        radio = medium.join(ident.peer_id, i * spacing, 0.0)
        svc = MeshService(MeshRouter(ident, rng=random.Random(i)), radio)
        await svc.start()
        svcs.append(svc)
    return medium, svcs


def test_three_services_multi_hop_broadcast_and_private_message():
    async def run():
        medium, (a, b, c) = await _local_line(3)
        assert c.peer_id not in a.neighbours() and b.peer_id in a.neighbours()
        # c learns a's signing key from a's relayed announce, then a's broadcast verifies
        await _knows(c, a)
        a.broadcast(b"over two hops")
        ev = await c.wait_for(_delivered(b"over two hops"), WAIT)
        assert ev.verified and ev.link == b.peer_id and ev.packet.ttl == 6
        a.send_private(c.peer_id, "for c only")
        pm = await c.wait_for(lambda ev: isinstance(ev, PrivateMessage), WAIT)
        assert (pm.peer_id, pm.content) == (a.peer_id, "for c only")
        assert b.metrics().relayed >= 1 and a.metrics().frames_sent >= 2
        assert a.energy.tx > 0 and c.energy.rx > 0
        stats = b.link_stats(a.peer_id)
        assert stats.up and stats.quality == 1.0 and stats.frames_received >= 1
        for s in (a, b, c):
            await s.stop()
    asyncio.run(run())


def test_large_message_is_fragmented_over_the_air():
    async def run():
        medium, (a, b) = await _local_line(2)
        body = random.Random(1).randbytes(2000)
        a.send_to(b.peer_id, body)
        ev = await b.wait_for(_delivered(body), WAIT)
        assert ev.packet.recipient == b.peer_id
        assert a.energy.frames_sent >= 5       # 2 000 bytes do not fit one 512-byte write
        for s in (a, b):
            await s.stop()
    asyncio.run(run())


def test_blocked_link_fails_delivery_and_heals():
    async def run():
        medium, (a, b) = await _local_line(2)
        downs = b.events()
        medium.set_blocked(a.peer_id, b.peer_id, True)
        ev = await anext(downs)
        assert ev == NeighbourChanged(a.peer_id, False, 0.0)
        assert a.neighbours() == [] and b.peer_id not in a.router.links
        a.broadcast(b"while cut")
        await _nothing_delivered(b, b"while cut")
        # the partition heals: the stored broadcast reaches b
        waiter = asyncio.ensure_future(b.wait_for(_delivered(b"while cut"), WAIT))
        medium.set_blocked(a.peer_id, b.peer_id, False)
        await waiter
        for s in (a, b):
            await s.stop()
    asyncio.run(run())


def test_loss_is_applied_per_link():
    async def run():
        medium, (a, b) = await _local_line(2)
        got = []
        await asyncio.sleep(0.2)                 # let the start-up announces land
        b.radio.on_frame = lambda frame, src: len(frame) == 20 and got.append(frame)   # our writes
        medium.set_loss(1.0, a.peer_id, b.peer_id)
        assert a.link_quality(b.peer_id) == 0.0
        for i in range(50):
            a.radio.send(bytes([i]) * 20)
        await asyncio.sleep(0.2)
        assert got == []
        medium.set_loss(0.5, a.peer_id, b.peer_id)
        assert a.link_quality(b.peer_id) == 0.5
        assert a.router.links[b.peer_id] == 0.5          # the router learnt the new quality
        for i in range(400):
            a.radio.send(bytes([i % 256]) * 20)
        await asyncio.sleep(0.3)
        assert 120 < len(got) < 280
        for s in (a, b):
            await s.stop()
    asyncio.run(run())


def test_service_rejects_bad_use():
    async def run():
        medium = local_medium()
        x, y = _ids(2)
        radio = medium.join(x.peer_id, 0, 0)
        with pytest.raises(InvalidArgumentError):
            MeshService(MeshRouter(y), radio)
        svc = MeshService(MeshRouter(x), radio)
        with pytest.raises(StateError):
            svc.broadcast(b"not started")
        await svc.start()
        with pytest.raises(StateError):
            await svc.start()
        with pytest.raises(InvalidArgumentError):
            medium.join(x.peer_id, 1, 1)
        with pytest.raises(NotFoundError):
            medium.move(y.peer_id, 1, 1)
        with pytest.raises(InvalidArgumentError):
            medium.set_loss(1.5)
        events = svc.events()
        await svc.stop()
        assert [ev async for ev in events] == []          # iterators end when the service stops
        with pytest.raises(StateError):
            svc.broadcast(b"stopped")
    asyncio.run(run())


# ---- the air server on a Unix socket --------------------------------------------------------
def _sock(tmp):
    return os.path.join(tmp, "air.sock")


async def _air_node(path, ident, x, y=0.0, **kw):
    radio = await AirRadio.connect(path, ident.peer_id, x, y)
    svc = MeshService(MeshRouter(ident, rng=random.Random(x)), radio, **kw)
    await svc.start()
    return svc


def test_air_server_carries_a_mesh_and_cuts_links():
    async def run(tmp):
        path = _sock(tmp)
        async with AirServer(path, rng=random.Random(1)) as server:
            ia, ib, ic = _ids(3)
            a = await _air_node(path, ia, 0)
            b = await _air_node(path, ib, 20)
            c = await _air_node(path, ic, 40)
            await _knows(c, a)
            assert sorted(b.neighbours()) == sorted([ia.peer_id, ic.peer_id])
            a.broadcast(b"across the air")
            ev = await c.wait_for(_delivered(b"across the air"), WAIT)
            assert ev.verified and ev.link == ib.peer_id
            ctl = await AirControl.connect(path)
            e = await ctl.energy(ia.peer_id)
            assert e.tx > 0 and e.frames_sent >= 1
            assert (await a.radio.refresh_energy()).tx == pytest.approx(e.tx, rel=0.5)
            # cut b-c: c loses its only neighbour, and a's next broadcast does not reach it
            downs = c.events()
            await ctl.block(ib.peer_id, ic.peer_id)
            assert await anext(downs) == NeighbourChanged(ib.peer_id, False, 0.0)
            assert c.neighbours() == []
            a.broadcast(b"cut off")
            await b.wait_for(_delivered(b"cut off"), WAIT)
            await _nothing_delivered(c, b"cut off")
            await ctl.unblock(ib.peer_id, ic.peer_id)
            await c.wait_for(_delivered(b"cut off"), WAIT)     # healed: stored and re-sent
            # loss 1 on a-b: nothing crosses, and both ends learn the link's quality
            await ctl.set_loss(1.0, ia.peer_id, ib.peer_id)
            await asyncio.sleep(0.1)
            assert a.link_quality(ib.peer_id) == 0.0
            a.broadcast(b"lost")
            await _nothing_delivered(b, b"lost")
            # moving c out of range: b sees it go
            await ctl.move(ic.peer_id, 500, 0)
            assert ic.peer_id not in await ctl.neighbours(ib.peer_id)
            with pytest.raises(NotFoundError):
                await ctl.move(b"\x01" * 8, 0, 0)
            with pytest.raises(InvalidArgumentError):
                await ctl.set_loss(2.0)
            await ctl.close()
            for s in (a, b, c):
                await s.stop()
                await s.radio.close()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))


def test_server_gone_reports_neighbours_down():
    async def run(tmp):
        path = _sock(tmp)
        server = AirServer(path)
        await server.start()
        ia, ib = _ids(2)
        a = await _air_node(path, ia, 0)
        b = await _air_node(path, ib, 10)
        events = a.events()
        while b.peer_id not in a.neighbours():
            await anext(events)
        await server.stop()
        ev = await asyncio.wait_for(anext(events), WAIT)
        while not isinstance(ev, NeighbourChanged):
            ev = await asyncio.wait_for(anext(events), WAIT)
        assert ev == NeighbourChanged(ib.peer_id, False, 0.0)
        await asyncio.wait_for(a.radio.wait_closed(), WAIT)
        assert not a.radio.connected and a.neighbours() == []
        a.broadcast(b"into the void")                    # no crash: counted, kept for a heal
        assert a.counters["send_failed"] >= 1
        with pytest.raises(StateError):
            a.radio.send(b"x")
        for s in (a, b):
            await s.stop()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))


def test_air_refuses_bad_clients_and_keeps_serving():
    async def run(tmp):
        path = _sock(tmp)
        async with AirServer(path):
            ia, ib = _ids(2)
            ra = await AirRadio.connect(path, ia.peer_id, 0, 0)
            with pytest.raises(StateError):
                await AirRadio.connect(path, ia.peer_id, 5, 0)        # peer id taken
            with pytest.raises(InvalidArgumentError):
                ra.send(b"\0" * (MTU_BYTES + 1))
            with pytest.raises(InvalidArgumentError):
                AirRadio(b"short")
            # garbage: a header announcing a huge body, and an unknown message type
            for junk in (b"\x02\xff\xff\xff\xff", b"\x7f\x00\x00\x00\x00", b"\x03\x00\x00\x00\x02[]"):
                r, w = await asyncio.open_unix_connection(path)
                w.write(junk)
                assert await asyncio.wait_for(r.read(), WAIT) == b""      # dropped
                w.close()
            rb = await AirRadio.connect(path, ib.peer_id, 5, 0)
            got = asyncio.get_running_loop().create_future()
            rb.on_frame = lambda frame, src: got.done() or got.set_result((frame, src))
            frame = Packet(type=MESSAGE, sender=ia.peer_id, payload=b"still serving", timestamp=1).encode()
            ra.send(frame)
            assert await asyncio.wait_for(got, WAIT) == (frame, ia.peer_id)
            await ra.close()
            await rb.close()
        with pytest.raises(StateError):
            await AirRadio.connect(path, ib.peer_id)                   # no server
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))


def test_two_real_processes_over_the_air():
    async def run(tmp):
        path = _sock(tmp)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        air = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "betanet.mesh.air", "--socket", path, "--seed", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)
        echo = None
        try:
            line = await asyncio.wait_for(air.stdout.readline(), 30)
            assert b"listening" in line
            echo = await asyncio.create_subprocess_exec(
                sys.executable, os.path.join(HERE, "mesh_air_node.py"), path, "10", "0",
                stdout=asyncio.subprocess.PIPE, env=env)
            echo_id = bytes.fromhex((await asyncio.wait_for(echo.stdout.readline(), 30)).decode().strip())
            (me,) = _ids(1, seed=99)
            svc = await _air_node(path, me, 0)
            await svc.wait_for(lambda ev: isinstance(ev, PeerAnnounced) and ev.peer_id == echo_id, 30)
            svc.broadcast(b"ping:42")
            ev = await svc.wait_for(_delivered(b"pong:42"), 30)
            assert ev.verified and ev.packet.sender == echo_id
            svc.send_private(echo_id, "hello")
            pm = await svc.wait_for(lambda ev: isinstance(ev, PrivateMessage), 30)
            assert (pm.peer_id, pm.content) == (echo_id, "re:hello")
            # the air process dies: the radio sees its neighbour go down
            events = svc.events()
            air.terminate()
            await air.wait()
            ev = await asyncio.wait_for(anext(events), WAIT)
            while not isinstance(ev, NeighbourChanged):
                ev = await asyncio.wait_for(anext(events), WAIT)
            assert ev == NeighbourChanged(echo_id, False, 0.0)
            await svc.stop()
        finally:
            for p in (echo, air):
                if p is not None and p.returncode is None:
                    p.kill()
                    await p.wait()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))
