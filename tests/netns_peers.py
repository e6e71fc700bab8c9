"""Programs the netns tests start inside namespaces: ``python tests/netns_peers.py ROLE ...``.

Each prints machine-readable lines the test waits for (``ready PORT``, ``ok N``, ...). They use
only the public APIs of betanet.htx and betanet.dtn, as an application would.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time


def say(*parts) -> None:
    print(*parts, flush=True)


# -- HTX ---------------------------------------------------------------------------------
async def htx_echo_server(a) -> None:
    from betanet import htx

    async def handler(conn):
        while True:
            try:
                st = await conn.accept_stream()
            except Exception:
                return
            asyncio.ensure_future(echo(st))

    async def echo(st):
        try:
            while True:
                data = await st.read(65536)
                if not data:
                    break
                st.write(data)
                await st.drain()
            st.write_eof()
            await st.drain()
        except Exception as exc:                 # a cut client: nothing to answer
            say("stream-error", type(exc).__name__)

    srv = await htx.serve(handler, a.host, a.port, a.key, transport=a.transport,
                          certfile=a.cert, keyfile=a.keyfile)
    say("ready", srv.port)
    await asyncio.Event().wait()


async def htx_pinger(a) -> None:
    """One stream; a 16-byte message every ``interval`` s, each echo awaited ``timeout`` s.
    Prints ``ok N`` per echo and, at the first failure, ``fail ERROR ms-since-last-ok``."""
    from betanet import htx
    conn = await htx.connect(a.host, a.port, a.pub, transport=a.transport, verify=False,
                             idle_timeout=None)
    st = await conn.open_stream()
    say("connected")
    n, last_ok = 0, time.monotonic()
    while True:
        msg = n.to_bytes(16, "big")
        try:
            st.write(msg)
            await asyncio.wait_for(st.drain(), a.timeout)
            got = await asyncio.wait_for(st.readexactly(16), a.timeout)
            if got != msg:
                say("fail mismatch", n)
                return
        except Exception as exc:
            say("fail", type(exc).__name__, round((time.monotonic() - last_ok) * 1000))
            conn.htx.close(0, "") if not conn.closed else None
            return
        n += 1
        last_ok = time.monotonic()
        say("ok", n)
        await asyncio.sleep(a.interval)


async def htx_bulk(a) -> None:
    """Send ``size`` random bytes on one stream, read the echo; print both SHA-256."""
    from betanet import htx
    data = random.Random(a.seed).randbytes(a.size)
    t0 = time.monotonic()
    conn = await htx.connect(a.host, a.port, a.pub, transport=a.transport, verify=False,
                             handshake_timeout=30)
    st = await conn.open_stream()
    say("connected", round(time.monotonic() - t0, 3))

    async def send():
        for i in range(0, len(data), 16384):
            st.write(data[i:i + 16384])
            await st.drain()
        st.write_eof()
        await st.drain()

    sender = asyncio.ensure_future(send())
    h, got = hashlib.sha256(), 0
    while True:
        chunk = await st.read(65536)
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    await sender
    say("sent", hashlib.sha256(data).hexdigest())
    say("got", h.hexdigest(), got)
    say("done", round(time.monotonic() - t0, 3))
    await conn.close()


# -- DTN TCPCLv4 -------------------------------------------------------------------------
async def tcpcl_receiver(a) -> None:
    """Stores every bundle (its first 12 bytes are its id) and prints ``new ID`` once per id."""
    from betanet.dtn.store import BundleStore
    from betanet.dtn.tcpcl.aio import serve
    from betanet.dtn.tcpcl.protocol import SessionConfig
    store = BundleStore(a.db)

    async def on_bundle(data):
        bid = data[:12].decode()
        if await store.put(bid, data, destination="ipn:2.0", source="ipn:1.0", expires_at=1e12):
            say("new", bid)

    srv = await serve(a.host, a.port, on_bundle=on_bundle,
                      config=SessionConfig(node_id="ipn:2.0", segment_mru=4096))
    say("ready", srv.port)
    await asyncio.Event().wait()


def bundles(count: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    ids = [f"bundle{i:06d}" for i in range(count)]
    return {i: i.encode() + rng.randbytes(rng.randrange(1, 20_000)) for i in ids}


async def tcpcl_sender(a) -> None:
    """Sends ``count`` bundles over three concurrent senders, retrying across sessions;
    prints ``acked ID`` for each and ``all-acked retried=R sessions=S`` at the end."""
    from betanet.dtn.tcpcl.aio import TcpclClient
    from betanet.dtn.tcpcl.protocol import SessionConfig
    data = bundles(a.count, a.seed)
    ids = list(data)
    client = TcpclClient(a.host, a.port, attempts=200, backoff=0.05, max_backoff=0.5,
                         config=SessionConfig(node_id="ipn:1.0"), timeout=5)

    async def sender(part):
        for i in part:
            await client.send_bundle(data[i])
            say("acked", i)
            if a.pace:
                await asyncio.sleep(a.pace)

    await asyncio.gather(*(sender(ids[k::3]) for k in range(3)))
    say("all-acked", f"retried={client.retried}", f"sessions={client.sessions_opened}")
    await client.close()


# -- BLE mesh over the shared air (a Unix socket reachable from every namespace) ------------
async def mesh_node(a) -> None:
    """Joins the air; prints ``peer HEX``. Answers broadcast ``ping:X`` with ``pong:X`` and a
    private message with ``re:TEXT`` (unless ``--relay-only``); with ``--ping HEX`` it waits for that peer's announce,
    pings it ``--count`` times and messages it privately, printing what comes back."""
    from betanet.mesh.air import AirRadio
    from betanet.mesh.router import Delivered, Identity, MeshRouter, PeerAnnounced, PrivateMessage
    from betanet.mesh.service import MeshService
    ident = Identity.generate(a.name)
    radio = await AirRadio.connect(a.air, ident.peer_id, a.x, 0.0)
    svc = MeshService(MeshRouter(ident), radio, announce_interval_s=0.5)
    events = svc.events()
    await svc.start()
    say("peer", ident.peer_id.hex())
    if a.ping:
        target = bytes.fromhex(a.ping)
        await svc.wait_for(lambda ev: isinstance(ev, PeerAnnounced) and ev.peer_id == target, 30)
        say("announced", a.ping)
        for i in range(a.count):
            svc.broadcast(b"ping:%d" % i)
            ev = await svc.wait_for(lambda ev: isinstance(ev, Delivered)
                                    and ev.packet.payload == b"pong:%d" % i, 10)
            say("pong", i, ev.packet.sender.hex(), "verified" if ev.verified else "unverified")
        svc.send_private(target, "hello across namespaces")
        pm = await svc.wait_for(lambda ev: isinstance(ev, PrivateMessage), 20)
        say("private", pm.peer_id.hex(), pm.content)
        await svc.stop()
        return
    async for ev in events:
        if a.relay_only:
            continue
        if isinstance(ev, Delivered) and ev.packet.payload.startswith(b"ping:"):
            svc.broadcast(b"pong:" + ev.packet.payload[5:])
        elif isinstance(ev, PrivateMessage):
            svc.send_private(ev.peer_id, "re:" + ev.content)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("htx-echo-server")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--transport", default="tcp")
    s.add_argument("--key", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--keyfile", required=True)
    for role in ("htx-pinger", "htx-bulk"):
        c = sub.add_parser(role)
        c.add_argument("--host", required=True)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--pub", required=True)
        c.add_argument("--transport", default="tcp")
        c.add_argument("--interval", type=float, default=0.05)
        c.add_argument("--timeout", type=float, default=1.0)
        c.add_argument("--size", type=int, default=1 << 20)
        c.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("tcpcl-receiver")
    r.add_argument("--host", required=True)
    r.add_argument("--port", type=int, default=0)
    r.add_argument("--db", required=True)
    t = sub.add_parser("tcpcl-sender")
    t.add_argument("--host", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--count", type=int, default=120)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--pace", type=float, default=0.0)
    m = sub.add_parser("mesh-node")
    m.add_argument("--air", required=True)
    m.add_argument("--name", default="netns")
    m.add_argument("--x", type=float, default=0.0)
    m.add_argument("--ping", default="")
    m.add_argument("--count", type=int, default=3)
    m.add_argument("--relay-only", action="store_true", help="only relay (answer nothing)")
    a = p.parse_args()
    fn = {"htx-echo-server": htx_echo_server, "htx-pinger": htx_pinger, "htx-bulk": htx_bulk,
          "tcpcl-receiver": tcpcl_receiver, "tcpcl-sender": tcpcl_sender,
          "mesh-node": mesh_node}[a.role]
    asyncio.run(fn(a))


if __name__ == "__main__":
    sys.exit(main())
