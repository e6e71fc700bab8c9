"""Fixed test vectors for the mesh wire format (tests/vectors/mesh.json, docs/mesh.md).

`build()` derives every vector from fixed inputs; the committed JSON must match it, and
each frame must also decode with bitchat-cli's independent codec. Regenerate after a
deliberate format change with: python tests/test_mesh_vectors.py > tests/vectors/mesh.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from betanet._native import mesh as m
from betanet.mesh.announce import CAP_FEC, Announce, peer_id
from betanet.mesh.packet import Packet

FILE = Path(__file__).parent / "vectors" / "mesh.json"
SENDER = bytes.fromhex("0102030405060708")
RECIPIENT = bytes.fromhex("a1a2a3a4a5a6a7a8")
TS = 0x0000019ADA1B2C00           # 2025-12-02T00:00:00Z in ms
SEED = bytes(range(32))


def _keys():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    pk = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SEED + pk, pk


def build() -> dict:
    sk, pk = _keys()
    out: dict = {"ed25519_seed": SEED.hex(), "ed25519_public": pk.hex(), "packets": {}}
    pk_ = out["packets"]

    def add(name, p: Packet, pad=True, note=""):
        pk_[name] = {"note": note, "frame": p.encode(pad=pad).hex(), "padded": pad,
                     "signing_input": p.signing_input().hex(), "packet_id": m.packet_id(p.encode()).hex()}

    add("v1_broadcast_unpadded", Packet(type=2, sender=SENDER, payload=b"hello mesh", timestamp=TS, ttl=7), pad=False,
        note="v1 header (14 bytes), sender, payload; no optional fields")
    add("v1_broadcast_padded", Packet(type=2, sender=SENDER, payload=b"hello mesh", timestamp=TS, ttl=7),
        note="the same packet PKCS#7-padded to 256 bytes")
    add("v1_directed_signed", Packet(type=2, sender=SENDER, payload=b"signed", timestamp=TS, ttl=3,
                                     recipient=RECIPIENT).signed(sk),
        note="flags 0x03: recipient and Ed25519 signature over the signing input")
    add("v2_route_rsr", Packet(type=0x11, sender=SENDER, payload=b"routed", timestamp=TS, ttl=7, version=2,
                               recipient=RECIPIENT, route=(b"\x11" * 8, b"\x22" * 8), rsr=True),
        note="v2 header (16 bytes, u32 length), flags 0x19: recipient, route of 2 hops, RSR")
    body = b"the mesh keeps talking when the internet is gone. " * 4
    comp = Packet(type=2, sender=SENDER, payload=body, timestamp=TS, ttl=7)
    add("v1_compressed", comp, note="flags 0x04: u16 original size then raw DEFLATE (zlib level 5, wbits -15)")
    pk_["v1_compressed"]["payload"] = body.hex()
    big = Packet(type=2, sender=SENDER, payload=bytes(i % 251 for i in range(1000)), timestamp=TS, ttl=7,
                 compress=False)
    enc = big.encode()
    fid = bytes.fromhex("f0f1f2f3f4f5f6f7")
    out["fragments"] = {
        "original": enc.hex(), "fragment_id": fid.hex(), "chunk": 469,
        "data_payloads": [m.fragment_payload(enc, fid, 469, 2, i).hex() for i in range(m.fragment_count(len(enc), 469))],
        "parity_payloads": [p.hex() for p in m.parity_payloads(enc, fid, 469, 2, 2)],
    }
    noise = bytes(range(0x40, 0x60))
    ann = Announce("betanet", noise, pk, neighbors=(RECIPIENT,), capabilities=CAP_FEC | 1)
    out["announce"] = {"noise_public": noise.hex(), "tlv": ann.encode().hex(), "peer_id": peer_id(noise).hex()}
    out["padding"] = {str(n): m.padded_bytes(n) for n in (22, 240, 241, 256, 257, 496, 497, 1008, 2032, 2033)}
    return out


def test_vectors_match_file():
    assert json.loads(FILE.read_text()) == build()


def test_vectors_decode_with_bitchat_cli():
    bc = pytest.importorskip("bitchat_cli.protocol")
    data = json.loads(FILE.read_text())
    for name, v in data["packets"].items():
        got = bc.BitchatPacket.decode(bytes.fromhex(v["frame"]))
        assert got is not None, name
        ours = Packet.decode(bytes.fromhex(v["frame"]))
        assert got.payload == ours.payload, name
        # bitchat-cli never compresses and has no route/RSR fields, so its signing input
        # matches ours for uncompressed v1 packets (docs/mesh.md, "Signatures").
        if ours.version == 1 and ours._carried is None:
            assert got.data_for_signing().hex() == v["signing_input"], name
    sig = data["packets"]["v1_directed_signed"]
    Packet.decode(bytes.fromhex(sig["frame"])).verify(bytes.fromhex(data["ed25519_public"]))
    assert bc.AnnouncementPacket.decode(bytes.fromhex(data["announce"]["tlv"])).nickname == "betanet"


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=1)
    sys.stdout.write("\n")
