#!/usr/bin/env python3
"""Reed-Solomon FEC throughput: betanet.fec side by side with its peers, in one run.

Peers (each when importable/installed): Intel ISA-L (ec_encode_data, through cffi on
Debian's libisal), zfec, reedsolo's compiled creedsolo, and pure-Python reedsolo.
Operations, in MB/s of *data* (k x shard bytes per call):

  encode       k data shards -> m parity shards
  reconstruct  the first m shards erased, rebuilt from the others, the same pattern every
               call: decoding tables cached on both sides (betanet: its pattern cache;
               ISA-L: gf_invert_matrix + ec_init_tables once, outside the timing)
  reconstruct-new  a different erasure pattern on every call (betanet's decoding-matrix
               cache misses: set-up in every call; zfec always inverts; ISA-L: see below)
  correct      floor(m/2) shards silently corrupted, located and repaired (betanet,
               creedsolo, reedsolo: per byte column; ISA-L and zfec cannot do this)

reedsolo and creedsolo work one byte column at a time; they run on a prefix of the
columns (same code path, throughput is linear in the columns) to keep the run short.

The ISA-L comparison that counts is the second table: C loops on one pinned core
(bench/fec_cbench.c, compiled here), where Python's per-call cost (~100 ns, more than a
244-byte-shard call) is out of the picture. Both libraries erase the same shards (data and
parity), rebuild all of them, with tables cached and with set-up in every call, in cache and
from DRAM (shards flushed before each call). Peers: Debian's ISA-L 2.30 (the default,
labelled so; it has no GFNI kernels) and, when `make isal-current` has built one, the
current ISA-L (>= 2.31, with GFNI) from source.

Usage: bench/fec_bench.py [--smoke] [--seconds S] [--rounds R] [--repeat N]
                          [--c-only [K,M,LEN]]
"""
from __future__ import annotations

import ctypes.util
import os
import sys

import numpy as np

import harness
from betanet.fec import ReedSolomon, kernel

CONFIGS = [  # (k, m, shard bytes, note)
    (10, 4, 64 * 1024, "64 KiB shards"),
    (16, 8, 244, "BLE-size shards, set-up included"),
    (32, 32, 4096, "4 KiB shards"),
]
QUICK_CONFIGS = [(10, 4, 1024, "quick"), (16, 8, 244, "quick"), (4, 4, 64, "quick")]
TARGETS = {  # (operation, peer) -> minimum ratio betanet / peer
    ("encode", "isal"): 1.0, ("reconstruct", "isal"): 0.8,
    ("encode", "zfec"): 20.0, ("reconstruct", "zfec"): 20.0,
    ("correct", "creedsolo"): 50.0,
}


def rate(fn, data_bytes: int, seconds: float, **batch) -> float:
    """Throughput of fn() in MB/s (10^6 bytes of data per second), from its best batch."""
    return data_bytes / harness.best_batch(fn, seconds, **batch) / 1e6


# ---- betanet ----------------------------------------------------------------------------
def bench_betanet(k, m, size, data, seconds):
    rs = ReedSolomon(k, m)
    n = k + m
    parity = np.empty((m, size), dtype=np.uint8)
    rs.encode(data, out=parity)
    full = np.vstack([data, parity])
    out = {"encode": rate(lambda: rs.encode(data, out=parity), k * size, seconds)}

    work = full.copy()
    present = [i >= m for i in range(n)]
    out["reconstruct"] = rate(lambda: rs.reconstruct(work, present), k * size, seconds)
    assert np.array_equal(work, full)

    # the same with a new erasure pattern every call: 64 patterns cycled through a
    # 16-entry cache, so every call builds its decoding matrix (the peers always do)
    rng = np.random.default_rng(2)
    erased = [set(rng.choice(n, m, replace=False).tolist()) for _ in range(64)]
    patterns = [bytes(i not in lost for i in range(n)) for lost in erased]
    turn = iter(range(1 << 62))
    out["reconstruct-new"] = rate(lambda: rs.reconstruct(work, patterns[next(turn) % 64]),
                                  k * size, seconds)
    assert np.array_equal(work, full)

    bad = list(range(1, n, max(1, n // max(1, m // 2))))[: m // 2]
    noise = np.random.default_rng(1).integers(1, 256, (len(bad), size), dtype=np.uint8)
    corrupted = full.copy()
    corrupted[bad] ^= noise
    # correct() repairs in place: a pool of corrupted copies, refilled outside the timing
    pool = np.empty((max(1, min(256, (32 << 20) // full.nbytes)),) + full.shape, dtype=np.uint8)
    slots = iter(())

    def refill():
        nonlocal slots
        pool[:] = corrupted
        slots = iter(range(len(pool)))

    def fix():
        assert rs.correct(pool[next(slots)]).corrupted == bad

    out["correct"] = rate(fix, k * size, seconds, calls=len(pool), setup=refill)
    assert np.array_equal(pool[0], full)
    return out


# ---- ISA-L through cffi --------------------------------------------------------------------
def load_isal():
    import cffi
    path = ctypes.util.find_library("isal")
    if not path:
        raise OSError("libisal not found (apt-get install libisal-dev)")
    ffi = cffi.FFI()
    ffi.cdef("""
        void gf_gen_cauchy1_matrix(unsigned char *a, int m, int k);
        int gf_invert_matrix(unsigned char *in, unsigned char *out, const int n);
        void ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls);
        void ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
                            unsigned char **data, unsigned char **coding);
    """)
    return ffi, ffi.dlopen(path)


def bench_isal(isal, k, m, size, data, seconds):
    ffi, lib = isal
    n = k + m
    a = ffi.new(f"unsigned char[{n * k}]")
    lib.gf_gen_cauchy1_matrix(a, n, k)
    tbl = ffi.new(f"unsigned char[{32 * k * m}]")
    lib.ec_init_tables(k, m, a + k * k, tbl)
    parity = np.empty((m, size), dtype=np.uint8)
    keep = [data, parity]
    dptr = ffi.new("unsigned char*[]", [ffi.from_buffer(r) for r in data])
    pptr = ffi.new("unsigned char*[]", [ffi.from_buffer(r) for r in parity])
    out = {"encode": rate(lambda: lib.ec_encode_data(size, k, m, tbl, dptr, pptr), k * size, seconds)}

    # erase the first m shards; rebuild them from shards m .. m+k-1 (set-up every call)
    full = np.vstack([data, parity])
    survivors = list(range(m, m + k))
    sptr = ffi.new("unsigned char*[]", [ffi.from_buffer(full[i]) for i in survivors])
    rec = np.zeros((m, size), dtype=np.uint8)
    rptr = ffi.new("unsigned char*[]", [ffi.from_buffer(r) for r in rec])
    b = ffi.new(f"unsigned char[{k * k}]")
    d = ffi.new(f"unsigned char[{k * k}]")
    c = ffi.new(f"unsigned char[{m * k}]")
    dtbl = ffi.new(f"unsigned char[{32 * k * m}]")
    missing = list(range(m))
    assert m <= k

    def reconstruct():
        for r, s in enumerate(survivors):
            ffi.memmove(b + r * k, a + s * k, k)
        if lib.gf_invert_matrix(b, d, k) != 0:
            raise RuntimeError("singular")
        for r, s in enumerate(missing):       # the erased shards are data (m <= k)
            ffi.memmove(c + r * k, d + s * k, k)
        lib.ec_init_tables(k, m, c, dtbl)
        lib.ec_encode_data(size, k, m, dtbl, sptr, rptr)

    reconstruct()                 # tables for this pattern built once: cached, like betanet's
    rec[:] = 0
    out["reconstruct"] = rate(lambda: lib.ec_encode_data(size, k, m, dtbl, sptr, rptr), k * size, seconds)
    # set-up in every call, on the same patterns as betanet: the C table (fec_cbench.c)
    assert np.array_equal(rec, full[:m]), "ISA-L reconstruct mismatch"
    del keep
    return out


# ---- zfec ------------------------------------------------------------------------------------
def bench_zfec(k, m, size, data, seconds):
    import zfec
    n = k + m
    enc = zfec.Encoder(k, n)
    blocks = [bytes(r) for r in data]
    ids = list(range(k, n))
    out = {"encode": rate(lambda: enc.encode(blocks, ids), k * size, seconds)}
    parity = enc.encode(blocks, ids)
    shares = blocks + list(parity)
    dec = zfec.Decoder(k, n)
    # zfec wants each present primary block at its own index, secondary ones elsewhere
    survivors = list(range(m, m + k))
    primary = [i for i in survivors if i < k]
    secondary = iter(i for i in survivors if i >= k)
    have = [i if i in primary else next(secondary) for i in range(k)]
    got = [shares[i] for i in have]
    out["reconstruct"] = rate(lambda: dec.decode(got, have), k * size, seconds)
    out["reconstruct-new"] = out["reconstruct"]   # zfec inverts its matrix on every call
    assert [bytes(x) for x in dec.decode(got, have)] == blocks
    return out


# ---- reedsolo / creedsolo (per byte column) ---------------------------------------------------
def bench_reedsolo(module, k, m, size, data, seconds, columns):
    n = k + m
    codec = module.RSCodec(nsym=m, nsize=255, fcr=0, prim=0x11D, generator=2, c_exp=8)
    cols = min(columns, size)
    msgs = [bytearray(data[:, x].tobytes()) for x in range(cols)]
    words = [bytearray(codec.encode(msg)) for msg in msgs]

    def encode():
        for msg in msgs:
            codec.encode(msg)

    out = {"encode": rate(encode, k * cols, seconds)}
    erase = list(range(m))

    def reconstruct():
        for w in words:
            codec.decode(w, erase_pos=erase)

    out["reconstruct"] = rate(reconstruct, k * cols, seconds)
    bad = list(range(1, n, max(1, n // max(1, m // 2))))[: m // 2]
    corrupted = []
    for w in words:
        c = bytearray(w)
        for b in bad:
            c[b] ^= 0x5A
        corrupted.append(c)

    def correct():
        for w in corrupted:
            codec.decode(w)

    out["correct"] = rate(correct, k * cols, seconds)
    return out


def kernel_table(seconds: float) -> None:
    """betanet's own kernels side by side (betanet_cpu_restrict), first configuration."""
    from betanet._native import core
    flags = core.CPU_FLAGS
    masks = {"scalar": 0, "ssse3": flags["ssse3"], "avx2": flags["ssse3"] | flags["avx2"],
             "gfni-avx2": flags["ssse3"] | flags["avx2"] | flags["gfni"], "gfni-avx512": 0xFFFFFFFF}
    k, m, size, _ = CONFIGS[0]
    data = np.random.default_rng(3).integers(0, 256, (k, size), dtype=np.uint8)
    print(f"\nbetanet kernels, k={k} m={m} {size} B (MB/s):")
    try:
        for name, mask in masks.items():
            core.cpu_restrict(mask)
            if kernel() != name:
                continue
            r = bench_betanet(k, m, size, data, seconds / 2)
            print(f"  {name:<12} encode {r['encode']:9.1f}  reconstruct {r['reconstruct']:9.1f}  "
                  f"correct {r['correct']:9.1f}")
    finally:
        core.cpu_restrict(0xFFFFFFFF)


# ---- C loops against ISA-L: bench/fec_cbench.c ------------------------------------------------
def isal_peers() -> list[tuple[str, list[str]]]:
    """(label, link arguments) of each ISA-L to compare with: Debian's (the default peer)
    and the one `make isal-current` built (BETANET_ISAL_DIR overrides where it is)."""
    from pathlib import Path
    peers = []
    if ctypes.util.find_library("isal"):
        peers.append(("ISA-L 2.30 (Debian, default peer)", ["-lisal"]))
    cur = Path(os.environ.get("BETANET_ISAL_DIR", Path(__file__).resolve().parent.parent / "build" / "isal-current"))
    if (cur / "lib" / "libisal.a").exists():
        version = (cur / "VERSION").read_text().strip() if (cur / "VERSION").exists() else "?"
        peers.append((f"ISA-L {version} (current, built from source)", [str(cur / "lib" / "libisal.a")]))
    return peers


def c_loops(smoke: bool, repeat: int = 1, only: str = "") -> None:
    """Run fec_cbench `repeat` times per peer (the peers alternating, so load bursts from
    other processes hit both), and report per case the median MB/s and ratio, with the
    ratio's range over the runs."""
    import statistics
    import subprocess
    import tempfile
    import betanet
    cc = harness.c_compiler()
    peers = isal_peers()
    print("\nC loops, one pinned core, betanet vs ISA-L (MB/s of data; same shards, same erasures):")
    if cc is None or not peers:
        print("  skipped: " + ("no C compiler" if cc is None else
                             "no ISA-L (`make bench-deps` installs Debian's; `make isal-current` builds the current one)"))
        return
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fec_cbench.c")
    lib = betanet.get_library()
    args = ["0.02", "1", "quick"] if smoke else ["0.3", "5", "full"]
    if only:
        args = args[:2] + ["full", only]
    runs: dict[str, list[list[str]]] = {label: [] for label, _ in peers}
    with tempfile.TemporaryDirectory() as tmp:
        exes = {}
        for i, (label, link) in enumerate(peers):
            exes[label] = os.path.join(tmp, f"fec_cbench{i}")
            subprocess.run([cc, "-O2", "-I", betanet.get_include(), src, lib, *link, "-lsodium",
                            f"-Wl,-rpath,{os.path.dirname(lib)}", "-o", exes[label]], check=True)
        for _ in range(repeat):
            for label, _ in peers:
                out = subprocess.run([exes[label], *args], check=True, capture_output=True, text=True).stdout
                runs[label].append([line for line in out.split("\n") if line.strip()])
    for label, _ in peers:
        first = runs[label][0]
        print(f"  peer: {label}; betanet kernel {first[0].split()[-1]}"
              + (f"; {repeat} runs: medians, ratio range" if repeat > 1 else ""))
        print(f"  {'config':<20} {'case':<12} {'betanet':>9} {'ISA-L':>9}  ratio")
        for row in range(1, len(first)):
            case, k, m, size = first[row].split()[:4]
            ours = [float(r[row].split()[4]) for r in runs[label]]
            theirs = [float(r[row].split()[5]) for r in runs[label]]
            ratios = [a / b for a, b in zip(ours, theirs)]
            r = statistics.median(ratios)
            spread = f" [{min(ratios):.2f}-{max(ratios):.2f}]" if repeat > 1 else ""
            print(f"  {f'k={k} m={m} {size} B':<20} {case:<12} {statistics.median(ours):9.1f} "
                  f"{statistics.median(theirs):9.1f}  {r:.2f}x{spread}"
                  f"{'' if r >= 1.0 or smoke else ' (below 1.0)'}")


def main() -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=None, help="time per measurement")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds per configuration")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the C-loop comparison (medians and ratio range are reported)")
    ap.add_argument("--c-only", default=None, metavar="K,M,LEN", nargs="?", const="",
                    help="only the C-loop comparison (optionally one configuration)")
    args = ap.parse_args()
    smoke = args.smoke
    seconds = args.seconds or (0.03 if smoke else 0.5)
    args.rounds = args.rounds or (1 if smoke else 3)
    configs = QUICK_CONFIGS if smoke else CONFIGS

    if args.c_only is not None:
        c_loops(smoke, args.repeat, args.c_only)
        return 0
    harness.header("FEC (bench/fec_bench.py)", smoke)
    peers = harness.Peers()
    peers.load("isal", load_isal, "`make bench` installs libisal-dev as root")
    for name in ("zfec", "creedsolo", "reedsolo"):
        peers.load(name, lambda name=name: __import__(name))
    print(f"betanet kernel {kernel()}")
    peers.report()
    print("MB/s of data (best batch); ratio = betanet / peer; '!' marks a missed target\n")

    rng = np.random.default_rng(42)
    peer_order = [p for p in ("isal", "zfec", "creedsolo", "reedsolo") if p in peers]
    header = f"{'config':<22} {'op':<16} {'betanet':>9} " + " ".join(f"{p:>10}" for p in peer_order)
    header += "   ratios"
    print(header)
    print("-" * len(header))
    missed = 0
    for k, m, size, note in configs:
        data = rng.integers(0, 256, (k, size), dtype=np.uint8)
        # rounds alternate betanet and the C peers, keeping each one's best, so a burst of
        # load from other processes does not land on one library only
        runs = {"betanet": lambda: bench_betanet(k, m, size, data, seconds)}
        if "isal" in peers:
            runs["isal"] = lambda: bench_isal(peers["isal"], k, m, size, data, seconds)
        if "zfec" in peers:
            runs["zfec"] = lambda: bench_zfec(k, m, size, data, seconds)
        results = {name: {op: max(r[op] for r in per_round) for op in per_round[0]}
                   for name, per_round in harness.interleaved(runs, args.rounds).items()}
        for name, cols in (("creedsolo", 4096 if not smoke else 64), ("reedsolo", 256 if not smoke else 16)):
            if name in peers:
                results[name] = bench_reedsolo(peers[name], k, m, size, data, seconds, cols)
        label = f"k={k} m={m} {size} B"
        for op in ("encode", "reconstruct", "reconstruct-new", "correct"):
            ours = results["betanet"][op]
            cells, ratios = [], []
            for p in peer_order:
                v = results.get(p, {}).get(op)
                cells.append(f"{v:10.1f}" if v else f"{'-':>10}")
                if v:
                    target = TARGETS.get((op, p))
                    applies = target is not None and (p != "isal" or (k, m, size) == configs[0][:3])
                    flag = "!" if applies and not smoke and ours / v < target else ""
                    missed += bool(flag)
                    ratios.append(f"{ours / v:.1f}x {p}{flag}")
            print(f"{label:<22} {op:<16} {ours:9.1f} " + " ".join(cells) + "   " + ", ".join(ratios))
        print(f"{'':<22} ({note})")
    c_loops(smoke, args.repeat)
    if not smoke:
        kernel_table(seconds)
    print(f"\ntargets: encode >= 1.0x and reconstruct >= 0.8x ISA-L on the first configuration; "
          f">= 20x zfec; correct >= 50x creedsolo. Missed: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
