"""The Betanet node (issue 14, docs/node.md): one identity, every transport, adaptive send.

- ``identity``: Ed25519 + X25519 keys, PeerID (Betanet 1.1 §6.1).
- ``peers``: signed peer records, the peer book.
- ``envelope``: the sealed, signed end-to-end message; chunking with FEC.
- ``config``: the YAML configuration; ``power``: battery and temperature sources.
- ``node``: the ``Node`` (state, lifecycle, wiring), whose work is in ``sending`` (outbox,
  batches, retries), ``routing`` (route choice, fallback, DTN hand-off), ``receiving``
  (frames, acks, relaying) and ``inbox`` (handlers, ``messages()``); ``handles``: the
  ``DeliveryHandle`` a send returns and the ``Received`` messages the application gets.
"""

from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.node import DeliveryHandle, Node, Received
from betanet.node.peers import PeerRecord

__all__ = ["DeliveryHandle", "HtxLink", "Identity", "Node", "PeerRecord", "Received"]
