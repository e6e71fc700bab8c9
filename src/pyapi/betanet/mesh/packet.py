"""BitChat packets over the native codec (docs/mesh.md).

`Packet` is the decoded form with the payload inflated; `Packet.decode` keeps the frame it
came from so a relay can forward the exact bytes (with TTL patched) and a signature is
verified over the bytes as carried — never over a re-compression, which another DEFLATE
implementation might produce differently.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

from betanet._native import mesh as _m
from betanet.errors import MalformedError

BROADCAST = b"\xff" * 8

ANNOUNCE = 0x01
MESSAGE = 0x02
LEAVE = 0x03
NOISE_HANDSHAKE = 0x10
NOISE_ENCRYPTED = 0x11
FRAGMENT = 0x20
REQUEST_SYNC = 0x21
FILE_TRANSFER = 0x22
FEC_PARITY = _m.TYPE_FEC_PARITY     # Betanet extension; BitChat peers ignore it

FLAG_HAS_RECIPIENT = 0x01
FLAG_HAS_SIGNATURE = 0x02
FLAG_IS_COMPRESSED = 0x04
FLAG_HAS_ROUTE = 0x08
FLAG_IS_RSR = 0x10

COMPRESSION_THRESHOLD = 100          # BitChat's Constants.compressionThresholdBytes


def should_compress(payload: bytes) -> bool:
    """BitChat's CompressionUtil.shouldCompress: >= 100 bytes and < 90 % distinct bytes."""
    if len(payload) < COMPRESSION_THRESHOLD:
        return False
    return len(set(payload)) / min(len(payload), 256) < 0.9


def deflate(payload: bytes) -> bytes | None:
    """Raw DEFLATE (what Apple's COMPRESSION_ZLIB writes), or None when it does not shrink."""
    c = zlib.compressobj(5, zlib.DEFLATED, -15)
    out = c.compress(payload) + c.flush()
    return out if len(out) < len(payload) else None


def inflate(data: bytes, original_size: int) -> bytes:
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, original_size + 1)
    except zlib.error as exc:
        raise MalformedError(f"compressed payload does not inflate: {exc}") from None
    if len(out) != original_size:
        raise MalformedError(f"compressed payload inflates to {len(out)} bytes, header says {original_size}")
    return out


@dataclass(frozen=True)
class Packet:
    """One BitChat packet. `payload` is always the inflated payload."""

    type: int
    sender: bytes
    payload: bytes
    timestamp: int
    ttl: int = 7
    version: int = 1
    recipient: bytes | None = None
    route: tuple[bytes, ...] = ()
    signature: bytes | None = None
    rsr: bool = False
    compress: bool | None = None     # None: BitChat's rule; False: never; True: when it shrinks
    frame: bytes | None = field(default=None, compare=False, repr=False)
    _carried: bytes | None = field(default=None, compare=False, repr=False)

    def _wire_payload(self) -> tuple[bytes, bool]:
        if self._carried is not None:
            return self._carried, True
        want = should_compress(self.payload) if self.compress is None else self.compress
        if want:
            c = deflate(self.payload)
            if c is not None:
                return c, True
        return self.payload, False

    def _fields(self) -> dict:
        body, compressed = self._wire_payload()
        return dict(version=self.version, type=self.type, timestamp=self.timestamp,
                    sender=self.sender, payload=body, recipient=self.recipient,
                    route=list(self.route) or None, compressed=compressed,
                    original_size=len(self.payload) if compressed else 0)

    def encode(self, pad: bool = True) -> bytes:
        return _m.encode(ttl=self.ttl, signature=self.signature, rsr=self.rsr, pad=pad, **self._fields())

    def signing_input(self) -> bytes:
        return _m.signing_input(**self._fields())

    def signed(self, secret_key: bytes) -> "Packet":
        """A copy signed with an Ed25519 secret key (64 bytes, libsodium layout)."""
        body, compressed = self._wire_payload()
        sig = _m.sign(secret_key, **self._fields())
        return replace(self, signature=sig, frame=None, _carried=body if compressed else None)

    def verify(self, public_key: bytes) -> None:
        """Raise AuthenticationError unless the signature is valid for public_key."""
        _m.verify(self.frame if self.frame is not None else self.encode(), public_key)

    @property
    def is_broadcast(self) -> bool:
        return self.recipient is None or self.recipient == BROADCAST

    @classmethod
    def decode(cls, frame: bytes) -> "Packet":
        frame = bytes(frame)
        (version, ptype, ttl, flags, ts, orig, s_off, r_off, route_off, hops, p_off, p_len,
         sig_off, _plen) = _m.decode(frame)
        carried = frame[p_off:p_off + p_len]
        compressed = bool(flags & FLAG_IS_COMPRESSED)
        payload = inflate(carried, orig) if compressed else carried
        return cls(type=ptype, sender=frame[s_off:s_off + 8], payload=payload, timestamp=ts, ttl=ttl,
                   version=version,
                   recipient=frame[r_off:r_off + 8] if flags & FLAG_HAS_RECIPIENT else None,
                   route=tuple(frame[route_off + 8 * i:route_off + 8 * i + 8] for i in range(hops)),
                   signature=frame[sig_off:sig_off + 64] if flags & FLAG_HAS_SIGNATURE else None,
                   rsr=bool(flags & FLAG_IS_RSR), frame=frame,
                   _carried=carried if compressed else None)


def with_ttl(frame: bytes, ttl: int) -> bytes:
    """The same frame with its TTL byte replaced (relaying keeps everything else)."""
    return frame[:2] + bytes([ttl]) + frame[3:]


def packet_id(frame: bytes) -> bytes:
    """De-duplication identity: independent of TTL, signature, route and padding."""
    return _m.packet_id(frame)
