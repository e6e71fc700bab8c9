#!/usr/bin/env python3
"""DTN store and TCPCLv4 throughput, side by side with their plain peers, in one run.

  store      betanet.dtn.store.BundleStore.put of 1 KiB bundles from many concurrent tasks;
             each put returns only after its group commit (WAL, synchronous=FULL) is on disk,
             i.e. acknowledged and surviving kill -9 (tests/test_dtn_store.py checks that)
  sqlite     plain sqlite3 with the same durability: WAL, synchronous=FULL, one committed
             transaction per 1 KiB row before it counts as acknowledged
  tcpcl-tls  TCPCLv4 over TLS 1.3 on loopback, 1 KiB bundles, one session, both ends in
             this process, timed until the last final XFER_ACK arrived:
               pipelined   conn.send(wait="queued") (a window of 256 unacknowledged), then
                           conn.flush(); the receiver's on_bundle is a plain function
               coroutine   the same with a coroutine on_bundle (one task per bundle, as a
                           store's group commit needs)
               awaited     256 tasks each awaiting send_bundle() (the final XFER_ACK) in turn
  tls        asyncio TLS 1.3 streams on loopback: the same 1 KiB records length-prefixed,
             no acknowledgments (the upper bound TCPCL runs on)

Targets (issue 10): store >= 20 000 bundles/s; TCPCLv4 >= 0.8 x asyncio TLS.
Each pair runs in interleaved rounds (bench/harness.py): rates are the best round, ratios
the median of the within-round ratios.

Usage: bench/dtn_store_bench.py [--smoke|--quick] [--bundles N] [--rounds R]
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import struct
import sys
import tempfile
import time

import harness

from betanet.dtn.store import BundleStore, Priority
from betanet.dtn.tcpcl.aio import client_context, open_session, serve, server_context
from betanet.dtn.tcpcl.protocol import SessionConfig
from betanet.htx.tls import write_self_signed

SIZE = 1024


async def bench_store(path: str, n: int, writers: int = 512) -> float:
    store = BundleStore(path, clock=lambda: 0.0)
    data = os.urandom(SIZE)
    per = n // writers

    async def writer(w: int) -> None:
        for i in range(per):
            await store.put(f"ipn:{w}.0-{i}", data, destination="ipn:2.0", source=f"ipn:{w}.0",
                            expires_at=1e12, priority=Priority.NORMAL)

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    dt = time.perf_counter() - t0
    st = await store.stats()
    await store.close()
    assert st.count == per * writers
    print(f"  store: {st.writes} puts in {st.commits} commits "
          f"({st.writes / max(st.commits, 1):.0f} per fsync)")
    return per * writers / dt


def bench_sqlite(path: str, n: int) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE b(id TEXT PRIMARY KEY, data BLOB)")
    data = os.urandom(SIZE)
    t0 = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN")
        con.execute("INSERT INTO b VALUES (?, ?)", (f"b{i}", data))
        con.execute("COMMIT")  # acknowledged only after its own fsync
    dt = time.perf_counter() - t0
    con.close()
    return n / dt


async def bench_tcpcl(n: int, certdir: str, size: int = SIZE, inflight: int = 256,
                      mode: str = "pipelined") -> float:
    cert, key = write_self_signed(certdir)
    per = n // inflight
    n = per * inflight
    got = 0
    done = asyncio.Event()

    def count(data: bytes) -> None:
        nonlocal got
        got += 1
        if got == n:
            done.set()

    async def on_bundle(data: bytes) -> None:
        count(data)

    server = await serve("127.0.0.1", 0, config=SessionConfig(node_id="ipn:2.0"),
                         ssl=server_context(str(cert), str(key), cafile=str(cert)),
                         on_bundle=count if mode == "pipelined" else on_bundle, window=inflight)
    conn = await open_session("127.0.0.1", server.port, config=SessionConfig(node_id="ipn:1.0"),
                              ssl=client_context(str(cert), str(cert), str(key)),
                              server_hostname="localhost")
    data = os.urandom(size)

    async def sender() -> None:
        for _ in range(per):
            await conn.send_bundle(data)

    t0 = time.perf_counter()
    if mode == "awaited":
        await asyncio.gather(*(sender() for _ in range(inflight)))
    else:
        conn.send_window = inflight
        for _ in range(n):
            await conn.send(data, wait="queued")
        await conn.flush()
    dt = time.perf_counter() - t0
    await done.wait()
    await conn.close()
    await server.close()
    return n / dt


async def bench_tls(n: int, certdir: str, size: int = SIZE) -> float:
    cert, key = write_self_signed(certdir)
    sctx = server_context(str(cert), str(key))
    cctx = client_context(str(cert))
    done = asyncio.Event()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for _ in range(n):
            (length,) = struct.unpack("!I", await r.readexactly(4))
            await r.readexactly(length)
        done.set()
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="localhost")
    record = struct.pack("!I", size) + os.urandom(size)
    t0 = time.perf_counter()
    for i in range(n):
        w.write(record)
        if i % 64 == 63:
            await w.drain()
    await w.drain()
    await done.wait()
    dt = time.perf_counter() - t0
    w.close()
    server.close()
    await server.wait_closed()
    return n / dt


def pair(fns: dict, rounds: int) -> tuple[dict[str, float], float]:
    """Interleaved rounds of two measurements returning rates: the best rate of each and
    the median within-round ratio first / second."""
    per_round = harness.interleaved(fns, rounds)
    a, b = per_round.values()
    return {name: max(v) for name, v in per_round.items()}, harness.median_ratio(a, b)


def main() -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--bundles", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    harness.header("DTN store and TCPCLv4 (bench/dtn_store_bench.py)", args.smoke)
    n = args.bundles or (1024 if args.smoke else 40960)
    rounds = 1 if args.smoke else args.rounds
    print(f"{n} bundles of {SIZE} B, {rounds} interleaved rounds; SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        k = [0]

        def fresh(name: str) -> str:
            k[0] += 1
            return os.path.join(tmp, f"{name}{k[0]}.db")

        certs = os.path.join(tmp, "c")
        r1, ratio_store = pair({"store": lambda: asyncio.run(bench_store(fresh("store"), n)),
                                "plain": lambda: bench_sqlite(fresh("plain"), max(n // 20, 200))}, rounds)
        modes = ("pipelined", "coroutine", "awaited")
        per_round = harness.interleaved(
            {**{m: (lambda m=m: asyncio.run(bench_tcpcl(n, certs, mode=m))) for m in modes},
             "tls": lambda: asyncio.run(bench_tls(n, certs))}, rounds)
        r2 = {name: max(v) for name, v in per_round.items()}
        ratios = {m: harness.median_ratio(per_round[m], per_round["tls"]) for m in modes}
        ratio_tcpcl = ratios["pipelined"]
        big, nbig = 64 * 1024, max(n // 16, 64)
        r3, ratio_big = pair({"tcpcl": lambda: asyncio.run(bench_tcpcl(nbig, certs, big, 32)),
                              "tls": lambda: asyncio.run(bench_tls(nbig, certs, big))}, rounds)
    store, plain, tls = r1["store"], r1["plain"], r2["tls"]
    tcpcl_big, tls_big = r3["tcpcl"], r3["tls"]
    rows = [("durable store put (group commit)", store),
            ("plain SQLite, one commit per insert", plain),
            ("TCPCLv4/TLS, pipelined, acknowledged", r2["pipelined"]),
            ("  same, coroutine on_bundle", r2["coroutine"]),
            ("  same, each send awaits its ack", r2["awaited"]),
            ("asyncio TLS 1.3 records, no acks", tls)]
    for name, value in rows:
        print(f"  {name:40s} {value:12,.0f} bundles/s")
    print(f"  {'TCPCLv4 over TLS, 64 KiB bundles':40s} {tcpcl_big * big / 1e6:12,.0f} MB/s")
    print(f"  {'asyncio TLS 1.3, 64 KiB records':40s} {tls_big * big / 1e6:12,.0f} MB/s")
    print(f"  store / plain SQLite                     {harness.ratio(ratio_store):>13}")
    print(f"  TCPCLv4 / asyncio TLS, 1 KiB pipelined   {harness.ratio(ratio_tcpcl, 2):>13}")
    print(f"    coroutine on_bundle / awaited sends    "
          f"{harness.ratio(ratios['coroutine'], 2):>6} / {harness.ratio(ratios['awaited'], 2)}")
    print(f"  TCPCLv4 / asyncio TLS, 64 KiB            {harness.ratio(ratio_big, 2):>13}")
    print(f"targets: store >= 20000/s {'met' if store >= 20_000 else 'MISSED'}; "
          f"TCPCLv4 >= 0.8 x TLS: 1 KiB {'met' if ratio_tcpcl >= 0.8 else 'MISSED'}, "
          f"64 KiB {'met' if ratio_big >= 0.8 else 'MISSED'}")
    return 0  # a missed target is reported, not a failure


if __name__ == "__main__":
    sys.exit(main())
