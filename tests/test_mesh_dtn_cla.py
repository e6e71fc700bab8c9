"""Bundles over the BLE mesh (betanet.mesh.dtn_cla.MeshLink): multi-hop and fragmented on
the in-process air, v2 packets for bundles over 64 KiB on the socket air, refusals."""
from __future__ import annotations

import asyncio
import os
import random
import tempfile

import pytest

from betanet.dtn.cla import ConvergenceLayer
from betanet.errors import InvalidArgumentError, LimitExceededError, StateError
from betanet.mesh.air import AirRadio, AirServer, local_medium
from betanet.mesh.announce import CAP_BUNDLE
from betanet.mesh.dtn_cla import BUNDLE, MAX_BUNDLE, MeshLink
from betanet.mesh.router import Identity, MeshRouter
from betanet.mesh.service import MeshService

WAIT = 20.0


async def _line(n, medium, **router_kw):
    rng = random.Random(11)
    svcs = []
    for i in range(n):
        ident = Identity.generate(f"d{i}", rng)
        svc = MeshService(MeshRouter(ident, rng=random.Random(i), **router_kw), medium.join(ident.peer_id, i * 20.0, 0))
        await svc.start()
        svcs.append(svc)
    return svcs


async def _until(cond, timeout=WAIT):
    while not cond():
        await asyncio.sleep(0.02)
        timeout -= 0.02
        assert timeout > 0


async def _knows(svc, other):
    while other.peer_id not in svc.peers:
        other.announce()
        await asyncio.sleep(0.2)


def test_bundles_cross_two_hops_fragmented_both_ways():
    async def run():
        a, b, c = await _line(3, local_medium(rng=random.Random(5)), fec_parity=2)
        await asyncio.wait_for(_knows(c, a), WAIT)
        await asyncio.wait_for(_knows(a, c), WAIT)
        ac, ca = MeshLink(a, c.peer_id), MeshLink(c, a.peer_id)
        link: ConvergenceLayer = ac
        assert not link.acknowledged
        async with ac, ca:
            assert ac.up and ca.up
            bundle = random.Random(1).randbytes(6000)           # 13 fragments + 2 parity
            await ac.send(bundle)
            assert await asyncio.wait_for(anext(ca.received()), WAIT) == bundle
            await ca.send(b"reply bundle")
            assert await asyncio.wait_for(anext(ac.received()), WAIT) == b"reply bundle"
            m = ac.metrics()
            assert (m.bundles_sent, m.bundles_received, m.bytes_sent) == (1, 1, 6000)
            assert ca.metrics().bytes_received == 6000
            assert b.router.counters["relayed"] >= 13               # carried by the middle node
            assert a.router.extra_caps & CAP_BUNDLE
            with pytest.raises(LimitExceededError):
                await ac.send(b"\0" * (MAX_BUNDLE + 1))
            assert ac.metrics().failures == 1
        assert not ac.up
        for s in (a, b, c):
            await s.stop()
    asyncio.run(run())


def test_unverified_or_foreign_bundles_are_not_delivered():
    async def run():
        a, b, c = await _line(3, local_medium(rng=random.Random(6)))
        await asyncio.sleep(0.5)                      # start-up announces settle, then c forgets a
        c.router.peers.clear()
        ca = MeshLink(c, a.peer_id)
        cb = MeshLink(c, b.peer_id)
        await ca.open_contact()
        await cb.open_contact()
        assert not ca.up
        a.send_to(c.peer_id, b"unverifiable", ptype=BUNDLE)
        await _until(lambda: ca.dropped == 1)
        # a bundle from a reaches a's link only, never b's
        await asyncio.wait_for(_knows(c, a), WAIT)
        a.send_to(c.peer_id, b"for the a link", ptype=BUNDLE)
        assert await asyncio.wait_for(anext(ca.received()), WAIT) == b"for the a link"
        assert cb.metrics().bundles_received == 0
        await ca.close_contact()
        await cb.close_contact()
        for s in (a, b, c):
            await s.stop()
        with pytest.raises(StateError):
            await MeshLink(a, c.peer_id).open_contact()
        with pytest.raises(InvalidArgumentError):
            MeshLink(a, b"short")
        with pytest.raises(InvalidArgumentError):
            MeshLink(a, c.peer_id, max_bundle=MAX_BUNDLE + 1)
    asyncio.run(run())


def test_a_bundle_over_64_kib_crosses_the_socket_air():
    async def run(tmp):
        path = os.path.join(tmp, "air.sock")
        # a fast medium keeps the test short; the BLE timing model is exercised elsewhere
        async with AirServer(path, rng=random.Random(3), throughput_bps=4_000_000):
            rng = random.Random(12)
            ia, ib = Identity.generate("x", rng), Identity.generate("y", rng)
            a = MeshService(MeshRouter(ia), await AirRadio.connect(path, ia.peer_id, 0, 0))
            b = MeshService(MeshRouter(ib), await AirRadio.connect(path, ib.peer_id, 10, 0))
            await a.start()
            await b.start()
            await asyncio.wait_for(_knows(b, a), WAIT)
            ab, ba = MeshLink(a, ib.peer_id), MeshLink(b, ia.peer_id)
            async with ab, ba:
                bundle = rng.randbytes(70_000)                   # > 65 535: a v2 packet
                await ab.send(bundle)
                assert await asyncio.wait_for(anext(ba.received()), WAIT) == bundle
            for s in (a, b):
                await s.stop()
                await s.radio.close()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))
