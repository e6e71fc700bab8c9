"""One link interface for every transport, and the energy model behind its measurements.

A link moves *node frames* (envelope.py) to a neighbour peer. The node sees only this:

- ``open()`` / ``close()``;
- ``reaches()``: the peers it can deliver to now (link up/down is a change of this set,
  also announced through ``on_change(peer, up)``);
- ``await send(peer, frame, timeout)``: returns once the next hop acknowledged the frame
  (HTX: the receiver's one-byte link ack on the frame's stream, after the receiving node
  handled it) or, for links without hop acknowledgments (the mesh), once the frame is on
  the air; raises :class:`LinkError` on failure or timeout;
- ``on_frame(frame)``: an awaitable callback for frames received, returning a
  :class:`Taken`: true only for ``TAKEN``; ``REFUSED`` (not now: inbox full, a flooding
  sender, relay store full — worth offering again) and ``DROPPED`` (never: malformed, not
  opening, bad signature) are both false, for links that can only say yes or no;
- ``measure(peer)``: the link's cost as ``Navigator.observe`` keywords: latency (measured
  hop round-trip times, EWMA), energy for a nominal message from :data:`ENERGY`, failure
  (EWMA of failed sends), privacy epsilon per transport.

Energy model (docs/node.md "Energy model"), millijoules for one message of ``n`` bytes:
``fixed + n * per_byte``. HTX over Wi-Fi: 7 uJ/byte, the per-kilobyte transfer energy
Balasubramanian et al. measured on phones ("Energy Consumption in Mobile Phones", IMC 2009:
E = 0.007 J/KB + scan/associate overhead, the overhead left out as the interface is up),
plus 2 mJ per exchange for the radio's wake-up and tail (~1 W for ~2 ms).
BLE: the nRF52840 figures of betanet.mesh.radio (TX 135 nJ/byte + RX 129 nJ/byte with GATT
overhead) per hop, 3 hops assumed, plus 0.05 mJ per connection event.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from betanet.errors import StateError
from betanet.mesh.radio import RX_J_PER_BYTE, TX_J_PER_BYTE

__all__ = ["Link", "LinkError", "Taken", "EnergyModel", "ENERGY", "NOMINAL_BYTES", "Ewma", "PRIVACY_EPS"]

NOMINAL_BYTES = 1024


class LinkError(StateError):
    """A send over a link failed (link down, timeout, refused)."""


class Taken(enum.Enum):
    """What the node did with a received frame. Only ``TAKEN`` is true, so a link that
    acknowledges per hop with yes or no keeps ``if await on_frame(frame)``; a link that can
    tell its peer why (the bundle agent's custody signals, link_dtn.py) tells a frame worth
    offering again (``REFUSED``) from one that never can be taken (``DROPPED``)."""
    TAKEN = "taken"
    REFUSED = "refused"
    DROPPED = "dropped"

    def __bool__(self) -> bool:
        return self is Taken.TAKEN


@dataclass(frozen=True)
class EnergyModel:
    fixed_mj: float
    per_byte_mj: float

    def energy_mj(self, n: int) -> float:
        return self.fixed_mj + n * self.per_byte_mj


ENERGY: dict[str, EnergyModel] = {
    # 0.007 J/KB = 7 uJ/byte = 7e-3 mJ/byte (was 7e-3 / 1000: a thousand times too cheap)
    "htx": EnergyModel(2.0, 7e-3),
    "quic": EnergyModel(2.0, 7e-3),
    "ble": EnergyModel(0.05, 3 * (TX_J_PER_BYTE + RX_J_PER_BYTE) * 1e3),
}
#: What a network observer learns (Navigator's privacy objective): direct internet links
#: reveal both ends; the local mesh reveals them only in radio range.
PRIVACY_EPS: dict[str, float] = {"htx": 1.0, "quic": 1.0, "ble": 0.5}


class Ewma:
    def __init__(self, initial: float, weight: float = 0.3) -> None:
        self.value, self.weight = initial, weight

    def add(self, x: float) -> float:
        self.value = (1 - self.weight) * self.value + self.weight * x
        return self.value


FrameHandler = Callable[[bytes], Awaitable[Taken]]


class Link(Protocol):
    transport: str
    # frames arrive whole or the send fails (a retransmitting stream or custody underneath):
    # chunks over it need no parity while nothing is lost (routing.Router._frames)
    reliable: bool
    on_frame: FrameHandler | None
    on_change: Callable[[str, bool], None] | None

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def reaches(self) -> set[str]: ...
    async def send(self, peer: str, frame: bytes, timeout: float) -> float: ...
    def measure(self, peer: str) -> dict: ...
    def stats(self) -> dict: ...
