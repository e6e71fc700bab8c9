"""What the node gives the application: a :class:`DeliveryHandle` per message sent (the
routes tried as :class:`Attempt` s, progress, the awaitable end-to-end acknowledgment) and a
:class:`Received` per message delivered (``ack`` consumes it in the node's store).

Plain data with no reference to the node: the node fills a handle in as the message
travels, and binds a ``Received`` to its store through one callable, so these can be
imported, built and tested without a running node.
"""
from __future__ import annotations

import asyncio
import math
import sqlite3
import weakref
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

from betanet.errors import StateError

__all__ = ["Attempt", "DeliveryHandle", "Received", "acked_all"]


@dataclass
class Attempt:
    route: list[str]
    transports: list[str]
    outcome: str               # "ok", "failed: ...", "stored"
    at: float


class _Waiter:
    """One wait on one or more handles (``acked``, ``acked_all``): a single future and a
    count, settled by the handles directly — no task, callback or timer per handle."""
    __slots__ = ("fut", "left")

    def __init__(self, fut: asyncio.Future, left: int) -> None:
        self.fut, self.left = fut, left

    def settled(self, ok: bool, value: Any) -> None:
        if self.fut.done():
            return
        if not ok:
            self.fut.set_exception(value)         # the first failure ends the wait
            return
        self.left -= 1
        if self.left == 0:
            self.fut.set_result(None)


def _time_out(fut: asyncio.Future, n: int) -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError(f"{n} message(s) not acknowledged in time"))


TIMER_STEP_S = 0.01     # waits ending in the same 10 ms share one loop timer


class _Timeouts:
    """Shared timers of one event loop for ``acked(timeout)``: the end of a wait is rounded
    up to the next TIMER_STEP_S, and all waits ending in that step share one loop timer
    (N concurrent ``send`` + ``acked(t)`` calls cost a set insertion each, not a timer each;
    a timeout fires up to 10 ms late, never early)."""
    _per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Timeouts]" = \
        weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.steps: dict[int, tuple[set, asyncio.TimerHandle]] = {}

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> "_Timeouts":
        t = cls._per_loop.get(loop)
        if t is None:
            t = cls._per_loop[loop] = cls(loop)
        return t

    def add(self, fut: asyncio.Future, n: int, timeout: float) -> int:
        step = math.ceil((self.loop.time() + timeout) / TIMER_STEP_S)
        entry = self.steps.get(step)
        if entry is None:
            entry = self.steps[step] = (set(), self.loop.call_at(step * TIMER_STEP_S, self._fire, step))
        entry[0].add((fut, n))
        return step

    def discard(self, step: int, fut: asyncio.Future, n: int) -> None:
        entry = self.steps.get(step)
        if entry is not None:
            entry[0].discard((fut, n))
            if not entry[0]:
                entry[1].cancel()
                del self.steps[step]

    def _fire(self, step: int) -> None:
        entry = self.steps.pop(step, None)
        for fut, n in entry[0] if entry is not None else ():
            _time_out(fut, n)


@dataclass(slots=True)
class DeliveryHandle:
    """What ``Node.send`` returns: the message id, the routes tried and the transports that
    carried it, the policy applied, and ``await handle.acked()`` for the end-to-end ack
    (``await acked_all(handles)`` for many)."""
    message_id: bytes
    destination: str
    qos: str
    policy: str                       # "normal" or "energy (battery)" / "energy (thermal)"
    attempts: list[Attempt] = field(default_factory=list)
    chunks_total: int = 0        # frames of the latest attempt (1 when the message is not chunked)
    chunks_sent: int = 0         # of them taken by the next hop (HTX: its link ack; mesh: on the
    #                              air; dtn: committed as bundles)
    _t0: float = 0.0             # loop time of the send (acked() returns seconds since)
    # (True, seconds) once acknowledged, (False, exception) once failed; None before
    _outcome: tuple[bool, Any] | None = field(default=None, repr=False)
    _waiters: list[_Waiter] | None = field(default=None, repr=False)
    _changed: asyncio.Event | None = field(default=None, repr=False)   # made by progress_updates

    def _settle(self, ok: bool, value: Any) -> bool:
        """The node's verdict: acknowledged after ``value`` seconds (``ok``) or failed with
        the exception ``value``. Only the first counts; False for a later one."""
        if self._outcome is not None:
            return False
        self._outcome = (ok, value)
        if self._waiters is not None:
            for w in self._waiters:
                w.settled(ok, value)
            self._waiters = None
        if self._changed is not None:
            self._changed.set()
        return True

    def _chunk(self, sent: int, total: int) -> None:
        self.chunks_sent, self.chunks_total = sent, total
        if self._changed is not None:
            self._changed.set()

    @property
    def progress(self) -> dict:
        """``{"chunks_sent", "chunks_total", "acked"}`` of the latest attempt."""
        return {"chunks_sent": self.chunks_sent, "chunks_total": self.chunks_total,
                "acked": self.is_acked}

    async def progress_updates(self) -> AsyncIterator[dict]:
        """``progress`` now and after each change, until acknowledged or failed."""
        if self._changed is None:
            self._changed = asyncio.Event()
        while True:
            self._changed.clear()
            yield self.progress
            if self._outcome is not None:
                return
            await self._changed.wait()

    @property
    def route(self) -> list[str] | None:
        ok = [a for a in self.attempts if a.outcome in ("ok", "custody")]
        return ok[-1].route if ok else None

    @property
    def transports(self) -> list[str]:
        """Transports used, in order (``dtn`` when the message waited in the store)."""
        out: list[str] = []
        for a in self.attempts:
            if a.outcome in ("ok", "stored", "custody"):
                for t in a.transports:
                    if not out or out[-1] != t:
                        out.append(t)
        return out

    @property
    def fallbacks(self) -> int:
        return sum(1 for a in self.attempts if a.outcome.startswith("failed"))

    async def acked(self, timeout: float | None = None) -> float:
        """Wait for the end-to-end acknowledgment; returns seconds since the send. Raises
        ``ExpiredError`` when the message failed, ``asyncio.TimeoutError`` after ``timeout``
        seconds (the message itself goes on; wait again if you like)."""
        o = self._outcome
        if o is None:
            await _wait((self,), timeout)
            o = self._outcome
        if not o[0]:
            raise o[1]
        return o[1]

    @property
    def is_acked(self) -> bool:
        return self._outcome is not None and self._outcome[0]


async def _wait(pending: Iterable[DeliveryHandle], timeout: float | None) -> None:
    """Until every handle in ``pending`` (all unsettled) is acknowledged, one failed (its
    exception), or ``timeout`` passed (asyncio.TimeoutError). Cancelling the caller cancels
    the wait, never the messages."""
    pending = list(pending)
    loop = asyncio.get_running_loop()
    w = _Waiter(loop.create_future(), len(pending))
    for h in pending:
        if h._waiters is None:
            h._waiters = [w]
        else:
            h._waiters.append(w)
    if timeout is not None:
        timeouts = _Timeouts.of(loop)
        step = timeouts.add(w.fut, len(pending), timeout)
    ok = False
    try:
        await w.fut
        ok = True
    finally:
        if timeout is not None:
            timeouts.discard(step, w.fut, len(pending))
        if not ok:                                 # timed out, failed or cancelled: unhook
            for h in pending:
                if h._waiters is not None and w in h._waiters:
                    h._waiters.remove(w)


async def acked_all(handles: Iterable[DeliveryHandle], timeout: float | None = None) -> list[float]:
    """Wait for the end-to-end acknowledgments of many messages at once (e.g. the handles of
    one ``send_many``): the seconds from each send to its acknowledgment, in order. One
    future and one timer for the whole group, where ``gather`` of ``acked()`` costs a task,
    a future and a timer per message. Raises the ``ExpiredError`` of the first message that
    fails (at once, as ``gather``), or ``asyncio.TimeoutError`` after ``timeout`` seconds
    with some still unacknowledged (see each ``is_acked``; the messages themselves go on)."""
    handles = handles if isinstance(handles, (list, tuple)) else list(handles)
    pending = []
    for h in handles:
        o = h._outcome
        if o is None:
            pending.append(h)
        elif not o[0]:
            raise o[1]
    if pending:
        await _wait(pending, timeout)
    out = []
    for h in handles:
        ok, value = h._outcome
        if not ok:
            raise value
        out.append(value)
    return out


@dataclass(frozen=True, slots=True)
class Received:
    """A message for the application. ``await m.ack(effect)`` marks it consumed in the node's
    store; ``effect(conn)`` — the application's own writes to its tables in that SQLite file
    — commits in the same transaction, so it happens exactly once even across ``kill -9``
    (docs/node.md "Receiving: the acknowledgment contract")."""
    sender: str
    topic: str
    body: bytes
    message_id: bytes
    seq: int
    _consume: Callable[..., Awaitable[bool]] | None = field(default=None, repr=False, compare=False)

    async def ack(self, effect: Callable[[sqlite3.Connection], Any] | None = None) -> bool:
        """Consume the message: True for the call that did, False if it was already consumed
        (then ``effect`` does not run). ``effect`` must not commit or roll back; if it raises,
        nothing is marked and the exception propagates."""
        if self._consume is None:
            raise StateError("this message is not bound to a node")
        return await self._consume(self.message_id, effect)
