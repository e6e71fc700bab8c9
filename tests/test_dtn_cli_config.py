"""`betanet dtn node --config`: the schema (defaults, every error naming its key, unknown
keys refused), flags over the file, --print-config, and two-node chains run from config
files as real processes over the HTX and UDP convergence layers."""
from __future__ import annotations

import argparse
import json
import queue
import re
import socket
import subprocess
import sys
import threading

import pytest
import yaml

from betanet.dtn import config
from betanet.dtn.cli import _node_config, add_parser
from betanet.dtn.config import ConfigError

pytestmark = pytest.mark.timeout(120)
BETANET = [sys.executable, "-m", "betanet"]
HEX = "ab" * 32


def _port(kind=socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="cmd"))
    return p.parse_args(["dtn", "node", *argv])


def test_defaults_are_valid_and_print_config_is_them():
    assert config.from_dict(None) == config.defaults()
    text = config.render_default()
    assert config.from_dict(yaml.safe_load(text)) == config.defaults()
    for section, keys in config.SCHEMA.items():   # every key is written, with its help
        for k, key in keys.items():
            assert f"  {k}: " in text and key.help in text
    r = subprocess.run([*BETANET, "dtn", "node", "--print-config"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == text


@pytest.mark.parametrize("data, match", [
    ([1], "top level must be a mapping"),
    ({"nodes": {}}, "unknown section 'nodes'"),
    ({"node": {"idd": "ipn:1.0"}}, "unknown key node.idd"),
    ({"node": {"id": "garbage"}}, "node.id is not an endpoint id"),
    ({"node": {"custody": "yes"}}, "node.custody must be true or false"),
    ({"node": {"register": ["ipn:1.1", 7]}}, "node.register must be a list of strings"),
    ({"node": {"register": ["nonsense"]}}, "node.register is not an endpoint id"),
    ({"node": {"duration": -1}}, "node.duration must be >= 0"),
    ({"store": {"max_bytes": -1}}, "store.max_bytes must be >= 0"),
    ({"store": {"max_bundle_bytes": "big"}}, "store.max_bundle_bytes must be an integer"),
    ({"routing": {"strategy": "flood"}}, "routing.strategy must be one of"),
    ({"routing": {"strategy": "cgr"}}, "routing.plan is required"),
    ({"routing": {"copies": 0}}, "routing.copies must be >= 1"),
    ({"routing": {"routes": "ipn:3.*=ipn:3.0"}}, "routing.routes must be a list"),
    ({"routing": {"routes": ["ipn:3.*=ipn:3.0"]}}, r"routing.routes\[0\] must be a mapping"),
    ({"routing": {"routes": [{"pattern": "ipn:3.*"}]}}, r"routing.routes\[0\].via is required"),
    ({"routing": {"routes": [{"pattern": "*", "via": "x"}]}}, r"routing.routes\[0\].via is not an"),
    ({"listen": {"tcpcl": [{"address": "nope"}]}}, r"listen.tcpcl\[0\].address must be host:port"),
    ({"listen": {"tcpcl": [{"address": ":1", "tls": 1}]}}, r"unknown key listen.tcpcl\[0\].tls"),
    ({"listen": {"tcpcl": [{"address": ":1", "node_id_policy": "maybe"}]}},
     r"listen.tcpcl\[0\].node_id_policy must be one of"),
    ({"listen": {"tcpcl": [{"address": ":1", "tls_key": "k.pem"}]}}, r"listen.tcpcl\[0\].tls_cert is required"),
    ({"listen": {"mtcp": [{}]}}, r"listen.mtcp\[0\].address is required"),
    ({"listen": {"udp": []}}, "unknown key listen.udp"),
    ({"listen": {"htx": [{"address": ":1"}]}}, r"listen.htx\[0\].static_key is required"),
    ({"listen": {"htx": [{"address": ":1", "static_key": "k"}]}}, r"listen.htx\[0\].tls_cert and tls_key"),
    ({"peers": {"links": [{"node": "ipn:3.0", "cla": "pigeon", "address": ":1"}]}},
     r"peers.links\[0\].cla must be one of"),
    ({"peers": {"links": [{"node": "ipn:3.0", "cla": "htx", "address": ":1"}]}},
     r"peers.links\[0\].htx_key must be 64 hex digits"),
    ({"peers": {"links": [{"node": "ipn:3.0", "cla": "tcpcl", "address": ":1", "tls_key": "k"}]}},
     r"peers.links\[0\].tls_cert is required with tls_key"),
    ({"peers": {"links": [{"node": "ipn:3.0", "cla": "udp", "address": ":1", "local": "x"}]}},
     r"peers.links\[0\].local must be host:port"),
    ({"peers": {"links": [{"node": "ipn:3.0", "cla": "mtcp", "address": ":1"},
                          {"node": "ipn:3.0", "cla": "udp", "address": ":2"}]}},
     r"peers.links\[1\].node ipn:3.0 has a link already"),
])
def test_bad_config_names_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        config.from_dict(data, "node.yaml")


def test_file_paths_are_relative_to_the_config_file(tmp_path):
    f = tmp_path / "node.yaml"
    f.write_text(yaml.safe_dump({"node": {"id": "ipn:1.0"}, "store": {"path": "s/b.db"},
                                 "listen": {"htx": [{"address": ":1", "static_key": "k.hex",
                                                     "transport": "plain"}]}}))
    cfg = config.load(f)
    assert cfg["store"]["path"] == str(tmp_path / "s/b.db")
    assert cfg["listen"]["htx"][0]["static_key"] == str(tmp_path / "k.hex")
    assert cfg["listen"]["htx"][0]["tls_cert"] == ""     # unset stays unset


def test_flags_override_the_file(tmp_path):
    f = tmp_path / "node.yaml"
    f.write_text(yaml.safe_dump({"node": {"id": "ipn:1.0", "register": ["ipn:1.1"]},
                                 "store": {"path": "b.db"},
                                 "listen": {"tcpcl": [{"address": "127.0.0.1:4556"}]},
                                 "routing": {"strategy": "spray", "copies": 4}}))
    cfg = _node_config(_args("--config", str(f)))
    assert cfg["node"]["id"] == "ipn:1.0" and cfg["routing"]["copies"] == 4
    cfg = _node_config(_args("--config", str(f), "--id", "ipn:9.0", "--tcpcl", ":5", "--copies", "2",
                             "--no-custody", "--peer", "ipn:3.0=udp:127.0.0.1:7"))
    assert cfg["node"]["id"] == "ipn:9.0" and cfg["node"]["custody"] is False
    assert [t["address"] for t in cfg["listen"]["tcpcl"]] == [":5"]
    assert cfg["listen"]["tcpcl"][0]["node_id_policy"] == "prefer"
    assert cfg["routing"]["copies"] == 2 and cfg["routing"]["strategy"] == "spray"
    assert cfg["store"]["path"] == str(tmp_path / "b.db") and cfg["node"]["register"] == ["ipn:1.1"]
    assert cfg["peers"]["links"][0]["cla"] == "udp" and cfg["peers"]["links"][0]["local"] == "127.0.0.1:0"
    with pytest.raises(ConfigError, match=r"command line: peers.links\[0\].cla must be one of"):
        _node_config(_args("--config", str(f), "--peer", "ipn:3.0=pigeon:1.2.3.4:5"))


@pytest.mark.parametrize("text, match", [
    ("node: {id: ipn:1.0, colour: red}\n", "unknown key node.colour"),
    ("node: [\n", "not valid YAML"),
    ("store: {path: x.db}\n", "node.id is required"),
])
def test_bad_config_file_is_a_one_line_error(tmp_path, text, match):
    f = tmp_path / "node.yaml"
    f.write_text(text)
    r = subprocess.run([*BETANET, "dtn", "node", "--config", str(f)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and match in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = subprocess.run([*BETANET, "dtn", "node", "--config", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_htx_static_key_file_errors_name_the_key(tmp_path):
    (tmp_path / "k.hex").write_text("not hex")
    f = tmp_path / "node.yaml"
    f.write_text(yaml.safe_dump({"node": {"id": "ipn:1.0"}, "listen": {"htx": [
        {"address": "127.0.0.1:0", "static_key": "k.hex", "transport": "plain"}]}}))
    r = subprocess.run([*BETANET, "dtn", "node", "--config", str(f)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "listen.htx[0].static_key" in r.stderr, r.stderr


@pytest.mark.parametrize("data, match", [
    ({"listen": {"tcpcl": [{"address": "127.0.0.1:0", "tls_cert": "missing.pem"}]}},
     r"listen.tcpcl\[0\]: .*No such file"),
    ({"routing": {"strategy": "cgr", "plan": "missing.ion"}}, r"routing.plan \(.*missing.ion\)"),
    ({"peers": {"links": [{"node": "ipn:3.0", "cla": "tcpcl", "address": "127.0.0.1:1",
                           "tls_ca": "missing.pem"}]}}, r"peers.links\[0\]: .*No such file"),
])
def test_files_a_config_names_that_cannot_be_used_name_the_key(tmp_path, data, match):
    f = tmp_path / "node.yaml"
    f.write_text(yaml.safe_dump(dict(data, node={"id": "ipn:1.0"}, store={"path": "b.db"})))
    r = subprocess.run([*BETANET, "dtn", "node", "--config", str(f)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and re.search(match, r.stderr) and "Traceback" not in r.stderr, r.stderr


class _Lines:
    """A process's stdout lines, read by a thread (a readline never blocks the test)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(x) for x in proc.stdout], daemon=True).start()

    def get(self, timeout: float = 30.0) -> str:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output from the node in time") from None


def _chain_configs(tmp_path, cla: str) -> tuple[dict, dict]:
    """A (ipn:1.0, tcpcl listener for `dtn send`) -> B (ipn:2.0, registers ipn:2.1) over ``cla``."""
    a = {"node": {"id": "ipn:1.0"}, "store": {"path": "a.db"},
         "listen": {"tcpcl": [{"address": f"127.0.0.1:{_port()}"}]},
         "routing": {"routes": [{"pattern": "ipn:2.*", "via": "ipn:2.0"}]}}
    b = {"node": {"id": "ipn:2.0", "register": ["ipn:2.1"]}, "store": {"path": "b.db"}}
    if cla == "htx":
        from betanet import htx
        from betanet.htx.tls import write_self_signed
        priv = htx.generate_private_key()
        (tmp_path / "b.key").write_text(priv.hex() + "\n")
        write_self_signed(tmp_path)
        port = _port()
        b["listen"] = {"htx": [{"address": f"127.0.0.1:{port}", "static_key": "b.key",
                                "tls_cert": "cert.pem", "tls_key": "key.pem"}]}
        a["peers"] = {"links": [{"node": "ipn:2.0", "cla": "htx", "address": f"127.0.0.1:{port}",
                                 "htx_key": htx.public_key(priv).hex(), "tls_ca": "cert.pem"}]}
    elif cla == "tcpcl-tls":
        from betanet.htx.tls import write_self_signed
        write_self_signed(tmp_path)
        port = _port()
        # mutual TLS: the self-signed certificate is each side's CA and the client's certificate
        b["listen"] = {"tcpcl": [{"address": f"127.0.0.1:{port}", "tls_cert": "cert.pem",
                                  "tls_key": "key.pem", "tls_ca": "cert.pem", "node_id_policy": "prefer"}]}
        a["peers"] = {"links": [{"node": "ipn:2.0", "cla": "tcpcl", "address": f"127.0.0.1:{port}",
                                 "tls_ca": "cert.pem", "tls_cert": "cert.pem", "tls_key": "key.pem"}]}
    else:
        ua, ub = _port(socket.SOCK_DGRAM), _port(socket.SOCK_DGRAM)
        a["peers"] = {"links": [{"node": "ipn:2.0", "cla": "udp", "address": f"127.0.0.1:{ub}",
                                 "local": f"127.0.0.1:{ua}"}]}
        b["peers"] = {"links": [{"node": "ipn:1.0", "cla": "udp", "address": f"127.0.0.1:{ua}",
                                 "local": f"127.0.0.1:{ub}"}]}
    return a, b


@pytest.mark.parametrize("cla", ["htx", "udp", "tcpcl-tls"])
def test_two_node_chain_from_config_files(tmp_path, cla):
    a, b = _chain_configs(tmp_path, cla)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(a))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(b))
    procs = []
    try:
        for name in ("b", "a"):
            procs.append(subprocess.Popen([*BETANET, "dtn", "node", "--config", str(tmp_path / f"{name}.yaml")],
                                          stdout=subprocess.PIPE, text=True, cwd="/"))
        pb, pa = (_Lines(p) for p in procs)
        if cla != "udp":
            assert pb.get().startswith(f"{cla[:5]} listening on port")
        assert "node ipn:2.0 running" in pb.get()
        assert pa.get().startswith("tcpcl listening")
        assert "node ipn:1.0 running" in pa.get()
        assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
        port = a["listen"]["tcpcl"][0]["address"].rpartition(":")[2]
        r = subprocess.run([*BETANET, "dtn", "send", "--via", f"tcpcl:127.0.0.1:{port}", "--to", "ipn:2.1",
                            f"hello over {cla}"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        got = json.loads(pb.get())
        assert got["payload"] == f"hello over {cla}" and got["endpoint"] == "ipn:2.1"
        assert got["source"].startswith("ipn:")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
