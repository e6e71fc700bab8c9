"""The mixnet link (the privacy QoS): node frames as Sphinx messages through mixnodes.

A node's mix client id is the 32-byte digest of its PeerID (the PeerID without its
multihash prefix), so peer records need no extra field: a peer is reachable over the mixnet
while its client descriptor is in the mix directory and the directory holds mixnodes. Each
mixnode learns only its previous and next hop; the last one learns the destination client
(its next hop) and carries a sealed node frame it cannot open. No hop acknowledgment: the
end-to-end acknowledgment (which comes back over whatever route the receiver picks) tells.
Frames are at most ``max_frame`` bytes (the node chunks to fit the Sphinx payload).
"""
from __future__ import annotations

import asyncio
import contextlib

from betanet.mix.client import MixClient
from betanet.mix.types import Directory
from betanet.node.identity import parse_peer_id
from betanet.node.links import ENERGY, LinkError
from betanet.node.peers import PeerBook

__all__ = ["MixLink", "mix_id"]

PRIVACY_EPS = 0.05      # unlinkability through >= 3 mixnodes (vs 1.0 for a direct link)


def mix_id(peer: str) -> bytes:
    return parse_peer_id(peer)[2:]


class MixLink:
    transport = "mix"
    reliable = False

    def __init__(self, client: MixClient, directory: Directory, peers: PeerBook, *,
                 hops: int = 3, mean_delay_ms: float = 50.0, max_frame: int = 1400) -> None:
        self.client, self.directory, self.peers = client, directory, peers
        self.hops, self.mean_delay_ms, self.max_frame = hops, mean_delay_ms, max_frame
        self.on_frame = None
        self.on_change = None
        self._reader: asyncio.Task | None = None
        self.counters = {"frames_sent": 0, "frames_received": 0}
        self.enabled = True

    async def open(self) -> None:
        await self.client.start()
        self.directory.add(self.client.descriptor())
        self._reader = asyncio.ensure_future(self._read())

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await self.client.close()

    async def _read(self) -> None:
        while True:
            m = await self.client.inbox.get()
            self.counters["frames_received"] += 1
            if self.on_frame is not None:
                await self.on_frame(bytes(m.data))

    def _mixnodes(self) -> int:
        return len(self.directory.mixnodes)

    def reaches(self) -> set[str]:
        if not self.enabled or self._mixnodes() < self.hops:
            return set()
        return {r.peer for r in self.peers if self.directory.get(mix_id(r.peer)) is not None
                and mix_id(r.peer) != self.client.client_id}

    async def send(self, peer: str, frame: bytes, timeout: float) -> float:
        if peer not in self.reaches():
            raise LinkError(f"mix: {peer} is not reachable through the mixnet")
        if len(frame) > self.max_frame:
            raise LinkError(f"mix: frame of {len(frame)} bytes above max_frame {self.max_frame}")
        try:
            await asyncio.wait_for(self.client.send(mix_id(peer), frame, want_reply=False), timeout)
        except (asyncio.TimeoutError, OSError) as e:
            raise LinkError(f"mix: send failed: {type(e).__name__} {e}") from None
        self.counters["frames_sent"] += 1
        return 0.0

    def measure(self, peer: str) -> dict:
        packet = self.client.geometry.packet_bytes
        return {"latency_ms": self.hops * self.mean_delay_ms + 10.0,
                "energy_mj": ENERGY["htx"].energy_mj(packet), "failure": 0.01,
                "privacy_eps": PRIVACY_EPS}

    def stats(self) -> dict:
        return {**self.counters, "mixnodes": self._mixnodes(), "sent_packets": self.client.counters.sent}
