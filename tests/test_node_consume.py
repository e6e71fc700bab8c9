"""The acknowledgment contract of ``node.messages(manual_ack=True)`` / ``m.ack(effect)``:
the application's own write and the inbox mark commit together, so a consumer killed with -9
between taking a message and marking it records every message exactly once. The "naive"
consumer (its write, then the mark, two commits) is the control: killed at the same point, it
records one message twice — the test can see the failure it guards against."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time

import pytest

from betanet.errors import StateError
from betanet.node.node import Received

from node_helpers import make_node, started_pair
from node_procs import Proc, make, peer_id, wait_peer

pytestmark = pytest.mark.timeout(300)
HERE = os.path.dirname(os.path.abspath(__file__))


def _rec(base, name):
    return os.path.join(base, name, "peer.record")


def _kill_between_take_and_mark(tmp_path, mode: str, n: int = 10, hold_at: int = 4):
    base = str(tmp_path)
    d_cfg = make(base, "d", [_rec(base, "a")])
    a_cfg = make(base, "a", [_rec(base, "d")])
    consumer = [sys.executable, os.path.join(HERE, "node_consumer.py"), d_cfg, mode]
    d = Proc(d_cfg, argv=consumer + [str(hold_at)])
    a = Proc(a_cfg)
    try:
        wait_peer(a, peer_id(d_cfg))
        wait_peer(d, peer_id(a_cfg))
        ids = [a.send(peer_id(d_cfg), b"m%02d" % i)["id"] for i in range(n)]
        took = d.wait_event("took", 60, count=hold_at)[-1]
        assert took["id"] == ids[hold_at - 1]
        d.kill9()                                     # taken, not marked
        d = Proc(d_cfg, argv=consumer + ["0"])
        d.wait_event("received", 60, count=n - hold_at + 1)
        assert d.wait_event("took", 5)[0]["id"] == ids[hold_at - 1]     # given again
        end = time.monotonic() + 30
        while a.control({"cmd": "status"})["store"]["outbox_pending"] and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(1.0)                               # let any late retransmission arrive
    finally:
        a.stop()
        d.stop()
    with sqlite3.connect(os.path.join(base, "d", "store.db")) as c:
        seen = [r[0].hex() for r in c.execute("SELECT id FROM app_seen ORDER BY rowid")]
    return ids, seen


def test_ack_effect_exactly_once_across_kill_9_between_take_and_mark(tmp_path):
    ids, seen = _kill_between_take_and_mark(tmp_path, "ack")
    assert seen == ids                                # each once, in order


def test_naive_consumer_records_twice_at_the_same_point(tmp_path):
    ids, seen = _kill_between_take_and_mark(tmp_path, "naive")
    assert sorted(set(seen)) == sorted(ids)
    assert seen.count(ids[3]) == 2 and len(seen) == len(ids) + 1


def run(coro, timeout=60):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def test_ack_in_process_effect_atomic_and_idempotent(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        await d.transaction(lambda c: c.execute("CREATE TABLE app(id BLOB UNIQUE)"))
        for i in range(3):
            await (await a.send(d.me, b"x%d" % i)).acked(10)
        agen = d.messages(manual_ack=True)
        m0 = await agen.__anext__()

        def boom(c):
            c.execute("INSERT INTO app VALUES(?)", (m0.message_id,))
            raise ValueError("application failed")
        with pytest.raises(ValueError):
            await m0.ack(boom)                        # neither the write nor the mark
        assert await d.transaction(lambda c: c.execute("SELECT COUNT(*) FROM app").fetchone()[0]) == 0
        assert (await d.store.counts())["inbox_ready"] == 3
        put = lambda c: c.execute("INSERT INTO app VALUES(?)", (m0.message_id,))   # noqa: E731
        assert await m0.ack(put) is True
        assert await m0.ack(put) is False             # consumed once; the effect did not run again
        m1 = await agen.__anext__()
        assert m1.body == b"x1"
        await agen.aclose()                           # m1 not acknowledged: stays ready
        st = await d.store.counts()
        assert (st["inbox_delivered"], st["inbox_ready"]) == (1, 2)
        assert d.counters["consume_repeated"] == 1
        await a.stop()
        await d.stop()
        # after a restart the un-acknowledged ones come again, in order
        d2 = make_node(tmp_path, "d")
        await d2.start()
        agen = d2.messages(manual_ack=True)
        again = [await agen.__anext__() for _ in range(2)]
        assert [m.body for m in again] == [b"x1", b"x2"]
        for m in again:
            assert await m.ack()
        await agen.aclose()
        await d2.stop()
    run(go())


def test_handler_acks_itself_or_on_return(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        await d.transaction(lambda c: c.execute("CREATE TABLE app(id BLOB)"))
        seen = []

        async def own(m):
            seen.append(m.body)
            assert await m.ack(lambda c: c.execute("INSERT INTO app VALUES(?)", (m.message_id,)))

        async def plain(m):
            seen.append(m.body)
        d.on("own", own)
        d.on("plain", plain)
        await (await a.send(d.me, b"p", topic="plain")).acked(10)
        await (await a.send(d.me, b"o", topic="own")).acked(10)
        for _ in range(100):
            if (await d.store.counts())["inbox_delivered"] == 2:
                break
            await asyncio.sleep(0.05)
        assert sorted(seen) == [b"o", b"p"]
        assert (await d.store.counts())["inbox_delivered"] == 2
        assert await d.transaction(lambda c: c.execute("SELECT COUNT(*) FROM app").fetchone()[0]) == 1
        assert d.counters["messages_consumed"] == 2   # one each: the own ack, then the return-mark a no-op
        assert "consume_repeated" not in d.counters
        await a.stop()
        await d.stop()
    run(go())


def test_unbound_received_cannot_ack():
    with pytest.raises(StateError):
        asyncio.run(Received("p", "", b"", b"\0" * 16, 0).ack())
