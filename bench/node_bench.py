"""betanet.node: node.send over HTX next to a raw HTX stream carrying the same bytes,
failover time from an internet cut to the first message delivered over the mesh, and the
bytes each transport adds per message (docs/benchmarks.md, docs/node.md).

- throughput: N messages of S bytes, W in flight, until every end-to-end acknowledgment is
  back and the receiving application has taken every message (node: durable outbox, seal +
  sign, HTX, open + verify, durable inbox, sealed ack back, outbox row finished) against one
  raw HTX stream carrying the N*S bytes (the receiver answers once at the end); rounds
  interleaved, ratio = median of per-round ratios. Target >= 0.8x. Modes: ``send`` (W
  concurrent ``node.send`` calls), ``send_many`` (groups of W messages per call, 4 groups in
  flight, each awaited with ``node.acked_all``); ``chunk`` sets transport.chunk_size (the batch budget) when not the default.
  Rows "receivers in a second process" run the receiving node and the raw stream's receiver
  in a child process (own GIL and event loop, as a second machine would, on the same cores).
- durability floor: the same raw stream doing only the durable writes the node promises (a
  SQLite insert per message at each end, WAL, synchronous=FULL, committed before sending /
  as received) against the plain raw stream, same run: the best the node could reach with its
  durability here, whatever else it did for free.
- failover: A sends every 50 ms to D over HTX (through a TCP relay that is then
  blackholed, as a downed interface looks); A-B-C-D also form a BLE mesh. Time from the cut
  to the first message delivered at D over the mesh; median and max over runs. Target <= 2 s.
- overhead: wire bytes per message minus payload, counted at the relay (HTX+TLS, both
  directions, acknowledgments included) and on the air (BLE, the sender's radio).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

import harness

from betanet.htx import connect, serve
from betanet.htx.tls import write_self_signed
from betanet.mesh.router import Identity as MeshIdentity, MeshRouter
from betanet.node import config as nconfig
from betanet.node.identity import Identity
from betanet.node.link_htx import HtxLink
from betanet.node.link_mesh import MeshLink
from betanet.node.node import Node

from betanet.node.localnet import LocalAir


class CountingProxy:
    """TCP relay counting bytes both ways; ``cut()`` blackholes it."""

    def __init__(self, port: int) -> None:
        self.target, self.cutoff, self.bytes, self.port = port, False, 0, 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, r, w) -> None:
        tr, tw = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(src, dst):
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if not self.cutoff:
                        self.bytes += len(data)
                        dst.write(data)
                        await dst.drain()
        asyncio.ensure_future(pump(r, tw))
        asyncio.ensure_future(pump(tr, w))


def _cfg(chunk: int | None = None) -> dict:
    cfg = nconfig.defaults()
    if chunk:
        cfg["transport"]["chunk_size"] = chunk
    cfg["routing"].update(hop_timeout_ms=400, ack_timeout_ms=3000, retry_interval_ms=100)
    cfg["application"]["inbox_limit"] = 1_000_000
    return cfg


def _node(tmp: str, name: str, air: LocalAir | None = None, seed: int = 0, htx: bool = True,
          chunk: int | None = None) -> Node:
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    ident = Identity.generate()
    n = Node(ident, os.path.join(d, "store.db"), config=_cfg(chunk))
    if htx:
        n.links.append(HtxLink(ident, n.peers, cert_dir=d, retry_s=0.3, connect_timeout=0.5))
    if air is not None:
        router = MeshRouter(MeshIdentity.generate(name, random.Random(seed)), rng=random.Random(seed))
        # records handed out by the bench (a's copy of d's names the relay): no discovery
        # over the mesh, which would offer d's own record with the same seq
        n.links.append(MeshLink(router, air.radio(router.me), n.peers, announce_s=0.2,
                                discovery=False))
    return n


async def _drain(node: Node, n: int) -> None:
    agen = node.messages()
    k = 0
    async for _ in agen:
        k += 1
        if k >= n:
            break
    await agen.aclose()


# ---- the raw HTX stream the node is compared with ----------------------------------------
async def _raw_server(tmp: str, expect: int, on_chunk=None):
    """An HTX server (TCP+TLS, Noise XK) whose streams each carry ``expect`` bytes: it reads
    them (``on_chunk(piece)`` may return awaitables, all awaited before the answer) and answers
    one byte at the end. Returns (server, its X25519 public key)."""
    cert, key = write_self_signed(os.path.join(tmp, "raw"))
    skey = Identity.generate()

    async def handler(conn):
        while True:
            st = await conn.accept_stream()
            total, pending = 0, []
            while total < expect:
                chunk = await st.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if on_chunk is not None:
                    pending += on_chunk(chunk)
            await asyncio.gather(*pending)
            st.write(b"\x01")
            st.write_eof()
            await st.drain()
    server = await serve(handler, "127.0.0.1", 0, skey.exchange_private, certfile=cert, keyfile=key)
    return server, skey.exchange_public


class _RawPeer:
    """One HTX connection to a ``_raw_server`` (in this process, or another one's port)."""

    def __init__(self, conn, server=None) -> None:
        self.conn, self.server = conn, server

    @classmethod
    async def open(cls, tmp: str, expect: int, on_chunk=None) -> "_RawPeer":
        server, pub = await _raw_server(tmp, expect, on_chunk)
        return cls(await connect("127.0.0.1", server.port, pub, verify=False), server)

    @classmethod
    async def to(cls, port: int, pub: bytes) -> "_RawPeer":
        return cls(await connect("127.0.0.1", port, pub, verify=False))

    async def send(self, payload: bytes, windows: list[int], before=None) -> float:
        """Seconds to write ``payload`` sum(windows) times on a new stream and get the answer;
        ``await before(j)`` runs before window ``j`` is written."""
        t = time.perf_counter()
        st = await self.conn.open_stream()
        for j, k in enumerate(windows):
            if before is not None:
                await before(j)
            for _ in range(k):
                st.write(payload)
                await st.drain()
        st.write_eof()
        await st.read(1)
        return time.perf_counter() - t

    async def close(self) -> None:
        await self.conn.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


# ---- the receiving ends in a process of their own ----------------------------------------
class _Receiver:
    """The receiving node (and the raw stream's server) in a child process: its own
    interpreter, GIL and event loop, as on a second machine (but on this machine's cores).
    Driven by lines on its stdin, each answered by one line: ``peer <record hex>`` (ok),
    ``drain <n>`` (drained, once its application took n messages); end of input stops it."""

    def __init__(self, proc, info: dict) -> None:
        self.proc = proc
        self.record = bytes.fromhex(info["record"])
        self.raw_port, self.raw_pub = info["raw_port"], bytes.fromhex(info["raw_pub"])

    @classmethod
    async def start(cls, tmp: str, chunk: int | None, expect: int) -> "_Receiver":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--receiver", tmp, str(chunk or 0), str(expect),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"receiver process ended at start (exit {await proc.wait()})")
        return cls(proc, json.loads(line))

    async def _ask(self, line: str, want: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        got = (await self.proc.stdout.readline()).decode().strip()
        if got != want:
            raise RuntimeError(f"receiver process: {line.split()[0]} answered {got!r}")

    async def add_peer(self, record: bytes) -> None:
        await self._ask(f"peer {record.hex()}", "ok")

    async def drain(self, n: int) -> None:
        await self._ask(f"drain {n}", "drained")

    async def stop(self) -> None:
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), 60)


async def _receiver_main(tmp: str, chunk: int, expect: int) -> None:
    """The child process of ``_Receiver``."""
    d = _node(tmp, "d", chunk=chunk or None)
    await d.start()
    server, pub = await _raw_server(tmp, expect)
    print(json.dumps({"record": d.record().raw.hex(), "raw_port": server.port,
                      "raw_pub": pub.hex()}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "peer":
            d.add_peer(bytes.fromhex(arg))
            print("ok", flush=True)
        elif cmd == "drain":
            await _drain(d, int(arg))
            print("drained", flush=True)
        else:
            print(f"unknown command {cmd}", flush=True)
    server.close()
    await server.wait_closed()
    await d.stop()


# ---- throughput --------------------------------------------------------------------------
async def throughput(n_msgs: int, size: int, window: int, rounds: int, mode: str = "send",
                     chunk: int | None = None, procs: int = 1) -> dict:
    tmp = tempfile.mkdtemp(prefix="node_bench_")
    a = _node(tmp, "a", chunk=chunk)
    await a.start()
    if procs == 1:
        d = _node(tmp, "d", chunk=chunk)
        await d.start()
        a.add_peer(d.record().raw)
        d.add_peer(a.record().raw)
        d_me, rx = d.me, None
        # raw: one HTX stream with the same bytes, answered once at the end
        raw = await _RawPeer.open(tmp, n_msgs * size)
    else:                      # the receiving ends (node and raw) in a child process
        rx = await _Receiver.start(tmp, chunk, n_msgs * size)
        d_me = a.add_peer(rx.record).peer
        await rx.add_peer(a.record().raw)
        raw = await _RawPeer.to(rx.raw_port, rx.raw_pub)
    payload = os.urandom(size)

    async def node_side() -> float:
        sem = asyncio.Semaphore(window)
        t = time.perf_counter()

        async def one():
            async with sem:
                h = await a.send(d_me, payload)
                await h.acked(120)

        groups = asyncio.Semaphore(4)

        async def group(k):
            async with groups:
                hs = await a.send_many(d_me, [payload] * k)
                await a.acked_all(hs, 120)          # the bulk form: one wait per group
        consumer = asyncio.ensure_future(_drain(d, n_msgs) if rx is None else rx.drain(n_msgs))
        if mode == "send":
            await asyncio.gather(*(one() for _ in range(n_msgs)))
        else:
            await asyncio.gather(*(group(min(window, n_msgs - i)) for i in range(0, n_msgs, window)))
        try:
            await asyncio.wait_for(consumer, 300)
        except asyncio.TimeoutError:
            # every message was acknowledged (so committed at d) but not all reached d's
            # application: say what the nodes saw instead of hanging
            print(f"stalled: a {a.counters} {await a.store.counts()}\n"
                  + (f"d {d.counters} {await d.store.counts()}" if rx is None else ""),
                  file=sys.stderr, flush=True)
            raise
        return time.perf_counter() - t

    async def raw_side() -> float:
        return await raw.send(payload, [n_msgs])

    await node_side()          # warm-up: connections, caches
    await raw_side()
    res = {"node": [], "raw": []}
    for _ in range(rounds):
        res["node"].append(await node_side())
        res["raw"].append(await raw_side())
    await raw.close()
    await a.stop()
    await (d.stop() if rx is None else rx.stop())
    ratio = harness.median_ratio(res["raw"], res["node"])     # node rate / raw rate
    best_node = min(res["node"])
    return {"ratio": ratio, "node_msgs_s": n_msgs / best_node,
            "node_mb_s": n_msgs * size / best_node / 1e6,
            "raw_mb_s": n_msgs * size / min(res["raw"]) / 1e6}


# ---- latency -----------------------------------------------------------------------------
async def latency(n_msgs: int, size: int) -> dict:
    """A lone message at a time on idle nodes: node.send until its end-to-end acknowledgment
    (the durable outbox commit, seal, HTX hop, durable inbox commit, sealed ack back, the
    outbox row finished), in ms."""
    tmp = tempfile.mkdtemp(prefix="node_bench_")
    a, d = _node(tmp, "a"), _node(tmp, "d")
    await a.start()
    await d.start()
    for x, y in ((a, d), (d, a)):
        x.add_peer(y.record().raw)
    payload = os.urandom(size)
    consumer = asyncio.ensure_future(_drain(d, n_msgs + 5))
    for _ in range(5):                                  # warm-up: connections
        await (await a.send(d.me, payload)).acked(30)
    times = []
    for _ in range(n_msgs):
        t = time.perf_counter()
        h = await a.send(d.me, payload)
        await h.acked(30)
        times.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.01)                       # idle between messages
    await consumer
    await a.stop()
    await d.stop()
    return {"p50": statistics.median(times), "p90": harness.quantile(times, 0.9)}


# ---- failover and overhead ---------------------------------------------------------------
async def failover_run(seed: int) -> tuple[float, dict]:
    tmp = tempfile.mkdtemp(prefix="node_bench_")
    air = LocalAir()
    nodes = [_node(tmp, n, air, seed * 10 + i, htx=n in "ad") for i, n in enumerate("abcd")]
    mids = [n.links[-1].router.me for n in nodes]
    for x, y in zip(mids, mids[1:]):
        air.connect(x, y)
    for n in nodes:
        await n.start()
    a, d = nodes[0], nodes[-1]
    recs = [n.record() for n in nodes]
    proxy = CountingProxy(d.links[0].port)
    await proxy.start()
    from betanet.node.peers import PeerRecord
    d_via = PeerRecord.create(d.identity, recs[-1].seq, htx_tcp=[f"127.0.0.1:{proxy.port}"],
                              ble_id=recs[-1].ble_id)
    for n in nodes:
        for r in recs:
            if r.peer != n.me:
                n.add_peer(d_via.raw if (n is a and r.peer == d.me) else r.raw)
    while d.me not in a.links[-1].reaches() or a.me not in d.links[-1].reaches():
        await asyncio.sleep(0.05)
    arrivals: dict[bytes, float] = {}

    async def record(msg):
        arrivals[msg.body] = time.monotonic()
    d.on("", record)
    overhead = {}
    # HTX overhead on the wire (warm connection): 20 messages of 100 bytes
    h = await a.send(d.me, b"w" * 100)
    await h.acked(10)
    await asyncio.sleep(0.2)
    b0 = proxy.bytes
    for i in range(20):
        h = await a.send(d.me, b"x" * 100)
        await h.acked(10)
    await asyncio.sleep(0.3)
    overhead["htx"] = (proxy.bytes - b0) / 20 - 100
    # the stream: one message every 50 ms; cut after 10
    handles = []
    t_cut = None
    for i in range(60):
        if i == 10:
            proxy.cutoff = True
            t_cut = time.monotonic()
        handles.append((i, await a.send(d.me, b"f%03d" % i)))
        await asyncio.sleep(0.05)
    for _, h in handles:
        await h.acked(30)
    after = [arrivals[b"f%03d" % i] for i, h in handles if i >= 10 and "ble" in h.transports
             and b"f%03d" % i in arrivals]
    failover = min(after) - t_cut
    # BLE overhead: bytes the sender's radio puts on the air for one 100-byte message
    r = air.radios[mids[0]]
    e0 = r.energy.bytes_sent
    h = await a.send(d.me, b"y" * 100)
    await h.acked(10)
    overhead["ble_on_air_first_hop"] = r.energy.bytes_sent - e0 - 100
    for n in nodes:
        await n.stop()
    return failover, overhead


# ---- durability floor --------------------------------------------------------------------
def _durable_db(path: str) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")            # as the node store
    c.execute("CREATE TABLE IF NOT EXISTS m(id INTEGER PRIMARY KEY, body BLOB)")
    return c


def _durable_put(c: sqlite3.Connection, bodies: list[bytes]) -> None:
    c.execute("BEGIN")
    c.executemany("INSERT INTO m(body) VALUES(?)", [(b,) for b in bodies])
    c.execute("COMMIT")


async def durability_floor(n_msgs: int, size: int, window: int, rounds: int) -> dict:
    """The raw HTX stream of ``throughput`` next to the same stream doing only the durable
    writes the node promises and nothing else: the sender commits each window of messages
    to SQLite (WAL, synchronous=FULL, one writer thread, the next windows committing while
    one is sent) before writing it; the receiver commits every complete message it reads
    before answering at the end. No sealing, signing, acknowledgments, handles or dedup.
    What the node could reach at best with its durability on this machine."""
    tmp = tempfile.mkdtemp(prefix="node_floor_")
    payload = os.urandom(size)
    rx, tx = _durable_db(os.path.join(tmp, "rx.db")), _durable_db(os.path.join(tmp, "tx.db"))
    ex_rx, ex_tx = (concurrent.futures.ThreadPoolExecutor(1) for _ in range(2))
    loop = asyncio.get_running_loop()
    durable = {"on": False}
    buf = bytearray()           # a message split over reads (empty again at each stream's end)

    def received(chunk: bytes) -> list:
        if not durable["on"]:
            return []
        buf.extend(chunk)
        k = len(buf) // size
        if not k:
            return []
        msgs = [bytes(buf[i * size:(i + 1) * size]) for i in range(k)]
        del buf[:k * size]
        return [loop.run_in_executor(ex_rx, _durable_put, rx, msgs)]
    raw = await _RawPeer.open(tmp, n_msgs * size, received)

    async def side(on: bool) -> float:
        durable["on"] = on
        wins = [min(window, n_msgs - i) for i in range(0, n_msgs, window)]
        commits = [loop.run_in_executor(ex_tx, _durable_put, tx, [payload] * k) for k in wins] if on else []

        async def before(j: int) -> None:
            if on:
                await commits[j]          # committed before it leaves
        return await raw.send(payload, wins, before)

    await side(False)
    await side(True)
    res = {"raw": [], "durable": []}
    for _ in range(rounds):
        res["raw"].append(await side(False))
        res["durable"].append(await side(True))
    await raw.close()
    for ex in (ex_rx, ex_tx):
        ex.shutdown()
    rx.close()
    tx.close()
    return {"ratio": harness.median_ratio(res["raw"], res["durable"]),
            "raw_mb_s": n_msgs * size / min(res["raw"]) / 1e6,
            "durable_mb_s": n_msgs * size / min(res["durable"]) / 1e6}


async def main_async(smoke: bool) -> None:
    harness.header("betanet.node", smoke)
    from betanet.node.envelope import OVERHEAD
    from betanet.node.envelope import BATCH_OVERHEAD, ENTRY_OVERHEAD
    print(f"sealed message overhead (format): {OVERHEAD + 1} bytes per message "
          f"(header 67, inner fields 106, tag 16, signature 64, frame type 1); in a batch envelope "
          f"{BATCH_OVERHEAD + 1} bytes per batch + {ENTRY_OVERHEAD} per message\n")
    # (messages, size, window, mode, chunk_size or None for the default 16 KiB, processes)
    sizes = [(200, 1024, 32, "send", None, 1), (4000, 1024, 1000, "send", None, 1),
             (4000, 1024, 1000, "send_many", None, 1), (4000, 1024, 1000, "send_many", 1 << 20, 1),
             (40, 65536, 8, "send", None, 1), (400, 65536, 64, "send", None, 1),
             (400, 65536, 64, "send", 1 << 20, 1),
             (4000, 1024, 1000, "send_many", 1 << 20, 2), (400, 65536, 64, "send", 1 << 20, 2)]
    if smoke:
        sizes = [(20, 1024, 8, "send", None, 1), (40, 1024, 20, "send_many", None, 1),
                 (4, 65536, 4, "send", None, 1), (40, 1024, 20, "send_many", None, 2)]
    rounds = 2 if smoke else 5
    print("| messages x size | how | node msgs/s | node MB/s | raw HTX stream MB/s | node / raw | target |")
    print("|---|---|---|---|---|---|---|")
    for n, size, window, mode, chunk, procs in sizes:
        r = await throughput(n, size, window, rounds, mode, chunk, procs)
        ok = "met" if r["ratio"] >= 0.8 else "MISSED"
        how = (f"{window} concurrent node.send" if mode == "send" else f"send_many of {window}") + \
            (f", chunk_size {chunk >> 10} KiB" if chunk else "") + \
            (", receivers in a second process" if procs == 2 else "")
        print(f"| {n} x {size} B | {how} | {r['node_msgs_s']:.0f} | {r['node_mb_s']:.2f} | "
              f"{r['raw_mb_s']:.1f} | {harness.ratio(r['ratio'], 3)} | >= 0.8x {ok} |", flush=True)
    print("\ndurability floor: the raw HTX stream plus only the durable writes the node promises "
          "(one SQLite insert per message at each end, WAL, synchronous=FULL), against the raw stream:")
    print("| messages x size | window | raw MB/s | raw + durable writes MB/s | ratio |")
    print("|---|---|---|---|---|")
    floors = [(40, 1024, 20), (4, 65536, 4)] if smoke else [(4000, 1024, 1000), (400, 65536, 64)]
    for n, size, window in floors:
        f = await durability_floor(n, size, window, rounds)
        print(f"| {n} x {size} B | {window} | {f['raw_mb_s']:.1f} | {f['durable_mb_s']:.1f} | "
              f"{harness.ratio(f['ratio'], 3)} |", flush=True)
    lat = await latency(10 if smoke else 100, 1024)
    print(f"\nlatency of a lone 1 KiB message on idle nodes (send -> end-to-end ack): "
          f"p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms", flush=True)
    runs = 2 if smoke else 8
    times, overheads = [], []
    for i in range(runs):
        t, o = await failover_run(i)
        times.append(t)
        overheads.append(o)
    med, mx = statistics.median(times), max(times)
    print(f"\nfailover (internet cut -> first message delivered over the mesh), {runs} runs: "
          f"median {med * 1000:.0f} ms, max {mx * 1000:.0f} ms; target <= 2000 ms "
          f"{'met' if mx <= 2.0 else 'MISSED'}")
    print("per-message overhead on the wire (100-byte payload, median over runs):")
    for k in overheads[0]:
        print(f"  {k}: {statistics.median(o[k] for o in overheads):.0f} bytes")


def main() -> None:
    if sys.argv[1:2] == ["--receiver"]:        # the child process of _Receiver
        tmp, chunk, expect = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        asyncio.run(_receiver_main(tmp, chunk, expect))
        return
    args = harness.parser(__doc__).parse_args()
    asyncio.run(main_async(args.smoke))


if __name__ == "__main__":
    main()
