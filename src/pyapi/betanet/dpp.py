"""Drift-plus-penalty scheduling: which queue a link serves each slot.

:class:`Scheduler` picks, each slot, the service option minimising Neely's
drift-plus-penalty bound, trading queue backlog against transport energy (mJ) with ``V``.
Core: ``include/betanet/dpp.h``, ``docs/dpp.md``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from betanet._native import dpp as _dpp
from betanet._check import integer, real
from betanet.errors import InvalidArgumentError

__all__ = ["Scheduler"]


class Scheduler:
    """Drift-plus-penalty scheduler (Neely): each slot serve the option minimising
    ``V·energy + Σ Q_k·(arrivals_k − service_k)``; larger V spends less energy and
    tolerates more backlog.

    ``options`` maps a name to (energy mJ per slot, service per queue per slot)."""

    def __init__(self, n_queues: int, options: dict[str, tuple[float, Sequence[float]]], v: float) -> None:
        if not isinstance(options, dict) or not options:
            raise InvalidArgumentError("options must be a non-empty dict name -> (energy, service)")
        n_queues = integer(n_queues, "n_queues", 1, _dpp.MAX_QUEUES)
        v = real(v, "v")
        if len(options) > _dpp.MAX_OPTIONS:
            raise InvalidArgumentError(f"at most {_dpp.MAX_OPTIONS} options")
        self._names = list(options)
        self._s = _dpp.Scheduler(n_queues, len(options), v)
        self._v = v
        self.n_queues = n_queues
        for i, (name, opt) in enumerate(options.items()):
            try:
                energy, service = opt
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"option {name!r} must be (energy, service per queue)") from None
            self._s.set_option(i, real(energy, f"energy of {name!r}"), _vector(service, n_queues, f"service of {name!r}"))

    @property
    def v(self) -> float:
        return self._v

    @v.setter
    def v(self, value: float) -> None:
        value = real(value, "v")
        self._s.set_v(value)
        self._v = value

    def step(self, arrivals: Sequence[float], available: Iterable[str] | None = None) -> tuple[str | None, float]:
        """Advance one slot; returns (option served or None for idle, its energy)."""
        mask = None
        if available is not None:
            avail = set(available)
            mask = [1 if n in avail else 0 for n in self._names]
        i, energy = self._s.step(_vector(arrivals, self.n_queues, "arrivals"), mask)
        return (None if i < 0 else self._names[i]), energy

    @property
    def backlog(self) -> np.ndarray:
        return self._s.backlog()


def _vector(values: Sequence[float], n: int, what: str) -> np.ndarray:
    """n finite numbers >= 0 as a float64 array."""
    try:
        a = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be {n} numbers") from None
    if a.shape != (n,):
        raise InvalidArgumentError(f"{what} must be {n} numbers, got shape {a.shape}")
    if not (np.isfinite(a).all() and (a >= 0).all()):
        raise InvalidArgumentError(f"{what} must be finite and >= 0")
    return a
