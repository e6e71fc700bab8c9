"""The asyncio mixnode: a thin adapter around :class:`~betanet.mix.protocol.MixnodeProtocol`.

It moves frames between the transport and the protocol, runs Sphinx batches in worker
threads (``process_many`` releases the GIL), keeps one timer for the protocol's next
deadline, and sends what the protocol returns through bounded per-peer queues."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
from typing import Callable, Hashable

from betanet.mix.events import Deliver, Event, Forward, MessageReceived, Reply, SendPacket
from betanet.mix.protocol import MixnodeProtocol
from betanet.mix.routes import SYSTEM_RNG, RouteSelectorLike
from betanet.mix.sendq import SendQueues
from betanet.mix.transport import PacketTransport, TcpTransport
from betanet.mix.types import (FRAME_DELIVER, FRAME_PACKET, FRAME_REPLY, Address, Descriptor,
                               Directory, Message)
from betanet.sphinx import Geometry, KeyPair

log = logging.getLogger(__name__)

__all__ = ["Mixnode"]

_THREAD_BATCH = 8                      # a batch this large is worth a worker thread


class Mixnode:
    """An asyncio mixnode. ``on_message(Message)`` receives bodies delivered to this node's
    id (the local application); it may answer with :meth:`reply`. The transport's counters
    are the node's (``node.counters``). Limits: docs/limits.md ("Mixnode")."""

    def __init__(self, node_id: bytes, key: KeyPair, directory: Directory, *, epoch: int = 1,
                 geometry: Geometry = Geometry(), transport: PacketTransport | None = None,
                 on_message: Callable[[Message], None] | None = None,
                 selector: RouteSelectorLike | None = None, hops: int = 3,
                 mean_delay_ms: float = 50.0, max_delay_ms: float | None = None,
                 loop_rate: float = 0.0, queue_limit: int = 4096, held_limit: int = 16384,
                 batch_max: int = 256, replay_capacity: int = 1 << 18, as_group: int = 0,
                 workers: int = 0, out_queue_limit: int = 1024, out_total_limit: int = 8192,
                 rng: random.Random | None = None) -> None:
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.transport = transport or TcpTransport()
        self.counters = self.transport.counters
        self.protocol = MixnodeProtocol(
            node_id, key, directory, epoch=epoch, geometry=geometry, counters=self.counters,
            selector=selector, hops=hops, mean_delay_ms=mean_delay_ms, max_delay_ms=max_delay_ms,
            loop_rate=loop_rate, queue_limit=queue_limit, held_limit=held_limit,
            batch_max=batch_max, replay_capacity=replay_capacity, as_group=as_group)
        self.node_id, self.geometry, self.directory = node_id, geometry, directory
        self.on_message = on_message
        self.out = SendQueues(self.transport, directory, self.counters, out_queue_limit, out_total_limit)
        self.address: Address | None = None
        self._rng = rng or SYSTEM_RNG
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._timer: asyncio.TimerHandle | None = None
        # The node's own threads, so that close() can wait for a running batch before the
        # Sphinx node (and its keys) is freed under it.
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, "mixnode-sphinx")
        self._closed = False

    # Names older code reads on the node itself.
    key = property(lambda self: self.protocol.key)
    epoch = property(lambda self: self.protocol.epoch)
    sender = property(lambda self: self.protocol.routes)       # .as_group, .epoch, ...

    def descriptor(self) -> Descriptor:
        assert self.address is not None, "start() first"
        return Descriptor(self.node_id, self.address, self.key.public_key, self.sender.as_group,
                          self.transport.public_key, self.transport.kind, **self.transport.advertised())

    async def start(self) -> Address:
        self.address = await self.transport.start(self._on_frame)
        for _ in range(self.workers):
            self._spawn(self._worker())
        self._reschedule(0.0)
        log.info("mixnode %s listening on %s:%d", self.node_id.hex()[:12], *self.address)
        return self.address

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def rotate_key(self, epoch: int, key: KeyPair, keep_previous: int = 1) -> None:
        """Start key epoch ``epoch`` (see :meth:`MixnodeProtocol.rotate_key`)."""
        self.protocol.rotate_key(epoch, key, keep_previous)

    # -- frames in, events out
    def _on_frame(self, frame_type: int, data: bytes, link: Hashable = None) -> None:
        self._act(self.protocol.receive_frame(frame_type, data, self._now(), link))
        if self.protocol.queued:
            self._wake.set()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _worker(self) -> None:
        # Several workers share the queue, so that batches run on every core at once.
        loop = asyncio.get_running_loop()
        p = self.protocol
        while True:
            if not p.queued:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = p.take_batch()
            if p.queued:
                self._wake.set()          # more left: let another worker take a batch
            if len(batch) >= _THREAD_BATCH:
                results = await loop.run_in_executor(self._executor, p.process_batch, batch)
            else:
                results = p.process_batch(batch)
            if self._closed:
                return
            self._act(p.complete_batch(batch, results, self._now()))
            self._reschedule()

    def _tick(self) -> None:
        self._timer = None
        if not self._closed:
            self._act(self.protocol.tick(self._now(), self._rng))
            self._reschedule()

    def _reschedule(self, at: float | None = None) -> None:
        # One timer for the protocol's next deadline (not one per held packet).
        at = self.protocol.next_deadline() if at is None else at
        if at is None or self._closed:
            return
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(at, self._tick)

    def _act(self, events: list[Event]) -> None:
        out = self.out
        for e in events:
            if isinstance(e, Forward):
                out.push(e.next_node, FRAME_PACKET, e.packet, "forwarded")
            elif isinstance(e, Deliver):
                out.push(e.destination, FRAME_DELIVER, e.destination + e.body, "delivered",
                         "unknown-destination")
            elif isinstance(e, Reply):
                out.push(e.destination, FRAME_REPLY, e.destination + e.surb_id + e.payload,
                         "replies", "unknown-destination")
            elif isinstance(e, SendPacket):
                out.push(e.first_hop, FRAME_PACKET, e.packet, "sent")
            elif isinstance(e, MessageReceived) and self.on_message is not None:
                try:
                    self.on_message(e.message)
                except Exception:       # the application's bug must not take the node down
                    log.exception("on_message handler failed")

    # -- the local application
    async def reply(self, message: Message, data: bytes) -> None:
        """Answer a delivered message through its SURB (single use)."""
        p = self.protocol.reply(message, data)
        entry = self.directory.get(p.first_hop)
        if entry is None:
            self.counters.dropped["unknown-next-hop"] += 1
            return
        try:
            await self.transport.send_to(entry, FRAME_PACKET, p.packet)
            self.counters.sent += 1
        except OSError as exc:
            self.counters.dropped["send-failed"] += 1
            log.debug("reply to %s failed: %s", entry.address, exc)

    async def close(self) -> None:
        """Stop: cancel the timer and tasks, close links, wipe keys. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
        await self.out.close()
        await self.transport.close()
        self.protocol.close()
        log.info("mixnode %s stopped: %s", self.node_id.hex()[:12], self.counters.summary())

    async def __aenter__(self) -> Mixnode:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
