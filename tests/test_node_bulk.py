"""The node's per-message path in bulk: handles settled without a future each and awaited as
a group (``acked_all``, shared timers), store operations joined and written over many rows
at once, the log of committed ready rows the dispatcher reads instead of the store."""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from betanet.errors import ExpiredError, LimitExceededError
from betanet.node.batcher import pack_record
from betanet.node.handles import DeliveryHandle, _Timeouts, acked_all
from betanet.node.store import ACKED, NodeStore

from node_helpers import introduce, make_node, started_pair, take


def run(coro, timeout=60):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def _handle(i: int) -> DeliveryHandle:
    return DeliveryHandle(bytes([i]) * 16, "D", "balanced", "normal")


# ---- handles ---------------------------------------------------------------------------------
def test_acked_all_gives_seconds_in_order_once_every_handle_settled():
    async def go():
        hs = [_handle(i) for i in range(5)]
        hs[2]._settle(True, 0.5)                           # settled before the wait
        waiter = asyncio.ensure_future(acked_all(hs, 30))
        await asyncio.sleep(0)
        for i in (4, 0, 3):
            hs[i]._settle(True, float(i))
        await asyncio.sleep(0)
        assert not waiter.done()                           # hs[1] is still on its way
        hs[1]._settle(True, 1.0)
        assert await waiter == [0.0, 1.0, 0.5, 3.0, 4.0]
        assert all(h._waiters is None for h in hs)         # nothing left hooked
        assert await hs[3].acked() == 3.0 and hs[3].is_acked
        assert await acked_all([]) == []
    run(go())


def test_acked_all_raises_the_first_failure_at_once():
    async def go():
        hs = [_handle(i) for i in range(3)]
        waiter = asyncio.ensure_future(acked_all(hs, 30))
        await asyncio.sleep(0)
        assert hs[1]._settle(False, ExpiredError("deadline passed"))
        assert not hs[1]._settle(True, 1.0)                # only the first verdict counts
        with pytest.raises(ExpiredError, match="deadline"):
            await waiter
        assert not hs[1].is_acked
        with pytest.raises(ExpiredError):
            await hs[1].acked()
        with pytest.raises(ExpiredError):                  # also when already settled
            await acked_all(hs)
        # the others' waits were unhooked; they still settle normally
        assert hs[0]._waiters == [] and hs[2]._waiters == []
        hs[0]._settle(True, 2.0)
        assert await hs[0].acked(1) == 2.0
    run(go())


def test_a_timed_out_or_cancelled_wait_leaves_the_message_and_other_waits_alone():
    async def go():
        h = _handle(1)
        with pytest.raises(asyncio.TimeoutError):
            await h.acked(0.02)
        with pytest.raises(asyncio.TimeoutError):
            await acked_all([h, _handle(2)], 0.02)
        assert h._waiters == []                            # unhooked after the time-outs
        first = asyncio.ensure_future(h.acked())
        second = asyncio.ensure_future(h.acked(30))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        assert first.cancelled() and not second.done()
        h._settle(True, 0.25)
        assert await second == 0.25 and h.is_acked
    run(go())


def test_waits_ending_in_the_same_step_share_one_loop_timer():
    async def go():
        loop = asyncio.get_running_loop()
        loop.time = lambda: 1000.0                         # every wait ends in the same step
        hs = [_handle(i % 256) for i in range(100)]
        waits = [asyncio.ensure_future(h.acked(5)) for h in hs]
        await asyncio.sleep(0)
        steps = _Timeouts.of(loop).steps
        assert len(steps) == 1 and len(next(iter(steps.values()))[0]) == 100
        timer = next(iter(steps.values()))[1]
        for i, h in enumerate(hs):
            h._settle(True, float(i))
        assert await asyncio.gather(*waits) == [float(i) for i in range(100)]
        assert steps == {} and timer.cancelled()           # the last wait done: timer gone
    run(go())


def test_progress_updates_end_when_the_handle_settles():
    async def go():
        h = _handle(1)
        seen = []

        async def watch():
            async for p in h.progress_updates():
                seen.append(p)
        t = asyncio.ensure_future(watch())
        await asyncio.sleep(0)
        h._chunk(1, 2)
        await asyncio.sleep(0)
        h._settle(True, 0.1)
        await asyncio.wait_for(t, 5)
        assert seen[0] == {"chunks_sent": 0, "chunks_total": 0, "acked": False}
        assert seen[-1]["acked"] is True and {"chunks_sent": 1, "chunks_total": 2, "acked": False} in seen
    run(go())


# ---- store: statements over many rows, joined operations ---------------------------------------
def test_outbox_batches_across_chunk_sizes_and_finish_paths(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db")
        ids = [i.to_bytes(16, "big") for i in range(306)]
        recs = [pack_record(0, 1, b"m%d" % i) for i in range(306)]
        firsts = [await s.add_outgoing_batch("B", "balanced", "t", 1e12, ids[a:b], recs[a:b])
                  for a, b in ((0, 300), (300, 305), (305, 306))]
        assert firsts == [0, 300, 305]
        rows = await s.pending()
        assert [o.seq for o in rows] == list(range(306)) and [o.msg_id for o in rows] == ids
        assert rows[7].sealed == recs[7] and rows[7].topic == "t"
        # every id pending: one statement per chunk
        assert await s.finish_outgoing_many(ids[:299], ACKED, "B") == ["done"] * 299
        # some already finished, one unknown, one to another destination: id by id
        out = await s.finish_outgoing_many([ids[5], ids[299], b"\xff" * 16, ids[300]], ACKED, "C")
        assert out == ["stray"] * 4
        out = await s.finish_outgoing_many([ids[5], ids[299], b"\xff" * 16, ids[300]], ACKED, "B")
        assert out == ["again", "done", "stray", "done"]
        assert [o.seq for o in await s.pending()] == list(range(301, 306))
        with pytest.raises(Exception, match="one record per message id"):
            await s.add_outgoing_batch("B", "balanced", "", 1e12, ids[:2], recs[:1])
        await s.close()
    run(go())


async def _hold_writer(s: NodeStore) -> tuple[threading.Event, asyncio.Future]:
    """Keep the store's writer busy in an operation until the event is set."""
    release, entered = threading.Event(), threading.Event()

    def block(_c):
        entered.set()
        release.wait(30)
    held = asyncio.ensure_future(s.transaction(block))
    while not entered.is_set():
        await asyncio.sleep(0.001)
    return release, held


def test_concurrent_sends_join_one_outbox_operation(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db")
        release, held = await _hold_writer(s)
        commits = s.commits
        calls = [asyncio.ensure_future(s.add_outgoing_batch(
            "BC"[i % 2], "balanced", "", 1e12, [bytes([i, k]) * 8 for k in range(3)],
            [b"\0" * 17 + b"x"] * 3)) for i in range(50)]
        await asyncio.sleep(0.05)
        calls[7].cancel()                                  # one caller gives up waiting
        release.set()
        await held
        firsts = await asyncio.gather(*(c for i, c in enumerate(calls) if i != 7))
        assert s.commits == commits + 2                    # the held one, then all 50 joined
        # consecutive per call, in call order, per destination
        want = {i: 3 * (i // 2) for i in range(50) if i != 7}
        assert firsts == list(want.values())
        assert sorted(o.seq for o in await s.pending() if o.dest == "C") == list(range(75))
        await s.close()
    run(go())


def test_deferred_delivery_marks_join_one_operation(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db")
        await s.accept_incoming_many([(i.to_bytes(16, "big"), "A", i, "", b"b") for i in range(300)])
        ready = await s.ready(1000)
        release, held = await _hold_writer(s)
        commits = s.commits
        for m in ready[:290]:
            s.mark_delivered_later(m.msg_id)
        fut = await s.mark_delivered(ready[290].msg_id, wait=False)
        release.set()
        await held
        assert await fut is True
        assert s.commits == commits + 2
        assert [m.seq for m in await s.ready(1000)] == list(range(291, 300))
        assert not await s.mark_delivered(ready[3].msg_id)     # already consumed
        await s.close()
    run(go())


# ---- store: inbox in bulk and the ready log ----------------------------------------------------
def test_inbox_batch_with_gaps_duplicates_and_the_held_limit(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db", max_pending_per_sender=4)
        # 3..9 arrive first: four are held, the rest refused by the limit (nothing written)
        out = await s.accept_incoming_many([(bytes([i]) * 16, "A", i, "", b"%d" % i) for i in range(3, 10)])
        assert out[:4] == ["new"] * 4 and all(isinstance(o, LimitExceededError) for o in out[4:])
        # 0..2 fill the gap: all of 0..6 ready, in order; a repeat inside the batch is a duplicate
        out = await s.accept_incoming_many([(bytes([i]) * 16, "A", i, "", b"%d" % i) for i in (0, 1, 1, 2)])
        assert out == ["new", "new", "duplicate", "new"]
        ready = await s.ready()
        assert [m.seq for m in ready] == list(range(7)) and [m.body for m in ready][4] == b"4"
        assert [m.ready for m in ready] == sorted(m.ready for m in ready)
        # the refused ones come again and are taken now
        out = await s.accept_incoming_many([(bytes([i]) * 16, "A", i, "", b"%d" % i) for i in range(5, 10)])
        assert out == ["duplicate", "duplicate", "new", "new", "new"]
        assert [m.seq for m in await s.ready(after=ready[-1].ready)] == [7, 8, 9]
        await s.close()
    run(go())


def test_ready_log_publishes_committed_rows_in_ready_order(tmp_path):
    now = [1000.0]

    async def go():
        s = NodeStore(tmp_path / "s.db", inbox_limit=7, clock=lambda: now[0])
        await s.accept_incoming(b"e" * 16, "E", 0, "", b"before")     # ready before watching
        s.watch_ready(lambda: None)
        for seq in (2, 1):                                 # held: nothing ready yet
            await s.accept_incoming(bytes([seq]) * 16, "A", seq, "t", b"a%d" % seq)
        await s.accept_incoming(b"x" * 16, "B", 0, "", b"b0")
        assert [(m.sender, m.body) for m in s.take_ready()] == [("B", b"b0")]
        await s.accept_incoming_many([(b"\0" * 16, "A", 0, "t", b"a0"), (b"y" * 16, "B", 1, "", b"b1")])
        got = s.take_ready()
        assert [(m.sender, m.seq, m.body) for m in got] == [("A", 0, b"a0"), ("A", 1, b"a1"),
                                                            ("A", 2, b"a2"), ("B", 1, b"b1")]
        assert [m.ready for m in got] == sorted(m.ready for m in got) and s.take_ready() == []
        # refused: nothing published
        await s.accept_incoming(b"z" * 16, "C", 5, "", b"c5")        # held
        with pytest.raises(LimitExceededError):
            await s.accept_incoming(b"w" * 16, "D", 0, "", b"d0")
        assert s.take_ready() == []
        # a skipped gap publishes what it made ready
        now[0] += 60
        assert await s.skip_gaps(30) == 1
        assert [(m.sender, m.seq, m.body) for m in s.take_ready()] == [("C", 5, b"c5")]
        assert [m.body for m in await s.ready()][0] == b"before"       # the store has it all
        await s.close()
    run(go())


# ---- node: bulk form end to end, the dispatcher's log --------------------------------------------
def test_send_many_and_acked_all_end_to_end_each_message_once_in_order(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        hs = []
        for k in range(3):
            hs += await a.send_many(d.me, [b"g%d-%03d" % (k, i) for i in range(100)])
        secs = await a.acked_all(hs, 30)
        assert len(secs) == 300 and all(s >= 0 for s in secs) and all(h.is_acked for h in hs)
        got = await take(d, 300)
        assert [m.body for m in got] == [b"g%d-%03d" % (k, i) for k in range(3) for i in range(100)]
        assert [m.seq for m in got] == list(range(300))
        st = await a.store.counts()
        assert st["outbox_acked"] == 300 and st["outbox_pending"] == 0
        assert await wait_consumed(d, 300)
        await a.stop()
        await d.stop()
        # after a restart nothing comes again: every mark was committed
        d2 = make_node(tmp_path, "d2")
        d2.store_path = d.store_path
        await d2.start()
        assert await d2.store.ready() == []
        await d2.stop()
    run(go())


async def wait_consumed(node, n: int, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if (await node.store.counts())["inbox_delivered"] >= n:
            return True
        await asyncio.sleep(0.05)
    return False


def test_messages_ready_at_start_come_before_newer_ones_once(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        await a.acked_all(await a.send_many(d.me, [b"old%d" % i for i in range(300)]), 30)
        await d.stop()                                     # 300 ready, none taken
        d.links[0].port = 0
        await d.start()                                    # the dispatcher reads them back
        introduce([a, d])
        more = await a.send_many(d.me, [b"new%d" % i for i in range(20)])
        got = await take(d, 320)
        assert [m.body for m in got] == [b"old%d" % i for i in range(300)] + [b"new%d" % i for i in range(20)]
        await a.acked_all(more, 30)
        await asyncio.sleep(0.2)
        assert d._app_queue.empty()                        # nothing given twice
        await a.stop()
        await d.stop()
    run(go())


def test_bodies_of_every_size_survive_the_bulk_statements(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db")
        bodies = [os.urandom(n) for n in (0, 1, 255, 4096, 70_000)]
        ids = [bytes([i]) * 16 for i in range(len(bodies))]
        await s.add_outgoing_batch("B", "balanced", "", 1e12, ids, [pack_record(1, 2, b) for b in bodies])
        assert [o.sealed[17:] for o in await s.pending()] == bodies
        await s.accept_incoming_many([(ids[i], "A", i, "", b) for i, b in enumerate(bodies)])
        assert [m.body for m in await s.ready()] == bodies
        await s.close()
    run(go())
