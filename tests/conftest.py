"""Shared fixtures: the installed package's library and a standalone C install of it."""
from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                    f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="session")
def c_prefix() -> Path:
    """libbetanet built by plain CMake (no Python packaging) and installed into a prefix.

    This is the path C hosts take; examples build against this prefix with
    find_package(betanet) and with pkg-config.
    """
    build = ROOT / "build" / "c-test"
    prefix = ROOT / "build" / "c-test-prefix"
    shutil.rmtree(prefix, ignore_errors=True)
    env = _tool_env()
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=env["PATH"]) else []
    run(["cmake", "-S", str(ROOT), "-B", str(build), *gen,
         f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release"], env=env)
    run(["cmake", "--build", str(build)], env=env)
    run(["cmake", "--install", str(build), "--prefix", str(prefix)], env=env)
    return prefix


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    """Environment with the venv's tools (cmake, ninja) on PATH."""
    return _tool_env()


@pytest.fixture
def no_leaks():
    """Every libbetanet allocation a test makes is freed by its end (modules opt in with
    ``pytestmark = pytest.mark.usefixtures("no_leaks")``)."""
    from betanet._native import core

    gc.collect()                      # handles earlier tests left to the collector
    before = core.live_allocations()
    yield
    gc.collect()
    assert core.live_allocations() == before, "libbetanet allocations leaked"
