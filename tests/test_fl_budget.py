"""PrivacyBudgetManager: refuses the overspending round before it runs, survives reopen."""
from __future__ import annotations

import pytest

from betanet.errors import InvalidArgumentError, LimitExceededError, StateError
from betanet.fl import accountant as acc
from betanet.fl.budget import BudgetExceededError, PrivacyBudgetManager

Q, SIGMA = 0.1, 2.0


def rounds_that_fit(total_eps, delta):
    n = 0
    while acc.epsilon(Q, SIGMA, n + 1, delta) <= total_eps:
        n += 1
    return n


def test_refuses_overspending_round_and_survives_reopen(tmp_path):
    path = tmp_path / "budget.sqlite"
    fit = rounds_that_fit(1.0, 1e-5)
    assert fit >= 2
    with PrivacyBudgetManager(path, 1.0, 1e-5) as b:
        for i in range(fit - 1):
            b.charge(f"r{i}", Q, SIGMA)
    # a restart cannot reset the spend
    with PrivacyBudgetManager(path, 1.0, 1e-5) as b:
        assert len(b.rounds()) == fit - 1
        assert b.spent_epsilon() == pytest.approx(acc.epsilon(Q, SIGMA, fit - 1, 1e-5), rel=1e-12)
        assert b.can_run(Q, SIGMA)
        b.charge("last", Q, SIGMA)
        assert not b.can_run(Q, SIGMA)
        with pytest.raises(BudgetExceededError) as err:
            b.charge("over", Q, SIGMA)
        assert isinstance(err.value, LimitExceededError)
        assert [r.round_id for r in b.rounds()][-1] == "last"     # the refusal charged nothing
        spent = b.spent_epsilon()
        assert spent <= 1.0
    with PrivacyBudgetManager(path, 1.0, 1e-5) as b:
        assert b.spent_epsilon() == spent
        with pytest.raises(BudgetExceededError):
            b.charge("over-after-restart", Q, SIGMA)


def test_round_ids_are_charged_once(tmp_path):
    with PrivacyBudgetManager(tmp_path / "b.sqlite", 5.0, 1e-5) as b:
        b.charge("a", Q, SIGMA)
        with pytest.raises(StateError):
            b.charge("a", Q, SIGMA)


def test_budget_of_a_file_cannot_be_raised_by_reopening(tmp_path):
    path = tmp_path / "b.sqlite"
    PrivacyBudgetManager(path, 1.0, 1e-5).close()
    with pytest.raises(StateError):
        PrivacyBudgetManager(path, 10.0, 1e-5)


def test_bad_budgets(tmp_path):
    for eps, delta in [(0, 1e-5), (float("inf"), 1e-5), (1.0, 0), (1.0, 1.0)]:
        with pytest.raises(InvalidArgumentError):
            PrivacyBudgetManager(tmp_path / f"x{eps}{delta}.sqlite", eps, delta)


def test_planned_noise_fits(tmp_path):
    with PrivacyBudgetManager(tmp_path / "b.sqlite", 1.0, 1e-5) as b:
        sigma = b.plan_noise_multiplier(0.05, 40)
        for i in range(40):
            b.charge(str(i), 0.05, sigma)
        assert b.spent_epsilon() <= 1.0
