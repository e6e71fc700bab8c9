"""Argument checks shared by the routing modules (navigator, cgr, dpp).

They turn what would escape as ``OverflowError`` / ``TypeError`` from the C wrappers, or
pass silently (a float truncated to an int, a negative measurement), into
:class:`~betanet.errors.InvalidArgumentError` (also a ``ValueError``) before anything is
changed, so a failed call leaves no trace.
"""
from __future__ import annotations

import math
import operator

from betanet.errors import InvalidArgumentError

__all__ = ["integer", "real"]


def integer(value: object, name: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
    """``value`` as an int in [lo, hi]; bools, floats (even 2.0) and strings are refused."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an integer, not bool")
    try:
        i = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer, not {type(value).__name__}") from None
    if not lo <= i <= hi:
        raise InvalidArgumentError(f"{name} must be in [{lo}, {hi}], got {i}")
    return i


def real(value: object, name: str, lo: float = 0.0, hi: float = math.inf, *, finite: bool = True) -> float:
    """``value`` as a float in [lo, hi] (NaN refused; infinity only if not ``finite``)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise InvalidArgumentError(f"{name} must be a number, not {type(value).__name__}")
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, not {type(value).__name__}") from None
    if math.isnan(x) or (finite and math.isinf(x)) or not lo <= x <= hi:
        raise InvalidArgumentError(f"{name} must be a {'finite ' if finite else ''}number in "
                                   f"[{lo}, {hi}], got {x}")
    return x
