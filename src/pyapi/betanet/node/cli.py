"""``betanet node init|run|status|send|peers`` (docs/node.md "Running a small network")."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys

from betanet.errors import BetanetError


def _control(cfg_path: str, obj: dict, timeout: float = 60.0, on_progress=None) -> dict:
    from betanet.node import config as nconfig
    cfg = nconfig.load(cfg_path)
    addr_file = os.path.join(cfg["application"]["data_dir"], "control.addr")
    try:
        host, _, port = open(addr_file).read().strip().rpartition(":")
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall((json.dumps(obj) + "\n").encode())
            buf = b""
            while True:
                while b"\n" not in buf:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        return json.loads(buf)
                    buf += chunk
                line, _, buf = buf.partition(b"\n")
                reply = json.loads(line)
                if "progress" in reply and len(reply) == 1:
                    if on_progress is not None:
                        on_progress(reply["progress"])
                    continue
                return reply
    except OSError as e:
        raise BetanetError(f"node not running? ({addr_file}: {e})") from None


def _init(a) -> int:
    from betanet.node.service import init
    path = init(a.dir, htx_listen=a.listen, peers=a.peer)
    from betanet.node.identity import Identity
    ident = Identity.load(os.path.join(a.dir, "identity.key"))
    print(f"peer id  {ident.peer_id_text}\nconfig   {path}")
    return 0


def _run(a) -> int:
    from betanet.node import config as nconfig
    from betanet.node.service import Service
    cfg = nconfig.load(a.config)
    logging.getLogger().setLevel(cfg["application"]["log_level"].upper())

    async def main():
        await Service(cfg).run()
    asyncio.run(main())
    return 0


def _print(reply: dict) -> int:
    print(json.dumps(reply, indent=1))
    return 0 if reply.get("ok") else 1


def add_parser(sub) -> None:
    p = sub.add_parser("node", help="run a Betanet node (docs/node.md)")
    s = p.add_subparsers(dest="node_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    i = s.add_parser("init", help="create keys and a commented config in DIR")
    i.add_argument("dir")
    i.add_argument("--listen", default="127.0.0.1:0", help="HTX over TCP+TLS listen address")
    i.add_argument("--peer", action="append", default=[], help="peer record file or directory (repeatable)")
    i.set_defaults(func=_guard(_init))
    r = s.add_parser("run", help="run the node in the foreground")
    r.add_argument("--config", required=True)
    r.set_defaults(func=_guard(_run))
    st = s.add_parser("status", help="peers, links with their measurements, routes, queues")
    st.add_argument("--config", required=True)
    st.set_defaults(func=_guard(lambda a: _print(_control(a.config, {"cmd": "status"}))))
    pe = s.add_parser("peers", help="the peer book of the running node")
    pe.add_argument("--config", required=True)
    pe.set_defaults(func=_guard(lambda a: _print(_control(a.config, {"cmd": "peers"}))))
    se = s.add_parser("send", help="send a message (DATA as text, or @FILE)")
    se.add_argument("--config", required=True)
    se.add_argument("to")
    se.add_argument("data")
    se.add_argument("--topic", default="")
    se.add_argument("--qos", default=None)
    se.add_argument("--deadline-ms", type=int, default=None)
    se.add_argument("--wait", action="store_true", help="wait for the end-to-end acknowledgment "
                    "(progress in chunks on stderr: one line on a terminal, plain lines otherwise)")
    se.add_argument("--quiet", action="store_true", help="no progress on stderr")
    se.set_defaults(func=_guard(_send))


class Progress:
    """Chunks of a send on stderr: one line rewritten in place on a terminal, plain lines
    (one per change) otherwise — stdout keeps the JSON reply."""

    def __init__(self, size: int, out=None) -> None:
        self.size, self.out = size, out or sys.stderr
        self.tty = self.out.isatty()
        self.last = None

    def __call__(self, p: dict) -> None:
        sent, total = p.get("chunks_sent", 0), p.get("chunks_total", 0)
        state = "acknowledged" if p.get("acked") else "sent"
        line = f"{sent}/{total} chunks {state} ({self.size} bytes)"
        if line == self.last:
            return
        self.last = line
        if self.tty:
            self.out.write("\r\x1b[K" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self, reply: dict) -> None:
        if reply.get("progress"):
            self(reply["progress"])
        if self.tty and self.last is not None:
            self.out.write("\n")
            self.out.flush()


def _send(a) -> int:
    data = open(a.data[1:], "rb").read() if a.data.startswith("@") else a.data.encode()
    show = Progress(len(data)) if a.wait and not a.quiet else None
    reply = _control(a.config, {"cmd": "send", "to": a.to, "data": data.hex(), "topic": a.topic,
                                "qos": a.qos, "deadline_ms": a.deadline_ms, "wait": a.wait,
                                "progress": show is not None}, on_progress=show)
    if show is not None:
        show.done(reply)
    return _print(reply)


def _guard(fn):
    def run(a) -> int:
        try:
            return fn(a)
        except (BetanetError, OSError) as e:
            print(f"betanet node: {e}", file=sys.stderr)
            return 1
    return run
