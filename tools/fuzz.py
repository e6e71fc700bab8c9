"""Coverage-guided fuzzing of the C core with clang's libFuzzer: the build (shared with
tests/test_fuzz.py) and `make fuzz` campaigns.

    python tools/fuzz.py campaign [--minutes N] [--only htx_parser,...]
    python tools/fuzz.py campaign --minutes 6 --until 09:20 --order remaining
    python tools/fuzz.py campaign --minutes 10 --only mesh_reasm --jobs 2
    python tools/fuzz.py table

A campaign runs every tests/fuzz/fuzz_<name>.c for N minutes (niced, one harness at a time,
--jobs fuzzer processes of it at once, each keeping its own finds), from its built-in seeds
and tests/fuzz/corpus/<name>/, then merges what it found back into that directory once,
minimised (`-merge=1`: only inputs that add coverage stay). Every run is
appended to the ledger tests/fuzz/campaigns.json (date, wall and CPU seconds, executions,
edges = libFuzzer's `cov:`, features, corpus sizes, findings, load average, commit), so runs
that resume from the checked-in corpora add up; `table` prints the cumulative totals. With
--until, rounds of N minutes go on until that UTC time, each to the harness furthest (in
CPU time at its own rate) from TARGET executions. A crash input is kept as
build/fuzz/<name>/crash-* and the run fails.
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
LEDGER = FUZZ / "campaigns.json"
TARGET = 10_000_000           # executions per harness before issue 13 counts a campaign done
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
    inputs = [harness, core, FUZZ / "dump_seeds.c", *(ROOT / "include").rglob("*.h")]
    if exe.exists() and dumper.exists() and \
            min(exe.stat().st_mtime, dumper.stat().st_mtime) > max(p.stat().st_mtime for p in inputs):
        return exe, dumper                 # rounds of a long campaign reuse the binaries
    _run(["clang", *FLAGS, "-fsanitize=fuzzer,address,undefined", *inc, harness, core, *LINK_GC,
          "-o", exe])
    _run(["clang", *FLAGS, "-fsanitize=fuzzer-no-link,address,undefined", *inc,
          FUZZ / "dump_seeds.c", harness, core, *LINK_GC, "-o", dumper])
    return exe, dumper


def write_seeds(dumper: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    _run([dumper, into], env=dict(os.environ, **SAN_ENV))


# clang 14's libFuzzer looks every feature an input hits up in a plain vector of "rare"
# features (std::find), and keeps every feature seen fewer than 256 times in it: with the
# 10 000+ features of sphinx_process or navigator_graph that search was 68-77 % of the CPU
# time. A threshold of 4 keeps the list short (still at least the 100 rarest); measured on
# equal numbers of executions from the same corpus: navigator_graph 880 -> 5 069 and
# sphinx_process 1 079 -> 3 310 executions per CPU second, coverage and features no lower.
ENTROPIC = ["-entropic_feature_frequency_threshold=4"]


def fuzz_args(seconds: int, artifacts: Path, seed: int | None = None) -> list[str]:
    args = [f"-max_total_time={seconds}", "-max_len=65536", "-rss_limit_mb=2048", "-timeout=25",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}/", *ENTROPIC]
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
        return len(keep) - trim_corpus(corpus)


CORPUS_BUDGET = 2_000_000       # bytes per checked-in corpus (tests/test_fuzz.py: under 2 MiB)


def trim_corpus(corpus: Path, budget: int = CORPUS_BUDGET) -> int:
    """Drop the largest inputs until the corpus fits ``budget``; how many were dropped.
    Minimised corpora grow towards long inputs: mesh_reasm's reached 2.35 MB, and trimmed
    to 1.99 MB (its 11 inputs over 26 KB dropped) it reaches the same 1 699 edges."""
    files = sorted(corpus.iterdir(), key=lambda f: f.stat().st_size)
    total, dropped = sum(f.stat().st_size for f in files), 0
    while files and total > budget:
        f = files.pop()
        total -= f.stat().st_size
        f.unlink()
        dropped += 1
    return dropped


def campaign_one(harness: Path, core: Path, work: Path, seconds: int, jobs: int = 1,
                 corpus: Path | None = None) -> dict:
    """One round of a harness: ``jobs`` fuzzer processes at once (each with its own
    discoveries and artifacts, all starting from the corpus), then one merge of everything
    they found into the corpus, so concurrent merges never race. One ledger row: executions
    and CPU summed over the processes, edges and features of the best one."""
    name = harness.stem.removeprefix("fuzz_")
    hw = work / name
    exe, dumper = build_harness(harness, core, hw / "bin")
    seeds = hw / "seeds"
    write_seeds(dumper, seeds)
    outs = [hw if j == 0 else hw / f"job{j}" for j in range(jobs)]
    for o in outs:
        (o / "found").mkdir(parents=True, exist_ok=True)
    corpus = corpus or corpus_dir(harness)
    env = dict(os.environ, **SAN_ENV)
    t0 = time.monotonic()
    load_before = os.getloadavg()
    cpu0 = _child_cpu()
    procs = []
    for o in outs:                     # logs to files: a full pipe would stall a fuzzer
        with open(o / "fuzz.log", "w") as log:
            cmd = ["nice", "-n", "19", exe, *fuzz_args(seconds, o), o / "found", seeds]
            procs.append(subprocess.Popen([str(c) for c in cmd + ([corpus] if corpus.is_dir() else [])],
                                          stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=o))
    for p in procs:
        p.wait()
    cpu = _child_cpu() - cpu0
    load_after = os.getloadavg()
    stats = [parse_stats((o / "fuzz.log").read_text(errors="replace")) for o in outs]
    crashes = [str(p) for o in outs for kind in ("crash", "leak", "timeout", "oom")
               for p in sorted(o.glob(f"{kind}-*"))]
    before = len(list(corpus.iterdir())) if corpus.is_dir() else 0
    kept = merge_into(exe, corpus, [o / "found" for o in outs] + [seeds]) if not crashes else before
    executions = sum(st.get("number_of_executed_units", 0) for st in stats)
    row = {"harness": harness.stem, "seconds": round(time.monotonic() - t0, 1),
           "fuzz_seconds": seconds, "cpu_seconds": round(cpu, 1), "executions": executions,
           "exec_per_s": round(executions / max(seconds, 1)),
           "edges": max(st.get("edges", 0) for st in stats),
           "features": max(st.get("features", 0) for st in stats),
           "peak_rss_mb": max(st.get("peak_rss_mb", 0) for st in stats), "corpus_before": before,
           "corpus_after": kept, "corpus_bytes": _dir_bytes(corpus), "findings": crashes,
           "returncode": max(p.returncode for p in procs),
           "load_before": [round(x, 1) for x in load_before],
           "load_after": [round(x, 1) for x in load_after]}
    if jobs > 1:
        row["jobs"] = jobs
    return row


def _child_cpu() -> float:
    """User + system CPU seconds of the waited-for children so far (the fuzzer's own time,
    whatever the machine's load: the rate that compares across runs)."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.iterdir()) if d.is_dir() else 0


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


# ---- the ledger: every run, cumulative per harness --------------------------------------

def read_ledger(path: Path = LEDGER) -> list[dict]:
    return json.loads(path.read_text())["runs"] if path.exists() else []


def append_run(run: dict, path: Path = LEDGER) -> None:
    runs = read_ledger(path)           # re-read: a campaign of other harnesses may have written
    runs.append(run)
    path.write_text(json.dumps({"target_executions": TARGET, "runs": runs}, indent=1) + "\n")


def totals(runs: list[dict]) -> dict[str, dict]:
    """Per harness: executions and time summed over every run; edges/features of the latest
    run (each run starts from the merged corpus, so the latest is the coverage held now);
    the rate in executions per CPU second of the latest run that measured CPU time (runs
    recorded without it give their wall-clock rate, marked `wall_rate`)."""
    out: dict[str, dict] = {}
    for r in runs:
        t = out.setdefault(r["harness"], {"runs": 0, "executions": 0, "seconds": 0.0,
                                          "findings": [], "first": r["when"], "rate": None})
        t["runs"] += 1
        t["executions"] += r["executions"]
        t["seconds"] += r["seconds"]
        t["findings"] += [Path(f).name for f in r["findings"]]
        t["last"], t["edges"], t["features"] = r["when"], r["edges"], r["features"]
        t["corpus"] = r["corpus_after"]
        if r.get("cpu_seconds"):
            t["rate"], t["wall_rate"] = r["executions"] / r["cpu_seconds"], False
        elif t["rate"] is None and r.get("exec_per_s"):
            t["rate"], t["wall_rate"] = float(r["exec_per_s"]), True
    return out


def remaining_cpu_seconds(t: dict | None) -> float:
    """CPU seconds still needed for TARGET executions at the harness's latest rate
    (unknown rate: infinite, so it is run first)."""
    if t is None or not t["rate"]:
        return float("inf")
    return max(TARGET - t["executions"], 0) / t["rate"]


def campaign(minutes: float, only: list[str] | None, until: str | None = None,
             order: str = "name", jobs: int = 1) -> int:
    build = ROOT / "build" / "libfuzzer"
    work = ROOT / "build" / "fuzz"
    work.mkdir(parents=True, exist_ok=True)
    core = build_core(build)
    chosen = [h for h in harnesses() if not only or h.stem.removeprefix("fuzz_") in only]
    if only and len(chosen) != len(only):
        raise SystemExit(f"unknown harness in {only}; have "
                         f"{[h.stem.removeprefix('fuzz_') for h in harnesses()]}")
    stop = _stop_time(until) if until else None
    failed = 0
    while True:
        if stop is None:
            queue = chosen if order == "name" else _by_remaining(chosen)
        else:
            left = [h for h in _by_remaining(chosen)
                    if remaining_cpu_seconds(totals(read_ledger()).get(h.stem)) > 0]
            if not left or time.time() + minutes * 60 + 120 > stop:
                break                  # a round (plus its merge) would not end by --until
            queue = left[:1]
        for h in queue:
            r = campaign_one(h, core, work, int(minutes * 60), jobs)
            r["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            r["commit"] = _commit()
            append_run(r)
            print(f"{h.stem}: {r['executions']} execs ({r['exec_per_s']}/s, "
                  f"{r['executions'] / max(r['cpu_seconds'], 0.1):.0f}/CPU s), {r['edges']} edges, "
                  f"corpus {r['corpus_before']} -> {r['corpus_after']}, "
                  f"findings {r['findings'] or 'none'}", flush=True)
            failed += bool(r["findings"]) or r["returncode"] != 0
            if r["findings"]:
                return 1               # fix it first: the next rounds would stop there again
        if stop is None:
            break
    return 1 if failed else 0


def _stop_time(hhmm: str) -> float:
    """Today's HH:MM (UTC) as a time.time() value."""
    import calendar
    h, m = (int(x) for x in hhmm.split(":"))
    now = time.gmtime()
    return float(calendar.timegm((now.tm_year, now.tm_mon, now.tm_mday, h, m, 0)))


def _by_remaining(chosen: list[Path]) -> list[Path]:
    """Furthest from TARGET (CPU time at its own rate) first."""
    t = totals(read_ledger())
    return sorted(chosen, key=lambda h: -remaining_cpu_seconds(t.get(h.stem)))


def table() -> str:
    """The docs/fuzzing.md table: the ledger's cumulative totals per harness."""
    t = totals(read_ledger())
    rows = ["| harness | runs | wall min | executions | 10 M | edges | features | corpus | "
            "exec per CPU s (~ wall) | CPU h to 10 M | findings |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for h in harnesses():
        r = t.get(h.stem)
        if r is None:
            rows.append(f"| {h.stem} | 0 | | | no | | | | | | |")
            continue
        left = remaining_cpu_seconds(r)
        rate = f"{'~' if r.get('wall_rate') else ''}{r['rate']:,.0f}" if r["rate"] else "?"
        hours = "-" if left == 0 else ("?" if left == float("inf") else f"{left / 3600:.2f}")
        rows.append(
            f"| {h.stem} | {r['runs']} | {r['seconds'] / 60:.0f} | {r['executions']:,} | "
            f"{'yes' if r['executions'] >= TARGET else 'no'} | {r['edges']} | {r['features']} | "
            f"{r['corpus']} | {rate} | {hours} | "
            f"{', '.join(r['findings']) or 'none'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("campaign", help="fuzz every harness (or --only ones), then merge corpora")
    c.add_argument("--minutes", type=float, default=float(os.environ.get("FUZZ_MINUTES", "1")))
    c.add_argument("--only", default="", help="comma-separated harness names (without fuzz_)")
    c.add_argument("--until", default=None, metavar="HH:MM",
                   help="UTC time: run rounds of --minutes until then, furthest from 10 M first")
    c.add_argument("--order", choices=["name", "remaining"], default="name",
                   help="one pass in name order, or furthest from 10 M (CPU time) first")
    c.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "1")),
                   help="fuzzer processes per harness at once (one merge after them)")
    sub.add_parser("table", help="print the cumulative table of tests/fuzz/campaigns.json")
    a = p.parse_args(argv)
    if a.cmd == "table":
        print(table())
        return 0
    return campaign(a.minutes, [s for s in a.only.split(",") if s] or None, a.until, a.order,
                    max(1, a.jobs))


if __name__ == "__main__":
    sys.exit(main())
