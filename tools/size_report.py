#!/usr/bin/env python3
"""make size-report: what each capability costs in flash and RAM, per target.

Builds the firmware configuration (-DBETANET_FIRMWARE=ON, MinSizeRel: -Os) for x86-64 and,
where their cross compilers are installed (make cross-deps), aarch64 and armhf; then, from
the core's object files, links (ld -r --gc-sections) only what the exported functions of
`base` (init, errors, allocator: every capability needs it) plus one capability reach, and
measures text / data / bss of the result. A capability's row is that minus `base` alone:
what linking it adds. libsodium and libc are not counted (the host links them anyway).
Writes the table into docs/architecture.md between its size-report markers.

    python tools/size_report.py [--no-write]
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- size-report:begin -->", "<!-- size-report:end -->"
TARGETS = [("x86-64", None, ""), ("aarch64", "aarch64-linux-gnu", "aarch64-linux-gnu-"),
           ("armhf", "arm-linux-gnueabihf", "arm-linux-gnueabihf-")]


def sh(cmd: list, **kw) -> str:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw).stdout


def build(name: str, triplet: str | None) -> Path:
    bdir = ROOT / "build" / f"fw-{triplet or 'x86_64-linux-gnu'}"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    cmd = ["cmake", "-S", ROOT, "-B", bdir, "-G", "Ninja", "-DBETANET_FIRMWARE=ON",
           "-DCMAKE_BUILD_TYPE=MinSizeRel", f"-DPython_EXECUTABLE={sys.executable}"]
    if triplet:
        cmd.append(f"-DCMAKE_TOOLCHAIN_FILE={ROOT}/cmake/{triplet}.cmake")
    sh(cmd, env=env)
    sh(["cmake", "--build", bdir], env=env)
    return bdir


def measure(bdir: Path, prefix: str) -> dict[str, tuple[int, int, int]]:
    objs = sorted((bdir / "CMakeFiles" / "betanet_core_objs.dir" / "core").glob("*.c.o"))
    exported = set()
    for line in sh([f"{prefix}nm", "-D", "--defined-only", bdir / "libbetanet.so"]).splitlines():
        w = line.split()
        if len(w) == 3 and w[2].startswith("betanet_"):
            exported.add(w[2].split("@")[0])
    by_module: dict[str, list[str]] = {}
    for o in objs:
        mod = o.name.split(".")[0]
        for line in sh([f"{prefix}nm", "--defined-only", o]).splitlines():
            w = line.split()
            if len(w) == 3 and w[2] in exported:
                by_module.setdefault(mod, []).append(w[2])
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / "merged.o"
        keep = Path(tmp) / "keep.txt"
        keep.write_text("\n".join(sorted(exported)) + "\n")
        sh([f"{prefix}ld", "-r", "-o", merged] + objs)
        sh([f"{prefix}objcopy", f"--keep-global-symbols={keep}", merged])

        def size_of(roots: list[str]) -> tuple[int, int, int]:
            out = Path(tmp) / "part.o"
            cmd = [f"{prefix}ld", "-r", "--gc-sections", "-o", out]
            for s in roots:
                cmd += ["-u", s]
            sh(cmd + [merged])
            sh([f"{prefix}objcopy", "--strip-unneeded", out])
            last = sh([f"{prefix}size", out]).splitlines()[-1].split()
            return int(last[0]), int(last[1]), int(last[2])

        base = by_module.get("base", [])
        sizes["base"] = size_of(base)
        for mod in sorted(by_module):
            if mod != "base":
                t, d, b = size_of(base + by_module[mod])
                sizes[mod] = (t - sizes["base"][0], d - sizes["base"][1], b - sizes["base"][2])
        sizes["all"] = size_of(sorted(exported))
    return sizes


def table(results: dict[str, dict[str, tuple[int, int, int]]]) -> str:
    names = [n for n in results]
    mods = ["base"] + sorted(m for m in next(iter(results.values())) if m not in ("base", "all")) + ["all"]
    head = "| capability | " + " | ".join(f"{n} text / data / bss" for n in names) + " |"
    rows = [head, "|---|" + "---:|" * len(names)]
    for m in mods:
        label = {"base": "base (always linked)", "all": "**whole library**"}.get(m, f"+ {m}")
        cells = []
        for n in names:
            t, d, b = results[n].get(m, (0, 0, 0))
            cells.append(f"{t:,} / {d:,} / {b:,}".replace(",", "\u202f"))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    results = {}
    for name, triplet, prefix in TARGETS:
        if triplet and not shutil.which(f"{triplet}-gcc"):
            print(f"size-report: skipping {name} ({triplet}-gcc missing: make cross-deps)")
            continue
        bdir = build(name, triplet)
        results[name] = measure(bdir, prefix)
        print(f"size-report: {name} done", flush=True)
    text = table(results)
    print(text)
    if "--no-write" not in argv:
        doc = DOC.read_text()
        block = (f"{BEGIN}\n<!-- generated by `make size-report` (tools/size_report.py); do not edit -->\n"
                 f"Bytes per capability, firmware build (`-DBETANET_FIRMWARE=ON`, `-Os`), GCC 12, "
                 f"what `ld --gc-sections` keeps from the core's objects for the capability's exported "
                 f"functions, over `base`; libsodium and libc not counted.\n\n{text}\n{END}")
        if BEGIN in doc:
            doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, doc, flags=re.S)
        else:
            doc = doc.rstrip("\n") + "\n\n## Size per capability (firmware build)\n\n" + block + "\n"
        DOC.write_text(doc)
        print(f"size-report: written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
