"""DP mechanisms: clipping bounds and the stated noise variance (fixed seeds)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from betanet.errors import InvalidArgumentError
from betanet.fl import dp


def test_clipping_bounds_norms():
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 5, (64, 30))
    clipped = dp.clip_rows_l2(rows, 1.5)
    assert np.all(np.linalg.norm(clipped, axis=1) <= 1.5 + 1e-12)
    small = rows[:1] / np.linalg.norm(rows[:1]) * 0.5
    assert np.allclose(dp.clip_rows_l2(small, 1.5), small)
    v = rng.normal(0, 5, 100)
    assert np.linalg.norm(dp.clip_l2(v, 2.0)) == pytest.approx(2.0)
    with pytest.raises(InvalidArgumentError):
        dp.clip_l2(np.array([np.nan]), 1.0)


def _variance_ok(samples, expected_var):
    # chi-square test of the sample variance of normal draws, two-sided at 1e-4
    n = samples.size
    statistic = (n - 1) * samples.var(ddof=1) / expected_var
    p = 2 * min(stats.chi2.cdf(statistic, n - 1), stats.chi2.sf(statistic, n - 1))
    return p > 1e-4


def test_dp_sgd_noise_has_stated_variance():
    rng = dp.make_rng(1234)
    clip, sigma, batch = 0.7, 1.3, 50.0
    grads = np.zeros((10, 200_000))             # zero gradients: the output is pure noise
    out = dp.dp_sgd_gradient(grads, clip, sigma, batch, rng)
    assert abs(out.mean()) < 5 * sigma * clip / batch / np.sqrt(out.size)
    assert _variance_ok(out, (sigma * clip / batch) ** 2)
    assert not _variance_ok(out, (1.05 * sigma * clip / batch) ** 2)   # the test can fail


def test_dp_sgd_mean_is_clipped_sum_over_batch():
    rows = np.array([[3.0, 4.0], [0.3, 0.4]])
    out = dp.dp_sgd_gradient(rows, 1.0, 0.0, 4.0, dp.make_rng(1))
    assert np.allclose(out, ([0.6, 0.8] + np.array([0.3, 0.4])) / 4.0)


def test_split_noise_shares_sum_to_full_variance():
    rng = dp.make_rng(99)
    clip, sigma, k = 2.0, 0.9, 16
    total = sum(dp.privatize_update(np.zeros(100_000), clip, sigma, k, rng) for _ in range(k))
    assert _variance_ok(total, (sigma * clip) ** 2)
    assert dp.client_noise_std(clip, sigma, k) == pytest.approx(sigma * clip / 4)


def test_central_noise_variance():
    out = dp.noise_aggregate(np.zeros(200_000), 1.5, 2.0, dp.make_rng(5))
    assert _variance_ok(out, 9.0)


def test_poisson_sample_rate():
    rng = dp.make_rng(7)
    picked = dp.poisson_sample(list(range(100_000)), 0.03, rng)
    # binomial(1e5, 0.03): sd ~ 54
    assert abs(len(picked) - 3000) < 5 * 54
    assert dp.poisson_sample([1, 2], 0.0, rng) == []
    with pytest.raises(InvalidArgumentError):
        dp.poisson_sample([1], 1.5, rng)


def test_unseeded_rngs_differ():
    assert dp.make_rng().integers(0, 2**62) != dp.make_rng().integers(0, 2**62)
