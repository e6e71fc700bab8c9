"""FL rounds between Node instances (``betanet.fl.node_channel``): every FL frame is a node
message (sealed, signed, exactly-once) carried here by real localhost HTX links. A full
SecAgg+ round among a coordinator node and 7 participant nodes completes with an exact sum
when 2 participant nodes are stopped mid-round, and aborts when 3 are; the channel refuses
nodes outside the directory and ends on BYE."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from betanet.errors import StateError
from betanet.fl import dp
from betanet.fl import messages as m
from betanet.fl.node_channel import (NodeCoordinatorTransport, NodeParticipantTransport,
                                     fl_identity, peer_of)
from betanet.fl.orchestrator import CoordinatorService, ParticipantClient, RoundPlan

from fl_helpers import StageTransport
from node_helpers import LocalAir, introduce, make_node, wait_for

N, DIM = 7, 50


def update_of(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(0, 0.1, DIM)


def expected_sum(ids) -> np.ndarray:
    return sum(dp.clip_l2(update_of(i), 1.0) for i in ids)


def run(coro, timeout=150):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def stop_node(node):
    """The participant's node is stopped -- after everything it sent earlier was
    acknowledged, so it drops exactly at that stage."""
    async def action(channel) -> None:
        await channel.drain(30)
        await node.stop()
        raise ConnectionError("node stopped")
    return action


class NodeFederation:
    """A coordinator node and N participant nodes, each on its own HTX listener. The
    participants know the coordinator's record; it learns theirs from their HELLOs."""

    def __init__(self, tmp_path, stage_timeout: float = 4.0, air: LocalAir | None = None) -> None:
        mesh = dict(htx=air is None, air=air)
        self.coord = make_node(tmp_path, "coord", **mesh)
        self.nodes = {i: make_node(tmp_path, f"p{i}", seed=i, **mesh) for i in range(1, N + 1)}
        self.directory = {i: n.identity.signing_public for i, n in self.nodes.items()}
        self.plan = RoundPlan(sample_rate=1.0, noise_multiplier=1e-4, clip=1.0, dropout=0.3,
                              stage_timeout=stage_timeout)
        self.service = CoordinatorService(
            NodeCoordinatorTransport(self.coord, self.directory), self.plan, np.zeros(DIM),
            directory=self.directory, budget=None, identity=fl_identity(self.coord.identity),
            rng=np.random.default_rng(7))
        self.clients: dict[int, ParticipantClient] = {}
        self.tasks: list[asyncio.Task] = []

    async def start(self, stop: dict[int, int] | None = None) -> None:
        for n in [self.coord, *self.nodes.values()]:
            await n.start()
        rec = self.coord.record()
        for n in self.nodes.values():
            n.add_peer(rec.raw)
        await self.service.start()
        for i, node in self.nodes.items():
            t = NodeParticipantTransport(node, self.coord.me)
            if stop and i in stop:
                t = StageTransport(t, stop[i], stop_node(node))
            c = self.clients[i] = ParticipantClient(
                i, t, lambda model, rid, i=i: (update_of(i), 10 + i),
                identity=fl_identity(node.identity), directory=self.directory,
                stage_timeout=self.plan.stage_timeout * 4, rng=np.random.default_rng(100 + i))
            self.tasks.append(asyncio.create_task(c.run()))
        await self.service.wait_connected(N, 60)

    async def stop(self) -> None:
        await self.service.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for n in [self.coord, *self.nodes.values()]:
            if n.running:
                await n.stop()


def test_secagg_round_between_nodes_completes_when_two_nodes_stop_mid_round(tmp_path):
    """2 of 7 participant nodes stop instead of sending their masked input: the coordinator
    reconstructs their masks from the others' shares and the sum of the 5 is exact."""
    async def main():
        f = NodeFederation(tmp_path)
        await f.start(stop={2: m.Masked.TYPE, 5: m.Masked.TYPE})
        try:
            r = await f.service.run_round()
            assert r.ok, r.error
            want = [1, 3, 4, 6, 7]
            assert r.sampled == list(range(1, N + 1)) and r.survivors == want
            np.testing.assert_allclose(r.aggregate, expected_sum(want), atol=0.01)
            # receipts signed by the participants' node keys, checked against the directory
            assert sorted(x.participant_pk for x in r.receipts) == sorted(f.directory[i] for i in want)
            r.receipt.verify(r.receipts)
            assert not f.nodes[2].running and not f.nodes[5].running
            assert await wait_for(lambda: all(r.round_id in f.clients[i].outcomes for i in want), 20)
            assert all(f.clients[i].outcomes[r.round_id].ok for i in want)
        finally:
            await f.stop()
    run(main())


def test_secagg_round_between_nodes_aborts_when_three_nodes_stop(tmp_path):
    async def main():
        f = NodeFederation(tmp_path)
        await f.start(stop={1: m.Masked.TYPE, 4: m.Masked.TYPE, 6: m.Masked.TYPE})
        try:
            r = await f.service.run_round()
            assert not r.ok and r.aggregate is None and r.receipt is None
            assert "< 5" in r.error, r.error
            living = (2, 3, 5, 7)
            assert await wait_for(lambda: all(r.round_id in f.clients[i].outcomes for i in living), 20)
            assert not any(f.clients[i].outcomes[r.round_id].ok for i in living)
            assert f.service.model.tolist() == [0.0] * DIM
        finally:
            await f.stop()
    run(main())


def test_secagg_round_between_nodes_on_the_mesh_only(tmp_path):
    """No HTX at all: every node only on the (in-process) BLE air, each participant a
    neighbour of the coordinator. The same round code completes with the exact sum."""
    async def main():
        air = LocalAir()
        f = NodeFederation(tmp_path, stage_timeout=8.0, air=air)
        hub = f.coord.links[-1].router.me
        for n in f.nodes.values():
            air.connect(hub, n.links[-1].router.me)
        assert all(link.transport == "ble" for n in [f.coord, *f.nodes.values()] for link in n.links)
        await f.start()
        try:
            r = await f.service.run_round()
            assert r.ok, r.error
            assert r.survivors == list(range(1, N + 1))
            np.testing.assert_allclose(r.aggregate, expected_sum(r.survivors), atol=0.01)
            r.receipt.verify(r.receipts)
            assert air.frames > 0 and f.coord.counters.get("messages_received", 0) >= 5 * N
        finally:
            await f.stop()
    run(main())


def test_channel_maps_peer_ids_refuses_strangers_and_ends_on_bye(tmp_path):
    async def main():
        coord, part, stranger = (make_node(tmp_path, n) for n in ("c", "p", "s"))
        for n in (coord, part, stranger):
            await n.start()
        try:
            introduce([coord, part, stranger])
            pk = part.identity.signing_public
            assert peer_of(pk) == part.me
            assert fl_identity(part.identity).public_key().public_bytes(
                Encoding.Raw, PublicFormat.Raw) == pk
            server = NodeCoordinatorTransport(coord, {42: pk})
            got: asyncio.Queue = asyncio.Queue()
            await server.start(got.put)
            with pytest.raises(StateError):
                await NodeParticipantTransport(make_node(tmp_path, "x"), coord.me).connect()

            # a node outside the directory is not a participant, whatever it sends
            rogue = await NodeParticipantTransport(stranger, coord.me).connect()
            await rogue.send(b"let me in")
            await rogue.drain(20)
            assert await wait_for(lambda: server.refused == 2, 10)
            assert got.empty()

            ch = await NodeParticipantTransport(part, coord.me).connect()
            sch = await asyncio.wait_for(got.get(), 20)
            assert sch.peer == 42 and sch.dest == part.me
            for i in range(5):
                await ch.send(b"up %d" % i)
                await sch.send(b"down %d" % i)
            assert [await asyncio.wait_for(sch.recv(), 20) for _ in range(5)] == [b"up %d" % i for i in range(5)]
            assert [await asyncio.wait_for(ch.recv(), 20) for _ in range(5)] == [b"down %d" % i for i in range(5)]
            await ch.drain(20)

            await ch.close()
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(sch.recv(), 20)
            with pytest.raises(ConnectionError):
                await ch.send(b"after close")
            await server.close()
        finally:
            for n in (coord, part, stranger):
                await n.stop()
    run(main())


def test_fl_run_over_nodes(tmp_path):
    """``betanet fl run --transport node``'s path: a training round between 1 + 8 nodes."""
    pytest.importorskip("sklearn")
    from betanet.errors import InvalidArgumentError
    from betanet.fl import simulation

    with pytest.raises(InvalidArgumentError, match="transport"):
        simulation.RunConfig(transport="carrier pigeon")
    cfg = simulation.RunConfig(participants=8, rounds=1, sample_rate=1.0, epsilon=float("inf"),
                               dropout=0.0, transport="node", stage_timeout=10.0)
    records = asyncio.run(asyncio.wait_for(simulation.run(cfg, workdir=tmp_path), 150))
    assert len(records) == 1 and not records[0].error, records
    assert records[0].survivors == 8 and records[0].receipts == 8
