"""Reed-Solomon FEC (betanet.fec, include/betanet/fec.h): the code against reedsolo itself,
every kernel against the scalar path, erasure and error correction to the bound and past
it, framing, bad input, leaks."""
from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import reedsolo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import betanet
from betanet._native import core
from betanet.errors import InvalidArgumentError, MalformedError, UncorrectableError
from betanet.fec import Corrected, ReedSolomon, ShardTypeError, kernel

VECTORS = Path(__file__).parent / "vectors" / "fec.json"
ALL = 0xFFFFFFFF
# CPU restriction masks for every kernel this machine has, scalar first.
KERNEL_MASKS = {"scalar": 0, "ssse3": core.CPU_FLAGS["ssse3"],
                "avx2": core.CPU_FLAGS["ssse3"] | core.CPU_FLAGS["avx2"],
                "gfni-avx2": core.CPU_FLAGS["ssse3"] | core.CPU_FLAGS["avx2"] | core.CPU_FLAGS["gfni"],
                "gfni-avx512": ALL}


def available_kernels() -> dict[str, int]:
    out = {}
    for name, mask in KERNEL_MASKS.items():
        core.cpu_restrict(mask)
        if kernel() == name:
            out[name] = mask
    core.cpu_restrict(ALL)
    return out


KERNELS = available_kernels()


@pytest.fixture
def restore_cpu():
    yield
    core.cpu_restrict(ALL)


def rsc(m: int) -> reedsolo.RSCodec:
    return reedsolo.RSCodec(nsym=m, nsize=255, fcr=0, prim=0x11D, generator=2, c_exp=8)


def random_shards(rng, k, m, length):
    data = rng.integers(0, 256, (k, length), dtype=np.uint8)
    rs = ReedSolomon(k, m)
    return rs, np.vstack([data, rs.encode(data)])


# ---- the code is reedsolo's -------------------------------------------------------------
@pytest.mark.parametrize("k,m", [(1, 1), (3, 2), (10, 4), (16, 8), (32, 32), (1, 254), (254, 1), (200, 55)])
def test_parity_is_reedsolo_ecc(k, m):
    rng = np.random.default_rng(k * 1000 + m)
    length = 40
    rs, full = random_shards(rng, k, m, length)
    codec = rsc(m)
    for x in range(length):
        word = codec.encode(bytes(full[:k, x]))
        assert bytes(word[k:]) == full[k:, x].tobytes(), f"column {x}"


def test_reedsolo_decodes_our_corrections():
    # a column corrupted by us, corrected by reedsolo, matches our correct()
    rng = np.random.default_rng(7)
    rs, full = random_shards(rng, 6, 4, 32)
    bad = full.copy()
    bad[[1, 8]] ^= rng.integers(1, 256, (2, 32), dtype=np.uint8)
    fixed = rs.correct(bad.copy()).shards
    for x in range(32):
        msg, _, _ = rsc(4).decode(bytearray(bad[:, x].tobytes()))
        assert bytes(msg) == fixed[:6, x].tobytes()


def test_vectors():
    vectors = json.loads(VECTORS.read_text())
    assert vectors["code"]["prim"] == 0x11D and vectors["code"]["fcr"] == 0
    for v in vectors["encode"]:
        rs = ReedSolomon(v["k"], v["m"])
        data = [bytes.fromhex(h) for h in v["data"]]
        assert [bytes(p).hex() for p in rs.encode(data)] == v["parity"]
        # and reedsolo agrees, column by column
        for x in range(len(data[0])):
            word = rsc(v["m"]).encode(bytes(d[x] for d in data))
            assert bytes(word[v["k"]:]) == bytes(bytes.fromhex(p)[x] for p in v["parity"])
    for v in vectors["split"]:
        rs = ReedSolomon(v["k"], v["m"])
        message = bytes.fromhex(v["message"])
        assert [s.hex() for s in rs.split(message)] == v["shards"]
        assert rs.join([bytes.fromhex(s) for s in v["shards"]]) == message


# ---- every kernel equals the scalar path ------------------------------------------------------
# 127..257, 4095: around the AVX-512 kernel's 128- and 256-byte steps (whole-step tails, masked short regions)
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 200, 244, 255, 256, 257, 1000,
                                    4095, 4096, 4097, 70000])
def test_kernels_agree(length, restore_cpu):
    rng = np.random.default_rng(length)
    for k, m in [(1, 2), (5, 3), (10, 4), (12, 12), (20, 9)]:
        data = rng.integers(0, 256, (k, length), dtype=np.uint8)
        rs = ReedSolomon(k, m)
        results = {}
        for name, mask in KERNELS.items():
            core.cpu_restrict(mask)
            assert kernel() == name
            parity = rs.encode(data)
            full = np.vstack([data, parity])
            lost = full.copy()
            missing = set(rng.choice(k + m, m, replace=False).tolist())
            lost[sorted(missing)] = 0xEE
            rs.reconstruct(lost, [i not in missing for i in range(k + m)])
            assert np.array_equal(lost, full), name
            results[name] = parity
        first = next(iter(results.values()))
        for name, parity in results.items():
            assert np.array_equal(parity, first), f"{name} differs from scalar at k={k} m={m}"
    assert "scalar" in KERNELS


def test_every_coefficient_on_every_kernel(restore_cpu):
    # The kernels' product tables are computed per coefficient (fec_simd.h), not looked up:
    # an encoding matrix holding all 255 non-zero coefficients, applied to shards that each
    # hold every byte value, must give the scalar path's parity on every kernel.
    k, m = 200, 55
    rs = ReedSolomon(k, m)
    matrix = rs.encode(np.eye(k, dtype=np.uint8))      # column x of the parity = P[:, x]
    assert set(np.unique(matrix).tolist()) >= set(range(1, 256))
    rng = np.random.default_rng(11)
    data = np.stack([rng.permutation(256).astype(np.uint8) for _ in range(k)])
    data = np.hstack([data, data[:, :77]])             # 333 bytes: whole steps and a tail
    results = {}
    for name, mask in KERNELS.items():
        core.cpu_restrict(mask)
        assert kernel() == name
        results[name] = rs.encode(data)
    for name, parity in results.items():
        assert np.array_equal(parity, results["scalar"]), name


@pytest.mark.parametrize("name", list(KERNELS))
def test_correct_on_every_kernel(name, restore_cpu):
    core.cpu_restrict(KERNELS[name])
    rng = np.random.default_rng(3)
    for length in (1, 100, 5000):
        rs, full = random_shards(rng, 10, 6, length)
        bad = full.copy()
        bad[[0, 4, 12]] ^= rng.integers(1, 256, (3, length), dtype=np.uint8)
        result = rs.correct(bad)
        assert result.corrupted == [0, 4, 12] and np.array_equal(bad, full)


def test_kernel_names():
    assert kernel() in ("gfni-avx512", "gfni-avx2", "avx2", "ssse3", "scalar")
    feats = betanet.cpu_features()
    if {"avx512", "gfni"} <= set(feats):
        assert kernel() == "gfni-avx512"


# ---- erasures: every pattern for small codes ---------------------------------------------------
@pytest.mark.parametrize("k,m", [(1, 1), (2, 3), (3, 2), (4, 4), (5, 3)])
def test_every_erasure_pattern(k, m):
    rng = np.random.default_rng(k + 10 * m)
    rs, full = random_shards(rng, k, m, 37)
    n = k + m
    for r in range(n + 1):
        for missing in itertools.combinations(range(n), r):
            work = full.copy()
            work[list(missing)] = 0
            present = [i not in missing for i in range(n)]
            if r <= m:
                rs.reconstruct(work, present)
                assert np.array_equal(work, full), missing
                shards = [None if i in missing else full[i].tobytes() for i in range(n)]
                assert [bytes(s) for s in rs.reconstruct(shards)] == [r_.tobytes() for r_ in full]
            else:
                before = work.copy()
                with pytest.raises(UncorrectableError):
                    rs.reconstruct(work, present)
                assert np.array_equal(work, before), "modified on failure"


def test_decoding_matrix_cache_many_patterns():
    # more patterns than the cache holds (16): eviction must keep results right and leak nothing
    start = core.live_allocations()
    rng = np.random.default_rng(11)
    rs, full = random_shards(rng, 6, 4, 50)
    for _ in range(3):
        for missing in itertools.combinations(range(10), 4):
            work = full.copy()
            work[list(missing)] = 0
            rs.reconstruct(work, [i not in missing for i in range(10)])
            assert np.array_equal(work, full)
    del rs
    assert core.live_allocations() == start


# ---- correct(): errors + erasures up to the bound and past it -------------------------------------
@pytest.mark.parametrize("k,m", [(3, 2), (4, 4), (5, 5), (8, 6)])
def test_correct_every_pattern_within_bound(k, m):
    rng = np.random.default_rng(100 + k * m)
    n = k + m
    rs, full = random_shards(rng, k, m, 48)
    for v in range(m + 1):
        for e in range((m - v) // 2 + 1):
            for trial in range(6):
                idx = rng.permutation(n)
                erased, corrupt = sorted(idx[:v].tolist()), sorted(idx[v:v + e].tolist())
                work = full.copy()
                work[erased] = 0
                for c in corrupt:
                    # corrupt a random subset of columns (at least one)
                    cols = rng.random(48) < rng.uniform(0.05, 1.0)
                    cols[rng.integers(48)] = True
                    work[c, cols] ^= rng.integers(1, 256, int(cols.sum()), dtype=np.uint8)
                present = [i not in erased for i in range(n)]
                result = rs.correct(work, present)
                assert result.corrupted == corrupt, (erased, corrupt)
                assert np.array_equal(work, full), (erased, corrupt)


@pytest.mark.parametrize("k,m", [(3, 2), (4, 4), (6, 5), (10, 4), (16, 8)])
def test_correct_beyond_bound_says_uncorrectable(k, m):
    rng = np.random.default_rng(200 + k * m)
    n = k + m
    rs, full = random_shards(rng, k, m, 64)
    cases = 0
    for v in range(m):          # v == m leaves no redundancy: no decoder can see corruption
        for e in range(1, n - v + 1):
            if 2 * e + v <= m:
                continue
            for _ in range(3):
                idx = rng.permutation(n)
                erased, corrupt = idx[:v].tolist(), idx[v:v + e].tolist()
                work = full.copy()
                work[erased] = 0
                work[corrupt] ^= rng.integers(1, 256, (e, 64), dtype=np.uint8)
                before = work.copy()
                with pytest.raises(UncorrectableError):
                    rs.correct(work, [i not in erased for i in range(n)])
                assert np.array_equal(work, before), "modified on failure"
                cases += 1
    assert cases > 0


def test_correct_clean_and_erasure_only():
    rng = np.random.default_rng(5)
    rs, full = random_shards(rng, 7, 3, 100)
    work = full.copy()
    assert rs.correct(work) == Corrected(work, [])
    work[[0, 8, 9]] = 1
    assert rs.correct(work, [i not in (0, 8, 9) for i in range(10)]).corrupted == []
    assert np.array_equal(work, full)


def test_correct_sequence_input_untouched():
    rng = np.random.default_rng(6)
    rs, full = random_shards(rng, 4, 4, 30)
    shards = [row.tobytes() for row in full]
    shards[2] = bytes(30)           # corrupted
    shards[5] = None                # missing
    given_ = list(shards)
    result = rs.correct(shards)
    assert result.corrupted == [2]
    assert [bytes(s) for s in result.shards] == [r.tobytes() for r in full]
    assert shards == given_


# ---- hypothesis -------------------------------------------------------------------------------------
codes = st.tuples(st.integers(1, 12), st.integers(1, 8))


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(code=codes, length=st.integers(0, 300), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_property_correct_within_bound(code, length, seed, data):
    k, m = code
    n = k + m
    rng = np.random.default_rng(seed)
    rs, full = random_shards(rng, k, m, length)
    v = data.draw(st.integers(0, m))
    e = data.draw(st.integers(0, (m - v) // 2))
    idx = rng.permutation(n)
    erased, corrupt = sorted(idx[:v].tolist()), sorted(idx[v:v + e].tolist())
    work = full.copy()
    work[erased] = 0x55
    if length:
        work[corrupt] ^= rng.integers(1, 256, (e, length), dtype=np.uint8)
    result = rs.correct(work, [i not in erased for i in range(n)])
    assert np.array_equal(work, full)
    assert result.corrupted == (corrupt if length else [])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(code=codes, message=st.binary(max_size=2000), seed=st.integers(0, 2**32 - 1))
def test_property_split_join(code, message, seed):
    k, m = code
    rs = ReedSolomon(k, m)
    shards = rs.split(message)
    assert len(shards) == k + m and len({len(s) for s in shards}) == 1
    assert len(shards[0]) == rs.shard_size(len(message))
    assert rs.join(shards) == message
    rng = np.random.default_rng(seed)
    lost = list(shards)
    for i in rng.choice(k + m, m, replace=False):
        lost[i] = None
    assert rs.join(lost) == message
    if m >= 2:
        bad = list(shards)
        j = int(rng.integers(k + m))
        bad[j] = bytes(b ^ 0xA5 for b in bad[j])
        assert rs.join(bad, correct=True) == message


def test_split_framing_pinned():
    rs = ReedSolomon(3, 2)
    shards = rs.split(b"abcdefg")
    # frame = 00 00 00 07 'abcdefg' + 1 zero byte, cut into 3 shards of 4 bytes
    assert shards[:3] == [b"\x00\x00\x00\x07", b"abcd", b"efg\x00"]
    assert rs.shard_size(0) == 2 and rs.split(b"")[:3] == [b"\x00\x00", b"\x00\x00", b"\x00\x00"]


def test_join_rejects_bad_frames():
    rs = ReedSolomon(2, 1)
    shards = rs.split(b"hi")
    frame = bytearray(b"".join(shards[:2]))
    frame[3] = 200                                   # length beyond the shards
    bad = [bytes(frame[:3]), bytes(frame[3:])]
    with pytest.raises(MalformedError):
        rs.join(bad + [bytes(3)])
    pad = rs.split(b"h")
    data = bytearray(b"".join(pad[:2]))
    data[-1] = 1                                      # non-zero padding
    with pytest.raises(MalformedError):
        rs.join([bytes(data[:3]), bytes(data[3:]), pad[2]])


# ---- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,m", [(0, 1), (1, 0), (255, 1), (1, 255), (200, 56), (-1, 2), (2, -1)])
def test_bad_code_sizes(k, m):
    with pytest.raises(InvalidArgumentError):
        ReedSolomon(k, m)


@pytest.mark.parametrize("k,m", [(2.0, 1), ("2", 1), (True, 1), (None, 1)])
def test_bad_code_types(k, m):
    with pytest.raises(ShardTypeError):
        ReedSolomon(k, m)


def test_bad_shards():
    rs = ReedSolomon(3, 2)
    good = [bytes(8)] * 3
    with pytest.raises(InvalidArgumentError, match="equal length"):
        rs.encode([bytes(8), bytes(8), bytes(7)])
    with pytest.raises(InvalidArgumentError):
        rs.encode(good[:2])
    with pytest.raises(InvalidArgumentError):
        rs.encode([None, bytes(8), bytes(8)])
    for bad in (b"abc", "abc", 5, None):
        with pytest.raises(ShardTypeError):
            rs.encode(bad)
    with pytest.raises(ShardTypeError):
        rs.encode([bytes(8), 7, bytes(8)])
    with pytest.raises(ShardTypeError):
        rs.encode(np.zeros((3, 8), dtype=np.float32))
    with pytest.raises(ShardTypeError):
        rs.encode(np.zeros((3, 8, 2), dtype=np.uint8))
    with pytest.raises(ShardTypeError):
        rs.encode(np.zeros((8, 3), dtype=np.uint8).T)          # not C-contiguous
    with pytest.raises(InvalidArgumentError):
        rs.encode(np.zeros((4, 8), dtype=np.uint8))
    with pytest.raises(InvalidArgumentError):
        rs.encode(np.zeros((3, 8), dtype=np.uint8), out=np.zeros((2, 7), dtype=np.uint8))
    ro = np.zeros((2, 8), dtype=np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ShardTypeError):
        rs.encode(np.zeros((3, 8), dtype=np.uint8), out=ro)
    # wrong number of shards / flags, too few shards, unequal lengths
    with pytest.raises(InvalidArgumentError):
        rs.reconstruct([bytes(8)] * 4)
    with pytest.raises(UncorrectableError):
        rs.reconstruct([bytes(8), None, None, None, bytes(8)])
    with pytest.raises(InvalidArgumentError):
        rs.reconstruct([bytes(8), None, bytes(9), bytes(8), bytes(8)])
    arr = np.zeros((5, 8), dtype=np.uint8)
    with pytest.raises(InvalidArgumentError):
        rs.reconstruct(arr, [True] * 4)
    with pytest.raises(UncorrectableError):
        rs.correct(arr, [True, True, False, False, False])
    with pytest.raises(ShardTypeError):
        rs.split(12345)


def test_nothing_modified_on_failure():
    rng = np.random.default_rng(9)
    rs, full = random_shards(rng, 4, 2, 20)
    work = full.copy()
    work[[0, 1, 2]] ^= 0x11                           # 3 errors > bound of 1
    before = work.copy()
    with pytest.raises(UncorrectableError):
        rs.correct(work)
    assert np.array_equal(work, before)


def test_gil_released_threads_agree():
    rng = np.random.default_rng(12)
    data = rng.integers(0, 256, (10, 200_000), dtype=np.uint8)
    expected = ReedSolomon(10, 4).encode(data)
    errors = []

    def worker():
        rs = ReedSolomon(10, 4)
        for _ in range(5):
            if not np.array_equal(rs.encode(data), expected):
                errors.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_buffer_kinds():
    rs = ReedSolomon(2, 2)
    data = [b"abcd", bytearray(b"efgh")]
    expected = [bytes(p) for p in rs.encode(data)]
    assert [bytes(p) for p in rs.encode([memoryview(b"abcd"), np.frombuffer(b"efgh", dtype=np.uint8)])] == expected
    out = [bytearray(4), bytearray(4)]
    assert rs.encode(data, out=out) is out and [bytes(o) for o in out] == expected


def test_no_leaks():
    start = core.live_allocations()
    rng = np.random.default_rng(13)
    for k, m in [(3, 2), (20, 10), (100, 100)]:
        rs, full = random_shards(rng, k, m, 300)
        work = full.copy()
        work[:m // 2] ^= 1
        rs.correct(work)
        work[:m] = 0
        rs.reconstruct(work, [i >= m for i in range(k + m)])
        work[: m + 1] ^= rng.integers(1, 256, (m + 1, 300), dtype=np.uint8)
        with pytest.raises(UncorrectableError):
            rs.correct(work)
        del rs
    assert core.live_allocations() == start


def test_demo_section():
    import io

    from betanet import demo
    out = io.StringIO()
    assert demo.run(["fec"], out=out) == 0, out.getvalue()
    assert "located [2, 9]" in out.getvalue()


def test_bench_quick():
    # the benchmark must keep working (tiny sizes; peers it cannot import are skipped)
    import subprocess
    import sys
    bench = Path(__file__).resolve().parent.parent / "bench" / "fec_bench.py"
    proc = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "k=16 m=8 244 B" in proc.stdout and "correct" in proc.stdout


@pytest.mark.parametrize("name", list(KERNELS))
def test_correct_errors_in_different_columns_and_blocks(name, restore_cpu):
    # each corrupted shard is wrong in one column only, in different 2048-column blocks:
    # the locator must grow across columns and blocks and still verify everything
    core.cpu_restrict(KERNELS[name])
    rng = np.random.default_rng(21)
    rs, full = random_shards(rng, 9, 7, 6000)
    work = full.copy()
    work[[4, 15]] = 0                                  # two erasures: bound 2e + 2 <= 7 -> e <= 2
    work[1, 3] ^= 0x80
    work[12, 4500] ^= 0x01
    present = [i not in (4, 15) for i in range(16)]
    assert rs.correct(work, present).corrupted == [1, 12]
    assert np.array_equal(work, full)
    # a third one, later still, is past the bound
    work = full.copy()
    work[[4, 15]] = 0
    work[1, 3] ^= 0x80
    work[12, 4500] ^= 0x01
    work[7, 5999] ^= 0x10
    before = work.copy()
    with pytest.raises(UncorrectableError):
        rs.correct(work, present)
    assert np.array_equal(work, before)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(code=codes, length=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_property_kernels_match_scalar(code, length, seed):
    k, m = code
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (k, length), dtype=np.uint8)
    rs = ReedSolomon(k, m)
    try:
        outputs = []
        for mask in KERNELS.values():
            core.cpu_restrict(mask)
            outputs.append(rs.encode(data))
    finally:
        core.cpu_restrict(ALL)
    for out in outputs[1:]:
        assert np.array_equal(out, outputs[0])


def test_one_codec_shared_by_threads():
    # the handle's cache and scratch are state: concurrent calls on one object must serialise
    rng = np.random.default_rng(14)
    rs, full = random_shards(rng, 12, 6, 3000)
    patterns = [sorted(rng.choice(18, 6, replace=False).tolist()) for _ in range(40)]
    errors = []

    def worker(seed):
        r = np.random.default_rng(seed)
        for _ in range(60):
            if r.random() < 0.5:
                lost = patterns[int(r.integers(len(patterns)))]
                work = full.copy()
                work[lost] = 0
                rs.reconstruct(work, [i not in lost for i in range(18)])
            else:
                work = full.copy()
                work[[3, 9, 15]] ^= 0x42
                if rs.correct(work).corrupted != [3, 9, 15]:
                    errors.append("locate")
            if not np.array_equal(work, full):
                errors.append("data")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_encode_sequence_into_array():
    rs = ReedSolomon(3, 2)
    data = [b"abcd", b"efgh", b"ijkl"]
    out = np.zeros((2, 4), dtype=np.uint8)
    assert rs.encode(data, out=out) is out
    assert [r.tobytes() for r in out] == [bytes(p) for p in rs.encode(data)]


# ---- bad arguments (issue 9, defect 13): always a BetanetError, never OverflowError -----------

@pytest.mark.parametrize("k,m", [(2**32 + 2, 2), (2, 2**32 + 2), (2**31, 2**31), (-1, 3), (3, -1),
                                 (2**64, 1), (254, 2)])
def test_codec_sizes_out_of_range(k, m):
    with pytest.raises(InvalidArgumentError):
        ReedSolomon(k, m)
