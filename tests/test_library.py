"""libbetanet as a C library: Python-free, exports exactly its header, versions agree."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import betanet
from betanet._native import core

ROOT = Path(__file__).resolve().parent.parent


def _dynamic_symbols(lib: str) -> list[str]:
    return subprocess.run(["nm", "-D", lib], check=True, capture_output=True,
                          text=True).stdout.splitlines()


def header_functions() -> set[str]:
    """Functions declared in betanet.h (all sections), from the preprocessed header."""
    pre = subprocess.run(["cc", "-E", "-P", "-I", str(ROOT / "include"), str(ROOT / "include/betanet.h")],
                         check=True, capture_output=True, text=True).stdout
    return set(re.findall(r"\b(betanet_[a-z0-9_]+)\s*\(", pre))


def test_shared_library_is_python_free():
    lines = _dynamic_symbols(betanet.get_library())
    undefined = [l.split()[-1] for l in lines if l.split()[0] in ("U", "w")]
    defined = [l.split()[-1] for l in lines if len(l.split()) == 3]
    assert not [s for s in undefined + defined if re.match(r"_?Py", s)], "Python symbols leaked"
    exported = [s for s in defined if not s.startswith("BETANET_")]
    assert exported and all(s.startswith("betanet_") for s in exported), exported


def test_needs_only_libc_and_libsodium():
    out = subprocess.run(["readelf", "-d", betanet.get_library()], check=True,
                         capture_output=True, text=True).stdout
    needed = set(re.findall(r"Shared library: \[([^\]]+)\]", out))
    assert all(n.split(".so")[0] in ("libc", "libsodium", "libm", "libpthread") for n in needed), needed
    assert "Library soname: [libbetanet.so.1]" in out


def test_exports_carry_symbol_version():
    out = subprocess.run(["objdump", "-T", betanet.get_library()], check=True,
                         capture_output=True, text=True).stdout
    versioned = re.findall(r"BETANET_1\s+(betanet_\w+)", out)
    assert "betanet_init" in versioned


def test_header_and_exports_agree():
    exported = {l.split()[-1].split("@")[0] for l in _dynamic_symbols(betanet.get_library())
                if len(l.split()) == 3 and l.split()[-1].startswith("betanet_")}
    declared = header_functions()
    assert declared - exported == set(), "declared in betanet.h but not implemented"
    assert exported - declared == set(), "exported but not declared in betanet.h"


def test_static_archive_is_python_free():
    lib = betanet.get_static_library()
    out = subprocess.run(["nm", lib], check=True, capture_output=True, text=True).stdout
    undefined = [l.split()[-1] for l in out.splitlines() if l.strip().startswith("U ")]
    assert not [u for u in undefined if re.match(r"_?Py", u)]
    glob = [l.split()[-1] for l in out.splitlines() if re.match(r"^[0-9a-f]+ [TDBR] ", l)]
    assert glob and all(g.startswith("betanet_") for g in glob), glob


def test_versions_agree():
    assert betanet.__version__ == core.HEADER_VERSION == core.version()
    major, minor, patch = map(int, betanet.__version__.split("."))
    assert core.version_number() == (major << 16) | (minor << 8) | patch


def test_strerror_names_every_code():
    texts = {code: core.strerror(code) for code in range(-15, 1)}
    assert len(set(texts.values())) == len(texts)
    assert core.strerror(-9999) == "unknown error"
    assert core.strerror(12345) == "unknown error"


def test_error_hierarchy_maps_every_code():
    for code in range(-15, 0):
        err = betanet.errors.error_for(code)
        assert isinstance(err, betanet.BetanetError)
        assert type(err) is not betanet.BetanetError and err.code == code
    with pytest.raises(betanet.MalformedError):
        betanet.errors.check(-3, "parse")
    assert betanet.errors.check(5) == 5


def test_cpu_restrict_round_trip():
    full = core.cpu_features()
    try:
        assert core.cpu_restrict(0) == 0
        assert betanet.cpu_features() == []
    finally:
        core.cpu_restrict(0xFFFFFFFF)
    assert core.cpu_features() == full


def test_get_include_has_header():
    assert (Path(betanet.get_include()) / "betanet.h").is_file()


def test_init_is_idempotent():
    for _ in range(3):
        core.init()
