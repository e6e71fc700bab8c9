"""The betanet exception hierarchy: one class per C error family, each carrying the code.

Every status a libbetanet call returns maps to exactly one class here (``error_for``);
Python code raises the same classes for the same failures so callers catch one family.
The codes and their messages are not copied here: each class names its C macro
(``c_name``) and takes its ``code`` and default message from the library's own table
(``betanet._native.core.error_table``, i.e. ``betanet_error_name``/``betanet_strerror``).
"""
from __future__ import annotations

from betanet._native import core as _core

__all__ = [
    "BetanetError", "InvalidArgumentError", "BufferTooSmallError", "MalformedError",
    "AuthenticationError", "ReplayError", "LimitExceededError", "OutOfMemoryError",
    "UncorrectableError", "ExpiredError", "StateError", "NotFoundError", "NoPathError",
    "CryptoError", "UnsupportedError", "ProtocolError", "ArgumentTypeError", "error_for", "check",
]


class BetanetError(Exception):
    """Base of every betanet error. ``code`` is the C status (a negative BETANET_E_*)."""

    code: int = 0
    c_name: str = ""
    message: str = "betanet error"       # the library's text for ``code`` (set below)

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.message)
        if code is not None:
            self.code = code


class InvalidArgumentError(BetanetError, ValueError):
    """Invalid argument."""
    c_name = "BETANET_E_INVALID"


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type (None, not an int, not a bytes-like object)."""


class BufferTooSmallError(BetanetError, ValueError):
    """Output buffer too small."""
    c_name = "BETANET_E_BUFFER_TOO_SMALL"


class MalformedError(BetanetError, ValueError):
    """Malformed input."""
    c_name = "BETANET_E_MALFORMED"


class AuthenticationError(BetanetError):
    """Authentication failed."""
    c_name = "BETANET_E_AUTH"


class ReplayError(BetanetError):
    """Replay detected."""
    c_name = "BETANET_E_REPLAY"


class LimitExceededError(BetanetError):
    """Limit exceeded."""
    c_name = "BETANET_E_LIMIT"


class OutOfMemoryError(BetanetError, MemoryError):
    """Out of memory."""
    c_name = "BETANET_E_NOMEM"


class UncorrectableError(BetanetError):
    """Too many errors or erasures to recover the data."""
    c_name = "BETANET_E_UNCORRECTABLE"


class ExpiredError(BetanetError):
    """Key epoch or deadline has passed."""
    c_name = "BETANET_E_EXPIRED"


class StateError(BetanetError):
    """Call not valid in the object's current state."""
    c_name = "BETANET_E_STATE"


class NotFoundError(BetanetError, LookupError):
    """Not found."""
    c_name = "BETANET_E_NOT_FOUND"


class NoPathError(BetanetError):
    """No feasible path."""
    c_name = "BETANET_E_NO_PATH"


class CryptoError(BetanetError):
    """Crypto backend failure."""
    c_name = "BETANET_E_CRYPTO"


class UnsupportedError(BetanetError):
    """Unsupported."""
    c_name = "BETANET_E_UNSUPPORTED"


class ProtocolError(BetanetError):
    """The peer violated the protocol."""
    c_name = "BETANET_E_PROTOCOL"


_CLASSES: tuple[type[BetanetError], ...] = (
    InvalidArgumentError, BufferTooSmallError, MalformedError, AuthenticationError, ReplayError,
    LimitExceededError, OutOfMemoryError, UncorrectableError, ExpiredError, StateError,
    NotFoundError, NoPathError, CryptoError, UnsupportedError, ProtocolError)
_BY_NAME = {cls.c_name: cls for cls in _CLASSES}
_BY_CODE: dict[int, type[BetanetError]] = {}
for _code, _name, _text in _core.error_table():
    _cls = _BY_NAME.get(_name)
    if _cls is not None:
        _cls.code, _cls.message = _code, _text
        _BY_CODE[_code] = _cls
del _code, _name, _text, _cls


def error_for(code: int, context: str = "") -> BetanetError:
    """The exception for a C status code, with the library's own description."""
    cls = _BY_CODE.get(code, BetanetError)
    text = _core.strerror(code)
    return cls(f"{context}: {text}" if context else text, code)


def check(code: int, context: str = "") -> int:
    """Return ``code`` if it is not an error, else raise the matching exception."""
    if code < 0:
        raise error_for(code, context)
    return code
