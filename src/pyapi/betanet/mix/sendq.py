"""Outgoing frames of an asyncio mix endpoint: one bounded FIFO per peer and at most one
sender task per peer with frames queued — never a task per packet. A full queue drops the
frame (``out-queue-full``): a stalled next hop costs at most ``per_peer_limit`` frames,
and all peers together at most ``total_limit``."""
from __future__ import annotations

import asyncio
import collections
import logging

from betanet.mix.transport import PacketTransport
from betanet.mix.types import Directory, MixCounters

log = logging.getLogger(__name__)

__all__ = ["SendQueues"]


class SendQueues:
    def __init__(self, transport: PacketTransport, directory: Directory, counters: MixCounters,
                 per_peer_limit: int = 1024, total_limit: int = 8192) -> None:
        self.transport, self.directory, self.counters = transport, directory, counters
        self.per_peer_limit, self.total_limit = per_peer_limit, total_limit
        self._queues: dict[bytes, collections.deque] = {}
        self._tasks: dict[bytes, asyncio.Task] = {}
        self.pending = 0

    def push(self, peer_id: bytes, frame_type: int, data: bytes, counter: str,
             unknown: str = "unknown-next-hop") -> bool:
        """Queue a frame for ``peer_id``; on success ``counters.<counter>`` is incremented,
        on failure a drop reason (``unknown``, ``out-queue-full``, ``send-failed``)."""
        entry = self.directory.get(peer_id)
        if entry is None:
            self.counters.dropped[unknown] += 1
            return False
        q = self._queues.get(peer_id)
        if self.pending >= self.total_limit or (q is not None and len(q) >= self.per_peer_limit):
            self.counters.dropped["out-queue-full"] += 1
            return False
        if q is None:
            q = self._queues[peer_id] = collections.deque()
        q.append((entry, frame_type, data, counter))
        self.pending += 1
        if peer_id not in self._tasks:
            self._tasks[peer_id] = asyncio.ensure_future(self._drain(peer_id, q))
        return True

    async def _drain(self, peer_id: bytes, q: collections.deque) -> None:
        try:
            while q:
                entry, frame_type, data, counter = q.popleft()
                self.pending -= 1
                try:
                    await self.transport.send_to(entry, frame_type, data)
                    setattr(self.counters, counter, getattr(self.counters, counter) + 1)
                except OSError as exc:
                    self.counters.dropped["send-failed"] += 1
                    log.debug("send to %s failed: %s", entry.address, exc)
        finally:
            self.pending -= len(q)
            q.clear()
            self._queues.pop(peer_id, None)
            self._tasks.pop(peer_id, None)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
