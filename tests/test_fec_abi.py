"""The FEC section of the C ABI driven directly through cffi (ABI mode on the very library
the package loads): argument checks, and a host allocator that sees every allocation freed."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np

import pytest

cffi = pytest.importorskip("cffi")

import betanet

CDEF = """
    typedef struct betanet_fec betanet_fec_t;
    typedef void *(*betanet_alloc_fn_t)(size_t size, void *ctx);
    typedef void (*betanet_free_fn_t)(void *ptr, void *ctx);
    int betanet_init(void);
    int betanet_set_allocator(betanet_alloc_fn_t alloc, betanet_free_fn_t free_fn, void *ctx);
    size_t betanet_live_allocations(void);
    int betanet_fec_new(unsigned int k, unsigned int m, betanet_fec_t **out);
    void betanet_fec_free(betanet_fec_t *fec);
    int betanet_fec_encode(betanet_fec_t *fec, const uint8_t *const *data, uint8_t *const *parity, size_t len);
    int betanet_fec_reconstruct(betanet_fec_t *fec, uint8_t *const *shards, const uint8_t *present, size_t len);
    int betanet_fec_correct(betanet_fec_t *fec, uint8_t *const *shards, const uint8_t *present,
                            size_t len, uint8_t *corrupted, size_t *n_corrupted);
    typedef struct betanet_fec_pattern betanet_fec_pattern_t;
    int betanet_fec_pattern_new(betanet_fec_t *fec, const uint8_t *present, betanet_fec_pattern_t **out);
    void betanet_fec_pattern_free(betanet_fec_pattern_t *pattern);
    int betanet_fec_pattern_reconstruct(const betanet_fec_pattern_t *pattern, uint8_t *const *shards,
                                        size_t len);
"""


@pytest.fixture(scope="module")
def c():
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(betanet.get_library())


def test_argument_checks(c):
    ffi, lib = c
    assert lib.betanet_fec_new(3, 2, ffi.NULL) == -1
    out = ffi.new("betanet_fec_t **")
    for k, m in [(0, 2), (3, 0), (200, 56)]:
        assert lib.betanet_fec_new(k, m, out) == -1 and out[0] == ffi.NULL
    assert lib.betanet_fec_new(3, 2, out) == 0
    fec = out[0]
    bufs = [ffi.new("uint8_t[8]") for _ in range(5)]
    ptrs = ffi.new("uint8_t *[]", bufs)
    assert lib.betanet_fec_encode(ffi.NULL, ptrs, ptrs + 3, 8) == -1
    assert lib.betanet_fec_encode(fec, ffi.NULL, ptrs + 3, 8) == -1
    with_null = ffi.new("uint8_t *[]", [bufs[0], ffi.NULL, bufs[2], bufs[3], bufs[4]])
    assert lib.betanet_fec_encode(fec, with_null, ptrs + 3, 8) == -1
    assert lib.betanet_fec_reconstruct(fec, with_null, b"\x01" * 5, 8) == -1
    assert lib.betanet_fec_reconstruct(fec, ptrs, ffi.NULL, 8) == -1
    assert lib.betanet_fec_reconstruct(fec, ptrs, b"\x01\x00\x00\x00\x01", 8) == -8
    assert lib.betanet_fec_encode(fec, ptrs, ptrs + 3, 8) == 0
    # correct with present == NULL, corrupted/n_corrupted optional
    bufs[1][5] ^= 0x40
    bad = ffi.new("uint8_t[2]")
    nbad = ffi.new("size_t *")
    assert lib.betanet_fec_correct(fec, ptrs, ffi.NULL, 8, bad, nbad) == 0
    assert nbad[0] == 1 and bad[0] == 1
    bufs[4][0] ^= 1
    assert lib.betanet_fec_correct(fec, ptrs, ffi.NULL, 8, ffi.NULL, ffi.NULL) == 0
    lib.betanet_fec_free(fec)
    lib.betanet_fec_free(ffi.NULL)


ALLOCATOR_SCRIPT = textwrap.dedent("""
    import cffi, betanet, numpy as np
    ffi = cffi.FFI()
    ffi.cdef('''%s
        void *malloc(size_t); void free(void *);''')
    lib = ffi.dlopen(betanet.get_library())
    libc = ffi.dlopen(None)
    live, counts = set(), {"alloc": 0, "free": 0}

    @ffi.callback("void *(size_t, void *)")
    def host_alloc(size, ctx):
        p = libc.malloc(size)
        live.add(int(ffi.cast("uintptr_t", p)))
        counts["alloc"] += 1
        return p

    @ffi.callback("void (void *, void *)")
    def host_free(p, ctx):
        addr = int(ffi.cast("uintptr_t", p))
        assert addr in live, "freed a block the host did not allocate"
        live.remove(addr)
        counts["free"] += 1
        libc.free(p)

    assert lib.betanet_live_allocations() == 0
    assert lib.betanet_set_allocator(host_alloc, host_free, ffi.NULL) == 0
    from betanet.fec import ReedSolomon
    rng = np.random.default_rng(1)
    for k, m in [(3, 2), (10, 4), (20, 20)]:
        rs = ReedSolomon(k, m)
        data = rng.integers(0, 256, (k, 500), dtype=np.uint8)
        full = np.vstack([data, rs.encode(data)])
        for pattern in range(20):                 # more patterns than the cache holds
            work = full.copy()
            missing = rng.choice(k + m, m, replace=False)
            work[missing] = 0
            rs.reconstruct(work, [i not in missing for i in range(k + m)])
            assert np.array_equal(work, full)
        work[: m // 2] ^= 0x33
        assert rs.correct(work).corrupted == list(range(m // 2))
        assert lib.betanet_set_allocator(ffi.NULL, ffi.NULL, ffi.NULL) == -10   # handle alive
        del rs
    # a resolved pattern is the host's allocation too, and outlives its codec
    fec, pat = ffi.new("betanet_fec_t **"), ffi.new("betanet_fec_pattern_t **")
    assert lib.betanet_fec_new(4, 2, fec) == 0
    assert lib.betanet_fec_pattern_new(fec[0], b"\\x00\\x01\\x01\\x01\\x01\\x00", pat) == 0
    lib.betanet_fec_free(fec[0])
    assert lib.betanet_set_allocator(ffi.NULL, ffi.NULL, ffi.NULL) == -10   # pattern alive
    lib.betanet_fec_pattern_free(pat[0])
    assert counts["alloc"] > 20 and counts["alloc"] == counts["free"] and not live, counts
    assert lib.betanet_live_allocations() == 0
    assert lib.betanet_set_allocator(ffi.NULL, ffi.NULL, ffi.NULL) == 0
    print("allocations", counts["alloc"])
""") % CDEF


def test_host_allocator_sees_every_allocation_freed():
    # A fresh process: the allocator must be installed before the library allocates.
    proc = subprocess.run([sys.executable, "-c", ALLOCATOR_SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "allocations" in proc.stdout


# ---- resolved erasure patterns (betanet_fec_pattern_*) ------------------------------------
def _codeword(ffi, lib, fec, k, m, length, rng):
    """Random data and its parity through the C API: (numpy n x length, keep-alive buffers)."""
    full = np.zeros((k + m, length), dtype=np.uint8)
    full[:k] = rng.integers(0, 256, (k, length), dtype=np.uint8)
    bufs = [ffi.from_buffer(row) for row in full]
    ptrs = ffi.new("uint8_t *[]", [ffi.cast("uint8_t *", b) for b in bufs])
    assert lib.betanet_fec_encode(fec, ptrs, ptrs + k, length) == 0
    return full


def _pointers(ffi, work):
    return ffi.new("uint8_t *[]", [ffi.cast("uint8_t *", ffi.from_buffer(row)) for row in work])


def test_pattern_argument_checks(c):
    ffi, lib = c
    fec = ffi.new("betanet_fec_t **")
    assert lib.betanet_fec_new(3, 2, fec) == 0
    pat = ffi.new("betanet_fec_pattern_t **")
    present = b"\x01\x00\x01\x01\x00"
    for args in [(ffi.NULL, present, pat), (fec[0], ffi.NULL, pat)]:
        pat[0] = ffi.cast("betanet_fec_pattern_t *", 1)
        assert lib.betanet_fec_pattern_new(*args) == -1 and pat[0] == ffi.NULL
    assert lib.betanet_fec_pattern_new(fec[0], present, ffi.NULL) == -1
    assert lib.betanet_fec_pattern_new(fec[0], b"\x01\x00\x00\x01\x00", pat) == -8   # 2 < k
    assert pat[0] == ffi.NULL
    assert lib.betanet_fec_pattern_new(fec[0], present, pat) == 0
    bufs = [ffi.new("uint8_t[8]") for _ in range(5)]
    ptrs = ffi.new("uint8_t *[]", bufs)
    assert lib.betanet_fec_pattern_reconstruct(ffi.NULL, ptrs, 8) == -1
    assert lib.betanet_fec_pattern_reconstruct(pat[0], ffi.NULL, 8) == -1
    for hole in (0, 1, 4):                  # a shard read, and the two written
        with_null = ffi.new("uint8_t *[]", [ffi.NULL if i == hole else bufs[i] for i in range(5)])
        assert lib.betanet_fec_pattern_reconstruct(pat[0], with_null, 8) == -1
    assert lib.betanet_fec_pattern_reconstruct(pat[0], ptrs, 8) == 0
    lib.betanet_fec_pattern_free(pat[0])
    lib.betanet_fec_pattern_free(ffi.NULL)
    # a present shard beyond the first k is never read: its pointer may be NULL
    assert lib.betanet_fec_pattern_new(fec[0], b"\x01\x01\x01\x01\x00", pat) == 0
    with_null = ffi.new("uint8_t *[]", [bufs[0], bufs[1], bufs[2], ffi.NULL, bufs[4]])
    assert lib.betanet_fec_pattern_reconstruct(pat[0], with_null, 8) == 0
    lib.betanet_fec_pattern_free(pat[0])
    # nothing missing: a valid pattern that writes nothing, whatever the length
    assert lib.betanet_fec_pattern_new(fec[0], b"\x01" * 5, pat) == 0
    assert lib.betanet_fec_pattern_reconstruct(pat[0], ptrs, 2**64 - 1) == 0
    lib.betanet_fec_pattern_free(pat[0])
    lib.betanet_fec_free(fec[0])


def test_pattern_rebuilds_what_reconstruct_does_on_every_kernel(c):
    # One pattern, made under the best kernel, applied under each kernel the CPU has (its
    # tables are all filled up front), and after its codec is freed.
    from betanet._native import core
    from test_fec import ALL, available_kernels
    ffi, lib = c
    rng = np.random.default_rng(5)
    kernels = available_kernels()
    try:
        for k, m, length in [(1, 1, 7), (3, 2, 100), (10, 4, 1000), (16, 8, 244), (20, 20, 333)]:
            n = k + m
            fec = ffi.new("betanet_fec_t **")
            assert lib.betanet_fec_new(k, m, fec) == 0
            full = _codeword(ffi, lib, fec[0], k, m, length, rng)
            patterns = []
            for _ in range(6):
                lost = set(rng.choice(n, int(rng.integers(1, m + 1)), replace=False).tolist())
                present = bytes(i not in lost for i in range(n))
                pat = ffi.new("betanet_fec_pattern_t **")
                core.cpu_restrict(ALL)
                assert lib.betanet_fec_pattern_new(fec[0], present, pat) == 0
                work = full.copy()
                work[sorted(lost)] = 0x5A
                assert lib.betanet_fec_reconstruct(fec[0], _pointers(ffi, work), present, length) == 0
                assert np.array_equal(work, full)
                patterns.append((lost, pat))
            lib.betanet_fec_free(fec[0])
            for lost, pat in patterns:
                for name, mask in kernels.items():
                    core.cpu_restrict(mask)
                    work = full.copy()
                    work[sorted(lost)] = 0xA5
                    assert lib.betanet_fec_pattern_reconstruct(pat[0], _pointers(ffi, work), length) == 0
                    assert np.array_equal(work, full), (k, m, sorted(lost), name)
                lib.betanet_fec_pattern_free(pat[0])
    finally:
        core.cpu_restrict(ALL)


def test_pattern_shared_by_threads(c):
    # The pattern is only read in use: four threads rebuild their own shards with one.
    ffi, lib = c
    k, m, length = 10, 4, 3000
    fec = ffi.new("betanet_fec_t **")
    assert lib.betanet_fec_new(k, m, fec) == 0
    full = _codeword(ffi, lib, fec[0], k, m, length, np.random.default_rng(8))
    present = bytes(i not in (0, 3, 11, 12) for i in range(k + m))
    pat = ffi.new("betanet_fec_pattern_t **")
    assert lib.betanet_fec_pattern_new(fec[0], present, pat) == 0
    lib.betanet_fec_free(fec[0])
    failures = []

    def worker():
        work = full.copy()
        ptrs = _pointers(ffi, work)
        for i in range(300):
            work[[0, 3, 11, 12]] = i & 0xFF
            if lib.betanet_fec_pattern_reconstruct(pat[0], ptrs, length) != 0 or not np.array_equal(work, full):
                failures.append(i)
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lib.betanet_fec_pattern_free(pat[0])
    assert not failures
