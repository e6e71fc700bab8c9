"""Running a node from its configuration: links from the config, peer record files watched,
a local control socket (status / send / peers) and metrics. ``betanet node run`` and
``python -m betanet.node run --config FILE`` use it; tests start nodes this way as separate
processes (and so will the network-namespace harness).

Files in ``application.data_dir``: ``identity.key`` (0600), ``store.db`` (bundles + outbox +
inbox), ``peer.record`` (our signed record, rewritten at each start with a higher sequence
number), ``control.addr`` (host:port of the control socket), ``cert.pem``/``key.pem`` (the
outer TLS certificate; HTX authenticates with the Noise key, not with it).

Control protocol: one JSON object per line each way, on ``network.status_listen``
(loopback): ``{"cmd": "status"}``, ``{"cmd": "peers"}``, ``{"cmd": "send", "to": PEER,
"data": HEX, "topic": "", "qos": null, "deadline_ms": null, "wait": false, "progress": false}``
(with wait and progress, ``{"progress": {...}}`` lines come before the reply). Received
messages are written to stdout as JSON lines ``{"event": "received", ...}``.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import os
import signal
import sys

from betanet.errors import BetanetError, UnsupportedError
from betanet.node import config as nconfig
from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.node import Node
from betanet.node.power import NoPowerSource, PushedPowerSource, SysfsPowerSource

log = logging.getLogger(__name__)

MAX_CONTROL_LINE = 64 << 20


def peer_files(entries: list[str]) -> list[str]:
    out = []
    for e in entries:
        if os.path.isdir(e):
            out.extend(sorted(glob.glob(os.path.join(e, "*.record"))))
        elif os.path.exists(e):
            out.append(e)
    return out


def build(cfg: dict) -> Node:
    data = cfg["application"]["data_dir"]
    ident = Identity.load(os.path.join(data, "identity.key"))
    p = cfg["platform"]
    power = {"sysfs": lambda: SysfsPowerSource(p["sysfs_root"]), "push": PushedPowerSource,
             "none": NoPowerSource}[p["power_source"]]()
    node = Node(ident, os.path.join(data, "store.db"), config=cfg, power=power)
    t = cfg["transport"]
    if t["htx_listen"]:
        node.links.append(HtxLink(ident, node.peers, transport="tcp", listen=t["htx_listen"], cert_dir=data,
                                  retry_s=max(0.2, cfg["routing"]["retry_interval_ms"] / 1000),
                                  web=web_link(cfg)))
    if t["quic_listen"]:
        node.links.append(HtxLink(ident, node.peers, transport="quic", listen=t["quic_listen"], cert_dir=data,
                                  retry_s=max(0.2, cfg["routing"]["retry_interval_ms"] / 1000)))
    if t["mix_directory"]:
        node.links.append(mix_link(node, t))
    if t["dtn_config"]:
        from betanet.node.link_dtn import DtnLink, load_dtn_config
        dcfg = load_dtn_config(t["dtn_config"], ident.peer_id_text)
        node.links.append(DtnLink(ident.peer_id_text, node.store_path, node.peers, dcfg,
                                  resend_s=t["dtn_resend_ms"] / 1000))
    if t["mesh"] and not t["mesh_air"]:
        raise UnsupportedError("transport.mesh: a standalone node reaches the mesh through an air "
                               "server; set transport.mesh_air to its socket")
    return node


def web_link(cfg: dict):
    """htx-web for the TCP HTX link (``transport.htx_mode`` and friends; docs/stealth.md), or
    None (plain HTX TLS; htx-web peers are still dialled, with the newest Chrome target)."""
    from betanet.tls.weblink import WebLink, load_or_create_ticket_key
    t = cfg["transport"]
    chrome = t["htx_chrome"] or None
    if t["htx_mode"] != "web":
        return WebLink(impersonate=chrome) if chrome else None
    key = load_or_create_ticket_key(os.path.join(cfg["application"]["data_dir"], t["htx_ticket_key"]))
    return WebLink(t["htx_decoy_site"], key, impersonate=chrome, rate=t["htx_ticket_rate"],
                   burst=t["htx_ticket_burst"])


def mix_link(node: Node, t: dict):
    """The mixnet link (privacy QoS): a mix client on ``mix_listen`` whose directory is the
    ``mix_directory`` file (re-read by the service; see ``load_mix_directory``)."""
    from betanet.mix.client import MixClient
    from betanet.mix.transport import TcpTransport
    from betanet.mix.types import Directory
    from betanet.node.link_mix import MixLink, mix_id
    host, _, port = t["mix_listen"].rpartition(":")
    directory = Directory()
    client = MixClient(mix_id(node.me), directory, transport=TcpTransport(host.strip("[]"), int(port)),
                       hops=t["mix_hops"], mean_delay_ms=t["mix_delay_ms"])
    return MixLink(client, directory, node.peers, hops=t["mix_hops"], mean_delay_ms=t["mix_delay_ms"])


def load_mix_directory(link, path: str) -> None:
    """Add (or replace) every descriptor of the JSON list in ``path``; a bad file is logged
    and changes nothing."""
    from betanet.mix.types import Descriptor
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 20)
        entries = [Descriptor.from_json(d) for d in json.loads(raw)]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError, BetanetError) as e:
        log.warning("mix directory %s refused: %s", path, e)
        return
    for d in entries:
        if d.node_id != link.client.client_id:
            link.directory.add(d)


async def join_air(node: Node, cfg: dict) -> None:
    """The BLE mesh through the air server: the mesh identity is the node's own keys (X25519
    as the Noise static key, Ed25519 as the signing key), so its BLE peer id is stable."""
    from betanet.mesh.air import AirRadio
    from betanet.mesh.router import Identity as MeshIdentity, MeshRouter
    from betanet.node.link_mesh import MeshLink
    t = cfg["transport"]
    ident = node.identity
    router = MeshRouter(MeshIdentity(cfg["application"]["name"][:32], ident.exchange_private,
                                     ident.signing_seed))
    radio = await AirRadio.connect(t["mesh_air"], router.me, t["mesh_x"], t["mesh_y"])
    n = cfg["network"]
    node.links.append(MeshLink(router, radio, node.peers, discovery=n["mesh_discovery"],
                               expiry_s=n["mesh_peer_expiry_ms"] / 1000))


class Service:
    def __init__(self, cfg: dict, out=sys.stdout) -> None:
        self.cfg = cfg
        self.node = build(cfg)
        self.out = out
        self._tasks: list[asyncio.Task] = []
        self._control = None
        self._metrics = None
        self._mdns = None
        self._stop = asyncio.Event()

    def emit(self, obj: dict) -> None:
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    def load_peers(self) -> None:
        for f in peer_files(self.cfg["network"]["peers"]):
            try:
                with open(f, "rb") as fh:
                    raw = fh.read(8192)
                if raw and self.node.peers.find(self._peer_of(raw)) is not None and \
                        self.node.peers.find(self._peer_of(raw)).raw == raw:
                    continue
                rec = self.node.add_peer(raw)
                if rec.peer != self.node.me:
                    log.info("peer %s imported from %s", rec.peer, f)
            except BetanetError as e:
                if "not above the held" not in str(e):
                    log.warning("peer record %s refused: %s", f, e)
            except OSError:
                pass

    @staticmethod
    def _peer_of(raw: bytes) -> str:
        try:
            from betanet.node.peers import PeerRecord
            return PeerRecord.decode(raw).peer
        except BetanetError:
            return ""

    def _mix(self):
        return next((l for l in self.node.links if l.transport == "mix"), None)

    async def _watch_peers(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.load_peers()
            if self._mix() is not None:
                load_mix_directory(self._mix(), self.cfg["transport"]["mix_directory"])

    async def _consume(self) -> None:
        async for m in self.node.messages():
            self.emit({"event": "received", "from": m.sender, "seq": m.seq, "topic": m.topic,
                       "id": m.message_id.hex(), "data": m.body.hex()})

    async def start(self) -> None:
        if self.cfg["transport"]["mesh"]:
            await join_air(self.node, self.cfg)
        await self.node.start()
        data = self.cfg["application"]["data_dir"]
        rec = self.node.record()
        self.node.add_peer(rec.raw)
        tmp = os.path.join(data, ".peer.record.tmp")
        with open(tmp, "wb") as f:
            f.write(rec.raw)
        os.replace(tmp, os.path.join(data, "peer.record"))
        self.load_peers()
        mix = self._mix()
        if mix is not None:            # our client descriptor, for whoever builds the directory
            tmp = os.path.join(data, ".mix.descriptor.tmp")
            with open(tmp, "w") as f:
                json.dump(mix.client.descriptor().to_json(), f)
            os.replace(tmp, os.path.join(data, "mix.descriptor"))
            load_mix_directory(mix, self.cfg["transport"]["mix_directory"])
        n = self.cfg["network"]
        if n["mdns"]:
            from betanet.node.mdns import MdnsDiscovery
            port = next((l.port for l in self.node.links if getattr(l, "port", 0)), 0)
            self._mdns = MdnsDiscovery(self.node, rec, port)
            await self._mdns.start()
        if n["status_listen"]:
            host, _, port = n["status_listen"].rpartition(":")
            self._control = await asyncio.start_server(self._client, host, int(port), limit=MAX_CONTROL_LINE)
            addr = self._control.sockets[0].getsockname()
            with open(os.path.join(data, "control.addr"), "w") as f:
                f.write(f"{addr[0]}:{addr[1]}\n")
        if n["metrics_listen"]:
            from betanet.node.metrics import serve_metrics
            host, _, port = n["metrics_listen"].rpartition(":")
            col, server, _ = serve_metrics(self.node, host, int(port))
            self._metrics = server
            self._tasks.append(asyncio.ensure_future(col.refresh()))
            self.metrics_port = server.server_port
            log.info("metrics on http://%s:%d/metrics", host, self.metrics_port)
        self._tasks += [asyncio.ensure_future(self._watch_peers()), asyncio.ensure_future(self._consume())]
        self.emit({"event": "started", "peer": self.node.me,
                   "htx": [f"{l.transport}:{l.port}" for l in self.node.links if getattr(l, "port", 0)]})

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                def progress(obj: dict) -> None:
                    w.write((json.dumps({"progress": obj}) + "\n").encode())
                try:
                    reply = await self.command(json.loads(line), progress)
                except (BetanetError, ValueError, KeyError, TypeError) as e:
                    reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                w.write((json.dumps(reply) + "\n").encode())
                await w.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            w.close()

    async def command(self, c: dict, progress=None) -> dict:
        """One control command; with ``"progress": true`` and ``"wait": true`` a send reports
        ``{"progress": {chunks_sent, chunks_total, acked}}`` lines through ``progress`` first."""
        cmd = c.get("cmd")
        if cmd == "status":
            return {"ok": True, **(await self.node.status())}
        if cmd == "peers":
            return {"ok": True, "peers": [{"peer": r.peer, "seq": r.seq, "htx_tcp": r.htx_tcp,
                                           "htx_quic": r.htx_quic, "dtn_eids": r.dtn_eids,
                                           "ble": r.ble_id.hex() if r.ble_id else None,
                                           "features": r.features}
                                          for r in self.node.peers]}
        if cmd == "send":
            h = await self.node.send(c["to"], bytes.fromhex(c["data"]), topic=c.get("topic", ""),
                                     qos=c.get("qos"), deadline_ms=c.get("deadline_ms"))
            out = {"ok": True, "id": h.message_id.hex(), "policy": h.policy, "qos": h.qos}
            if c.get("wait"):
                reporter = None
                if c.get("progress") and progress is not None:
                    async def report():
                        async for p in h.progress_updates():
                            progress(p)
                    reporter = asyncio.ensure_future(report())
                try:
                    await h.acked(c.get("timeout", 30))
                    out["acked"] = True
                except (asyncio.TimeoutError, BetanetError) as e:
                    out["acked"] = False
                    out["error"] = str(e)
                finally:
                    if reporter is not None:
                        reporter.cancel()
                        with contextlib.suppress(BaseException):
                            await reporter
                out["progress"] = h.progress
            out["route"], out["transports"] = h.route, h.transports
            return out
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._stop.set)
        await self._stop.wait()
        await self.stop()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._control:
            self._control.close()
        if self._metrics:
            self._metrics.shutdown()
        if self._mdns:
            await self._mdns.stop()
        await self.node.stop()


def init(directory: str, *, htx_listen: str = "127.0.0.1:0", peers: list[str] | None = None,
         extra: dict | None = None) -> str:
    """Create ``directory`` with identity.key (0600) and a commented node.yaml; returns the
    config path. Refuses to replace an existing identity."""
    os.makedirs(directory, exist_ok=True)
    ident = Identity.generate()
    ident.save(os.path.join(directory, "identity.key"))
    over = {"transport": {"htx_listen": htx_listen}, "network": {"peers": peers or []}}
    for s, kv in (extra or {}).items():
        over.setdefault(s, {}).update(kv)
    nconfig.from_dict(over)                      # validate what we are about to write
    path = os.path.join(directory, "node.yaml")
    from betanet.htx.keys import write_new_file
    write_new_file(path, nconfig.render_default(over).encode(), 0o644, overwrite=True)
    return path
