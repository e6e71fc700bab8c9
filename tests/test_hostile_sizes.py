"""Hostile sizes against the C API (issue 9): each tests/hostile_sizes*.c program calls every
exported function of its header sections with 0, 1, SIZE_MAX, SIZE_MAX - small, INT_MAX,
2^31, 2^32 and negative-as-unsigned sizes, under ASan + UBSan, and expects each call to
return a documented status. Any overflow, out-of-bounds access or leak aborts it.

One program per section family, so a new capability adds its own file:
  hostile_sizes.c         base, fec, htx, sphinx, vrf
  hostile_sizes_<cap>.c   the section include/betanet/<cap>.h (bundle, secagg, ...)
The routing sections (nav/navigator, cgr, dpp) are left out: they take graphs and contact
plans rather than sizes, and their own fuzz harnesses (tests/fuzz) cover them."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run
from test_fuzz import SAN_ENV, asan_lib  # noqa: F401  (the shared sanitizer build)

pytestmark = pytest.mark.hostile
PROGRAMS = sorted((ROOT / "tests").glob("hostile_sizes*.c"))
BASE_SECTIONS = ("fec", "htx", "sphinx", "vrf")   # and the unprefixed base API: hostile_sizes.c
EXCLUDED = ("navigator", "cgr", "dpp")            # routing: covered by their fuzz harnesses
CALL = re.compile(r"\b(betanet_[a-z0-9_]+)\s*\(")


def _declared(header: Path, *defines: str) -> set[str]:
    """Functions a header declares (preprocessed, so names in comments do not count)."""
    pre = subprocess.run(["cc", "-E", "-P", *defines, "-include", "stddef.h", "-include", "stdint.h",
                          "-I", str(ROOT / "include"), str(header)],
                         check=True, capture_output=True, text=True).stdout
    return set(CALL.findall(pre))


def _sections() -> dict[str, set[str]]:
    """Exported functions by header section: include/betanet/<cap>.h is section <cap>; what
    include/betanet.h declares itself is base."""
    caps = {h.stem: _declared(h, "-DBETANET_H_INSIDE") for h in sorted((ROOT / "include/betanet").glob("*.h"))}
    caps["base"] = _declared(ROOT / "include/betanet.h") - set().union(*caps.values())
    return caps


def _home(section: str) -> str:
    """The program that must cover a section."""
    return "tests/hostile_sizes.c" if section in ("base", *BASE_SECTIONS) else f"tests/hostile_sizes_{section}.c"


def _exported_functions() -> dict[str, str]:
    """Every exported function outside the routing sections, with its section."""
    return {name: cap for cap, names in _sections().items() if cap not in EXCLUDED for name in names}


def test_programs_call_every_function_of_their_sections():
    sources = [*PROGRAMS, ROOT / "tests" / "hostile_sizes.h"]   # the header's calls run in every program
    called = set().union(*(CALL.findall(p.read_text()) for p in sources))
    exported = _exported_functions()
    missing = set(exported) - called
    by_file: dict[str, list[str]] = {}
    for name in sorted(missing):
        by_file.setdefault(_home(exported[name]), []).append(name)
    assert not missing, "no hostile_sizes*.c program calls these; add the calls to: " + "; ".join(
        f"{path} ({'new file, ' if not (ROOT / path).exists() else ''}{', '.join(names)})"
        for path, names in sorted(by_file.items()))


def test_every_nonrouting_section_is_checked():
    # The check above must not be vacuous: the sections it covers include the new ones.
    sections = set(_exported_functions().values())
    assert {"base", *BASE_SECTIONS, "bundle", "secagg", "mesh"} <= sections
    assert not sections & set(EXCLUDED)


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_hostile_sizes_under_sanitizers(program: Path, asan_lib):  # noqa: F811
    exe = asan_lib / program.stem
    run(["cc", "-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
         "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-I", str(ROOT / "include"),
         str(program), "-o", str(exe), f"-L{asan_lib}", "-lbetanet", f"-Wl,-rpath,{asan_lib}"])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **SAN_ENV))
    assert proc.returncode == 0, f"{program.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    checks = int(re.search(r"hostile: (\d+) checks, 0 failures", proc.stdout).group(1))
    assert checks > 1000
