"""Announce TLVs (BitChat's AnnouncementPacket, type 0x01) and peer identities.

TLV: type (1) || length (1) || value. 0x01 nickname (UTF-8, <= 255 bytes), 0x02 Noise
static X25519 key, 0x03 Ed25519 signing key, 0x04 direct neighbours (<= 10 peer ids of 8
bytes), 0x05 capabilities (u64 bit set, little-endian, shortest form), 0x06 bridge
geohash. Unknown TLVs are skipped by BitChat; this decoder keeps them in ``extra`` (type,
value) pairs, which ``encode`` writes after the known ones. Betanet's own TLVs use types
from 0x70 (``PEER_RECORD_HASH``: SHA-256 of the sender's signed node peer record, 32 bytes;
betanet/node/link_mesh.py fetches the record over the mesh when it does not know it). A peer id is the first 8 bytes of SHA-256 of the Noise
static key. Betanet advertises its extensions as capability bits BitChat does not use.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from betanet.errors import MalformedError

NICKNAME, NOISE_KEY, SIGNING_KEY, NEIGHBORS, CAPABILITIES, BRIDGE_GEOHASH = 1, 2, 3, 4, 5, 6
PEER_RECORD_HASH = 0x70  # Betanet: SHA-256 of the sender's node peer record (32 bytes)
_KNOWN = (NICKNAME, NOISE_KEY, SIGNING_KEY, NEIGHBORS, CAPABILITIES, BRIDGE_GEOHASH)

CAP_FEC = 1 << 32        # understands type 0x60 parity fragments (Betanet)
CAP_FRIEND = 1 << 33     # offers friendship to low-power nodes (Betanet)
CAP_BUNDLE = 1 << 34     # carries DTN bundles in type 0x62 packets (Betanet, mesh/dtn_cla.py)


def peer_id(noise_public_key: bytes) -> bytes:
    """BitChat peer id: SHA-256 of the Noise static public key, first 8 bytes."""
    return hashlib.sha256(noise_public_key).digest()[:8]


def _caps_encode(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0xFF)
        value >>= 8
        if not value:
            return bytes(out)


@dataclass(frozen=True)
class Announce:
    nickname: str
    noise_key: bytes
    signing_key: bytes
    neighbors: tuple[bytes, ...] = ()
    capabilities: int | None = None
    bridge_geohash: str | None = None
    extra: tuple[tuple[int, bytes], ...] = ()      # TLVs BitChat does not define

    @property
    def peer_id(self) -> bytes:
        return peer_id(self.noise_key)

    def encode(self) -> bytes:
        nick = self.nickname.encode()
        if len(nick) > 255 or len(self.noise_key) > 255 or len(self.signing_key) > 255:
            raise ValueError("announce field longer than 255 bytes")
        out = bytearray()
        for t, v in ((NICKNAME, nick), (NOISE_KEY, self.noise_key), (SIGNING_KEY, self.signing_key)):
            out += bytes([t, len(v)]) + v
        nb = b"".join(self.neighbors[:10])
        if nb and all(len(n) == 8 for n in self.neighbors[:10]):
            out += bytes([NEIGHBORS, len(nb)]) + nb
        if self.capabilities is not None:
            c = _caps_encode(self.capabilities)
            out += bytes([CAPABILITIES, len(c)]) + c
        if self.bridge_geohash:
            g = self.bridge_geohash.encode()
            if len(g) <= 12:
                out += bytes([BRIDGE_GEOHASH, len(g)]) + g
        for t, v in self.extra:
            if t in _KNOWN or not 0 <= t <= 255 or len(v) > 255:
                raise ValueError(f"announce extra TLV {t}: a type BitChat does not define, <= 255 bytes")
            out += bytes([t, len(v)]) + v
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> "Announce":
        fields: dict[int, bytes] = {}
        extra: list[tuple[int, bytes]] = []
        o = 0
        while o + 2 <= len(data):
            t, n = data[o], data[o + 1]
            o += 2
            if o + n > len(data):
                raise MalformedError(f"announce TLV {t} runs past the end")
            if t in _KNOWN:
                fields.setdefault(t, bytes(data[o:o + n]))
            elif len(extra) < 16:
                extra.append((t, bytes(data[o:o + n])))
            o += n
        if NICKNAME not in fields or NOISE_KEY not in fields or SIGNING_KEY not in fields:
            raise MalformedError("announce lacks nickname, Noise key or signing key")
        nb = fields.get(NEIGHBORS, b"")
        neighbors = tuple(nb[i:i + 8] for i in range(0, len(nb), 8)) if nb and len(nb) % 8 == 0 else ()
        caps = None
        if CAPABILITIES in fields:
            caps = int.from_bytes(fields[CAPABILITIES][:8], "little")
        geo = fields.get(BRIDGE_GEOHASH)
        return cls(nickname=fields[NICKNAME].decode("utf-8", "replace"), noise_key=fields[NOISE_KEY],
                   signing_key=fields[SIGNING_KEY], neighbors=neighbors, capabilities=caps,
                   bridge_geohash=geo.decode("utf-8", "replace") if geo and len(geo) <= 12 else None,
                   extra=tuple(extra))

    def tlv(self, t: int) -> bytes | None:
        """The value of extra TLV ``t`` (the first one), or None."""
        return next((v for k, v in self.extra if k == t), None)
