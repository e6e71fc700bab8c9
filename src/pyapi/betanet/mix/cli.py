"""``betanet mixnode``: run one mixnode, or ``--local N`` mixnodes and a client on loopback."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
from typing import Sequence

from betanet.mix.client import MixClient
from betanet.mix.htx_transport import make_transport
from betanet.mix.local import LocalMixnet
from betanet.mix.node import Mixnode
from betanet.mix.transport import PacketTransport, TcpTransport
from betanet.mix.types import HTX_WEB, TCP_FRAMING, TRANSPORT_KINDS, Descriptor, Directory, Message
from betanet.sphinx import KeyPair

log = logging.getLogger(__name__)

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    p = sub.add_parser("mixnode", help="run a Sphinx mixnode (or --local N mixnodes on loopback)")
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on")
    p.add_argument("--key-seed", help="hex 32-byte seed for the node key (default: random)")
    p.add_argument("--node-id", help="hex 32-byte node id (default: random)")
    p.add_argument("--directory", help="JSON file: list of descriptors of the other nodes")
    p.add_argument("--epoch", type=int, default=1)
    p.add_argument("--mean-delay-ms", type=float, default=50.0, help="mean of per-hop delays")
    p.add_argument("--loop-rate", type=float, default=0.0, help="loop cover messages per second")
    p.add_argument("--queue-limit", type=int, default=4096, help="packets waiting for processing")
    p.add_argument("--held-limit", type=int, default=16384,
                   help="packets held for their delay, all kinds (shared fairly between links)")
    p.add_argument("--max-delay-ms", type=float, default=None,
                   help="longest per-hop delay accepted (default: 5 x --mean-delay-ms)")
    p.add_argument("--local", type=int, default=0, metavar="N",
                   help="run N mixnodes on loopback with a client sending test traffic")
    p.add_argument("--messages", type=int, default=5, help="with --local: messages to send")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--stats-interval", type=float, default=0.0, help="print counters every N s")
    p.add_argument("--print-descriptor", action="store_true",
                   help="print this node's descriptor as JSON once listening")
    p.add_argument("--transport", choices=TRANSPORT_KINDS, default="htx-tcp",
                   help="links: HTX over TCP+TLS 1.3 (htx-tcp, default), over QUIC (htx-quic), over "
                        "plain TCP (htx-plain), unencrypted length-prefixed TCP (tcp-framing), or "
                        "behind a decoy HTTPS site with access tickets and Chrome's TLS (htx-web); "
                        "peers are reached with the kind their descriptor advertises")
    p.add_argument("--htx-key", metavar="FILE",
                   help="this node's X25519 HTX private key (raw or hex, mode 0600; created with "
                        "FILE.pub if missing — see `betanet htx keygen`); default: a fresh key per run")
    p.add_argument("--tls-cert", metavar="PEM", help="TLS certificate for htx-tcp/htx-quic "
                   "(default: a self-signed one made at start)")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--tls-cafile", metavar="PEM",
                   help="verify peers' TLS certificates against this CA; without it certificate "
                        "verification is OFF (peers are authenticated by their pinned HTX key)")
    p.add_argument("--decoy-site", metavar="DIR",
                   help="htx-web: the static site served to every visitor without an access ticket")
    p.add_argument("--ticket-key", metavar="FILE",
                   help="htx-web: this node's access-ticket key (created, mode 0600, if missing); "
                        "default: a fresh key per run. Its publication goes into the descriptor")
    p.add_argument("--chrome", metavar="TARGET", default=None,
                   help="the Chrome version whose TLS ClientHello dials htx-web peers "
                        "(one of betanet.tls.htxweb.CHROME_TARGETS; default: the first)")
    p.add_argument("--ticket-rate", type=_positive, default=5.0, metavar="PER_S",
                   help="htx-web: ticket attempts per second per source /24 (IPv4) or /56 (IPv6); "
                        "mixnodes that share a prefix share this budget (docs/stealth.md, \"Rate limits\")")
    p.add_argument("--ticket-burst", type=_at_least_one, default=20.0, metavar="N",
                   help="htx-web: ticket attempts a /24 or /56 may make at once (bucket size)")
    p.set_defaults(func=_main)


def _positive(v: str) -> float:
    import argparse
    x = float(v)
    if not x > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return x


def _at_least_one(v: str) -> float:
    import argparse
    x = float(v)
    if not x >= 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return x


def _htx_key(path: str | None) -> bytes | None:
    """Load ``path`` (creating it and ``path.pub`` when missing), or None for a fresh key."""
    if not path:
        return None
    from betanet.htx import keys
    if not os.path.exists(path):
        priv = keys.generate_private_key()
        keys.save_private_key(path, priv)
        keys.save_public_key(path + ".pub", keys.public_key(priv))
        log.info("created HTX key %s", path)
        return priv
    return keys.load_private_key(path)


def _ticket_key(path: str | None):
    """Load ``path`` (creating it when missing), or None for a fresh key."""
    if not path:
        return None
    from betanet.tls.tickets import TicketKey
    if not os.path.exists(path):
        tk = TicketKey.generate()
        tk.save(path)
        log.info("created ticket key %s", path)
        return tk
    return TicketKey.load(path)


def _web_options(args) -> dict:
    if args.transport != HTX_WEB:
        return {"impersonate": args.chrome} if args.chrome else {}
    if not args.decoy_site:
        raise SystemExit("betanet mixnode: --transport htx-web needs --decoy-site DIR")
    return {"site_root": args.decoy_site, "ticket_key": _ticket_key(args.ticket_key),
            "impersonate": args.chrome, "ticket_rate": args.ticket_rate, "ticket_burst": args.ticket_burst}


def _cli_transport(args, host: str = "127.0.0.1", port: int = 0) -> PacketTransport:
    if args.transport == TCP_FRAMING:
        return TcpTransport(host, port)
    return make_transport(args.transport, host, port, _htx_key(args.htx_key),
                          certfile=args.tls_cert, keyfile=args.tls_key, cafile=args.tls_cafile,
                          **_web_options(args))


def _main(args) -> int:
    try:
        return asyncio.run(_run_local(args) if args.local else _run_node(args))
    except KeyboardInterrupt:
        return 130


async def _stats(nodes: Sequence, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for n in nodes:
            print(f"{n.node_id.hex()[:12]}: {n.counters.summary()}", flush=True)


async def _run_node(args) -> int:
    host, _, port = args.listen.rpartition(":")
    key = KeyPair.from_seed(bytes.fromhex(args.key_seed)) if args.key_seed else KeyPair.generate()
    node_id = bytes.fromhex(args.node_id) if args.node_id else secrets.token_bytes(32)
    directory = Directory()
    if args.directory:
        with open(args.directory) as f:
            for d in json.load(f):
                directory.add(Descriptor.from_json(d))
    node = Mixnode(node_id, key, directory, epoch=args.epoch, mean_delay_ms=args.mean_delay_ms,
                   loop_rate=args.loop_rate, queue_limit=args.queue_limit,
                   held_limit=args.held_limit, max_delay_ms=args.max_delay_ms,
                   transport=_cli_transport(args, host or "127.0.0.1", int(port or 0)),
                   on_message=lambda m: print(f"message for {m.destination.hex()[:12]}: {m.data!r}",
                                              flush=True))
    await node.start()
    directory.add(node.descriptor())
    if args.print_descriptor:
        print(json.dumps(node.descriptor().to_json()), flush=True)
    print(f"mixnode {node_id.hex()[:12]} listening on {node.address[0]}:{node.address[1]} "
          f"({node.transport.kind}" + (f", HTX key {node.transport.public_key.hex()}"
                                       if node.transport.public_key else "") + ")", flush=True)
    tasks = [asyncio.ensure_future(_stats([node], args.stats_interval))] if args.stats_interval else []
    try:
        await asyncio.sleep(args.duration if args.duration > 0 else math.inf)
    finally:
        for t in tasks:
            t.cancel()
        await node.close()
        print(f"counters: {node.counters.summary()}", flush=True)
    return 0


def _local_web_options(args) -> dict:
    # --local: every node gets its own fresh ticket key (a --ticket-key file is one node's)
    return {k: v for k, v in _web_options(args).items() if k != "ticket_key"}


async def _run_local(args) -> int:
    n = max(args.local, 2)
    replies = 0

    def on_message(node: Mixnode, m: Message) -> None:
        asyncio.ensure_future(node.reply(m, b"ack: " + m.data))

    net = LocalMixnet(n, mean_delay_ms=args.mean_delay_ms, loop_rate=args.loop_rate,
                      on_message=on_message, transport=args.transport,
                      transport_options=_local_web_options(args))
    async with net:
        client = MixClient(secrets.token_bytes(32), net.directory, hops=min(3, n),
                           mean_delay_ms=args.mean_delay_ms, loop_rate=args.loop_rate,
                           drop_rate=args.loop_rate,
                           transport=make_transport(args.transport, **_local_web_options(args)))
        async with client:
            net.directory.add(client.descriptor())
            print(f"{n} mixnodes on loopback over {args.transport}: " +
                  ", ".join(f"{m.node_id.hex()[:8]}@{m.address[1]}" for m in net.nodes), flush=True)
            futs = []
            for i in range(args.messages):
                dst = net.nodes[i % n].node_id
                futs.append(await client.send(dst, f"message {i}".encode()))
            done = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True),
                                          timeout=max(10.0, args.mean_delay_ms / 100))
            replies = sum(1 for d in done if isinstance(d, bytes))
            print(f"replies received through SURBs: {replies}/{args.messages}", flush=True)
            if args.duration > 0:
                await asyncio.sleep(args.duration)
            print(f"client: {client.counters.summary()}", flush=True)
    for node in net.nodes:
        print(f"{node.node_id.hex()[:12]}: {node.counters.summary()}", flush=True)
    return 0 if replies == args.messages else 1
