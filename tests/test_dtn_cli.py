"""`betanet dtn node / send / ping / status` as real processes."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(120)
BETANET = [sys.executable, "-m", "betanet"]


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*BETANET, "dtn", *args], capture_output=True, text=True, timeout=60, **kw)


def test_node_send_ping_status(tmp_path):
    port = _port()
    store = str(tmp_path / "c.db")
    node = subprocess.Popen([*BETANET, "dtn", "node", "--id", "ipn:3.0", "--store", store, "--tcpcl",
                             f"127.0.0.1:{port}", "--register", "ipn:3.1", "--duration", "60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout.readline().startswith("tcpcl listening")
        assert "running" in node.stdout.readline()
        r = _cli("ping", "--via", f"tcpcl:127.0.0.1:{port}", "ipn:3.0", "-c", "2", "-i", "0.05")
        assert r.returncode == 0, r.stderr
        assert "2 sent, 2 received" in r.stdout
        r = _cli("send", "--via", f"tcpcl:127.0.0.1:{port}", "--to", "ipn:3.1", "--custody", "--report",
                 "hello dtn")
        assert r.returncode == 0, r.stderr
        assert "DELIVERED" in r.stdout and "custody accepted" in r.stdout
        line = json.loads(node.stdout.readline())
        assert line["payload"] == "hello dtn" and line["endpoint"] == "ipn:3.1"
        time.sleep(1.5)   # the node writes its status file every second
        r = _cli("status", "--store", store, "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert st["store"]["delivered"]["count"] == 1
        assert st["node"] == "ipn:3.0" and st["counters"]["echo"] == 2
    finally:
        node.terminate()
        node.wait(10)


def test_bad_arguments_are_one_line_errors(tmp_path):
    r = _cli("send", "--via", "carrier-pigeon:1.2.3.4:5", "--to", "ipn:3.1", "x")
    assert r.returncode == 2 and "tcpcl, mtcp or udp" in r.stderr and "Traceback" not in r.stderr
    r = _cli("status", "--store", str(tmp_path / "missing.db"))
    assert r.returncode == 2 and "no such store" in r.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    r = _cli("status", "--store", str(junk))
    assert r.returncode == 2 and "not a bundle store" in r.stderr
    r = _cli("node", "--id", "ipn:1.0", "--store", str(tmp_path / "x.db"), "--route", "nonsense")
    assert r.returncode == 2 and "PATTERN=NODE" in r.stderr


def test_send_to_a_node_that_is_not_there_is_a_one_line_error():
    r = _cli("send", "--via", f"tcpcl:127.0.0.1:{_port()}", "--to", "ipn:3.1", "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_demo_section_runs_and_reports_no_failure():
    r = subprocess.run([*BETANET, "demo", "dtn"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 failure(s)" in r.stdout and "exactly once" in r.stdout and "[FAIL]" not in r.stdout
