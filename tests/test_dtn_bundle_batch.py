"""Bundle.parse_many: many bundles decoded in one call into a lazy BundleBatch; every
accessor agrees with Bundle.parse, failures are per bundle, buffers stay alive."""
from __future__ import annotations

import gc
import os
import random

import pytest

from betanet.dtn.bundle import Bundle, BundleBatch, CanonicalBlock, CRCType, Limits
from betanet.errors import LimitExceededError, MalformedError


def sample(rng: random.Random, i: int) -> bytes:
    extra = [CanonicalBlock(190 + k, 2 + k, os.urandom(rng.randrange(0, 20)))
             for k in range(rng.choice((0, 1, 3, 12)))]  # 12: more than the inline 8 blocks
    return Bundle.build(rng.choice(["ipn:2.0", "dtn://dst/inbox", "dtn://x/~y"]), f"ipn:{i}.1",
                        os.urandom(rng.randrange(0, 3000)), creation_ms=rng.randrange(1, 1 << 40),
                        sequence=i, crc_type=rng.choice(list(CRCType)),
                        payload_crc=rng.choice(list(CRCType)), extra_blocks=extra).to_bytes()


def test_batch_agrees_with_single_parse():
    rng = random.Random(3)
    data = [sample(rng, i) for i in range(300)]
    batch = Bundle.parse_many(data)
    assert isinstance(batch, BundleBatch) and len(batch) == 300 and batch.failed == 0
    payloads = batch.payloads()
    for i, d in enumerate(data):
        one = Bundle.parse(d)
        assert bytes(payloads[i]) == bytes(batch.payload(i)) == bytes(one.payload)
        assert batch.destination(i) == one.primary.destination
        assert batch.source(i) == one.primary.source
        whole = batch[i]
        assert whole.primary == one.primary and whole.to_bytes() == d
        assert whole.bundle_id == one.bundle_id and len(whole.blocks) == len(one.blocks)
    assert [b.to_bytes() for b in batch] == data
    assert batch.errors() == []


def test_failures_are_per_bundle_with_the_single_parse_error():
    rng = random.Random(4)
    good = [sample(rng, i) for i in range(5)]
    corrupt = bytearray(Bundle.build("ipn:2.0", "ipn:1.0", b"p" * 100, creation_ms=5,
                                     payload_crc=CRCType.CRC32C).to_bytes())
    corrupt[-20] ^= 0xFF  # a payload byte under the payload block's CRC-32C
    bad = [b"junk", bytes(corrupt), good[2][:-5], good[0] + b"\x00"]
    batch = Bundle.parse_many([good[0], *bad, good[3]])
    assert batch.failed == 4 and batch.ok(0) and batch.ok(5)
    for k, b in enumerate(bad, start=1):
        with pytest.raises(Exception) as single:
            Bundle.parse(b)
        err = batch.error(k)
        assert type(err) is type(single.value) and err.detail == single.value.detail
        assert not batch.ok(k)
        with pytest.raises(type(err)):
            batch.payload(k)
        with pytest.raises(type(err)):
            batch[k]
    assert [i for i, _ in batch.errors()] == [1, 2, 3, 4]
    p = batch.payloads()
    assert p[1:5] == [None] * 4 and bytes(p[5]) == bytes(Bundle.parse(good[3]).payload)
    assert [b.to_bytes() for b in batch] == [good[0], good[3]]


def test_limits_strict_buffers_and_indexing():
    rng = random.Random(5)
    d = sample(rng, 1)
    batch = Bundle.parse_many([d], limits=Limits(max_bytes=len(d) - 1))
    assert isinstance(batch.error(0), LimitExceededError)
    assert isinstance(Bundle.parse_many([b"\x9f\xff"]).error(0), MalformedError)
    mixed = Bundle.parse_many([bytearray(d), memoryview(d), d])  # any byte buffer
    assert len({bytes(mixed.payload(i)) for i in range(3)}) == 1
    assert bytes(mixed.payload(-1)) == bytes(mixed.payload(0))
    with pytest.raises(IndexError):
        mixed.payload(3)
    assert len(Bundle.parse_many([])) == 0 and Bundle.parse_many([]).payloads() == []


def test_views_outlive_the_callers_list():
    rng = random.Random(6)
    data = [sample(rng, i) for i in range(50)]
    expect = [bytes(Bundle.parse(d).payload) for d in data]
    batch = Bundle.parse_many(iter(data))  # any iterable
    del data
    gc.collect()
    assert [bytes(p) for p in batch.payloads()] == expect
    one = batch[7]
    del batch
    gc.collect()
    assert bytes(one.payload) == expect[7]
