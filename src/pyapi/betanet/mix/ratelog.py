"""Rate-limited warnings: a flood must not turn into a flood of log lines, and nothing may
be silent either — the first occurrence is logged at once, later ones are summed into the
next line at most every ``interval`` seconds per key."""
from __future__ import annotations

import logging
import time
from typing import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval, self.clock = logger, interval, clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` ago; returns
        whether it was logged."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        n = self._suppressed.pop(key, 0)
        if n:
            msg += " (%d more like this since the last report)"
            args += (n,)
        self.logger.warning(msg, *args)
        return True
