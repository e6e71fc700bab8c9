"""DTN over the BLE mesh: a `ConvergenceLayer` that carries bundles in mesh packets.

A bundle travels as one directed, signed mesh packet of type 0x62 (`BUNDLE`, a Betanet
type: BitChat peers do not deliver it, and announce capability bit 34 says who does) to
the peer's mesh id, relayed hop by hop like any directed packet. A bundle larger than one
BLE write is cut by the mesh fragmenter (type 0x20 fragments, 469-byte slices, plus
`fec_parity` Reed-Solomon parity fragments when the router has it set), and v2 packets
carry bundles over 65 535 bytes. The mesh has no acknowledgment, so `send` returns once
the frames are handed to the radio (`acknowledged = False`) — custody and retransmission
are the bundle layer's. A received bundle is accepted only from the link's peer and, by
default, only with a signature verified against the key that peer announced.

Several links share one `MeshService`; each reads the service's events on its own
subscription while its contact is open.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from betanet.dtn.cla import ConvergenceLayer, LinkMetrics
from betanet.errors import InvalidArgumentError, LimitExceededError, StateError
from betanet.mesh.announce import CAP_BUNDLE
from betanet.mesh.service import Delivered, MeshService

__all__ = ["BUNDLE", "MAX_BUNDLE", "MeshLink"]

log = logging.getLogger(__name__)

BUNDLE = 0x62
MAX_BUNDLE = 512 * 1024     # below the reassembler's 1 MiB per assembly with room for parity


class MeshLink(ConvergenceLayer):
    """Bundles to and from one mesh peer over a running `MeshService`."""

    name = "ble-mesh"
    acknowledged = False

    def __init__(self, service: MeshService, peer_id: bytes, *, ttl: int = 7,
                 max_bundle: int = MAX_BUNDLE, require_verified: bool = True) -> None:
        super().__init__()
        if len(peer_id) != 8:
            raise InvalidArgumentError("a mesh peer id is 8 bytes")
        if not 1 <= max_bundle <= MAX_BUNDLE:
            raise InvalidArgumentError(f"max_bundle must be 1..{MAX_BUNDLE}")
        if not 1 <= ttl <= 255:
            raise InvalidArgumentError("ttl must be 1..255")
        self.service, self.peer_id = service, bytes(peer_id)
        self.ttl, self.max_bundle, self.require_verified = ttl, max_bundle, require_verified
        self.bytes_sent = self.bytes_received = 0
        self.bundles_sent = self.bundles_received = 0
        self.dropped = 0                  # bundles refused: unverified, or nobody reading
        self._task: asyncio.Task | None = None

    async def open_contact(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if not self.service.running:
            raise StateError("the mesh service is not running")
        self.service.router.extra_caps |= CAP_BUNDLE
        events = self.service.events()
        self._task = asyncio.get_running_loop().create_task(self._pump(events))
        self._opened_at = time.monotonic()

    async def close_contact(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def send(self, bundle: bytes) -> None:
        if self._task is None:
            await self.open_contact()
        if len(bundle) > self.max_bundle:
            self.failures += 1
            raise LimitExceededError(f"bundle of {len(bundle)} bytes exceeds the mesh link's "
                                     f"{self.max_bundle}; fragment it first")
        try:
            self.service.send_to(self.peer_id, bytes(bundle), ptype=BUNDLE, ttl=self.ttl)
        except StateError:
            self.failures += 1
            raise
        self.bytes_sent += len(bundle)
        self.bundles_sent += 1

    @property
    def up(self) -> bool:
        """Contact open and the peer known to the mesh (its announce was heard)."""
        return (self._task is not None and not self._task.done() and self.service.running
                and self.peer_id in self.service.peers)

    def metrics(self) -> LinkMetrics:
        return LinkMetrics(self.up, None, None, self.bytes_sent, self.bytes_received,
                           self.bundles_sent, self.bundles_received, self.failures, self._opened_at)

    async def _pump(self, events) -> None:
        async for ev in events:
            if not (isinstance(ev, Delivered) and ev.packet.type == BUNDLE
                    and ev.packet.sender == self.peer_id and ev.packet.recipient == self.service.peer_id):
                continue
            if self.require_verified and not ev.verified:
                self.dropped += 1
                log.info("mesh link: unverified bundle from %s dropped", self.peer_id.hex())
                continue
            if self._rx.full():
                self.dropped += 1             # nobody reads received(): drop, counted
                continue
            self.bytes_received += len(ev.packet.payload)
            self.bundles_received += 1
            await self._deliver(ev.packet.payload)
