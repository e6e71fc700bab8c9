"""Coalescing of the node's outgoing traffic: messages (and acknowledgments) for one
destination travel together in one batch envelope (docs/node.md "Batching").

A :class:`Lane` holds what waits for one destination. It has no timer: what is queued
leaves at the next turn of the event loop, in as few batches as the size budget allows,
while at most ``max_inflight`` batches are on their way; whatever arrives meanwhile waits
for one of them to finish and then leaves together. A lone message on an idle node is
therefore never delayed, and a busy destination gets big batches (the same shape as the
stores' group commit).

The outbox keeps a message unsealed (it is sealed when it leaves, so one seal covers a
batch) as an *outbox record*::

    0x00 | created_ms:u64 | expires_ms:u64 | body

Rows written by earlier versions hold the version-1 sealed message itself (first byte
0x01); they are sent as they are.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, TypeVar

from betanet.errors import MalformedError
from betanet.node.envelope import ENTRY_OVERHEAD

__all__ = ["Lane", "Pending", "pack_record", "unpack_record"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_RECORD = struct.Struct(">BQQ")
_UNSEALED = 0


def pack_record(created_ms: int, expires_ms: int, body: bytes) -> bytes:
    return _RECORD.pack(_UNSEALED, created_ms, expires_ms) + body


def unpack_record(record: bytes) -> tuple[int, int, bytes] | None:
    """(created_ms, expires_ms, body) of an outbox record; None for a legacy sealed row."""
    if record[:1] != bytes([_UNSEALED]):
        return None
    if len(record) < _RECORD.size:
        raise MalformedError("outbox record too short")
    _, created, expires = _RECORD.unpack_from(record)
    return created, expires, bytes(record[_RECORD.size:])


@dataclass
class Pending:
    """An accepted message on its way out (the outbox row, in memory while it travels)."""
    mid: bytes
    dest: str
    seq: int
    topic: str
    created_ms: int
    expires_ms: int
    body: bytes | None          # None: ``sealed`` holds a legacy version-1 sealed message
    sealed: bytes | None = None
    single: bool = False        # send alone in a version-1 envelope (a retransmission)

    @property
    def size(self) -> int:
        return (len(self.body if self.body is not None else self.sealed) + len(self.topic.encode())
                + ENTRY_OVERHEAD)


class Lane(Generic[T]):
    """Items for one destination, sent in batches by ``send(batch)``; ``take(queue)``
    removes and returns the next batch from the queue (at least one item)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[None]],
                 take: Callable[[deque], list[T]], max_inflight: int,
                 on_idle: Callable[[], None] | None = None) -> None:
        self._send, self._take, self.max_inflight = send, take, max_inflight
        self._on_idle = on_idle
        self.items: deque[T] = deque()
        self.tasks: set[asyncio.Task] = set()
        self._scheduled = False

    def put(self, item: T) -> None:
        self.items.append(item)
        if not self._scheduled:
            # everything queued in this turn of the loop goes out together
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        self._scheduled = False
        while self.items and len(self.tasks) < self.max_inflight:
            t = asyncio.ensure_future(self._send(self._take(self.items)))
            self.tasks.add(t)
            t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task) -> None:
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.warning("node send lane: %s", t.exception())
        if t.cancelled():
            return
        self._kick()
        if not self.items and not self.tasks and self._on_idle is not None:
            self._on_idle()

    def cancel(self) -> list[asyncio.Task]:
        self.items.clear()
        for t in self.tasks:
            t.cancel()
        return list(self.tasks)

    @property
    def busy(self) -> int:
        return len(self.items) + len(self.tasks)
