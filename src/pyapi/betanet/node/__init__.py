"""The Betanet node (issue 14, docs/node.md): one identity, every transport, adaptive send.

- ``identity``: Ed25519 + X25519 keys, PeerID (Betanet 1.1 §6.1).
- ``peers``: signed peer records, the peer book.
- ``envelope``: the sealed, signed end-to-end message; chunking with FEC.
- ``config``: the YAML configuration; ``power``: battery and temperature sources.
"""
