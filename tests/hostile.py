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
