"""Top-k with error feedback, and the shared-seed variant that SecAgg can sum."""
from __future__ import annotations

import numpy as np
import pytest

from betanet.errors import InvalidArgumentError
from betanet.fl.compression import SharedTopK, TopK, shared_coordinates


def test_topk_sends_largest_and_feeds_back_the_rest():
    t = TopK(6, 2)
    idx, vals = t.compress(np.array([0.1, -5.0, 0.2, 3.0, 0.0, -0.3]))
    assert idx.tolist() == [1, 3] and vals.tolist() == [-5.0, 3.0]
    assert np.allclose(t.residual, [0.1, 0, 0.2, 0, 0, -0.3])
    idx, vals = t.compress(np.array([0.0, 0, 0.2, 0, 0, 0]))
    assert idx.tolist() == [2, 5] and np.allclose(vals, [0.4, -0.3])
    assert t.wire_bytes() == 16


def test_error_feedback_loses_nothing():
    rng = np.random.default_rng(0)
    t = TopK(1000, 50)
    sent = np.zeros(1000)
    total = np.zeros(1000)
    for _ in range(30):
        u = rng.normal(size=1000)
        total += u
        idx, vals = t.compress(u)
        sent += TopK.decompress(1000, idx, vals)
    assert np.allclose(sent + t.residual, total)


def test_shared_coordinates_agree_and_differ_by_round():
    seed = bytes(32)
    a = shared_coordinates(seed, 1, 10_000, 100)
    assert np.array_equal(a, shared_coordinates(seed, 1, 10_000, 100))
    assert len(set(a.tolist())) == 100 and a.max() < 10_000
    assert not np.array_equal(a, shared_coordinates(seed, 2, 10_000, 100))
    assert shared_coordinates(seed, 1, 5, 5).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidArgumentError):
        shared_coordinates(seed, 1, 5, 6)


def test_shared_variant_sums_across_participants():
    seed, rid, dim, k = bytes([7]) * 32, 3, 500, 40
    rng = np.random.default_rng(1)
    comps = [SharedTopK(dim, k) for _ in range(5)]
    ups = [rng.normal(size=dim) for _ in range(5)]
    total = sum(c.compress(u, seed, rid) for c, u in zip(comps, ups))   # what SecAgg sums
    dense = comps[0].decompress(total, seed, rid)
    idx = shared_coordinates(seed, rid, dim, k)
    assert np.allclose(dense[idx], sum(ups)[idx])
    assert comps[0].wire_bytes() == 160
