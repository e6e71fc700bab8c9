"""What the node gives the application: a :class:`DeliveryHandle` per message sent (the
routes tried as :class:`Attempt` s, progress, the awaitable end-to-end acknowledgment) and a
:class:`Received` per message delivered (``ack`` consumes it in the node's store).

Plain data with no reference to the node: the node fills a handle in as the message
travels, and binds a ``Received`` to its store through one callable, so these can be
imported, built and tested without a running node.
"""
from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from betanet.errors import StateError

__all__ = ["Attempt", "DeliveryHandle", "Received"]


@dataclass
class Attempt:
    route: list[str]
    transports: list[str]
    outcome: str               # "ok", "failed: ...", "stored"
    at: float


@dataclass
class DeliveryHandle:
    """What ``Node.send`` returns: the message id, the routes tried and the transports that
    carried it, the policy applied, and ``await handle.acked()`` for the end-to-end ack."""
    message_id: bytes
    destination: str
    qos: str
    policy: str                       # "normal" or "energy (battery)" / "energy (thermal)"
    attempts: list[Attempt] = field(default_factory=list)
    _done: asyncio.Future | None = None
    chunks_total: int = 0        # frames of the latest attempt (1 when the message is not chunked)
    chunks_sent: int = 0         # of them taken by the next hop (HTX: its link ack; mesh: on the
    #                              air; dtn: committed as bundles)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _t0: float = 0.0             # loop time of the send (acked() returns seconds since)

    def _chunk(self, sent: int, total: int) -> None:
        self.chunks_sent, self.chunks_total = sent, total
        self._changed.set()

    @property
    def progress(self) -> dict:
        """``{"chunks_sent", "chunks_total", "acked"}`` of the latest attempt."""
        return {"chunks_sent": self.chunks_sent, "chunks_total": self.chunks_total,
                "acked": self.is_acked}

    async def progress_updates(self) -> AsyncIterator[dict]:
        """``progress`` now and after each change, until acknowledged or failed."""
        while True:
            self._changed.clear()
            yield self.progress
            if self._done.done():
                return
            waiter = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({waiter, self._done}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

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
        """Wait for the end-to-end acknowledgment; returns seconds since the send."""
        if self._done.done():
            return self._done.result()
        if timeout is None:
            return await asyncio.shield(self._done)
        return await asyncio.wait_for(asyncio.shield(self._done), timeout)

    @property
    def is_acked(self) -> bool:
        return self._done.done() and not self._done.cancelled() and self._done.exception() is None


@dataclass(frozen=True)
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
