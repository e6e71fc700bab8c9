"""Interop with bitchat-cli (PyPI), an independent wire-compatible BitChat codec: its codec
decodes every packet kind we send, and we decode (and verify) everything it produces."""
from __future__ import annotations

import random

import pytest

bc = pytest.importorskip("bitchat_cli.protocol", reason="bitchat-cli is in the test extra")

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from betanet.mesh.announce import CAP_FEC, Announce, peer_id  # noqa: E402
from betanet.mesh.fragment import Reassembler, split  # noqa: E402
from betanet.mesh.packet import Packet  # noqa: E402

S = bytes.fromhex("0123456789abcdef")
R = bytes.fromhex("fedcba9876543210")
TS = 1_764_633_600_000


def keys(seed: int = 1):
    sk = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return sk, bytes([seed]) * 32 + pk, pk


def theirs(raw: bytes):
    got = bc.BitchatPacket.decode(raw)
    assert got is not None, "bitchat-cli could not decode our packet"
    return got


@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("recipient", [None, R, b"\xff" * 8])
def test_they_decode_our_v1(pad, recipient):
    p = Packet(type=2, sender=S, payload=b"hello mesh", timestamp=TS, ttl=7, recipient=recipient)
    raw = p.encode(pad=pad)
    got = theirs(raw)
    assert (got.type, got.sender_id, got.recipient_id, got.timestamp, got.payload, got.ttl, got.version) == \
        (2, S, recipient, TS, b"hello mesh", 7, 1)
    # and byte-for-byte the same encoding
    assert bc.BitchatPacket(type=2, sender_id=S, recipient_id=recipient, timestamp=TS,
                            payload=b"hello mesh", ttl=7).encode(padding=pad) == raw


def test_they_decode_and_verify_our_signed_packet():
    sk, sk64, pk = keys()
    p = Packet(type=2, sender=S, payload=b"signed by betanet", timestamp=TS).signed(sk64)
    got = theirs(p.encode())
    assert got.signature == p.signature
    sk.public_key().verify(got.signature, got.data_for_signing())   # raises if wrong


def test_we_verify_their_signed_packet():
    sk, _, pk = keys(2)
    pkt = bc.BitchatPacket(type=2, sender_id=S, timestamp=TS, payload=b"signed by bitchat-cli", ttl=7)
    pkt.signature = sk.sign(pkt.data_for_signing())
    ours = Packet.decode(pkt.encode())
    ours.verify(pk)
    assert ours.signing_input() == pkt.data_for_signing()


def test_they_decode_our_compressed_packet():
    body = ("the mesh keeps talking when the internet is gone. " * 20).encode()
    raw = Packet(type=2, sender=S, payload=body, timestamp=TS).encode()
    assert raw[11] & 0x04
    assert theirs(raw).payload == body


def test_they_decode_our_v2_with_route():
    hops = (b"A" * 8, b"B" * 8, b"C" * 8)
    raw = Packet(type=2, sender=S, payload=b"source routed", timestamp=TS, version=2, recipient=R,
                 route=hops).encode()
    got = theirs(raw)
    assert (got.version, got.payload, got.recipient_id) == (2, b"source routed", R)


@pytest.mark.parametrize("parity", [0, 2])
def test_they_reassemble_our_fragments(parity):
    body = random.Random(5).randbytes(2500)
    p = Packet(type=2, sender=S, payload=body, timestamp=TS)
    frags = split(p, parity=parity)
    r = bc.FragmentReassembler()
    whole = None
    for f in frags:
        got = theirs(f.encode())
        if got.type != 0x20:          # BitChat peers ignore the parity type
            continue
        whole = r.add(got) or whole
    assert bc.BitchatPacket.decode(whole).payload == body


def test_we_reassemble_fragments_cut_from_their_encoding():
    body = random.Random(6).randbytes(1800)
    raw = bc.BitchatPacket(type=2, sender_id=S, timestamp=TS, payload=body, ttl=7).encode()
    r = Reassembler()
    frags = split(Packet.decode(raw))
    out = [r.add(f.sender, Packet.decode(f.encode()).payload, 0) for f in frags]
    assert out[-1] == raw and Packet.decode(out[-1]).payload == body


@pytest.mark.parametrize("version,recipient,signed", [(1, None, False), (1, R, True), (2, None, True),
                                                       (2, R, False)])
def test_we_decode_theirs(version, recipient, signed):
    sk, _, pk = keys(3)
    pkt = bc.BitchatPacket(type=2, sender_id=S, recipient_id=recipient, timestamp=TS,
                           payload=b"from bitchat-cli", ttl=5, version=version)
    if signed:
        pkt.signature = sk.sign(pkt.data_for_signing())
    for pad in (True, False):
        ours = Packet.decode(pkt.encode(padding=pad))
        assert (ours.version, ours.recipient, ours.payload, ours.ttl, ours.timestamp) == \
            (version, recipient, b"from bitchat-cli", 5, TS)
        if signed:
            ours.verify(pk)


def test_announce_both_ways():
    _, _, spk = keys(4)
    noise = bytes(range(32))
    ours = Announce(nickname="betanet-phone", noise_key=noise, signing_key=spk,
                    neighbors=(R,), capabilities=CAP_FEC)
    got = bc.AnnouncementPacket.decode(ours.encode())
    assert (got.nickname, got.noise_public_key, got.signing_public_key) == ("betanet-phone", noise, spk)
    theirs_raw = bc.AnnouncementPacket(nickname="cli", noise_public_key=noise, signing_public_key=spk).encode()
    back = Announce.decode(theirs_raw)
    assert (back.nickname, back.noise_key, back.signing_key, back.capabilities) == ("cli", noise, spk, None)
    assert back.peer_id == peer_id(noise) and len(back.peer_id) == 8
    # announce packet as a whole, signed, through their codec
    _, sk64, _ = keys(4)
    pkt = Packet(type=1, sender=peer_id(noise), payload=ours.encode(), timestamp=TS).signed(sk64)
    got = theirs(pkt.encode())
    assert got.type == 1 and bc.AnnouncementPacket.decode(got.payload).nickname == "betanet-phone"
