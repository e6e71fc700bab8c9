"""The Noise benchmark runs (tiny sizes) so it never rots."""
import subprocess
import sys
from pathlib import Path


def test_noise_bench_quick():
    bench = Path(__file__).resolve().parent.parent / "bench" / "noise_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "noise xk core / noiseprotocol speed" in out.stdout
    assert "noise xk core per side / its 4 x X25519" in out.stdout
