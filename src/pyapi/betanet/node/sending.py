"""Sending mixin of :class:`~betanet.node.node.Node`: the outbox side.

``send``/``send_many`` commit messages to the outbox and queue them in a coalescing lane per
(destination, QoS, privacy budget) (batcher.py); a lane's batch is sealed once — version 1
alone, a batch envelope for several — and carried by the routing mixin (routing.py); with no
route it goes to a custodian or, message by message, to the bundle agent, else it waits for a
contact. The retry loop re-queues what was not acknowledged in time and fails what passed its
deadline. A mixin because the handles, lanes and retry times it keeps are also read and
cleared by the receive side (acknowledgments); ``Node.__init__`` creates them.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from functools import partial
from typing import Iterable

from betanet._check import byte_buffer
from betanet.errors import ExpiredError, InvalidArgumentError, LimitExceededError, StateError
from betanet.navigator import PRESETS, QoS
from betanet.node import envelope as env
from betanet.node.batcher import Lane, Pending, pack_record, unpack_record
from betanet.node.handles import Attempt, DeliveryHandle, acked_all
from betanet.node.store import FAILED

__all__ = ["Sending", "MAX_INFLIGHT_BATCHES", "V1_ONLY_S", "LONE_HASHED_MIN"]

log = logging.getLogger(__name__)

MAX_INFLIGHT_BATCHES = 8      # per destination lane; more queued messages wait and coalesce
V1_ONLY_S = 60.0              # a peer that did not take a batch gets version-1 envelopes this long
LONE_HASHED_MIN = 4096        # a lone message this large goes as a version-3 batch of one


class Sending:
    async def send(self, destination: str, data, *, qos: QoS | str | None = None,
                   deadline_ms: int | None = None, privacy_budget: float | None = None,
                   topic: str = "") -> DeliveryHandle:
        return (await self.send_many(destination, [data], qos=qos, deadline_ms=deadline_ms,
                                     privacy_budget=privacy_budget, topic=topic))[0]

    async def send_many(self, destination: str, messages: Iterable, *,
                        qos: QoS | str | None = None, deadline_ms: int | None = None,
                        privacy_budget: float | None = None,
                        topic: str = "") -> list[DeliveryHandle]:
        """``send`` for several messages to one destination: one outbox commit, handles in
        order (sequence numbers consecutive)."""
        if not self.running:
            raise StateError("node is not running")
        limit = self.config["application"]["max_message_bytes"]
        bodies = []
        for data in messages:
            data = bytes(byte_buffer(data, "data"))
            if len(data) > limit:
                raise LimitExceededError(f"message of {len(data)} bytes exceeds application.max_message_bytes {limit}")
            bodies.append(data)
        self.peers.get(destination)
        if len(topic.encode()) > 255:
            raise InvalidArgumentError(f"topic is {len(topic.encode())} bytes; at most 255")
        if isinstance(qos, str) and qos not in PRESETS:
            raise InvalidArgumentError(f"unknown QoS preset {qos!r}; choose from {', '.join(PRESETS)}")
        if deadline_ms is None:
            deadline_ms = self.config["routing"]["deadline_ms"]
        if isinstance(deadline_ms, bool) or not isinstance(deadline_ms, (int, float)) or deadline_ms <= 0:
            raise InvalidArgumentError(f"deadline_ms must be a positive number, got {deadline_ms!r}")
        if not bodies:
            return []
        eff, policy = self._effective_qos(qos)
        now_ms = int(time.time() * 1000)
        expires_ms = now_ms + int(deadline_ms)
        qname = eff if isinstance(eff, str) else "custom"
        n = len(bodies)
        mids = self._new_ids(n)
        head = pack_record(now_ms, expires_ms, b"")
        seq = await self.store.add_outgoing_batch(destination, qname, topic, expires_ms / 1000,
                                                  mids, [head + body for body in bodies])
        t0 = time.monotonic()
        handles = [DeliveryHandle(mid, destination, qname, policy, _t0=t0) for mid in mids]
        self._handles.update(zip(mids, handles))
        self._enqueue_many([Pending(mid, destination, seq + i, topic, now_ms, expires_ms, body)
                            for i, (mid, body) in enumerate(zip(mids, bodies))],
                           eff, privacy_budget)
        self.count("messages_accepted", n)
        return handles

    #: ``await node.acked_all(handles, timeout)``: the bulk form of ``handle.acked()``
    #: (handles.acked_all: one future and one timer for the whole group).
    acked_all = staticmethod(acked_all)

    def _new_ids(self, n: int) -> list[bytes]:
        """``n`` fresh random message ids, cut from one ``secrets`` draw per 256 (a draw is a
        system call, and every system call lets the store threads take the GIL)."""
        pool = self._id_pool
        if len(pool) < 16 * n:
            pool += secrets.token_bytes(16 * max(n, 256))
        self._id_pool = pool[16 * n:]
        return [pool[i:i + 16] for i in range(0, 16 * n, 16)]

    def _enqueue(self, p: Pending, qos, privacy_budget) -> None:
        self._enqueue_many([p], qos, privacy_budget)

    def _enqueue_many(self, ps: list[Pending], qos, privacy_budget) -> None:
        """Queue messages to one destination in its lane."""
        dest = ps[0].dest
        key = (dest, qos, privacy_budget)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(partial(self._send_batch, dest, qos, privacy_budget),
                                           self._take, MAX_INFLIGHT_BATCHES,
                                           on_idle=lambda: self._lanes.pop(key, None))
        now = time.monotonic()
        for p in ps:
            self._outgoing.add(p.mid)
            self._last_try[p.mid] = now
            lane.put(p)

    def _v1_only(self, dest: str) -> bool:
        return dest not in self._v2_peers and self._v1_until.get(dest, 0) > time.monotonic()

    def _budget(self) -> int:
        return self.config["transport"]["chunk_size"] - env.BATCH_OVERHEAD - 1

    def _take(self, q: deque) -> list[Pending]:
        """The next batch: messages in queue order up to the chunk size (at least one);
        retransmissions, legacy rows and peers that read only version 1 go alone."""
        first = q.popleft()
        if first.single or first.body is None or self._v1_only(first.dest):
            return [first]
        batch, room = [first], self._budget() - first.size
        while q and len(batch) < env.MAX_BATCH:
            p = q[0]
            if p.single or p.body is None or p.size > room:
                break
            batch.append(q.popleft())
            room -= p.size
        return batch

    async def _send_batch(self, dest: str, qos, privacy_budget, batch: list[Pending]) -> None:
        try:
            now_ms = time.time() * 1000
            live = []
            for p in batch:
                self._last_try[p.mid] = time.monotonic()
                if p.expires_ms <= now_ms:
                    await self._fail(p.mid, "deadline passed before a route reached the destination")
                else:
                    live.append(p)
            if not live:
                return
            handles = [h for h in (self._handles.get(p.mid) for p in live) if h is not None]
            rec = self.peers.find(dest)
            batched = False
            if live[0].body is None:
                sealed = live[0].sealed
            elif rec is None:
                sealed = None
            elif len(live) == 1 and self._lone_v1(live[0]):
                sealed = self._seal_one(rec, live[0])
            else:
                batched = True
                sealed = env.seal_batch(self.identity, rec.signing_public, rec.exchange_public,
                                        [env.Entry(p.mid, p.body, p.seq, env.DATA, p.topic,
                                                   p.created_ms, p.expires_ms) for p in live],
                                        version=self._batch_version(dest))
                self.count("batches_sent")
            remaining_ms = min(p.expires_ms for p in live) - now_ms
            ok = sealed is not None and await self._route_and_send(dest, sealed, qos, remaining_ms,
                                                                   privacy_budget, handles)
            if not ok and sealed is not None:
                ok = await self._to_custodian(dest, sealed, handles)
            bundled: set[bytes] = set()
            if not ok:
                if batched and dest not in self._v2_peers:
                    # maybe a peer that reads only version 1: the retries go one by one
                    self._v1_until[dest] = time.monotonic() + V1_ONLY_S
                if rec is not None or live[0].body is None:
                    bundled = await self._bundle_each(dest, rec, live, None if batched else sealed)
                for h in handles:
                    if h.message_id in bundled:
                        continue
                    if not h.attempts or h.attempts[-1].outcome != "stored":
                        h.attempts.append(Attempt([self.me], ["dtn"], "stored", time.time()))
                        self.count("stored_for_contact")
        finally:
            for p in batch:
                self._outgoing.discard(p.mid)

    def _seal_one(self, rec, p: Pending) -> bytes:
        """``p`` alone in a version-1 envelope (what every peer and relay reads)."""
        return env.seal(self.identity, rec.signing_public, rec.exchange_public, p.body,
                        message_id=p.mid, seq=p.seq, topic=p.topic, created_ms=p.created_ms,
                        expires_ms=p.expires_ms)

    def _lone_v1(self, p: Pending) -> bool:
        """A message leaving alone goes in version 1 (6 bytes shorter than a batch of one)
        unless it is large and the peer reads batches: version 1 signs the whole body
        (hashed by Ed25519 with SHA-512, twice to sign), a version-3 batch a SHA-256 of it."""
        return (p.single or len(p.body) < LONE_HASHED_MIN or self._v1_only(p.dest)
                or self._batch_version(p.dest) != env.HASHED_BATCH_VERSION)

    def _batch_version(self, dest: str) -> int:
        """Version 3 unless the peer sent us only version-2 batches (an older node)."""
        return self._v2_peers.get(dest) or env.HASHED_BATCH_VERSION

    async def _bundle_each(self, dest: str, rec, live: list[Pending], sealed: bytes | None) -> set[bytes]:
        """No route and no custodian: each message in its own version-1 envelope as custody
        bundles through the bundle agent (which tracks, re-offers and acknowledges messages one
        by one). The ids handed to it (now or earlier)."""
        if self._link("dtn") is None:
            return set()
        handed = set()
        for p in live:
            if sealed is not None and len(live) == 1:
                one = sealed
            elif p.body is None:
                one = p.sealed
            else:
                one = self._seal_one(rec, p)
            h = self._handles.get(p.mid)
            got = await self._to_dtn(dest, one, p.expires_ms / 1000, p.mid, h)
            if got is None:
                continue
            handed.add(p.mid)
            if got == "new" and h is not None:
                h.attempts.append(Attempt([self.me, dest], ["dtn"], "custody", time.time()))
        return handed

    async def _fail(self, mid: bytes, reason: str) -> None:
        if await self.store.finish_outgoing(mid, FAILED, reason):
            self.count("messages_expired")
        h = self._handles.pop(mid, None)
        self._last_try.pop(mid, None)
        if h is not None:
            h._settle(False, ExpiredError(f"message {mid.hex()} to {h.destination}: {reason}"))

    async def _retry_loop(self) -> None:
        r = self.config["routing"]
        interval, ack_timeout = r["retry_interval_ms"] / 1000, r["ack_timeout_ms"] / 1000
        started = time.monotonic()
        while True:
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._contact.wait(), interval)
                contact = self._contact.is_set()
                self._contact.clear()
                now = time.monotonic()
                due, again = [], set()
                # a message accepted within the last interval is on its way (or, after a
                # restart, waits one interval more): not scanned, so a bulk sender's
                # fresh messages do not make every pass O(outbox). Unless a message waits
                # for a contact (or this run just began: rows of the last one), one
                # accepted within ack_timeout can only be due by its deadline: the scan
                # reads only those rows (the store filters; no Python per message)
                waiting_any = contact or now - started < ack_timeout + interval or any(
                    h.attempts and h.attempts[-1].outcome == "stored" for h in self._handles.values())
                young = interval if waiting_any else max(interval, ack_timeout)
                for mid, _dest, _qos, expires in await self.store.pending_brief(
                        time.time() - young, expiring_before=time.time()):
                    if mid in self._outgoing:
                        continue
                    if expires <= time.time():
                        await self._fail(mid, "deadline passed before a route reached the destination")
                        continue
                    last = self._last_try.get(mid)
                    h = self._handles.get(mid)
                    waiting = h is not None and h.attempts and h.attempts[-1].outcome == "stored"
                    if last is None or now - last >= ack_timeout or (contact and waiting) \
                            or (waiting and now - last >= interval):
                        if last is not None:
                            self.count("retransmissions")
                            if not waiting:
                                # no acknowledgment: alone and in version 1, which any
                                # relay and receiver reads
                                again.add(mid)
                        due.append(mid)
                for o in await self.store.get_outgoing_many(due) if due else []:
                    if o.msg_id in self._outgoing or o.sealed is None:
                        continue
                    rec = unpack_record(o.sealed)
                    p = (Pending(o.msg_id, o.dest, o.seq, o.topic, rec[0], rec[1], rec[2],
                                 single=o.msg_id in again) if rec is not None else
                         Pending(o.msg_id, o.dest, o.seq, o.topic, int(o.created * 1000),
                                 int(o.expires * 1000), None, sealed=o.sealed))
                    self._enqueue(p, o.qos if o.qos in PRESETS else None, None)
                await self.store.skip_gaps(r["reorder_timeout_ms"] / 1000)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("node retry loop: %s", e)
