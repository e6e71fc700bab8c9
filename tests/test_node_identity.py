"""betanet.node identity, peer records and the sealed message: vectors, an independent
opener written from docs/node.md, and every bad input (forged/replayed records, a message
sealed to someone else, tampering, oversized chunking)."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from betanet.errors import (AuthenticationError, InvalidArgumentError, LimitExceededError,
                            MalformedError, ReplayError)
from betanet.node.envelope import ACK, DATA, Assembler, frames_for, open_sealed, recipient_of, seal
from betanet.node.identity import Identity, parse_peer_id, peer_id_text
from betanet.node.peers import PeerBook, PeerRecord

import node_make_vectors

VEC = json.loads((Path(__file__).parent / "vectors" / "node_envelope.json").read_text())


def _ident(hexstr: str) -> Identity:
    return Identity.from_bytes(bytes.fromhex(hexstr))


def test_vectors_reproduce_byte_for_byte():
    assert node_make_vectors.vectors() == VEC


def test_peer_id_is_the_sha256_multihash_in_base58btc():
    a = VEC["alice"]
    pub = bytes.fromhex(a["ed25519_public"])
    assert bytes.fromhex(a["peer_id"]) == b"\x12\x20" + hashlib.sha256(pub).digest()
    # base58btc written independently (bitcoin alphabet, big-endian integer)
    alpha = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n, s = int(a["peer_id"], 16), ""
    while n:
        n, r = divmod(n, 58)
        s = alpha[r] + s
    assert s == a["peer_id_text"] and s.startswith("Qm")
    assert parse_peer_id(s).hex() == a["peer_id"]
    assert peer_id_text(parse_peer_id(s)) == s


@pytest.mark.parametrize("bad", ["", "0OIl", "Qm" + "1" * 70, "3yZe7d", None, 5])
def test_bad_peer_id_text_is_refused(bad):
    with pytest.raises(MalformedError):
        parse_peer_id(bad)


def test_independent_opener_reads_the_vector():
    """A second implementation of docs/node.md's format, from primitives only."""
    v, bob = VEC["sealed"], _ident(VEC["bob"]["identity"])
    sealed = bytes.fromhex(v["sealed"])
    header, eph = sealed[:67], sealed[35:67]
    assert sealed[0] == 1 and sealed[1:35] == parse_peer_id(VEC["bob"]["peer_id_text"])
    shared = X25519PrivateKey.from_private_bytes(bob.exchange_private).exchange(
        X25519PublicKey.from_public_bytes(eph))
    key = HKDF(hashes.SHA256(), 32, eph + bob.exchange_public, b"betanet/node/seal/1").derive(shared)
    inner = ChaCha20Poly1305(key).decrypt(bytes(12), sealed[67:], header)
    ed, xp, mid, seq, created, expires, kind, tlen = struct.unpack_from(">32s32s16sQQQBB", inner)
    Ed25519PublicKey.from_public_bytes(ed).verify(inner[-64:], b"betanet/node/msg/1" + header + inner[:-64])
    assert ed.hex() == VEC["alice"]["ed25519_public"] and mid.hex() == v["message_id"]
    assert (seq, created, expires, kind) == (7, v["created_ms"], v["expires_ms"], DATA)
    assert inner[106:106 + tlen] == b"chat" and inner[106 + tlen:-64].hex() == v["body"]
    assert bytes.fromhex(v["frame"]) == b"\x01" + sealed


def test_seal_and_open_roundtrip():
    a, b = Identity.generate(), Identity.generate()
    s = seal(a, b.signing_public, b.exchange_public, b"x" * 1000, seq=5, topic="t", kind=ACK)
    m = open_sealed(b, s)
    assert (m.sender, m.seq, m.topic, m.kind, m.body) == (a.peer_id_text, 5, "t", ACK, b"x" * 1000)
    assert recipient_of(s) == b.peer_id_text


def test_message_sealed_to_someone_else_is_refused():
    a, b, c = Identity.generate(), Identity.generate(), Identity.generate()
    s = seal(a, b.signing_public, b.exchange_public, b"secret")
    with pytest.raises(AuthenticationError, match="another peer"):
        open_sealed(c, s)
    # the recipient id rewritten to c's: the AEAD (header is associated data) refuses it
    forged = s[:1] + c.peer_id + s[35:]
    with pytest.raises(AuthenticationError):
        open_sealed(c, forged)


def test_tampered_ciphertext_and_signature_are_refused():
    a, b = Identity.generate(), Identity.generate()
    s = bytearray(seal(a, b.signing_public, b.exchange_public, b"payload"))
    for pos in (0, 40, 70, len(s) - 20, len(s) - 1):
        t = bytearray(s)
        t[pos] ^= 1
        with pytest.raises((AuthenticationError, MalformedError)):
            open_sealed(b, bytes(t))


def test_valid_aead_but_wrong_signer_is_refused():
    """Re-encrypt a genuine inner part after swapping the claimed sender key: the AEAD
    passes, the signature does not."""
    a, b, mallory = Identity.generate(), Identity.generate(), Identity.generate()
    eph = bytes([9] * 32)
    s = seal(a, b.signing_public, b.exchange_public, b"hi", ephemeral_private=eph)
    header, ephpub = s[:67], s[35:67]
    shared = X25519PrivateKey.from_private_bytes(eph).exchange(X25519PublicKey.from_public_bytes(b.exchange_public))
    key = HKDF(hashes.SHA256(), 32, ephpub + b.exchange_public, b"betanet/node/seal/1").derive(shared)
    inner = ChaCha20Poly1305(key).decrypt(bytes(12), s[67:], header)
    inner = mallory.signing_public + inner[32:]
    with pytest.raises(AuthenticationError, match="signature"):
        open_sealed(b, header + ChaCha20Poly1305(key).encrypt(bytes(12), inner, header))


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x02" + bytes(200), bytes(30)])
def test_garbage_is_malformed(garbage):
    with pytest.raises(MalformedError):
        open_sealed(Identity.generate(), garbage)


def test_chunks_with_fec_survive_lost_chunks_and_duplicates():
    a, b = Identity.generate(), Identity.generate()
    body = os.urandom(50_000)
    s = seal(a, b.signing_public, b.exchange_public, body)
    frames = frames_for(s, 4096, parity=3)
    asm = Assembler()
    out = [asm.feed(f) for f in frames[3:] + frames[3:5]]   # 3 lost, 2 duplicated
    done = [o for o in out if o is not None]
    assert len(done) == 1 and open_sealed(b, done[0]).body == body
    assert asm.pending == 0


def test_too_many_chunks_is_a_limit_error():
    with pytest.raises(LimitExceededError):
        frames_for(bytes(300 * 256), 256, 2)


def test_assembler_is_bounded():
    asm = Assembler(max_transfers=4, max_bytes=1 << 20)
    a, b = Identity.generate(), Identity.generate()
    for _ in range(50):          # 50 transfers each missing chunks: never more than 4 held
        fr = frames_for(seal(a, b.signing_public, b.exchange_public, os.urandom(3000)), 1024, 1)
        asm.feed(fr[0])
        assert asm.pending <= 4
    assert asm.evicted >= 46
    for bad in (b"", b"\x09abc", b"\x02" + bytes(5), b"\x02" + bytes(8) + bytes([9, 1, 1]) + b"x"):
        with pytest.raises(MalformedError):
            asm.feed(bad)


# ---- identity files ----------------------------------------------------------------------
def test_identity_file_is_0600_and_round_trips(tmp_path):
    i = Identity.generate()
    p = tmp_path / "identity.key"
    i.save(p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert Identity.load(p) == i
    with pytest.raises(InvalidArgumentError, match="exists"):
        i.save(p)
    os.chmod(p, 0o644)
    with pytest.raises(InvalidArgumentError, match="chmod 600"):
        Identity.load(p)
    os.chmod(p, 0o600)
    p.write_text("zz" * 64)
    with pytest.raises(MalformedError):
        Identity.load(p)
    assert "signing_seed" not in repr(i) and i.signing_seed.hex() not in repr(i)


def test_identity_in_use_still_copies_and_pickles():
    """sign/exchange keep their key objects on the Identity (built once); a copy or a pickle
    of an Identity that has signed carries the two secrets, not those objects."""
    import copy
    import pickle
    a, b = _ident(VEC["alice"]["identity"]), Identity.generate()
    sig, shared = a.sign(b"m"), a.exchange(b.exchange_public)
    assert shared == b.exchange(a.exchange_public)
    Ed25519PublicKey.from_public_bytes(a.signing_public).verify(sig, b"m")
    for c in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert c == a and c.peer_id_text == a.peer_id_text
        assert c.sign(b"m") == sig and c.exchange(b.exchange_public) == shared


# ---- peer records ------------------------------------------------------------------------
def test_peer_record_vector_and_book():
    rec = PeerRecord.decode(bytes.fromhex(VEC["peer_record"]["raw"]))
    assert rec.peer == VEC["alice"]["peer_id_text"] and rec.htx_tcp == ("192.0.2.1:443",)
    book = PeerBook()
    book.add(rec.raw)
    assert book.get(rec.peer) == rec
    assert book.add(rec.raw) == rec          # the same record again is not a replay


def test_replayed_and_older_records_are_refused():
    a = Identity.generate()
    book = PeerBook()
    r1, r2 = PeerRecord.create(a, 1), PeerRecord.create(a, 2, htx_tcp=["h:1"])
    book.add(r2.raw)
    with pytest.raises(ReplayError):
        book.add(r1.raw)
    with pytest.raises(ReplayError):
        book.add(PeerRecord.create(a, 2, htx_tcp=["other:2"]).raw)   # same seq, other content
    assert book.get(a.peer_id_text).htx_tcp == ("h:1",)
    assert book.rejected["ReplayError"] == 2


def test_forged_records_are_refused():
    a, m = Identity.generate(), Identity.generate()
    raw = bytearray(PeerRecord.create(a, 1, htx_tcp=["10.0.0.1:443"]).raw)
    book = PeerBook()
    # endpoint rewritten by an attacker (same length): signature fails
    i = raw.find(b"10.0.0.1")
    raw[i:i + 8] = b"10.6.6.6"
    with pytest.raises(AuthenticationError):
        book.add(bytes(raw))
    # a record signed by m but claiming a's keys / peer id
    body = json.dumps({"peer": a.peer_id_text, "ed25519": a.signing_public.hex(),
                       "x25519": m.exchange_public.hex(), "seq": 9, "htx_tcp": [], "htx_quic": [],
                       "dtn_eids": [], "ble": None}).encode()
    head = b"BNPR\x01" + struct.pack(">H", len(body)) + body
    with pytest.raises(AuthenticationError):
        book.add(head + m.sign(b"betanet/node/peer-record/1" + head))
    # m's own key with a's peer id claimed
    rec_m = json.loads(PeerRecord.create(m, 1).raw[7:-64])
    rec_m["peer"] = a.peer_id_text
    body = json.dumps(rec_m).encode()
    head = b"BNPR\x01" + struct.pack(">H", len(body)) + body
    with pytest.raises(MalformedError, match="hash of its key"):
        book.add(head + m.sign(b"betanet/node/peer-record/1" + head))
    assert len(book) == 0


@pytest.mark.parametrize("raw", [b"", b"BNPR", b"XXXX\x01\x00\x02{}" + bytes(64),
                                 b"BNPR\x01\x00\x02{}" + bytes(64), b"BNPR\x01\xff\xff" + bytes(100),
                                 b"BNPR\x01" + bytes(5000)])
def test_malformed_records(raw):
    with pytest.raises(MalformedError):
        PeerRecord.decode(raw)


def test_bad_endpoint_in_record():
    with pytest.raises(MalformedError, match="host:port"):
        PeerRecord.create(Identity.generate(), 1, htx_tcp=["nohostport"])


def test_node_record_with_other_endpoints_gets_a_higher_seq(tmp_path):
    """A record naming other endpoints than the one already given out must not reuse its
    seq: peers holding the first would refuse the second as a replay."""
    from betanet.node import config as nconfig
    from betanet.node.node import Node

    class Listener:          # what record() reads of a listening link
        transport, listen, port = "htx", "127.0.0.1:0", 4001

        def advertised(self):
            return {}

    ident = Identity.generate()
    node = Node(ident, str(tmp_path / "store.db"), config=nconfig.defaults())
    link = Listener()
    node.links.append(link)
    first = node.record()
    assert node.record().raw == first.raw            # nothing changed: the same record
    link.port = 4002                                 # e.g. a listener re-bound after a restart
    second = node.record()
    assert second.seq > first.seq and list(second.htx_tcp) == ["127.0.0.1:4002"]
    book = PeerBook()
    book.add(first.raw)
    assert book.add(second.raw).seq == second.seq
