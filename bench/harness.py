"""What every bench/*_bench.py shares: the command line (``--smoke``), the report header
(CPU, kernel, flags, load), timers, interleaved rounds, ratios, optional peers, libsodium.

Benchmarks here run betanet and its peers side by side in one process run, because the
machines they run on are shared and noisy: every side runs once per round, rounds
alternate the sides, and ratios taken within a round (then the median over rounds) cancel
load that drifts between rounds. Results: docs/benchmarks.md.

A benchmark imports it as ``import harness`` (Python puts the script's own directory,
bench/, first on sys.path).
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import platform
import shutil
import statistics
import time
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

T = TypeVar("T")

#: /proc/cpuinfo flags worth naming in a report (what libbetanet or libsodium can use)
CPU_FLAGS_OF_INTEREST = ("ssse3", "avx2", "avx512f", "avx512ifma", "gfni", "vaes", "sha_ni", "aes")


# ---- command line and report header ----------------------------------------------------

def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--smoke`` (alias ``--quick``, the tests' spelling)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", "--quick", dest="smoke", action="store_true",
                    help="tiny sizes and short runs: proves the benchmark works, numbers are meaningless")
    return ap


def _cpu() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "Hardware") and model in ("", platform.machine(),
                                                                          platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in CPU_FLAGS_OF_INTEREST if f in flags]


def system_report(smoke: bool = False) -> list[str]:
    """Lines saying what ran where: betanet and the CPU features it uses, the CPU, kernel,
    Python, libsodium, the load when the run started, and the mode."""
    import betanet
    model, flags = _cpu()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"betanet {betanet.__version__}  cpu features used: {', '.join(betanet.cpu_features()) or 'portable'}",
        f"cpu: {model}, {os.cpu_count()} cores, flags: {' '.join(flags) or '-'}",
        f"kernel: {platform.system()} {platform.release()} {platform.machine()}  "
        f"python {platform.python_version()}  libsodium {libsodium_version()}",
        f"load average at start: {load} (other work on the machine inflates times: compare ratios)",
    ] + (["mode: --smoke (tiny sizes; the numbers are meaningless)"] if smoke else [])


def header(title: str, smoke: bool = False) -> None:
    """Print the benchmark's title and the system report."""
    print(f"== {title} ==")
    for line in system_report(smoke):
        print(line)
    print(flush=True)


# ---- timers ------------------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of fn() takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Stopwatch:
    """Wall and CPU time of a block: ``with Stopwatch() as sw: ...``, then ``sw.wall``
    (seconds) and ``sw.cores`` (this process's CPU time / wall time: how many cores the
    block used, all threads together; below 1 when other work held the CPU)."""

    wall = cores = 0.0

    def __enter__(self) -> Stopwatch:
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t
        self.cores = (time.process_time() - self._c) / self.wall if self.wall > 0 else 0.0


def per_call(fn: Callable[[int], object], n: int) -> float:
    """Seconds per iteration of fn(n), which runs n iterations of the thing measured."""
    return timed(lambda: fn(n)) / n


def best_of(fn: Callable[[], object], reps: int) -> float:
    """The shortest of `reps` timed calls of fn()."""
    return min(timed(fn) for _ in range(reps))


def best_wall_cpu(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """The shortest wall and the shortest CPU seconds (this process, all threads) of `reps`
    calls of fn() after one warm-up call: CPU time is the fairer "per core" figure on a
    shared machine."""
    fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        with Stopwatch() as sw:
            fn()
        wall, cpu = min(wall, sw.wall), min(cpu, sw.wall * sw.cores)
    return wall, cpu


def best_batch(fn: Callable[[], object], seconds: float, *, calls: int | None = None,
               setup: Callable[[], object] | None = None) -> float:
    """Seconds per call of fn(): the best batch within a `seconds` budget, as timeit does,
    so other load biases every side alike. After one warm-up call, a batch is calibrated to
    ~1/20 of the budget unless `calls` fixes it; `setup()` runs before every batch, outside
    the timing (for operations that consume their input)."""
    if setup is not None:
        setup()
    fn()
    elapsed = None
    if calls is None:
        calls = 1
        while True:
            if setup is not None:
                setup()
            elapsed = timed(lambda: [fn() for _ in range(calls)])
            if elapsed >= seconds / 20 or calls >= 1 << 20:
                break
            calls *= 2
    best, deadline = elapsed if elapsed is not None else float("inf"), time.perf_counter() + seconds
    while True:
        if setup is not None:
            setup()
        best = min(best, timed(lambda: [fn() for _ in range(calls)]))
        if time.perf_counter() >= deadline:
            return best / calls


def window_rate(fn: Callable[[], object], seconds: float, min_calls: int) -> float:
    """Calls per second of fn() in one window of at least `seconds` and `min_calls` calls."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if n >= min_calls and elapsed >= seconds:
            return n / elapsed


def interleaved(fns: Mapping[str, Callable[[], T]], rounds: int,
                measure: Callable[[Callable[[], T]], object] = lambda fn: fn()) -> dict[str, list]:
    """measure(fn) for every fn once per round, the sides alternating within each round, for
    `rounds` rounds: {name: [one value per round]}. The default measure is the call's result."""
    out: dict[str, list] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            out[name].append(measure(fn))
    return out


# ---- statistics and ratios -------------------------------------------------------------

def median_ratio(num: Iterable[float], den: Iterable[float]) -> float:
    """Median over rounds of the within-round ratio num[i] / den[i]: robust to load that
    drifts between rounds."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank below."""
    return sorted(values)[int(q * (len(values) - 1))]


def ratio(x: float, digits: int = 1) -> str:
    """A ratio as printed in every table: ``2.4×``."""
    return f"{x:.{digits}f}×"


# ---- optional peers ----------------------------------------------------------------------

class Peers:
    """The peers a benchmark compares against: each loaded when installed, otherwise named
    as missing with the reason, so a run without them still says what it left out."""

    HINT = "`make bench` installs the peers"

    def __init__(self) -> None:
        self.found: dict[str, object] = {}
        self.missing: dict[str, str] = {}

    def load(self, name: str, loader: Callable[[], T], hint: str | None = None) -> T | None:
        """loader() -> the peer; an exception (or None) marks it missing."""
        try:
            peer = loader()
        except Exception as exc:                 # any failure to load is a missing peer
            peer, why = None, f"{type(exc).__name__}: {exc}"
        else:
            why = "not available"
        if peer is None:
            self.missing[name] = f"{why}; {hint or self.HINT}"
        else:
            self.found[name] = peer
        return peer

    def __contains__(self, name: str) -> bool:
        return name in self.found

    def __getitem__(self, name: str):
        return self.found[name]

    def report(self) -> None:
        """Print which peers run and which are missing (and why)."""
        print(f"peers: {', '.join(self.found) or 'none'}")
        for name, why in self.missing.items():
            print(f"peer missing: {name} ({why})")


# ---- native helpers ----------------------------------------------------------------------

def libsodium_path() -> str:
    """The libsodium shared library libbetanet links (the system one)."""
    return ctypes.util.find_library("sodium") or "libsodium.so.23"


_sodium: ctypes.CDLL | None = None


def libsodium() -> ctypes.CDLL:
    """libsodium through ctypes, initialised, with the prototypes the benchmarks use."""
    global _sodium
    if _sodium is None:
        lib = ctypes.CDLL(libsodium_path())
        if lib.sodium_init() < 0:
            raise RuntimeError("sodium_init failed")
        lib.sodium_version_string.restype = ctypes.c_char_p
        lib.crypto_scalarmult.argtypes = [ctypes.c_char_p] * 3
        lib.crypto_scalarmult_bytes.restype = ctypes.c_size_t
        _sodium = lib
    return _sodium


def libsodium_version() -> str:
    try:
        return libsodium().sodium_version_string().decode()
    except (OSError, RuntimeError, AttributeError):
        return "not found"


def c_compiler() -> str | None:
    """A C compiler for the small helpers some benchmarks build (None when there is none)."""
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
