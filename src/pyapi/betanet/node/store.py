"""The node's durable state: outbox, inbox with dedup and per-sender order, beside the DTN
bundles in the same SQLite file (WAL, synchronous=FULL).

``NodeStore`` opens the file through :class:`betanet.dtn.store.BundleStore` (which creates
it and marks it as a betanet store), then adds its own tables with a second connection. One
worker thread runs the node's statements; every call returns after its transaction
committed, so what the node acknowledged survives ``kill -9``:

- ``add_outgoing`` commits the message record the node gives it (with its per-destination
  sequence number) before ``node.send`` returns: an accepted message is never lost; it is
  retried until the end-to-end acknowledgment or its deadline, also after a restart. (The
  node stores the message unsealed and seals when it leaves, so one seal covers a batch;
  rows written by earlier versions hold the sealed message and are sent as they are.)
- ``accept_incoming`` commits the message (or finds its id already there) before the node
  acknowledges it end to end: the sender's retransmissions are dropped by message id, so
  each message reaches the inbox once. Messages become *ready* in sender sequence order; a
  gap older than ``reorder_timeout`` is skipped.
- ``mark_delivered`` drops the body once the application has taken the message.

Tables (docs/node.md "Store"): node_outbox, node_seq, node_inbox, node_rx.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import sqlite3
import time
from collections import deque
from functools import partial
from itertools import chain
from typing import Any, Callable, NamedTuple, Sequence

from betanet.dtn.store import BundleStore, StoreLimits, next_batch
from betanet.errors import BetanetError, InvalidArgumentError, LimitExceededError, StateError

__all__ = ["NodeStore", "Outgoing", "Incoming", "PENDING", "ACKED", "FAILED"]

log = logging.getLogger(__name__)

PENDING, ACKED, FAILED = 0, 1, 2
HELD, READY, DELIVERED = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_outbox (
    msg_id   BLOB PRIMARY KEY,
    dest     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    sealed   BLOB,                 -- the message record (unsealed; sealed in old rows), NULL once done
    qos      TEXT NOT NULL,
    topic    TEXT NOT NULL,
    created  REAL NOT NULL,
    expires  REAL NOT NULL,
    state    INTEGER NOT NULL,     -- 0 pending, 1 acknowledged, 2 failed
    reason   TEXT,
    size     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS node_outbox_pending ON node_outbox(state, created);
CREATE TABLE IF NOT EXISTS node_seq (dest TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS node_inbox (
    msg_id   BLOB PRIMARY KEY,
    sender   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    topic    TEXT NOT NULL,
    body     BLOB,                 -- NULL once delivered
    received REAL NOT NULL,
    state    INTEGER NOT NULL,     -- 0 held (out of order), 1 ready, 2 delivered
    ready    INTEGER               -- order in which messages became ready
);
CREATE INDEX IF NOT EXISTS node_inbox_ready ON node_inbox(state, ready);
CREATE INDEX IF NOT EXISTS node_inbox_held ON node_inbox(sender, state, seq);
CREATE TABLE IF NOT EXISTS node_rx (sender TEXT PRIMARY KEY, next INTEGER NOT NULL);
"""


def _resolve(done: list[tuple[asyncio.Future, bool, Any]]) -> None:
    """The outcomes of one group commit's operations (one hand-off to the loop per group)."""
    for fut, ok, value in done:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


# Statements over many rows at once: one sqlite3 call (so one release of the GIL) per chunk
# instead of one per row — with the event loop busy, every release made the writer wait for
# the GIL again. Chunks are powers of two so that each statement shape is prepared once
# (sqlite3's statement cache) whatever the batch size.
_CHUNK = 256


def _chunks(items: Sequence) -> list[Sequence]:
    out, i, n = [], 0, len(items)
    while n - i >= _CHUNK:
        out.append(items[i:i + _CHUNK])
        i += _CHUNK
    k = _CHUNK
    while i < n:
        k >>= 1
        while k > n - i:
            k >>= 1
        out.append(items[i:i + k])
        i += k
    return out


_SQL: dict[tuple[str, int], str] = {}


def _sql(kind: str, k: int) -> str:
    """The statement ``kind`` for ``k`` rows (numbered parameters: shared values first)."""
    s = _SQL.get((kind, k))
    if s is None:
        if kind == "outbox":      # whole rows but state and reason, 9 values each
            s = ("INSERT INTO node_outbox(msg_id, dest, seq, sealed, qos, topic, created, "
                 "expires, size, state, reason) VALUES " +
                 ",".join([f"(?,?,?,?,?,?,?,?,?,{PENDING},NULL)"] * k))
        elif kind == "finish":    # ?1 state ?2 dest, then the ids
            s = (f"UPDATE node_outbox SET state=?1, reason=NULL, sealed=NULL WHERE dest=?2 "
                 f"AND state={PENDING} AND msg_id IN (" + ",".join(f"?{3 + i}" for i in range(k)) + ")")
        elif kind == "inbox":     # whole rows, 8 values each
            s = "INSERT INTO node_inbox VALUES " + ",".join([f"(?,?,?,?,?,?,{READY},?)"] * k)
        elif kind == "known":
            s = "SELECT msg_id FROM node_inbox WHERE msg_id IN (" + ",".join("?" * k) + ")"
        elif kind == "mark":
            s = (f"UPDATE node_inbox SET state={DELIVERED}, body=NULL WHERE state={READY} "
                 "AND msg_id IN (" + ",".join("?" * k) + ")")
        else:
            raise ValueError(kind)
        _SQL[(kind, k)] = s
    return s


class _Joined:
    """Items waiting for the next joined operation of one kind (NodeStore._join)."""
    __slots__ = ("items", "queued")

    def __init__(self) -> None:
        self.items: deque = deque()
        self.queued = False


def _settle_joined(taken: list, op: asyncio.Future) -> None:
    """A joined operation is done: each caller's own future gets its result (or the
    operation's error), in its own loop."""
    err = StateError("node store is closed") if op.cancelled() else op.exception()
    results = op.result() if err is None else None
    if err is not None and any(t[1] is None for t in taken):
        log.warning("node store: deferred update failed: %s", err)
    for k, (_, mine, loop) in enumerate(taken):
        if mine is None:
            continue
        if err is None:
            value, ok = results[k], True
        else:
            value, ok = err, False
        if loop is op.get_loop():
            _resolve([(mine, ok, value)])
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, [(mine, ok, value)])


def _mark_rows(c: sqlite3.Connection, ids: list[bytes]) -> list[bool]:
    for chunk in _chunks(ids):
        c.execute(_sql("mark", len(chunk)), chunk)
    return [True] * len(ids)


class Outgoing(NamedTuple):
    msg_id: bytes
    dest: str
    seq: int
    sealed: bytes | None      # the node's outbox record (batcher.py), or a version-1 sealed
    qos: str                  # message in rows of earlier versions; None once finished
    topic: str
    created: float
    expires: float
    state: int
    reason: str | None


class Incoming(NamedTuple):
    """A ready inbox row (a tuple: one per message, made in bulk)."""
    msg_id: bytes
    sender: str
    seq: int
    topic: str
    body: bytes
    received: float
    ready: int = 0            # the order in which messages became ready (store-wide)


class _Accepting:
    """What one transaction accepting messages knows and defers: the ids already in the
    inbox (one query per chunk of the batch, not one per message), the undelivered count,
    per sender [next expected seq, lowest held seq or None, held count or None (not read
    yet)], and the in-order rows, inserted together
    by ``flush`` (with the senders' next seq)."""
    __slots__ = ("store", "c", "known", "live", "rx", "rows", "now")

    def __init__(self, store: "NodeStore", c: sqlite3.Connection, ids: list[bytes]) -> None:
        self.store, self.c = store, c
        self.known: set[bytes] = set()
        for chunk in _chunks(ids):
            self.known.update(r[0] for r in c.execute(_sql("known", len(chunk)), chunk))
        self.live = store._live(c)
        self.rx: dict[str, list] = {}
        self.rows: list[Incoming] = []
        self.now = store._clock()

    def flush(self) -> None:
        c = self.c
        for chunk in _chunks(self.rows):
            c.execute(_sql("inbox", len(chunk)), list(chain.from_iterable(chunk)))
        c.executemany("INSERT OR REPLACE INTO node_rx(sender, next) VALUES(?, ?)",
                      [(sender, st[0]) for sender, st in self.rx.items()])


class NodeStore:
    def __init__(self, path: str | os.PathLike, *, limits: StoreLimits = StoreLimits(),
                 inbox_limit: int = 10_000, max_pending_per_sender: int = 1_000,
                 clock: Callable[[], float] = time.time, max_batch: int = 1024) -> None:
        self.path = os.fspath(path)
        self.bundles = BundleStore(self.path, limits=limits, clock=clock)
        self.inbox_limit = inbox_limit
        self.max_pending_per_sender = max_pending_per_sender
        self._clock = clock
        self._max_batch = max_batch
        self._conn = self._open()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._adds = _Joined()             # outbox additions waiting for the writer
        self._marks = _Joined()            # delivery marks waiting for the writer
        # rows that became ready, published after their commit (watch_ready): the writer's
        # list for the running transaction, and the log the event loop takes from
        self._watch: tuple[Any, Callable[[], None]] | None = None
        self._fresh: list[Incoming] = []
        self._ready_log: deque[Incoming] = deque()
        self._closed = False
        self.commits = 0
        self._thread = threading.Thread(target=self._worker, name="node-store", daemon=True)
        self._thread.start()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30,
                               cached_statements=256)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        self._top = conn.execute("SELECT COALESCE(MAX(ready), 0) FROM node_inbox").fetchone()[0]
        return conn

    # Group commit, as in the bundle store: every operation queued while the previous
    # transaction committed runs in the next one (each in its own savepoint, so one failing
    # operation does not undo the others); N concurrent sends cost one fsync, not N.
    def _worker(self) -> None:
        c = self._conn
        while True:
            batch, stop = next_batch(self._queue, self._max_batch)
            if not batch:
                break
            if len(batch) == 1:
                results = self._run_alone(batch[0][0])
            else:
                results = self._run_group(batch)
            by_loop: dict[Any, list] = {}
            for (_, loop, fut), (ok, value) in zip(batch, results):
                by_loop.setdefault(loop, []).append((fut, ok, value))
            for loop, done in by_loop.items():
                with contextlib.suppress(RuntimeError):        # that loop is gone
                    loop.call_soon_threadsafe(_resolve, done)
            if stop:
                break
        c.close()

    def _run_alone(self, fn: Callable[[sqlite3.Connection], Any]) -> list[tuple[bool, Any]]:
        """One operation in its own transaction: no savepoint (two statements less, and
        each statement is a release and re-take of the GIL); its failure rolls back all."""
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                value = fn(c)
            except Exception as e:              # refused or a bug: nothing of it stays
                c.execute("ROLLBACK")
                self._fresh.clear()
                return [(False, e)]
            c.execute("COMMIT")                 # fsync: everything above is durable
            self.commits += 1
            self._publish()
            return [(True, value)]
        except sqlite3.Error as e:
            return self._failed(e, 1)

    def _failed(self, e: sqlite3.Error, n: int) -> list[tuple[bool, Any]]:
        log.error("node store %s: transaction failed: %s", self.path, e)
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        self._fresh.clear()
        return [(False, BetanetError(f"node store write failed: {e}"))] * n

    def _run_group(self, batch: list) -> list[tuple[bool, Any]]:
        """Several operations in one transaction, each in a savepoint: one failing
        operation does not undo the others."""
        c = self._conn
        results: list[tuple[bool, Any]] = []
        try:
            c.execute("BEGIN IMMEDIATE")
            for fn, _, _ in batch:
                c.execute("SAVEPOINT op")
                fresh = len(self._fresh)
                try:
                    results.append((True, fn(c)))
                    c.execute("RELEASE op")
                except Exception as e:          # this operation only: refused or a bug
                    c.execute("ROLLBACK TO op")
                    c.execute("RELEASE op")
                    del self._fresh[fresh:]
                    results.append((False, e))
            c.execute("COMMIT")                # fsync: everything above is durable
            self.commits += 1
            self._publish()
        except sqlite3.Error as e:
            return self._failed(e, len(batch))
        return results

    def _publish(self) -> None:
        """After a commit: the rows it made ready go to the log, and the watcher is woken."""
        if not self._fresh:
            return
        self._ready_log.extend(self._fresh)
        self._fresh.clear()
        if self._watch is not None:
            with contextlib.suppress(RuntimeError):
                self._watch[0].call_soon_threadsafe(self._watch[1])

    def watch_ready(self, wake: Callable[[], None]) -> None:
        """From now on, every committed transaction that makes messages ready appends them
        (in ready order, bodies included) to a log taken with ``take_ready()``, and calls
        ``wake()`` in the calling event loop: the dispatcher needs no read of its own for
        what the receive path just wrote. (Ready rows from before this call: ``ready()``.)"""
        self._watch = (asyncio.get_running_loop(), wake)

    def take_ready(self) -> list[Incoming]:
        """Everything published since the last call, oldest first (see ``watch_ready``)."""
        log_, out = self._ready_log, []
        while log_:
            out.append(log_.popleft())
        return out

    async def _run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise StateError("node store is closed")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put((fn, loop, fut))
        return await fut

    # ---- outbox ------------------------------------------------------------------------
    async def add_outgoing(self, msg_id: bytes, dest: str, qos: str, topic: str, expires: float,
                           make_sealed: Callable[[int], bytes]) -> tuple[int, bytes]:
        """Take the next sequence number for ``dest``, seal with it, commit; (seq, sealed)."""
        def tx(c):
            row = c.execute("SELECT next FROM node_seq WHERE dest=?", (dest,)).fetchone()
            seq = row[0] if row else 0
            sealed = make_sealed(seq)
            c.execute("INSERT OR REPLACE INTO node_seq(dest, next) VALUES(?, ?)", (dest, seq + 1))
            c.execute("INSERT INTO node_outbox VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                      (msg_id, dest, seq, sealed, qos, topic, self._clock(), expires, PENDING, None,
                       len(sealed)))
            return seq, sealed
        return await self._run(tx)

    async def add_outgoing_batch(self, dest: str, qos: str, topic: str, expires: float,
                                 msg_ids: list[bytes], records: list[bytes]) -> int:
        """``add_outgoing`` for several messages to one destination (their records are final:
        they do not depend on the sequence number). Their sequence numbers are consecutive:
        returns the first. Calls made while one is queued for the writer join it (one
        operation, and one INSERT per chunk of rows, for many concurrent ``send`` calls)."""
        if len(msg_ids) != len(records):
            raise InvalidArgumentError("add_outgoing_batch: one record per message id")
        mine = self._join(self._adds, (dest, qos, topic, expires, msg_ids, records), self._add_rows)
        return await mine

    def _add_rows(self, c: sqlite3.Connection, runs: list) -> list[int]:
        """The outbox rows of the joined ``add_outgoing_batch`` calls: their first seqs."""
        nexts: dict[str, int] = {}
        rows, firsts = [], []
        now = self._clock()
        for dest, qos, topic, expires, ids, recs in runs:
            first = nexts.get(dest)
            if first is None:
                row = c.execute("SELECT next FROM node_seq WHERE dest=?", (dest,)).fetchone()
                first = row[0] if row else 0
            nexts[dest] = first + len(ids)
            firsts.append(first)
            rows += [(mid, dest, first + i, rec, qos, topic, now, expires, len(rec))
                     for i, (mid, rec) in enumerate(zip(ids, recs))]
        for chunk in _chunks(rows):
            c.execute(_sql("outbox", len(chunk)), list(chain.from_iterable(chunk)))
        c.executemany("INSERT OR REPLACE INTO node_seq(dest, next) VALUES(?, ?)", nexts.items())
        return firsts

    def _join(self, j: "_Joined", item: Any, body: Callable[[sqlite3.Connection, list], list],
              want: bool = True) -> asyncio.Future | None:
        """Queue ``item`` for the next operation of kind ``j``: one operation runs
        ``body(conn, items)`` for every item queued before it started (so many callers cost
        one writer operation and one statement per chunk); each caller gets its own future
        (its result from ``body``'s list, or the operation's error), so cancelling one wait
        cancels nothing else (``want=False``: no future, an error is logged). Without a lock: the writer clears ``queued`` before it drains,
        so an item appended meanwhile is either drained now or finds no operation queued
        and queues one (which may then find nothing)."""
        if self._closed:
            raise StateError("node store is closed")
        loop = asyncio.get_running_loop()
        mine = loop.create_future() if want else None
        j.items.append((item, mine, loop))
        if not j.queued:
            j.queued = True
            taken: list = []

            def tx(c):
                j.queued = False
                items = j.items
                try:
                    while True:
                        taken.append(items.popleft())
                except IndexError:
                    pass
                return body(c, [t[0] for t in taken]) if taken else []
            op = loop.create_future()
            op.add_done_callback(partial(_settle_joined, taken))
            self._queue.put((tx, loop, op))
        return mine

    async def pending_brief(self, accepted_before: float | None = None,
                            expiring_before: float | None = None) -> list[tuple[bytes, str, str, float]]:
        """(msg_id, dest, qos, expires) of the pending messages (accepted before the given
        store-clock time, if one is given, or expiring before ``expiring_before``), in
        (dest, seq) order: what the retry loop scans without reading the messages themselves."""
        def q(c):
            return c.execute("SELECT msg_id, dest, qos, expires FROM node_outbox WHERE state=? "
                             "AND (created <= ? OR expires <= ?) ORDER BY dest, seq",
                             (PENDING, float("inf") if accepted_before is None else accepted_before,
                              float("-inf") if expiring_before is None else expiring_before)
                             ).fetchall()
        return await self._run(q)

    async def get_outgoing_many(self, msg_ids: list[bytes]) -> list[Outgoing]:
        """The pending rows among ``msg_ids``, in (dest, seq) order."""
        def q(c):
            out = []
            for mid in msg_ids:
                r = c.execute(
                    "SELECT msg_id, dest, seq, sealed, qos, topic, created, expires, state, reason "
                    "FROM node_outbox WHERE msg_id=? AND state=?", (mid, PENDING)).fetchone()
                if r is not None:
                    out.append(Outgoing(*r))
            return sorted(out, key=lambda o: (o.dest, o.seq))
        return await self._run(q)

    async def pending(self) -> list[Outgoing]:
        def q(c):
            return [Outgoing(*r) for r in c.execute(
                "SELECT msg_id, dest, seq, sealed, qos, topic, created, expires, state, reason "
                "FROM node_outbox WHERE state=? ORDER BY dest, seq", (PENDING,))]
        return await self._run(q)

    async def get_outgoing(self, msg_id: bytes) -> Outgoing | None:
        def q(c):
            r = c.execute(
                "SELECT msg_id, dest, seq, sealed, qos, topic, created, expires, state, reason "
                "FROM node_outbox WHERE msg_id=?", (msg_id,)).fetchone()
            return None if r is None else Outgoing(*r)
        return await self._run(q)

    async def finish_outgoing(self, msg_id: bytes, state: int, reason: str | None = None) -> bool:
        """Acknowledged or failed: drop the sealed bytes. False if it was not pending."""
        def tx(c):
            return c.execute("UPDATE node_outbox SET state=?, reason=?, sealed=NULL "
                             "WHERE msg_id=? AND state=?", (state, reason, msg_id, PENDING)).rowcount == 1
        return await self._run(tx)

    async def finish_outgoing_many(self, msg_ids: list[bytes], state: int, dest: str) -> list[str]:
        """End-to-end acknowledgments from ``dest`` for several messages, one operation: per
        id "done" (was pending), "again" (already finished) or "stray" (no such message to
        ``dest``)."""
        def tx(c):
            if len(set(msg_ids)) == len(msg_ids):
                # the usual case, every id pending: one statement per chunk; otherwise
                # undone and taken id by id below
                c.execute("SAVEPOINT finish")
                n = 0
                for ids in _chunks(msg_ids):
                    n += c.execute(_sql("finish", len(ids)), (state, dest, *ids)).rowcount
                if n == len(msg_ids):
                    c.execute("RELEASE finish")
                    return ["done"] * n
                c.execute("ROLLBACK TO finish")
                c.execute("RELEASE finish")
            out = []
            for mid in msg_ids:
                if c.execute("UPDATE node_outbox SET state=?, reason=NULL, sealed=NULL "
                             "WHERE msg_id=? AND dest=? AND state=?",
                             (state, mid, dest, PENDING)).rowcount == 1:
                    out.append("done")
                elif c.execute("SELECT 1 FROM node_outbox WHERE msg_id=? AND dest=?",
                               (mid, dest)).fetchone():
                    out.append("again")
                else:
                    out.append("stray")
            return out
        return await self._run(tx)

    # ---- inbox -------------------------------------------------------------------------
    async def accept_incoming(self, msg_id: bytes, sender: str, seq: int, topic: str,
                              body: bytes) -> str:
        """Commit a received message: "new", "duplicate" or raises LimitExceededError (inbox
        or per-sender hold full: not acknowledged, the sender retries later)."""
        def tx(c):
            acc = _Accepting(self, c, [msg_id])
            out = self._accept(acc, msg_id, sender, seq, topic, body)
            acc.flush()
            return out
        return await self._run(tx)

    @staticmethod
    def _live(c: sqlite3.Connection) -> int:
        return c.execute("SELECT COUNT(*) FROM node_inbox WHERE state<?", (DELIVERED,)).fetchone()[0]

    def _accept(self, acc: "_Accepting", msg_id: bytes, sender: str, seq: int, topic: str,
                body: bytes) -> str:
        """Every check comes before the first write, so a refused message leaves nothing to
        undo. ``acc`` holds what one transaction learned and defers (_Accepting)."""
        if msg_id in acc.known:
            return "duplicate"
        c = acc.c
        st = acc.rx.get(sender)
        if st is None:
            row = c.execute("SELECT next FROM node_rx WHERE sender=?", (sender,)).fetchone()
            st = acc.rx[sender] = [row[0] if row else 0, self._lowest_held(c, sender), None]
        nxt = st[0]
        if seq < nxt:      # an id we no longer hold, below the sender's delivered sequence
            return "duplicate"
        if acc.live >= self.inbox_limit:
            raise LimitExceededError(f"inbox holds {acc.live} undelivered messages (inbox_limit)")
        if seq > nxt:
            if st[2] is None:
                st[2] = c.execute("SELECT COUNT(*) FROM node_inbox WHERE sender=? AND state=?",
                                  (sender, HELD)).fetchone()[0]
            if st[2] >= self.max_pending_per_sender:
                raise LimitExceededError(f"{st[2]} out-of-order messages held for {sender}")
            c.execute("INSERT INTO node_inbox VALUES(?,?,?,?,?,?,?,NULL)",
                      (msg_id, sender, seq, topic, body, acc.now, HELD))
            acc.known.add(msg_id)
            acc.live += 1
            st[2] += 1
            if st[1] is None or seq < st[1]:
                st[1] = seq
            return "new"
        # in order (the usual case): ready at once, the row (and its body) written once, in
        # one statement with the others of the batch (flush); then whatever was held behind
        self._top += 1
        row = Incoming(msg_id, sender, seq, topic, body, acc.now, self._top)
        acc.rows.append(row)
        if self._watch is not None:
            self._fresh.append(row)
        acc.known.add(msg_id)
        acc.live += 1
        st[0] = nxt + 1
        if st[1] == nxt + 1:                    # the gap before held messages is filled
            st[0] = self._advance(c, sender, nxt + 1)
            st[1], st[2] = self._lowest_held(c, sender), None
        return "new"

    @staticmethod
    def _lowest_held(c: sqlite3.Connection, sender: str) -> int | None:
        return c.execute("SELECT MIN(seq) FROM node_inbox WHERE sender=? AND state=?",
                         (sender, HELD)).fetchone()[0]

    async def accept_incoming_many(self, msgs: list[tuple[bytes, str, int, str, bytes]]) -> list:
        """``accept_incoming`` for the messages of a batch in one transaction: per message
        "new", "duplicate" or the LimitExceededError that refused it (nothing of it written)."""
        def tx(c):
            acc = _Accepting(self, c, [m[0] for m in msgs])
            out = []
            for mid, sender, seq, topic, body in msgs:
                try:
                    out.append(self._accept(acc, mid, sender, seq, topic, body))
                except LimitExceededError as e:
                    out.append(e)
            acc.flush()
            return out
        return await self._run(tx)

    def _advance(self, c: sqlite3.Connection, sender: str, nxt: int) -> int:
        """Make the held messages of ``sender`` from sequence ``nxt`` on ready, in order."""
        top = self._top
        while True:
            r = c.execute("SELECT msg_id, topic, body, received FROM node_inbox "
                          "WHERE sender=? AND state=? AND seq=?", (sender, HELD, nxt)).fetchone()
            if r is None:
                break
            top += 1
            c.execute("UPDATE node_inbox SET state=?, ready=? WHERE msg_id=?", (READY, top, r[0]))
            if self._watch is not None:
                self._fresh.append(Incoming(r[0], sender, nxt, r[1], r[2], r[3], top))
            nxt += 1
        # only the writer thread advances; a rolled-back transaction leaves a gap in the
        # ready numbers, never a reordering (a full-table MAX per message was O(inbox))
        self._top = top
        c.execute("INSERT OR REPLACE INTO node_rx(sender, next) VALUES(?, ?)", (sender, nxt))
        return nxt

    async def skip_gaps(self, older_than_s: float) -> int:
        """Senders whose oldest held message waited longer than ``older_than_s``: skip the gap."""
        def tx(c):
            cutoff = self._clock() - older_than_s
            n = 0
            for sender, seq in c.execute(
                    "SELECT sender, MIN(seq) FROM node_inbox WHERE state=? GROUP BY sender "
                    "HAVING MIN(received) < ?", (HELD, cutoff)).fetchall():
                self._advance(c, sender, seq)
                n += 1
            return n
        return await self._run(tx)

    async def ready(self, limit: int = 256, after: int = 0) -> list[Incoming]:
        """Ready messages in the order they became ready, from after the ready number
        ``after`` on (the ``ready`` field of the last one a caller took)."""
        def q(c):
            return list(map(Incoming._make, c.execute(
                "SELECT msg_id, sender, seq, topic, body, received, ready FROM node_inbox "
                "WHERE state=? AND ready>? ORDER BY ready LIMIT ?", (READY, after, limit))))
        return await self._run(q)

    async def mark_delivered(self, msg_id: bytes,
                             effect: Callable[[sqlite3.Connection], Any] | None = None, *,
                             wait: bool = True) -> bool | asyncio.Future:
        """Mark a ready message consumed; False if it already was. ``effect(conn)`` (the
        application's own writes) runs in the same transaction, only when this call is the
        one that consumes it: both commit, or neither (an exception from it rolls back both).

        ``wait=False`` (no ``effect`` allowed) queues the update into the next group commit and
        returns at once with a future (True once committed; marks queued meanwhile share the
        operation): a crash before that commit shows the message again — the at-least-once window of
        automatic acknowledgment — and the consumer does not wait one fsync per message."""
        if wait:
            def tx(c):
                if c.execute("UPDATE node_inbox SET state=?, body=NULL WHERE msg_id=? AND state=?",
                             (DELIVERED, msg_id, READY)).rowcount != 1:
                    return False
                if effect is not None:
                    effect(c)
                return True
            return await self._run(tx)
        if effect is not None:
            raise InvalidArgumentError("mark_delivered: an effect needs wait=True (its own transaction)")
        return self._join(self._marks, msg_id, _mark_rows)

    def mark_delivered_later(self, msg_id: bytes) -> None:
        """``mark_delivered(msg_id, wait=False)`` without a coroutine (called once per
        message by ``messages()``): marks made while one is queued join it (one operation,
        one UPDATE per chunk of ids; joining only makes a mark earlier)."""
        self._join(self._marks, msg_id, _mark_rows, want=False)

    async def transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` in one committed transaction of the store's thread (the
        application's own tables beside the inbox); its result, or its exception."""
        return await self._run(fn)

    async def counts(self) -> dict[str, int]:
        def q(c):
            out = {f"outbox_{n}": 0 for n in ("pending", "acked", "failed")}
            for st, n in c.execute("SELECT state, COUNT(*) FROM node_outbox GROUP BY state"):
                out[f"outbox_{('pending', 'acked', 'failed')[st]}"] = n
            out.update({f"inbox_{n}": 0 for n in ("held", "ready", "delivered")})
            for st, n in c.execute("SELECT state, COUNT(*) FROM node_inbox GROUP BY state"):
                out[f"inbox_{('held', 'ready', 'delivered')[st]}"] = n
            return out
        counts = await self._run(q)
        st = await self.bundles.stats()
        counts["bundles"] = st.count
        counts["bundle_bytes"] = st.bytes
        return counts

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        await self.bundles.close()
