"""The Betanet node (issue 14, docs/node.md): one identity, every transport, adaptive send.

- ``identity``: Ed25519 + X25519 keys, PeerID (Betanet 1.1 §6.1).
- ``peers``: signed peer records, the peer book.
- ``envelope``: the sealed, signed end-to-end message; chunking with FEC.
- ``config``: the YAML configuration; ``power``: battery and temperature sources.
"""

from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.node import DeliveryHandle, Node, Received
from betanet.node.peers import PeerRecord

__all__ = ["DeliveryHandle", "HtxLink", "Identity", "Node", "PeerRecord", "Received"]
