"""tests/cross/kat.c natively: the known-answer program `make test-cross` runs under qemu on
aarch64 and armhf passes on x86-64 too, against the published vectors (cross_spec.txt, the
flattened tests/vectors/*.json) and the x86 outputs it pins (cross_x86.txt). A change that
alters what x86 computes fails here first: regenerate cross_x86.txt with `kat --record`
(docs/porting.md) only when the change is meant."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import betanet
from conftest import ROOT, run

VEC = ROOT / "tests" / "vectors"


@pytest.fixture(scope="module")
def kat(tmp_path_factory):
    exe = tmp_path_factory.mktemp("kat") / "kat"
    lib = betanet.get_library()
    run(["cc", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", str(ROOT / "tests" / "cross" / "kat.c"),
         "-o", str(exe), "-I", betanet.get_include(), lib, "-lsodium", f"-Wl,-rpath,{os.path.dirname(lib)}"])
    return exe


pytestmark = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


def test_spec_file_is_generated_from_the_json_vectors(tmp_path):
    run([sys.executable, str(ROOT / "tools" / "gen_cross_vectors.py"), str(tmp_path / "spec.txt")])
    assert (tmp_path / "spec.txt").read_text() == (VEC / "cross_spec.txt").read_text(), \
        "run tools/gen_cross_vectors.py and commit tests/vectors/cross_spec.txt"


def test_kat_passes_on_x86(kat):
    proc = run([str(kat), str(VEC / "cross_spec.txt"), str(VEC / "cross_x86.txt")])
    assert ", 0 failed" in proc.stdout


def test_kat_record_reproduces_the_pinned_file(kat):
    proc = run([str(kat), "--record", str(VEC / "cross_spec.txt")])
    assert proc.stdout == (VEC / "cross_x86.txt").read_text()


def test_kat_detects_a_wrong_vector(kat, tmp_path):
    # one flipped parity nibble in the published FEC vectors and one pinned Sphinx digest
    spec = (VEC / "cross_spec.txt").read_text().splitlines()
    i = next(n for n, line in enumerate(spec) if line.startswith("fec "))
    spec[i] = spec[i][:-1] + ("0" if spec[i][-1] != "0" else "1")
    bad_spec = tmp_path / "spec.txt"
    bad_spec.write_text("\n".join(spec) + "\n")
    x86 = (VEC / "cross_x86.txt").read_text().replace("sphinx_packet ", "sphinx_packet 00", 1)
    bad_x86 = tmp_path / "x86.txt"
    bad_x86.write_text(x86)
    proc = subprocess.run([str(kat), str(bad_spec), str(bad_x86)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "FAIL fec k=" in proc.stderr and "FAIL sphinx_packet differs from x86" in proc.stderr
