"""A C host runs the HTX channel through betanet.h alone (tests/htx_c_host.c)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import betanet


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_c_host_runs_the_channel(tmp_path):
    src = Path(__file__).with_name("htx_c_host.c")
    exe = tmp_path / "htx_c_host"
    lib = betanet.get_library()
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", str(src), "-o", str(exe),
                    "-I", betanet.get_include(), lib, "-lsodium", f"-Wl,-rpath,{os.path.dirname(lib)}"],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
