"""Signed proof of participation (docs/fl.md, "Receipts").

A participant signs (Ed25519) a receipt of the round id, the hash of the model it trained
from, the hash of the update it sent, its sample count and an energy / FLOPs estimate. The
coordinator signs an aggregate receipt over the round, the model, the aggregate's hash and
the sorted list of participant receipts (by hash) it accepted. Anyone holding the public
keys can verify both; any changed byte fails.

Encoding (all integers little-endian), signed message = label || body:
  participant: "betanet/fl/receipt/v1"   || round_id u64 || model_hash 32 || update_hash 32
               || samples u64 || flops u64 || energy_mj u64 || participant_pk 32
  aggregate:   "betanet/fl/aggregate/v1" || round_id u64 || model_hash 32 || aggregate_hash 32
               || coordinator_pk 32 || count u32 || receipt_hash 32 * count (sorted)
and the wire form is body || signature (64). receipt_hash = BLAKE2b-256(wire form).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from betanet.errors import AuthenticationError, InvalidArgumentError, MalformedError

__all__ = ["ParticipationReceipt", "AggregateReceipt", "digest"]

_P_LABEL = b"betanet/fl/receipt/v1"
_A_LABEL = b"betanet/fl/aggregate/v1"
_P_BODY = struct.Struct("<Q32s32sQQQ32s")
_A_HEAD = struct.Struct("<Q32s32s32sI")
SIG = 64


def digest(data: bytes) -> bytes:
    """BLAKE2b-256, the hash receipts use for models, updates and receipts."""
    return hashlib.blake2b(bytes(data), digest_size=32).digest()


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _verify(pk: bytes, sig: bytes, msg: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except InvalidSignature:
        raise AuthenticationError("receipt signature does not verify") from None
    except ValueError as exc:
        raise MalformedError(f"bad public key: {exc}") from None


@dataclass(frozen=True)
class ParticipationReceipt:
    round_id: int
    model_hash: bytes
    update_hash: bytes
    samples: int
    flops: int
    energy_mj: int
    participant_pk: bytes
    signature: bytes = b""

    def body(self) -> bytes:
        return _P_BODY.pack(self.round_id, self.model_hash, self.update_hash, self.samples,
                            self.flops, self.energy_mj, self.participant_pk)

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, round_id: int, model_hash: bytes, update_hash: bytes,
             samples: int, flops: int = 0, energy_mj: int = 0) -> ParticipationReceipt:
        if len(model_hash) != 32 or len(update_hash) != 32:
            raise InvalidArgumentError("hashes are 32 bytes")
        r = cls(round_id, model_hash, update_hash, samples, flops, energy_mj, _public(key))
        return cls(**{**r.__dict__, "signature": key.sign(_P_LABEL + r.body())})

    def to_bytes(self) -> bytes:
        return self.body() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> ParticipationReceipt:
        data = bytes(data)
        if len(data) != _P_BODY.size + SIG:
            raise MalformedError("participation receipt has the wrong length")
        return cls(*_P_BODY.unpack_from(data), signature=data[_P_BODY.size:])

    def verify(self) -> None:
        """Raise AuthenticationError unless the participant's key signed exactly this."""
        _verify(self.participant_pk, self.signature, _P_LABEL + self.body())

    def hash(self) -> bytes:
        return digest(self.to_bytes())


@dataclass(frozen=True)
class AggregateReceipt:
    round_id: int
    model_hash: bytes
    aggregate_hash: bytes
    coordinator_pk: bytes
    receipt_hashes: tuple[bytes, ...]
    signature: bytes = b""

    def body(self) -> bytes:
        return (_A_HEAD.pack(self.round_id, self.model_hash, self.aggregate_hash,
                             self.coordinator_pk, len(self.receipt_hashes))
                + b"".join(self.receipt_hashes))

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, round_id: int, model_hash: bytes, aggregate_hash: bytes,
             receipts: list[ParticipationReceipt]) -> AggregateReceipt:
        for r in receipts:
            r.verify()
            if r.round_id != round_id or r.model_hash != model_hash:
                raise InvalidArgumentError("a receipt belongs to another round or model")
        hashes = tuple(sorted(r.hash() for r in receipts))
        a = cls(round_id, model_hash, aggregate_hash, _public(key), hashes)
        return cls(**{**a.__dict__, "signature": key.sign(_A_LABEL + a.body())})

    def to_bytes(self) -> bytes:
        return self.body() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> AggregateReceipt:
        data = bytes(data)
        if len(data) < _A_HEAD.size + SIG:
            raise MalformedError("aggregate receipt too short")
        rid, mh, ah, pk, n = _A_HEAD.unpack_from(data)
        if len(data) != _A_HEAD.size + 32 * n + SIG:
            raise MalformedError("aggregate receipt has the wrong length")
        hashes = tuple(data[_A_HEAD.size + 32 * i: _A_HEAD.size + 32 * (i + 1)] for i in range(n))
        return cls(rid, mh, ah, pk, hashes, data[-SIG:])

    def verify(self, receipts: list[ParticipationReceipt] | None = None) -> None:
        """Check the coordinator's signature and, given the participant receipts, that they
        are exactly the listed ones and each verifies."""
        _verify(self.coordinator_pk, self.signature, _A_LABEL + self.body())
        if list(self.receipt_hashes) != sorted(self.receipt_hashes):
            raise MalformedError("receipt list is not canonical (sorted)")
        if receipts is not None:
            for r in receipts:
                r.verify()
            if tuple(sorted(r.hash() for r in receipts)) != self.receipt_hashes:
                raise AuthenticationError("participant receipts do not match the aggregate receipt")
