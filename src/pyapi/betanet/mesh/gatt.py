"""GATT framing for BitChat packets over one BLE link (sans-IO; docs/mesh.md "GATT").

Every BitChat frame travels as one write-without-response (central -> peripheral) or one
notification (peripheral -> central) on the characteristic. A write carries at most
ATT_MTU - 3 bytes, and never more than 512 (the largest attribute value), so:

* MTU: the link's ATT_MTU is the smaller of what the two ends offer (at least the
  default 23). BitChat Android asks for 517 and drops links where the exchange fails;
  iOS negotiates by itself (185 or 517 on current phones). `write_limit(mtu)` is the
  largest frame one write carries.
* Out: a frame no larger than the link's write limit goes as it is. A larger one is cut
  again as BitChat iOS does (`BLEOutboundPacketPolicy.fragmentChunkSize`): the packet is
  carried by fragment packets (type 0x20) whose slices are max(64, limit - 43) bytes —
  43 being a directed v1 fragment frame's header, ids and fragment header (iOS subtracts
  42, counting a 13-byte header, one byte short for directed fragments) — so each fits
  one write. A fragment cut again becomes fragments of a fragment; receivers reassemble
  twice (BitChat re-enters its receive pipeline with every reassembled packet). Links
  whose limit is below 64 + 43 bytes cannot carry BitChat and are refused.
* In: a `WriteAssembler` per link turns writes or notifications back into frames: a
  write that decodes alone is a frame (the normal case); otherwise bytes accumulate until
  they decode (a peer or an OS that split a frame), bounded by `cap` bytes, after which
  the partial frame is dropped and counted.
"""
from __future__ import annotations

from betanet._native import mesh as _m
from betanet.errors import BetanetError, InvalidArgumentError
from betanet.mesh.fragment import split
from betanet.mesh.packet import Packet

ATT_MTU_DEFAULT = 23            # Core spec Vol 3 Part F 3.2.8: LE default ATT_MTU
ATT_MTU_REQUEST = 517           # what BitChat Android requests (largest value + 5 bytes of ATT)
ATT_HEADER_BYTES = 3            # opcode + attribute handle
MAX_VALUE_BYTES = 512           # Core spec Vol 3 Part F 3.2.9: longest attribute value
FRAGMENT_OVERHEAD = 43          # v1 header 14 + sender 8 + recipient 8 + fragment header 13
MIN_CHUNK = 64                  # BitChat iOS: smallest fragment slice
MIN_WRITE_LIMIT = MIN_CHUNK + FRAGMENT_OVERHEAD


def negotiate_mtu(ours: int, theirs: int) -> int:
    """The link's ATT_MTU after the exchange: the smaller offer, never below 23."""
    for v in (ours, theirs):
        if not isinstance(v, int) or v < ATT_MTU_DEFAULT or v > 65535:
            raise InvalidArgumentError(f"ATT_MTU must be an integer in 23..65535, not {v!r}")
    return min(ours, theirs)


def write_limit(att_mtu: int) -> int:
    """The largest frame one write-without-response or notification carries."""
    if not isinstance(att_mtu, int) or att_mtu < ATT_MTU_DEFAULT:
        raise InvalidArgumentError(f"ATT_MTU must be an integer >= {ATT_MTU_DEFAULT}, not {att_mtu!r}")
    return min(att_mtu - ATT_HEADER_BYTES, MAX_VALUE_BYTES)


def chunk_for(limit: int) -> int:
    """BitChat's fragment slice for a link whose writes carry `limit` bytes."""
    return max(MIN_CHUNK, limit - FRAGMENT_OVERHEAD)


def plan_writes(frame: bytes, limit: int) -> list[bytes]:
    """The writes that carry `frame` over a link with write limit `limit` bytes."""
    if limit < MIN_WRITE_LIMIT:
        raise InvalidArgumentError(f"a {limit}-byte write limit cannot carry BitChat fragments "
                                   f"(needs {MIN_WRITE_LIMIT}: ATT_MTU {MIN_WRITE_LIMIT + ATT_HEADER_BYTES})")
    if len(frame) <= limit:
        return [bytes(frame)]
    # `split` slices the frame as carried (padding included), so reassembly gives back
    # exactly these bytes; the fragments are not padded: they must fit the write.
    return [f.encode(pad=False) for f in split(Packet.decode(frame), chunk=chunk_for(limit), max_frame=limit)]


class WriteAssembler:
    """Writes (or notifications) of one link in, whole frames out."""

    def __init__(self, cap: int = 4 * MAX_VALUE_BYTES) -> None:
        self.cap = cap
        self._buf = bytearray()
        self.dropped_bytes = 0
        self.frames = 0

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        if _decodes(data):
            if self._buf:                          # a split frame never completed
                self.dropped_bytes += len(self._buf)
                self._buf.clear()
            self.frames += 1
            return [bytes(data)]
        self._buf += data
        if _decodes(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
            self.frames += 1
            return [out]
        if len(self._buf) > self.cap:
            self.dropped_bytes += len(self._buf)
            self._buf.clear()
        return []

    @property
    def pending(self) -> int:
        return len(self._buf)


def _decodes(data: bytes) -> bool:
    try:
        _m.decode(bytes(data))
    except BetanetError:
        return False
    return True
