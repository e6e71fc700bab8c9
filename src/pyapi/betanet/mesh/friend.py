"""Friendship for low-power nodes (the Bluetooth Mesh "friend" feature, over BitChat packets).

A low-power node (LPN) sleeps most of the time and does not relay. A powered neighbour,
its friend, keeps a bounded queue of every frame it accepts while the LPN is away; when
the LPN wakes it sends a signed FRIEND_POLL (type 0x61, a Betanet type BitChat peers
ignore, directed to the friend, TTL 1) and the friend sends the queued frames again,
unchanged (their signatures stay valid; neighbours drop them as duplicates). The first
poll establishes the friendship. Nothing is lost while the queue has room; when it is
full the oldest frame goes and `dropped` counts it. Advertised as capability bit 33.
"""
from __future__ import annotations

from collections import OrderedDict, deque

FRIEND_POLL = 0x61
QUEUE_FRAMES = 256
MAX_FRIENDS = 8


class FriendQueues:
    """The friend side: one bounded queue per low-power node."""

    def __init__(self, max_friends: int = MAX_FRIENDS, queue_frames: int = QUEUE_FRAMES) -> None:
        self.max_friends, self.queue_frames = max_friends, queue_frames
        self.queues: OrderedDict[bytes, deque[bytes]] = OrderedDict()
        self.dropped = 0
        self.refused = 0

    def store(self, frame: bytes, sender: bytes) -> None:
        for lpn, q in self.queues.items():
            if lpn == sender:
                continue
            if len(q) == q.maxlen:
                self.dropped += 1
            q.append(frame)

    def poll(self, lpn: bytes) -> list[bytes]:
        """The frames to hand over (and forget); [] with `refused` counted when full."""
        q = self.queues.get(lpn)
        if q is None:
            if len(self.queues) >= self.max_friends:
                self.refused += 1
                return []
            self.queues[lpn] = deque(maxlen=self.queue_frames)
            return []
        out = list(q)
        q.clear()
        return out
