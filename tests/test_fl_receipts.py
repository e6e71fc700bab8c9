"""Signed participation and aggregate receipts: they verify, any tampering does not."""
from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet.errors import AuthenticationError, InvalidArgumentError, MalformedError
from betanet.fl.receipts import AggregateReceipt, ParticipationReceipt, digest

MODEL = digest(b"model v1")


def receipts(n=4):
    keys = [Ed25519PrivateKey.generate() for _ in range(n)]
    return [ParticipationReceipt.sign(k, 5, MODEL, digest(b"update %d" % i), 100 + i, 10**9, 42)
            for i, k in enumerate(keys)]


def test_participation_receipt_round_trip_and_tamper():
    r = receipts(1)[0]
    r.verify()
    again = ParticipationReceipt.from_bytes(r.to_bytes())
    assert again == r
    again.verify()
    for field, value in [("samples", 101), ("round_id", 6), ("update_hash", digest(b"x")),
                         ("flops", 1), ("energy_mj", 0)]:
        with pytest.raises(AuthenticationError):
            dataclasses.replace(r, **{field: value}).verify()
    raw = bytearray(r.to_bytes())
    for pos in (0, 40, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        with pytest.raises((AuthenticationError, MalformedError)):
            ParticipationReceipt.from_bytes(bytes(bad)).verify()
    with pytest.raises(MalformedError):
        ParticipationReceipt.from_bytes(raw[:-1])


def test_aggregate_receipt_verifies_against_its_participants():
    rs = receipts()
    coord = Ed25519PrivateKey.generate()
    agg = AggregateReceipt.sign(coord, 5, MODEL, digest(b"sum"), rs)
    agg.verify(rs)
    AggregateReceipt.from_bytes(agg.to_bytes()).verify(list(reversed(rs)))
    with pytest.raises(AuthenticationError):
        agg.verify(rs[:-1])                                # a participant left out
    with pytest.raises(AuthenticationError):
        agg.verify(rs[:-1] + [receipts(1)[0]])            # one swapped for a stranger
    with pytest.raises(AuthenticationError):
        dataclasses.replace(agg, aggregate_hash=digest(b"other")).verify()
    bad = bytearray(agg.to_bytes())
    bad[60] ^= 0x80
    with pytest.raises(AuthenticationError):
        AggregateReceipt.from_bytes(bytes(bad)).verify()


def test_aggregate_refuses_foreign_or_forged_receipts():
    rs = receipts(2)
    coord = Ed25519PrivateKey.generate()
    with pytest.raises(AuthenticationError):
        AggregateReceipt.sign(coord, 5, MODEL, digest(b"s"), [dataclasses.replace(rs[0], samples=9)])
    with pytest.raises(InvalidArgumentError):
        AggregateReceipt.sign(coord, 6, MODEL, digest(b"s"), rs)
