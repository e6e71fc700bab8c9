"""Shared helpers for the hostile-load suite (tests/test_hostile_*.py).

Each hostile test runs an attack against a real service on loopback, bounded in count and
time, and asserts two things: the service's resources stay under a stated bound, and a
legitimate client is still served during the attack. Later services (DTN, mesh, node) add
their floods with these helpers.
"""
from __future__ import annotations

import os
from pathlib import Path


def _status_kib(field: str, pid: int | None = None) -> int:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM, ...) in KiB."""
    path = Path(f"/proc/{pid if pid is not None else 'self'}/status")
    for line in path.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in {path}")


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of a process (this one by default), in bytes."""
    return _status_kib("VmRSS", pid) * 1024


def peak_rss_bytes(pid: int | None = None) -> int:
    """Peak resident set size (VmHWM) of a process, in bytes."""
    return _status_kib("VmHWM", pid) * 1024


def reset_peak_rss(pid: int | None = None) -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    with open(f"/proc/{pid if pid is not None else 'self'}/clear_refs", "w") as f:
        f.write("5")


def open_fds(pid: int | None = None) -> int:
    """Number of open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid if pid is not None else 'self'}/fd"))


MiB = 1 << 20


# ---- a service in its own process, so its RSS is measured apart from the attacker's ----

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Awaitable, Callable, Iterator


class ServerProcess:
    """A service started as ``python script '<json args>'`` in a subprocess.

    Protocol of the script: print one JSON line with at least ``{"port": N}`` once it
    listens; then answer each JSON line on stdin (``{"cmd": "stats"}``) with one JSON line
    (``serve_control`` below does both for asyncio services). Closing stdin stops it."""

    def __init__(self, script: str | Path, args: dict, ready_timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen([sys.executable, str(script), json.dumps(args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.pid = self.proc.pid
        self.info = self._read(ready_timeout)
        self.port = int(self.info["port"])

    def _read(self, timeout: float) -> dict:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.stop()
            raise TimeoutError(f"server process gave no answer in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            raise RuntimeError(f"server process ended ({self.proc.wait()}):\n{err[-4000:]}")
        return json.loads(line)

    def command(self, cmd: str, timeout: float = 30.0, **kw) -> dict:
        """Send one command, return the service's JSON answer (blocking: call it from a
        thread when the test's own event loop must keep running)."""
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    async def acommand(self, cmd: str, timeout: float = 30.0, **kw) -> dict:
        return await asyncio.to_thread(self.command, cmd, timeout, **kw)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def peak_rss(self) -> int:
        return peak_rss_bytes(self.pid)

    def reset_peak(self) -> None:
        reset_peak_rss(self.pid)

    def fds(self) -> int:
        return open_fds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(Exception):
                f.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def serve_control(ready: dict, commands: dict[str, Callable[[dict], dict]]) -> None:
    """For a service script: print ``ready`` as the first JSON line, then answer commands
    from stdin until it closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps(ready), flush=True)
    while line := await reader.readline():
        req = json.loads(line)
        try:
            out = commands[req["cmd"]](req)
        except Exception as exc:            # report, keep serving
            out = {"error": repr(exc)}
        print(json.dumps(out), flush=True)


# ---- bounded attacks, and the legitimate client ----

def bounded(count: int, seconds: float) -> Iterator[int]:
    """0, 1, ... until ``count`` iterations or ``seconds`` elapsed, whichever first."""
    end = time.monotonic() + seconds
    for i in range(count):
        if time.monotonic() >= end:
            return
        yield i


async def served(client: Callable[[], Awaitable[object]], timeout: float = 10.0) -> tuple[bool, float, str]:
    """Run one legitimate client exchange: (served, seconds taken, error text)."""
    t = time.monotonic()
    try:
        await asyncio.wait_for(client(), timeout)
        return True, time.monotonic() - t, ""
    except Exception as exc:
        return False, time.monotonic() - t, f"{type(exc).__name__}: {exc}"


def report(name: str, **values) -> None:
    """One line of measurements (shown with ``pytest -s``, kept in the captured output)."""
    fmt = {k: (f"{v / MiB:.1f} MiB" if k.endswith(("rss", "_bytes")) and isinstance(v, (int, float)) else v)
           for k, v in values.items()}
    print(f"[hostile] {name}: " + ", ".join(f"{k}={v}" for k, v in fmt.items()), flush=True)
