"""The DTN store / TCPCLv4 benchmark runs (tiny sizes) so it never rots."""
import subprocess
import sys
from pathlib import Path


def test_bench_quick():
    bench = Path(__file__).resolve().parent.parent / "bench" / "dtn_store_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for row in ("durable store put", "plain SQLite", "TCPCLv4 over TLS", "asyncio TLS 1.3"):
        assert row in out.stdout
