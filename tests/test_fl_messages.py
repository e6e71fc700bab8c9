"""The SecAgg+ wire format: round trips, and arbitrary or mutated bytes only ever raise
betanet errors (never crash, hang or allocate what a length field claims)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betanet.errors import BetanetError, MalformedError
from betanet.fl import messages as m
from betanet.fl.graph import SecAggParams
from betanet.fl.secagg import Coordinator, Participant

CT = bytes(m.CIPHERTEXT_BYTES)
SAMPLES = [
    m.Setup(1, 3, 5, 1000),
    m.Advertise(2, b"a" * 32, b"b" * 32, b"g" * 64),
    m.Keys(3, ((4, b"c" * 32, b"d" * 32, b"s" * 64), (9, b"e" * 32, b"f" * 32, bytes(64)))),
    m.Shares(4, ((4, CT), (7, CT))),
    m.Forward(5, ((2, CT),)),
    m.Survivors(7, 12, (1, 2, 3)),
    m.Unmask(8, ((1, 0, bytes(33)), (2, 1, b"\x01" * 33))),
    m.Abort(9, "too few"),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip(msg):
    assert m.decode(m.encode(msg)) == msg


def test_masked_round_trip():
    v = np.arange(10, dtype=np.uint32) * 2**28
    out = m.decode(m.encode(m.Masked(6, v)))
    assert out.round_id == 6 and np.array_equal(out.vector, v)


def test_length_fields_are_not_trusted():
    head = m.HEADER.pack(m.MAGIC, m.VERSION, m.Masked.TYPE, 1)
    with pytest.raises(MalformedError):
        m.decode(head + (2**60).to_bytes(8, "little"))        # claims 2^60 words
    head = m.HEADER.pack(m.MAGIC, m.VERSION, m.Keys.TYPE, 1)
    with pytest.raises(MalformedError):
        m.decode(head + (2**32 - 1).to_bytes(4, "little"))
    with pytest.raises(MalformedError):
        m.decode(m.encode(SAMPLES[0])[:-1])
    with pytest.raises(MalformedError):
        m.decode(m.encode(SAMPLES[0]) + b"\0")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_malformed(data):
    try:
        m.decode(data)
    except MalformedError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.integers(0, 400), st.integers(0, 255), st.integers(0, 3))
def test_mutated_messages_only_raise_betanet_errors(msg, pos, byte, cut):
    raw = bytearray(m.encode(msg))
    raw[pos % len(raw)] = byte
    raw = bytes(raw[: len(raw) - cut])
    coord = Coordinator(msg.round_id, [1, 2, 3], SecAggParams(2, 2, 2, 1000))
    part = Participant(1, msg.round_id, np.zeros(1000, np.uint32))
    for feed in (lambda: coord.receive(1, raw, 0.0), lambda: part.receive(raw, 0.0)):
        try:
            feed()
        except BetanetError:
            pass
