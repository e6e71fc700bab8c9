"""Bounded fuzzing of every C-core parser under ASan + UBSan.

Builds libbetanet with -DBETANET_SANITIZE=ON once, links each tests/fuzz/fuzz_*.c harness
(libFuzzer API) with tests/fuzz/driver.c, and runs it on a fixed seed for a bounded number
of inputs. Any out-of-bounds access, use-after-free, leak or undefined behaviour aborts the
harness and fails the test. Longer runs: build/asan/fuzz_X -n 10000000 -s $RANDOM.
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
