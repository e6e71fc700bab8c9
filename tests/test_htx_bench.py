"""The HTX benchmark runs (tiny sizes) so it never rots."""
import subprocess
import sys
from pathlib import Path


def test_bench_quick():
    bench = Path(__file__).resolve().parent.parent / "bench" / "htx_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "htx quic / raw aioquic" in out.stdout
