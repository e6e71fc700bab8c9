"""The exported ABI of libbetanet is frozen (docs/abi.md): no function, type or macro of the
committed baseline (abi/) may be removed or changed, and every addition must be recorded
there (`make abi-baseline`). Checked with libabigail on the debug (sanitizer) build."""
from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest

from conftest import ROOT
from test_fuzz import asan_lib  # noqa: F401  (the shared debug build)


def _abi_tool():
    spec = importlib.util.spec_from_file_location("betanet_abi_tool", ROOT / "tools" / "abi.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod        # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def report(asan_lib):  # noqa: F811
    if not shutil.which("abidiff"):
        pytest.fail("abidiff is missing: apt-get install abigail-tools (make sysdeps installs it)")
    return _abi_tool().compare(asan_lib / "libbetanet.so")


def test_no_incompatible_abi_change(report):
    assert not report.incompatible, (
        "incompatible change to the frozen ABI (see docs/abi.md for a deliberate bump):\n"
        + report.incompatible)


def test_baseline_records_every_export(report):
    assert not report.unrecorded, (
        "exports or macros not in abi/ yet; record them with `make abi-baseline`:\n" + report.unrecorded)


def test_baseline_covers_the_header():
    """Every function betanet.h declares is in the baseline (the dump is not vacuous)."""
    import re
    import subprocess
    pre = subprocess.run(["cc", "-E", "-P", "-I", str(ROOT / "include"), str(ROOT / "include/betanet.h")],
                         check=True, capture_output=True, text=True).stdout
    declared = set(re.findall(r"\b(betanet_[a-z0-9_]+)\s*\(", pre))
    recorded = set(re.findall(r"<elf-symbol name='(betanet_[a-z0-9_]+)'",
                              (ROOT / "abi" / "libbetanet.abi").read_text()))
    assert declared == recorded
