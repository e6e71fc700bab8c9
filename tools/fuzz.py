"""Coverage-guided fuzzing of the C core with clang's libFuzzer: the build (shared with
tests/test_fuzz.py) and `make fuzz` campaigns.

    python tools/fuzz.py campaign [--minutes N] [--only htx_parser,...]

A campaign runs every tests/fuzz/fuzz_<name>.c for N minutes (niced), from its built-in
seeds and tests/fuzz/corpus/<name>/, then merges what it found back into that directory,
minimised (`-merge=1`: only inputs that add coverage stay). Per-harness executions, edges
(libFuzzer's `cov:`), features and findings go to build/fuzz/campaign.json; a crash input is
kept as build/fuzz/<name>/crash-* and the run fails.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"
CORPUS = FUZZ / "corpus"
FLAGS = ["-g", "-O1", "-fno-omit-frame-pointer"]
LINK_GC = ["-Wl,--gc-sections", "-Wl,-z,start-stop-gc", "-lsodium", "-lm", "-lpthread"]
SAN_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


def harnesses() -> list[Path]:
    return sorted(FUZZ.glob("fuzz_*.c"))


def corpus_dir(harness: Path) -> Path:
    """The checked-in corpus of a harness: tests/fuzz/corpus/<name without fuzz_>/."""
    return CORPUS / harness.stem.removeprefix("fuzz_")


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def build_core(build: Path, env: dict[str, str] | None = None) -> Path:
    """The core's objects compiled by clang with ASan + UBSan + libFuzzer coverage, merged
    into one relocatable object whose only globals are betanet_*.

    The shared library's --no-undefined link fails under clang's ASan (its runtime is not
    linked into shared objects), so harnesses link these objects instead; the Cython module
    machinery is then garbage to --gc-sections, as in the library."""
    env = env or tool_env()
    clang = shutil.which("clang")
    if clang is None:
        raise FileNotFoundError("clang")
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=env["PATH"]) else []
    flags = " ".join(FLAGS + ["-fsanitize=fuzzer-no-link,address,undefined", "-mllvm", "-asan-globals=0"])
    _run(["cmake", "-S", ROOT, "-B", build, *gen, f"-DPython_EXECUTABLE={sys.executable}",
          f"-DCMAKE_C_COMPILER={clang}", f"-DCMAKE_C_FLAGS={flags}", "-DBETANET_BUILD_STATIC=OFF",
          "-DCMAKE_BUILD_TYPE=Debug"], env=env)
    _run(["cmake", "--build", build, "--target", "betanet_core_objs"], env=env)
    objs = sorted(str(p) for p in build.glob("CMakeFiles/betanet_core_objs.dir/**/*.o"))
    if not objs:
        raise RuntimeError("no core objects were built")
    merged, core = build / "core_merged.o", build / "core_fuzz.o"
    _run(["ld", "-r", "-o", merged, *objs])
    names = _run(["nm", "-g", "--defined-only", merged]).stdout.split()
    keep = build / "core_fuzz.keep"
    keep.write_text("\n".join(sorted({n for n in names if n.startswith("betanet_")})) + "\n")
    _run(["objcopy", f"--keep-global-symbols={keep}", merged, core])
    return core


def build_harness(harness: Path, core: Path, out: Path) -> tuple[Path, Path]:
    """The libFuzzer binary of one harness and its seed writer (dump_seeds.c, own main)."""
    inc = ["-I", ROOT / "include"]
    out.mkdir(parents=True, exist_ok=True)
    exe, dumper = out / harness.stem, out / f"{harness.stem}_seeds"
    _run(["clang", *FLAGS, "-fsanitize=fuzzer,address,undefined", *inc, harness, core, *LINK_GC,
          "-o", exe])
    _run(["clang", *FLAGS, "-fsanitize=fuzzer-no-link,address,undefined", *inc,
          FUZZ / "dump_seeds.c", harness, core, *LINK_GC, "-o", dumper])
    return exe, dumper


def write_seeds(dumper: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    _run([dumper, into], env=dict(os.environ, **SAN_ENV))


def fuzz_args(seconds: int, artifacts: Path, seed: int | None = None) -> list[str]:
    args = [f"-max_total_time={seconds}", "-max_len=65536", "-rss_limit_mb=2048", "-timeout=25",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}/"]
    if seed is not None:
        args.append(f"-seed={seed}")
    return args


_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_COV = re.compile(r"cov: (\d+) ft: (\d+)")


def parse_stats(stderr: str) -> dict[str, int]:
    """Executions and peak rss from -print_final_stats; edges/features from the last status."""
    stats = {k: int(v) for k, v in _STAT.findall(stderr)}
    cov = _COV.findall(stderr)
    if cov:
        stats["edges"], stats["features"] = int(cov[-1][0]), int(cov[-1][1])
    return stats


def merge_into(exe: Path, corpus: Path, sources: list[Path]) -> int:
    """Minimise: keep the smallest set of inputs from corpus + sources with the same
    coverage, written back to corpus. Returns the number of files kept."""
    with tempfile.TemporaryDirectory(dir=corpus.parent) as tmp:
        fresh = Path(tmp) / "merged"
        fresh.mkdir()
        dirs = [d for d in [corpus, *sources] if d.is_dir()]
        _run(["nice", "-n", "19", exe, "-merge=1", "-max_len=65536", "-rss_limit_mb=2048",
              "-timeout=25", fresh, *dirs], env=dict(os.environ, **SAN_ENV))
        keep = sorted(fresh.iterdir())
        if corpus.is_dir():
            shutil.rmtree(corpus)
        corpus.mkdir(parents=True)
        for f in keep:
            shutil.copy2(f, corpus / f.name)
        return len(keep)


def campaign_one(harness: Path, core: Path, work: Path, seconds: int) -> dict:
    name = harness.stem.removeprefix("fuzz_")
    hw = work / name
    exe, dumper = build_harness(harness, core, hw / "bin")
    seeds, found = hw / "seeds", hw / "found"
    write_seeds(dumper, seeds)
    found.mkdir(exist_ok=True)
    corpus = corpus_dir(harness)
    env = dict(os.environ, **SAN_ENV)
    t0 = time.monotonic()
    dirs = [found, seeds] + ([corpus] if corpus.is_dir() else [])
    cmd = ["nice", "-n", "19", exe, *fuzz_args(seconds, hw), *dirs]
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env, cwd=hw)
    log = proc.stderr
    (hw / "fuzz.log").write_text(log)
    stats = parse_stats(log)
    crashes = sorted(str(p) for p in hw.glob("crash-*")) + sorted(str(p) for p in hw.glob("leak-*")) \
        + sorted(str(p) for p in hw.glob("timeout-*")) + sorted(str(p) for p in hw.glob("oom-*"))
    before = len(list(corpus.iterdir())) if corpus.is_dir() else 0
    kept = merge_into(exe, corpus, [found, seeds]) if not crashes else before
    return {"harness": harness.stem, "seconds": round(time.monotonic() - t0, 1),
            "executions": stats.get("number_of_executed_units", 0),
            "exec_per_s": round(stats.get("number_of_executed_units", 0) / max(seconds, 1)),
            "edges": stats.get("edges", 0), "features": stats.get("features", 0),
            "peak_rss_mb": stats.get("peak_rss_mb", 0), "corpus_before": before,
            "corpus_after": kept, "findings": crashes, "returncode": proc.returncode}


def campaign(minutes: float, only: list[str] | None) -> int:
    build = ROOT / "build" / "libfuzzer"
    work = ROOT / "build" / "fuzz"
    work.mkdir(parents=True, exist_ok=True)
    core = build_core(build)
    chosen = [h for h in harnesses() if not only or h.stem.removeprefix("fuzz_") in only]
    if only and len(chosen) != len(only):
        raise SystemExit(f"unknown harness in {only}; have "
                         f"{[h.stem.removeprefix('fuzz_') for h in harnesses()]}")
    results_path = work / "campaign.json"
    failed = 0
    for h in chosen:
        r = campaign_one(h, core, work, int(minutes * 60))
        r["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # re-read: another campaign (other harnesses) may have written meanwhile
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[h.stem] = r
        results_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"{h.stem}: {r['executions']} execs ({r['exec_per_s']}/s), {r['edges']} edges, "
              f"corpus {r['corpus_before']} -> {r['corpus_after']}, findings {r['findings'] or 'none'}",
              flush=True)
        failed += bool(r["findings"]) or r["returncode"] != 0
    return 1 if failed else 0


def table() -> str:
    """The docs/fuzzing.md table from build/fuzz/campaign.json (missing harnesses: blank)."""
    path = ROOT / "build" / "fuzz" / "campaign.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    rows = ["| harness | wall min (run + merge) | executions | exec/s | edges | features | corpus kept | findings |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for h in harnesses():
        r = results.get(h.stem)
        if r is None:
            rows.append(f"| {h.stem} | not run | | | | | | |")
            continue
        found = ", ".join(Path(f).name for f in r["findings"]) or "none"
        rows.append(f"| {h.stem} | {r['seconds'] / 60:.1f} | {r['executions']:,} | {r['exec_per_s']:,} | "
                    f"{r['edges']} | {r['features']} | {r['corpus_after']} | {found} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("campaign", help="fuzz every harness (or --only ones), then merge corpora")
    c.add_argument("--minutes", type=float, default=float(os.environ.get("FUZZ_MINUTES", "1")))
    c.add_argument("--only", default="", help="comma-separated harness names (without fuzz_)")
    sub.add_parser("table", help="print the docs/fuzzing.md table of the last campaigns")
    a = p.parse_args(argv)
    if a.cmd == "table":
        print(table())
        return 0
    return campaign(a.minutes, [s for s in a.only.split(",") if s] or None)


if __name__ == "__main__":
    sys.exit(main())
