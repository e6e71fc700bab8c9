#!/usr/bin/env python3
"""The ABI guard of libbetanet (docs/abi.md): the committed baseline in abi/ against a build.

The baseline has two parts, because a C ABI is more than its symbols:
  abi/libbetanet.abi   exported functions and every type they reach, as libabigail's abidw
                       writes them from the DWARF of a debug build, restricted to the types
                       the public headers declare (--headers-dir include, private types dropped)
  abi/macros.txt       every BETANET_* macro of betanet.h with its expansion (status codes,
                       sizes, flags, size formulas) — compiled into hosts, invisible to DWARF

  python3 tools/abi.py baseline       build the debug library, rewrite abi/ (make abi-baseline)
  python3 tools/abi.py check [LIB]    compare LIB (default: that build) with abi/ and exit 1
                                      on an incompatible change, 2 on exports the baseline lacks

Incompatible: a function or macro removed, a signature or reachable type changed, a macro's
value changed. Additions are compatible, but they must be recorded (run `baseline`) so that
the next change to them is caught too.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "abi"
INCLUDE = ROOT / "include"
# The debug build the tests already make (tests/test_fuzz.py: ASan + UBSan, RelWithDebInfo);
# the sanitizers change no exported symbol or type, and abidw needs the debug information.
DEBUG_BUILD = ROOT / "build" / "asan"
DEBUG_CMAKE_ARGS = ["-DBETANET_SANITIZE=ON", "-DBETANET_BUILD_STATIC=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
ABIDW_ARGS = ["--headers-dir", str(INCLUDE), "--drop-private-types", "--no-corpus-path",
              "--no-comp-dir-path", "--no-show-locs", "--no-elf-needed", "--no-parameter-names",
              "--no-architecture", "--type-id-style", "hash"]
# Macros that may change without breaking anything: include guards and the minor/patch version.
MACRO_IGNORE = re.compile(r"^BETANET(_[A-Z]+)?_H(_INSIDE)?$|^BETANET_VERSION_(MINOR|PATCH|STRING)$")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def build_debug_library() -> Path:
    """libbetanet with debug information (the sanitizer build the tests use)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=env["PATH"]) else []
    _run(["cmake", "-S", str(ROOT), "-B", str(DEBUG_BUILD), *gen, f"-DPython_EXECUTABLE={sys.executable}",
          *DEBUG_CMAKE_ARGS], env)
    _run(["cmake", "--build", str(DEBUG_BUILD), "--target", "betanet"], env)
    return DEBUG_BUILD / "libbetanet.so"


def require_tools() -> None:
    if not shutil.which("abidw") or not shutil.which("abidiff"):
        raise SystemExit("libabigail's abidw/abidiff are missing: apt-get install abigail-tools "
                         "(`make sysdeps` does it)")


def macros() -> str:
    """'NAME expansion' per BETANET_* macro of the public header, sorted, one per line."""
    pre = _run(["cc", "-dM", "-E", "-I", str(INCLUDE), str(INCLUDE / "betanet.h")])
    rows = []
    for line in pre.splitlines():
        m = re.match(r"#define (BETANET_[A-Za-z0-9_]+(?:\([^)]*\))?)\s*(.*)$", line)
        if m and not MACRO_IGNORE.match(m.group(1).split("(")[0]):
            rows.append(f"{m.group(1)} {' '.join(m.group(2).split())}".rstrip())
    return "\n".join(sorted(rows)) + "\n"


def dump(lib: Path, out: Path) -> None:
    require_tools()
    out.mkdir(parents=True, exist_ok=True)
    (out / "libbetanet.abi").write_text(_run(["abidw", *ABIDW_ARGS, str(lib)]))
    (out / "macros.txt").write_text(macros())


@dataclass
class Report:
    incompatible: str      # empty when none
    unrecorded: str        # additions missing from the baseline; empty when none


def _macro_map(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        out[name.split("(")[0]] = line
    return out


def compare(lib: Path, baseline: Path = BASELINE) -> Report:
    require_tools()
    with tempfile.TemporaryDirectory() as tmp:
        cur = Path(tmp)
        dump(lib, cur)
        # Without the additions: anything abidiff still reports is removed or changed.
        proc = subprocess.run(["abidiff", "--no-added-syms", str(baseline / "libbetanet.abi"),
                               str(cur / "libbetanet.abi")], capture_output=True, text=True)
        if proc.returncode & 3:
            raise SystemExit(f"abidiff failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        incompatible = proc.stdout if proc.returncode else ""
        added = subprocess.run(["abidiff", str(baseline / "libbetanet.abi"), str(cur / "libbetanet.abi")],
                               capture_output=True, text=True)
        unrecorded = added.stdout if added.returncode and not incompatible else ""
        old = _macro_map((baseline / "macros.txt").read_text())
        new = _macro_map((cur / "macros.txt").read_text())
        removed = [old[n] for n in sorted(old) if n not in new]
        changed = [f"{old[n]}  ->  {new[n]}" for n in sorted(old) if n in new and old[n] != new[n]]
        if removed or changed:
            incompatible += "".join(f"macro removed: {r}\n" for r in removed)
            incompatible += "".join(f"macro changed: {c}\n" for c in changed)
        new_macros = [new[n] for n in sorted(new) if n not in old]
        if new_macros:
            unrecorded += "".join(f"macro added: {a}\n" for a in new_macros)
    return Report(incompatible, unrecorded)


def main(argv: list[str]) -> int:
    if argv[:1] == ["baseline"]:
        require_tools()
        dump(build_debug_library(), BASELINE)
        print(f"wrote {BASELINE.relative_to(ROOT)}/libbetanet.abi and macros.txt; review `git diff abi/`")
        return 0
    if argv[:1] == ["check"]:
        lib = Path(argv[1]) if len(argv) > 1 else build_debug_library()
        rep = compare(lib)
        if rep.incompatible:
            print("INCOMPATIBLE ABI CHANGE against abi/ (docs/abi.md says how to bump):\n" + rep.incompatible)
            return 1
        if rep.unrecorded:
            print("compatible additions not yet in abi/ (run `make abi-baseline`):\n" + rep.unrecorded)
            return 2
        print("ABI matches abi/")
        return 0
    print(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
