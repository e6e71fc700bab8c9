"""The end-to-end message: sealed to the recipient, signed by the sender, chunked with FEC.

A relay, mesh hop, mixnode or DTN custodian sees only the recipient's PeerID (needed to
forward) and an ephemeral key; everything else is sealed. Pinned bytes (docs/node.md
"Message format", vectors in tests/vectors/node_envelope.json)::

    sealed  = version:u8 (1) | recipient PeerID (34) | ephemeral X25519 public (32)
              | ChaCha20-Poly1305(key, nonce = 12 zero bytes, ad = those 67 bytes)(inner) | tag (16)
    key     = HKDF-SHA256(ikm = X25519(ephemeral, recipient static), salt = ephemeral public
              || recipient static public, info = "betanet/node/seal/1", L = 32)   (one-time key)
    inner   = sender Ed25519 public (32) | sender X25519 public (32) | message id (16)
              | seq:u64 | created_ms:u64 | expires_ms:u64 | kind:u8 | topic_len:u8 | topic
              | body | signature (64)
    signature = Ed25519(sender, "betanet/node/msg/1" || the 67 outer header bytes || inner
              without the signature)

The signature covers the recipient and the ephemeral key, so a recipient cannot re-seal a
signed message to a third party as if it came from the sender. ``kind`` 1 is data, 2 an
end-to-end acknowledgment (body = the acknowledged message id).

Batch envelope (version 2): many messages from one sender to one recipient under one
seal and one signature (docs/node.md "Batch envelope")::

    sealed2 = version:u8 (2) | recipient PeerID (34) | ephemeral X25519 public (32)
              | ChaCha20-Poly1305(key, nonce = 12 zero bytes, ad = those 67 bytes)(inner2) | tag (16)
    key     = as above with info = "betanet/node/seal/2"
    inner2  = sender Ed25519 public (32) | sender X25519 public (32) | count:u16 | entry * count
              | signature (64)
    entry   = message id (16) | seq:u64 | created_ms:u64 | expires_ms:u64 | kind:u8
              | topic_len:u8 | body_len:u32 | topic | body
    signature = Ed25519(sender, "betanet/node/batch/2" || the 67 outer header bytes
              || inner2 without the signature)

Batch envelope version 3 (what senders emit): the bytes of version 2 with ``3`` as the
version, ``info = "betanet/node/seal/3"``, and the signature over a SHA-256 digest of the
inner part instead of the whole of it, so each side hashes the batch once with SHA-256
(Ed25519 hashes what it signs with SHA-512 twice when signing, once when verifying)::

    signature = Ed25519(sender, "betanet/node/batch/3" || the 67 outer header bytes
              || SHA-256(inner3 without the signature))

Each entry keeps its own id, seq and deadline (dedup, order, acknowledgment per message).
An ACK entry's body is one or more acknowledged message ids (16 bytes each). Any change to
any entry fails the AEAD (or the signature): the whole batch is refused, nothing of it is
taken, and the sender sends it again. Version-1 and version-2 envelopes stay readable.

Node frames, the unit the links carry::

    0x01 | sealed                                         (fits one chunk)
    0x02 | transfer id (8) | index:u8 | k:u8 | m:u8 | shard    (Reed-Solomon(k, m) shards of
                                                               the sealed bytes, betanet.fec
                                                               split/join framing)
"""
from __future__ import annotations

import hashlib
import math
import secrets
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.exceptions import InvalidTag

from betanet.errors import (AuthenticationError, InvalidArgumentError, LimitExceededError,
                            MalformedError)
from betanet.fec import MAX_SHARDS, ReedSolomon, data_shards, unframe
from betanet.node.identity import PEER_ID_BYTES, Identity, peer_id_of, peer_id_text, verify

__all__ = ["Message", "Entry", "seal", "seal_batch", "open_sealed", "open_any", "recipient_of",
           "frames_for", "Assembler", "DATA", "ACK", "VERSION", "BATCH_VERSION", "BATCH_VERSIONS",
           "HASHED_BATCH_VERSION", "OVERHEAD",
           "BATCH_OVERHEAD", "ENTRY_OVERHEAD", "MAX_BATCH"]

VERSION, BATCH_VERSION, HASHED_BATCH_VERSION = 1, 2, 3
#: Batch envelope versions read; senders emit the last (signature over a SHA-256 digest).
BATCH_VERSIONS = (BATCH_VERSION, HASHED_BATCH_VERSION)
DATA, ACK = 1, 2
SEAL_INFO = b"betanet/node/seal/1"
SIG_CONTEXT = b"betanet/node/msg/1"
# per batch version: the key's HKDF info and the signature's context
_BATCH_INFO = {2: b"betanet/node/seal/2", 3: b"betanet/node/seal/3"}
_BATCH_CONTEXT = {2: b"betanet/node/batch/2", 3: b"betanet/node/batch/3"}
_OUTER = 1 + PEER_ID_BYTES + 32
_INNER = struct.Struct(">32s32s16sQQQBB")
_BATCH = struct.Struct(">32s32sH")
_ENTRY = struct.Struct(">16sQQQBBI")
#: Bytes a sealed message adds to its body (topic excluded): header, inner fields, tag, signature.
OVERHEAD = _OUTER + _INNER.size + 16 + 64
#: A batch envelope's fixed bytes, and what each entry adds to its body (topic excluded).
BATCH_OVERHEAD = _OUTER + _BATCH.size + 16 + 64
ENTRY_OVERHEAD = _ENTRY.size
MAX_BATCH = 0xFFFF
FRAME_WHOLE, FRAME_CHUNK = 1, 2
_CHUNK = struct.Struct(">B8sBBB")
#: A node whose peer record lists this takes chunks with m = 0 (the data shards alone):
#: senders give it no parity chunk over reliable links that lose nothing (routing._frames).
#: Earlier nodes refuse m = 0.
FEATURE_CHUNKS_M0 = "chunks-m0"


@dataclass(frozen=True)
class Message:
    """An opened message: who sent it (verified), what, and its ordering fields."""
    sender: str               # PeerID text of the signing key
    sender_signing: bytes
    sender_exchange: bytes
    message_id: bytes
    seq: int
    created_ms: int
    expires_ms: int
    kind: int
    topic: str
    body: bytes


@dataclass(frozen=True)
class Entry:
    """One message of a batch, as the sender gives it to :func:`seal_batch`."""
    message_id: bytes
    body: bytes
    seq: int = 0
    kind: int = DATA
    topic: str = ""
    created_ms: int = 0
    expires_ms: int = 0


def _key(shared: bytes, eph_pub: bytes, rcpt_pub: bytes, info: bytes = SEAL_INFO) -> bytes:
    if shared == bytes(32):
        raise AuthenticationError("sealed message: low-order ephemeral key")
    return HKDF(hashes.SHA256(), 32, eph_pub + rcpt_pub, info).derive(shared)


def seal(sender: Identity, recipient_signing: bytes, recipient_exchange: bytes, body: bytes, *,
         message_id: bytes | None = None, seq: int = 0, kind: int = DATA, topic: str = "",
         created_ms: int | None = None, expires_ms: int = 0,
         ephemeral_private: bytes | None = None) -> bytes:
    """Seal ``body`` to the recipient (its Ed25519 key names it, its X25519 key seals)."""
    t = topic.encode()
    if len(t) > 255:
        raise InvalidArgumentError(f"topic is {len(t)} bytes; at most 255")
    if kind not in (DATA, ACK):
        raise InvalidArgumentError(f"message kind must be DATA or ACK, not {kind!r}")
    mid = secrets.token_bytes(16) if message_id is None else bytes(message_id)
    if len(mid) != 16:
        raise InvalidArgumentError("message id is 16 bytes")
    eph = X25519PrivateKey.from_private_bytes(ephemeral_private or secrets.token_bytes(32))
    from betanet.node.identity import _raw
    eph_pub = _raw(eph.public_key())
    header = bytes([VERSION]) + peer_id_of(recipient_signing) + eph_pub
    created = int(time.time() * 1000) if created_ms is None else created_ms
    inner = _INNER.pack(sender.signing_public, sender.exchange_public, mid, seq, created,
                        expires_ms, kind, len(t)) + t + bytes(body)
    inner += sender.sign(SIG_CONTEXT + header + inner)
    key = _key(eph.exchange(X25519PublicKey.from_public_bytes(recipient_exchange)), eph_pub,
               recipient_exchange)
    return header + ChaCha20Poly1305(key).encrypt(bytes(12), inner, header)


def seal_batch(sender: Identity, recipient_signing: bytes, recipient_exchange: bytes,
               entries: list[Entry], *, ephemeral_private: bytes | None = None,
               version: int = HASHED_BATCH_VERSION) -> bytes:
    """Seal several messages to one recipient: one X25519, one signature (version 3, or
    ``version=2`` for a peer that reads only that)."""
    if version not in BATCH_VERSIONS:
        raise InvalidArgumentError(f"batch envelope version is 2 or 3, not {version!r}")
    if not 1 <= len(entries) <= MAX_BATCH:
        raise InvalidArgumentError(f"a batch holds 1 to {MAX_BATCH} messages, not {len(entries)}")
    parts = [_BATCH.pack(sender.signing_public, sender.exchange_public, len(entries))]
    for e in entries:
        t = e.topic.encode()
        if len(t) > 255:
            raise InvalidArgumentError(f"topic is {len(t)} bytes; at most 255")
        if e.kind not in (DATA, ACK):
            raise InvalidArgumentError(f"message kind must be DATA or ACK, not {e.kind!r}")
        if len(e.message_id) != 16:
            raise InvalidArgumentError("message id is 16 bytes")
        parts += (_ENTRY.pack(e.message_id, e.seq, e.created_ms, e.expires_ms, e.kind, len(t),
                              len(e.body)), t, e.body)
    eph = X25519PrivateKey.from_private_bytes(ephemeral_private or secrets.token_bytes(32))
    from betanet.node.identity import _raw
    eph_pub = _raw(eph.public_key())
    header = bytes([version]) + peer_id_of(recipient_signing) + eph_pub
    # one copy of the bodies (the join, with room for the signature, written in place)
    inner = bytearray().join((*parts, bytes(64)))
    with memoryview(inner) as mv:
        inner[-64:] = sender.sign(_batch_signed(version, header, mv[:-64]))
    key = _key(eph.exchange(X25519PublicKey.from_public_bytes(recipient_exchange)), eph_pub,
               recipient_exchange, _BATCH_INFO[version])
    return header + ChaCha20Poly1305(key).encrypt(bytes(12), inner, header)


def _batch_signed(version: int, header: bytes, unsigned) -> bytes:
    """What a batch's signature covers: the whole inner part (version 2) or its SHA-256
    digest (version 3), after the context and the outer header."""
    if version == BATCH_VERSION:
        return _BATCH_CONTEXT[version] + header + bytes(unsigned)
    return _BATCH_CONTEXT[version] + header + hashlib.sha256(unsigned).digest()


def recipient_of(sealed: bytes) -> str:
    """The recipient PeerID text (all a forwarder may read), of a message or a batch."""
    if len(sealed) < _OUTER + 16 or sealed[0] not in (VERSION, *BATCH_VERSIONS):
        raise MalformedError("not a version-1, -2 or -3 sealed message")
    return peer_id_text(bytes(sealed[1:1 + PEER_ID_BYTES]))


def open_any(me: Identity, sealed) -> list[Message]:
    """Open a version-1 message or a version-2/3 batch sealed to ``me`` (bytes or any
    buffer, read in place): its messages, all verified, or AuthenticationError /
    MalformedError for the whole envelope."""
    sealed = memoryview(sealed).cast("B")
    if len(sealed) and sealed[0] in BATCH_VERSIONS:
        return _open_batch(me, sealed)
    return [open_sealed(me, bytes(sealed))]


def _open_batch(me: Identity, sealed: memoryview) -> list[Message]:
    if recipient_of(sealed) != me.peer_id_text:
        raise AuthenticationError("sealed batch is addressed to another peer")
    version = sealed[0]
    header, eph_pub = bytes(sealed[:_OUTER]), bytes(sealed[1 + PEER_ID_BYTES:_OUTER])
    key = _key(me.exchange(eph_pub), eph_pub, me.exchange_public, _BATCH_INFO[version])
    try:
        inner = ChaCha20Poly1305(key).decrypt(bytes(12), sealed[_OUTER:], header)
    except InvalidTag:
        raise AuthenticationError("sealed batch does not decrypt (tampered or not for us)") from None
    if len(inner) < _BATCH.size + 64:
        raise MalformedError("sealed batch: inner part too short")
    ed, xp, count = _BATCH.unpack_from(inner)
    view = memoryview(inner)
    verify(ed, inner[-64:], _batch_signed(version, header, view[:-64]), "sealed batch")
    sender = peer_id_text(peer_id_of(ed))
    end, pos, out = len(inner) - 64, _BATCH.size, []
    for _ in range(count):
        if pos + _ENTRY.size > end:
            raise MalformedError("sealed batch: entry runs past the end")
        mid, seq, created, expires, kind, tlen, blen = _ENTRY.unpack_from(inner, pos)
        pos += _ENTRY.size
        if kind not in (DATA, ACK) or pos + tlen + blen > end:
            raise MalformedError("sealed batch: bad kind or entry length")
        try:
            topic = str(view[pos:pos + tlen], "utf-8")
        except UnicodeDecodeError:
            raise MalformedError("sealed batch: topic is not UTF-8") from None
        pos += tlen
        body = bytes(view[pos:pos + blen])
        pos += blen
        if kind == ACK and (not body or len(body) % 16):
            raise MalformedError("sealed batch: an acknowledgment holds whole 16-byte message ids")
        out.append(Message(sender, ed, xp, mid, seq, created, expires, kind, topic, body))
    if pos != end or not out:
        raise MalformedError("sealed batch: entry count does not match its length")
    return out


def open_sealed(me: Identity, sealed: bytes) -> Message:
    """Open and verify a message sealed to ``me``. A message for someone else, a tampered
    ciphertext or a bad signature raise AuthenticationError; garbage MalformedError."""
    sealed = bytes(sealed)
    if sealed[:1] != bytes([VERSION]):
        raise MalformedError("not a version-1 sealed message (open_any also reads batches)")
    if recipient_of(sealed) != me.peer_id_text:
        raise AuthenticationError("sealed message is addressed to another peer")
    header, eph_pub = sealed[:_OUTER], sealed[1 + PEER_ID_BYTES:_OUTER]
    key = _key(me.exchange(eph_pub), eph_pub, me.exchange_public)
    try:
        inner = ChaCha20Poly1305(key).decrypt(bytes(12), sealed[_OUTER:], header)
    except InvalidTag:
        raise AuthenticationError("sealed message does not decrypt (tampered or not for us)") from None
    if len(inner) < _INNER.size + 64:
        raise MalformedError("sealed message: inner part too short")
    ed, xp, mid, seq, created, expires, kind, tlen = _INNER.unpack_from(inner)
    if len(inner) < _INNER.size + tlen + 64 or kind not in (DATA, ACK):
        raise MalformedError("sealed message: bad topic length or kind")
    verify(ed, inner[-64:], SIG_CONTEXT + header + inner[:-64], "sealed message")
    try:
        topic = inner[_INNER.size:_INNER.size + tlen].decode()
    except UnicodeDecodeError:
        raise MalformedError("sealed message: topic is not UTF-8") from None
    return Message(peer_id_text(peer_id_of(ed)), ed, xp, mid, seq, created, expires, kind, topic,
                   inner[_INNER.size + tlen:-64])


def frames_for(sealed: bytes, chunk_size: int, parity: int = 0, m0_ok: bool = False) -> list[bytes]:
    """Node frames carrying ``sealed``: one whole frame when it fits ``chunk_size``, else
    Reed-Solomon shards with ``parity`` extra shards. With ``parity`` 0, no parity shard if
    the receiver takes chunks with m = 0 (``m0_ok``: FEATURE_CHUNKS_M0 in its record), else
    one (earlier receivers refuse m = 0)."""
    if len(sealed) <= chunk_size:
        return [bytes([FRAME_WHOLE]) + sealed]
    k = math.ceil((len(sealed) + 4) / chunk_size)
    m = parity if parity > 0 or m0_ok else 1
    if k + m > MAX_SHARDS:
        raise LimitExceededError(f"message of {len(sealed)} bytes needs {k} chunks of {chunk_size}; "
                                 f"at most {MAX_SHARDS - m} (raise transport.chunk_size)")
    xfer = secrets.token_bytes(8)
    shards = ReedSolomon(k, m).split(sealed) if m else data_shards(sealed, k)
    return [_CHUNK.pack(FRAME_CHUNK, xfer, i, k, m) + bytes(s) for i, s in enumerate(shards)]


class Assembler:
    """Reassembles chunked node frames; bounded in transfers and bytes, old ones evicted."""

    def __init__(self, max_transfers: int = 64, max_bytes: int = 64 << 20, timeout_s: float = 120.0,
                 clock=time.monotonic) -> None:
        self.max_transfers, self.max_bytes, self.timeout_s = max_transfers, max_bytes, timeout_s
        self._clock = clock
        self._xfers: OrderedDict[bytes, tuple[float, int, int, dict[int, bytes]]] = OrderedDict()
        self._bytes = 0
        self._done: OrderedDict[bytes, None] = OrderedDict()
        self.evicted = 0

    def feed(self, frame: bytes) -> bytes | memoryview | None:
        """A node frame in; the sealed message out once complete (MalformedError on garbage):
        of a whole frame, a read-only view into it (not a copy; ``bytes()`` it to keep it)."""
        frame = bytes(frame)
        if not frame:
            raise MalformedError("empty node frame")
        if frame[0] == FRAME_WHOLE:
            return memoryview(frame)[1:]
        if frame[0] != FRAME_CHUNK or len(frame) <= _CHUNK.size:
            raise MalformedError(f"unknown node frame type {frame[0]}")
        _, xfer, i, k, m = _CHUNK.unpack_from(frame)
        if k < 1 or k + m > MAX_SHARDS or i >= k + m:
            raise MalformedError("node chunk: bad index or shard counts")
        if xfer in self._done:
            return None
        now = self._clock()
        self._expire(now)
        shard = frame[_CHUNK.size:]
        entry = self._xfers.get(xfer)
        if entry is None:
            while len(self._xfers) >= self.max_transfers or self._bytes + len(shard) > self.max_bytes:
                if not self._xfers:
                    raise LimitExceededError("node chunk larger than the reassembly budget")
                self._drop(next(iter(self._xfers)))
                self.evicted += 1
            entry = (now, k, m, {})
            self._xfers[xfer] = entry
        _, k0, m0, shards = entry
        if (k0, m0) != (k, m) or (shards and len(next(iter(shards.values()))) != len(shard)):
            raise MalformedError("node chunk does not match its transfer")
        if i in shards:
            return None
        shards[i] = shard
        self._bytes += len(shard)
        if len(shards) < k:
            return None
        self._drop(xfer)
        self._done[xfer] = None
        if len(self._done) > 4096:
            self._done.popitem(last=False)
        try:
            if not m:                      # the data shards alone (FEATURE_CHUNKS_M0)
                return unframe(b"".join(shards[j] for j in range(k)))
            return ReedSolomon(k, m).join([shards.get(j) for j in range(k + m)])
        except Exception as e:
            raise MalformedError(f"node chunks do not reassemble: {e}") from None

    def _drop(self, xfer: bytes) -> None:
        _, _, _, shards = self._xfers.pop(xfer)
        self._bytes -= sum(len(s) for s in shards.values())

    def _expire(self, now: float) -> None:
        while self._xfers:
            xfer, (t, *_rest) = next(iter(self._xfers.items()))
            if now - t <= self.timeout_s:
                break
            self._drop(xfer)
            self.evicted += 1

    @property
    def pending(self) -> int:
        return len(self._xfers)
