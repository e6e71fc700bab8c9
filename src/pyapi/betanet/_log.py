"""Log hygiene shared by the services: text a peer chose must never reach a log verbatim.

A peer controls CLOSE reasons, error strings, names and addresses it announces. Written raw,
a newline forges a whole log line and ANSI escapes rewrite the terminal. ``escape`` makes
any value one printable line; log it with ``%s`` (or use ``safe_repr`` for quoted output).
"""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["escape", "safe_repr", "Throttle", "DEFAULT_LIMIT"]

DEFAULT_LIMIT = 256      # characters of peer text kept in one log field


def _esc(ch: str) -> str:
    o = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if o < 0x100:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def escape(value: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """``value`` (str, bytes or anything with ``str()``) as one line of printable text:
    control, format (bidi overrides), separator and undecodable characters become Python-style
    escapes (``\\n``, ``\\x1b``, ``\\u202e``) and text beyond ``limit`` characters is cut with
    a note of how much was left out. Backslashes stay as they are, so escaping twice (an
    exception message built from escaped text, then logged) changes nothing."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8", "backslashreplace")
    else:
        text = value if isinstance(value, str) else str(value)
    cut = 0
    if limit is not None and len(text) > limit:
        cut = len(text) - limit
        text = text[:limit]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else _esc(ch) for ch in text)
    return f"{text}...(+{cut} chars)" if cut else text


def safe_repr(value: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """``escape(value)`` in double quotes: for log fields where empty or spaced text must
    stay visible."""
    return '"' + escape(value, limit).replace('"', '\\"') + '"'


class Throttle:
    """At most one log message per ``interval`` seconds for a repeated condition (a flood
    must not turn into a log flood). ``allow()`` returns None while throttled, else how many
    messages were suppressed since the last one allowed."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next = float("-inf")
        self._suppressed = 0

    def allow(self) -> int | None:
        now = self._clock()
        if now < self._next:
            self._suppressed += 1
            return None
        self._next = now + self.interval
        n, self._suppressed = self._suppressed, 0
        return n
