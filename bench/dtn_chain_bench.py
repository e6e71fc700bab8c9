"""DTN forwarding through a chain of three nodes: A -> B -> C over TCPCLv4 on localhost
(betanet.dtn.node: the bundle protocol agent, the durable store, static routes). Measures
bundles/s delivered to C's application (1 KiB payloads, A sending as fast as it can) and the
latency of one bundle on an idle chain, with and without custody transfer; next to a plain
asyncio TCP relay chain of the same shape (length-prefixed frames copied by the middle
process, no bundle processing, no store): the floor the asyncio plumbing alone costs.

All three nodes share one event loop and one core (one process), so the rate is the whole
chain's CPU cost per bundle, not what three machines would do. The stores commit with
``synchronous=FULL`` (durable before every TCPCL acknowledgment; group commit).

    .venv/bin/python bench/dtn_chain_bench.py [--smoke] [--bundles N]
"""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import harness

from betanet.dtn.node import Node
from betanet.dtn.routing import StaticRoutes

PAYLOAD = 1024


async def _chain(tmp: Path, tag: str):
    a = await Node("ipn:1.0", str(tmp / f"a{tag}.db"), strategy=StaticRoutes([("*", "ipn:2.0")])).start()
    b = await Node("ipn:2.0", str(tmp / f"b{tag}.db"),
                   strategy=StaticRoutes([("ipn:1.*", "ipn:1.0"), ("*", "ipn:3.0")])).start()
    c = await Node("ipn:3.0", str(tmp / f"c{tag}.db"), strategy=StaticRoutes([("*", "ipn:2.0")])).start()
    pa, pb, pc = [await n.listen_tcpcl("127.0.0.1", 0) for n in (a, b, c)]
    a.connect_tcpcl("ipn:2.0", "127.0.0.1", pb)
    b.connect_tcpcl("ipn:1.0", "127.0.0.1", pa)
    b.connect_tcpcl("ipn:3.0", "127.0.0.1", pc)
    c.connect_tcpcl("ipn:2.0", "127.0.0.1", pb)
    return a, b, c


async def _dtn(n: int, custody: bool, lat_n: int, tmp: Path, tag: str) -> tuple[float, float, float]:
    a, b, c = await _chain(tmp, tag)
    got = 0
    done = asyncio.Event()

    def on(d) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()
    c.register("ipn:3.1", on)
    payload = bytes(PAYLOAD)
    try:
        await a.send("ipn:3.1", payload, custody=custody)       # warm: sessions up
        while got < 1:
            await asyncio.sleep(0.005)
        got = 0
        t0 = time.perf_counter()
        await asyncio.gather(*(a.send("ipn:3.1", payload, custody=custody) for _ in range(n)))
        await asyncio.wait_for(done.wait(), 300)
        rate = n / (time.perf_counter() - t0)
        lats = []
        for _ in range(lat_n):
            got, done = 0, asyncio.Event()
            n = 1
            t = time.perf_counter()
            await a.send("ipn:3.1", payload, custody=custody)
            await asyncio.wait_for(done.wait(), 30)
            lats.append(time.perf_counter() - t)
        return rate, statistics.median(lats), harness.quantile(lats, 0.9)
    finally:
        for x in (a, b, c):
            await x.close()


async def _plain(n: int, lat_n: int) -> tuple[float, float, float]:
    """Length-prefixed frames A -> relay B -> C over asyncio streams, no processing."""
    got = 0
    done = asyncio.Event()
    want = n

    async def sink(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal got
        while True:
            try:
                hdr = await r.readexactly(4)
                await r.readexactly(int.from_bytes(hdr, "big"))
            except asyncio.IncompleteReadError:
                return
            got += 1
            if got >= want:
                done.set()
    sc = await asyncio.start_server(sink, "127.0.0.1", 0)
    _r, cw = await asyncio.open_connection("127.0.0.1", sc.sockets[0].getsockname()[1])

    async def relay(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            try:
                hdr = await r.readexactly(4)
                body = await r.readexactly(int.from_bytes(hdr, "big"))
            except asyncio.IncompleteReadError:
                return
            cw.write(hdr + body)
            await cw.drain()
    sb = await asyncio.start_server(relay, "127.0.0.1", 0)
    _r2, aw = await asyncio.open_connection("127.0.0.1", sb.sockets[0].getsockname()[1])
    frame = len(bytes(PAYLOAD)).to_bytes(4, "big") + bytes(PAYLOAD)
    t0 = time.perf_counter()
    for _ in range(n):
        aw.write(frame)
        await aw.drain()
    await asyncio.wait_for(done.wait(), 300)
    rate = n / (time.perf_counter() - t0)
    lats = []
    for _ in range(lat_n):
        got, want, done = 0, 1, asyncio.Event()
        t = time.perf_counter()
        aw.write(frame)
        await aw.drain()
        await done.wait()
        lats.append(time.perf_counter() - t)
    for w in (aw, cw):
        w.close()
    await asyncio.sleep(0.05)      # the relay and sink see EOF and return
    sb.close()
    sc.close()
    await sb.wait_closed()
    await sc.wait_closed()
    return rate, statistics.median(lats), harness.quantile(lats, 0.9)


def main() -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--bundles", type=int, default=0)
    args = ap.parse_args()
    harness.header("DTN forwarding, chain of three nodes over TCPCLv4 (bench/dtn_chain_bench.py)", args.smoke)
    n = args.bundles or (200 if args.smoke else 5000)
    lat_n = 5 if args.smoke else 50
    with tempfile.TemporaryDirectory(prefix="dtn-chain-bench-") as tmp:
        rows = {
            "betanet A->B->C, no custody": asyncio.run(_dtn(n, False, lat_n, Path(tmp), "n")),
            "betanet A->B->C, custody": asyncio.run(_dtn(n, True, lat_n, Path(tmp), "c")),
            "plain asyncio TCP relay chain": asyncio.run(_plain(n, lat_n)),
        }
    print(f"{n} bundles of {PAYLOAD} B; latency: one bundle on an idle chain, {lat_n} samples")
    print(f"  {'':34} {'bundles/s':>10} {'p50 ms':>8} {'p90 ms':>8}")
    for name, (rate, p50, p90) in rows.items():
        print(f"  {name:34} {rate:>10.0f} {p50 * 1000:>8.2f} {p90 * 1000:>8.2f}")
    base = rows["plain asyncio TCP relay chain"][0]
    print(f"  betanet (no custody) / plain relay   {harness.ratio(rows['betanet A->B->C, no custody'][0] / base, 3)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
