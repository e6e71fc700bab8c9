"""The crash-safe bundle store: SQLite in WAL mode with group commit.

A bundle this node acknowledged (custody accepted, or a convergence-layer transfer
acknowledged) must survive ``kill -9`` at any moment. :meth:`BundleStore.put` therefore
returns only after the transaction holding the bundle has committed with
``synchronous=FULL`` (the WAL is fsynced on every commit). One writer thread owns the
connection and commits every request queued while the previous commit was running in one
transaction: N concurrent puts cost one fsync, not N.

The store treats bundles as opaque bytes: the caller passes the metadata it parsed
(bundle id, destination, source, expiry, priority class). Layout, durability argument and
quotas are pinned in ``docs/dtn-cla.md``.
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from betanet.errors import (BetanetError, ExpiredError, InvalidArgumentError, LimitExceededError,
                            MalformedError, StateError, UnsupportedError)

__all__ = ["Priority", "BundleState", "StoreLimits", "StoredBundle", "StoreStats", "BundleStore",
           "APPLICATION_ID", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

APPLICATION_ID = 0x42445354  # 'BDST' in PRAGMA application_id: marks a betanet bundle store
SCHEMA_VERSION = 1


class Priority(IntEnum):
    """Priority class; higher is sent first."""
    BULK = 0
    NORMAL = 1
    EXPEDITED = 2


class BundleState(IntEnum):
    """Lifecycle of a bundle in the store."""
    STORED = 0        # waiting for a contact
    IN_TRANSFER = 1   # claimed by a convergence layer, not yet acknowledged by the next hop
    CUSTODY = 2       # this node holds custody (stored, and must not drop it before expiry)
    DELIVERED = 3     # handed to a local application: data dropped, id kept for dedup
    DELETED = 4       # forwarded or discarded: data dropped, id kept for dedup


_LIVE = (BundleState.STORED, BundleState.IN_TRANSFER, BundleState.CUSTODY)
_LIVE_SQL = "(0, 1, 2)"

_SCHEMA = """
CREATE TABLE bundles (
    seq         INTEGER PRIMARY KEY,      -- arrival order: age within a priority class
    id          TEXT NOT NULL UNIQUE,     -- bundle id as the caller spells it
    destination TEXT NOT NULL,
    source      TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    state       INTEGER NOT NULL,
    received_at REAL NOT NULL,
    expires_at  REAL NOT NULL,
    size        INTEGER NOT NULL,         -- 0 once the data is dropped (delivered/deleted)
    data        BLOB                      -- NULL once delivered/deleted
);
CREATE INDEX bundles_send_order ON bundles(state, destination, priority DESC, seq);
CREATE INDEX bundles_expiry ON bundles(expires_at);
"""


@dataclass(frozen=True)
class StoreLimits:
    """Quotas. ``None`` means unlimited. Refusals raise :class:`LimitExceededError`."""
    max_bytes: int | None = 1 << 30
    max_count: int | None = 1_000_000
    max_source_bytes: int | None = None
    max_source_count: int | None = None
    max_bundle_bytes: int = 64 << 20


@dataclass(frozen=True)
class StoredBundle:
    bundle_id: str
    destination: str
    source: str
    priority: Priority
    state: BundleState
    received_at: float
    expires_at: float
    size: int
    data: bytes | None


@dataclass(frozen=True)
class StoreStats:
    count: int            # live bundles (stored, in transfer, custody)
    bytes: int            # their total size
    by_state: dict[BundleState, int]
    commits: int          # transactions committed since open
    writes: int           # write requests committed since open (writes / commits = batch size)


def _row(r: tuple) -> StoredBundle:
    return StoredBundle(r[0], r[1], r[2], Priority(r[3]), BundleState(r[4]), r[5], r[6], r[7],
                        None if r[8] is None else bytes(r[8]))


_COLS = "id, destination, source, priority, state, received_at, expires_at, size, data"


class _Op:
    __slots__ = ("fn", "args", "loop", "future", "writes")

    def __init__(self, fn, args, loop, future, writes):
        self.fn, self.args, self.loop, self.future, self.writes = fn, args, loop, future, writes


def _resolve(items: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for fut, ok, value in items:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def next_batch(q: "queue.SimpleQueue", max_batch: int) -> tuple[list, bool]:
    """A writer thread's next group commit: the operation it waits for, then whatever else
    is already queued (at most ``max_batch``). Returns (batch, stop); ``None`` in the queue
    asks the writer to stop after this batch (a batch may then be empty)."""
    op = q.get()
    if op is None:
        return [], True
    batch = [op]
    while len(batch) < max_batch:
        try:
            nxt = q.get_nowait()
        except queue.Empty:
            break
        if nxt is None:
            return batch, True
        batch.append(nxt)
    return batch, False


class BundleStore:
    """Durable bundle store. Create it, ``await`` its methods from one or more event loops,
    and ``await close()`` (or use ``async with``).

    ``clock`` returns the current time in the unit and epoch of ``expires_at`` (seconds);
    tests inject it. ``synchronous`` is SQLite's setting for the WAL: ``"FULL"`` (default)
    survives power loss, ``"NORMAL"`` survives process kill only.
    """

    def __init__(self, path: str | os.PathLike, *, limits: StoreLimits = StoreLimits(),
                 clock: Callable[[], float] = time.time, synchronous: str = "FULL",
                 max_batch: int = 4096) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise InvalidArgumentError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = os.fspath(path)
        self.limits = limits
        self._clock = clock
        self._max_batch = max(1, max_batch)
        self._conn = self._open(self.path, synchronous)
        self._load_counters()
        # A transfer that was in progress when the node stopped was not acknowledged: send again.
        with self._conn:
            n = self._conn.execute(f"UPDATE bundles SET state={BundleState.STORED} "
                                   f"WHERE state={BundleState.IN_TRANSFER}").rowcount
        if n:
            log.info("bundle store %s: %d interrupted transfers back to stored", self.path, n)
        self.commits = 0
        self.writes = 0
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="bundle-store", daemon=True)
        self._thread.start()

    # ---- opening ---------------------------------------------------------------------
    @staticmethod
    def _open(path: str, synchronous: str) -> sqlite3.Connection:
        if path == ":memory:" or path.startswith("file:"):
            raise InvalidArgumentError("the bundle store needs a real database file")
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise InvalidArgumentError(f"cannot open bundle store {path}: {e}") from None
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as e:
            conn.close()
            raise MalformedError(f"{path} is not a bundle store (SQLite says: {e})") from None
        if mode.lower() != "wal":
            conn.close()
            raise UnsupportedError(f"{path}: cannot switch the store to WAL mode ({mode})")
        if app_id == 0 and not tables:
            conn.executescript("BEGIN;" + _SCHEMA +
                               f"PRAGMA application_id={APPLICATION_ID};"
                               f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        elif app_id != APPLICATION_ID:
            conn.close()
            raise MalformedError(f"{path} is a SQLite database but not a betanet bundle store")
        elif version > SCHEMA_VERSION:
            conn.close()
            raise UnsupportedError(f"{path}: store schema {version} is newer than this code "
                                   f"({SCHEMA_VERSION})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # Checkpoints run in the writer thread; 4 MiB WAL pages before one is attempted.
        conn.execute("PRAGMA wal_autocheckpoint=1000")
        return conn

    def _load_counters(self) -> None:
        self._count = 0
        self._bytes = 0
        self._per_source: dict[str, list[int]] = {}
        for source, n, size in self._conn.execute(
                f"SELECT source, COUNT(*), COALESCE(SUM(size),0) FROM bundles "
                f"WHERE state IN {_LIVE_SQL} GROUP BY source"):
            self._per_source[source] = [n, size]
            self._count += n
            self._bytes += size

    def _account(self, source: str, n: int, size: int) -> None:
        self._count += n
        self._bytes += size
        entry = self._per_source.setdefault(source, [0, 0])
        entry[0] += n
        entry[1] += size
        if entry[0] <= 0:
            del self._per_source[source]

    # ---- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = next_batch(self._queue, self._max_batch)
            if batch:
                self._execute(batch)
        self._conn.close()

    def _execute(self, batch: list[_Op]) -> None:
        results: list[tuple[bool, Any]] = []
        writes = sum(op.writes for op in batch)
        try:
            if writes:
                self._conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                try:
                    results.append((True, op.fn(*op.args)))
                except BetanetError as e:  # refused before touching the database
                    results.append((False, e))
            if writes:
                self._conn.execute("COMMIT")  # fsync of the WAL: everything above is durable
                self.commits += 1
                self.writes += writes
        except Exception as e:  # sqlite3.Error (disk full, I/O) or a bug: nothing acknowledged
            log.error("bundle store %s: transaction failed: %s", self.path, e)
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._load_counters()
            err = BetanetError(f"bundle store write failed: {e}")
            results = [(False, err)] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for op, (ok, value) in zip(batch, results):
            by_loop.setdefault(op.loop, []).append((op.future, ok, value))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    async def _submit(self, fn: Callable, *args: Any, writes: int = 1) -> Any:
        if self._closed:
            raise StateError("bundle store is closed")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put(_Op(fn, args, loop, fut, writes))
        return await fut

    # ---- operations (run in the writer thread) -------------------------------------------
    def _check_quota(self, source: str, size: int) -> str | None:
        lim = self.limits
        if size > lim.max_bundle_bytes:
            return f"bundle of {size} bytes exceeds max_bundle_bytes {lim.max_bundle_bytes}"
        if lim.max_count is not None and self._count + 1 > lim.max_count:
            return f"store holds {self._count} bundles (max_count {lim.max_count})"
        if lim.max_bytes is not None and self._bytes + size > lim.max_bytes:
            return f"store holds {self._bytes} bytes (max_bytes {lim.max_bytes})"
        n, b = self._per_source.get(source, (0, 0))
        if lim.max_source_count is not None and n + 1 > lim.max_source_count:
            return f"source {source!r} holds {n} bundles (max_source_count {lim.max_source_count})"
        if lim.max_source_bytes is not None and b + size > lim.max_source_bytes:
            return f"source {source!r} holds {b} bytes (max_source_bytes {lim.max_source_bytes})"
        return None

    def _do_put(self, bundle_id: str, data: bytes, destination: str, source: str,
                expires_at: float, priority: int, state: int) -> bool:
        now = self._clock()
        if expires_at <= now:
            raise ExpiredError(f"bundle {bundle_id} expired at {expires_at} (now {now})")
        size = len(data)
        refusal = self._check_quota(source, size)
        if refusal is not None:
            if self._conn.execute("SELECT 1 FROM bundles WHERE id=?", (bundle_id,)).fetchone():
                return False  # a duplicate is never refused: it is already here
            raise LimitExceededError(f"bundle {bundle_id} refused: {refusal}")
        cur = self._conn.execute(
            f"INSERT OR IGNORE INTO bundles({_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
            (bundle_id, destination, source, priority, state, now, expires_at, size, data))
        if cur.rowcount == 0:
            return False
        self._account(source, 1, size)
        return True

    def _do_set_state(self, bundle_id: str, state: int, expires_at: float | None) -> bool:
        row = self._conn.execute("SELECT state, source, size FROM bundles WHERE id=?",
                                 (bundle_id,)).fetchone()
        if row is None:
            if state in (BundleState.DELIVERED, BundleState.DELETED):
                if expires_at is None:
                    raise InvalidArgumentError("expires_at is needed to remember an unstored bundle")
                self._conn.execute(
                    f"INSERT INTO bundles({_COLS}) VALUES (?,?,?,?,?,?,?,0,NULL)",
                    (bundle_id, "", "", 0, state, self._clock(), expires_at))
                return True
            raise StateError(f"bundle {bundle_id} is not in the store")
        old, source, size = row
        if old == state:
            return False
        if old not in _LIVE:
            if state in _LIVE:
                raise StateError(f"bundle {bundle_id} is already {BundleState(old).name.lower()}")
            self._conn.execute("UPDATE bundles SET state=? WHERE id=?", (state, bundle_id))
            return True
        if state in _LIVE:
            self._conn.execute("UPDATE bundles SET state=? WHERE id=?", (state, bundle_id))
        else:
            self._conn.execute("UPDATE bundles SET state=?, data=NULL, size=0 WHERE id=?",
                               (state, bundle_id))
            self._account(source, -1, -size)
        return True

    def _do_claim(self, destinations: tuple[str, ...] | None, limit: int,
                  claim: bool) -> list[StoredBundle]:
        now = self._clock()
        if destinations is None:
            rows = self._conn.execute(
                f"SELECT {_COLS} FROM bundles WHERE state={BundleState.STORED} AND expires_at>? "
                f"ORDER BY priority DESC, seq LIMIT ?", (now, limit)).fetchall()
        else:
            marks = ",".join("?" * len(destinations))
            rows = self._conn.execute(
                f"SELECT {_COLS} FROM bundles WHERE state={BundleState.STORED} "
                f"AND destination IN ({marks}) AND expires_at>? "
                f"ORDER BY priority DESC, seq LIMIT ?", (*destinations, now, limit)).fetchall()
        out = [_row(r) for r in rows]
        if claim and out:
            self._conn.executemany(f"UPDATE bundles SET state={BundleState.IN_TRANSFER} WHERE id=?",
                                   [(b.bundle_id,) for b in out])
            out = [StoredBundle(b.bundle_id, b.destination, b.source, b.priority,
                                BundleState.IN_TRANSFER, b.received_at, b.expires_at, b.size, b.data)
                   for b in out]
        return out

    def _do_purge(self) -> int:
        now = self._clock()
        live = self._conn.execute(
            f"SELECT source, COUNT(*), SUM(size) FROM bundles WHERE expires_at<=? "
            f"AND state IN {_LIVE_SQL} GROUP BY source", (now,)).fetchall()
        self._conn.execute("DELETE FROM bundles WHERE expires_at<=?", (now,))
        purged = 0
        for source, n, size in live:
            self._account(source, -n, -size)
            purged += n
        if purged:
            log.info("bundle store %s: purged %d expired bundles", self.path, purged)
        return purged

    def _do_remove(self, bundle_id: str) -> bool:
        row = self._conn.execute("SELECT state, source, size FROM bundles WHERE id=?",
                                 (bundle_id,)).fetchone()
        if row is None:
            return False
        self._conn.execute("DELETE FROM bundles WHERE id=?", (bundle_id,))
        if row[0] in _LIVE:
            self._account(row[1], -1, -row[2])
        return True

    def _do_get(self, bundle_id: str) -> StoredBundle | None:
        r = self._conn.execute(f"SELECT {_COLS} FROM bundles WHERE id=?", (bundle_id,)).fetchone()
        return None if r is None else _row(r)

    def _do_stats(self) -> StoreStats:
        by_state = {BundleState(s): n for s, n in
                    self._conn.execute("SELECT state, COUNT(*) FROM bundles GROUP BY state")}
        return StoreStats(self._count, self._bytes, by_state, self.commits, self.writes)

    def _do_ids(self, states: tuple[int, ...]) -> list[str]:
        marks = ",".join("?" * len(states))
        return [r[0] for r in self._conn.execute(
            f"SELECT id FROM bundles WHERE state IN ({marks}) ORDER BY seq", states)]

    # ---- public API -------------------------------------------------------------------
    async def put(self, bundle_id: str, data: bytes | bytearray | memoryview, *, destination: str,
                  source: str, expires_at: float, priority: Priority | int = Priority.NORMAL,
                  custody: bool = False) -> bool:
        """Store a bundle durably. Returns True when it was new, False for a duplicate (already
        stored, in custody, delivered or deleted). Returns only after the commit is on disk.

        Raises :class:`LimitExceededError` when a quota refuses it (nothing stored, nothing
        already stored touched), :class:`ExpiredError` when ``expires_at`` has passed.
        """
        if not isinstance(bundle_id, str) or not bundle_id:
            raise InvalidArgumentError("bundle_id must be a non-empty string")
        prio = Priority(priority)
        state = BundleState.CUSTODY if custody else BundleState.STORED
        return await self._submit(self._do_put, bundle_id, bytes(data), destination, source,
                                  float(expires_at), int(prio), int(state))

    async def get(self, bundle_id: str) -> StoredBundle | None:
        """The bundle (data is None once delivered or deleted), or None if never seen."""
        return await self._submit(self._do_get, bundle_id, writes=0)

    async def next_for(self, destination: str | Iterable[str] | None = None, *, limit: int = 64,
                       claim: bool = True) -> list[StoredBundle]:
        """Stored, unexpired bundles for ``destination`` (one EID, several, or None for all), in
        send order: priority class first (expedited, normal, bulk), then age. With ``claim``
        they move to IN_TRANSFER atomically, so another contact does not send them too; call
        :meth:`forwarded` after the next hop acknowledged, :meth:`release` if it did not."""
        if limit <= 0:
            raise InvalidArgumentError("limit must be positive")
        dests = None if destination is None else (
            (destination,) if isinstance(destination, str) else tuple(destination))
        if dests == ():
            return []
        return await self._submit(self._do_claim, dests, limit, claim, writes=1 if claim else 0)

    async def set_state(self, bundle_id: str, state: BundleState, *,
                        expires_at: float | None = None) -> bool:
        """Move a bundle to ``state``; True if it changed. DELIVERED and DELETED drop the data
        and keep the id (dedup until expiry); they may be set for a bundle never stored if
        ``expires_at`` is given."""
        return await self._submit(self._do_set_state, bundle_id, int(BundleState(state)), expires_at)

    async def release(self, bundle_id: str) -> bool:
        """A claimed transfer failed: the bundle is STORED again."""
        return await self.set_state(bundle_id, BundleState.STORED)

    async def take_custody(self, bundle_id: str) -> bool:
        return await self.set_state(bundle_id, BundleState.CUSTODY)

    async def forwarded(self, bundle_id: str) -> bool:
        """The next hop acknowledged the bundle: drop its data, keep its id."""
        return await self.set_state(bundle_id, BundleState.DELETED)

    async def mark_delivered(self, bundle_id: str, *, expires_at: float | None = None) -> bool:
        """Record delivery to a local application. True only the first time for this id, across
        restarts: the exactly-once gate for delivery."""
        return await self.set_state(bundle_id, BundleState.DELIVERED, expires_at=expires_at)

    async def delete(self, bundle_id: str) -> bool:
        return await self.set_state(bundle_id, BundleState.DELETED)

    async def remove(self, bundle_id: str) -> bool:
        """Forget a bundle entirely, its id too, so a copy that arrives again is new (one the
        local application refused). True if it was known."""
        return await self._submit(self._do_remove, bundle_id)

    async def purge_expired(self) -> int:
        """Remove every bundle (and dedup entry) whose lifetime has passed; returns how many live
        bundles were dropped."""
        return await self._submit(self._do_purge)

    async def ids(self, *states: BundleState) -> list[str]:
        """Ids of the bundles in the given states (all live states by default), oldest first."""
        return await self._submit(self._do_ids, tuple(int(s) for s in (states or _LIVE)), writes=0)

    async def stats(self) -> StoreStats:
        return await self._submit(self._do_stats, writes=0)

    async def close(self) -> None:
        """Finish queued requests, close the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    async def __aenter__(self) -> BundleStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
