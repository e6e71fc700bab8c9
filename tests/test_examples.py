"""ffi-examples/ build and run against libbetanet the way hosts use it: the C example with
CMake find_package(betanet), with pkg-config, and statically against libbetanet.a (proving
the archive is Python-free and self-sufficient); the cffi example in ABI mode."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run

EXAMPLES = ROOT / "ffi-examples"
C_EXAMPLE = EXAMPLES / "c" / "fec_example.c"


def libdir(prefix: Path) -> Path:
    found = sorted(prefix.glob("**/libbetanet.so*"))
    assert found, f"no libbetanet.so under {prefix}"
    return found[0].parent


def check_output(proc: subprocess.CompletedProcess) -> None:
    assert "reconstruct: rebuilt shards" in proc.stdout
    assert "correct: found and repaired shard 2" in proc.stdout
    assert "ok: libbetanet" in proc.stdout


def test_c_example_cmake_find_package(c_prefix, tool_env, tmp_path):
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=tool_env["PATH"]) else []
    build = tmp_path / "build"
    run(["cmake", "-S", str(EXAMPLES / "c"), "-B", str(build), *gen,
         f"-DCMAKE_PREFIX_PATH={c_prefix}"], env=tool_env)
    run(["cmake", "--build", str(build)], env=tool_env)
    check_output(run([str(build / "fec_example")]))


def test_c_example_pkg_config(c_prefix, tmp_path):
    pcdir = libdir(c_prefix) / "pkgconfig"
    env = dict(os.environ, PKG_CONFIG_PATH=str(pcdir))
    # the .pc file names the configure-time prefix; point it at where the test installed
    flags = run(["pkg-config", f"--define-variable=prefix={c_prefix}", "--cflags", "--libs", "betanet"],
                env=env).stdout.split()
    exe = tmp_path / "fec_example"
    run(["cc", str(C_EXAMPLE), *flags, f"-Wl,-rpath,{libdir(c_prefix)}", "-o", str(exe)])
    check_output(run([str(exe)]))


def test_c_example_static_archive(c_prefix, tmp_path):
    lib = libdir(c_prefix)
    assert (lib / "libbetanet.a").exists()
    exe = tmp_path / "fec_example_static"
    # -Bstatic picks libbetanet.a over the .so in the same directory; then only libsodium and
    # libc (libm, pthreads: Libs.private of betanet.pc) are needed
    run(["cc", str(C_EXAMPLE), f"-I{c_prefix / 'include'}", f"-L{lib}",
         "-Wl,-Bstatic", "-lbetanet", "-Wl,-Bdynamic", "-lsodium", "-lm", "-lpthread", "-o", str(exe)])
    needed = run(["readelf", "-d", str(exe)]).stdout
    assert "libbetanet" not in needed and not re.search(r"libpython", needed)
    check_output(run([str(exe)]))


def test_cffi_example():
    pytest.importorskip("cffi")
    proc = run([sys.executable, str(EXAMPLES / "cffi" / "fec_example.py")])
    assert "ok: rebuilt shards [0, 4]" in proc.stdout
