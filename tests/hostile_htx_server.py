"""An HTX server for tests/test_hostile_htx.py, run in its own process (tests/hostile.py
ServerProcess) so that its memory is measured apart from the attacker's.

argv[1] is JSON: transport, certfile/keyfile, private key (hex), ``serve`` keyword
arguments, ``config`` (HTXConfig fields) and the handler:
  "echo"   every stream is echoed;
  "slow"   like echo, but the handler accepts a stream only every ``accept_every`` seconds;
  "blast"  a stream that sends "blast N" gets N bytes back, then the handler waits.
Commands on stdin (JSON lines): {"cmd": "stats"}.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import betanet.htx as htx                     # noqa: E402
from betanet.errors import BetanetError       # noqa: E402
from hostile import open_fds, peak_rss_bytes, rss_bytes, serve_control   # noqa: E402

args = json.loads(sys.argv[1])
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
conns: list = []             # every connection (kept: counters change after the handler ends)


def add_counters(into: dict, st: dict) -> None:
    for k, v in st.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            into[k] = max(into.get(k, 0), v) if k in ("accept_queue", "write_backlog") else into.get(k, 0) + v


async def echo(st) -> None:
    try:
        async with st:
            while data := await st.read(65536):
                if data.startswith(b"blast "):
                    block = b"b" * 65536
                    for _ in range(int(data.split()[1]) // len(block)):
                        st.write(block)
                        await st.drain()
                    await asyncio.sleep(3600)
                st.write(data)
                await st.drain()
    except (BetanetError, ConnectionError):
        pass


async def handler(conn) -> None:
    conns.append(conn)
    tasks = set()
    try:
        while True:
            st = await conn.accept_stream()
            t = asyncio.ensure_future(echo(st))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            if args["handler"] == "slow":
                await asyncio.sleep(args.get("accept_every", 1.0))
    except BetanetError:
        pass
    finally:
        for t in tasks:
            t.cancel()


def stats(_req) -> dict:
    everyone: dict = {}
    for c in conns:
        add_counters(everyone, c.stats())
    out = {"rss": rss_bytes(), "peak_rss": peak_rss_bytes(), "fds": open_fds(),
           "open_connections": sum(not c.closed for c in conns), "all": everyone}
    if hasattr(server, "stats"):
        out["server"] = server.stats()
    return out


async def main() -> None:
    global server
    known = inspect.signature(htx.serve).parameters
    # Options an older build does not have are left out, so the same attack can be run
    # against it for a before/after comparison.
    kw = {k: v for k, v in args.get("serve", {}).items() if k in known}
    server = await htx.serve(handler, "127.0.0.1", 0, bytes.fromhex(args["private_key"]),
                             transport=args["transport"], certfile=args.get("certfile"),
                             keyfile=args.get("keyfile"), config=htx.HTXConfig(**args.get("config", {})),
                             **kw)
    await serve_control({"port": server.port, "ignored": sorted(set(args.get("serve", {})) - set(kw))},
                        {"stats": stats})
    server.close()
    await server.wait_closed()


asyncio.run(main())
