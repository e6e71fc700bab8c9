"""BitChat-compatible BLE mesh (docs/mesh.md): packets, fragments with FEC, announces, a
sans-IO router, and radios behind one interface (a simulated medium for tests and demos)."""
from __future__ import annotations

from betanet.mesh.packet import BROADCAST, Packet, packet_id  # noqa: F401
from betanet.mesh.batch import PacketArray  # noqa: F401
