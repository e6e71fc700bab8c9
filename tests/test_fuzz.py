"""Bounded fuzzing of every C-core parser under ASan + UBSan.

Builds libbetanet with -DBETANET_SANITIZE=ON once, links each tests/fuzz/fuzz_*.c harness
(libFuzzer API) with tests/fuzz/driver.c, and runs it on a fixed seed for a bounded number
of inputs. Any out-of-bounds access, use-after-free, leak or undefined behaviour aborts the
harness and fails the test. Longer runs: build/asan/fuzz_X -n 10000000 -s $RANDOM.
Where clang is installed, each harness also gets a short coverage-guided libFuzzer run
(test_libfuzzer_harness, below).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run

FUZZ = ROOT / "tests" / "fuzz"
HARNESSES = sorted(FUZZ.glob("fuzz_*.c"))
ITERATIONS = int(os.environ.get("BETANET_FUZZ_ITERATIONS", "20000"))
SECONDS = int(os.environ.get("BETANET_FUZZ_SECONDS", "25"))
SAN_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


@pytest.fixture(scope="session")
def asan_lib(tool_env) -> Path:
    """libbetanet built with AddressSanitizer + UndefinedBehaviorSanitizer."""
    build = ROOT / "build" / "asan"
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=tool_env["PATH"]) else []
    run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, f"-DPython_EXECUTABLE={sys.executable}",
         "-DBETANET_SANITIZE=ON", "-DBETANET_BUILD_STATIC=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
        env=tool_env)
    run(["cmake", "--build", str(build), "--target", "betanet"], env=tool_env)
    return build


@pytest.mark.skipif(not HARNESSES, reason="no fuzz harness yet")
@pytest.mark.parametrize("harness", HARNESSES, ids=[h.stem for h in HARNESSES])
def test_fuzz_harness(harness: Path, asan_lib: Path):
    exe = asan_lib / harness.stem
    run(["cc", "-g", "-O1", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
         "-I", str(ROOT / "include"), str(FUZZ / "driver.c"), str(harness), "-o", str(exe),
         f"-L{asan_lib}", "-lbetanet", "-lsodium", f"-Wl,-rpath,{asan_lib}"])
    corpus = sorted((FUZZ / "corpus" / harness.stem.removeprefix("fuzz_")).glob("*"))
    env = dict(os.environ, **SAN_ENV)
    proc = subprocess.run([str(exe), "-n", str(ITERATIONS), "-s", "20261120", "-t", str(SECONDS),
                           *map(str, corpus)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"{harness.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert "fuzz:" in proc.stdout


# ---- coverage-guided: the same harnesses under clang's libFuzzer ---------------------------
# The shared library's --no-undefined link fails under clang's ASan (its runtime is not
# linked into shared objects), so the harnesses link the core's objects instead: compiled
# by clang with ASan + UBSan + libFuzzer's coverage, merged into one relocatable object
# whose only globals are betanet_* (the Cython module machinery then is garbage to
# --gc-sections, as in the library). Without clang the gcc driver above is the fallback.
LIBFUZZER_SECONDS = int(os.environ.get("BETANET_LIBFUZZER_SECONDS", "5"))
FUZZER_FLAGS = ["-g", "-O1", "-fno-omit-frame-pointer"]
LINK_GC = ["-Wl,--gc-sections", "-Wl,-z,start-stop-gc", "-lsodium", "-lm", "-lpthread"]


@pytest.fixture(scope="session")
def libfuzzer_core(tool_env) -> Path:
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is missing: the gcc driver (test_fuzz_harness) runs the harnesses")
    build = ROOT / "build" / "libfuzzer"
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=tool_env["PATH"]) else []
    flags = " ".join(FUZZER_FLAGS + ["-fsanitize=fuzzer-no-link,address,undefined",
                                     "-mllvm", "-asan-globals=0"])
    run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, f"-DPython_EXECUTABLE={sys.executable}",
         f"-DCMAKE_C_COMPILER={clang}", f"-DCMAKE_C_FLAGS={flags}", "-DBETANET_BUILD_STATIC=OFF",
         "-DCMAKE_BUILD_TYPE=Debug"], env=tool_env)
    run(["cmake", "--build", str(build), "--target", "betanet_core_objs"], env=tool_env)
    objs = sorted(str(p) for p in build.glob("CMakeFiles/betanet_core_objs.dir/**/*.o"))
    assert objs, "no core objects were built"
    merged, core = build / "core_merged.o", build / "core_fuzz.o"
    run(["ld", "-r", "-o", str(merged), *objs])
    names = run(["nm", "-g", "--defined-only", str(merged)]).stdout.split()
    keep = build / "core_fuzz.keep"
    keep.write_text("\n".join(sorted({n for n in names if n.startswith("betanet_")})) + "\n")
    run(["objcopy", f"--keep-global-symbols={keep}", str(merged), str(core)])
    return core


# Findings of the clang build not fixed yet (outside the fuzzing work): xfail, not hidden.
LIBFUZZER_FINDINGS: dict[str, str] = {}   # harness stem -> reason; none open


@pytest.mark.skipif(not HARNESSES, reason="no fuzz harness yet")
@pytest.mark.parametrize("harness", [
    pytest.param(h, marks=pytest.mark.xfail(reason=LIBFUZZER_FINDINGS[h.stem]))
    if h.stem in LIBFUZZER_FINDINGS else h for h in HARNESSES], ids=[h.stem for h in HARNESSES])
def test_libfuzzer_harness(harness: Path, libfuzzer_core: Path, tmp_path: Path):
    """A short coverage-guided run per harness (BETANET_LIBFUZZER_SECONDS, default 5), from
    the harness's built-in seeds and tests/fuzz/corpus/<harness>/; longer campaigns run the
    same binary by hand (build it as below, then `fuzz_X -max_total_time=N corpus/`)."""
    inc = ["-I", str(ROOT / "include")]
    exe, dumper = tmp_path / harness.stem, tmp_path / "dump_seeds"
    sanitize = "-fsanitize=fuzzer,address,undefined"
    run(["clang", *FUZZER_FLAGS, sanitize, *inc, str(harness), str(libfuzzer_core), *LINK_GC, "-o", str(exe)])
    # the seed writer has its own main: coverage hooks come from the sanitizer runtime
    run(["clang", *FUZZER_FLAGS, "-fsanitize=fuzzer-no-link,address,undefined", *inc,
         str(FUZZ / "dump_seeds.c"), str(harness), str(libfuzzer_core), *LINK_GC, "-o", str(dumper)])
    seeds, work = tmp_path / "seeds", tmp_path / "corpus"
    seeds.mkdir()
    work.mkdir()
    env = dict(os.environ, **SAN_ENV)
    run([str(dumper), str(seeds)], env=env)
    dirs = [work, seeds]
    repo_corpus = FUZZ / "corpus" / harness.stem.removeprefix("fuzz_")
    if repo_corpus.is_dir():
        dirs.append(repo_corpus)          # read only: libFuzzer writes new inputs to the first
    proc = subprocess.run([str(exe), f"-max_total_time={LIBFUZZER_SECONDS}", "-seed=20261120",
                           "-max_len=65536", "-rss_limit_mb=2048", "-print_final_stats=1",
                           f"-artifact_prefix={tmp_path}/", *map(str, dirs)],
                          capture_output=True, text=True, env=env, timeout=300 + LIBFUZZER_SECONDS)
    assert proc.returncode == 0, f"{harness.name} failed under libFuzzer:\n{proc.stderr[-6000:]}"
    assert "stat::number_of_executed_units" in proc.stderr
