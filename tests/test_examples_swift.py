"""ffi-examples/swift: there is no Swift compiler on the CI machine, so main.swift itself is
not compiled. What can be checked is checked with clang: module.modulemap parses, module
CBetanet builds from the installed betanet.h, and a C file that imports the module (not the
header) and makes the same calls as main.swift compiles, links with -lbetanet and runs.

clang is opt-in (`make test-swift` installs it as root); without it this test skips.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT, run
from test_examples import libdir

SWIFT = ROOT / "ffi-examples" / "swift"


def clang_modules(tmp_path, prefix, *args: str) -> list[str]:
    # a fresh module cache: a cached CBetanet would hide a broken map or include path
    return ["clang", "-std=c11", "-Wall", "-Werror", "-fmodules",
            f"-fmodules-cache-path={tmp_path / 'modules'}",
            f"-fmodule-map-file={SWIFT / 'module.modulemap'}", f"-I{prefix / 'include'}",
            *args, str(SWIFT / "module_check.c")]


@pytest.fixture(scope="module")
def clang():
    if not shutil.which("clang"):
        pytest.skip("clang not installed: run `make test-swift` as root")


def test_module_map_exposes_betanet_h(clang, c_prefix, tmp_path):
    run(clang_modules(tmp_path, c_prefix, "-fsyntax-only"))


def test_module_map_program_links_and_runs(clang, c_prefix, tmp_path):
    lib = libdir(c_prefix)
    exe = tmp_path / "module_check"
    run(clang_modules(tmp_path, c_prefix, f"-L{lib}", "-lbetanet", f"-Wl,-rpath,{lib}",
                      "-o", str(exe)))
    assert "ok: module CBetanet, libbetanet" in run([str(exe)]).stdout


def test_module_map_needs_the_map(clang, c_prefix, tmp_path):
    # the declarations really come through the module: without the map the import fails
    cmd = [a for a in clang_modules(tmp_path, c_prefix, "-fsyntax-only")
           if not a.startswith("-fmodule-map-file=")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode != 0 and "module 'CBetanet' not found" in proc.stderr
