"""Sans-IO link shaping: which bytes pass a simulated link, and when (``betanet.tools.relay``
is the asyncio adapter).

A ``Pipe`` is one direction of a link. Every chunk (a UDP datagram or a piece of a TCP stream)
is serialised at the bandwidth cap after what is already queued, then delayed by the
propagation delay; delivery times never go backwards within a pipe, so a stream stays in
order even when the delay is lowered at run time. Loss applies only to chunks the caller says
may be dropped (datagrams): dropping bytes out of a TCP stream would corrupt it, not model a
lossy link. Time and randomness are injected.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace

from betanet.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["LinkSettings", "Pipe", "CUT_MODES"]

# "": the link works. "drop": nothing passes (a dead link: datagrams vanish, TCP connections
# stay open and stall, new ones wait). "reset": TCP connections are reset and new ones
# refused; datagrams vanish.
CUT_MODES = ("", "drop", "reset")


@dataclass(frozen=True)
class LinkSettings:
    """``loss``: probability a datagram is dropped (0..1). ``delay_ms``: one-way delay.
    ``rate_bps``: bandwidth cap in bits per second per direction (0 = none).
    ``queue_ms``: a datagram that would wait longer than this behind the cap is dropped
    (tail drop, like a router queue). ``cut``: one of ``CUT_MODES``."""
    loss: float = 0.0
    delay_ms: float = 0.0
    rate_bps: float = 0.0
    queue_ms: float = 1000.0
    cut: str = ""

    def __post_init__(self) -> None:
        for f in ("loss", "delay_ms", "rate_bps", "queue_ms"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ArgumentTypeError(f"link setting {f} must be a number, not {type(v).__name__}")
            if not math.isfinite(v) or v < 0:
                raise InvalidArgumentError(f"link setting {f} must be a finite number >= 0, not {v!r}")
        if self.loss > 1:
            raise InvalidArgumentError(f"link setting loss must be between 0 and 1, not {self.loss!r}")
        if self.cut not in CUT_MODES:
            raise InvalidArgumentError(f"link setting cut must be one of {CUT_MODES}, not {self.cut!r}")

    def updated(self, **changes) -> "LinkSettings":
        """A copy with ``changes`` applied; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidArgumentError(f"unknown link setting(s) {unknown}; known: {sorted(known)}")
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


class Pipe:
    """One direction of a shaped link. ``admit(nbytes, now, droppable)`` returns the time the
    chunk is to be delivered, or None when it is dropped; ``counters`` says why."""

    def __init__(self, settings: LinkSettings, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        self._busy_until = 0.0       # when the cap has serialised everything admitted so far
        self._last_delivery = 0.0
        self.counters = {"chunks": 0, "bytes": 0, "dropped_loss": 0, "dropped_cut": 0,
                         "dropped_queue": 0}

    def admit(self, nbytes: int, now: float, droppable: bool) -> float | None:
        s = self.settings
        if s.cut:
            self.counters["dropped_cut"] += 1
            return None
        if droppable and s.loss and self._rng.random() < s.loss:
            self.counters["dropped_loss"] += 1
            return None
        start = max(now, self._busy_until)
        if droppable and (start - now) * 1000.0 > s.queue_ms:
            self.counters["dropped_queue"] += 1
            return None
        sent = start + (nbytes * 8.0 / s.rate_bps if s.rate_bps else 0.0)
        self._busy_until = sent
        at = max(sent + s.delay_ms / 1000.0, self._last_delivery)
        self._last_delivery = at
        self.counters["chunks"] += 1
        self.counters["bytes"] += nbytes
        return at
