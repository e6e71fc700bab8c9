"""The netns harness itself: topology, routes, forwarding, link down/up, processes (logs,
kill -9, restart) and teardown that leaves nothing behind, even after a crash or a failure."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from netns_harness import IP, Network, _ip, cleanup_stale, netns, require_netns  # noqa: F401


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("links", [("a-a",), ("a-b", "b-a"), ("A-b",), ("toolongname-b",)])
def test_bad_topologies_are_refused(links):
    with pytest.raises(ValueError):
        Network(*links)


def test_routes_span_a_chain_and_forwarding_off_confines_hosts_to_neighbours(netns):
    net = netns("a-b", "b-c", "c-d")
    assert net["a"].reachable(net.addr("d", "c"))
    assert net["d"].reachable(net.addr("a", "b"))
    closed = netns("a-r", "r-b", forward=False)
    assert closed["a"].reachable(closed.addr("r", "a"))
    assert not closed["a"].reachable(closed.addr("b", "r"), timeout=0.5)


def test_link_down_cuts_and_link_up_restores_the_routes_through_it(netns):
    net = netns("a-b", "b-c")
    far = net.addr("c", "b")
    net.link_down("b", "c")
    assert not net["a"].reachable(far, timeout=0.5)
    net.link_up("b", "c")
    assert net["a"].reachable(far)
    assert "via" in net["a"].run("ip", "route", "get", far).stdout


def test_processes_log_are_killed_and_restarted(netns):
    net = netns("a-b")
    p = net["a"].python("sleeper", "-c", "import os, time; print('pid', os.getpid(), flush=True); time.sleep(60)")
    first = int(p.wait_for(r"^pid (\d+)").group(1))
    assert first == p.pid                       # ip netns exec execs: the pid is the program's
    p.kill9()
    assert not p.alive() and p.popen.returncode == -signal.SIGKILL
    p.restart()
    second = int(p.wait_for(r"^pid (\d+)").group(1))
    assert second != first and p.runs == 2
    text = p.log_path.read_text()
    assert "--- run 1" in text and "--- run 2" in text and f"pid {first}" in text
    with pytest.raises(pytest.fail.Exception, match="timed out"):
        p.wait_for("never printed", timeout=0.3)


def test_teardown_kills_every_process_and_deletes_every_namespace_even_on_error(tmp_path):
    require_netns()
    net = Network("a-b", "b-c", log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with net:
            p = net["b"].python("sleeper", "-c", "import time; print('up', flush=True); time.sleep(60)")
            p.wait_for("up")
            # a grandchild in its own session, which only the namespace sweep finds
            net["c"].run("sh", "-c", f"setsid {sys.executable} -c 'import time; time.sleep(60)' "
                                     ">/dev/null 2>&1 &")
            orphans = _ip("netns", "pids", net["c"].ns).stdout.split()
            assert orphans
            raise RuntimeError("boom")
    assert not any(n.startswith(net.tag) for n in _namespaces())
    assert not p.alive()
    time.sleep(0.2)
    for pid in orphans:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


def test_cleanup_removes_what_a_crashed_run_left_and_spares_live_runs():
    require_netns()
    # a pid that is not running stands for the crashed run
    dead = next(p for p in range(4_000_000, 4_100_000) if not os.path.exists(f"/proc/{p}"))
    stale, live = f"bnt{dead}x1-a", f"bnt{os.getpid()}x999-a"
    for name in (stale, live):
        _ip("netns", "add", name)
    sleeper = subprocess.Popen([IP, "netns", "exec", stale, sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)
    try:
        time.sleep(0.3)
        removed = cleanup_stale()
        assert stale in removed and live not in removed
        assert stale not in _namespaces() and live in _namespaces()
        assert sleeper.wait(10) == -signal.SIGKILL
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        for name in (stale, live):
            _ip("netns", "del", name, check=False)


def test_unavailable_reasons_name_what_is_missing(monkeypatch):
    import netns_harness as h
    monkeypatch.setattr(h.os, "geteuid", lambda: 1000)
    assert h.unavailable_reason() == "network namespace tests need root (ip netns add)"
    monkeypatch.setattr(h.os, "geteuid", lambda: 0)
    monkeypatch.setattr(h, "IP", "/nonexistent/ip")
    assert "iproute2" in h.unavailable_reason()
