"""A bundle node from a validated ``betanet dtn`` config (:mod:`betanet.dtn.config`): its
forwarding strategy, store limits and custody policy (:func:`build_node`), then its
listeners and peer links (:class:`Endpoints`). ``betanet dtn node`` and the node's DTN link
(``betanet.node.link_dtn``) both build their agent here.

    node = build_node(cfg)                  # betanet.dtn.node.Node, not started
    await node.start()
    ep = await Endpoints().open(node, cfg)  # listen.*, then peers.links
    ...
    await ep.close(); await node.close()

An error while setting up what a key describes (a file that cannot be read, a port in use)
is a :class:`~betanet.configschema.ConfigError` naming that key.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from betanet.configschema import ConfigError
from betanet.errors import BetanetError, InvalidArgumentError

__all__ = ["build_node", "Endpoints", "peer_link", "hostport", "about", "load_plan"]


def hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (empty host: 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgumentError(f"{text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


@contextlib.contextmanager
def about(where: str) -> Iterator[None]:
    """An error while setting up what a config key describes names that key."""
    try:
        yield
    except ConfigError:
        raise
    except (OSError, ValueError, BetanetError) as e:
        raise ConfigError(f"{where}: {e}") from None


def load_plan(path: str) -> Any:
    """The ION contact plan of ``routing.plan``."""
    from betanet.cgr import ContactPlan
    with about(f"routing.plan ({path})"), open(path, encoding="utf-8") as f:
        return ContactPlan.from_ion(f.read())


def build_node(cfg: dict[str, dict[str, Any]], store: str | None = None, **node_kw: Any) -> Any:
    """The :class:`betanet.dtn.node.Node` ``cfg`` describes (node id, strategy, store limits,
    custody), not started; ``store`` overrides ``store.path``."""
    from betanet.dtn.agent import AgentConfig, unix_to_dtn_ms
    from betanet.dtn.eid import EID
    from betanet.dtn.node import Node
    from betanet.dtn.routing import make_strategy
    from betanet.dtn.store import StoreLimits
    c_node, c_store, c_routing = cfg["node"], cfg["store"], cfg["routing"]
    nid = EID.parse(c_node["id"])
    plan = load_plan(c_routing["plan"]) if c_routing["strategy"] == "cgr" else None
    strategy = make_strategy(c_routing["strategy"],
                             routes=[(r["pattern"], r["via"]) for r in c_routing["routes"]],
                             plan=plan, local_node=nid.node, copies=c_routing["copies"],
                             epoch_ms=unix_to_dtn_ms(time.time()))
    limits = StoreLimits(max_bytes=c_store["max_bytes"] or None, max_count=c_store["max_count"] or None,
                         max_bundle_bytes=c_store["max_bundle_bytes"])
    return Node(nid, store if store is not None else c_store["path"], strategy=strategy,
                store_limits=limits, config=AgentConfig(accept_custody=c_node["custody"]), **node_kw)


def peer_link(p: dict[str, Any], node: Any) -> Any:
    """The convergence-layer link a validated ``peers.links`` entry describes."""
    from betanet.dtn.cla import MtcpLink, TcpclLink, UdpLink
    from betanet.dtn.tcpcl.protocol import SessionConfig
    host, port = hostport(p["address"])
    if p["cla"] == "tcpcl":
        ssl = None
        if p["tls_ca"] or p["tls_cert"]:
            from betanet.dtn.tcpcl.aio import client_context
            ssl = client_context(cafile=p["tls_ca"] or None, certfile=p["tls_cert"] or None,
                                 keyfile=p["tls_key"] or None, verify=p["verify"])
        return TcpclLink(host, port, config=SessionConfig(node_id=node.agent.name), ssl=ssl,
                         on_bundle=node.receive_bundle)
    if p["cla"] == "mtcp":
        return MtcpLink(host, port, on_bundle=node.receive_bundle)
    if p["cla"] == "udp":
        return UdpLink(host, port, local=hostport(p["local"]), on_bundle=node.receive_bundle)
    from betanet.dtn.htxcla import HtxLink
    return HtxLink(host, port, p["htx_key"], on_bundle=node.receive_bundle,
                   transport=p["transport"], cafile=p["tls_ca"] or None, verify=p["verify"])


async def _listen_htx(node: Any, h: dict[str, Any], where: str) -> Any:
    from betanet.dtn.htxcla import serve_htx
    try:
        with open(h["static_key"], encoding="ascii") as f:
            key = bytes.fromhex(f.read().strip())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}.static_key: cannot read a hex key from {h['static_key']} ({e})") from None
    if len(key) != 32:
        raise ConfigError(f"{where}.static_key: {h['static_key']} must hold 64 hex digits")
    tls = {"certfile": h["tls_cert"], "keyfile": h["tls_key"]} if h["transport"] == "tcp" else {}
    return await serve_htx(*hostport(h["address"]), key, on_bundle=node.receive_bundle,
                           transport=h["transport"], **tls)


class Endpoints:
    """The listeners (``listen.*``) and peer links (``peers.links``) of a config on a
    started node. ``ports`` lists the bound port of each listener by convergence layer."""

    def __init__(self) -> None:
        self.ports: dict[str, list[int]] = {"tcpcl": [], "mtcp": [], "htx": []}
        self._servers: list[Any] = []     # HTX listeners (the node closes its own TCPCL/MTCP ones)

    async def open(self, node: Any, cfg: dict[str, dict[str, Any]]) -> Endpoints:
        """Listen and link as ``cfg`` says; on an error, what was opened stays for close()."""
        from betanet.dtn.tcpcl.protocol import SessionConfig
        for i, t in enumerate(cfg["listen"]["tcpcl"]):
            with about(f"listen.tcpcl[{i}]"):
                ssl = None
                if t["tls_cert"]:
                    from betanet.dtn.tcpcl.aio import server_context
                    ssl = server_context(t["tls_cert"], t["tls_key"] or None, t["tls_ca"] or None)
                sc = SessionConfig(node_id=node.agent.name, node_id_policy=t["node_id_policy"])
                self.ports["tcpcl"].append(await node.listen_tcpcl(*hostport(t["address"]), config=sc, ssl=ssl))
        for i, m in enumerate(cfg["listen"]["mtcp"]):
            with about(f"listen.mtcp[{i}]"):
                self.ports["mtcp"].append(await node.listen_mtcp(*hostport(m["address"])))
        for i, h in enumerate(cfg["listen"]["htx"]):
            with about(f"listen.htx[{i}]"):
                self._servers.append(await _listen_htx(node, h, f"listen.htx[{i}]"))
                self.ports["htx"].append(self._servers[-1].port)
        for i, p in enumerate(cfg["peers"]["links"]):
            with about(f"peers.links[{i}]"):
                node.add_link(p["node"], peer_link(p, node))
        return self

    async def close(self) -> None:
        servers, self._servers = self._servers, []
        for srv in servers:
            with contextlib.suppress(Exception):     # closing anyway
                await srv.close()
