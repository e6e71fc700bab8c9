"""The YAML configuration of ``betanet dtn node --config``: node id, store, routing
strategy, listeners for every convergence layer, peers and registrations. A default for
every key, unknown keys refused, errors naming the key (:mod:`betanet.configschema`);
docs/dtn.md "Configuration file" documents each key and ``render_default()`` writes the
commented defaults (``betanet dtn node --print-config``).
"""
from __future__ import annotations

import os
from typing import Any

from betanet.configschema import (REQUIRED, ConfigError, Key, endpoint, in_range, load_yaml,
                                  one_of, optional, render, str_list, validate)
from betanet.configschema import defaults as _defaults
from betanet.dtn.tcpcl.protocol import NODE_ID_POLICIES
from betanet.errors import BetanetError

__all__ = ["ConfigError", "SCHEMA", "load", "from_dict", "defaults", "render_default"]

STRATEGIES = ("static", "cgr", "epidemic", "spray")
CLAS = ("tcpcl", "mtcp", "udp", "htx")


def _eid(v: Any) -> str | None:
    from betanet.dtn.eid import EID
    try:
        EID.parse(v)
    except BetanetError as e:
        return f"is not an endpoint id ({e})"
    return None


def _eids(v: list) -> str | None:
    return str_list(v) or next(filter(None, map(_eid, v)), None)


TCPCL_LISTENER = {
    "address": Key(str, REQUIRED, "host:port to listen on (port 0: any free port)", endpoint),
    "tls_cert": Key(str, "", "PEM certificate: offer TLS (CAN_TLS) and require it"),
    "tls_key": Key(str, "", "PEM private key of tls_cert ('' = in the certificate file)"),
    "tls_ca": Key(str, "", "CA file that verifies the peers' client certificates"),
    "node_id_policy": Key(str, "prefer", "check of the peer certificate's NODE-ID (RFC 9174 "
                          "4.4.4.3)", one_of(*NODE_ID_POLICIES)),
}
MTCP_LISTENER = {
    "address": Key(str, REQUIRED, "host:port to listen on", endpoint),
}
HTX_LISTENER = {
    "address": Key(str, REQUIRED, "host:port to listen on", endpoint),
    "static_key": Key(str, REQUIRED, "file holding this listener's X25519 static private key "
                      "(64 hex digits); peers dial it with the public key"),
    "transport": Key(str, "tcp", "tcp (TLS 1.3, needs tls_cert and tls_key) or plain",
                     one_of("tcp", "plain")),
    "tls_cert": Key(str, "", "PEM certificate (transport tcp)"),
    "tls_key": Key(str, "", "PEM private key (transport tcp)"),
}
PEER = {
    "node": Key(str, REQUIRED, "the peer's node id (ipn:N.0 or dtn://name/)", _eid),
    "cla": Key(str, REQUIRED, "convergence layer", one_of(*CLAS)),
    "address": Key(str, REQUIRED, "the peer's host:port", endpoint),
    "local": Key(str, "127.0.0.1:0", "udp: the local host:port this node sends from and "
                 "receives the peer's bundles on (UDP has no shared listener)", endpoint),
    "htx_key": Key(str, "", "htx: the peer listener's static public key (64 hex digits)"),
    "transport": Key(str, "tcp", "htx: tcp (TLS 1.3) or plain", one_of("tcp", "plain")),
    "tls_ca": Key(str, "", "htx over tcp and tcpcl: CA file that verifies the peer's "
                  "certificate (tcpcl runs TLS when tls_ca or tls_cert is set)"),
    "tls_cert": Key(str, "", "tcpcl: PEM client certificate shown to the peer (RFC 9174 4.4.1)"),
    "tls_key": Key(str, "", "tcpcl: private key of tls_cert ('' = in the certificate file)"),
    "verify": Key(bool, True, "verify the peer's TLS certificate"),
}
ROUTE = {
    "pattern": Key(str, REQUIRED, "destination EID pattern (fnmatch, e.g. ipn:3.*)"),
    "via": Key(str, REQUIRED, "next-hop node id", _eid),
}

SCHEMA: dict[str, dict[str, Key]] = {
    "node": {
        "id": Key(str, "", "node id, ipn:N.0 or dtn://name/ (required here or with --id)",
                  optional(_eid)),
        "custody": Key(bool, True, "accept custody of bundles that request it"),
        "register": Key(list, [], "application endpoints whose bundles are printed, one JSON "
                        "line each", _eids),
        "duration": Key(float, 0.0, "stop after this many seconds (0: run until interrupted)",
                        in_range(0.0)),
    },
    "store": {
        "path": Key(str, "bundles.db", "the SQLite bundle store (relative to the config file)"),
        "max_bytes": Key(int, 1 << 30, "total bytes stored (0: unlimited)", in_range(0)),
        "max_count": Key(int, 1_000_000, "bundles stored (0: unlimited)", in_range(0)),
        "max_bundle_bytes": Key(int, 64 << 20, "largest bundle accepted", in_range(1)),
    },
    "routing": {
        "strategy": Key(str, "static", "forwarding strategy", one_of(*STRATEGIES)),
        "routes": Key(list, [], "static routes, first match wins", item=ROUTE),
        "plan": Key(str, "", "ION contact plan file for cgr (relative to the config file; "
                    "times relative to start)"),
        "copies": Key(int, 8, "spray-and-wait copies", in_range(1, 1 << 16)),
    },
    "listen": {
        "tcpcl": Key(list, [], "TCPCLv4 listeners", item=TCPCL_LISTENER),
        "mtcp": Key(list, [], "MTCP listeners", item=MTCP_LISTENER),
        "htx": Key(list, [], "HTX listeners (bundles over the encrypted overlay)",
                   item=HTX_LISTENER),
    },
    "peers": {
        "links": Key(list, [], "next hops: a link to each", item=PEER),
    },
}

_PATHS = [("store", "path"), ("routing", "plan")]
_ITEM_PATHS = {("listen", "tcpcl"): ("tls_cert", "tls_key", "tls_ca"),
               ("listen", "htx"): ("static_key", "tls_cert", "tls_key"),
               ("peers", "links"): ("tls_ca", "tls_cert", "tls_key")}


def defaults() -> dict[str, dict[str, Any]]:
    return _defaults(SCHEMA)


def _consistent(cfg: dict[str, dict[str, Any]], source: str) -> None:
    """The checks that involve more than one key."""
    if cfg["routing"]["strategy"] == "cgr" and not cfg["routing"]["plan"]:
        raise ConfigError(f"{source}: routing.plan is required with routing.strategy cgr")
    for i, t in enumerate(cfg["listen"]["tcpcl"]):
        if (t["tls_key"] or t["tls_ca"]) and not t["tls_cert"]:
            raise ConfigError(f"{source}: listen.tcpcl[{i}].tls_cert is required with tls_key or tls_ca")
    for i, h in enumerate(cfg["listen"]["htx"]):
        if h["transport"] == "tcp" and not (h["tls_cert"] and h["tls_key"]):
            raise ConfigError(f"{source}: listen.htx[{i}].tls_cert and tls_key are required "
                              "with transport tcp")
    seen = set()
    for i, p in enumerate(cfg["peers"]["links"]):
        if p["tls_key"] and not p["tls_cert"]:
            raise ConfigError(f"{source}: peers.links[{i}].tls_cert is required with tls_key")
        if p["cla"] == "htx":
            k = p["htx_key"]
            if len(k) != 64 or any(c not in "0123456789abcdefABCDEF" for c in k):
                raise ConfigError(f"{source}: peers.links[{i}].htx_key must be 64 hex digits "
                                  "(the peer's static public key) for cla htx")
        from betanet.dtn.eid import EID
        name = str(EID.parse(p["node"]).node_id)
        if name in seen:
            raise ConfigError(f"{source}: peers.links[{i}].node {name} has a link already")
        seen.add(name)


def from_dict(data: Any, source: str = "config") -> dict[str, dict[str, Any]]:
    """Validate a parsed config (sections of keys) and fill in defaults."""
    cfg = validate(SCHEMA, data, source)
    _consistent(cfg, source)
    return cfg


def load(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and validate a YAML config; file names in it are relative to its directory."""
    path = os.fspath(path)
    cfg = from_dict(load_yaml(path), path)
    base = os.path.dirname(os.path.abspath(path))

    def rel(p: str) -> str:
        return os.path.join(base, p) if p else p
    for s, k in _PATHS:
        cfg[s][k] = rel(cfg[s][k])
    for (s, k), names in _ITEM_PATHS.items():
        for item in cfg[s][k]:
            for n in names:
                item[n] = rel(item[n])
    return cfg


def render_default() -> str:
    """Every key with its default, commented (``betanet dtn node --print-config``)."""
    return render(SCHEMA, defaults(), [
        "# betanet dtn node configuration (docs/dtn.md, \"Configuration file\").",
        "# Every key is optional but node.id; unknown keys are errors. List keys hold",
        "# mappings with the keys listed under them, e.g.",
        "#   peers:",
        "#     links:",
        "#       - {node: ipn:3.0, cla: tcpcl, address: 10.0.0.3:4556}"])
