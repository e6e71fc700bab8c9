"""Differential privacy mechanisms on NumPy parameter vectors (docs/fl.md).

* DP-SGD (Abadi et al. 2016): clip each example's gradient to L2 norm ``clip``, sum, add
  N(0, (noise_multiplier * clip)^2) per coordinate, divide by the expected batch size.
* Client-level DP for federated rounds (McMahan et al. 2018): each participant's update is
  clipped to ``clip``; the sum gets N(0, (noise_multiplier * clip)^2). With SecAgg no one
  sees an individual update, so each participant adds its own share
  N(0, (noise_multiplier * clip)^2 / min_survivors): any ``min_survivors`` or more surviving
  shares sum to at least the full variance.

The accountant (betanet.fl.accountant) assumes Poisson sampling with rate ``q``: use
``poisson_sample`` with that same ``q`` to pick examples or participants, so what is
accounted is what ran. Randomness comes from a NumPy Generator seeded from ``secrets``
unless a test injects a seed.
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from betanet.errors import InvalidArgumentError

__all__ = ["make_rng", "poisson_sample", "clip_l2", "clip_rows_l2", "dp_sgd_gradient",
           "client_noise_std", "privatize_update", "noise_aggregate"]

T = TypeVar("T")


def make_rng(seed: int | None = None) -> np.random.Generator:
    """A Generator seeded from `secrets` (128 bits), or from `seed` when a test injects one."""
    return np.random.Generator(np.random.PCG64(secrets.randbits(128) if seed is None else seed))


def _check(clip: float, noise_multiplier: float) -> None:
    if not (clip > 0 and math.isfinite(clip)):
        raise InvalidArgumentError(f"clip must be finite and > 0, got {clip}")
    if not (noise_multiplier >= 0 and math.isfinite(noise_multiplier)):
        raise InvalidArgumentError(f"noise multiplier must be finite and >= 0, got {noise_multiplier}")


def poisson_sample(items: Sequence[T], q: float, rng: np.random.Generator) -> list[T]:
    """Each item independently with probability q (the sampling the accountant assumes)."""
    if not 0 <= q <= 1:
        raise InvalidArgumentError(f"sample rate must be in [0, 1], got {q}")
    keep = rng.random(len(items)) < q
    return [item for item, k in zip(items, keep) if k]


def clip_l2(v: np.ndarray, clip: float) -> np.ndarray:
    """v scaled down to L2 norm at most `clip` (a copy; v is not modified)."""
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise InvalidArgumentError("vector has NaN or infinite entries")
    norm = float(np.linalg.norm(v))
    return v * (clip / norm) if norm > clip else v.copy()


def clip_rows_l2(rows: np.ndarray, clip: float) -> np.ndarray:
    """Each row of a (batch, dim) array scaled to L2 norm at most `clip`."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2:
        raise InvalidArgumentError("per-example gradients must be a (batch, dim) array")
    if not np.all(np.isfinite(rows)):
        raise InvalidArgumentError("gradients have NaN or infinite entries")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows * np.minimum(1.0, clip / np.maximum(norms, 1e-300))


def dp_sgd_gradient(per_example_grads: np.ndarray, clip: float, noise_multiplier: float,
                    expected_batch_size: float, rng: np.random.Generator) -> np.ndarray:
    """The private gradient of one DP-SGD step: (sum of clipped rows + noise) / expected
    batch size, noise N(0, (noise_multiplier * clip)^2) per coordinate. The expected
    batch size (q * dataset size) is fixed, not the realised one: dividing by the realised
    count would leak it."""
    _check(clip, noise_multiplier)
    if not expected_batch_size > 0:
        raise InvalidArgumentError("expected batch size must be > 0")
    rows = clip_rows_l2(per_example_grads, clip)
    total = rows.sum(axis=0)
    total += rng.normal(0.0, noise_multiplier * clip, size=total.shape)
    return total / expected_batch_size


def client_noise_std(clip: float, noise_multiplier: float, min_survivors: int) -> float:
    """Per-participant noise standard deviation when the noise is split across SecAgg
    participants: at least `min_survivors` shares reach the sum, so their variances add
    up to (noise_multiplier * clip)^2 or more."""
    _check(clip, noise_multiplier)
    if min_survivors < 1:
        raise InvalidArgumentError("min_survivors must be >= 1")
    return noise_multiplier * clip / math.sqrt(min_survivors)


def privatize_update(update: np.ndarray, clip: float, noise_multiplier: float,
                     min_survivors: int, rng: np.random.Generator) -> np.ndarray:
    """A participant's clipped update plus its share of the aggregate's Gaussian noise."""
    clipped = clip_l2(update, clip)
    return clipped + rng.normal(0.0, client_noise_std(clip, noise_multiplier, min_survivors),
                                size=clipped.shape)


def noise_aggregate(total: np.ndarray, clip: float, noise_multiplier: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Central client-level DP (no SecAgg): N(0, (noise_multiplier * clip)^2) on the sum of
    updates already clipped to `clip`."""
    _check(clip, noise_multiplier)
    total = np.asarray(total, dtype=np.float64)
    return total + rng.normal(0.0, noise_multiplier * clip, size=total.shape)
