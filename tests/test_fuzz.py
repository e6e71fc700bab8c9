"""Bounded fuzzing of every C-core parser under ASan + UBSan.

Builds libbetanet with -DBETANET_SANITIZE=ON once, links each tests/fuzz/fuzz_*.c harness
(libFuzzer API) with tests/fuzz/driver.c, and runs it on a fixed seed for a bounded number
of inputs. Any out-of-bounds access, use-after-free, leak or undefined behaviour aborts the
harness and fails the test. Longer runs: build/asan/fuzz_X -n 10000000 -s $RANDOM.
Where clang is installed, each harness also gets a short coverage-guided libFuzzer run
(test_libfuzzer_harness, below).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run

FUZZ = ROOT / "tests" / "fuzz"
HARNESSES = sorted(FUZZ.glob("fuzz_*.c"))
ITERATIONS = int(os.environ.get("BETANET_FUZZ_ITERATIONS", "20000"))
SECONDS = int(os.environ.get("BETANET_FUZZ_SECONDS", "25"))
SAN_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


@pytest.fixture(scope="session")
def asan_lib(tool_env) -> Path:
    """libbetanet built with AddressSanitizer + UndefinedBehaviorSanitizer."""
    build = ROOT / "build" / "asan"
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=tool_env["PATH"]) else []
    run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, f"-DPython_EXECUTABLE={sys.executable}",
         "-DBETANET_SANITIZE=ON", "-DBETANET_BUILD_STATIC=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
        env=tool_env)
    run(["cmake", "--build", str(build), "--target", "betanet"], env=tool_env)
    return build


@pytest.mark.skipif(not HARNESSES, reason="no fuzz harness yet")
@pytest.mark.parametrize("harness", HARNESSES, ids=[h.stem for h in HARNESSES])
def test_fuzz_harness(harness: Path, asan_lib: Path):
    exe = asan_lib / harness.stem
    run(["cc", "-g", "-O1", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
         "-I", str(ROOT / "include"), str(FUZZ / "driver.c"), str(harness), "-o", str(exe),
         f"-L{asan_lib}", "-lbetanet", "-lsodium", f"-Wl,-rpath,{asan_lib}"])
    corpus = sorted((FUZZ / "corpus" / harness.stem.removeprefix("fuzz_")).glob("*"))
    env = dict(os.environ, **SAN_ENV)
    proc = subprocess.run([str(exe), "-n", str(ITERATIONS), "-s", "20261120", "-t", str(SECONDS),
                           *map(str, corpus)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"{harness.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert "fuzz:" in proc.stdout


# ---- coverage-guided: the same harnesses under clang's libFuzzer ---------------------------
# Built by tools/fuzz.py (the same build `make fuzz` campaigns use): the core's objects
# compiled by clang with ASan + UBSan + libFuzzer coverage, linked into each harness.
# Without clang the gcc driver above is the fallback.
sys.path.insert(0, str(ROOT / "tools"))
import fuzz as fuzztool  # noqa: E402

LIBFUZZER_SECONDS = int(os.environ.get("BETANET_LIBFUZZER_SECONDS", "5"))


@pytest.fixture(scope="session")
def libfuzzer_core(tool_env) -> Path:
    if shutil.which("clang") is None:
        pytest.skip("clang is missing: the gcc driver (test_fuzz_harness) runs the harnesses")
    try:
        return fuzztool.build_core(ROOT / "build" / "libfuzzer", tool_env)
    except RuntimeError as e:
        pytest.fail(str(e))


# Findings of the clang build not fixed yet (outside the fuzzing work): xfail, not hidden.
LIBFUZZER_FINDINGS: dict[str, str] = {}   # harness stem -> reason; none open


@pytest.mark.skipif(not HARNESSES, reason="no fuzz harness yet")
@pytest.mark.parametrize("harness", [
    pytest.param(h, marks=pytest.mark.xfail(reason=LIBFUZZER_FINDINGS[h.stem]))
    if h.stem in LIBFUZZER_FINDINGS else h for h in HARNESSES], ids=[h.stem for h in HARNESSES])
def test_libfuzzer_harness(harness: Path, libfuzzer_core: Path, tmp_path: Path):
    """A short coverage-guided run per harness (BETANET_LIBFUZZER_SECONDS, default 5), from
    the harness's built-in seeds and its checked-in corpus tests/fuzz/corpus/<name>/ (every
    past finding's input is there, so a regression fails here first); campaigns: `make fuzz`."""
    try:
        exe, dumper = fuzztool.build_harness(harness, libfuzzer_core, tmp_path)
        seeds, work = tmp_path / "seeds", tmp_path / "corpus"
        fuzztool.write_seeds(dumper, seeds)
    except RuntimeError as e:
        pytest.fail(str(e))
    work.mkdir()
    env = dict(os.environ, **SAN_ENV)
    dirs = [work, seeds]
    repo_corpus = fuzztool.corpus_dir(harness)
    if repo_corpus.is_dir():
        dirs.append(repo_corpus)          # read only: libFuzzer writes new inputs to the first
    proc = subprocess.run([str(exe), *fuzztool.fuzz_args(LIBFUZZER_SECONDS, tmp_path, seed=20261120),
                           *map(str, dirs)],
                          capture_output=True, text=True, env=env, timeout=300 + LIBFUZZER_SECONDS)
    assert proc.returncode == 0, f"{harness.name} failed under libFuzzer:\n{proc.stderr[-6000:]}"
    assert "stat::number_of_executed_units" in proc.stderr


def test_a_corpus_over_its_budget_loses_its_largest_inputs(tmp_path: Path):
    for i, n in enumerate([10, 500, 40, 300, 20]):
        (tmp_path / f"in{i}").write_bytes(bytes(n))
    assert fuzztool.trim_corpus(tmp_path, budget=300) == 2          # the 500 and 300 bytes
    assert sorted(f.stat().st_size for f in tmp_path.iterdir()) == [10, 20, 40]
    assert fuzztool.trim_corpus(tmp_path, budget=300) == 0


def test_a_campaign_round_with_two_jobs_sums_them_and_merges_once(libfuzzer_core: Path, tmp_path: Path):
    """`make fuzz FUZZ_JOBS=2`: two fuzzer processes of one harness at once, each with its own
    finds; one merge into the corpus after both; one ledger row that sums their executions."""
    harness = next(h for h in HARNESSES if h.stem == "fuzz_mesh_decode")
    corpus = tmp_path / "corpus"
    shutil.copytree(fuzztool.corpus_dir(harness), corpus)
    row = fuzztool.campaign_one(harness, libfuzzer_core, tmp_path / "work", 2, jobs=2, corpus=corpus)
    hw = tmp_path / "work" / "mesh_decode"
    logs = [hw / "fuzz.log", hw / "job1" / "fuzz.log"]
    execs = [fuzztool.parse_stats(p.read_text())["number_of_executed_units"] for p in logs]
    assert row["jobs"] == 2 and row["returncode"] == 0 and not row["findings"]
    assert row["executions"] == sum(execs) and min(execs) > 0
    assert row["corpus_after"] == len(list(corpus.iterdir())) > 0 and row["edges"] > 0


@pytest.mark.parametrize("harness", HARNESSES, ids=[h.stem for h in HARNESSES])
def test_every_harness_has_a_seed_corpus(harness: Path):
    """`make fuzz` keeps a minimised corpus per harness in the tree; the short runs above and
    the gcc driver start from it. 2 MiB at most: fec_correct needs inputs of 8-28 KB (shards
    of 4 KiB and more reach the prefetching long-region kernels; without its inputs over 8 KB
    its corpus covers 2128 edges instead of 2326), which makes its minimised corpus ~1.9 MB."""
    corpus = fuzztool.corpus_dir(harness)
    files = list(corpus.glob("*")) if corpus.is_dir() else []
    assert files, f"no seed corpus in {corpus.relative_to(ROOT)} (run `make fuzz`)"
    assert sum(f.stat().st_size for f in files) < 2 << 20, "keep checked-in corpora small"


def test_campaign_stats_are_read_from_libfuzzer_output():
    """docs/fuzzing.md's numbers come from parse_stats: the last status line's cov/ft and
    the final stats block."""
    log = ("#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n"
           "#4096\tpulse  cov: 91 ft: 200 corp: 9/90b lim: 4 exec/s: 2048 rss: 31Mb\n"
           "#9000\tDONE   cov: 93 ft: 210 corp: 10/99b lim: 4 exec/s: 3000 rss: 31Mb\n"
           "stat::number_of_executed_units: 9000\nstat::average_exec_per_sec:     3000\n"
           "stat::peak_rss_mb:              31\n")
    assert fuzztool.parse_stats(log) == {"number_of_executed_units": 9000, "average_exec_per_sec": 3000,
                                         "peak_rss_mb": 31, "edges": 93, "features": 210}


def test_campaign_ledger_adds_up_runs(tmp_path: Path):
    """tests/fuzz/campaigns.json: executions add up over runs that resume from the corpus;
    edges are the latest run's; the estimate to 10 M uses the latest CPU-time rate."""
    ledger = tmp_path / "campaigns.json"
    base = {"harness": "fuzz_x", "seconds": 60.0, "findings": [], "corpus_after": 5}
    fuzztool.append_run(dict(base, when="d1", executions=4_000_000, cpu_seconds=None,
                             exec_per_s=1000, edges=10, features=20), ledger)
    fuzztool.append_run(dict(base, when="d2", executions=1_000_000, cpu_seconds=100.0,
                             edges=12, features=25, findings=["/w/crash-1"]), ledger)
    t = fuzztool.totals(fuzztool.read_ledger(ledger))["fuzz_x"]
    assert (t["runs"], t["executions"], t["edges"], t["features"]) == (2, 5_000_000, 12, 25)
    assert t["rate"] == 10_000 and t["findings"] == ["crash-1"] and t["first"] == "d1"
    assert fuzztool.remaining_cpu_seconds(t) == 500.0          # 5 M left at 10 000 per CPU s
    fuzztool.append_run(dict(base, when="d3", executions=6_000_000, cpu_seconds=600.0,
                             edges=12, features=25), ledger)
    t = fuzztool.totals(fuzztool.read_ledger(ledger))["fuzz_x"]
    assert fuzztool.remaining_cpu_seconds(t) == 0 and t["executions"] == 11_000_000


def test_campaign_ledger_is_checked_in_and_covers_every_run():
    """Every ledger row names a harness that exists and the numbers the table sums."""
    runs = fuzztool.read_ledger()
    assert runs, "tests/fuzz/campaigns.json is missing"
    names = {h.stem for h in HARNESSES}
    for r in runs:
        assert r["harness"] in names
        assert r["executions"] >= 0 and r["edges"] >= 0 and isinstance(r["findings"], list)
    assert "| fuzz_bundle_parse |" in fuzztool.table()
