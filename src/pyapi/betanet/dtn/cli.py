"""``betanet dtn``: run a bundle node, send a bundle, ping an echo endpoint, show a store.

    betanet dtn node --config node.yaml       # betanet dtn node --print-config: every key
    betanet dtn node --id ipn:2.0 --store b.db --tcpcl 127.0.0.1:4556 \\
        --peer ipn:3.0=tcpcl:127.0.0.1:4557 --route 'ipn:3.*=ipn:3.0' --register ipn:2.1
    betanet dtn send --via tcpcl:127.0.0.1:4556 --to ipn:3.1 "hello"
    betanet dtn ping --via tcpcl:127.0.0.1:4556 ipn:3.0 -c 3
    betanet dtn status --store b.db
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from typing import Any

from betanet.errors import BetanetError, InvalidArgumentError


def add_parser(sub: argparse._SubParsersAction) -> None:
    dtn = sub.add_parser("dtn", help="delay-tolerant networking: bundle nodes (RFC 9171)")
    dsub = dtn.add_subparsers(dest="dtn_command", metavar="SUBCOMMAND")

    def usage(args: argparse.Namespace) -> int:
        dtn.print_help(sys.stderr)
        return 2

    dtn.set_defaults(func=usage)
    node = dsub.add_parser("node", help="run a bundle node until interrupted",
                           description="Run a bundle node from a config file (docs/dtn.md "
                           "\"Configuration file\") and/or flags; flags override the file, and a "
                           "repeated flag (--tcpcl, --peer, ...) replaces the file's list.")
    node.add_argument("--config", metavar="FILE", help="YAML configuration (--print-config shows every key)")
    node.add_argument("--print-config", action="store_true", help="print the commented default configuration")
    node.add_argument("--id", help="node id: ipn:N.0 or dtn://name/")
    node.add_argument("--store", help="bundle store (SQLite file)")
    node.add_argument("--tcpcl", action="append", default=[], metavar="HOST:PORT", help="TCPCLv4 listener")
    node.add_argument("--mtcp", action="append", default=[], metavar="HOST:PORT", help="MTCP listener")
    node.add_argument("--peer", action="append", default=[], metavar="NODE=CLA:HOST:PORT",
                      help="link to a next hop, CLA tcpcl, mtcp or udp (e.g. ipn:3.0=tcpcl:10.0.0.3:4556)")
    node.add_argument("--route", action="append", default=[], metavar="PATTERN=NODE",
                      help="static route: destination EID pattern (fnmatch) -> next-hop node")
    node.add_argument("--strategy", choices=["static", "cgr", "epidemic", "spray"])
    node.add_argument("--plan", help="ION contact plan (for --strategy cgr); times relative to start")
    node.add_argument("--copies", type=int, help="spray-and-wait copies (default 8)")
    node.add_argument("--register", action="append", default=[], metavar="EID",
                      help="application endpoint whose bundles are printed (one JSON line each)")
    node.add_argument("--no-custody", action="store_true", help="do not accept custody")
    node.add_argument("--duration", type=float, help="stop after this many seconds (default 0: never)")
    node.set_defaults(func=_node)

    send = dsub.add_parser("send", help="send one bundle through a node")
    _client_args(send)
    send.add_argument("--to", required=True, help="destination EID")
    send.add_argument("--lifetime", type=float, default=3600.0, help="seconds")
    send.add_argument("--priority", type=int, choices=[0, 1, 2], default=1)
    send.add_argument("--custody", action="store_true", help="request custody transfer")
    send.add_argument("--report", action="store_true", help="request delivery and deletion reports (printed)")
    send.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the hand-over (and reports)")
    send.add_argument("payload", help="payload text, or - for standard input")
    send.set_defaults(func=_send)

    ping = dsub.add_parser("ping", help="echo round trips to a node's echo endpoint")
    _client_args(ping)
    ping.add_argument("destination", help="node to ping (ipn:N.0 or dtn://name/)")
    ping.add_argument("-c", "--count", type=int, default=3)
    ping.add_argument("-i", "--interval", type=float, default=0.5)
    ping.add_argument("--timeout", type=float, default=5.0)
    ping.set_defaults(func=_ping)

    status = dsub.add_parser("status", help="store contents and, when its node runs, counters and contacts")
    status.add_argument("--store", required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--via", required=True, metavar="CLA:HOST:PORT", help="the node to hand bundles to")
    p.add_argument("--via-id", default=None, help="its node id (needed for mtcp and udp; with tcpcl any name will do)")
    p.add_argument("--id", default=None, help="our node id (default: a random ipn node)")


def _link(spec: str, node: Any) -> Any:
    cla, _, address = spec.partition(":")
    if cla not in ("tcpcl", "mtcp", "udp"):
        raise InvalidArgumentError(f"{spec!r}: convergence layer must be tcpcl, mtcp or udp")
    from betanet.dtn.build import peer_link
    return peer_link({"cla": cla, "address": address, "local": "127.0.0.1:0", "tls_ca": "",
                       "tls_cert": "", "tls_key": "", "verify": True}, node)


def _node_config(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config file (or the defaults) with the flags applied, validated."""
    from betanet.dtn import config as dconfig
    cfg = dconfig.load(args.config) if args.config else dconfig.defaults()
    flags = {("node", "id"): args.id, ("store", "path"): args.store,
             ("routing", "strategy"): args.strategy, ("routing", "plan"): args.plan,
             ("routing", "copies"): args.copies, ("node", "duration"): args.duration,
             ("node", "custody"): False if args.no_custody else None,
             ("node", "register"): args.register or None,
             ("listen", "tcpcl"): [{"address": a} for a in args.tcpcl] or None,
             ("listen", "mtcp"): [{"address": a} for a in args.mtcp] or None}
    routes = []
    for r in args.route:
        pat, sep, hop = r.partition("=")
        if not sep:
            raise InvalidArgumentError(f"--route {r!r}: expected PATTERN=NODE")
        routes.append({"pattern": pat, "via": hop})
    peers = []
    for p in args.peer:
        peer, sep, spec = p.partition("=")
        cla, sep2, address = spec.partition(":")
        if not sep or not sep2:
            raise InvalidArgumentError(f"--peer {p!r}: expected NODE=CLA:HOST:PORT")
        peers.append({"node": peer, "cla": cla, "address": address})
    flags[("routing", "routes")] = routes or None
    flags[("peers", "links")] = peers or None
    if any(v is not None for v in flags.values()):
        for (section, key), v in flags.items():
            if v is not None:
                cfg[section][key] = v
        cfg = dconfig.from_dict(cfg, "command line")
    if not cfg["node"]["id"]:
        raise dconfig.ConfigError("node.id is required (in the config file or --id)")
    return cfg


def _status_path(store: str) -> str:
    return store + ".status.json"


async def _run_node(cfg: dict[str, dict[str, Any]]) -> int:
    from betanet.dtn.build import Endpoints, build_node
    node = build_node(cfg)
    store = cfg["store"]["path"]
    ep = Endpoints()
    await node.start()
    try:
        await ep.open(node, cfg)
        for cla, ports in ep.ports.items():
            for port in ports:
                print(f"{cla} listening on port {port}", flush=True)
        for e in cfg["node"]["register"]:
            def show(d: Any) -> None:
                print(json.dumps({"endpoint": str(d.destination), "source": str(d.source),
                                  "bundle_id": d.bundle_id[:32],
                                  "payload": d.payload.decode("utf-8", "replace")}), flush=True)
            node.register(e, show)
        print(f"node {node.agent.name} running ({cfg['routing']['strategy']})", flush=True)
        started = time.monotonic()
        duration = cfg["node"]["duration"]
        while not duration or time.monotonic() - started < duration:
            await asyncio.sleep(1.0)
            st = await node.status()
            tmp = _status_path(store) + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(dict(st, written_at=time.time()), f)
            os.replace(tmp, _status_path(store))
    finally:
        await ep.close()
        await node.close()
    return 0


def _node(args: argparse.Namespace) -> int:
    if args.print_config:
        from betanet.dtn.config import render_default
        print(render_default(), end="")
        return 0
    try:
        return asyncio.run(_run_node(_node_config(args)))
    except (BetanetError, OSError) as e:
        print(f"betanet dtn node: {e}", file=sys.stderr)
        return 2


def _run_client(args: argparse.Namespace, work, command: str) -> int:
    """``work(node)`` on a short-lived node that hands bundles to ``--via``; errors exit 2."""
    try:
        return asyncio.run(_client(args, work))
    except (BetanetError, OSError, asyncio.TimeoutError) as e:
        print(f"betanet dtn {command}: {e or type(e).__name__}", file=sys.stderr)
        return 2


async def _client(args: argparse.Namespace, work):
    from betanet.dtn.node import Node
    from betanet.dtn.routing import StaticRoutes
    from betanet.dtn.eid import EID
    nid = args.id or f"ipn:{secrets.randbelow(1 << 31) + (1 << 31)}.0"
    cla = args.via.partition(":")[0]
    if cla not in ("tcpcl", "mtcp", "udp"):
        raise InvalidArgumentError(f"--via {args.via!r}: convergence layer must be tcpcl, mtcp or udp")
    via = args.via_id
    if via is None and cla != "tcpcl":
        raise InvalidArgumentError("--via-id is needed for mtcp and udp")
    with tempfile.TemporaryDirectory(prefix="betanet-dtn-") as tmp:
        node = Node(EID.parse(nid), os.path.join(tmp, "client.db"), synchronous="NORMAL")
        await node.start()
        try:
            link = _link(args.via, node)
            if via is None:   # the node id the peer announced in SESS_INIT
                await asyncio.wait_for(link.open_contact(), 10.0)
                via = link.connection.peer_node_id
            via = str(EID.parse(via).node_id)
            node.agent.strategy = StaticRoutes([("*", via)])
            node.add_link(via, link)
            return await work(node)
        finally:
            await node.close()


def _send(args: argparse.Namespace) -> int:
    from betanet.dtn.bundle import BundleFlags
    payload = sys.stdin.buffer.read() if args.payload == "-" else args.payload.encode()
    flags = BundleFlags.REPORT_DELIVERY | BundleFlags.REPORT_DELETION if args.report else BundleFlags.NONE

    async def work(node) -> int:
        bid = await node.send(args.to, payload, lifetime_ms=int(args.lifetime * 1000),
                              priority=args.priority, custody=args.custody, flags=flags)
        print(f"bundle {bid[:32]}… ({len(payload)} bytes) to {args.to}", flush=True)
        end = time.monotonic() + args.wait
        while time.monotonic() < end:
            if bid not in node.agent.held and (not args.report or node.reports):
                break
            await asyncio.sleep(0.05)
        for r in node.reports:
            print(f"report from {r.sender}: {r.report.asserted.name} ({r.report.reason.name})")
        if bid in node.agent.held:
            print("not handed over (no contact or no custody acceptance in time)", file=sys.stderr)
            return 1
        print("handed over" + (" (custody accepted)" if args.custody else ""))
        return 0
    return _run_client(args, work, "send")


def _ping(args: argparse.Namespace) -> int:
    async def work(node) -> int:
        await asyncio.sleep(0.05)
        rtts = []
        for i in range(args.count):
            r = (await node.ping(args.destination, count=1, timeout=args.timeout))[0]
            rtts.append(r)
            print(f"{args.destination} seq={i} " + (f"time={r * 1000:.2f} ms" if r is not None else "timeout"),
                  flush=True)
            if i + 1 < args.count:
                await asyncio.sleep(args.interval)
        ok = [r for r in rtts if r is not None]
        print(f"{len(rtts)} sent, {len(ok)} received" +
              (f", rtt min/avg/max {min(ok) * 1000:.2f}/{sum(ok) / len(ok) * 1000:.2f}/{max(ok) * 1000:.2f} ms"
               if ok else ""))
        return 0 if ok else 1
    return _run_client(args, work, "ping")


def _status(args: argparse.Namespace) -> int:
    if not os.path.exists(args.store):
        print(f"betanet dtn status: {args.store}: no such store", file=sys.stderr)
        return 2
    try:
        conn = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
        rows = conn.execute("SELECT state, COUNT(*), COALESCE(SUM(size),0) FROM bundles GROUP BY state").fetchall()
        conn.close()
    except sqlite3.Error as e:
        print(f"betanet dtn status: {args.store} is not a bundle store ({e})", file=sys.stderr)
        return 2
    from betanet.dtn.store import BundleState
    out: dict[str, Any] = {"store": {BundleState(s).name.lower(): {"count": n, "bytes": b} for s, n, b in rows}}
    try:
        with open(_status_path(args.store), encoding="utf-8") as f:
            live = json.load(f)
        if time.time() - live.get("written_at", 0) < 10:
            out.update({k: live[k] for k in ("node", "strategy", "held", "custody", "contacts", "counters")
                        if k in live})
    except (OSError, ValueError):
        pass
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    for state, v in out["store"].items():
        print(f"{state:12} {v['count']:8} bundles {v['bytes']:12} bytes")
    if "node" in out:
        print(f"node {out['node']} ({out['strategy']}): holding {out['held']}, custody of {out['custody']}")
        print("contacts: " + (", ".join(f"{k} {'up' if v else 'down'}" for k, v in out["contacts"].items()) or "none"))
        print("counters: " + ", ".join(f"{k}={v}" for k, v in out["counters"].items() if v))
    else:
        print("(no running node writes this store's status)")
    return 0
