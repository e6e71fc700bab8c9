"""The RDP accountant against Google's dp_accounting (an independent implementation)."""
from __future__ import annotations

import itertools
import math

import pytest

from betanet.errors import InvalidArgumentError
from betanet.fl import accountant as acc

dp_accounting = pytest.importorskip("dp_accounting")
from dp_accounting.rdp import RdpAccountant as GoogleRdp  # noqa: E402

GRID = list(itertools.product([0.001, 0.01, 0.1, 0.3, 1.0],   # sample rate
                              [0.6, 1.0, 1.7, 4.0],          # noise multiplier
                              [1, 50, 2000],                  # steps
                              [1e-5, 1e-8]))                  # delta


def google_epsilon(q, sigma, steps, delta):
    a = GoogleRdp()
    a.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    return a.get_epsilon(delta)


def test_epsilon_equals_dp_accounting_on_grid():
    diffs = []
    for q, sigma, steps, delta in GRID:
        ours, theirs = acc.epsilon(q, sigma, steps, delta), google_epsilon(q, sigma, steps, delta)
        diffs.append(abs(ours - theirs))
        assert ours == pytest.approx(theirs, abs=1e-6), (q, sigma, steps, delta)
    assert max(diffs) < 1e-6


def test_rdp_curve_equals_dp_accounting():
    a = GoogleRdp()
    a.compose(dp_accounting.PoissonSampledDpEvent(0.02, dp_accounting.GaussianDpEvent(1.1)), 3)
    ours = 3 * acc.rdp_sampled_gaussian(0.02, 1.1)
    assert list(a._orders) == list(acc.DEFAULT_ORDERS)
    assert max(abs(x - y) for x, y in zip(ours, a._rdp)) < 1e-9


def test_accountant_composes_like_repeated_steps():
    a = acc.RdpAccountant()
    for _ in range(10):
        a.compose(0.05, 1.2)
    assert a.epsilon(1e-5) == pytest.approx(acc.epsilon(0.05, 1.2, 10, 1e-5), rel=1e-12)
    before = a.epsilon(1e-5)
    assert a.peek(0.05, 1.2, 5, 1e-5) == pytest.approx(acc.epsilon(0.05, 1.2, 15, 1e-5), rel=1e-12)
    assert a.epsilon(1e-5) == before        # peek composes nothing


def test_edge_cases():
    assert acc.epsilon(0.0, 1.0, 100, 1e-5) == 0.0
    assert math.isinf(acc.epsilon(0.1, 0.0, 1, 1e-5))
    assert acc.epsilon(1.0, 2.0, 3, 1e-5) == pytest.approx(google_epsilon(1.0, 2.0, 3, 1e-5), abs=1e-9)
    for bad in [dict(q=-0.1, sigma=1), dict(q=1.1, sigma=1), dict(q=0.1, sigma=-1),
                dict(q=0.1, sigma=float("nan"))]:
        with pytest.raises(InvalidArgumentError):
            acc.epsilon(bad["q"], bad["sigma"], 1, 1e-5)
    with pytest.raises(InvalidArgumentError):
        acc.epsilon(0.1, 1.0, 1, 1.5)


@pytest.mark.parametrize("target,q,steps", [(1.0, 0.01, 1000), (3.0, 0.1, 100), (0.5, 1.0, 10)])
def test_noise_multiplier_for_meets_target_tightly(target, q, steps):
    sigma = acc.noise_multiplier_for(target, q, steps, 1e-5)
    assert acc.epsilon(q, sigma, steps, 1e-5) <= target
    assert acc.epsilon(q, sigma * (1 - 1e-4), steps, 1e-5) > target     # not far off the optimum
    assert google_epsilon(q, sigma, steps, 1e-5) <= target + 1e-6
