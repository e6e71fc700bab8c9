#!/usr/bin/env python3
"""make test-cross: build libbetanet for each cross target (cmake/<triplet>.cmake), check it
is Python-free, then run under qemu-user the C examples and tests/cross/kat.c, linked
against the shared and the static library. The HTX example talks to the Python
`betanet.htx.serve` echo server running natively on the build machine.

    python tools/test_cross.py [TRIPLET ...]      (default: every cmake/*-linux-*.cmake)

Prints the build and run time of each target; exits non-zero on the first failure.
Set BETANET_CROSS_JOBS to bound the build's parallelism.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QEMU = {"aarch64-linux-gnu": "qemu-aarch64", "arm-linux-gnueabihf": "qemu-arm"}
KERNEL = {"aarch64-linux-gnu": "neon", "arm-linux-gnueabihf": "neon"}     # on qemu's default CPU
FIRMWARE = {"arm-linux-gnueabihf"}        # also built and run as -DBETANET_FIRMWARE=ON
# Extra qemu CPU models to run kat under: armhf without NEON must fall back to scalar FEC.
EXTRA_CPUS = {"arm-linux-gnueabihf": [("cortex-r5f", "scalar")]}
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]


def short(arg) -> str:
    arg = str(arg)
    return arg if len(arg) <= 80 else f"{arg[:40]}...({len(arg)} chars)"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(short(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def build(triplet: str) -> Path:
    bdir = ROOT / "build" / f"cross-{triplet}"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    run(["cmake", "-S", ROOT, "-B", bdir, "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={ROOT}/cmake/{triplet}.cmake",
         f"-DPython_EXECUTABLE={sys.executable}"], env=env, stdout=subprocess.DEVNULL)
    jobs = os.environ.get("BETANET_CROSS_JOBS")
    run(["cmake", "--build", bdir] + (["-j", jobs] if jobs else []), env=env, stdout=subprocess.DEVNULL)
    return bdir


def python_free(triplet: str, bdir: Path) -> None:
    for lib in ("libbetanet.so", "libbetanet.a"):
        out = subprocess.run([f"{triplet}-nm", "-u", bdir / lib], check=True, capture_output=True,
                             text=True).stdout
        leaked = [w[-1] for w in map(str.split, out.splitlines()) if w and w[-1].startswith(("Py", "_Py"))]
        if leaked:
            raise SystemExit(f"{triplet}: {lib} references Python: {leaked[:5]}")


def compile_programs(triplet: str, bdir: Path) -> dict[str, Path]:
    out = bdir / "cross-tests"
    out.mkdir(exist_ok=True)
    cc = f"{triplet}-gcc"
    inc = ["-I", ROOT / "include"]
    shared = ["-L", bdir, "-lbetanet", "-lsodium"]
    static = [bdir / "libbetanet.a", "-lsodium", "-lm", "-lpthread"]
    progs = {
        "kat": (ROOT / "tests" / "cross" / "kat.c", shared),
        "kat_static": (ROOT / "tests" / "cross" / "kat.c", static),
        "fec_example": (ROOT / "ffi-examples" / "c" / "fec_example.c", shared),
        "fec_example_static": (ROOT / "ffi-examples" / "c" / "fec_example.c", static),
        "htx_client": (ROOT / "ffi-examples" / "c" / "htx_client.c", shared),
        "fec_speed": (ROOT / "tests" / "cross" / "fec_speed.c", shared),
    }
    exes = {}
    for name, (src, libs) in progs.items():
        exe = out / name
        run([cc] + CFLAGS + inc + ["-o", exe, src] + libs)
        exes[name] = exe
    return exes


def run_kat(cmd: list, env: dict, kernel: str) -> None:
    """kat under qemu; its report shown; fails unless it passed on the expected FEC kernel."""
    print("+", " ".join(short(c) for c in cmd), flush=True)
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True)
    print(p.stdout + p.stderr, end="", flush=True)
    if p.returncode != 0:
        raise SystemExit(f"kat failed ({p.returncode})")
    if f"FEC kernel {kernel}," not in p.stdout:          # NEON is found and is what ran
        raise SystemExit(f"expected the {kernel} FEC kernel")


def qemu(triplet: str, cpu: str | None = None) -> list[str]:
    return [QEMU[triplet]] + (["-cpu", cpu] if cpu else []) + ["-L", f"/usr/{triplet}"]


class EchoServer:
    """betanet.htx.serve with an echo handler, in a thread of this (native) process."""

    def __enter__(self):
        from betanet import htx
        self.priv = htx.generate_private_key()
        self.public_hex = htx.public_key(self.priv).hex()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def echo(conn):
            st = await conn.accept_stream()
            data = bytearray()
            while chunk := await st.read():
                data += chunk
            st.write(bytes(data))
            await st.drain()
            st.write_eof()

        async def start():
            self.server = await htx.serve(echo, "127.0.0.1", 0, self.priv, transport="plain")
            self.port = self.server.port
            ready.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(start()),
                                                       self.loop.run_forever()), daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise SystemExit("HTX echo server did not start")
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def run_target(triplet: str, bdir: Path, exes: dict[str, Path]) -> None:
    env = dict(os.environ, LD_LIBRARY_PATH=str(bdir))
    spec = ROOT / "tests" / "vectors" / "cross_spec.txt"
    x86 = ROOT / "tests" / "vectors" / "cross_x86.txt"
    q = qemu(triplet)
    run_kat(q + [exes["kat"], spec, x86], env, KERNEL[triplet])
    run_kat(q + [exes["kat_static"], spec, x86], env, KERNEL[triplet])
    for cpu, kernel in EXTRA_CPUS.get(triplet, []):
        run_kat(qemu(triplet, cpu) + [exes["kat"], spec, x86], env, kernel)
    # relative only: qemu timings are not hardware timings (docs/porting.md)
    run(q + [exes["fec_speed"], os.environ.get("BETANET_CROSS_SPEED_ROUNDS", "10")], env=env)
    run(q + [exes["fec_example"]], env=env, stdout=subprocess.DEVNULL)
    run(q + [exes["fec_example_static"]], env=env, stdout=subprocess.DEVNULL)
    with EchoServer() as srv:
        for message in ("hello from an ARM host", "x" * 65535):
            p = run(q + [exes["htx_client"], "127.0.0.1", str(srv.port), srv.public_hex, message], env=env,
                    capture_output=True, text=True)
            if p.stdout != f"echo: {message}\n":
                raise SystemExit(f"{triplet}: htx_client got {p.stdout[:80]!r}")
        wrong = "11" * 32
        p = subprocess.run(q + [str(exes["htx_client"]), "127.0.0.1", str(srv.port), wrong], env=env,
                           capture_output=True, text=True)
        if p.returncode != 2:
            raise SystemExit(f"{triplet}: htx_client with a wrong server key exited {p.returncode}")


def firmware(triplet: str) -> None:
    """The firmware build (-DBETANET_FIRMWARE=ON, -Os) of one target: libbetanet.a needs no
    pthread and no malloc/free; kat linked without -lpthread passes from a static arena."""
    bdir = ROOT / "build" / f"fw-{triplet}"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    run(["cmake", "-S", ROOT, "-B", bdir, "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={ROOT}/cmake/{triplet}.cmake",
         "-DBETANET_FIRMWARE=ON", "-DCMAKE_BUILD_TYPE=MinSizeRel", f"-DPython_EXECUTABLE={sys.executable}"],
        env=env, stdout=subprocess.DEVNULL)
    run(["cmake", "--build", bdir], env=env, stdout=subprocess.DEVNULL)
    undefined = {w[-1] for w in map(str.split, sh_out([f"{triplet}-nm", "-u", bdir / "libbetanet.a"])) if w}
    banned = sorted(u for u in undefined if u.startswith("pthread_") or u in ("malloc", "free", "calloc", "realloc"))
    if banned:
        raise SystemExit(f"{triplet} firmware build still needs {banned}")
    exe = bdir / "kat_firmware"
    run([f"{triplet}-gcc"] + CFLAGS + ["-I", ROOT / "include", "-o", exe, ROOT / "tests" / "cross" / "kat.c",
                                       bdir / "libbetanet.a", "-lsodium", "-lm"])
    vec = ROOT / "tests" / "vectors"
    run_kat(qemu(triplet) + [exe, "--firmware", vec / "cross_spec.txt", vec / "cross_x86.txt"], dict(os.environ),
            KERNEL[triplet])


def sh_out(cmd: list) -> list[str]:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True).stdout.splitlines()


def main(argv: list[str]) -> int:
    triplets = argv or sorted(p.stem for p in (ROOT / "cmake").glob("*-linux-*.cmake"))
    times = []
    for t in triplets:
        t0 = time.monotonic()
        bdir = build(t)
        t1 = time.monotonic()
        python_free(t, bdir)
        exes = compile_programs(t, bdir)
        t2 = time.monotonic()
        run_target(t, bdir, exes)
        t3 = time.monotonic()
        times.append(f"{t}: build {t1 - t0:.0f} s, test programs {t2 - t1:.0f} s, qemu runs {t3 - t2:.0f} s")
        if t in FIRMWARE:
            firmware(t)
            times.append(f"{t} firmware build and kat: {time.monotonic() - t3:.0f} s")
    print("test-cross passed:\n  " + "\n  ".join(times))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
