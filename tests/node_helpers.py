"""Helpers for the node tests: an in-process BLE air (Radio protocol, real time), a TCP
relay that can be cut (blackholed) like a downed interface, and a node factory."""
from __future__ import annotations

import asyncio
import os
import random

from betanet.node.localnet import CutProxy, LocalAir, LocalRadio  # noqa: F401  (re-exported for the tests)
from betanet.mesh.router import Identity as MeshIdentity, MeshRouter
from betanet.node import config as nconfig
from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.link_mesh import MeshLink
from betanet.node.node import Node


def fast_config(**over) -> dict:
    cfg = nconfig.defaults()
    cfg["routing"].update(hop_timeout_ms=400, ack_timeout_ms=1500, retry_interval_ms=100)
    for section, kv in over.items():
        cfg[section].update(kv)
    return cfg


def make_node(tmp, name: str, *, htx: bool = True, air: LocalAir | None = None, config=None,
              power=None, seed: int = 0) -> Node:
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    ident = Identity.generate()
    peers_holder = []
    cfg = config or fast_config()
    node = Node(ident, os.path.join(d, "store.db"), config=cfg, power=power)
    if htx:
        node.links.append(HtxLink(ident, node.peers, listen="127.0.0.1:0", cert_dir=d, retry_s=0.5,
                                  connect_timeout=0.5))
    if air is not None:
        mid = MeshIdentity.generate(name, random.Random(seed))
        router = MeshRouter(mid, rng=random.Random(seed))
        node.links.append(MeshLink(router, air.radio(router.me), node.peers, announce_s=0.2))
    del peers_holder
    return node


def introduce(nodes, records=None) -> None:
    """Every node learns every other node's record."""
    recs = records or [n.record() for n in nodes]
    for n in nodes:
        for r in recs:
            if r.peer != n.me:
                n.add_peer(r.raw)


async def started_pair(tmp, **config) -> tuple[Node, Node]:
    """Two started HTX nodes "a" and "d" that know each other, each on
    ``fast_config(**config)``."""
    a, d = (make_node(tmp, name, config=fast_config(**config)) for name in ("a", "d"))
    await a.start()
    await d.start()
    introduce([a, d])
    return a, d


async def wait_for(pred, timeout: float = 10.0, step: float = 0.02):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


async def take(node, n: int, timeout: float = 15.0) -> list:
    """The next ``n`` messages from ``node.messages()`` (asyncio.TimeoutError if they do not
    all come within ``timeout`` seconds)."""
    got = []

    async def consume():
        agen = node.messages()
        async for m in agen:
            got.append(m)
            if len(got) >= n:
                break
        await agen.aclose()
    await asyncio.wait_for(consume(), timeout)
    return got
