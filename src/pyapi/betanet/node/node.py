"""``Node``: one identity, every link, adaptive send with fallback, exactly-once receive.

This module keeps the node's lifecycle and wiring: its state (created here, in one place),
start/stop of links and background loops, the signed peer record, the peer book, status.
What the node does lives in mixins named after it, each over that shared state:

- sending.py: ``send``/``send_many``, the outbox, coalescing lanes, batches, retries;
- routing.py: the Navigator, the QoS policy, one envelope over the frontier with fallback,
  to a custodian or the bundle agent;
- receiving.py: frames from links, end-to-end acknowledgments, relaying for others;
- inbox.py: handlers, ``messages()``, consuming;
- handles.py: ``DeliveryHandle``, ``Attempt``, ``Received`` (plain data).

Mixins rather than helper objects: the seams are real, but the halves share state —
acknowledgments received resolve the sender's handles and clear its retry and DTN tables,
the ack lanes read which peers take batches, a relay or a link coming up wakes the retry
loop — so one object owns it all and each module owns the methods over it.

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
import logging
import os
import time
from collections import OrderedDict
from typing import Awaitable, Callable

from betanet.navigator import Navigator
from betanet.node import envelope as env
from betanet.node.batcher import Lane
from betanet.node.config import defaults
from betanet.node.handles import Attempt, DeliveryHandle, Received  # noqa: F401 (Attempt lived here)
from betanet.node.identity import Identity
from betanet.node.inbox import Inbox
from betanet.node.peers import PeerBook, PeerRecord
from betanet.node.power import NoPowerSource, PowerSource
from betanet.node.receiving import Receiving, _Bucket
from betanet.node.routing import Routing
from betanet.node.sending import Sending
from betanet.node.store import Incoming, NodeStore

__all__ = ["Node", "DeliveryHandle", "Received"]

log = logging.getLogger(__name__)


class Node(Sending, Receiving, Inbox, Routing):
    """A Betanet node: ``await start()`` (or ``async with``), ``add_peer``, ``send``,
    ``messages()`` / ``on(topic, handler)``, ``status()``, ``await stop()``."""

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
        self._record_seq = record_seq if record_seq is not None else int(time.time() * 1000)
        self._record_fields: dict | None = None      # what the last record() advertised
        self.counters: dict[str, int] = {}
        self.events: list[tuple[float, str]] = []     # recent fallbacks and policy switches
        self._tasks: list[asyncio.Task] = []
        self.running = False
        # sending.py (acknowledgments in receiving.py settle handles and retry times)
        self._handles: dict[bytes, DeliveryHandle] = {}
        self._lanes: dict[tuple, Lane] = {}           # (dest, qos, privacy budget) -> messages
        self._outgoing: set[bytes] = set()            # queued or in flight in a lane
        self._last_try: dict[bytes, float] = {}
        self._id_pool = b""                           # random bytes for message ids (_new_ids)
        self._v1_until: dict[str, float] = {}
        self._contact = asyncio.Event()               # a link came up / a peer or relay frame: retry now
        # routing.py
        self._bundled: OrderedDict[bytes, float] = OrderedDict()    # handed to the DTN link
        self._policy = "normal"
        # receiving.py
        a = self.config["application"]
        self._assembler = env.Assembler(max_bytes=4 * a["max_message_bytes"] + (1 << 20))
        self._ack_lanes: dict[str, Lane] = {}         # sender -> ids to acknowledge
        self._v2_peers: OrderedDict[str, int] = OrderedDict()    # sent us a batch: its version
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # inbox.py
        self._handlers: dict[str, Callable[[Received], Awaitable[None]]] = {}
        self._inbox_wake = asyncio.Event()
        self._queued: set[bytes] = set()
        self._ready_hi = 0                            # last ready number dispatched (reset at start)
        self._app_queue: asyncio.Queue[Incoming] = asyncio.Queue()

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
        fields = dict(htx_tcp=tcp, htx_quic=quic, dtn_eids=eids, ble_id=ble,
                      features=(env.FEATURE_CHUNKS_M0,), **web)
        if self._record_fields is not None and fields != self._record_fields:
            # other endpoints than the record already given out: a new sequence number, or
            # peers holding the earlier one refuse this one as a replay
            self._record_seq = max(self._record_seq + 1, int(time.time() * 1000))
        self._record_fields = fields
        return PeerRecord.create(self.identity, self._record_seq, **fields)

    def add_peer(self, record: bytes | PeerRecord) -> PeerRecord:
        rec = self.peers.add(record)
        self._contact.set()
        return rec

    def _on_change(self, peer: str, up: bool) -> None:          # links call it (start)
        self.count("link_up" if up else "link_down")
        if up:
            self._contact.set()

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
