"""Hostile sizes against the C API (issue 9): tests/hostile_sizes.c calls every exported
function of the base, fec, htx, sphinx and vrf sections with 0, 1, SIZE_MAX, SIZE_MAX - small,
INT_MAX, 2^31, 2^32 and negative-as-unsigned sizes, under ASan + UBSan, and expects each call
to return a documented status. Any overflow, out-of-bounds access or leak aborts it.
tests/hostile_sizes_mesh.c does the same for the mesh section."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import ROOT, run
from test_fuzz import SAN_ENV, asan_lib  # noqa: F401  (the shared sanitizer build)

pytestmark = pytest.mark.hostile
PROGRAM = ROOT / "tests" / "hostile_sizes.c"
SECTIONS = ("fec", "htx", "sphinx", "vrf")


def _exported_functions() -> set[str]:
    pre = subprocess.run(["cc", "-E", "-P", "-I", str(ROOT / "include"), str(ROOT / "include/betanet.h")],
                         check=True, capture_output=True, text=True).stdout
    names = set(re.findall(r"\b(betanet_[a-z0-9_]+)\s*\(", pre))
    return {n for n in names
            if n.split("_")[1] in SECTIONS or n.split("_")[1] not in ("nav", "cgr", "dpp", "navigator")}


def test_program_calls_every_function_of_its_sections():
    called = set()
    for program in sorted((ROOT / "tests").glob("hostile_sizes*.c")):
        called |= set(re.findall(r"\b(betanet_[a-z0-9_]+)\s*\(", program.read_text()))
    missing = _exported_functions() - called
    assert not missing, f"no tests/hostile_sizes*.c calls: {sorted(missing)}"


def _run_under_sanitizers(asan_lib, program, min_checks):  # noqa: F811
    exe = asan_lib / program.stem
    run(["cc", "-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
         "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-I", str(ROOT / "include"),
         str(program), "-o", str(exe), f"-L{asan_lib}", "-lbetanet", f"-Wl,-rpath,{asan_lib}"])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **SAN_ENV))
    assert proc.returncode == 0, f"{program.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    checks = int(re.search(r"hostile: (\d+) checks, 0 failures", proc.stdout).group(1))
    assert checks > min_checks


def test_hostile_sizes_under_sanitizers(asan_lib):  # noqa: F811
    _run_under_sanitizers(asan_lib, PROGRAM, 10000)


def test_hostile_sizes_mesh_under_sanitizers(asan_lib):  # noqa: F811
    _run_under_sanitizers(asan_lib, ROOT / "tests" / "hostile_sizes_mesh.c", 10000)
