"""betanet.node.store: outbox/inbox in the bundle store's SQLite file; dedup and order per
sender; kill -9 of a writer loses nothing it reported accepted."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from betanet.errors import LimitExceededError
from betanet.node.store import ACKED, NodeStore


def run(coro):
    return asyncio.run(coro)


def test_tables_share_the_bundle_store_file(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "store.db")
        await s.add_outgoing(b"m" * 16, "peerB", "balanced", "", 1e12, lambda seq: b"sealed%d" % seq)
        await s.bundles.put("b1", b"x", destination="dtn://b/", source="dtn://a/", expires_at=1e12)
        await s.close()
    run(go())
    names = {r[0] for r in sqlite3.connect(tmp_path / "store.db").execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"bundles", "node_outbox", "node_inbox", "node_seq", "node_rx"} <= names
    assert sqlite3.connect(tmp_path / "store.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sequence_numbers_per_destination_and_finish(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db")
        seqs = [(await s.add_outgoing(bytes([i]) * 16, d, "balanced", "", 1e12, lambda q: b"x"))[0]
                for i, d in enumerate(["B", "B", "C", "B"])]
        assert seqs == [0, 1, 0, 2]
        assert await s.finish_outgoing(bytes([1]) * 16, ACKED)
        assert not await s.finish_outgoing(bytes([1]) * 16, ACKED)
        assert [o.seq for o in await s.pending()] == [0, 2, 0]
        await s.close()
    run(go())


def test_inbox_dedup_and_order_per_sender(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db")
        acc = lambda mid, sender, seq: s.accept_incoming(mid, sender, seq, "t", b"body%d" % seq)
        assert await acc(b"2" * 16, "A", 2) == "new"
        assert await acc(b"1" * 16, "A", 1) == "new"
        assert [m.seq for m in await s.ready()] == []            # waiting for seq 0
        assert await acc(b"x" * 16, "B", 0) == "new"
        assert await acc(b"0" * 16, "A", 0) == "new"
        assert await acc(b"0" * 16, "A", 0) == "duplicate"
        ready = await s.ready()
        assert [(m.sender, m.seq) for m in ready] == [("B", 0), ("A", 0), ("A", 1), ("A", 2)]
        for m in ready:
            assert await s.mark_delivered(m.msg_id)
        assert await s.ready() == []
        assert await acc(b"1" * 16, "A", 1) == "duplicate"       # after delivery too
        await s.close()
        s = NodeStore(tmp_path / "s.db")                        # and after a restart
        assert await acc(b"2" * 16, "A", 2) == "duplicate"
        assert await acc(b"3" * 16, "A", 3) == "new"
        assert [m.seq for m in await s.ready()] == [3]
        await s.close()
    run(go())


def test_gap_is_skipped_after_the_reorder_timeout(tmp_path):
    now = [1000.0]

    async def go():
        s = NodeStore(tmp_path / "s.db", clock=lambda: now[0])
        await s.accept_incoming(b"5" * 16, "A", 5, "", b"")
        assert await s.skip_gaps(30) == 0
        now[0] += 31
        assert await s.skip_gaps(30) == 1
        assert [m.seq for m in await s.ready()] == [5]
        await s.close()
    run(go())


def test_inbox_limits_bound_memory(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db", inbox_limit=5, max_pending_per_sender=3)
        for i in range(1, 4):
            await s.accept_incoming(os.urandom(16), "flood", i, "", b"")
        with pytest.raises(LimitExceededError, match="out-of-order"):
            await s.accept_incoming(os.urandom(16), "flood", 9, "", b"")
        await s.accept_incoming(os.urandom(16), "B", 0, "", b"")
        await s.accept_incoming(os.urandom(16), "C", 0, "", b"")
        with pytest.raises(LimitExceededError, match="inbox_limit"):
            await s.accept_incoming(os.urandom(16), "D", 0, "", b"")
        await s.close()
    run(go())


WRITER = r"""
import asyncio, sys
from betanet.node.store import NodeStore
async def main():
    s = NodeStore(sys.argv[1])
    i = 0
    while True:
        mid = i.to_bytes(16, "big")
        await s.add_outgoing(mid, "B", "balanced", "", 1e12, lambda q: b"x" * 100)
        await s.accept_incoming(mid, "A", i, "", b"y")
        print(i, flush=True)
        i += 1
asyncio.run(main())
"""


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.2])
def test_kill_9_loses_nothing_acknowledged(tmp_path, delay):
    db = tmp_path / "k.db"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acked = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        line = p.stdout.readline()
        if not line:
            break
        acked.append(int(line))
        if len(acked) >= 5 and time.monotonic() - t0 > delay:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert len(acked) >= 5

    async def check():
        s = NodeStore(db)
        pending = {o.msg_id for o in await s.pending()}
        ready = {m.msg_id for m in await s.ready(10_000)}
        for i in acked:
            mid = i.to_bytes(16, "big")
            assert mid in pending and mid in ready
            assert await s.accept_incoming(mid, "A", i, "", b"y") == "duplicate"
        # sequence numbers continue after the last committed one, never reused
        seq, _ = await s.add_outgoing(b"\xff" * 16, "B", "balanced", "", 1e12, lambda q: b"z")
        assert seq == len(pending)
        await s.close()
    run(check())
