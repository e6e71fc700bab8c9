"""The betanet exception hierarchy: one class per C error family, each carrying the code.

Every status a libbetanet call returns maps to exactly one class here (``error_for``);
Python code raises the same classes for the same failures so callers catch one family.
"""
from __future__ import annotations

__all__ = [
    "BetanetError", "InvalidArgumentError", "BufferTooSmallError", "MalformedError",
    "AuthenticationError", "ReplayError", "LimitExceededError", "OutOfMemoryError",
    "UncorrectableError", "ExpiredError", "StateError", "NotFoundError", "NoPathError",
    "CryptoError", "UnsupportedError", "ProtocolError", "error_for", "check",
]


class BetanetError(Exception):
    """Base of every betanet error. ``code`` is the C status (a negative BETANET_E_*)."""

    code: int = 0

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or "betanet error")
        if code is not None:
            self.code = code


class InvalidArgumentError(BetanetError, ValueError):
    """Invalid argument."""
    code = -1


class BufferTooSmallError(BetanetError, ValueError):
    """Output buffer too small."""
    code = -2


class MalformedError(BetanetError, ValueError):
    """Malformed input."""
    code = -3


class AuthenticationError(BetanetError):
    """Authentication failed."""
    code = -4


class ReplayError(BetanetError):
    """Replay detected."""
    code = -5


class LimitExceededError(BetanetError):
    """Limit exceeded."""
    code = -6


class OutOfMemoryError(BetanetError, MemoryError):
    """Out of memory."""
    code = -7


class UncorrectableError(BetanetError):
    """Too many errors or erasures to recover the data."""
    code = -8


class ExpiredError(BetanetError):
    """Key epoch or deadline has passed."""
    code = -9


class StateError(BetanetError):
    """Call not valid in the object's current state."""
    code = -10


class NotFoundError(BetanetError, LookupError):
    """Not found."""
    code = -11


class NoPathError(BetanetError):
    """No feasible path."""
    code = -12


class CryptoError(BetanetError):
    """Crypto backend failure."""
    code = -13


class UnsupportedError(BetanetError):
    """Unsupported."""
    code = -14


class ProtocolError(BetanetError):
    """The peer violated the protocol."""
    code = -15


_BY_CODE: dict[int, type[BetanetError]] = {
    cls.code: cls
    for cls in (InvalidArgumentError, BufferTooSmallError, MalformedError, AuthenticationError,
                ReplayError, LimitExceededError, OutOfMemoryError, UncorrectableError,
                ExpiredError, StateError, NotFoundError, NoPathError, CryptoError,
                UnsupportedError, ProtocolError)
}


def error_for(code: int, context: str = "") -> BetanetError:
    """The exception for a C status code, with the library's own description."""
    from betanet._native.core import strerror

    cls = _BY_CODE.get(code, BetanetError)
    text = strerror(code)
    return cls(f"{context}: {text}" if context else text, code)


def check(code: int, context: str = "") -> int:
    """Return ``code`` if it is not an error, else raise the matching exception."""
    if code < 0:
        raise error_for(code, context)
    return code
