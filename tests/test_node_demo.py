"""`betanet demo node` runs and reports no failure."""
import subprocess
import sys


def test_demo_node_section():
    out = subprocess.run([sys.executable, "-m", "betanet", "demo", "node"], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 failure(s)" in out.stdout and out.stdout.count("[ok]") == 4
