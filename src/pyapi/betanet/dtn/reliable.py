"""Delivery across dropped links: a sender that holds every bundle until the link's
acknowledgment and re-sends, in order, what a dropped link left unacknowledged.

:class:`ReliableSender` is the shared half of the TCPCLv4 client and the HTX link. A
subclass says how to open a link (``_open``) and which failures mean "send it again on the
next link" (``_retryable``); the link itself offers ``submit(data, on_done)`` (queue now,
``on_done(None)`` at its acknowledgment, ``on_done(exc)`` on refusal or loss), a ``closed``
``asyncio.Event``, ``close_reason`` and ``close()``.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from betanet.errors import BetanetError, InvalidArgumentError, StateError

__all__ = ["ReliableSender", "DeliveryError", "WAIT_MODES", "settle"]

log = logging.getLogger(__name__)

WAIT_MODES = ("acked", "queued")


class DeliveryError(StateError):
    """Bundles could not be delivered: the peer stayed unreachable, or the sender closed."""


def settle(fut: asyncio.Future, exc: BaseException | None) -> None:
    """Complete ``fut`` with ``exc`` (or None) unless it is already done."""
    if not fut.done():
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)


class _Item:
    """One bundle held until its acknowledgment."""
    __slots__ = ("data", "fut", "sent")

    def __init__(self, data: bytes, fut: asyncio.Future | None) -> None:
        self.data, self.fut, self.sent = data, fut, False


class ReliableSender:
    """Keeps one link to a peer open and every bundle until it is acknowledged. Up to
    ``window`` bundles and ``max_bytes`` bytes are held (one bundle larger than that is
    still taken when nothing else is held). A link that drops makes its unacknowledged bundles go out
    again, in order, on a new one (``retried``, ``retried_log``). A peer unreachable for
    ``attempts`` link openings in a row fails the waiting sends; bundles nobody waits for go
    to ``undelivered`` and :meth:`flush` raises — nothing is dropped silently."""

    closed_error: type[BetanetError] = DeliveryError

    def __init__(self, name: str, *, attempts: int = 5, backoff: float = 0.05,
                 max_backoff: float = 60.0, window: int = 256, max_bytes: int = 64 << 20) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self._bytes = 0
        self.attempts = attempts
        self.backoff, self.max_backoff = backoff, max_backoff
        self.window = max(1, window)
        self.conn: Any = None
        self._lock = asyncio.Lock()
        self.sessions_opened = 0
        self.retried = 0
        self.retried_log: list[str] = []
        self.undelivered: list[bytes] = []
        self._items: dict[int, _Item] = {}   # not yet acknowledged, in send order
        self._seq = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pump: asyncio.Task | None = None
        self._closing = False

    # ---- what a subclass provides ----------------------------------------------------------
    async def _open(self) -> Any:
        raise NotImplementedError

    def _retired(self, conn: Any) -> None:
        """A closed link is replaced (fold its counters into the totals)."""

    def _usable(self, conn: Any) -> bool:
        return not conn.closed.is_set()

    def _retryable(self, exc: BaseException) -> bool:
        raise NotImplementedError

    # ---- the queue ---------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Bundles queued or sent and not yet acknowledged."""
        return len(self._items)

    @property
    def in_flight_bytes(self) -> int:
        return self._bytes

    async def _session(self) -> Any:
        async with self._lock:
            if self.conn is None or self.conn.closed.is_set():
                if self.conn is not None:
                    self._retired(self.conn)
                    self.conn = None
                self.conn = await self._open()
                self.sessions_opened += 1
            return self.conn

    async def open(self) -> Any:
        """Open (or reopen) the link: a sender closed by :meth:`close` takes bundles again,
        because a convergence layer's contact closes and comes back (a scheduled window)."""
        self._closing = False
        return await self._session()

    def _up(self) -> Any:
        c = self.conn
        return c if c is not None and self._usable(c) else None

    def _submit(self, seq: int, item: _Item, conn: Any) -> BaseException | None:
        """Hand the bundle to the link. A link that is going away leaves it for the next
        one; a bundle the link refuses outright (too large for it) is dropped from the
        queue and the error returned for the caller to report."""
        item.sent = True
        try:
            conn.submit(item.data, functools.partial(self._done, seq, item))
        except Exception as e:
            item.sent = False
            if self._retryable(e):
                self._start_pump()
                return None
            self._forget(seq)
            self._changed()
            return e
        return None

    def _done(self, seq: int, item: _Item, exc: BaseException | None) -> None:
        if self._items.get(seq) is not item:
            return
        if exc is not None and not self._closing and self._retryable(exc):
            item.sent = False  # not acknowledged on that link: again, on the next
            self.retried += 1
            note = f"{len(item.data)}-byte bundle not acknowledged ({exc})"
            self.retried_log.append(note)
            log.info("%s: %s; retrying", self.name, note)
            self._start_pump()
            return
        self._forget(seq)
        if item.fut is not None:
            settle(item.fut, exc)
        elif exc is not None:
            log.warning("%s: bundle refused: %s", self.name, exc)
            self.undelivered.append(item.data)
        self._changed()

    def _forget(self, seq: int) -> _Item:
        item = self._items.pop(seq)
        self._bytes -= len(item.data)
        return item

    def _full(self) -> bool:
        return len(self._items) >= self.window or (bool(self._items) and self._bytes >= self.max_bytes)

    def _changed(self) -> None:
        if not self._full():
            self._room.set()
        if not self._items:
            self._idle.set()

    def _start_pump(self) -> None:
        if not self._closing and (self._pump is None or self._pump.done()):
            self._pump = asyncio.create_task(self._run_pump(), name=f"{self.name} pump")

    async def _run_pump(self) -> None:
        """(Re)open the link and send every bundle not on it, in order; back off while the
        peer is unreachable and give up after ``attempts`` failed openings in a row."""
        delay, failures = self.backoff, 0
        while not self._closing:
            unsent = [(seq, it) for seq, it in self._items.items() if not it.sent]
            if not unsent:
                return
            if self.conn is not None and self.conn.closed.is_set():
                await asyncio.sleep(delay)  # the link just dropped: let the peer recover
            try:
                conn = await self._session()
            except (ConnectionError, OSError, asyncio.TimeoutError, BetanetError) as e:
                failures += 1
                self.retried_log.append(f"link {failures} to {self.name} failed: {e}")
                if failures >= self.attempts:
                    self._give_up(e)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            for seq, it in unsent:
                if conn.closed.is_set():
                    break
                if self._items.get(seq) is it and not it.sent:
                    err = self._submit(seq, it, conn)
                    if err is not None:
                        log.warning("%s: bundle not sendable: %s", self.name, err)
                        if it.fut is not None:
                            settle(it.fut, err)
                        else:
                            self.undelivered.append(it.data)
            if not conn.closed.is_set():
                failures, delay = 0, self.backoff
            else:
                failures += 1
                if failures >= self.attempts:
                    self._give_up(self.closed_error(conn.close_reason))
                    return
                delay = min(delay * 2, self.max_backoff)

    def _give_up(self, why: BaseException) -> None:
        err = self.closed_error(f"bundle not delivered after {self.attempts} sessions: {why}")
        for seq, it in list(self._items.items()):
            if it.sent:
                continue
            self._forget(seq)
            if it.fut is not None:
                settle(it.fut, err)
            else:
                self.undelivered.append(it.data)
        log.warning("%s: %s", self.name, err)
        self._changed()

    async def send(self, data: bytes | bytearray | memoryview, *, wait: str = "acked") -> None:
        """Send one bundle. ``wait="acked"`` returns at its acknowledgment (across links);
        ``wait="queued"`` returns once the sender holds it (waiting while ``window`` bundles
        are unacknowledged) — :meth:`flush` then waits for all of them."""
        if wait not in WAIT_MODES:
            raise InvalidArgumentError(f"wait must be one of {WAIT_MODES}, not {wait!r}")
        if self._closing:
            raise StateError(f"{self.name}: sender closed")
        while not self._room.is_set():
            await self._room.wait()
        fut = asyncio.get_running_loop().create_future() if wait == "acked" else None
        seq = self._seq
        self._seq += 1
        item = _Item(bytes(data), fut)
        self._items[seq] = item
        self._bytes += len(item.data)
        self._idle.clear()
        if self._full():
            self._room.clear()
        conn = self._up()
        if conn is not None and (self._pump is None or self._pump.done()):
            err = self._submit(seq, item, conn)
            if err is not None:
                raise err
        else:
            self._start_pump()
        if fut is not None:
            await fut

    async def send_bundle(self, data: bytes) -> None:
        """Send one bundle; returns when the peer acknowledged all of it."""
        await self.send(data, wait="acked")

    async def flush(self) -> None:
        """Wait until every bundle sent so far is acknowledged; raises
        :class:`DeliveryError` (the subclass's ``closed_error``) if some could not be
        delivered (see ``undelivered``)."""
        while self._items:
            await self._idle.wait()
        if self.undelivered:
            raise self.closed_error(f"{len(self.undelivered)} bundles not delivered to "
                                    f"{self.name}")

    async def close(self) -> None:
        """Close the link now (no flush); bundles still held fail their waiting sends and
        the rest go to ``undelivered``."""
        self._closing = True
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self.conn is not None:
            await self.conn.close()
        err = self.closed_error(f"{self.name}: sender closed")
        for seq, it in list(self._items.items()):
            self._forget(seq)
            if it.fut is not None:
                settle(it.fut, err)
            else:
                self.undelivered.append(it.data)
        self._changed()
