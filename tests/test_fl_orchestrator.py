"""The FL orchestrator over real HTX connections (TLS 1.3 + Noise XK on loopback sockets):
rounds that complete with dropouts at or above the threshold, abort cleanly below it,
sampling as the accountant assumes, the budget refusing before a round, receipts."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet import htx
from betanet.fl import dp
from betanet.fl import messages as m
from betanet.fl.budget import BudgetExceededError, PrivacyBudgetManager
from betanet.fl.orchestrator import CoordinatorService, ParticipantClient, RoundPlan
from betanet.fl.transport import HtxCoordinatorTransport, HtxParticipantTransport
from betanet.htx.tls import write_self_signed
from fl_helpers import StageTransport

N, DIM = 10, 300


def update_of(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(0, 0.1, DIM)


def trainer_for(i: int):
    return lambda model, round_id: (update_of(i), 10 + i)


async def drop_connection(channel) -> None:
    """What a phone losing the network mid-round looks like: the connection just closes."""
    await channel.close()
    raise ConnectionError("died")


class Federation:
    def __init__(self, tmp_path, plan: RoundPlan, total_epsilon: float = 1e300, seed: int = 7):
        self.tmp = tmp_path
        self.plan = plan
        self.cert, self.key = write_self_signed(tmp_path / "tls")
        self.server_key = htx.generate_private_key()
        self.htx_keys = {i: htx.generate_private_key() for i in range(1, N + 1)}
        self.ids = {i: Ed25519PrivateKey.generate() for i in range(1, N + 1)}
        self.directory = {i: k.public_key().public_bytes_raw() for i, k in self.ids.items()}
        self.budget = PrivacyBudgetManager(tmp_path / "budget.sqlite", total_epsilon, 1e-5)
        self.coord_identity = Ed25519PrivateKey.generate()
        transport = HtxCoordinatorTransport(
            "127.0.0.1", 0, self.server_key, {htx.public_key(k): i for i, k in self.htx_keys.items()},
            certfile=self.cert, keyfile=self.key)
        self.service = CoordinatorService(transport, plan, np.zeros(DIM), directory=self.directory,
                                          budget=self.budget, identity=self.coord_identity,
                                          rng=np.random.default_rng(seed))
        self.clients: dict[int, ParticipantClient] = {}
        self.tasks: list[asyncio.Task] = []

    async def start(self, die: dict[int, int] | None = None) -> None:
        await self.service.start()
        port = self.service.transport.port
        for i in range(1, N + 1):
            t = HtxParticipantTransport("127.0.0.1", port, htx.public_key(self.server_key),
                                        self.htx_keys[i], cafile=self.cert)
            if die and i in die:
                t = StageTransport(t, die[i], drop_connection)
            c = self.clients[i] = ParticipantClient(i, t, trainer_for(i), identity=self.ids[i],
                                                    directory=self.directory,
                                                    stage_timeout=self.plan.stage_timeout * 4,
                                                    rng=np.random.default_rng(100 + i))
            self.tasks.append(asyncio.create_task(c.run()))
        await self.service.wait_connected(N, 20)

    async def stop(self) -> None:
        await self.service.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.budget.close()


def plan(**kw) -> RoundPlan:
    base = dict(sample_rate=1.0, noise_multiplier=1e-4, clip=1.0, dropout=0.3, stage_timeout=1.0)
    return RoundPlan(**{**base, **kw})


def expected_sum(ids) -> np.ndarray:
    return sum(dp.clip_l2(update_of(i), 1.0) for i in ids)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_round_over_htx_sums_every_update_and_issues_receipts(tmp_path):
    async def main():
        f = Federation(tmp_path, plan())
        await f.start()
        try:
            r = await f.service.run_round()
            assert r.ok, r.error
            assert r.sampled == r.survivors == list(range(1, N + 1))
            np.testing.assert_allclose(r.aggregate, expected_sum(r.survivors), atol=0.01)
            # the model moved by the mean update (sum / expected participants)
            np.testing.assert_allclose(f.service.model, r.aggregate / N)
            # every survivor's receipt names the masked input it sent; all verify
            assert len(r.receipts) == N
            r.receipt.verify(r.receipts)
            await asyncio.sleep(0.3)
            for i, c in f.clients.items():
                assert c.outcomes[r.round_id].ok
                assert c.receipts[r.round_id] in r.receipts
        finally:
            await f.stop()
    run(main())


@pytest.mark.parametrize("stage_type", [m.Advertise.TYPE, m.Shares.TYPE, m.Masked.TYPE,
                                        m.CheckSig.TYPE, m.Unmask.TYPE])
def test_round_completes_when_three_die_mid_round(tmp_path, stage_type):
    """Three of ten (the tolerated 30 %) close their connection at one stage: the stage
    deadline drops them and the round completes with the others' sum."""
    async def main():
        f = Federation(tmp_path, plan())
        await f.start(die={2: stage_type, 5: stage_type, 9: stage_type})
        try:
            r = await f.service.run_round()
            assert r.ok, r.error
            if stage_type in (m.CheckSig.TYPE, m.Unmask.TYPE):  # their masked inputs count
                want = list(range(1, N + 1))
            else:
                want = [i for i in range(1, N + 1) if i not in (2, 5, 9)]
            assert r.survivors == want
            np.testing.assert_allclose(r.aggregate, expected_sum(want), atol=0.01)
            r.receipt.verify(r.receipts)
        finally:
            await f.stop()
    run(main())


@pytest.mark.parametrize("stage_type", [m.Shares.TYPE, m.Masked.TYPE])
def test_round_aborts_cleanly_when_four_die(tmp_path, stage_type):
    async def main():
        f = Federation(tmp_path, plan())
        await f.start(die={1: stage_type, 3: stage_type, 4: stage_type, 8: stage_type})
        try:
            r = await f.service.run_round()
            assert not r.ok and r.aggregate is None and r.receipt is None
            assert "< 7" in r.error
            await asyncio.sleep(0.3)
            # the living were told; none revealed a share (their rounds were wiped)
            for i in (2, 5, 6, 7, 9, 10):
                assert not f.clients[i].outcomes[r.round_id].ok
            assert f.service.model.tolist() == [0.0] * DIM
        finally:
            await f.stop()
    run(main())


def test_sampling_is_poisson_at_the_charged_rate(tmp_path):
    """The round samples with the plan's rate from the whole population, with the same
    generator dp.poisson_sample uses, and the budget is charged at that rate."""
    async def main():
        f = Federation(tmp_path, plan(sample_rate=0.7, dropout=0.4), seed=3)
        await f.start()
        try:
            r = await f.service.run_round()
            want = dp.poisson_sample(list(range(1, N + 1)), 0.7, np.random.default_rng(3))
            assert r.sampled == want
            assert f.budget.rounds()[0].sample_rate == 0.7
            if r.ok:
                assert r.survivors == want
                np.testing.assert_allclose(r.aggregate, expected_sum(want), atol=0.01)
                np.testing.assert_allclose(f.service.model, r.aggregate / (0.7 * N))
        finally:
            await f.stop()
    run(main())


def test_budget_refuses_before_the_round_runs(tmp_path):
    async def main():
        f = Federation(tmp_path, plan(noise_multiplier=3.0), total_epsilon=2.6)
        await f.start()
        try:
            spent = []
            with pytest.raises(BudgetExceededError):
                for _ in range(50):
                    r = await f.service.run_round()
                    assert r.ok, r.error
                    spent.append(r.epsilon)
            assert len(spent) == 3 and spent[-1] <= 2.6  # 1.39, 2.03, 2.54; a 4th: 2.98
            await asyncio.sleep(0.5)
            # nothing was sent for the refused round 4: no task, no outcome
            for c in f.clients.values():
                assert sorted(c.outcomes) == [1, 2, 3] and 4 not in c.receipts
            assert len(f.budget.rounds()) == len(spent)
        finally:
            await f.stop()
    run(main())


@pytest.mark.parametrize("die_before,completes", [(m.Masked.TYPE, True), (m.Shares.TYPE, False)])
def test_participant_processes_killed_mid_round(tmp_path, die_before, completes):
    """Ten participants in their own processes; three (completes) or four (aborts) of them
    are SIGKILLed mid-round, just before sending their masked input or their shares."""
    import json
    import os
    import sys

    from cryptography.hazmat.primitives import serialization

    async def main():
        f = Federation(tmp_path, plan(stage_timeout=2.0))
        await f.service.start()
        raw = serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        cfg = {"port": f.service.transport.port, "server_pk": htx.public_key(f.server_key).hex(),
               "cert": str(f.cert), "dim": DIM, "stage_timeout": 2.0,
               "directory": {i: pk.hex() for i, pk in f.directory.items()},
               "htx_keys": {i: k.hex() for i, k in f.htx_keys.items()},
               "identities": {i: k.private_bytes(*raw).hex() for i, k in f.ids.items()}}
        (tmp_path / "cfg.json").write_text(json.dumps(cfg))
        victims = {2, 5, 9} if completes else {2, 5, 8, 9}
        script = os.path.join(os.path.dirname(__file__), "fl_participant_proc.py")
        env = {**os.environ, "PYTHONPATH": os.path.dirname(__file__)}
        procs = {i: await asyncio.create_subprocess_exec(
                     sys.executable, script, str(tmp_path / "cfg.json"), str(i),
                     str(die_before if i in victims else 0), env=env)
                 for i in range(1, N + 1)}
        try:
            await f.service.wait_connected(N, 60)
            r = await f.service.run_round()
            codes = {i: await asyncio.wait_for(p.wait(), 30) for i, p in procs.items()}
            assert {i for i, c in codes.items() if c == -9} == victims      # really killed
            assert all(codes[i] == 0 for i in procs if i not in victims)
            if completes:
                assert r.ok, r.error
                assert r.survivors == [i for i in range(1, N + 1) if i not in victims]
                np.testing.assert_allclose(r.aggregate, expected_sum(r.survivors), atol=0.01)
                r.receipt.verify(r.receipts)
            else:
                assert not r.ok and r.aggregate is None and "< 7" in r.error
        finally:
            for p in procs.values():
                if p.returncode is None:
                    p.kill()
                    await p.wait()
            await f.service.close()
            f.budget.close()
    run(main())


def test_plain_round_without_secagg_with_and_without_top_k(tmp_path):
    """secure=False: clipped updates in the clear (f32 on the wire), central noise; top-k
    sends 30 coordinates + indices, with error feedback kept by each participant."""
    from betanet.fl.compression import TopK

    async def main():
        f = Federation(tmp_path, plan(secure=False))
        await f.start()
        try:
            dense = await f.service.run_round()
            assert dense.ok, dense.error
            np.testing.assert_allclose(dense.aggregate, expected_sum(range(1, N + 1)), atol=0.01)
            dense.receipt.verify(dense.receipts)
            assert len(dense.receipts) == N
            f.service.plan = plan(secure=False, topk=30)
            sparse = [await f.service.run_round() for _ in range(2)]
            want = 0
            for i in range(1, N + 1):
                tk = TopK(DIM, 30)
                for _ in range(2):          # same update each round: error feedback replays
                    idx, values = tk.compress(update_of(i))
                    want = want + TopK.decompress(DIM, idx, dp.clip_l2(values, 1.0))
            got = sparse[0].aggregate + sparse[1].aggregate
            np.testing.assert_allclose(got, want, atol=0.01)
            assert sparse[1].uplink_bytes < dense.uplink_bytes / 2      # receipts included
        finally:
            await f.stop()
    run(main())


def test_secure_round_with_shared_top_k(tmp_path):
    """SecAgg+ over k = 40 coordinates chosen by the round's shared seed: the sum is exact on
    those coordinates and zero elsewhere, and the masked vectors are 40 words, not 300."""
    async def main():
        f = Federation(tmp_path, plan())
        await f.start()
        try:
            full = await f.service.run_round()
            f.service.plan = plan(topk=40)
            r = await f.service.run_round()
            assert r.ok, r.error
            support = np.flatnonzero(r.aggregate)
            assert support.size == 40
            want = sum(dp.clip_l2(update_of(i)[support], 1.0) for i in r.survivors)
            np.testing.assert_allclose(r.aggregate[support], want, atol=0.01)
            r.receipt.verify(r.receipts)
            assert r.uplink_bytes < full.uplink_bytes
        finally:
            await f.stop()
    run(main())


def test_wire_frames_round_trip_and_reject_malformed():
    from betanet.errors import MalformedError
    from betanet.fl import wire

    t = wire.Task(3, np.arange(5.0), 1.5, 0.2, 2.7, 1024, False, 2, bytes(range(32)))
    back = wire.decode_task(wire.encode_task(t))
    assert back.model.tolist() == t.model.tolist() and back.select_seed == t.select_seed
    assert (back.secure, back.topk, back.levels, back.clip) == (False, 2, 1024, 1.5)
    u = wire.Update(3, 10, np.array([0.5, -1.0]), np.array([2, 7]))
    assert wire.decode_update(wire.encode_update(u)).dense().tolist() == u.dense().tolist()
    o = wire.Outcome(3, True, b"receipt")
    assert wire.decode_outcome(wire.encode_outcome(o)) == o
    with pytest.raises(MalformedError):
        wire.decode_task(wire.encode_task(t)[:-1])
    with pytest.raises(MalformedError):
        wire.decode_update(wire.encode_update(u)[:-1])
    with pytest.raises(MalformedError):           # an index out of range
        wire.decode_update(wire.encode_update(wire.Update(3, 5, np.ones(1), np.array([5]))))
    with pytest.raises(MalformedError):           # repeated index
        wire.decode_update(wire.encode_update(wire.Update(3, 5, np.ones(2), np.array([1, 1]))))
    with pytest.raises(MalformedError):           # NaN
        wire.decode_update(wire.encode_update(wire.Update(3, 2, np.array([np.nan, 0.0]))))
    with pytest.raises(MalformedError):
        wire.unframe(b"\x09abc")
