"""The SecAgg hot path in libbetanet (betanet/secagg.h) against a second implementation
(tests/fl_reference.py: OpenSSL ChaCha20 + hashlib BLAKE2b) and the committed vectors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fl_reference as ref
from betanet.errors import InvalidArgumentError, LimitExceededError, MalformedError
from betanet._native import secagg as sa

VECTORS = json.loads((Path(__file__).parent / "vectors" / "secagg.json").read_text())
SEED = bytes(range(32))
MAX = sa.MAX_WORDS


@pytest.mark.parametrize("v", VECTORS["prg"], ids=lambda v: f"p{v['purpose']}-o{v['offset']}")
def test_prg_vectors(v):
    seed = bytes.fromhex(v["seed"])
    assert sa.derive_key(seed, v["purpose"], v["round_id"]).hex() == v["key"]
    words = sa.mask_expand(len(v["words"]), seed, v["purpose"], v["round_id"], v["offset"])
    assert words.tolist() == v["words"]


def test_pair_vector_and_symmetry():
    v = VECTORS["pair"][0]
    a = sa.pair_seed(bytes.fromhex(v["sk_a"]), bytes.fromhex(v["pk_b"]))
    b = sa.pair_seed(bytes.fromhex(v["sk_b"]), bytes.fromhex(v["pk_a"]))
    assert a == b == bytes.fromhex(v["seed"])


def test_pair_seed_rejects_low_order_point():
    with pytest.raises(MalformedError):
        sa.pair_seed(SEED, bytes(32))


def test_quantize_vector():
    v = VECTORS["quantize"][0]
    q = sa.quantize(np.array(v["x"]), v["clip"], v["levels"], bytes.fromhex(v["seed"]), v["round_id"])
    assert q.tolist() == v["q"]


@pytest.mark.parametrize("n,offset", [(0, 0), (1, 0), (15, 1), (16, 16), (2047, 3), (2048, 0),
                                      (5000, 13), (70001, 2049)])
def test_expand_matches_reference(n, offset):
    got = sa.mask_expand(n, SEED, sa.PURPOSE_SELF, 42, offset)
    assert np.array_equal(got, ref.expand(SEED, 2, 42, n, offset))


def test_purposes_and_rounds_are_independent_streams():
    a = sa.mask_expand(64, SEED, sa.PURPOSE_PAIRWISE, 1)
    assert not np.array_equal(a, sa.mask_expand(64, SEED, sa.PURPOSE_SELF, 1))
    assert not np.array_equal(a, sa.mask_expand(64, SEED, sa.PURPOSE_PAIRWISE, 2))


def test_mask_add_is_modular_and_cancels():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**32, 100_003, dtype=np.uint32)
    v = x.copy()
    sa.mask_add(v, SEED, 1, 3)
    assert np.array_equal(v, x + ref.expand(SEED, 1, 3, len(x)))   # numpy uint32 wraps
    sa.mask_add(v, SEED, 1, 3, sign=-1)
    assert np.array_equal(v, x)


def test_mask_add_in_pieces_equals_whole():
    whole = np.zeros(10_000, np.uint32)
    sa.mask_add(whole, SEED, 2, 5)
    parts = np.zeros(10_000, np.uint32)
    for lo, hi in [(0, 7), (7, 2100), (2100, 2101), (2101, 10_000)]:
        piece = parts[lo:hi]          # a view: masked in place
        sa.mask_add(piece, SEED, 2, 5, offset=lo)
    assert np.array_equal(whole, parts)


def test_stream_end_is_enforced():
    last = sa.mask_expand(16, SEED, 1, 0, MAX - 16)       # the very last ChaCha20 block
    assert np.array_equal(last, ref.expand(SEED, 1, 0, 16, MAX - 16))
    with pytest.raises(LimitExceededError):
        sa.mask_expand(17, SEED, 1, 0, MAX - 16)
    with pytest.raises(LimitExceededError):
        sa.mask_add(np.zeros(1, np.uint32), SEED, 1, 0, offset=MAX)
    with pytest.raises(LimitExceededError):
        sa.mask_expand(0, SEED, 1, 0, 2**64 - 1)


def test_bad_arguments_raise_betanet_errors():
    v = np.zeros(4, np.uint32)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add(v, SEED[:31], 1, 0)
    for purpose in (0, 256):
        with pytest.raises(InvalidArgumentError):
            sa.mask_add(v, SEED, purpose, 0)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add(v, SEED, 1, 0, sign=0)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add(v.astype(np.int32), SEED, 1, 0)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add(np.zeros((2, 2), np.uint32), SEED, 1, 0)
    ro = np.zeros(4, np.uint32)
    ro.flags.writeable = False
    with pytest.raises(InvalidArgumentError):
        sa.mask_add(ro, SEED, 1, 0)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add(v, SEED, 1, -1)
    with pytest.raises(InvalidArgumentError):
        sa.vec_add(v, np.zeros(5, np.uint32))


def test_vec_add():
    a = np.array([1, 2**32 - 1, 5], np.uint32)
    b = np.array([2**32 - 1, 1, 5], np.uint32)
    sa.vec_add(a, b)
    assert a.tolist() == [0, 0, 10]
    sa.vec_add(a, b, sign=-1)
    assert a.tolist() == [1, 2**32 - 1, 5]
    sa.vec_add(a, a, sign=-1)
    assert not a.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_matches_reference_and_range(dtype):
    x = np.random.default_rng(2).normal(0, 1.5, 9_999).astype(dtype)
    q = sa.quantize(x, 1.0, 1000, SEED, 4, offset=5)
    assert np.array_equal(q, ref.quantize(x, 1.0, 1000, SEED, 4, offset=5))
    assert q.max() <= 1000 and q.min() == 0
    assert np.array_equal(sa.quantize(x, 1.0, 1000, SEED, 4, offset=5), q)   # deterministic


def test_stochastic_rounding_is_unbiased():
    # 0.3 of a level above level 500: the mean of q over independent seeds is 500.3
    x = np.full(200_000, (500.3 / 1000) * 2 - 1, dtype=np.float64)
    q = sa.quantize(x, 1.0, 1000, SEED, 0)
    assert set(np.unique(q).tolist()) == {500, 501}
    # binomial standard error sqrt(0.21 / 2e5) ~ 0.001: 5 sigma is 0.005
    assert abs(q.mean() - 500.3) < 0.005


def test_quantize_rejects_nan_and_bad_parameters():
    x = np.array([0.0, np.nan, 1.0])
    with pytest.raises(InvalidArgumentError):
        sa.quantize(x, 1.0, 10, SEED, 0)
    for clip in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(InvalidArgumentError):
            sa.quantize(np.zeros(3), clip, 10, SEED, 0)
    with pytest.raises(InvalidArgumentError):
        sa.quantize(np.zeros(3), 1.0, 0, SEED, 0)
    with pytest.raises(InvalidArgumentError):
        sa.quantize(np.zeros(3, np.int64), 1.0, 10, SEED, 0)
    # infinities are clipped, not rejected
    assert sa.quantize(np.array([-np.inf, np.inf]), 1.0, 10, SEED, 0).tolist() == [0, 10]


def test_dequantize_sum():
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-1, 1, 1000) for _ in range(50)]
    total = np.zeros(1000, np.uint32)
    for i, x in enumerate(xs):
        sa.vec_add(total, sa.quantize(x, 1.0, 2**16, SEED, i))
    approx = sa.dequantize(total, 1.0, 2**16, 50)
    # each value is off by under one step 2/2^16; the sum of 50 by under 50 steps
    assert np.max(np.abs(approx - np.sum(xs, axis=0))) < 50 * 2 / 2**16
    assert sa.dequantize(total, 1.0, 2**16, 50, np.float32).dtype == np.float32
    with pytest.raises(LimitExceededError):
        sa.dequantize(total, 1.0, 2**16, 2**16)        # 2^16 * 2^16 levels could wrap
    with pytest.raises(InvalidArgumentError):
        sa.dequantize(total, 1.0, 2**16, 0)


def test_mask_add_many_equals_one_by_one():
    rng = np.random.default_rng(4)
    seeds = [rng.bytes(32) for _ in range(70)]           # more than one group of 32 keys
    signs = [1 if i % 3 else -1 for i in range(70)]
    x = rng.integers(0, 2**32, 5003, dtype=np.uint32)
    one = x.copy()
    for s, g in zip(seeds, signs):
        sa.mask_add(one, s, 1, 9, offset=21, sign=g)
    many = x.copy()
    sa.mask_add_many(many, seeds, signs, 1, 9, offset=21)
    assert np.array_equal(one, many)
    sa.mask_add_many(many, [], [], 1, 9)                 # no masks: unchanged
    assert np.array_equal(one, many)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add_many(many, seeds[:2], [1, 0], 1, 9)
    with pytest.raises(InvalidArgumentError):
        sa.mask_add_many(many, seeds[:2], [1], 1, 9)
    with pytest.raises(LimitExceededError):
        sa.mask_add_many(many, seeds[:2], [1, 1], 1, 9, offset=MAX)
    assert np.array_equal(one, many)                     # errors leave vec unchanged


@pytest.mark.parametrize("n", [1, 255, 256, 257, 2048, 2049, 4096 + 7, 70000])
@pytest.mark.parametrize("offset", [0, 1, 16, 17, 2047, 2048 * 3, 2**36 - 70001])
def test_mask_add_equals_expand_plus_vector(n, offset):
    """mask_add's keystream (the AVX-512 16-block kernel where the CPU has it, libsodium
    otherwise) is word for word mask_expand's (always libsodium), at every alignment."""
    seed = bytes(range(32))
    base = np.random.default_rng(n + offset).integers(0, 2**32, n, dtype=np.uint32)
    ks = sa.mask_expand(n, seed, sa.PURPOSE_SELF, 3, offset=offset)
    for sign, want in ((1, base + ks), (-1, base - ks)):
        v = base.copy()
        sa.mask_add(v, seed, sa.PURPOSE_SELF, 3, offset=offset, sign=sign)
        assert np.array_equal(v, want)
        v = base.copy()
        sa.mask_add_many(v, [seed, bytes(32)], [sign, 1], sa.PURPOSE_SELF, 3, offset=offset)
        other = sa.mask_expand(n, bytes(32), sa.PURPOSE_SELF, 3, offset=offset)
        assert np.array_equal(v, want + other)
