"""A privacy budget that cannot be overspent, even across restarts (docs/fl.md).

``PrivacyBudgetManager(path, total_epsilon, total_delta)`` keeps every charged round in
SQLite (WAL). ``charge`` composes the round's sampled-Gaussian steps with everything
spent so far using the RDP accountant and refuses -- before the round runs, recording
nothing -- if epsilon at ``total_delta`` would exceed ``total_epsilon``. The check and the
insert happen in one ``BEGIN IMMEDIATE`` transaction, so two processes sharing the file
cannot both squeeze in. A charge is final: a round that later aborts keeps its charge
(its noise may already have been released in part).
"""
from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from betanet.errors import InvalidArgumentError, LimitExceededError, StateError
from betanet.fl.accountant import DEFAULT_ORDERS, RdpAccountant, noise_multiplier_for

__all__ = ["BudgetExceededError", "RoundCharge", "PrivacyBudgetManager"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    total_epsilon REAL NOT NULL,
    total_delta REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    round_id TEXT PRIMARY KEY,
    sample_rate REAL NOT NULL,
    noise_multiplier REAL NOT NULL,
    steps INTEGER NOT NULL,
    epsilon_after REAL NOT NULL,
    charged_at REAL NOT NULL
);
"""


class BudgetExceededError(LimitExceededError):
    """The round would take the privacy spend past the budget; nothing was charged."""


@dataclass(frozen=True)
class RoundCharge:
    round_id: str
    sample_rate: float
    noise_multiplier: float
    steps: int
    epsilon_after: float


class PrivacyBudgetManager:
    """Total (epsilon, delta) for a model's lifetime, charged round by round."""

    def __init__(self, path: str | Path, total_epsilon: float = 1.0, total_delta: float = 1e-5,
                 *, clock=time.time) -> None:
        if not (total_epsilon > 0 and math.isfinite(total_epsilon)):
            raise InvalidArgumentError("total epsilon must be finite and > 0")
        if not (0 < total_delta < 1):
            raise InvalidArgumentError("total delta must be in (0, 1)")
        self._clock = clock
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT total_epsilon, total_delta FROM budget").fetchone()
            if row is None:
                self._db.execute("INSERT INTO budget VALUES (1, ?, ?)", (total_epsilon, total_delta))
            elif (row[0], row[1]) != (total_epsilon, total_delta):
                # a budget is fixed for the file's life: a reopen cannot raise it
                raise StateError(f"{path} holds a budget of epsilon={row[0]}, delta={row[1]}; "
                                 f"refusing to reopen it as epsilon={total_epsilon}, delta={total_delta}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._db.close()
            raise
        self.total_epsilon = total_epsilon
        self.total_delta = total_delta

    # -- reading -----------------------------------------------------------------------
    def _accountant(self) -> RdpAccountant:
        acc = RdpAccountant(DEFAULT_ORDERS)
        for q, sigma, steps in self._db.execute(
                "SELECT sample_rate, noise_multiplier, steps FROM rounds"):
            acc.compose(q, sigma, steps)
        return acc

    def spent_epsilon(self) -> float:
        """Epsilon spent so far at the budget's delta."""
        return self._accountant().epsilon(self.total_delta)

    def remaining_epsilon(self) -> float:
        return max(0.0, self.total_epsilon - self.spent_epsilon())

    def rounds(self) -> list[RoundCharge]:
        return [RoundCharge(*row) for row in self._db.execute(
            "SELECT round_id, sample_rate, noise_multiplier, steps, epsilon_after FROM rounds "
            "ORDER BY charged_at, rowid")]

    def epsilon_if(self, sample_rate: float, noise_multiplier: float, steps: int = 1) -> float:
        """Epsilon the budget would show after charging such a round (nothing changes)."""
        return self._accountant().peek(sample_rate, noise_multiplier, steps, self.total_delta)

    def can_run(self, sample_rate: float, noise_multiplier: float, steps: int = 1) -> bool:
        return self.epsilon_if(sample_rate, noise_multiplier, steps) <= self.total_epsilon

    def plan_noise_multiplier(self, sample_rate: float, rounds: int) -> float:
        """Noise multiplier that lets `rounds` more rounds at `sample_rate` fit the budget
        (assuming nothing has been spent; for a fresh budget)."""
        return noise_multiplier_for(self.total_epsilon, sample_rate, rounds, self.total_delta)

    # -- spending ----------------------------------------------------------------------
    def charge(self, round_id: str, sample_rate: float, noise_multiplier: float,
               steps: int = 1) -> RoundCharge:
        """Charge a round before running it; raise BudgetExceededError (charging nothing)
        if it would overspend, StateError if round_id was charged already."""
        if steps < 1:
            raise InvalidArgumentError("steps must be >= 1")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("SELECT 1 FROM rounds WHERE round_id = ?", (round_id,)).fetchone():
                raise StateError(f"round {round_id!r} was already charged")
            eps = self._accountant().peek(sample_rate, noise_multiplier, steps, self.total_delta)
            if not eps <= self.total_epsilon:
                raise BudgetExceededError(
                    f"round {round_id!r} would bring epsilon to {eps:.6g} > budget "
                    f"{self.total_epsilon:.6g} (delta={self.total_delta:g})")
            self._db.execute("INSERT INTO rounds VALUES (?, ?, ?, ?, ?, ?)",
                             (round_id, float(sample_rate), float(noise_multiplier), int(steps),
                              eps, self._clock()))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return RoundCharge(round_id, float(sample_rate), float(noise_multiplier), int(steps), eps)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PrivacyBudgetManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
