"""A local mixnet: N mixnodes on loopback sharing one directory (demo, tests,
``betanet mixnode --local N``)."""
from __future__ import annotations

import asyncio
import secrets
from typing import Callable

from betanet.mix.htx_transport import make_transport
from betanet.mix.node import Mixnode
from betanet.mix.types import TCP_FRAMING, Directory, Message
from betanet.sphinx import Geometry, KeyPair

__all__ = ["LocalMixnet"]


class LocalMixnet:
    """N mixnodes on loopback sharing one directory, each in its own AS group, linked by
    ``transport`` (a ``TRANSPORT_KINDS`` name; each node gets a fresh HTX key)."""

    def __init__(self, n: int = 3, *, geometry: Geometry = Geometry(), epoch: int = 1,
                 mean_delay_ms: float = 20.0, loop_rate: float = 0.0, hops: int = 3,
                 on_message: Callable[[Mixnode, Message], None] | None = None,
                 transport: str = TCP_FRAMING, transport_options: dict | None = None) -> None:
        self.directory = Directory()
        self.geometry, self.epoch, self.transport = geometry, epoch, transport
        self.nodes = []
        for i in range(n):
            node_id = secrets.token_bytes(32)
            node = Mixnode(node_id, KeyPair.generate(), self.directory, epoch=epoch,
                           transport=make_transport(transport, **(transport_options or {})),
                           geometry=geometry, mean_delay_ms=mean_delay_ms, loop_rate=loop_rate,
                           hops=min(hops, n - 1) or 1, as_group=100 + i,
                           on_message=(lambda m, i=i: on_message(self.nodes[i], m)) if on_message else None)
            self.nodes.append(node)

    async def start(self) -> None:
        for node in self.nodes:
            await node.start()
            self.directory.add(node.descriptor())

    def vrf_descriptors(self) -> list:
        return [n.descriptor().vrf_descriptor() for n in self.nodes]

    async def close(self) -> None:
        await asyncio.gather(*(n.close() for n in self.nodes))

    async def __aenter__(self) -> LocalMixnet:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
