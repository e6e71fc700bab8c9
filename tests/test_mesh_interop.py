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


class CliNode:
    """A mesh node driven by bitchat-cli's codec: decodes, delivers public messages, and
    relays each first copy with TTL - 1 (re-encoded by bitchat-cli, as a BitChat phone does)."""

    def __init__(self, medium, sched, seed):
        from betanet.mesh.announce import peer_id as pid
        self.sk = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        self.me = pid(bytes([seed + 100]) * 32)
        self.radio = medium.add(self.me, 0, 0)
        self.sched, self.seen, self.delivered = sched, set(), []
        self.rng = random.Random(seed)
        self.radio.on_frame = self.on_frame

    def on_frame(self, frame, src):
        pkt = bc.BitchatPacket.decode(frame)
        if pkt is None:
            return
        key = (pkt.sender_id, pkt.timestamp, pkt.type, pkt.payload)
        if key in self.seen or pkt.sender_id == self.me:
            return
        self.seen.add(key)
        if pkt.type == 0x02:
            self.delivered.append(pkt.payload)
        if pkt.ttl > 1:
            pkt.ttl -= 1
            out = pkt.encode()
            self.sched.call_later(self.rng.uniform(0, 0.01), lambda: self.radio.send(out))

    def broadcast(self, body, now_ms):
        pkt = bc.BitchatPacket(type=2, sender_id=self.me, timestamp=now_ms, payload=body, ttl=7)
        pkt.signature = self.sk.sign(pkt.data_for_signing())
        self.seen.add((pkt.sender_id, pkt.timestamp, pkt.type, pkt.payload))
        self.radio.send(pkt.encode())


def test_mixed_mesh_of_betanet_and_bitchat_cli_nodes_delivers_both_ways():
    from betanet.mesh.radio import Scheduler, SimMedium
    from betanet.mesh.router import Identity, MeshRouter
    from betanet.mesh.sim import SimNode
    sched = Scheduler()
    medium = SimMedium(sched, range_m=25, rng=random.Random(2))
    rng = random.Random(4)
    ours, theirs_ = [], []
    for i in range(24):
        if i % 2:
            node = CliNode(medium, sched, i)
            theirs_.append(node)
        else:
            ident = Identity.generate(f"b{i}", rng)
            node = SimNode(MeshRouter(ident, rng=random.Random(i)), medium.add(ident.peer_id, 0, 0), sched)
            ours.append(node)
        node.radio.x, node.radio.y = (i % 6) * 15.0, (i // 6) * 15.0     # a 6 x 4 grid, 15 m apart
    for n in ours:
        for peer in n.radio.neighbours():
            n._on_neighbour(peer, True)
        n.router.announce(n.now_ms())
        n.flush()
    sched.run(until=1.0)
    ours[0].router.broadcast(b"from betanet", ours[0].now_ms())
    ours[0].flush()
    sched.run(until=3.0)
    theirs_[-1].broadcast(b"from bitchat-cli", round(sched.now * 1000))
    sched.run(until=5.0)
    assert all(b"from betanet" in t.delivered for t in theirs_)
    assert all(any(ev.packet.payload == b"from bitchat-cli" for ev, _ in n.delivered) for n in ours)
    assert all(any(ev.packet.payload == b"from betanet" for ev, _ in n.delivered) for n in ours[1:])
