"""Fragments (BitChat type 0x20) and Betanet parity fragments (type 0x60).

A packet too large for one BLE write is encoded, cut into `chunk`-byte slices, and each
slice travels in a fragment packet that copies the original's sender, recipient,
timestamp, TTL and route (BitChat's BLEOutboundFragmentPlanner). With `parity=m`, m parity
packets carry Reed-Solomon parity over the slices, so any k of the k + m rebuild the
original; BitChat peers drop type 0x60 and still reassemble from the k data fragments.
"""
from __future__ import annotations

import secrets

from betanet._native import mesh as _m
from betanet.errors import InvalidArgumentError
from betanet.mesh.packet import FEC_PARITY, FRAGMENT, Packet

CHUNK_BYTES = _m.CHUNK_BYTES          # 469: BitChat's default slice (512-byte MTU)
Reassembler = _m.Reassembler


def split(packet: Packet, chunk: int = CHUNK_BYTES, parity: int = 0,
          fragment_id: bytes | None = None, pad: bool = True, max_frame: int | None = None) -> list[Packet]:
    """Fragment packets (data first, then parity) carrying `packet`. With `max_frame`, the
    slice shrinks where needed so every fragment frame (unpadded) fits it: a directed
    packet's parity fragments, or a v2 route, carry longer headers than 469 allows for."""
    fid = fragment_id if fragment_id is not None else secrets.token_bytes(8)
    out = _split(packet, chunk, parity, fid, pad)
    if max_frame is not None:
        over = max(len(f.encode(pad=False)) for f in out) - max_frame
        if over > 0:
            if chunk - over < 1:
                raise InvalidArgumentError(f"no fragment slice fits a {max_frame}-byte frame")
            out = _split(packet, chunk - over, parity, fid, pad)   # headers do not grow
    return out


def _split(packet: Packet, chunk: int, parity: int, fid: bytes, pad: bool) -> list[Packet]:
    encoded = packet.frame if packet.frame is not None else packet.encode(pad=pad)
    k = _m.fragment_count(len(encoded), chunk)
    version = 2 if packet.route else 1
    common = dict(sender=packet.sender, timestamp=packet.timestamp, ttl=packet.ttl, version=version,
                  recipient=packet.recipient, route=packet.route, rsr=packet.rsr, compress=False)
    out = [Packet(type=FRAGMENT, payload=_m.fragment_payload(encoded, fid, chunk, packet.type, i), **common)
           for i in range(k)]
    if parity:
        out += [Packet(type=FEC_PARITY, payload=p, **common)
                for p in _m.parity_payloads(encoded, fid, chunk, packet.type, parity)]
    return out
