"""The six multi-host scenarios of issue 14 (the node), each node its own process in its own
network namespace, driven only through the CLI contract:

    betanet node init --dir D                       -> D/node.yaml (+ keys, peer record)
    betanet node run --config D/node.yaml           -> the node (logs each received message)
    betanet node send --config D/node.yaml DEST TEXT -> the delivery handle (JSON on stdout)
    betanet node status --config D/node.yaml --json -> peers, links, routes, queues (JSON)

Everything that depends on the exact shape of that contract (file names, JSON keys, log lines)
is in ``NodeHost`` so adapting to the node as it lands is one place. Skips, with the reason,
while ``betanet.node`` or its CLI or the cross-process BLE air is missing.

Topology: the internet path is a — r — d (r a router namespace that can also run the relay);
b and c are phones with only the mesh; a, b, c, d share one simulated BLE air (a Unix socket,
reachable from every namespace) where a hears b, b hears c, c hears d.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netns_harness import netns  # noqa: F401  (fixture)


def _node_missing() -> str | None:
    try:
        import betanet.node  # noqa: F401
    except ImportError:
        return "betanet.node not available yet"
    p = subprocess.run([sys.executable, "-m", "betanet", "node", "--help"], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        return "betanet.node not available yet (no `betanet node` command)"
    return None


def _air_missing() -> str | None:
    try:
        import betanet.mesh.air  # noqa: F401
    except ImportError:
        return "betanet.mesh.air (cross-process BLE air) not available yet"
    return None


NODE_MISSING = _node_missing()
pytestmark = pytest.mark.skipif(NODE_MISSING is not None, reason=str(NODE_MISSING))
needs_air = pytest.mark.skipif(_air_missing() is not None, reason=str(_air_missing()))

BETANET = [sys.executable, "-m", "betanet"]
HTX_PORT = 7443            # every namespace has its own ports: one fixed port for all nodes


class NodeHost:
    """One node: its directory, its config, its process in a namespace."""

    def __init__(self, net, name: str, root: Path) -> None:
        self.net, self.name = net, name
        self.host = net[name]
        self.dir = root / name
        p = subprocess.run([*BETANET, "node", "init", "--dir", str(self.dir)], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        self.config = self.dir / "node.yaml"
        m = re.search(r"\b([1-9A-HJ-NP-Za-km-z]{40,60})\b", p.stdout)   # base58 multihash text
        self.peer_id = m.group(1) if m else None
        self.proc = None

    def configure(self, **sections) -> None:
        import yaml
        cfg = yaml.safe_load(self.config.read_text()) or {}
        for section, values in sections.items():
            cfg.setdefault(section, {}).update(values)
        self.config.write_text(yaml.safe_dump(cfg))

    def record_path(self) -> Path:
        found = sorted(p for p in self.dir.iterdir() if "record" in p.name or p.suffix == ".peer")
        if not found:
            pytest.skip(f"`betanet node init` wrote no peer record file in {self.dir}")
        return found[0]

    def run(self) -> None:
        if self.proc is None:
            self.proc = self.host.spawn("node", [*BETANET, "node", "run", "--config", self.config])
        else:
            self.proc.restart()
        self.proc.wait_for(r"(?i)\b(ready|listening|started)\b", 30)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        # the CLI talks to the running node over its local control socket (same namespace)
        return self.host.run(*BETANET, "node", *args, "--config", self.config, check=False,
                             timeout=timeout)

    def send(self, dest: "NodeHost", text: str) -> dict:
        p = self.host.run(*BETANET, "node", "send", "--config", self.config, dest.peer_id, text,
                          check=False, timeout=30)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.strip().splitlines()[-1])

    def status(self) -> dict:
        p = self.cli("status", "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def received(self, token: str) -> list[str]:
        """Log lines of this node (every run) that show a received message with ``token``."""
        return [line for line in self.proc.lines if token in line and "receiv" in line.lower()]


def _internet(netns, tmp_path):
    """a — r — d, a node in a and in d (r routes)."""
    net = netns("a-r", "r-d")
    return net, {n: NodeHost(net, n, tmp_path) for n in "ad"}


def _wire(nodes: dict) -> None:
    """Listen on each node's internet address, give everyone everyone's record."""
    for n in nodes.values():
        addr = n.net.addr(n.name)
        n.configure(transport={"htx_listen": f"{addr}:{HTX_PORT}", "advertise_host": addr},
                    platform={"power_source": "none"})
    for n in nodes.values():
        n.run()
    records = {k: v.record_path() for k, v in nodes.items()}
    for k, n in nodes.items():
        n.configure(network={"peers": [str(p) for o, p in records.items() if o != k]})
        n.proc.terminate()
        n.run()


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_1_online_htx_route_and_ack(netns, tmp_path):
    net, nodes = _internet(netns, tmp_path)
    _wire(nodes)
    a, d = nodes["a"], nodes["d"]
    handle = a.send(d, "hello-online-1")
    assert any("htx" in t for t in handle.get("transports", [])), handle
    assert handle.get("route"), handle
    _wait(lambda: d.received("hello-online-1"), 20, "d to receive the message")
    _wait(lambda: a.status().get("acked", a.status().get("queues", {}).get("acked")), 20, "the e2e ack")
    assert len(d.received("hello-online-1")) == 1


@needs_air
def test_2_internet_cut_mid_stream_falls_back_to_mesh_within_2s(netns, tmp_path):
    pytest.skip("waiting for the node's mesh link over betanet.mesh.air (radio config keys unknown)")


def test_3_every_link_down_messages_wait_then_arrive_in_order(netns, tmp_path):
    net, nodes = _internet(netns, tmp_path)
    _wire(nodes)
    a, d = nodes["a"], nodes["d"]
    net.link_down("a", "r")
    texts = [f"partition-{i:03d}" for i in range(10)]
    for t in texts:
        a.send(d, t)
    time.sleep(1.0)
    assert not any(d.received(t) for t in texts), "delivered across a link that is down"
    net.link_up("a", "r")
    _wait(lambda: all(d.received(t) for t in texts), 30, "every stored message after the link returned")
    order = [next(i for i, line in enumerate(d.proc.lines) if t in line) for t in texts]
    assert order == sorted(order), "delivered out of order"
    assert all(len(d.received(t)) == 1 for t in texts)


def test_4_kill9_full_outbox_then_restart_exactly_once(netns, tmp_path):
    net, nodes = _internet(netns, tmp_path)
    _wire(nodes)
    a, d = nodes["a"], nodes["d"]
    net.link_down("a", "r")
    texts = [f"outbox-{i:03d}" for i in range(20)]
    for t in texts:
        a.send(d, t)
    a.proc.kill9()
    net.link_up("a", "r")
    a.run()
    _wait(lambda: all(d.received(t) for t in texts), 40, "the outbox after kill -9 and restart")
    d.proc.kill9()                 # and a receiver crash must not bring duplicates either
    d.run()
    time.sleep(2.0)
    assert all(len(d.received(t)) == 1 for t in texts)


def test_5_privacy_qos_relay_and_mixnode_see_no_plaintext(netns, tmp_path):
    pytest.skip("waiting for the node's mixnet path (privacy_first through mixnodes) and its CLI flag")


def test_6_low_battery_takes_energy_route_shown_in_handle(netns, tmp_path):
    net, nodes = _internet(netns, tmp_path)
    a, d = nodes["a"], nodes["d"]
    # a fake /sys with a 5 % battery: the node's sysfs power source reads it
    sysfs = tmp_path / "sys"
    bat = sysfs / "class" / "power_supply" / "BAT0"
    bat.mkdir(parents=True)
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text("5\n")
    (bat / "status").write_text("Discharging\n")
    (sysfs / "class" / "thermal").mkdir(parents=True)
    _wire(nodes)
    a.configure(platform={"power_source": "sysfs", "sysfs_root": str(sysfs), "battery_threshold": 20.0})
    a.proc.terminate()
    a.run()
    handle = a.send(d, "low-battery-1")
    assert "energy" in json.dumps(handle), handle
    _wait(lambda: d.received("low-battery-1"), 20, "delivery on the energy route")
