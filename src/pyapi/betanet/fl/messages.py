"""Wire format of the SecAgg+ round messages (docs/fl.md, "Messages").

Every message: magic "SA", version 1, type (1 byte), round id (u64), then the body; all
integers little-endian. Decoding is strict: wrong lengths, counts or trailing bytes raise
MalformedError, an unknown version or type too.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from betanet.errors import MalformedError

__all__ = ["Setup", "Advertise", "Keys", "Shares", "Forward", "Masked", "Survivors",
           "Unmask", "Abort", "CheckList", "CheckSig", "CheckSigs", "Message", "encode", "decode", "CIPHERTEXT_BYTES",
           "KIND_SELF_SEED", "KIND_MASK_KEY"]

MAGIC = b"SA"
VERSION = 1
HEADER = struct.Struct("<2sBBQ")
CIPHERTEXT_BYTES = 33 + 33 + 16        # two Shamir shares + Poly1305 tag
KIND_SELF_SEED = 0                     # unmask: share of a survivor's self-mask seed
KIND_MASK_KEY = 1                      # unmask: share of a dropped participant's mask key
MAX_ENTRIES = 1 << 20


@dataclass(frozen=True)
class Setup:                 # coordinator -> participant: the round's parameters
    round_id: int
    threshold: int
    min_survivors: int
    dim: int
    TYPE = 1


@dataclass(frozen=True)
class Advertise:             # participant -> coordinator: its two X25519 public keys
    round_id: int
    cipher_pk: bytes         # for the share encryption keys
    mask_pk: bytes           # for the pairwise masks
    signature: bytes = bytes(64)   # Ed25519 by the participant's identity (zeros: unsigned)
    TYPE = 2


@dataclass(frozen=True)
class Keys:                  # coordinator -> participant: its neighbours' keys
    round_id: int
    neighbours: tuple[tuple[int, bytes, bytes, bytes], ...]   # (id, cipher_pk, mask_pk, signature)
    TYPE = 3


@dataclass(frozen=True)
class Shares:                # participant -> coordinator: one ciphertext per neighbour
    round_id: int
    ciphertexts: tuple[tuple[int, bytes], ...]          # (recipient id, ciphertext)
    TYPE = 4


@dataclass(frozen=True)
class Forward:               # coordinator -> participant: ciphertexts addressed to it
    round_id: int
    ciphertexts: tuple[tuple[int, bytes], ...]          # (sender id, ciphertext)
    TYPE = 5


@dataclass(frozen=True)
class Masked:                # participant -> coordinator: the masked input
    round_id: int
    vector: np.ndarray
    TYPE = 6


@dataclass(frozen=True)
class Survivors:             # coordinator -> participant: who sent a masked input
    round_id: int
    total: int                                          # |U3|
    neighbours: tuple[int, ...]                         # U3 among the recipient's neighbours
    TYPE = 7


@dataclass(frozen=True)
class Unmask:                # participant -> coordinator: the shares it agrees to reveal
    round_id: int
    shares: tuple[tuple[int, int, bytes], ...]          # (owner id, kind, share)
    TYPE = 8


@dataclass(frozen=True)
class Abort:                 # coordinator -> participant: the round is over, wipe it
    round_id: int
    reason: str
    TYPE = 9


@dataclass(frozen=True)
class CheckList:             # coordinator -> participant: all of U3, to sign (consistency check)
    round_id: int
    survivors: tuple[int, ...]
    TYPE = 10


@dataclass(frozen=True)
class CheckSig:              # participant -> coordinator: its Ed25519 signature of the list
    round_id: int
    signature: bytes
    TYPE = 11


@dataclass(frozen=True)
class CheckSigs:             # coordinator -> participant: the signatures it collected
    round_id: int
    signatures: tuple[tuple[int, bytes], ...]           # (signer id, signature)
    TYPE = 12


Message = (Setup | Advertise | Keys | Shares | Forward | Masked | Survivors | Unmask | Abort
           | CheckList | CheckSig | CheckSigs)


def _u32_count(n: int) -> bytes:
    return struct.pack("<I", n)


def encode(m: Message) -> bytes:
    head = HEADER.pack(MAGIC, VERSION, m.TYPE, m.round_id)
    if isinstance(m, Setup):
        return head + struct.pack("<IIQ", m.threshold, m.min_survivors, m.dim)
    if isinstance(m, Advertise):
        return head + m.cipher_pk + m.mask_pk + m.signature
    if isinstance(m, Keys):
        return head + _u32_count(len(m.neighbours)) + b"".join(
            struct.pack("<I", i) + c + k + sig for i, c, k, sig in m.neighbours)
    if isinstance(m, (Shares, Forward)):
        return head + _u32_count(len(m.ciphertexts)) + b"".join(
            struct.pack("<I", i) + ct for i, ct in m.ciphertexts)
    if isinstance(m, Masked):
        v = np.ascontiguousarray(m.vector, dtype="<u4")
        return head + struct.pack("<Q", v.size) + v.tobytes()
    if isinstance(m, Survivors):
        return head + struct.pack("<II", m.total, len(m.neighbours)) + b"".join(
            struct.pack("<I", i) for i in m.neighbours)
    if isinstance(m, Unmask):
        return head + _u32_count(len(m.shares)) + b"".join(
            struct.pack("<IB", i, kind) + y for i, kind, y in m.shares)
    if isinstance(m, Abort):
        return head + m.reason.encode()[:1024]
    if isinstance(m, CheckList):
        return head + _u32_count(len(m.survivors)) + b"".join(struct.pack("<I", i) for i in m.survivors)
    if isinstance(m, CheckSig):
        return head + m.signature
    if isinstance(m, CheckSigs):
        return head + _u32_count(len(m.signatures)) + b"".join(
            struct.pack("<I", i) + sig for i, sig in m.signatures)
    raise TypeError(f"not a SecAgg message: {m!r}")


def _entries(body: bytes, size: int) -> list[bytes]:
    if len(body) < 4:
        raise MalformedError("truncated count")
    (n,) = struct.unpack_from("<I", body)
    if n > MAX_ENTRIES or len(body) != 4 + n * size:
        raise MalformedError(f"{n} entries of {size} bytes do not match {len(body) - 4} bytes")
    return [body[4 + i * size: 4 + (i + 1) * size] for i in range(n)]


def decode(data: bytes) -> Message:
    data = bytes(data)
    if len(data) < HEADER.size:
        raise MalformedError("truncated SecAgg message")
    magic, version, typ, round_id = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise MalformedError("not a SecAgg v1 message")
    body = data[HEADER.size:]
    if typ == Setup.TYPE:
        if len(body) != 16:
            raise MalformedError("bad Setup length")
        return Setup(round_id, *struct.unpack("<IIQ", body))
    if typ == Advertise.TYPE:
        if len(body) != 128:
            raise MalformedError("bad Advertise length")
        return Advertise(round_id, body[:32], body[32:64], body[64:])
    if typ == Keys.TYPE:
        return Keys(round_id, tuple((struct.unpack_from("<I", e)[0], e[4:36], e[36:68], e[68:])
                                    for e in _entries(body, 132)))
    if typ in (Shares.TYPE, Forward.TYPE):
        cls = Shares if typ == Shares.TYPE else Forward
        return cls(round_id, tuple((struct.unpack_from("<I", e)[0], e[4:])
                                   for e in _entries(body, 4 + CIPHERTEXT_BYTES)))
    if typ == Masked.TYPE:
        if len(body) < 8:
            raise MalformedError("truncated Masked")
        (n,) = struct.unpack_from("<Q", body)
        if len(body) != 8 + 4 * n:
            raise MalformedError("Masked length does not match its word count")
        return Masked(round_id, np.frombuffer(body, dtype="<u4", offset=8).astype(np.uint32, copy=False))
    if typ == Survivors.TYPE:
        if len(body) < 8:
            raise MalformedError("truncated Survivors")
        total, n = struct.unpack_from("<II", body)
        if n > MAX_ENTRIES or len(body) != 8 + 4 * n:
            raise MalformedError("bad Survivors length")
        return Survivors(round_id, total, struct.unpack_from(f"<{n}I", body, 8))
    if typ == Unmask.TYPE:
        return Unmask(round_id, tuple((*struct.unpack_from("<IB", e), e[5:])
                                      for e in _entries(body, 5 + 33)))
    if typ == Abort.TYPE:
        return Abort(round_id, body.decode("utf-8", "replace"))
    if typ == CheckList.TYPE:
        return CheckList(round_id, tuple(struct.unpack("<I", e)[0] for e in _entries(body, 4)))
    if typ == CheckSig.TYPE:
        if len(body) != 64:
            raise MalformedError("bad CheckSig length")
        return CheckSig(round_id, body)
    if typ == CheckSigs.TYPE:
        return CheckSigs(round_id, tuple((struct.unpack_from("<I", e)[0], e[4:])
                                         for e in _entries(body, 4 + 64)))
    raise MalformedError(f"unknown SecAgg message type {typ}")
