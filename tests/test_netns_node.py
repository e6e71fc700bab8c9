"""The six multi-host scenarios of issue 14 (the node), each node its own process in its own
network namespace, driven only through the ``betanet node`` CLI as the node branch defines it:

    betanet node init DIR --listen HOST:PORT --peer OTHER_DIR   -> DIR/node.yaml, identity.key
    betanet node run --config DIR/node.yaml      -> JSON lines {"event": "started"|"received"}
    betanet node send --config DIR/node.yaml DEST TEXT [--wait]  -> the delivery handle (JSON)
    betanet node status|peers --config DIR/node.yaml             -> JSON

(the brief's ``init --dir D`` and ``status --json`` became a positional DIR and JSON by default).
Everything that depends on the exact shape of that contract (file names, JSON keys, log lines)
is in ``NodeHost`` so adapting to the node as it lands is one place. Skips, with the reason,
while ``betanet.node`` or its CLI or the cross-process BLE air is missing.

Topology: the internet path is a — r — d (r a router namespace that can also run the relay);
b and c are phones with only the mesh; a, b, c, d share one simulated BLE air (a Unix socket,
reachable from every namespace) where a hears b, b hears c, c hears d.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
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
    """One node: its directory, its config, its process in a namespace. The CLI as the node
    branch has it: ``init DIR --listen H:P --peer DIR...`` (prints ``peer id  TEXT``); ``run``
    writes DIR/peer.record and JSON lines (``{"event": "started"|"received", ...}``); other
    nodes' directories given as ``--peer`` are re-read every second; ``send`` and ``status``
    print JSON."""

    def __init__(self, net, name: str, root: Path, peers: list[str], *, htx: bool = True) -> None:
        self.net, self.name = net, name
        self.host = net[name]
        self.dir = root / name
        # htx=False: a phone with only the mesh (a namespace with no IP link)
        args = ["init", str(self.dir), "--listen", f"{net.addr(name)}:{HTX_PORT}" if htx else ""]
        for p in peers:
            args += ["--peer", str(root / p)]
        p = subprocess.run([*BETANET, "node", *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        self.config = self.dir / "node.yaml"
        self.peer_id = re.search(r"peer id\s+(\S+)", p.stdout).group(1)
        self.configure(platform={"power_source": "none"})
        self.proc = None

    def configure(self, **sections) -> None:
        import yaml
        cfg = yaml.safe_load(self.config.read_text()) or {}
        for section, values in sections.items():
            cfg.setdefault(section, {}).update(values)
        self.config.write_text(yaml.safe_dump(cfg))

    def run(self) -> None:
        if self.proc is None:
            self.proc = self.host.spawn("node", [*BETANET, "node", "run", "--config", self.config])
        else:
            self.proc.restart()
        self.proc.wait_for(r'"event": "started"', 30)

    def cli(self, *args: str, timeout: float = 60) -> dict:
        # the CLI talks to the running node over its local control socket (same namespace)
        p = self.host.run(*BETANET, "node", *args, "--config", self.config, check=False, timeout=timeout)
        assert p.stdout.strip(), f"betanet node {args[0]}: {p.stderr}"
        return json.loads(p.stdout)

    def send(self, dest: "NodeHost", text: str, *extra: str) -> dict:
        reply = self.cli("send", dest.peer_id, text, *extra)
        assert reply.get("ok"), reply
        return reply

    def status(self) -> dict:
        return self.cli("status")

    def received(self, text: str) -> list[dict]:
        """Messages with body ``text`` this node printed (every run)."""
        want = text.encode().hex()
        out = []
        for line in self.proc.lines:
            if line.startswith("{") and '"received"' in line:
                ev = json.loads(line)
                if ev.get("data") == want:
                    out.append(ev)
        return out

    def received_order(self, texts: list[str]) -> list[str]:
        wanted = {t.encode().hex(): t for t in texts}
        return [wanted[json.loads(line)["data"]] for line in self.proc.lines
                if line.startswith("{") and '"received"' in line and json.loads(line).get("data") in wanted]


def _internet(netns, tmp_path):
    """a — r — d, a node in a and in d (r routes); each knows the other's directory."""
    net = netns("a-r", "r-d")
    nodes = {"a": NodeHost(net, "a", tmp_path, ["d"]), "d": NodeHost(net, "d", tmp_path, ["a"])}
    return net, nodes


def _start(nodes: dict) -> None:
    for n in nodes.values():
        n.run()
    # each imports the other's record from its directory within a second or two
    for n in nodes.values():
        others = {o.peer_id for o in nodes.values() if o is not n}
        _wait(lambda: others <= {p["peer"] for p in n.cli("peers").get("peers", [])}, 20,
              f"{n.name} to import its peers' records")


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
    _start(nodes)
    a, d = nodes["a"], nodes["d"]
    handle = a.send(d, "hello-online-1", "--wait")
    assert handle["acked"] is True, handle
    assert handle["route"] and handle["route"][-1] == d.peer_id, handle
    assert handle["transports"] and "dtn" not in handle["transports"], handle
    _wait(lambda: d.received("hello-online-1"), 20, "d to print the message")
    assert [ev["from"] for ev in d.received("hello-online-1")] == [a.peer_id]
    print(f"online: route {handle['route']} transports {handle['transports']}")


# a sender in a's namespace: one message every STREAM_GAP_S through a's control socket,
# without waiting for acknowledgments, each line {"i": I, "t": wall-clock time it was accepted}
STREAM = """
import json, socket, sys, time
host, _, port = open(sys.argv[1]).read().strip().rpartition(":")
s = socket.create_connection((host, int(port)))
f = s.makefile("rwb")
print("ready", flush=True)
for i in range(int(sys.argv[3])):
    data = ("%s-%03d" % (sys.argv[2], i)).encode().hex()
    f.write((json.dumps({"cmd": "send", "to": sys.argv[4], "data": data}) + "\\n").encode())
    f.flush()
    r = json.loads(f.readline())
    assert r.get("ok"), r
    print(json.dumps({"i": i, "t": time.time()}), flush=True)
    time.sleep(float(sys.argv[5]))
"""
STREAM_GAP_S = 0.1


@needs_air
def test_2_internet_cut_mid_stream_falls_back_to_mesh_within_2s(netns, tmp_path):
    """a and d on the internet (a - r - d) and on the air; b and c phones with only the air,
    in a line a (0 m) - b (25 m) - c (50 m) - d (75 m) with a 30 m range: the mesh path from a
    to d is a -> b -> c -> d. a streams to d; a's internet link is cut mid-stream."""
    net = netns("a-r", "r-d", hosts=("air", "b", "c"))
    sock = tmp_path / "air.sock"
    air = net["air"].python("air", "-m", "betanet.mesh.air", "--socket", sock, "--range", "30", "--seed", "1")
    air.wait_for(r"listening", 30)
    nodes = {"a": NodeHost(net, "a", tmp_path, ["d"]), "b": NodeHost(net, "b", tmp_path, [], htx=False),
             "c": NodeHost(net, "c", tmp_path, [], htx=False), "d": NodeHost(net, "d", tmp_path, ["a"])}
    for i, n in enumerate(nodes.values()):
        n.configure(transport={"mesh": True, "mesh_air": str(sock), "mesh_x": 25.0 * i},
                    routing={"hop_timeout_ms": 500, "ack_timeout_ms": 1500, "retry_interval_ms": 100},
                    application={"name": n.name})
    a, d = nodes["a"], nodes["d"]
    for n in nodes.values():
        n.run()
    for n, other in ((a, d), (d, a)):
        _wait(lambda: other.peer_id in {p["peer"] for p in n.cli("peers").get("peers", [])}, 20,
              f"{n.name} to import {other.name}'s record")

    def reaches(n, dest, transport):
        return any(dest.peer_id in link["reaches"] for link in n.status()["links"]
                   if link["transport"] == transport)
    # both paths up before the stream starts: htx direct, ble through b and c (announces, TTL 7)
    _wait(lambda: reaches(a, d, "htx") and reaches(a, d, "ble") and reaches(d, a, "ble"), 45,
          "a and d to reach each other over htx and over the air")
    assert a.send(d, "warm-up", "--wait")["transports"] == ["htx"]

    count, cut_at = 40, 15
    texts = [f"stream-{i:03d}" for i in range(count)]
    seen_t: dict[str, float] = {}                    # first time each message showed up at d

    def watch():
        while len(seen_t) < count and d.proc.alive():
            for t in d.received_order(texts):
                seen_t.setdefault(t, time.time())
            time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()
    stream = a.host.python("stream", "-c", STREAM, a.dir / "control.addr", "stream", str(count),
                           d.peer_id, str(STREAM_GAP_S))
    stream.wait_for("ready", 30)
    sent_t = {}
    for i in range(count):
        if i == cut_at:
            net.link_down("a", "r")                  # ip link set down on both ends of a - r
            t_cut = time.time()
        ev = json.loads(stream.wait_for(r'^\{"i"', 30).string)
        sent_t[ev["i"]] = ev["t"]
    _wait(lambda: len(seen_t) == count, 45, "every message of the stream")
    time.sleep(2 * STREAM_GAP_S + 1.0)               # let a late duplicate show up if there is one
    got = d.received_order(texts)
    assert sorted(got) == texts, f"lost or duplicated: {len(got)} deliveries of {len(texts)}"
    assert got == texts, "not in order"
    ble = next(link for link in a.status()["links"] if link["transport"] == "ble")
    assert ble["stats"]["frames_sent"] > 0, "nothing went over the mesh"
    first_after = next(t for i, t in enumerate(texts) if sent_t[i] > t_cut)
    failover = seen_t[first_after] - t_cut
    latency = sorted(seen_t[t] - sent_t[i] for i, t in enumerate(texts) if sent_t[i] > t_cut)
    print(f"cut: {first_after} (first sent after it) delivered {failover:.2f} s after the cut; "
          f"latency after the cut median {latency[len(latency) // 2]:.2f} s max {latency[-1]:.2f} s; "
          f"{ble['stats']['frames_sent']} frames over the mesh")
    assert failover <= 2.0, f"failover took {failover:.2f} s"


DTN_PORT = 4556


def _with_dtn(net, nodes: dict) -> None:
    """Store-and-forward through the bundle agent (transport.dtn_config): d listens for TCPCL,
    a has a contact to it (d answers over a's session: an inbound contact)."""
    import yaml
    a, d = nodes["a"], nodes["d"]
    (d.dir / "dtn.yaml").write_text(yaml.safe_dump(
        {"listen": {"tcpcl": [{"address": f"{net.addr('d')}:{DTN_PORT}"}]}}))
    (a.dir / "dtn.yaml").write_text(yaml.safe_dump(
        {"peers": {"links": [{"node": f"dtn://{d.peer_id}/", "cla": "tcpcl",
                              "address": f"{net.addr('d')}:{DTN_PORT}"}]}}))
    for n in (a, d):
        n.configure(transport={"dtn_config": "dtn.yaml"})


def _dtn_stats(node: "NodeHost") -> dict:
    return next(l["stats"] for l in node.status()["links"] if l["transport"] == "dtn")


@pytest.mark.parametrize("path", ["outbox", "dtn"])
def test_3_every_link_down_messages_wait_then_arrive_in_order(netns, tmp_path, path):
    net, nodes = _internet(netns, tmp_path)
    if path == "dtn":
        _with_dtn(net, nodes)
    _start(nodes)
    a, d = nodes["a"], nodes["d"]
    a.send(d, "warm-up", "--wait")
    net.link_down("a", "r")
    texts = [f"partition-{i:03d}" for i in range(10)]
    for t in texts:
        a.send(d, t)
    if path == "dtn":        # no route: each message handed to the agent as a custody bundle
        _wait(lambda: _dtn_stats(a)["frames_bundled"] >= 10, 30, "a's messages as bundles")
    time.sleep(1.5)
    assert not any(d.received(t) for t in texts), "delivered across a link that is down"
    net.link_up("a", "r")
    _wait(lambda: all(d.received(t) for t in texts), 45, "every stored message after the link returned")
    assert d.received_order(texts) == texts, "not delivered exactly once, in order"
    if path == "dtn":        # the bundles crossed too (whichever came first, d kept one copy)
        _wait(lambda: _dtn_stats(d)["frames_in"] >= 10, 30, "the bundles at d")


@pytest.mark.parametrize("path", ["outbox", "dtn"])
def test_4_kill9_full_outbox_then_restart_exactly_once(netns, tmp_path, path):
    net, nodes = _internet(netns, tmp_path)
    if path == "dtn":
        _with_dtn(net, nodes)
    _start(nodes)
    a, d = nodes["a"], nodes["d"]
    a.send(d, "warm-up", "--wait")
    net.link_down("a", "r")
    texts = [f"outbox-{i:03d}" for i in range(10)]
    for t in texts:
        a.send(d, t)
    if path == "dtn":        # kill -9 with the bundle agent's store full, not only the outbox
        _wait(lambda: _dtn_stats(a)["frames_bundled"] >= 10, 30, "a's messages as bundles")
    a.proc.kill9()                               # a full outbox, nothing delivered yet
    net.link_up("a", "r")
    t0 = time.monotonic()
    a.run()
    _wait(lambda: all(d.received(t) for t in texts), 45, "the outbox after kill -9 and restart")
    t1 = time.monotonic()
    if path == "dtn":        # the restored bundles left a's store for d after the restart
        _wait(lambda: _dtn_stats(d)["frames_in"] >= 10, 30, "the restored bundles at d")
    d.proc.kill9()                               # a receiver crash must not bring duplicates
    d.run()
    a.send(d, "after-restart", "--wait")
    _wait(lambda: d.received("after-restart"), 30, "a message after d's restart")
    assert d.received_order(texts) == texts
    print(f"outbox delivered {t1 - t0:.1f} s after a's restart; d restart + one more {time.monotonic() - t1:.1f} s")


def test_5a_a_relay_on_the_path_sees_no_plaintext_and_no_peer_ids(netns, tmp_path):
    """The relay's half of scenario 5 (the mixnode's half needs the node's mixnet path): a and
    d reach each other only through a relay in r, which records every byte it forwards."""
    net = netns("a-r", "r-d", forward=False)
    nodes = {"a": NodeHost(net, "a", tmp_path, ["d"]), "d": NodeHost(net, "d", tmp_path, ["a"])}
    a, d = nodes["a"], nodes["d"]
    # each advertises the relay's address on the other's side
    a.configure(transport={"advertise_host": net.addr("r", "d")})
    d.configure(transport={"advertise_host": net.addr("r", "a")})
    cap = tmp_path / "capture"
    relay = net["r"].python("relay", "-m", "betanet.tools.relay", "--capture", cap,
                            "--tcp", f"{net.addr('r', 'a')}:{HTX_PORT}={net.addr('d', 'r')}:{HTX_PORT}",
                            "--tcp", f"{net.addr('r', 'd')}:{HTX_PORT}={net.addr('a', 'r')}:{HTX_PORT}")
    relay.wait_for(r'^\{"ready"', 30)
    _start(nodes)
    secret = "attack at dawn, bring the 7 blue folders"
    handle = a.send(d, secret, "--wait")
    assert handle["acked"] is True, handle
    _wait(lambda: d.received(secret), 20, "delivery through the relay")
    seen = (cap / "up.bin").read_bytes() + (cap / "down.bin").read_bytes()
    assert len(seen) > len(secret)                   # the relay did carry the conversation
    for needle in (secret.encode(), secret.encode().hex().encode(), b"blue folders",
                   a.peer_id.encode(), d.peer_id.encode()):
        assert needle not in seen, f"the relay saw {needle!r}"


def test_5_privacy_qos_mixnode_sees_no_plaintext_nor_destination(netns, tmp_path):
    """The mixnode's half of scenario 5: three mixnode processes in m (plain length-prefixed
    framing, so what a mixnode receives is the Sphinx packet itself, not a TLS record); each
    is reached only through a capturing relay in r, so every byte any mixnode receives, from
    a's client or from another mixnode, is recorded. a sends with the privacy QoS."""
    from betanet.mix.types import TCP_FRAMING, Descriptor
    from betanet.node.link_mix import mix_id
    from betanet.sphinx import Geometry, KeyPair
    net = netns("a-r", "r-d", "r-m")
    nodes = {"a": NodeHost(net, "a", tmp_path, ["d"]), "d": NodeHost(net, "d", tmp_path, ["a"])}
    a, d = nodes["a"], nodes["d"]
    directory = tmp_path / "mix-directory.json"
    for n in nodes.values():
        n.configure(transport={"mix_directory": str(directory), "mix_listen": f"{net.addr(n.name)}:7444",
                               "mix_delay_ms": 5.0})
    _start(nodes)
    mixnodes = [(9001 + i, bytes([i + 1]) * 32, bytes([0x40 + i]) * 32) for i in range(3)]
    front = net.addr("r", "m")                       # each mixnode's advertised address: the relay
    entries = [Descriptor(node_id, (front, port), KeyPair.from_seed(seed).public_key, 0, b"",
                          TCP_FRAMING).to_json() for port, seed, node_id in mixnodes]
    entries += [json.loads((n.dir / "mix.descriptor").read_text()) for n in nodes.values()]
    directory.write_text(json.dumps(entries))
    cap = tmp_path / "capture"
    relay = net["r"].python("relay", "-m", "betanet.tools.relay", "--capture", cap,
                            *[x for port, _, _ in mixnodes
                              for x in ("--tcp", f"{front}:{port}={net.addr('m')}:{port}")])
    relay.wait_for(r'^\{"ready"', 30)
    for port, seed, node_id in mixnodes:
        m = net["m"].python(f"mix{port}", "-m", "betanet", "mixnode", "--listen", f"{net.addr('m')}:{port}",
                            "--key-seed", seed.hex(), "--node-id", node_id.hex(), "--directory", directory,
                            "--transport", TCP_FRAMING, "--mean-delay-ms", "5")
        m.wait_for("listening", 30)

    def mix_reaches(n, dest):
        return any(dest.peer_id in link["reaches"] for link in n.status()["links"] if link["transport"] == "mix")
    _wait(lambda: mix_reaches(a, d), 20, "a to reach d through the mixnet")
    secret = "attack at dawn, bring the 7 blue folders"
    handle = a.send(d, secret, "--qos", "privacy_first", "--wait")
    assert handle["acked"] is True, handle
    assert handle["qos"] == "privacy_first" and handle["transports"] == ["mix"], handle
    _wait(lambda: d.received(secret), 20, "delivery through the mixnodes")
    assert [ev["from"] for ev in d.received(secret)] == [a.peer_id]
    seen = (cap / "up.bin").read_bytes() + (cap / "down.bin").read_bytes()
    # a's client -> first mixnode, then two mixnode -> mixnode hops: three Sphinx packets at least
    assert len(seen) >= 3 * Geometry().packet_bytes, f"the mixnodes did not carry the message ({len(seen)} B)"
    dest = mix_id(d.peer_id)
    for needle in (secret.encode(), secret.encode().hex().encode(), b"blue folders",
                   d.peer_id.encode(), dest, dest.hex().encode(), a.peer_id.encode()):
        assert needle not in seen, f"a mixnode received {needle!r}"
    print(f"privacy: {len(seen)} bytes into the mixnodes, route {handle['route']}")


def test_6_low_battery_takes_energy_route_shown_in_handle(netns, tmp_path):
    net, nodes = _internet(netns, tmp_path)
    a, d = nodes["a"], nodes["d"]
    # a fake /sys with a 5 % battery, discharging: a's sysfs power source reads it
    bat = tmp_path / "sys" / "class" / "power_supply" / "BAT0"
    bat.mkdir(parents=True)
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text("5\n")
    (bat / "status").write_text("Discharging\n")
    a.configure(platform={"power_source": "sysfs", "sysfs_root": str(tmp_path / "sys"),
                          "battery_threshold": 20.0})
    _start(nodes)
    handle = a.send(d, "low-battery-1", "--wait")
    assert handle["policy"] == "energy (battery)" and handle["qos"] == "energy_efficient", handle
    assert handle["acked"] is True, handle
    _wait(lambda: d.received("low-battery-1"), 20, "delivery on the energy route")
    (bat / "status").write_text("Charging\n")   # charging lifts the condition
    assert a.send(d, "charging-1", "--wait")["policy"] == "normal"


# a third party on b's LAN announcing a record whose signature does not verify
FORGER = """
import asyncio
from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf
from betanet.node.identity import Identity
from betanet.node.mdns import SERVICE_TYPE, txt_from_record
from betanet.node.peers import PeerRecord

async def main():
    ident = Identity.generate()
    raw = PeerRecord.create(ident, 1, htx_tcp=["10.9.9.9:7443"]).raw
    assert b"10.9.9.9" in raw
    raw = raw.replace(b"10.9.9.9", b"10.9.9.8")      # redirect the endpoint: the signature breaks
    zc = AsyncZeroconf()
    await zc.async_register_service(ServiceInfo(SERVICE_TYPE, ident.peer_id_text + "." + SERVICE_TYPE,
                                                port=7443, properties=txt_from_record(raw),
                                                server="forger.local.", parsed_addresses=["10.9.9.8"]))
    print("forged", ident.peer_id_text, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_7_mdns_discovery_on_one_lan_without_static_peers(netns, tmp_path):
    """a and b on one veth LAN, no static peers: each finds the other's record over mDNS
    (_betanet._udp), imports it (verified) and a message goes through; a forged record
    announced on the same LAN is refused; with network.mdns off nobody is found."""
    net = netns("a-b")
    for h, other in (("a", "b"), ("b", "a")):        # namespaces start with no multicast route
        net[h].run("ip", "route", "add", "224.0.0.0/4", "dev", net.ifname(h, other))
    nodes = {"a": NodeHost(net, "a", tmp_path, []), "b": NodeHost(net, "b", tmp_path, [])}
    a, b = nodes["a"], nodes["b"]
    forger = net["b"].python("forger", "-c", FORGER)
    forged = forger.wait_for(r"^forged (\S+)", 30).group(1)
    _start(nodes)                                    # waits until each has imported the other
    handle = a.send(b, "found by mdns", "--wait")
    assert handle["acked"] is True and handle["transports"] == ["htx"], handle
    _wait(lambda: b.received("found by mdns"), 20, "delivery to the discovered peer")
    _wait(lambda: a.status()["counters"].get("mdns_refused", 0) >= 1, 20, "a to refuse the forged record")
    assert forged not in {p["peer"] for p in a.cli("peers")["peers"]}
    assert a.status()["counters"].get("mdns_imported", 0) >= 1

    # the same LAN with discovery off: nobody imports anybody
    for n in nodes.values():
        n.proc.terminate()
        n.dir.joinpath("store.db").unlink()
        n.configure(network={"mdns": False})
        n.run()
    time.sleep(5)                                    # several mDNS announce rounds
    for n, other in ((a, b), (b, a)):
        assert other.peer_id not in {p["peer"] for p in n.cli("peers")["peers"]}, "imported with mdns off"
