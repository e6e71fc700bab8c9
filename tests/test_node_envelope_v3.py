"""Batch envelope version 3 (docs/node.md "Batch envelope"): the signature covers a SHA-256
digest of the inner part. The vector, a second opener written from the docs, tampering (any
entry, the digest, the signature, the version byte) refusing the whole batch, versions 1
and 2 still read, and which version a node sends to whom."""
from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from betanet.errors import AuthenticationError, InvalidArgumentError, MalformedError
from betanet.node import envelope as env
from betanet.node.identity import Identity
from betanet.node.sending import LONE_HASHED_MIN

from node_helpers import started_pair

VEC = json.loads((Path(__file__).parent / "vectors" / "node_envelope.json").read_text())
BOB = Identity.from_bytes(bytes.fromhex(VEC["bob"]["identity"]))


def run(coro, timeout=60):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def _key(eph_pub: bytes, shared: bytes, rcpt_x: bytes, version: int) -> bytes:
    return HKDF(hashes.SHA256(), 32, eph_pub + rcpt_x,
                b"betanet/node/seal/%d" % version).derive(shared)


def _unseal(sealed: bytes, me: Identity) -> tuple[bytes, bytes, bytes]:
    """header, AEAD key, inner (from primitives, as docs/node.md says)."""
    header, eph = sealed[:67], sealed[35:67]
    shared = X25519PrivateKey.from_private_bytes(me.exchange_private).exchange(
        X25519PublicKey.from_public_bytes(eph))
    key = _key(eph, shared, me.exchange_public, sealed[0])
    return header, key, ChaCha20Poly1305(key).decrypt(bytes(12), sealed[67:], header)


def test_version_3_vector_opens_with_the_library_as_the_version_2_one():
    v2, v3 = (bytes.fromhex(VEC[k]["sealed"]) for k in ("batch", "batch3"))
    assert v2[0] == 2 and v3[0] == 3 and env.recipient_of(v3) == VEC["bob"]["peer_id_text"]
    m2, m3 = env.open_any(BOB, v2), env.open_any(BOB, v3)
    fields = lambda ms: [(m.sender, m.message_id, m.seq, m.kind, m.topic, m.created_ms,
                          m.expires_ms, m.body) for m in ms]
    assert fields(m3) == fields(m2) and len(m3) == 3
    assert [m.body.hex() for m in m3] == [e["body"] for e in VEC["batch"]["entries"]]
    # readable from any buffer, in place
    assert fields(env.open_any(BOB, memoryview(bytearray(v3)))) == fields(m3)


def test_independent_opener_reads_the_version_3_vector():
    """From docs/node.md only: the key's info names version 3; the signature covers
    context || header || SHA-256(inner without the signature)."""
    sealed = bytes.fromhex(VEC["batch3"]["sealed"])
    header, _key3, inner = _unseal(sealed, BOB)
    ed, xp, count = struct.unpack_from(">32s32sH", inner)
    digest = hashlib.sha256(inner[:-64]).digest()
    Ed25519PublicKey.from_public_bytes(ed).verify(inner[-64:], b"betanet/node/batch/3" + header + digest)
    assert ed.hex() == VEC["alice"]["ed25519_public"] and xp.hex() == VEC["alice"]["x25519_public"]
    pos, got = 66, []
    for _ in range(count):
        mid, seq, created, expires, kind, tlen, blen = struct.unpack_from(">16sQQQBBI", inner, pos)
        pos += 46
        got.append({"message_id": mid.hex(), "seq": seq, "kind": kind,
                    "topic": inner[pos:pos + tlen].decode(), "created_ms": created,
                    "expires_ms": expires, "body": inner[pos + tlen:pos + tlen + blen].hex()})
        pos += tlen + blen
    assert pos == len(inner) - 64 and got == VEC["batch"]["entries"]
    # the same bytes as version 2 apart from version, key and what is signed
    assert len(sealed) == len(bytes.fromhex(VEC["batch"]["sealed"]))


def _reseal(a: Identity, b: Identity, inner: bytes, *, version: int = 3,
            sign: bytes | None = None) -> bytes:
    """A batch re-encrypted by someone holding its key (``sign``: what a signer signed)."""
    eph = bytes([5] * 32)
    eph_pub = X25519PrivateKey.from_private_bytes(eph).public_key().public_bytes_raw()
    header = bytes([version]) + b.peer_id + eph_pub
    if sign is not None:
        inner = inner[:-64] + a.sign(sign(header, inner[:-64]))
    shared = X25519PrivateKey.from_private_bytes(eph).exchange(
        X25519PublicKey.from_public_bytes(b.exchange_public))
    key = _key(eph_pub, shared, b.exchange_public, version)
    return header + ChaCha20Poly1305(key).encrypt(bytes(12), inner, header)


def test_tampering_refuses_the_whole_version_3_batch():
    a, b = Identity.generate(), Identity.generate()
    entries = [env.Entry(bytes([i]) * 16, b"m%d" % i * 40, i, topic="t") for i in range(5)]
    s = env.seal_batch(a, b.signing_public, b.exchange_public, entries)
    assert s[0] == 3 and [m.body for m in env.open_any(b, s)] == [e.body for e in entries]
    # on the wire: any byte (header, any entry, tag)
    for pos in list(range(0, len(s), 5)) + [len(s) - 1]:
        t = bytearray(s)
        t[pos] ^= 0x04
        with pytest.raises((AuthenticationError, MalformedError)):
            env.open_any(b, bytes(t))
    # by someone holding the AEAD key: an entry changed under the original signature
    _h, _k, inner = _unseal(s, b)
    for pos in (66 + 3, len(inner) // 2, len(inner) - 65):      # an id, a body, the last body byte
        t = bytearray(inner)
        t[pos] ^= 1
        with pytest.raises((AuthenticationError, MalformedError)):
            env.open_any(b, _reseal(a, b, bytes(t), sign=lambda h, u: b"betanet/node/batch/3" + h
                                    + hashlib.sha256(bytes(inner[:-64])).digest()))
    # the digest: a valid signature over another digest (or over the version-2 form)
    bad_digest = lambda h, u: b"betanet/node/batch/3" + h + hashlib.sha256(u + b"x").digest()
    whole = lambda h, u: b"betanet/node/batch/3" + h + u
    sha512 = lambda h, u: b"betanet/node/batch/3" + h + hashlib.sha512(u).digest()
    for sign in (bad_digest, whole, sha512):
        with pytest.raises(AuthenticationError, match="signature"):
            env.open_any(b, _reseal(a, b, inner, sign=sign))
    # the signature itself
    t = bytearray(inner)
    t[-1] ^= 0x80
    with pytest.raises(AuthenticationError, match="signature"):
        env.open_any(b, _reseal(a, b, bytes(t)))
    # a version-3 signature passed off as version 2 (and back): contexts and keys differ
    good3 = lambda h, u: b"betanet/node/batch/3" + h + hashlib.sha256(u).digest()
    assert len(env.open_any(b, _reseal(a, b, inner, sign=good3))) == 5     # the control
    with pytest.raises(AuthenticationError, match="signature"):
        env.open_any(b, _reseal(a, b, inner, version=2, sign=good3))
    # another signer under the original signature
    m = Identity.generate()
    with pytest.raises(AuthenticationError, match="signature"):
        env.open_any(b, _reseal(a, b, m.signing_public + inner[32:]))


def test_batch_versions_and_arguments():
    a, b = Identity.generate(), Identity.generate()
    e = [env.Entry(bytes(16), b"x" * 5000)]
    s2 = env.seal_batch(a, b.signing_public, b.exchange_public, e, version=2)
    s3 = env.seal_batch(a, b.signing_public, b.exchange_public, e)
    assert (s2[0], s3[0], len(s2)) == (2, 3, len(s3))
    assert env.open_any(b, s2)[0].body == env.open_any(b, s3)[0].body == b"x" * 5000
    for v in (1, 4, 0):
        with pytest.raises(InvalidArgumentError, match="version"):
            env.seal_batch(a, b.signing_public, b.exchange_public, e, version=v)
    t = bytearray(s3)
    t[0] = 4
    with pytest.raises(MalformedError):
        env.open_any(b, bytes(t))
    with pytest.raises(MalformedError):
        env.open_sealed(b, s3)                   # the version-1 opener does not take a batch


def _frames_seen(node) -> list[int]:
    """Sealed-envelope versions arriving at ``node`` (whole frames)."""
    link, seen = node.links[0], []
    real = link.on_frame

    async def spy(frame):
        if frame[:1] == b"\x01":
            seen.append(frame[1])
        return await real(frame)
    link.on_frame = spy
    return seen


def test_a_node_sends_version_3_lone_large_messages_as_batches_and_small_ones_in_version_1(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        seen = _frames_seen(d)
        await (await a.send(d.me, b"small")).acked(20)
        await (await a.send(d.me, b"L" * LONE_HASHED_MIN)).acked(20)
        hs = await a.send_many(d.me, [b"b%d" % i for i in range(5)])
        await asyncio.gather(*(h.acked(20) for h in hs))
        assert seen[0] == 1 and seen[1] == 3 and 3 in seen[2:] and 2 not in seen
        await a.stop()
        await d.stop()
    run(go())


def test_a_peer_that_sends_version_2_gets_version_2(tmp_path):
    """An older node reads version 2 and not 3 (its hop refuses a version-3 frame as
    malformed); once it sent us a version-2 batch, our batches and batched
    acknowledgments to it are version 2, and everything arrives once."""
    async def go():
        a, d = await started_pair(tmp_path)
        link = d.links[0]
        real, seen = link.on_frame, []

        async def older(frame):
            if frame[:2] == b"\x01\x03":
                return False
            seen.append(frame[1])
            return await real(frame)
        link.on_frame = older
        d._v2_peers.pop(a.me, None)
        d_batch_version = d._batch_version
        d._batch_version = lambda dest: 2                  # d sends as the older node did
        hs = await d.send_many(a.me, [b"old %d" % i for i in range(6)])
        await asyncio.gather(*(h.acked(20) for h in hs))
        assert a._v2_peers.get(d.me) == 2
        hs = await a.send_many(d.me, [b"new %d" % i for i in range(6)])
        await asyncio.gather(*(h.acked(20) for h in hs))
        assert 2 in seen and 3 not in seen
        d._batch_version = d_batch_version
        await a.stop()
        await d.stop()
    run(go())
