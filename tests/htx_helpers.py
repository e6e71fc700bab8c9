"""Shared by the HTX tests: run async tests without a pytest plugin, with a hard timeout."""
from __future__ import annotations

import asyncio
import functools


def aio(timeout: float = 120):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            return asyncio.run(asyncio.wait_for(fn(*a, **kw), timeout))
        return wrapper
    return deco
