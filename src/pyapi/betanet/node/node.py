"""``Node``: one identity, every link, adaptive send with fallback, exactly-once receive.

Send path (docs/node.md "Fallback policy"):

1. ``await node.send(dest, data, qos=, deadline_ms=, privacy_budget=, topic=)`` commits the
   message to the outbox (durable) before returning a :class:`DeliveryHandle`
   (``send_many`` does it for several messages in one commit). Messages queued for one
   destination while earlier ones are on their way leave together, sealed and signed once
   in a batch envelope (batcher.py; a lone message leaves at once); the receiver commits
   a batch in one transaction and acknowledges many messages in one sealed ack.
2. The Navigator, fed with every link's live measurements, gives the Pareto frontier of
   routes for the QoS; the node tries them best first. A route fails when its hop
   acknowledgment does not come within ``routing.hop_timeout_ms`` or its link is down; the
   node then takes the next route of the frontier (a *fallback*, counted).
3. When no route reaches the destination now, the message waits in the store ("dtn" in
   the handle's transports) and leaves when a link to the destination comes up (a
   contact), or when the retry timer finds one, until its deadline; past the deadline the
   handle's ``acked`` raises :class:`ExpiredError` saying why.
4. Without an end-to-end acknowledgment within ``routing.ack_timeout_ms`` it is sent
   again (the receiver drops duplicates by message id and acknowledges again).
Battery below ``platform.battery_threshold`` (not charging) or temperature above
``platform.thermal_limit`` switches the QoS to ``routing.energy_qos``; the handle says so.

Frames for another peer (this node is a relay, e.g. a DTN custodian): forwarded at once
when a route exists, else put in the bundle store (custody: committed before the hop
acknowledgment) and forwarded on contact.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import sqlite3
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

from betanet._check import byte_buffer
from betanet._log import escape
from betanet.errors import (AuthenticationError, BetanetError, ExpiredError, InvalidArgumentError,
                            LimitExceededError, MalformedError, NoPathError, NotFoundError,
                            StateError)
from betanet.navigator import PRESETS, Navigator, QoS
from betanet.node import envelope as env
from betanet.node.batcher import Lane, Pending, pack_record, unpack_record
from betanet.node.config import defaults
from betanet.node.identity import Identity
from betanet.node.links import LinkError
from betanet.node.peers import PeerBook, PeerRecord
from betanet.node.power import NoPowerSource, PowerSource, constrained
from betanet.node.store import ACKED, FAILED, Incoming, NodeStore

__all__ = ["Node", "DeliveryHandle", "Received"]

log = logging.getLogger(__name__)

RELAY_LIFETIME_S = 24 * 3600
FLOOD_RATE = 200.0            # envelopes per second accepted from one sender (token bucket)
FLOOD_BURST = 1000
MAX_INFLIGHT_BATCHES = 8      # per destination lane; more queued messages wait and coalesce
V1_ONLY_S = 60.0              # a peer that did not take a batch gets version-1 envelopes this long


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
    _t0: float = 0.0

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


class Node:
    def __init__(self, identity: Identity, store_path: str | os.PathLike, *,
                 config: dict | None = None, links: list | None = None,
                 power: PowerSource | None = None, record_seq: int | None = None) -> None:
        self.identity = identity
        self.me = identity.peer_id_text
        self.config = config or defaults()
        self.peers = PeerBook()
        self.links = list(links or [])
        self.power = power or NoPowerSource()
        self.store_path = os.fspath(store_path)
        self.store: NodeStore | None = None
        self.nav = Navigator(self.me)
        a = self.config["application"]
        self._assembler = env.Assembler(max_bytes=4 * a["max_message_bytes"] + (1 << 20))
        self._handles: dict[bytes, DeliveryHandle] = {}
        self._lanes: dict[tuple, Lane] = {}           # (dest, qos, privacy budget) -> messages
        self._ack_lanes: dict[str, Lane] = {}         # sender -> ids to acknowledge
        self._outgoing: set[bytes] = set()            # queued or in flight in a lane
        self._last_try: dict[bytes, float] = {}
        self._v2_peers: OrderedDict[str, None] = OrderedDict()   # sent us a batch: reads them
        self._v1_until: dict[str, float] = {}
        self._handlers: dict[str, Callable[[Received], Awaitable[None]]] = {}
        self._inbox_wake = asyncio.Event()
        self._contact = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._queued: set[bytes] = set()
        self._app_queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self._bundled: OrderedDict[bytes, float] = OrderedDict()    # handed to the DTN link
        self._record_seq = record_seq if record_seq is not None else int(time.time() * 1000)
        self.counters: dict[str, int] = {}
        self.events: list[tuple[float, str]] = []     # recent fallbacks and policy switches
        self._policy = "normal"
        self.running = False

    # ---- lifecycle ----------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    async def start(self) -> None:
        a = self.config["application"]
        self.store = NodeStore(self.store_path, inbox_limit=a["inbox_limit"],
                               max_pending_per_sender=a["max_pending_per_sender"])
        for link in self.links:
            link.on_frame = self._on_frame
            link.on_change = self._on_change
            await link.open()
        rec = self.record()
        for link in self.links:                # mesh discovery announces our record's hash
            if hasattr(link, "set_record"):
                link.set_record(rec)
        self.running = True
        for coro in (self._retry_loop(), self._dispatch_loop(), self._relay_loop()):
            self._tasks.append(asyncio.ensure_future(coro))
        log.info("node %s started (%d links)", self.me, len(self.links))

    async def stop(self) -> None:
        self.running = False
        tasks = list(self._tasks)
        for lane in list(self._lanes.values()) + list(self._ack_lanes.values()):
            tasks += lane.cancel()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        for link in self.links:
            with contextlib.suppress(Exception):
                await link.close()
        if self.store:
            await self.store.close()

    async def __aenter__(self) -> "Node":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def record(self) -> PeerRecord:
        """Our signed peer record with the endpoints our links listen on."""
        tcp, quic, ble, web = [], [], None, {}
        host = self.config["transport"].get("advertise_host") or ""
        for link in self.links:
            if getattr(link, "port", 0):
                h = host or link.listen.rpartition(":")[0]
                (tcp if link.transport == "htx" else quic).append(f"{h}:{link.port}")
                if link.transport == "htx":
                    web = link.advertised()          # htx-web: ticket line and SPKI pin
            if link.transport == "ble":
                ble = link.router.me
        dtn = self._link("dtn")
        eids = [str(dtn.node_id)] if dtn is not None else [f"dtn://{self.me}/"]
        return PeerRecord.create(self.identity, self._record_seq, htx_tcp=tcp, htx_quic=quic,
                                 dtn_eids=eids, ble_id=ble, **web)

    def add_peer(self, record: bytes | PeerRecord) -> PeerRecord:
        rec = self.peers.add(record)
        self._contact.set()
        return rec

    # ---- routing ------------------------------------------------------------------------
    def _link(self, transport: str):
        for link in self.links:
            if link.transport == transport:
                return link
        return None

    def _sync_navigator(self) -> None:
        """Links' current reach and measurements into the Navigator."""
        for link in self.links:
            reach = link.reaches()
            for rec in self.peers:
                if rec.peer == self.me:
                    continue
                if rec.peer in reach:
                    self.nav.observe(self.me, rec.peer, link.transport, **link.measure(rec.peer))
                else:
                    with contextlib.suppress(BetanetError):
                        self.nav.remove_link(self.me, rec.peer, link.transport)

    def _effective_qos(self, qos) -> tuple[QoS | str, str]:
        p = self.config["platform"]
        why = constrained(self.power.read(), p["battery_threshold"], p["thermal_limit"])
        policy = "normal" if why is None else f"energy ({why})"
        if policy != self._policy:
            self.events.append((time.time(), f"policy {self._policy} -> {policy}"))
            del self.events[:-100]
            log.info("routing policy: %s", policy)
            self._policy = policy
        if why is not None:
            return self.config["routing"]["energy_qos"], policy
        return (self.config["routing"]["qos"] if qos is None else qos), policy

    def routes(self, dest: str, qos=None, deadline_ms: float | None = None,
               privacy_budget: float | None = None) -> list:
        self._sync_navigator()
        try:
            self.nav.node_id(dest)
            return self.nav.frontier(dest, qos, deadline_ms=deadline_ms, privacy_budget=privacy_budget)
        except (NoPathError, NotFoundError):
            return []

    def _on_change(self, peer: str, up: bool) -> None:
        self.count("link_up" if up else "link_down")
        if up:
            self._contact.set()

    # ---- sending ------------------------------------------------------------------------
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
        mids = [secrets.token_bytes(16) for _ in bodies]
        rows = [(mid, destination, qname, topic, expires_ms / 1000,
                 partial(lambda body, _seq: pack_record(now_ms, expires_ms, body), body))
                for mid, body in zip(mids, bodies)]
        seqs = await self.store.add_outgoing_many(rows)
        loop, t0 = asyncio.get_running_loop(), time.monotonic()
        handles = []
        for mid, body, seq in zip(mids, bodies, seqs):
            handle = DeliveryHandle(mid, destination, qname, policy, _done=loop.create_future(), _t0=t0)
            self._handles[mid] = handle
            handles.append(handle)
            self._enqueue(Pending(mid, destination, seq, topic, now_ms, expires_ms, body), eff,
                          privacy_budget)
        self.count("messages_accepted", len(bodies))
        return handles

    def _enqueue(self, p: Pending, qos, privacy_budget) -> None:
        key = (p.dest, qos, privacy_budget)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(partial(self._send_batch, p.dest, qos, privacy_budget),
                                           self._take, MAX_INFLIGHT_BATCHES,
                                           on_idle=lambda: self._lanes.pop(key, None))
        self._outgoing.add(p.mid)
        self._last_try[p.mid] = time.monotonic()
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
            elif len(live) == 1:
                # alone: version 1 (what every peer reads, and 6 bytes shorter than a batch of one)
                p = live[0]
                sealed = env.seal(self.identity, rec.signing_public, rec.exchange_public, p.body,
                                  message_id=p.mid, seq=p.seq, topic=p.topic,
                                  created_ms=p.created_ms, expires_ms=p.expires_ms)
            else:
                batched = True
                sealed = env.seal_batch(self.identity, rec.signing_public, rec.exchange_public,
                                        [env.Entry(p.mid, p.body, p.seq, env.DATA, p.topic,
                                                   p.created_ms, p.expires_ms) for p in live])
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
                one = env.seal(self.identity, rec.signing_public, rec.exchange_public, p.body,
                               message_id=p.mid, seq=p.seq, topic=p.topic,
                               created_ms=p.created_ms, expires_ms=p.expires_ms)
            h = self._handles.get(p.mid)
            got = await self._to_dtn(dest, one, p.expires_ms / 1000, p.mid, h)
            if got is None:
                continue
            handed.add(p.mid)
            if got == "new" and h is not None:
                h.attempts.append(Attempt([self.me, dest], ["dtn"], "custody", time.time()))
        return handed

    def _frames(self, sealed: bytes, transport: str, dest: str) -> list[bytes]:
        t = self.config["transport"]
        link = self._link(transport)
        loss = link.measure(dest).get("failure", 0.0) if link else 0.0
        parity = t["fec_parity"] if loss > t["fec_loss_threshold"] else 0
        chunk = t["chunk_size"]
        if link is not None and getattr(link, "max_frame", None):
            chunk = min(chunk, link.max_frame - 16)      # room for the chunk header
        return env.frames_for(sealed, chunk, parity)

    async def _to_custodian(self, dest: str, sealed: bytes, handles: list[DeliveryHandle]) -> bool:
        """No route to ``dest``: hand the message to a reachable DTN custodian (config
        ``network.custodians``), which stores it and forwards it on its own contact."""
        for c in self.config["network"].get("custodians", []):
            if c in (dest, self.me) or c not in self.peers:
                continue
            rs = self.routes(c)
            if not rs:
                continue
            if await self._route_and_send(c, sealed, None, None, None, []):
                self.count("custody_handoffs")
                a = Attempt([self.me, c, dest], [rs[0].transport, "dtn"], "custody", time.time())
                for h in handles:
                    h.attempts.append(a)
                return True
        return False

    async def _to_dtn(self, dest: str, sealed: bytes, expires: float, key: bytes,
                      handle: DeliveryHandle | None = None) -> str | None:
        """No route and no custodian: the frames as custody bundles through the bundle agent
        (link_dtn.py), once per ``transport.dtn_resend_ms`` for one message. "new", "held"
        (handed earlier) or None (no DTN link, or it refused)."""
        link = self._link("dtn")
        if link is None:
            return None
        last = self._bundled.get(key)
        if last is not None and time.monotonic() - last < link.resend_s:
            return "held"
        try:
            frames = self._frames(sealed, "dtn", dest)
            for i, f in enumerate(frames):
                await link.bundle(dest, f, expires)
                if handle is not None:
                    handle._chunk(i + 1, len(frames))
        except LinkError as e:
            self.count("send_failed_dtn")
            log.info("bundle agent: %s", e)
            return None
        self._bundled[key] = time.monotonic()
        self._bundled.move_to_end(key)
        while len(self._bundled) > 100_000:
            self._bundled.popitem(last=False)
        self.count("sent_dtn")
        return "new"

    async def _route_and_send(self, dest: str, sealed: bytes, qos, deadline_ms, privacy_budget,
                              handles: list[DeliveryHandle]) -> bool:
        hop_timeout = self.config["routing"]["hop_timeout_ms"] / 1000
        tried = 0
        for r in self.routes(dest, qos, deadline_ms, privacy_budget):
            link = self._link(r.transport)
            if link is None:
                continue
            if tried:
                self.count("fallbacks")
                self.events.append((time.time(), f"fallback to {r.transport} for {dest}"))
                del self.events[:-100]
            tried += 1
            try:
                frames = self._frames(sealed, r.transport, dest)
                n = len(frames)
                for h in handles:
                    h._chunk(0, n)
                sent = 0

                async def one(f: bytes) -> None:
                    nonlocal sent
                    await link.send(r.next_hop, f, hop_timeout)
                    sent += 1
                    for h in handles:
                        h._chunk(sent, n)
                if n > 1 and getattr(link, "pipelined", False):
                    # chunks of one message in flight together, not one hop round trip each
                    errs = [e for e in await asyncio.gather(*(one(f) for f in frames),
                                                            return_exceptions=True)
                            if isinstance(e, BaseException)]
                    if errs:
                        raise errs[0]
                else:
                    for f in frames:
                        await one(f)
            except (LinkError, LimitExceededError) as e:
                self.count(f"send_failed_{r.transport}")
                a = Attempt(r.path, r.transports, f"failed: {e}", time.time())
                for h in handles:
                    h.attempts.append(a)
                continue
            self.count(f"sent_{r.transport}")
            a = Attempt([str(p) for p in r.path], r.transports, "ok", time.time())
            for h in handles:
                h.attempts.append(a)
            return True
        return False

    async def _fail(self, mid: bytes, reason: str) -> None:
        if await self.store.finish_outgoing(mid, FAILED, reason):
            self.count("messages_expired")
        h = self._handles.pop(mid, None)
        self._last_try.pop(mid, None)
        if h is not None and not h._done.done():
            h._done.set_exception(ExpiredError(f"message {mid.hex()} to {h.destination}: {reason}"))
            h._done.exception()

    async def _retry_loop(self) -> None:
        r = self.config["routing"]
        interval, ack_timeout = r["retry_interval_ms"] / 1000, r["ack_timeout_ms"] / 1000
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
                # fresh messages do not make every pass O(outbox)
                for mid, _dest, _qos, expires in await self.store.pending_brief(time.time() - interval):
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

    # ---- receiving ----------------------------------------------------------------------
    async def _on_frame(self, frame: bytes) -> bool:
        """A node frame from a link; True once it is safely taken (acknowledged per hop)."""
        try:
            sealed = self._assembler.feed(frame)
        except (MalformedError, LimitExceededError) as e:
            self.count("dropped_malformed")
            log.debug("dropped frame: %s", escape(e))
            return False
        if sealed is None:
            return True
        try:
            dest = env.recipient_of(sealed)
        except MalformedError:
            self.count("dropped_malformed")
            return False
        if dest != self.me:
            return await self._relay(dest, sealed)
        try:
            msgs = env.open_any(self.identity, sealed)
        except (AuthenticationError, MalformedError) as e:
            self.count("dropped_" + ("auth" if isinstance(e, AuthenticationError) else "malformed"))
            log.info("dropped message: %s", escape(e))
            return False
        first = msgs[0]
        if sealed[0] == env.BATCH_VERSION:
            self._v2_peers[first.sender] = None
            self._v2_peers.move_to_end(first.sender)
            while len(self._v2_peers) > 4096:
                self._v2_peers.popitem(last=False)
        acked = [m.body[i:i + 16] for m in msgs if m.kind == env.ACK for i in range(0, len(m.body), 16)]
        if acked:
            await self._on_acks(first.sender, acked)
        data = [m for m in msgs if m.kind == env.DATA]
        if not data:
            return True
        b = self._buckets.get(first.sender)
        if b is None:
            b = self._buckets[first.sender] = _Bucket()
            while len(self._buckets) > 4096:
                self._buckets.popitem(last=False)
        if not b.take():            # one token per envelope: what costs us X25519 + a verify
            self.count("dropped_flood", len(data))
            return False
        now_ms = time.time() * 1000
        fresh = [m for m in data if not (m.expires_ms and m.expires_ms < now_ms)]
        if len(fresh) < len(data):
            self.count("dropped_expired", len(data) - len(fresh))
        if not fresh:
            return True
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
        return not refused       # refused: the sender sends again (the taken ones are duplicates then)

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
                                    [env.Entry(secrets.token_bytes(16), b"".join(ids), kind=env.ACK)])
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
            if h is not None and not h._done.done():
                h._done.set_result(now - h._t0)
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

    # ---- application side ----------------------------------------------------------------
    def on(self, topic: str, handler: Callable[[Received], Awaitable[None]]) -> None:
        """Messages of ``topic`` go to ``await handler(message)`` instead of ``messages()``.
        The message is acknowledged when the handler returns (or raises: logged, not retried)
        unless the handler called ``await message.ack(effect)`` itself."""
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
        while True:
            try:
                rows = [m for m in await self.store.ready(256) if m.msg_id not in self._queued]
                if not rows:
                    self._inbox_wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._inbox_wake.wait(), 1.0)
                    continue
                for m in rows:
                    h = self._handlers.get(m.topic)
                    self._queued.add(m.msg_id)
                    if h is not None:
                        try:
                            await h(self._received(m))
                        except Exception as e:
                            log.warning("handler for topic %s failed: %s", escape(m.topic), e)
                        # no-op (False) when the handler acknowledged it itself
                        if await self.store.mark_delivered(m.msg_id):
                            self.count("messages_consumed")
                        self._queued.discard(m.msg_id)
                    else:
                        await self._app_queue.put(m)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("node dispatch: %s", e)
                await asyncio.sleep(0.1)

    def _marked(self, mid: bytes, fut: asyncio.Future) -> None:
        """Once the delivery mark committed (the consumer did not wait for it), the
        dispatcher may look at ready messages again without finding this one."""
        def done(_f):
            self._queued.discard(mid)
            if self._app_queue.empty():
                self._inbox_wake.set()
        fut.add_done_callback(done)

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
                    # deferred: joins the next group commit, the consumer does not wait for it
                    self._marked(m.msg_id, await self.store.mark_delivered(m.msg_id, wait=False))
                    self.count("messages_consumed")

    # ---- status -------------------------------------------------------------------------
    async def status(self) -> dict:
        self._sync_navigator()
        links = []
        for link in self.links:
            reach = sorted(link.reaches())
            links.append({"transport": link.transport, "reaches": reach,
                          "measurements": {p: link.measure(p) for p in reach}, "stats": link.stats()})
        routes = {}
        for rec in self.peers:
            if rec.peer != self.me:
                rs = self.routes(rec.peer)
                routes[rec.peer] = [{"transports": r.transports, "path": [str(p) for p in r.path],
                                     "latency_ms": r.cost.latency_ms, "energy_mj": r.cost.energy_mj}
                                    for r in rs]
        return {"peer_id": self.me, "policy": self._effective_qos(None)[1],
                "peers": [r.peer for r in self.peers if r.peer != self.me], "links": links,
                "routes": routes, "store": await self.store.counts(), "counters": dict(self.counters),
                "inflight": sum(lane.busy for lane in self._lanes.values()), "events": [e for _, e in self.events[-20:]]}
