"""Nodes as real processes (``python -m betanet.node run --config FILE``): the scenario logic
the network-namespace harness can reuse (give it a different command prefix)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from betanet.node.identity import Identity
from betanet.node.service import init

FAST = {"routing": {"hop_timeout_ms": 500, "ack_timeout_ms": 1500, "retry_interval_ms": 100},
        "platform": {"power_source": "none"},
        "network": {"mdns": False}}      # peers from record files only (tests share one LAN)


def make(base: str, name: str, peers: list[str], extra: dict | None = None) -> str:
    """init a node directory; returns its config path."""
    ex = {k: dict(v) for k, v in FAST.items()}
    for s, kv in (extra or {}).items():
        ex.setdefault(s, {}).update(kv)
    return init(os.path.join(base, name), peers=peers, extra=ex)


def peer_id(cfg_path: str) -> str:
    return Identity.load(os.path.join(os.path.dirname(cfg_path), "identity.key")).peer_id_text


class Proc:
    def __init__(self, cfg_path: str, prefix: list[str] | None = None,
                 argv: list[str] | None = None) -> None:
        """``argv``: another program than ``python -m betanet.node run --config CFG``."""
        self.cfg = cfg_path
        self.dir = os.path.dirname(cfg_path)
        self.events: list[dict] = []
        with open(os.path.join(self.dir, "node.log"), "ab") as log:
            self.p = subprocess.Popen((prefix or []) + (argv or [sys.executable, "-m", "betanet.node", "run",
                                                                 "--config", cfg_path]),
                                      stdout=subprocess.PIPE, stderr=log, text=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self.wait_event("started", 30)

    def _read(self) -> None:
        for line in self.p.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def wait_event(self, kind: str, timeout: float, count: int = 1) -> list[dict]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = [e for e in self.events if e.get("event") == kind]
            if len(got) >= count:
                return got
            if self.p.poll() is not None:
                raise RuntimeError(f"node {self.dir} exited {self.p.returncode}: "
                                   + open(os.path.join(self.dir, "node.log")).read()[-3000:])
            time.sleep(0.05)
        raise TimeoutError(f"{self.dir}: {count} {kind!r} events not seen in {timeout}s "
                           f"(have {len([e for e in self.events if e.get('event') == kind])})")

    def received(self) -> list[dict]:
        return [e for e in self.events if e.get("event") == "received"]

    def control(self, obj: dict, timeout: float = 30.0) -> dict:
        host, _, port = open(os.path.join(self.dir, "control.addr")).read().strip().rpartition(":")
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall((json.dumps(obj) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def send(self, to: str, data: bytes, **kw) -> dict:
        r = self.control({"cmd": "send", "to": to, "data": data.hex(), **kw})
        if not r.get("ok"):
            raise RuntimeError(r)
        return r

    def kill9(self) -> None:
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait_peer(proc: Proc, peer: str, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(p["peer"] == peer for p in proc.control({"cmd": "peers"})["peers"]):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{proc.dir} never imported {peer}")
