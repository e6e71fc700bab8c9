"""Inbox mixin of :class:`~betanet.node.node.Node`: received messages to the application.

The dispatcher takes ready messages from the store (in order per sender) and gives each to
its topic's handler or to ``messages()``; ``Received.ack`` / the handler's return / the next
iteration mark it consumed (docs/node.md "Receiving: the acknowledgment contract"). A mixin
because receiving.py wakes the dispatcher (``_inbox_wake``) when new messages commit.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any, AsyncIterator, Awaitable, Callable

from betanet._log import escape
from betanet.errors import StateError
from betanet.node.handles import Received
from betanet.node.store import Incoming

__all__ = ["Inbox"]

log = logging.getLogger(__name__)


class Inbox:
    def on(self, topic: str, handler: Callable[[Received], Awaitable[None]]) -> None:
        """Messages of ``topic`` go to ``await handler(message)`` instead of ``messages()``.
        The message is acknowledged when the handler returns (or raises: logged, not retried)
        unless the handler called ``await message.ack(effect)`` itself; that mark joins the
        next group commit (at least once across a crash, as ``messages()``)."""
        self._handlers[topic] = handler

    def _received(self, m: Incoming) -> Received:
        return Received(m.sender, m.topic, m.body, m.msg_id, m.seq, self._consume)

    async def _consume(self, msg_id: bytes, effect=None) -> bool:
        ok = await self.store.mark_delivered(msg_id, effect)
        self._queued.discard(msg_id)
        self.count("messages_consumed" if ok else "consume_repeated")
        return ok

    async def transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(conn)`` in one transaction of the node's store (the application's own tables,
        e.g. to create them or read what ``ack`` effects wrote)."""
        if self.store is None:
            raise StateError("node is not running")
        return await self.store.transaction(fn)

    async def _dispatch_loop(self) -> None:
        """Ready messages to their handler or ``messages()``, each once per run, in the order
        they became ready (so in order per sender). What the store held ready at start is
        read from it; what becomes ready afterwards comes from the store's log of committed
        rows (``watch_ready``: no read per message). Ready numbers only grow, so ``_ready_hi``
        (the last one dispatched) tells what was already given."""
        self.store.watch_ready(self._inbox_wake.set)
        # a new start gives again what was not consumed, from the store: nothing of an
        # earlier run stays queued in memory (it would come twice)
        self._ready_hi = 0
        self._queued.clear()
        while not self._app_queue.empty():
            self._app_queue.get_nowait()
        scan = True
        while True:
            try:
                if scan:
                    rows = await self.store.ready(256, after=self._ready_hi)
                    scan = len(rows) == 256
                else:
                    rows = self.store.take_ready()
                    if not rows:
                        self._inbox_wake.clear()
                        rows = self.store.take_ready()      # published before the clear
                        if not rows:
                            await self._inbox_wake.wait()
                            continue
                for m in rows:
                    if m.ready <= self._ready_hi:
                        continue                # read at start and also in the log
                    self._ready_hi = m.ready
                    self._queued.add(m.msg_id)
                    h = self._handlers.get(m.topic)
                    if h is None:
                        self._app_queue.put_nowait(m)
                        continue
                    try:
                        await h(self._received(m))
                    except Exception as e:
                        log.warning("handler for topic %s failed: %s", escape(m.topic), e)
                    if m.msg_id in self._queued:      # the handler did not ack it itself
                        self._queued.discard(m.msg_id)
                        # deferred, as messages(): joins the next group commit, the next
                        # handler call does not wait one fsync for this one
                        self.store.mark_delivered_later(m.msg_id)
                        self.count("messages_consumed")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("node dispatch: %s", e)
                scan = True
                await asyncio.sleep(0.1)

    async def messages(self, *, manual_ack: bool = False) -> AsyncIterator[Received]:
        """Messages in order per sender.

        ``manual_ack=False``: each message is marked consumed when the consumer asks for the
        next one (or leaves the loop) — at least once across a crash: one taken but not yet
        marked comes again after a restart.
        ``manual_ack=True``: a message is consumed only by ``await m.ack(effect)``; one not
        acknowledged is given again after the next start (never twice in one run). With the
        application's writes in ``effect``, they happen exactly once."""
        while True:
            m = await self._app_queue.get()
            if manual_ack:
                yield self._received(m)
                continue
            try:
                yield self._received(m)
            finally:
                if m.msg_id in self._queued:     # the consumer did not ack it itself
                    self._queued.discard(m.msg_id)
                    # deferred: joins the next group commit, the consumer does not wait for it
                    self.store.mark_delivered_later(m.msg_id)
                    self.count("messages_consumed")
