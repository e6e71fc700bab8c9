"""Argument checks shared by the Python API modules: a wrong type or an out-of-range integer
becomes a betanet error (an ArgumentTypeError is also a TypeError, an InvalidArgumentError
also a ValueError), never an OverflowError from the C conversion or a silent truncation."""
from __future__ import annotations

import operator
from typing import Any

from betanet.errors import ArgumentTypeError, InvalidArgumentError


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
