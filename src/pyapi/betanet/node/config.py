"""The node's YAML configuration: the seed's network.yaml layout (application / routing /
transport / network / platform), a default for every key, unknown keys refused.

``SCHEMA`` is the one list of keys; docs/node.md "Configuration" documents each, and
``render_default()`` writes the commented file ``betanet node init`` creates. Errors name the
key path (``routing.deadline_ms``) and say what is wrong.
"""
from __future__ import annotations

import os
from typing import Any

from betanet.configschema import ConfigError, Key, load_yaml, render, validate
from betanet.configschema import defaults as _defaults
from betanet.configschema import endpoint as _endpoint
from betanet.configschema import in_range as _range
from betanet.configschema import one_of as _one_of
from betanet.configschema import optional as _optional
from betanet.configschema import str_list as _str_list

__all__ = ["ConfigError", "SCHEMA", "load", "from_dict", "defaults", "render_default"]


QOS = ("balanced", "real_time", "energy_efficient", "privacy_first")


def _chrome_targets() -> tuple[str, ...]:
    from betanet.tls.htxweb import CHROME_TARGETS
    return CHROME_TARGETS

SCHEMA: dict[str, dict[str, Key]] = {
    "application": {
        "name": Key(str, "betanet-node", "a name for logs and metrics"),
        "data_dir": Key(str, ".", "identity, peer records and the SQLite store live here "
                        "(relative to the config file)"),
        "log_level": Key(str, "info", "logging level", _one_of("debug", "info", "warning", "error")),
        "max_message_bytes": Key(int, 1 << 20, "largest message node.send accepts", _range(1, 64 << 20)),
        "inbox_limit": Key(int, 10_000, "messages held for the application before new ones are "
                           "refused (the sender retries)", _range(1)),
        "max_pending_per_sender": Key(int, 1_000, "out-of-order messages held per sender", _range(1)),
    },
    "routing": {
        "qos": Key(str, "balanced", "default QoS preset", _one_of(*QOS)),
        "energy_qos": Key(str, "energy_efficient", "QoS used when battery or temperature "
                          "crosses its limit", _one_of(*QOS)),
        "deadline_ms": Key(int, 3_600_000, "default delivery deadline", _range(1)),
        "hop_timeout_ms": Key(int, 1_000, "no link acknowledgment within this: the route failed, "
                              "take the next one", _range(1)),
        "ack_timeout_ms": Key(int, 3_000, "no end-to-end acknowledgment within this: send again",
                              _range(1)),
        "retry_interval_ms": Key(int, 500, "how often waiting messages are retried", _range(10)),
        "reorder_timeout_ms": Key(int, 30_000, "a gap in a sender's sequence is skipped after this",
                                  _range(0)),
    },
    "transport": {
        "chunk_size": Key(int, 16_384, "messages above this are chunked", _range(256, 1 << 20)),
        "fec_parity": Key(int, 2, "Reed-Solomon parity chunks on lossy paths", _range(1, 64)),
        "fec_loss_threshold": Key(float, 0.01, "a path with a loss estimate above this gets FEC",
                                  _range(0.0, 1.0)),
        "htx_listen": Key(str, "127.0.0.1:0", "HTX over TCP+TLS listen address ('' = off)",
                          lambda v: None if v == "" else _endpoint(v)),
        "quic_listen": Key(str, "", "HTX over QUIC listen address ('' = off)",
                           lambda v: None if v == "" else _endpoint(v)),
        "advertise_host": Key(str, "", "host written into our peer record ('' = the listen host)"),
        "htx_mode": Key(str, "tls", "how htx_listen looks to the network: 'tls' (HTX right after TLS) or "
                        "'web' (an ordinary HTTPS site, htx_decoy_site, to everyone without an access "
                        "ticket; docs/stealth.md); peers whose record carries a ticket line are always "
                        "dialled over htx-web", _one_of("tls", "web")),
        "htx_decoy_site": Key(str, "", "htx_mode web: folder of the static decoy site (relative to the "
                              "config file; required in web mode)"),
        "htx_ticket_key": Key(str, "ticket.key", "htx_mode web: access-ticket key file (relative to "
                              "data_dir; created, mode 0600, when missing); its publication line and "
                              "the certificate's SPKI pin go into our peer record"),
        "htx_chrome": Key(str, "", "the Chrome version whose TLS ClientHello dials htx-web peers ('' = "
                          "the newest supported)", _optional(lambda v: _one_of(*_chrome_targets())(v))),
        "htx_ticket_rate": Key(float, 5.0, "htx_mode web: ticket attempts per second per source /24 "
                               "(IPv4) or /56 (IPv6); raise it when many peers share a prefix",
                               _range(0.001, 1e6)),
        "htx_ticket_burst": Key(float, 20.0, "htx_mode web: ticket attempts a /24 or /56 may make at "
                                "once (token bucket size)", _range(1.0, 1e7)),
        "mesh": Key(bool, False, "join the BLE mesh (in process: a radio given to the node; "
                    "standalone: through mesh_air)"),
        "mesh_air": Key(str, "", "Unix socket of a BLE air server (python -m betanet.mesh.air); "
                        "'' = no mesh for a standalone node"),
        "mesh_x": Key(float, 0.0, "position on the air, metres"),
        "mesh_y": Key(float, 0.0, "position on the air, metres"),
        "mix_directory": Key(str, "", "JSON file (relative to the config file): list of mixnet "
                             "descriptors (mixnodes and clients), re-read every second; '' = no "
                             "mixnet link"),
        "mix_listen": Key(str, "127.0.0.1:0", "where our mix client listens for packets from "
                          "the last mixnode (plain length-prefixed framing)", _endpoint),
        "mix_hops": Key(int, 3, "mixnodes per route", _range(1, 5)),
        "mix_delay_ms": Key(float, 50.0, "mean per-hop mixing delay", _range(0.0, 10_000.0)),
        "dtn": Key(bool, True, "store messages that cannot leave now (store-and-forward)"),
        "dtn_config": Key(str, "", "a `betanet dtn` YAML file (relative to the config file): run "
                          "the bundle agent in the node's store and send what cannot leave now as "
                          "custody bundles over its convergence layers (routing, listen, peers of "
                          "docs/dtn.md; node.id optional, default dtn://<PeerID>/); '' = messages "
                          "wait in the outbox (and custodians)"),
        "dtn_resend_ms": Key(int, 600_000, "a message handed to the bundle agent without an "
                             "end-to-end acknowledgment after this is handed again", _range(1000)),
    },
    "network": {
        "peers": Key(list, [], "peer record files (relative to the config file) imported at start",
                     _str_list),
        "mdns": Key(bool, True, "announce our peer record and import others' on the local network "
                    "(mDNS service _betanet._udp; records are verified like record files)"),
        "mesh_discovery": Key(bool, True, "learn peers from BLE mesh announces (our record's hash "
                              "in announce TLV 0x70, records fetched over the mesh and verified "
                              "like record files)"),
        "mesh_peer_expiry_ms": Key(int, 120_000, "a peer learned from the mesh is forgotten when "
                                   "its announces have not been heard for this long", _range(1000)),
        "custodians": Key(list, [], "PeerIDs of DTN custodians: with no route to a destination, "
                          "messages are handed to one of them to store and forward", _str_list),
        "metrics_listen": Key(str, "", "Prometheus metrics on host:port ('' = off)",
                              lambda v: None if v == "" else _endpoint(v)),
        "status_listen": Key(str, "127.0.0.1:0", "local control socket for status/send ('' = off)",
                             lambda v: None if v == "" else _endpoint(v)),
    },
    "platform": {
        "power_source": Key(str, "sysfs", "where battery and temperature come from",
                            _one_of("sysfs", "push", "none")),
        "sysfs_root": Key(str, "/sys", "root of /sys (tests point it elsewhere)"),
        "battery_threshold": Key(float, 20.0, "battery percent below which the energy QoS is used",
                                 _range(0.0, 100.0)),
        "thermal_limit": Key(float, 45.0, "degrees Celsius above which the energy QoS is used",
                             _range(-50.0, 200.0)),
    },
}


def defaults() -> dict[str, dict[str, Any]]:
    return _defaults(SCHEMA)


def from_dict(data: Any, source: str = "config") -> dict[str, dict[str, Any]]:
    """Validate a parsed config (sections of keys) and fill in defaults."""
    cfg = validate(SCHEMA, data, source)
    t = cfg["transport"]
    if t["htx_mode"] == "web" and not (t["htx_listen"] and t["htx_decoy_site"] and t["htx_ticket_key"]):
        raise ConfigError(f"{source}: transport.htx_mode web needs transport.htx_listen, "
                          "transport.htx_decoy_site and transport.htx_ticket_key")
    if cfg["transport"]["dtn_config"] and not cfg["transport"]["dtn"]:
        raise ConfigError(f"{source}: transport.dtn_config needs transport.dtn true "
                          "(store-and-forward is off)")
    return cfg


def load(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and validate a YAML config; relative paths become relative to its directory."""
    path = os.fspath(path)
    data = load_yaml(path)
    cfg = from_dict(data, path)
    base = os.path.dirname(os.path.abspath(path))
    cfg["application"]["data_dir"] = os.path.join(base, cfg["application"]["data_dir"])
    cfg["network"]["peers"] = [os.path.join(base, p) for p in cfg["network"]["peers"]]
    if cfg["transport"]["htx_decoy_site"]:
        cfg["transport"]["htx_decoy_site"] = os.path.join(base, cfg["transport"]["htx_decoy_site"])
    if cfg["transport"]["mix_directory"]:
        cfg["transport"]["mix_directory"] = os.path.join(base, cfg["transport"]["mix_directory"])
    if cfg["transport"]["dtn_config"]:
        cfg["transport"]["dtn_config"] = os.path.join(base, cfg["transport"]["dtn_config"])
    return cfg


def render_default(overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """The commented YAML ``betanet node init`` writes (every key with its default)."""
    cfg = defaults()
    for s, kv in (overrides or {}).items():
        cfg[s].update(kv)
    return render(SCHEMA, cfg, ["# betanet node configuration (docs/node.md, \"Configuration\").",
                                "# Every key is optional; unknown keys are errors."])
