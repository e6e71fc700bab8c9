"""Receiving mixin of :class:`~betanet.node.node.Node`: frames from the links.

A frame is reassembled into a sealed envelope; one for this node is opened (signature
checked), its acknowledgments settle our outbox and handles, its messages go to the inbox in
one commit (exactly once, by message id; flood-limited per sender) and are acknowledged end
to end — many ids in one sealed ack, through a lane per sender. A frame for another peer is
relayed: custody in the bundle agent or the bundle store, forwarded on contact. A mixin for
the same reason as the others: acknowledgments resolve the sender side's handles and retry
state, kept on the node (``Node.__init__``).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import deque
from functools import partial

from betanet._log import escape
from betanet.errors import AuthenticationError, LimitExceededError, MalformedError
from betanet.node import envelope as env
from betanet.node.batcher import Lane
from betanet.node.links import Taken
from betanet.node.store import ACKED

__all__ = ["Receiving", "RELAY_LIFETIME_S", "FLOOD_RATE", "FLOOD_BURST"]

log = logging.getLogger(__name__)

RELAY_LIFETIME_S = 24 * 3600
FLOOD_RATE = 200.0            # envelopes per second accepted from one sender (token bucket)
FLOOD_BURST = 1000


class _Bucket:
    def __init__(self) -> None:
        self.tokens, self.at = float(FLOOD_BURST), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(FLOOD_BURST, self.tokens + (now - self.at) * FLOOD_RATE)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True



class Receiving:
    async def _on_frame(self, frame: bytes) -> Taken:
        """A node frame from a link: TAKEN once it is safely taken (acknowledged per hop),
        REFUSED when it may be taken later, DROPPED when it never can be (links.Taken)."""
        try:
            sealed = self._assembler.feed(frame)
        except (MalformedError, LimitExceededError) as e:
            self.count("dropped_malformed")
            log.debug("dropped frame: %s", escape(e))
            return Taken.DROPPED
        if sealed is None:
            return Taken.TAKEN
        try:
            dest = env.recipient_of(sealed)
        except MalformedError:
            self.count("dropped_malformed")
            return Taken.DROPPED
        if dest != self.me:
            kept = await self._relay(dest, bytes(sealed))     # kept: a copy of the view
            return Taken.TAKEN if kept else Taken.REFUSED
        try:
            msgs = env.open_any(self.identity, sealed)
        except (AuthenticationError, MalformedError) as e:
            self.count("dropped_" + ("auth" if isinstance(e, AuthenticationError) else "malformed"))
            log.info("dropped message: %s", escape(e))
            return Taken.DROPPED
        first = msgs[0]
        if sealed[0] in env.BATCH_VERSIONS:
            # it reads batches, of the version it sends (an older node sends and reads only 2)
            self._v2_peers[first.sender] = sealed[0]
            self._v2_peers.move_to_end(first.sender)
            while len(self._v2_peers) > 4096:
                self._v2_peers.popitem(last=False)
        acked = [m.body[i:i + 16] for m in msgs if m.kind == env.ACK for i in range(0, len(m.body), 16)]
        if acked:
            await self._on_acks(first.sender, acked)
        data = [m for m in msgs if m.kind == env.DATA]
        if not data:
            return Taken.TAKEN
        b = self._buckets.get(first.sender)
        if b is None:
            b = self._buckets[first.sender] = _Bucket()
            while len(self._buckets) > 4096:
                self._buckets.popitem(last=False)
        if not b.take():            # one token per envelope: what costs us X25519 + a verify
            self.count("dropped_flood", len(data))
            return Taken.REFUSED
        now_ms = time.time() * 1000
        fresh = [m for m in data if not (m.expires_ms and m.expires_ms < now_ms)]
        if len(fresh) < len(data):
            self.count("dropped_expired", len(data) - len(fresh))
        if not fresh:
            return Taken.TAKEN
        outcomes = await self.store.accept_incoming_many(
            [(m.message_id, m.sender, m.seq, m.topic, m.body) for m in fresh])
        taken, refused = [], 0
        for m, outcome in zip(fresh, outcomes):
            if isinstance(outcome, LimitExceededError):
                refused += 1
                continue
            self.count("messages_received" if outcome == "new" else "duplicates_received")
            if outcome == "new":
                self._inbox_wake.set()
            taken.append(m.message_id)
        if refused:
            self.count("dropped_inbox_full", refused)
            log.info("inbox refused %d message(s) from %s", refused, first.sender)
        if taken:
            self._queue_acks(first, taken)
        # refused: the sender sends again (the taken ones are duplicates then)
        return Taken.REFUSED if refused else Taken.TAKEN

    def _queue_acks(self, m: env.Message, ids: list[bytes]) -> None:
        lane = self._ack_lanes.get(m.sender)
        if lane is None:
            lane = self._ack_lanes[m.sender] = Lane(
                partial(self._send_acks, m.sender, m.sender_signing, m.sender_exchange),
                partial(self._take_acks, m.sender), 2,
                on_idle=lambda: self._ack_lanes.pop(m.sender, None))
        for mid in ids:
            lane.put(mid)

    def _take_acks(self, sender: str, q: deque) -> list[bytes]:
        n = 1 if sender not in self._v2_peers else max(1, (self._budget() - env.ENTRY_OVERHEAD) // 16)
        return [q.popleft() for _ in range(min(n, len(q)))]

    async def _send_acks(self, sender: str, signing: bytes, exchange: bytes, ids: list[bytes]) -> None:
        """One sealed end-to-end acknowledgment for ``ids``: a version-2 batch with one ACK
        entry naming them all to a peer that sends batches, else (or for one id) version 1."""
        if sender not in self.peers:
            self.count("ack_unroutable", len(ids))
            return
        if len(ids) > 1 and sender in self._v2_peers:
            sealed = env.seal_batch(self.identity, signing, exchange,
                                    [env.Entry(secrets.token_bytes(16), b"".join(ids), kind=env.ACK)],
                                    version=self._batch_version(sender))
        else:
            sealed = env.seal(self.identity, signing, exchange, ids[0], kind=env.ACK)
        ok = await self._route_and_send(sender, sealed, None, None, None, [])
        if not ok:      # no route back: the acknowledgment travels as a bundle too
            key = b"ack" + hashlib.sha256(b"".join(ids)).digest()[:16]
            ok = await self._to_dtn(sender, sealed, time.time() + RELAY_LIFETIME_S, key) is not None
        self.count("acks_sent" if ok else "acks_unsent", len(ids))

    async def _on_acks(self, sender: str, ids: list[bytes]) -> None:
        outcomes = await self.store.finish_outgoing_many(ids, ACKED, sender)
        now = time.monotonic()
        for mid, outcome in zip(ids, outcomes):
            if outcome == "stray":
                self.count("dropped_stray_ack")
                continue
            if outcome == "done":
                self.count("messages_acked")
            h = self._handles.pop(mid, None)
            if h is not None:
                h._settle(True, now - h._t0)
            self._last_try.pop(mid, None)
            self._bundled.pop(mid, None)

    async def _relay(self, dest: str, sealed: bytes) -> bool:
        """Custody of a frame for another peer: stored durably, then forwarded."""
        bid = hashlib.sha256(sealed).hexdigest()
        if self._link("dtn") is not None:         # custody in the bundle agent
            got = await self._to_dtn(dest, sealed, time.time() + RELAY_LIFETIME_S, bid.encode())
            if got is not None:
                self.count("relay_custody")
            return got is not None
        try:
            await self.store.bundles.put(bid, sealed, destination=dest, source="relay",
                                         expires_at=time.time() + RELAY_LIFETIME_S)
        except LimitExceededError:
            self.count("dropped_relay_full")
            return False
        self.count("relay_custody")
        self._contact.set()
        return True

    async def _relay_loop(self) -> None:
        interval = self.config["routing"]["retry_interval_ms"] / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                bundles = self.store.bundles
                reach = set().union(*(link.reaches() for link in self.links)) if self.links else set()
                if not reach:
                    continue
                for b in await bundles.next_for(sorted(reach), limit=64):
                    ok = await self._route_and_send(b.destination, b.data, None, None, None, [])
                    if ok:
                        await bundles.forwarded(b.bundle_id)
                        self.count("relay_forwarded")
                    else:
                        await bundles.release(b.bundle_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("node relay loop: %s", e)
