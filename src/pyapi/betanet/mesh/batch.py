"""Many packets in one flat buffer, for bulk users: relays, simulators, DTN batches.

`PacketArray` holds frames back to back in one buffer with an offsets array (frame i is
``buffer[offsets[i]:offsets[i+1]]``) and, once decoded, one NumPy record per frame with
the header fields and the offsets of sender, recipient, payload and signature *into the
buffer* (`betanet._native.mesh.VIEW_DTYPE`). Encoding and decoding are each one core call
for the whole batch (betanet_mesh_encode_batch / betanet_mesh_decode_batch, GIL
released) and create no Python object per packet; that is what makes this API, unlike
`Packet`, fast enough for bulk work (docs/benchmarks.md, mesh section).

Fields are as carried: a compressed payload stays compressed (`flags` says so); use
`Packet.decode(array.frame(i))` for the inflated, typed view of one packet.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from betanet._native import mesh as _m

VIEW_DTYPE = _m.VIEW_DTYPE


class PacketArray:
    """Frames in one buffer plus, after `decode`, their header fields as columns."""

    __slots__ = ("buffer", "offsets", "views", "status", "decoded")

    def __init__(self, buffer: bytes, offsets: np.ndarray, views: np.ndarray | None = None,
                 status: np.ndarray | None = None, decoded: int = 0) -> None:
        self.buffer, self.offsets = buffer, offsets
        self.views, self.status, self.decoded = views, status, decoded

    # ---- building ----------------------------------------------------------------------
    @classmethod
    def encode(cls, *, sender, payload, payload_offsets, type, timestamp, ttl=7, version=1,
               recipient=None, signature=None, pad: bool = True) -> "PacketArray":
        """Encode n packets from columns: payload i is
        ``payload[payload_offsets[i]:payload_offsets[i+1]]`` (carried as is, uncompressed);
        sender / recipient (8 bytes) and signature (64 bytes) are one row shared by all or
        n rows (a 2-D uint8 array or n * width bytes); type, ttl, version and timestamp are
        a scalar or n values. Routes, compression and RSR need `Packet`."""
        buf, offsets = _m.encode_batch(sender, payload, payload_offsets, type=type, timestamp=timestamp,
                                       ttl=ttl, version=version, recipient=recipient,
                                       signature=signature, pad=pad)
        return cls(buf, offsets)

    @classmethod
    def decode(cls, buffer, offsets) -> "PacketArray":
        """Decode the frames of `buffer` delimited by `offsets` (n + 1 entries). A frame that
        does not decode has a nonzero `status` and a zero record; it never stops the batch."""
        views, status, ok = _m.decode_batch(buffer, offsets)
        return cls(buffer, np.asarray(offsets, dtype=np.uintp), views, status, ok)

    @classmethod
    def from_frames(cls, frames: Sequence[bytes]) -> "PacketArray":
        """Join separate frames (one copy) and decode them."""
        offsets = np.zeros(len(frames) + 1, dtype=np.uintp)
        np.cumsum([len(f) for f in frames], out=offsets[1:])
        return cls.decode(b"".join(frames), offsets)

    # ---- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def ok(self) -> np.ndarray:
        """Bool mask of the frames that decoded."""
        self._need_views()
        return self.status == 0

    def frame(self, i: int) -> bytes:
        return self.buffer[int(self.offsets[i]):int(self.offsets[i + 1])]

    def frames(self) -> list[bytes]:
        """Each frame as its own bytes (to hand to a radio one write at a time)."""
        b, o = self.buffer, self.offsets.tolist()
        return [b[o[i]:o[i + 1]] for i in range(len(o) - 1)]

    def payload(self, i: int) -> memoryview:
        """Payload of frame i as carried (zero-copy)."""
        self._need_views()
        v = self.views[i]
        return memoryview(self.buffer)[int(v["payload_off"]):int(v["payload_off"] + v["payload_len"])]

    def field(self, name: str) -> np.ndarray:
        """One header column (``"ttl"``, ``"type"``, ``"timestamp"``, ``"payload_len"``, ...)."""
        self._need_views()
        return self.views[name]

    def ids(self) -> np.ndarray:
        """(n, 16) de-duplication identities (`packet_id`), zero rows where decoding failed."""
        self._need_views()
        return _m.packet_id_batch(self.buffer, self.views)

    def _need_views(self) -> None:
        if self.views is None:
            self.views, self.status, self.decoded = _m.decode_batch(self.buffer, self.offsets)
