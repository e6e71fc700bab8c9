"""Multi-host test harness: real processes in real Linux network namespaces (docs/testing.md).

    net = Network("a-r", "r-b", forward=False)      # hosts a, r, b; links a-r and r-b
    with net:                                       # or the ``netns`` fixture below
        srv = net["b"].spawn("srv", [sys.executable, "-m", "x", net.addr("b", "r")])
        srv.wait_for(r"ready (\\d+)")
        net.link_down("a", "r")                     # ip link set ... down, both ends
        srv.kill9(); srv.restart()

A topology is a list of links ``"x-y"``; hosts are the names used. Each link is a veth pair
between the two namespaces with a /30 from 10.<net>.<link>.0; every host gets routes to every
other host's addresses along a shortest path (BFS), and forwards IP unless ``forward=False``
(then only neighbours reach each other: traffic across must go through a relay process).

Namespaces are named ``bnt<pid>x<n>-<host>``: the pid of the test process that made them,
so ``cleanup_stale()`` removes what a crashed run left (its pid is gone) without touching a
concurrent run's. Teardown kills every process in each namespace (``ip netns pids``) before
deleting it; it runs from the fixture's finaliser and again at interpreter exit.
"""
from __future__ import annotations

import atexit
import collections
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

PREFIX = "bnt"
_NAME_RE = re.compile(rf"^{PREFIX}(\d+)x(\d+)-")
_counter = itertools.count(1)
_live: list["Network"] = []
IP = shutil.which("ip") or "/usr/sbin/ip"


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here; the message says why (tests skip with it)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([IP, *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be used by this process, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns add)"
    if not os.path.exists(IP):
        return "the ip command (iproute2) is not installed"
    name = f"{PREFIX}{os.getpid()}x0-probe"
    probe = _ip("netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"ip netns add is not permitted here: {probe.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(name: str) -> None:
    pids = _ip("netns", "pids", name, check=False).stdout.split()
    for p in pids:
        try:
            os.kill(int(p), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", name, check=False)


def cleanup_stale() -> list[str]:
    """Delete namespaces (and kill their processes) left by harness runs that died."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_namespace(name)
            removed.append(name)
    return removed


class Proc:
    """A process running in a namespace; stdout and stderr go to ``log_path`` (both are kept
    after the test for the failure report) and are read as lines by ``wait_for``."""

    def __init__(self, host: "Host", name: str, argv: list[str], env: dict | None, cwd) -> None:
        self.host, self.name, self.argv, self.env, self.cwd = host, name, argv, env, cwd
        self.runs = 0
        self.log_path = host.net.log_dir / f"{host.name}.{name}.log"
        self.popen: subprocess.Popen | None = None
        self._read_done = threading.Event()
        self._lines: list[str] = []          # every line of every run, in order
        self._cond = threading.Condition()
        self._pos = 0                        # wait_for consumes lines from here
        self.start()

    def start(self) -> None:
        self.runs += 1
        self._read_done = done = threading.Event()
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # `ip netns exec` execs the command: the pid is the program's own (kill -9 hits it)
        self.popen = subprocess.Popen([IP, "netns", "exec", self.host.ns, *self.argv],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env, cwd=self.cwd,
                                      start_new_session=True)
        threading.Thread(target=self._read, args=(self.popen, self.runs, done), daemon=True).start()

    def _read(self, popen: subprocess.Popen, run: int, done: threading.Event) -> None:
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            log.write(f"--- run {run}: {' '.join(map(str, self.argv))}\n")
            for raw in popen.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        done.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """The first line after the last match that matches ``pattern`` (regex search);
        fails the test with the log tail on timeout or when the process ends first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._pos < len(self._lines):
                    m = rx.search(self._lines[self._pos])
                    self._pos += 1
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and self._read_done.is_set()):
                    break
                self._cond.wait(min(left, 0.2))
        why = "timed out" if left <= 0 else f"process ended ({self.popen.returncode})"
        pytest.fail(f"{self.host.name}/{self.name}: {why} waiting for /{pattern}/; log tail:\n"
                    + "\n".join(self._lines[-30:]))

    def kill9(self) -> None:
        """SIGKILL, as a crash: no cleanup runs in the process."""
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.popen.returncode

    def restart(self) -> None:
        if self.alive():
            self.kill9()
        self.start()

    def wait(self, timeout: float = 30.0) -> int:
        return self.popen.wait(timeout)


class Host:
    def __init__(self, net: "Network", name: str) -> None:
        self.net, self.name = net, name
        self.ns = f"{net.tag}-{name}"
        self.procs: list[Proc] = []

    def run(self, *argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command in this namespace to completion (text output)."""
        proc = subprocess.run([IP, "netns", "exec", self.ns, *map(str, argv)], capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(map(str, argv))} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()}")
        return proc

    def reachable(self, addr: str, timeout: float = 1.0) -> bool:
        """Whether ``addr`` answers from this namespace: a TCP connect to a closed port is
        refused by a reachable host (no ping needed); a timeout or an unreachable error is not."""
        probe = ("import socket, sys\n"
                 "try:\n"
                 f"    socket.create_connection(({addr!r}, 9), timeout={timeout!r})\n"
                 "except ConnectionRefusedError:\n"
                 "    sys.exit(0)\n"
                 "except OSError:\n"
                 "    sys.exit(1)\n")
        return self.run(sys.executable, "-c", probe, check=False).returncode == 0

    def spawn(self, name: str, argv: list, env: dict | None = None, cwd=None) -> Proc:
        """Start a long-running process in this namespace (``Proc``)."""
        p = Proc(self, name, [str(a) for a in argv], env, cwd)
        self.procs.append(p)
        return p

    def python(self, name: str, *args, env: dict | None = None) -> Proc:
        """Start ``python args...`` with this interpreter (the test venv)."""
        return self.spawn(name, [sys.executable, *args], env=env)


class Network:
    """Namespaces and veth links for one test. ``links``: ``"a-b"`` strings or pairs;
    ``hosts``: more hosts with no link at all (only loopback)."""

    def __init__(self, *links, hosts=(), forward: bool = True,
                 log_dir: str | os.PathLike | None = None) -> None:
        self.links: list[tuple[str, str]] = []
        for spec in links:
            a, b = spec.split("-") if isinstance(spec, str) else spec
            if a == b or (a, b) in self.links or (b, a) in self.links:
                raise ValueError(f"bad or repeated link {spec!r}")
            if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", a) or not re.fullmatch(r"[a-z][a-z0-9]{0,5}", b):
                raise ValueError(f"host names are 1-6 lowercase letters/digits: {spec!r}")
            self.links.append((a, b))
        for h in hosts:
            if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", h):
                raise ValueError(f"host names are 1-6 lowercase letters/digits: {h!r}")
        if len(self.links) > 250:
            raise ValueError("at most 250 links")
        self.forward = forward
        self.tag = f"{PREFIX}{os.getpid()}x{next(_counter)}"
        self.log_dir = Path(log_dir) if log_dir else Path("/tmp") / self.tag
        self.log_dir.mkdir(parents=True, exist_ok=True)
        names = list(dict.fromkeys([*(h for link in self.links for h in link), *hosts]))
        self.hosts: dict[str, Host] = {n: Host(self, n) for n in names}
        self._addr: dict[tuple[str, str], str] = {}
        self._up = False

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def ifname(self, host: str, peer: str) -> str:
        """The interface in ``host``'s namespace on its link to ``peer``."""
        return f"v{peer}"

    def addr(self, host: str, peer: str | None = None) -> str:
        """``host``'s address on its link to ``peer`` (its first link when None)."""
        if peer is None:
            peer = next(b if a == host else a for a, b in self.links if host in (a, b))
        return self._addr[(host, peer)]

    def up(self) -> "Network":
        _live.append(self)
        self._up = True
        for h in self.hosts.values():
            _ip("netns", "add", h.ns)
            h.run("ip", "link", "set", "lo", "up")
            h.run("sh", "-c", f"echo {1 if self.forward else 0} > /proc/sys/net/ipv4/ip_forward")
        subnet = os.getpid() % 200 + 20        # only readability: namespaces do not share routes
        for i, (a, b) in enumerate(self.links, start=1):
            _ip("link", "add", self.ifname(a, b), "netns", self[a].ns, "type", "veth",
                "peer", "name", self.ifname(b, a), "netns", self[b].ns)
            for host, peer, last in ((a, b, 1), (b, a, 2)):
                addr = f"10.{subnet}.{i}.{last}"
                self._addr[(host, peer)] = addr
                self[host].run("ip", "addr", "add", f"{addr}/30", "dev", self.ifname(host, peer))
                self[host].run("ip", "link", "set", self.ifname(host, peer), "up")
        self._routes()
        return self

    def _routes(self) -> None:
        adj = collections.defaultdict(list)
        for a, b in self.links:
            adj[a].append(b)
            adj[b].append(a)
        for src in self.hosts:
            first_hop = {src: None}           # BFS: the neighbour each host is reached through
            dist = {src: 0}
            queue = collections.deque([src])
            while queue:
                h = queue.popleft()
                for n in adj[h]:
                    if n not in first_hop:
                        first_hop[n] = n if h == src else first_hop[h]
                        dist[n] = dist[h] + 1
                        queue.append(n)
            for i, (a, b) in enumerate(self.links, start=1):
                if src in (a, b):
                    continue
                # the /30 of link i is reached through the neighbour nearer to its closer end
                ends = sorted((e for e in (a, b) if e in first_hop), key=dist.__getitem__)
                if not ends:
                    continue
                via = first_hop[ends[0]]
                prefix = self._addr[(a, b)].rsplit(".", 1)[0] + ".0/30"
                self[src].run("ip", "route", "add", prefix, "via", self._addr[(via, src)],
                              "dev", self.ifname(src, via))

    def link_down(self, a: str, b: str) -> None:
        """Take the a-b link down at both ends (``ip link set ... down``)."""
        self[a].run("ip", "link", "set", self.ifname(a, b), "down")
        self[b].run("ip", "link", "set", self.ifname(b, a), "down")

    def link_up(self, a: str, b: str) -> None:
        """Bring the a-b link back; its addresses and routes are restored with it."""
        for host, peer in ((a, b), (b, a)):
            self[host].run("ip", "link", "set", self.ifname(host, peer), "up")
        self._restore_routes()

    def _restore_routes(self) -> None:
        # the kernel drops routes through an interface that went down; re-add what is missing
        for h in self.hosts.values():
            h.run("ip", "route", "flush", "proto", "boot", check=False)
        self._routes()

    def down(self) -> None:
        """Kill every process and delete every namespace (idempotent)."""
        if not self._up:
            return
        self._up = False
        for h in self.hosts.values():
            for p in h.procs:
                if p.alive():
                    try:
                        os.killpg(p.popen.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.popen.wait(10)
            _kill_namespace(h.ns)
        if self in _live:
            _live.remove(self)

    def __enter__(self) -> "Network":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def logs(self) -> str:
        """Every process log of this network (for a failure report)."""
        out = []
        for h in self.hosts.values():
            for p in h.procs:
                out.append(f"===== {h.name}/{p.name} (runs {p.runs}) =====\n" + "\n".join(p.lines[-60:]))
        return "\n".join(out)


@atexit.register
def _down_all() -> None:
    for net in list(_live):
        net.down()


_checked: list[str | None] = []


def require_netns() -> None:
    """Skip the calling test (with the reason) when namespaces cannot be used; removes
    leftovers of crashed runs the first time it succeeds."""
    if not _checked:
        _checked.append(unavailable_reason())
        if _checked[0] is None:
            cleanup_stale()
    if _checked[0] is not None:
        pytest.skip(_checked[0])


@pytest.fixture
def netns(tmp_path):
    """``netns(*links, hosts=(), forward=True)`` -> an up ``Network`` torn down after the test (even a
    failed one); process logs go to ``tmp_path`` and are shown when the test failed."""
    require_netns()
    nets: list[Network] = []

    def make(*links, hosts=(), forward: bool = True) -> Network:
        net = Network(*links, hosts=hosts, forward=forward, log_dir=tmp_path / f"net{len(nets)}")
        nets.append(net)
        return net.up()

    try:
        yield make
    finally:
        for net in nets:
            net.down()
            # captured: pytest shows it only for a failed test
            sys.stderr.write(net.logs() + "\n")
