"""The bundle store: durability under kill -9, quotas, expiry, send order, dedup, bad files."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from betanet.dtn.store import BundleState, BundleStore, Priority, StoreLimits
from betanet.errors import ExpiredError, LimitExceededError, MalformedError, StateError


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(coro):
    return asyncio.run(coro)


async def _put(store, i, *, dest="ipn:2.1", source="ipn:1.1", prio=Priority.NORMAL,
               expires=10_000.0, size=16):
    return await store.put(f"b{i}", bytes([i % 256]) * size, destination=dest, source=source,
                           expires_at=expires, priority=prio)


def test_put_get_roundtrip_and_reopen(tmp_path):
    path = tmp_path / "s.db"

    async def first():
        async with BundleStore(path, clock=Clock()) as s:
            assert await s.put("ipn:1.1-5-0", b"\x9f\x01\xff", destination="ipn:2.1",
                               source="ipn:1.1", expires_at=2000, priority=Priority.EXPEDITED)
            assert not await s.put("ipn:1.1-5-0", b"other", destination="ipn:2.1",
                                   source="ipn:1.1", expires_at=2000)  # duplicate
            st = await s.stats()
            assert (st.count, st.bytes) == (1, 3)

    async def second():
        async with BundleStore(path, clock=Clock()) as s:
            b = await s.get("ipn:1.1-5-0")
            assert b.data == b"\x9f\x01\xff" and b.priority == Priority.EXPEDITED
            assert b.state == BundleState.STORED and b.destination == "ipn:2.1"
            assert await s.get("nope") is None

    run(first())
    run(second())
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_group_commit_batches_concurrent_puts(tmp_path):
    async def main():
        async with BundleStore(tmp_path / "s.db", clock=Clock()) as s:
            ok = await asyncio.gather(*(_put(s, i) for i in range(500)))
            assert all(ok)
            st = await s.stats()
            assert st.count == 500 and st.writes == 500
            assert st.commits < 100  # many puts shared each fsync
    run(main())


def test_priority_then_age_order_and_claim(tmp_path):
    async def main():
        async with BundleStore(tmp_path / "s.db", clock=Clock()) as s:
            order = [(0, Priority.BULK), (1, Priority.NORMAL), (2, Priority.EXPEDITED),
                     (3, Priority.BULK), (4, Priority.EXPEDITED), (5, Priority.NORMAL)]
            for i, p in order:
                await _put(s, i, prio=p)
            await _put(s, 9, dest="ipn:3.1", prio=Priority.EXPEDITED)
            got = await s.next_for("ipn:2.1", limit=10)
            assert [b.bundle_id for b in got] == ["b2", "b4", "b1", "b5", "b0", "b3"]
            assert all(b.state == BundleState.IN_TRANSFER for b in got)
            assert await s.next_for("ipn:2.1") == []  # claimed: not handed out twice
            await s.release("b4")
            assert [b.bundle_id for b in await s.next_for(["ipn:2.1", "ipn:3.1"])] == ["b4", "b9"]  # both expedited: older first
            await s.forwarded("b4")
            b4 = await s.get("b4")
            assert b4.state == BundleState.DELETED and b4.data is None
            assert not await _put(s, 4)  # a forwarded bundle coming back is a duplicate
    run(main())


def test_interrupted_transfer_is_stored_again_after_restart(tmp_path):
    async def first():
        s = BundleStore(tmp_path / "s.db", clock=Clock())
        await _put(s, 1)
        assert len(await s.next_for("ipn:2.1")) == 1
        await s.close()

    async def second():
        async with BundleStore(tmp_path / "s.db", clock=Clock()) as s:
            assert (await s.get("b1")).state == BundleState.STORED
    run(first())
    run(second())


def test_expiry_purges_by_lifetime(tmp_path):
    clock = Clock(1000)

    async def main():
        async with BundleStore(tmp_path / "s.db", clock=clock) as s:
            with pytest.raises(ExpiredError):
                await _put(s, 0, expires=999)
            await _put(s, 1, expires=1100)
            await _put(s, 2, expires=1200)
            await s.mark_delivered("b2")
            await _put(s, 3, expires=5000)
            clock.t = 1150
            assert [b.bundle_id for b in await s.next_for(claim=False)] == ["b3"]  # b1 expired
            assert await s.purge_expired() == 1
            assert await s.get("b1") is None
            assert (await s.get("b2")).state == BundleState.DELIVERED  # dedup kept until expiry
            clock.t = 1250
            assert await s.purge_expired() == 0  # only the dedup entry of b2 goes
            assert await s.get("b2") is None
            st = await s.stats()
            assert (st.count, st.bytes) == (1, 16)
    run(main())


def test_quotas_refuse_without_losing_accepted(tmp_path):
    limits = StoreLimits(max_bytes=100, max_count=5, max_source_count=3, max_bundle_bytes=50)

    async def main():
        async with BundleStore(tmp_path / "s.db", clock=Clock(), limits=limits) as s:
            for i in range(3):
                assert await _put(s, i, source="ipn:7.0", size=10)
            with pytest.raises(LimitExceededError, match="source"):
                await _put(s, 3, source="ipn:7.0", size=10)
            assert not await _put(s, 2, source="ipn:7.0", size=10)  # duplicate is not refused
            with pytest.raises(LimitExceededError, match="max_bundle_bytes"):
                await _put(s, 4, source="ipn:8.0", size=51)
            assert await _put(s, 5, source="ipn:8.0", size=50)
            with pytest.raises(LimitExceededError, match="max_bytes"):
                await _put(s, 6, source="ipn:8.0", size=40)
            assert await _put(s, 7, source="ipn:9.0", size=20)
            with pytest.raises(LimitExceededError, match="max_count"):
                await _put(s, 8, source="ipn:9.0", size=1)
            # concurrent refusals in one batch do not disturb the accepted ones
            res = await asyncio.gather(*(_put(s, 100 + i, source="ipn:9.0", size=1)
                                         for i in range(5)), return_exceptions=True)
            assert all(isinstance(r, LimitExceededError) for r in res)
            assert sorted(await s.ids()) == ["b0", "b1", "b2", "b5", "b7"]
            await s.forwarded("b0")  # frees a slot of the source quota and of the store
            assert await _put(s, 3, source="ipn:7.0", size=10)

    async def reopen():
        async with BundleStore(tmp_path / "s.db", clock=Clock(), limits=limits) as s:
            assert sorted(await s.ids()) == ["b1", "b2", "b3", "b5", "b7"]
            with pytest.raises(LimitExceededError):  # counters rebuilt from the file
                await _put(s, 11, source="ipn:7.0", size=1)
    run(main())
    run(reopen())


def test_exactly_once_delivery_gate_across_restart(tmp_path):
    async def first():
        async with BundleStore(tmp_path / "s.db", clock=Clock()) as s:
            await _put(s, 1)
            assert await s.mark_delivered("b1")
            assert not await s.mark_delivered("b1")
            assert await s.mark_delivered("never-stored", expires_at=5000)

    async def second():
        async with BundleStore(tmp_path / "s.db", clock=Clock()) as s:
            assert not await s.mark_delivered("b1")
            assert not await s.mark_delivered("never-stored", expires_at=5000)
            assert not await _put(s, 1)  # a duplicate of a delivered bundle
            with pytest.raises(StateError):
                await s.take_custody("b1")
    run(first())
    run(second())


def test_not_a_store_gives_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(MalformedError, match="not a bundle store"):
        BundleStore(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    with pytest.raises(MalformedError, match="not a betanet bundle store"):
        BundleStore(other)


def test_closed_store_refuses(tmp_path):
    async def main():
        s = BundleStore(tmp_path / "s.db")
        await s.close()
        await s.close()
        with pytest.raises(StateError):
            await s.get("x")
    run(main())


# The writer runs in its own process: it puts bundles from many concurrent tasks and prints
# each id only after ``put`` returned (= acknowledged). The test kills it with SIGKILL at a
# random moment and checks that every printed id is in the reopened store.
WRITER = textwrap.dedent("""
    import asyncio, os, sys
    from betanet.dtn.store import BundleStore, Priority

    async def main(path, seed):
        store = BundleStore(path, clock=lambda: 0.0)
        print("ready", flush=True)
        async def writer(w):
            i = 0
            while True:
                bid = f"w{w}-{i}"
                data = os.urandom(32) + bid.encode() * 30
                await store.put(bid, data, destination="ipn:2.1", source=f"ipn:{w}.0",
                                expires_at=1e12, priority=Priority(i % 3))
                sys.stdout.write(f"{bid} {data.hex()}\\n")
                sys.stdout.flush()
                i += 1
        await asyncio.gather(*(writer(w) for w in range(int(seed) % 5 + 4)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


@pytest.mark.slow
def test_acknowledged_bundles_survive_kill_9(tmp_path):
    rng = random.Random(9174)
    path = tmp_path / "crash.db"
    total_acked = 0
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(attempt)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))  # the kill point
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        acked = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:  # a line cut by the kill is not an acknowledgment
                acked[parts[0]] = bytes.fromhex(parts[1]) if len(parts[1]) % 2 == 0 else None
        acked = {k: v for k, v in acked.items() if v is not None}
        assert acked, "the writer acknowledged nothing before the kill"
        total_acked += len(acked)

        async def check():
            async with BundleStore(path, clock=lambda: 0.0) as s:
                for bid, data in acked.items():
                    b = await s.get(f"{bid}")
                    assert b is not None, f"acknowledged bundle {bid} lost (attempt {attempt})"
                    assert b.data == data
                # the reopened store accepts new writes and renumbers nothing
                await s.put(f"after-{attempt}", b"x", destination="d", source="s", expires_at=1e12)
        run(check())
        # next attempt writes new ids into the same file (ids restart, so use a fresh file)
        path = tmp_path / f"crash{attempt + 1}.db"
    assert total_acked > 50
