"""The FEC section of the C ABI driven directly through cffi (ABI mode on the very library
the package loads): argument checks, and a host allocator that sees every allocation freed."""
from __future__ import annotations

import subprocess
import sys
import textwrap

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
