"""A sender node in its own process, for the kill -9 mid-batch test (tests/test_node_batch.py).

    python node_batch_sender.py DIR PEER_RECORD_FILE N

Starts a node with the identity and store in DIR (created on first run), writes its peer
record to DIR/peer.record, imports the peer's record, then queues messages ``m0000``..
up to N with ``send_many`` in groups of 50 (only on the first run: a restart only resumes its
outbox), printing ``accepted K`` after each group committed; then runs until killed.
"""
from __future__ import annotations

import asyncio
import os
import sys

from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.node import Node

from node_helpers import fast_config


async def main(d: str, peer_file: str, n: int) -> None:
    key = os.path.join(d, "identity.key")
    first = not os.path.exists(key)
    if first:
        Identity.generate().save(key)
    ident = Identity.load(key)
    node = Node(ident, os.path.join(d, "store.db"), config=fast_config())
    node.links.append(HtxLink(ident, node.peers, listen="127.0.0.1:0", cert_dir=d))
    await node.start()
    with open(os.path.join(d, "peer.record.tmp"), "wb") as f:
        f.write(node.record().raw)
    os.replace(os.path.join(d, "peer.record.tmp"), os.path.join(d, "peer.record"))
    with open(peer_file, "rb") as f:
        rec = node.add_peer(f.read())
    print("ready", flush=True)
    if first:
        for k in range(0, n, 50):
            await node.send_many(rec.peer, [b"m%04d" % i for i in range(k, min(n, k + 50))])
            print("accepted", min(n, k + 50), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
