"""Argument checks shared by the Python API modules: a wrong type or an out-of-range number
becomes a betanet error (an ArgumentTypeError is also a TypeError and an InvalidArgumentError,
an InvalidArgumentError also a ValueError), never an OverflowError from the C conversion or a
silent truncation. Checks run before anything changes, so a failed call leaves no trace."""
from __future__ import annotations

import math
import operator
from typing import Any

from betanet.errors import ArgumentTypeError, InvalidArgumentError


__all__ = ["integer", "real", "byte_buffer"]


def integer(value: Any, name: str, minimum: int = 0, maximum: int = 0xFFFFFFFF) -> int:
    """``value`` as an int in [minimum, maximum] (bool and float are refused, not truncated)."""
    if isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be an int, got bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not minimum <= number <= maximum:
        raise InvalidArgumentError(f"{name} must be in [{minimum}, {maximum}], got {number}")
    return number


def byte_buffer(value: Any, name: str) -> Any:
    """A C-contiguous bytes-like object for ``value``: the object itself when it is one,
    a bytes copy of a strided or multi-byte-format buffer; None or a non-buffer raises."""
    if value is None:
        raise ArgumentTypeError(f"{name} must be a bytes-like object, not None")
    try:
        view = memoryview(value)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be a bytes-like object, "
                                f"not {type(value).__name__}") from None
    if view.c_contiguous and view.format in ("B", "b", "c") and view.ndim <= 1:
        return value
    return view.tobytes()


def real(value: Any, name: str, lo: float = 0.0, hi: float = math.inf, *, finite: bool = True) -> float:
    """``value`` as a float in [lo, hi] (NaN refused; infinity only if not ``finite``)."""
    if isinstance(value, (bool, str, bytes)):
        raise ArgumentTypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be a number, not {type(value).__name__}") from None
    if math.isnan(x) or (finite and math.isinf(x)) or not lo <= x <= hi:
        raise InvalidArgumentError(f"{name} must be a {'finite ' if finite else ''}number in "
                                   f"[{lo}, {hi}], got {x}")
    return x
