#!/usr/bin/env python3
"""Build a Python-free libbetanet.a from the Cython core objects.

The shared library gets rid of the Cython module machinery (which references the Python
C-API) with --gc-sections at link time. An archive is never linked, so we do the same by
hand: partially link all objects into one (ld -r --gc-sections, rooted at the symbols the
shared library exports), then make every global that is not betanet_* local. The archive
then has no undefined Py* symbol and exports exactly what the .so exports.
"""
import argparse
import os
import subprocess
import sys
import tempfile


def exported(shared: str, nm: str = "nm") -> list[str]:
    out = subprocess.run([nm or "nm", "-D", "--defined-only", shared], check=True,
                         capture_output=True, text=True).stdout
    names = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("betanet_"):
            names.append(parts[2].split("@")[0])
    return sorted(set(names))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ld", default="ld")
    ap.add_argument("--objcopy", default="objcopy")
    ap.add_argument("--ar", default="ar")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("objects", nargs="+")
    a = ap.parse_args()

    syms = exported(a.shared, a.nm)
    if not syms:
        print("make_static: the shared library exports no betanet_* symbol", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        merged = os.path.join(tmp, "merged.o")
        final = os.path.join(tmp, "betanet_static.o")
        keep = os.path.join(tmp, "keep.txt")
        with open(keep, "w") as f:
            f.write("\n".join(syms) + "\n")
        ld = a.ld or "ld"
        objcopy = a.objcopy or "objcopy"
        # 1. one object, so that the core modules' internal references (bnt_*) resolve;
        subprocess.run([ld, "-r", "-o", merged] + a.objects, check=True)
        # 2. only betanet_* stays global (PyInit_* and friends become local);
        subprocess.run([objcopy, f"--keep-global-symbols={keep}", merged], check=True)
        # 3. drop every section the exported functions do not reach;
        cmd = [ld, "-r", "--gc-sections", "-o", final]
        for s in syms:
            cmd += ["-u", s]
        subprocess.run(cmd + [merged], check=True)
        # 4. and the symbols nothing refers to any more (the dangling Py* undefineds).
        subprocess.run([objcopy, "--strip-unneeded", final], check=True)
        undefined = subprocess.run(["nm", "-u", final], check=True, capture_output=True,
                                   text=True).stdout.split()
        leaked = [u for u in undefined if u.startswith(("Py", "_Py"))]
        if leaked:
            print("make_static: Python symbols survive in the core: " + ", ".join(leaked),
                  file=sys.stderr)
            return 1
        merged = final
        if os.path.exists(a.out):
            os.remove(a.out)
        subprocess.run([a.ar or "ar", "rcs", a.out, merged], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
