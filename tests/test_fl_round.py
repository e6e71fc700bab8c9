"""The pieces together: Poisson-sampled participants, the budget charged before the round,
clipped + noised + quantised updates, a SecAgg+ round with dropouts, the dequantised mean."""
from __future__ import annotations

import random

import numpy as np
import pytest

from betanet._native import secagg as native
from betanet.fl import dp
from betanet.fl.budget import BudgetExceededError, PrivacyBudgetManager
from betanet.fl.graph import choose_parameters
from betanet.fl.secagg import Coordinator, Participant, Stage

DIM, CLIP, SIGMA, Q = 2000, 1.0, 1.0, 0.5


def test_private_secure_round(tmp_path):
    rng = dp.make_rng(42)
    population = list(range(1, 41))
    chosen = dp.poisson_sample(population, Q, rng)          # what the accountant assumes
    params = choose_parameters(len(chosen), dropout=0.2, corruption=0.0, dim=DIM)
    levels = 2**32 // (len(chosen) + 1) // 2**8 * 2**8
    budget = PrivacyBudgetManager(tmp_path / "b.sqlite", 10.0, 1e-5)
    budget.charge("round-1", Q, SIGMA)                       # before anything runs

    updates = {i: rng.normal(0, 0.05, DIM) for i in chosen}
    quantised = {}
    for i, u in updates.items():
        noisy = dp.privatize_update(u, CLIP, SIGMA, params.min_survivors, rng)
        # per-coordinate range c: clipped L2 norm 1 plus noise of sd ~0.2 stays inside 2
        quantised[i] = native.quantize(noisy, 2.0, levels, rng.bytes(32), 1)
    coord = Coordinator(1, quantised, params)
    parts = {i: Participant(i, 1, x) for i, x in quantised.items()}
    dropped = set(random.Random(0).sample(chosen, len(chosen) // 5))
    now = 0.0
    while not coord.finished:
        out = coord.data_to_send()
        if not out:
            now += 61
            coord.tick(now)
            continue
        for to, data in out:
            if to in dropped and coord.stage is Stage.MASKED:
                continue
            parts[to].receive(data, now)
            for reply in parts[to].data_to_send():
                coord.receive(to, reply, now)
    assert coord.stage is Stage.DONE, coord.abort_reason
    survivors = coord.survivors
    assert set(survivors) == set(chosen) - dropped
    total = native.dequantize(coord.result, 2.0, levels, len(survivors))
    true = sum(dp.clip_l2(updates[i], CLIP) for i in survivors)
    # total noise variance >= (SIGMA * CLIP)^2 per coordinate; quantisation adds < 1e-5
    resid = total - true
    assert resid.std() == pytest.approx(SIGMA * CLIP * np.sqrt(len(survivors) / params.min_survivors), rel=0.1)
    budget.close()
    with PrivacyBudgetManager(tmp_path / "b.sqlite", 10.0, 1e-5) as again:
        assert [r.round_id for r in again.rounds()] == ["round-1"]
        with pytest.raises(BudgetExceededError):
            again.charge("greedy", Q, 0.1)
