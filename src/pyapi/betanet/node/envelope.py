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

Node frames, the unit the links carry::

    0x01 | sealed                                         (fits one chunk)
    0x02 | transfer id (8) | index:u8 | k:u8 | m:u8 | shard    (Reed-Solomon(k, m) shards of
                                                               the sealed bytes, betanet.fec
                                                               split/join framing)
"""
from __future__ import annotations

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
from betanet.fec import MAX_SHARDS, ReedSolomon
from betanet.node.identity import PEER_ID_BYTES, Identity, peer_id_of, peer_id_text, verify

__all__ = ["Message", "seal", "open_sealed", "recipient_of", "frames_for", "Assembler",
           "DATA", "ACK", "VERSION", "OVERHEAD"]

VERSION = 1
DATA, ACK = 1, 2
SEAL_INFO = b"betanet/node/seal/1"
SIG_CONTEXT = b"betanet/node/msg/1"
_OUTER = 1 + PEER_ID_BYTES + 32
_INNER = struct.Struct(">32s32s16sQQQBB")
#: Bytes a sealed message adds to its body (topic excluded): header, inner fields, tag, signature.
OVERHEAD = _OUTER + _INNER.size + 16 + 64
FRAME_WHOLE, FRAME_CHUNK = 1, 2
_CHUNK = struct.Struct(">B8sBBB")


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


def _key(shared: bytes, eph_pub: bytes, rcpt_pub: bytes) -> bytes:
    if shared == bytes(32):
        raise AuthenticationError("sealed message: low-order ephemeral key")
    return HKDF(hashes.SHA256(), 32, eph_pub + rcpt_pub, SEAL_INFO).derive(shared)


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


def recipient_of(sealed: bytes) -> str:
    """The recipient PeerID text (all a forwarder may read)."""
    if len(sealed) < _OUTER + 16 or sealed[0] != VERSION:
        raise MalformedError("not a version-1 sealed message")
    return peer_id_text(bytes(sealed[1:1 + PEER_ID_BYTES]))


def open_sealed(me: Identity, sealed: bytes) -> Message:
    """Open and verify a message sealed to ``me``. A message for someone else, a tampered
    ciphertext or a bad signature raise AuthenticationError; garbage MalformedError."""
    sealed = bytes(sealed)
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


def frames_for(sealed: bytes, chunk_size: int, parity: int = 0) -> list[bytes]:
    """Node frames carrying ``sealed``: one whole frame when it fits ``chunk_size``, else
    Reed-Solomon shards (``parity`` extra shards; at least 1 is used once chunked)."""
    if len(sealed) <= chunk_size:
        return [bytes([FRAME_WHOLE]) + sealed]
    k = math.ceil((len(sealed) + 4) / chunk_size)
    m = max(1, parity)
    if k + m > MAX_SHARDS:
        raise LimitExceededError(f"message of {len(sealed)} bytes needs {k} chunks of {chunk_size}; "
                                 f"at most {MAX_SHARDS - m} (raise transport.chunk_size)")
    xfer = secrets.token_bytes(8)
    return [_CHUNK.pack(FRAME_CHUNK, xfer, i, k, m) + bytes(s)
            for i, s in enumerate(ReedSolomon(k, m).split(sealed))]


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

    def feed(self, frame: bytes) -> bytes | None:
        """A node frame in; the sealed message out once complete (MalformedError on garbage)."""
        frame = bytes(frame)
        if not frame:
            raise MalformedError("empty node frame")
        if frame[0] == FRAME_WHOLE:
            return frame[1:]
        if frame[0] != FRAME_CHUNK or len(frame) <= _CHUNK.size:
            raise MalformedError(f"unknown node frame type {frame[0]}")
        _, xfer, i, k, m = _CHUNK.unpack_from(frame)
        if k < 1 or m < 1 or k + m > MAX_SHARDS or i >= k + m:
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
