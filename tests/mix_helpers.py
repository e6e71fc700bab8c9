"""Helpers shared by the mixnode tests (test_mix.py, test_mix_htx.py)."""
from __future__ import annotations

import asyncio
import gc

from betanet._native import core
from betanet.mix import Message, Mixnode


async def eventually(cond, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def echo(node: Mixnode, m: Message) -> None:
    asyncio.ensure_future(node.reply(m, b"re: " + m.data))


def run(coro):
    """Run with a timeout; afterwards no task may be left and no core handle alive."""
    gc.collect()
    before = core.live_allocations()

    async def main():
        await coro
        # Connection.wait_closed() includes the QUIC closing handshake, so nothing is left.
        me = asyncio.current_task()
        left = [t for t in asyncio.all_tasks()        # all but us and run()'s wait_for
                if t is not me and t.get_coro().__name__ != "wait_for"]
        assert not left, left
    asyncio.run(asyncio.wait_for(main(), 60))
    gc.collect()
    assert core.live_allocations() == before
