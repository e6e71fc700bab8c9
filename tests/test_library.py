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


def header_status_codes() -> dict[str, int]:
    """Every BETANET_OK / BETANET_E_* macro of betanet.h with its value, parsed from the text."""
    text = (ROOT / "include" / "betanet.h").read_text()
    return {name: int(value) for name, value in
            re.findall(r"^#define\s+(BETANET_(?:OK|E_[A-Z_]+))\s+(-?\d+)", text, re.M)}


def test_strerror_names_every_code():
    codes = header_status_codes()
    texts = {code: core.strerror(code) for code in codes.values()}
    assert len(set(texts.values())) == len(texts) == len(codes)
    assert "unknown error" not in texts.values()
    assert core.strerror(-9999) == "unknown error"
    assert core.strerror(12345) == "unknown error"


def test_library_error_table_is_the_header():
    """betanet_error_name enumerates exactly the header's codes, under their macro names."""
    table = core.error_table()
    assert {name: code for code, name, _ in table} == header_status_codes()
    assert all(text == core.strerror(code) for code, _, text in table)


def test_every_header_code_maps_to_its_class_and_message():
    for name, code in header_status_codes().items():
        if code == 0:
            continue
        err = betanet.errors.error_for(code, "ctx")
        cls = type(err)
        assert cls is not betanet.BetanetError, f"{name} has no exception class"
        assert cls.c_name == name and cls.code == code == err.code
        assert cls.message == core.strerror(code) and str(err) == f"ctx: {core.strerror(code)}"
    with pytest.raises(betanet.MalformedError):
        betanet.errors.check(header_status_codes()["BETANET_E_MALFORMED"], "parse")
    assert betanet.errors.check(5) == 5
    classes = [c for c in vars(betanet.errors).values()
               if isinstance(c, type) and issubclass(c, betanet.BetanetError) and c.c_name]
    assert {c.c_name for c in classes} == set(header_status_codes()) - {"BETANET_OK"}


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


INIT_ENTRY_POINTS = ["htx_session_new", "sphinx_node_new", "sphinx_keypair", "sphinx_create",
                     "vrf_key_new", "vrf_verify", "vrf_proof_to_hash", "vrf_validate_key", "fec_new"]


@pytest.fixture(scope="module")
def init_program(tmp_path_factory) -> Path:
    src = ROOT / "tests" / "init_first_use.c"
    exe = tmp_path_factory.mktemp("init") / "init_first_use"
    lib = betanet.get_library()
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", str(src), "-o", str(exe), "-I",
                    betanet.get_include(), lib, f"-Wl,-rpath,{Path(lib).parent}"],
                   check=True, capture_output=True, text=True)
    return exe


@pytest.mark.parametrize("entry", INIT_ENTRY_POINTS)
def test_entry_points_initialise_on_first_use(init_program, entry):
    """sqlite's model (betanet.h): no host has to call betanet_init() first."""
    out = subprocess.run([str(init_program), entry], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr



def test_must_check_results_warn_when_ignored(tmp_path):
    """BETANET_NODISCARD: ignoring a verify/open/process/reconstruct status is a warning."""
    src = tmp_path / "ignore.c"
    src.write_text('#include <betanet.h>\n'
                   'void f(const uint8_t *pk, const uint8_t *pi, uint8_t *out) {\n'
                   '    betanet_vrf_verify(pk, 32, pi, 80, 0, 0, out, 64);\n}\n')
    cmd = ["cc", "-c", "-Werror=unused-result", "-I", betanet.get_include(), str(src), "-o", str(tmp_path / "o.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode != 0 and "unused-result" in proc.stderr, proc.stderr
    src.write_text(src.read_text().replace("    betanet_vrf_verify", "    (void)!betanet_vrf_verify"))
    subprocess.run(cmd, check=True, capture_output=True, text=True)
