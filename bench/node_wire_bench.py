"""betanet.node per-byte path, stage by stage (docs/benchmarks.md "Node", "Per-byte path"):
what one 64 KiB message costs in each step between ``node.send`` and the receiver's inbox,
measured alone, so the node's 64 KiB rows of bench/node_bench.py can be read against a bound.

- crypto: a batch of 15 x 64 KiB sealed and opened as version 2 (Ed25519 over the whole batch)
  and version 3 (Ed25519 over its SHA-256), per 64 KiB; the primitives under them (SHA-512,
  SHA-256, ChaCha20-Poly1305 over 64 KiB).
- frames: the node frame of that batch (a copy behind the type byte) and its reassembly.
- store floor: a durable SQLite insert of a 64 KiB blob with its own commit (WAL,
  synchronous=FULL, as the node's store), and the same with 15 rows per commit.
- threads: CPU per message of the event-loop thread and of the store writer threads
  during node_bench's 400 x 64 KiB, 64 concurrent send, chunk 1 MiB row.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import tempfile
import time

import harness

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from betanet.node import envelope as env
from betanet.node.identity import Identity

KIB64 = 65536


def _best_us(fn, n: int, reps: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def crypto(n: int) -> dict:
    a, b = Identity.generate(), Identity.generate()
    entries = [env.Entry(os.urandom(16), os.urandom(KIB64), i) for i in range(15)]
    out = {}
    for v in (2, 3):
        s = env.seal_batch(a, b.signing_public, b.exchange_public, entries, version=v)
        out[f"seal v{v}"] = _best_us(lambda: env.seal_batch(a, b.signing_public, b.exchange_public,
                                                            entries, version=v), n) / 15
        out[f"open v{v}"] = _best_us(lambda: env.open_any(b, s), n) / 15
    body = os.urandom(KIB64)
    aead = ChaCha20Poly1305(os.urandom(32))
    ct = aead.encrypt(bytes(12), body, b"")
    out["SHA-512 64 KiB"] = _best_us(lambda: hashlib.sha512(body).digest(), n * 15)
    out["SHA-256 64 KiB"] = _best_us(lambda: hashlib.sha256(body).digest(), n * 15)
    out["ChaCha20-Poly1305 seal 64 KiB"] = _best_us(lambda: aead.encrypt(bytes(12), body, b""), n * 15)
    out["ChaCha20-Poly1305 open 64 KiB"] = _best_us(lambda: aead.decrypt(bytes(12), ct, b""), n * 15)
    out["Ed25519 sign 64 KiB"] = _best_us(lambda: a.sign(body), n * 15)
    return out


def frames(n: int) -> dict:
    """The copies around the crypto: the node frame (type byte + envelope) and its
    reassembly (a view into the frame) of that batch, per 64 KiB."""
    a, b = Identity.generate(), Identity.generate()
    entries = [env.Entry(os.urandom(16), os.urandom(KIB64), i) for i in range(15)]
    s = env.seal_batch(a, b.signing_public, b.exchange_public, entries)
    [f] = env.frames_for(s, 1 << 20)
    return {"node frame of the batch (one copy)": _best_us(lambda: env.frames_for(s, 1 << 20), n) / 15,
            "reassembly of a whole frame (a view)": _best_us(lambda: env.Assembler().feed(f), n) / 15}


def store(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="node_wire_") as d:
        c = sqlite3.connect(os.path.join(d, "s.db"), isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
        body = os.urandom(KIB64)
        out = {}
        for rows in (1, 15):
            def one():
                c.execute("BEGIN IMMEDIATE")
                for _ in range(rows):
                    c.execute("INSERT INTO t (body) VALUES (?)", (body,))
                c.execute("COMMIT")
            t, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                one()
            out[f"{rows} row(s) per commit"] = ((time.perf_counter() - t) / n / rows * 1e6,
                                                (time.process_time() - cpu) / n / rows * 1e6)
        c.close()
    return out


async def threads(n_msgs: int, rounds: int) -> dict:
    """CPU per message of the event-loop thread and of every other thread (the four store
    writer threads of the two nodes, which release the GIL in SQLite) over
    node_bench.throughput (its raw-stream rounds are a few percent, counted with the loop)."""
    import node_bench
    loop0, all0 = time.thread_time(), time.process_time()
    r = await node_bench.throughput(n_msgs, KIB64, 64, rounds, "send", 1 << 20)
    loop, total = time.thread_time() - loop0, time.process_time() - all0
    msgs = n_msgs * (rounds + 1)                 # with the warm-up round
    return {"ratio": r["ratio"], "event loop thread": loop / msgs * 1e6,
            "store threads (both nodes)": (total - loop) / msgs * 1e6}


def main() -> None:
    args = harness.parser(__doc__).parse_args()
    harness.header("betanet.node per-byte stages", args.smoke)
    n = 2 if args.smoke else 20
    print("per 64 KiB message (a batch of 15 x 64 KiB), microseconds:")
    for k, v in crypto(n).items():
        print(f"  {k}: {v:.1f} us")
    for k, v in frames(n).items():
        print(f"  {k}: {v:.1f} us")
    print("SQLite insert of 64 KiB, WAL, synchronous=FULL (wall / CPU per row):")
    for k, (w, c) in store(5 if args.smoke else 100).items():
        print(f"  {k}: {w:.0f} / {c:.0f} us")
    th = asyncio.run(threads(20 if args.smoke else 400, 1 if args.smoke else 3))
    if th:
        print(f"CPU per 64 KiB message by thread, node.send 64 concurrent, chunk 1 MiB "
              f"(node / raw {harness.ratio(th.pop('ratio'), 3)}):")
        for k, v in sorted(th.items(), key=lambda kv: -kv[1]):
            print(f"  {k}: {v:.0f} us")


if __name__ == "__main__":
    main()
