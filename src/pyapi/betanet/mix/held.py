"""Packets a mixnode holds for their delay: a bounded store shared fairly between links.

Every kind of held packet (relay, deliver, reply) counts toward one ``limit``. When the
store is full, a packet from a link holding fewer packets than the largest holder evicts
that holder's newest packet (max-min fairness): a link flooding the store cannot starve
the others; it only competes with itself. Sans-IO: times are given by the caller."""
from __future__ import annotations

import heapq
import itertools
from typing import Hashable, Iterator

__all__ = ["HeldPackets", "ADMITTED", "EVICTED_OTHER", "REFUSED"]

ADMITTED, EVICTED_OTHER, REFUSED = "admitted", "evicted", "refused"


class _Entry:
    __slots__ = ("due", "seq", "item", "link", "alive")

    def __init__(self, due: float, seq: int, item: object, link: Hashable) -> None:
        self.due, self.seq, self.item, self.link, self.alive = due, seq, item, link, True

    def __lt__(self, other: _Entry) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class HeldPackets:
    """A time-ordered, bounded, per-link-fair store of held items."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            from betanet.errors import InvalidArgumentError
            raise InvalidArgumentError("held limit must be at least 1")
        self.limit = limit
        self._heap: list[_Entry] = []
        self._by_link: dict[Hashable, dict[int, _Entry]] = {}
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def held_by(self, link: Hashable) -> int:
        return len(self._by_link.get(link, ()))

    def add(self, due: float, item: object, link: Hashable = None) -> str:
        """Hold ``item`` until ``due``: ADMITTED, EVICTED_OTHER (admitted in place of the
        largest holder's newest item) or REFUSED (full, and ``link`` already holds as much
        as anyone)."""
        result = ADMITTED
        if self._live >= self.limit:
            victim = max(self._by_link, key=lambda k: len(self._by_link[k]))
            if len(self._by_link[victim]) <= self.held_by(link) + 1:
                return REFUSED
            self._evict(victim)
            result = EVICTED_OTHER
        e = _Entry(due, next(self._seq), item, link)
        heapq.heappush(self._heap, e)
        self._by_link.setdefault(link, {})[e.seq] = e
        self._live += 1
        return result

    def _evict(self, link: Hashable) -> None:
        entries = self._by_link[link]
        _, e = entries.popitem()           # the newest: it would have been held the longest
        if not entries:
            del self._by_link[link]
        e.alive, e.item = False, None
        self._live -= 1
        if len(self._heap) > 2 * self.limit:      # dead entries: compact
            self._heap = [x for x in self._heap if x.alive]
            heapq.heapify(self._heap)

    def next_due(self) -> float | None:
        while self._heap and not self._heap[0].alive:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: float) -> Iterator[object]:
        """Remove and yield every item due at ``now``, earliest first."""
        while True:
            due = self.next_due()
            if due is None or due > now:
                return
            e = heapq.heappop(self._heap)
            entries = self._by_link[e.link]
            del entries[e.seq]
            if not entries:
                del self._by_link[e.link]
            self._live -= 1
            yield e.item

    def clear(self) -> None:
        self._heap.clear()
        self._by_link.clear()
        self._live = 0
