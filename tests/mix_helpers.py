"""Helpers shared by the mixnode tests (test_mix.py, test_mix_htx.py)."""
from __future__ import annotations

import asyncio
import gc
import secrets

from betanet._native import core
from betanet.mix import Descriptor, Directory, Message, Mixnode, MixnodeProtocol
from betanet.sphinx import KeyPair


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


def protocol_node(like: MixnodeProtocol | None = None, directory: Directory | None = None,
                  **options) -> MixnodeProtocol:
    """A sans-IO mixnode (a fresh id and key, or those of ``like``), mean delay 10 ms."""
    node_id = like.node_id if like else secrets.token_bytes(32)
    key = like.key if like else KeyPair.generate()
    options.setdefault("mean_delay_ms", 10.0)
    return MixnodeProtocol(node_id, key, directory if directory is not None else Directory(), **options)


def directory_of(nodes, *, port: int = 9) -> Directory:
    """A directory listing sans-IO mixnodes (their addresses are never dialled)."""
    return Directory(Descriptor(n.node_id, ("127.0.0.1", port), n.key.public_key, 100 + i)
                     for i, n in enumerate(nodes))
