"""What an FL round is, for the coordinator service (``coordinator``) and the participant
clients (``participant``): its ``RoundPlan`` (everything its privacy depends on), its
``RoundResult``, the quantisation levels, the digest a receipt names, and how often both
sides check their deadlines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from betanet.errors import InvalidArgumentError
from betanet.fl import messages as m
from betanet.fl.receipts import AggregateReceipt, ParticipationReceipt, digest

__all__ = ["RoundPlan", "RoundResult", "quantisation_levels", "masked_hash", "TICK"]

_MASKED_TYPE = m.Masked.TYPE
TICK = 0.05                       # how often deadlines are checked while waiting (seconds)


@dataclass(frozen=True)
class RoundPlan:
    """Everything a round's privacy depends on, in one place: the participant sample rate
    (used both to sample and to charge the budget), the noise multiplier, the L2 clip of an
    update; plus the tolerated dropout/corruption rates (they choose the SecAgg+ degree,
    threshold and minimum survivors) and the per-stage timeout. ``secure`` = False runs
    rounds without SecAgg (participants send clipped updates in the clear; the coordinator,
    then trusted, adds the noise: central DP); ``topk`` > 0 sends k coordinates per update
    (with SecAgg: k chosen by a shared per-round seed; without: the k largest, with error
    feedback)."""
    sample_rate: float
    noise_multiplier: float
    clip: float
    dropout: float = 0.3
    corruption: float = 0.0
    stage_timeout: float = 30.0
    server_lr: float = 1.0
    qrange_sigmas: float = 6.0     # quantisation range: clip + this many noise-share deviations
    secure: bool = True
    topk: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise InvalidArgumentError(f"sample rate must be in (0, 1], got {self.sample_rate}")
        if not (self.clip > 0 and math.isfinite(self.clip)):
            raise InvalidArgumentError("clip must be finite and > 0")
        if not (self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)):
            raise InvalidArgumentError("noise multiplier must be finite and >= 0")
        if not self.stage_timeout > 0:
            raise InvalidArgumentError("stage timeout must be > 0")


@dataclass
class RoundResult:
    round_id: int
    sampled: list[int]
    survivors: list[int] = field(default_factory=list)
    aggregate: np.ndarray | None = None          # dequantised noisy sum of the survivors' updates
    receipt: AggregateReceipt | None = None
    receipts: list[ParticipationReceipt] = field(default_factory=list)
    epsilon: float = 0.0                         # spent after this round (budget's delta)
    error: str = ""                              # why the round aborted ("" when it completed)
    uplink_bytes: int = 0                        # frames received from participants this round

    @property
    def ok(self) -> bool:
        return not self.error


def quantisation_levels(n: int) -> int:
    """Levels per coordinate so that n quantised inputs sum without wrapping mod 2^32
    (a power of two, as docs/fl.md states)."""
    return 1 << ((2**32 // (n + 1)).bit_length() - 1)


def masked_hash(secagg_message: bytes) -> bytes | None:
    """The digest a receipt names for a Masked message (None for other messages)."""
    if len(secagg_message) > 3 and secagg_message[3] == _MASKED_TYPE:
        return digest(secagg_message)
    return None
