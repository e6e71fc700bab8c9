"""The FL benchmark runs (quick sizes) so it never rots; no timing is asserted."""
import subprocess
import sys
from pathlib import Path


def test_bench_quick():
    bench = Path(__file__).resolve().parent.parent / "bench" / "fl_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for section in ("## Masking", "## One SecAgg+ round", "## Compression", "## Accountant"):
        assert section in out.stdout
