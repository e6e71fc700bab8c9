"""The node benchmark runs (tiny sizes) so it never rots."""
import subprocess
import sys
from pathlib import Path


def test_bench_smoke():
    bench = Path(__file__).resolve().parent.parent / "bench" / "node_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "node / raw" in out.stdout and "failover" in out.stdout and "ble_on_air" in out.stdout
