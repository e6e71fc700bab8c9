"""Mixnet service and client over Sphinx packets (Loopix-style Poisson mixing).

* :class:`Mixnode` receives Sphinx packets, processes them in batches (``process_many`` in a
  worker thread when many are queued), holds each for the delay its sender chose, forwards,
  and delivers final bodies to a local application. It emits loop cover traffic at a
  Poisson rate. Queues are bounded; :class:`MixCounters` counts everything.
* :class:`MixClient` sends messages through a chosen or selected route (a VRF
  :class:`betanet.vrf.RouteSelector`, or any object with the same ``select``), attaches a
  SURB so the recipient can reply without learning the sender, and sends Loopix loop and
  drop cover messages at Poisson rates. Real and cover messages are identical on the wire:
  the kind byte travels inside the encrypted Sphinx body.
* The transport is a small interface (:class:`PacketTransport`, in
  :mod:`betanet.mix_transport`): :class:`HtxTransport` carries the frames inside HTX
  streams over TCP+TLS 1.3, QUIC or plain TCP; :class:`TcpTransport` puts them straight on
  TCP (tests, peers without HTX).

Frames on a link: ``u32 length (BE) ‖ type (1) ‖ data`` with
``PACKET (1)``: a Sphinx packet; ``DELIVER (2)``: destination (32) ‖ body;
``REPLY (3)``: destination (32) ‖ SURB id (16) ‖ reply payload. Details in docs/sphinx.md.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import secrets
import struct
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Protocol, Sequence

from betanet import sphinx
from betanet.errors import (AuthenticationError, BetanetError, ExpiredError, InvalidArgumentError,
                            LimitExceededError, MalformedError, NotFoundError, ReplayError)
from betanet.mix_transport import (FRAME_DELIVER, FRAME_PACKET, FRAME_REPLY, TCP_FRAMING,
                                   TRANSPORT_KINDS, FrameHandler, HtxTransport, PacketTransport,
                                   TcpTransport, make_transport)
from betanet.sphinx import Geometry, KeyPair, NodeInfo, Route

log = logging.getLogger(__name__)

__all__ = [
    "Descriptor", "Directory", "MixCounters", "Message", "Mixnode", "MixClient",
    "PacketTransport", "TcpTransport", "HtxTransport", "make_transport", "TRANSPORT_KINDS",
    "LocalMixnet", "RouteSelectorLike", "RandomSelector",
    "encode_body", "decode_body", "KIND_DATA", "KIND_LOOP", "KIND_DROP", "add_parser",
]

KIND_DATA, KIND_LOOP, KIND_DROP = 1, 2, 3
_BODY_HDR = struct.Struct(">BHH")      # kind, message length, SURB length


# ---- message bodies inside Sphinx ------------------------------------------------------

def encode_body(geometry: Geometry, kind: int, message: bytes = b"", surb: bytes = b"") -> bytes:
    """kind (1) ‖ len(message) (2) ‖ len(surb) (2) ‖ message ‖ surb, zero-padded by the core."""
    if _BODY_HDR.size + len(message) + len(surb) > geometry.body_bytes:
        raise InvalidArgumentError(f"message too long: at most "
                                   f"{geometry.body_bytes - _BODY_HDR.size - len(surb)} bytes")
    return _BODY_HDR.pack(kind, len(message), len(surb)) + message + surb


def decode_body(body: bytes) -> tuple[int, bytes, bytes]:
    """(kind, message, surb) of a delivered body; MalformedError if inconsistent."""
    if len(body) < _BODY_HDR.size:
        raise MalformedError("body too short")
    kind, mlen, slen = _BODY_HDR.unpack_from(body)
    end = _BODY_HDR.size + mlen + slen
    if kind not in (KIND_DATA, KIND_LOOP, KIND_DROP) or end > len(body):
        raise MalformedError("bad message body")
    m = body[_BODY_HDR.size:_BODY_HDR.size + mlen]
    return kind, m, body[_BODY_HDR.size + mlen:end]


# ---- directory -------------------------------------------------------------------------

@dataclass(frozen=True)
class Descriptor:
    """A reachable endpoint: a mixnode (with a Sphinx key and AS group) or a client.

    ``transport`` says how to reach it (one of ``TRANSPORT_KINDS``); for the HTX kinds
    ``htx_public_key`` is its X25519 HTX static key, which connecting peers pin (Noise XK)."""

    node_id: bytes
    address: tuple[str, int]
    sphinx_public_key: bytes = b""
    as_group: int = 0
    htx_public_key: bytes = b""
    transport: str = TCP_FRAMING

    @property
    def is_mixnode(self) -> bool:
        return len(self.sphinx_public_key) == 32

    def to_json(self) -> dict:
        return {"node_id": self.node_id.hex(), "address": list(self.address),
                "sphinx_public_key": self.sphinx_public_key.hex(), "as_group": self.as_group,
                "transport": self.transport, "htx_public_key": self.htx_public_key.hex()}

    @classmethod
    def from_json(cls, d: dict) -> Descriptor:
        transport = d.get("transport", TCP_FRAMING)
        if transport not in TRANSPORT_KINDS:
            raise InvalidArgumentError(f"descriptor transport {transport!r} is not one of {TRANSPORT_KINDS}")
        htx_key = bytes.fromhex(d.get("htx_public_key", ""))
        if transport != TCP_FRAMING and len(htx_key) != 32:
            raise InvalidArgumentError(f"descriptor for {transport} needs a 32-byte htx_public_key")
        return cls(bytes.fromhex(d["node_id"]), (d["address"][0], int(d["address"][1])),
                   bytes.fromhex(d.get("sphinx_public_key", "")), int(d.get("as_group", 0)),
                   htx_key, transport)

    def vrf_descriptor(self):
        """As a :class:`betanet.vrf.MixnodeDescriptor` for route selection."""
        from betanet.vrf import MixnodeDescriptor
        return MixnodeDescriptor(node_id=self.node_id, as_group=self.as_group,
                                 address=self.address, sphinx_public_key=self.sphinx_public_key)


class Directory:
    """Who is where: node id → :class:`Descriptor` (shared by nodes and clients)."""

    def __init__(self, entries: Iterable[Descriptor] = ()) -> None:
        self._by_id: dict[bytes, Descriptor] = {}
        for e in entries:
            self.add(e)

    def add(self, entry: Descriptor) -> None:
        self._by_id[entry.node_id] = entry

    def get(self, node_id: bytes) -> Descriptor | None:
        return self._by_id.get(node_id)

    @property
    def mixnodes(self) -> list[Descriptor]:
        return [e for e in self._by_id.values() if e.is_mixnode]

    def __len__(self) -> int:
        return len(self._by_id)


class RouteSelectorLike(Protocol):
    """What a client needs from a route selector (``betanet.vrf.RouteSelector`` fits)."""

    def select(self, src_peer_id: bytes, dst_peer_id: bytes, stream_nonce: bytes, hops: int,
               src_as: int, dst_as: int, epoch: int) -> list: ...


class RandomSelector:
    """Uniformly random distinct hops (when no VRF selector is configured)."""

    def __init__(self, mixnodes: Sequence) -> None:
        self._nodes = list(mixnodes)

    def select(self, src_peer_id: bytes, dst_peer_id: bytes, stream_nonce: bytes, hops: int,
               src_as: int, dst_as: int, epoch: int) -> list:
        pool = list(self._nodes)
        if len(pool) < hops:
            from betanet.errors import NoPathError
            raise NoPathError(f"{hops} hops needed, {len(pool)} mixnodes known")
        return [pool.pop(secrets.randbelow(len(pool))) for _ in range(hops)]


# ---- counters --------------------------------------------------------------------------

@dataclass
class MixCounters:
    """Everything a node or client counts (shown by the CLI, logged on shutdown)."""

    received: int = 0
    sent: int = 0                  # packets this endpoint originated (messages and cover)
    processed: int = 0
    forwarded: int = 0
    delivered: int = 0
    replies: int = 0
    loops_sent: int = 0
    loops_returned: int = 0
    drops_sent: int = 0
    cover_dropped: int = 0
    batches: int = 0
    links_opened: int = 0          # outgoing link connections established (HTX: handshakes done)
    links_accepted: int = 0        # incoming link connections accepted
    dropped: collections.Counter = field(default_factory=collections.Counter)
    link_errors: collections.Counter = field(default_factory=collections.Counter)
    # link_errors reasons: connect, auth (wrong HTX key, either side), handshake, timeout,
    # lost (an open link failed), bad-frame, link-busy, too-many-links

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("dropped", "link_errors")}
        d["dropped"] = dict(self.dropped)
        d["link_errors"] = dict(self.link_errors)
        return d

    def summary(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        links = ", ".join(f"{k}={v}" for k, v in sorted(self.link_errors.items())) or "none"
        return (f"received={self.received} sent={self.sent} forwarded={self.forwarded} delivered={self.delivered} "
                f"replies={self.replies} loops sent/returned={self.loops_sent}/{self.loops_returned} "
                f"drop-cover sent/absorbed={self.drops_sent}/{self.cover_dropped} "
                f"batches={self.batches} links out/in={self.links_opened}/{self.links_accepted} "
                f"link errors: {links} dropped: {drops}")


_REASON = {MalformedError: "malformed", AuthenticationError: "auth", ReplayError: "replay",
           ExpiredError: "expired", NotFoundError: "unknown-epoch", LimitExceededError: "replay-filter-full"}


def _reason(err: BaseException) -> str:
    for cls, name in _REASON.items():
        if isinstance(err, cls):
            return name
    return "error"


@dataclass(frozen=True)
class Message:
    """A message delivered to a local application; ``surb`` lets it reply once."""

    destination: bytes
    data: bytes
    surb: bytes = b""


def _exp_ms(mean_ms: float) -> int:
    # Exponential delay (Poisson mixing); SystemRandom so delays are not predictable.
    if mean_ms <= 0:
        return 0
    return min(int(_rng.expovariate(1.0 / mean_ms)), 0xFFFFFFFF)


_rng = secrets.SystemRandom()


class _Sender:
    """Shared by node and client: route choice and packet creation."""

    def __init__(self, node_id: bytes, geometry: Geometry, directory: Directory, epoch: int,
                 selector: RouteSelectorLike | None, hops: int, mean_delay_ms: float,
                 transport: PacketTransport, counters: MixCounters, as_group: int = 0) -> None:
        self.node_id, self.geometry, self.directory, self.epoch = node_id, geometry, directory, epoch
        self.selector, self.hops, self.mean_delay_ms = selector, hops, mean_delay_ms
        self.transport, self.counters, self.as_group = transport, counters, as_group

    def _selector(self, exclude: bytes | None) -> RouteSelectorLike:
        if self.selector is not None:
            return self.selector
        return RandomSelector([m for m in self.directory.mixnodes if m.node_id != exclude])

    def choose_route(self, dst: bytes, exclude: bytes | None = None) -> Route:
        dst_entry = self.directory.get(dst)
        chosen = self._selector(exclude).select(self.node_id, dst, secrets.token_bytes(16),
                                                self.hops, self.as_group,
                                                dst_entry.as_group if dst_entry else 0, self.epoch)
        hops = [NodeInfo(bytes(h.node_id), bytes(h.sphinx_public_key)) for h in chosen]
        return Route(hops, [_exp_ms(self.mean_delay_ms) for _ in hops])

    async def send_packet(self, first_hop: bytes, packet: bytes) -> None:
        entry = self.directory.get(first_hop)
        if entry is None:
            self.counters.dropped["unknown-next-hop"] += 1
            return
        try:
            await self.transport.send_to(entry, FRAME_PACKET, packet)
            self.counters.sent += 1
        except OSError as exc:
            self.counters.dropped["send-failed"] += 1
            log.debug("send to %s failed: %s", entry.address, exc)

    async def send_body(self, dst: bytes, body: bytes, route: Route | None = None) -> Route:
        route = route or self.choose_route(dst)
        packet = sphinx.create_packet(self.geometry, self.epoch, route, dst, body)
        await self.send_packet(route.hops[0].node_id, packet)
        return route


async def _poisson(rate: float, action: Callable[[], Awaitable[None]]) -> None:
    # Events at a Poisson rate (per second): exponential gaps.
    while True:
        await asyncio.sleep(_rng.expovariate(rate))
        try:
            await action()
        except BetanetError as exc:
            log.debug("cover traffic: %s", exc)


# ---- the mixnode -----------------------------------------------------------------------

class Mixnode:
    """An asyncio mixnode. ``on_message(Message)`` receives bodies delivered to this node's
    id (the local application); it may answer with :meth:`reply`."""

    def __init__(self, node_id: bytes, key: KeyPair, directory: Directory, *, epoch: int = 1,
                 geometry: Geometry = Geometry(), transport: PacketTransport | None = None,
                 on_message: Callable[[Message], None] | None = None,
                 selector: RouteSelectorLike | None = None, hops: int = 3,
                 mean_delay_ms: float = 50.0, loop_rate: float = 0.0,
                 queue_limit: int = 4096, held_limit: int = 16384, batch_max: int = 256,
                 replay_capacity: int = 1 << 18, as_group: int = 0, workers: int = 0) -> None:
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.node_id, self.key, self.geometry, self.epoch = node_id, key, geometry, epoch
        self.directory = directory
        self.transport = transport or TcpTransport()
        self.counters = MixCounters()
        self.transport.counters = self.counters
        self.on_message = on_message
        self.loop_rate = loop_rate
        self.queue_limit, self.held_limit, self.batch_max = queue_limit, held_limit, batch_max
        self.sphinx = sphinx.SphinxNode(geometry, replay_capacity)
        self.sphinx.add_key(epoch, key.secret_key)
        self.sender = _Sender(node_id, geometry, directory, epoch, selector, hops, mean_delay_ms,
                              self.transport, self.counters, as_group)
        self.address: tuple[str, int] | None = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._held = 0
        self._tasks: set[asyncio.Task] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

    def descriptor(self) -> Descriptor:
        assert self.address is not None, "start() first"
        return Descriptor(self.node_id, self.address, self.key.public_key, self.sender.as_group,
                          self.transport.public_key, self.transport.kind)

    async def start(self) -> tuple[str, int]:
        self.address = await self.transport.start(self._on_frame)
        for _ in range(self.workers):
            self._spawn(self._worker())
        if self.loop_rate > 0:
            self._spawn(_poisson(self.loop_rate, self._send_loop))
        log.info("mixnode %s listening on %s:%d", self.node_id.hex()[:12], *self.address)
        return self.address

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def rotate_key(self, epoch: int, key: KeyPair, keep_previous: int = 1) -> None:
        """Start key epoch ``epoch`` (publish ``key.public_key`` for it); packets of the last
        ``keep_previous`` epochs are still accepted, older ones are rejected as expired."""
        self.sphinx.add_key(epoch, key.secret_key)
        self.sphinx.expire(max(0, epoch - keep_previous))
        self.key, self.epoch, self.sender.epoch = key, epoch, epoch

    # -- receive
    def _on_frame(self, frame_type: int, data: bytes) -> None:
        if frame_type == FRAME_PACKET:
            self.counters.received += 1
            if len(self._queue) >= self.queue_limit:
                self.counters.dropped["queue-full"] += 1
                return
            self._queue.append(data)
            self._wake.set()
        elif frame_type == FRAME_DELIVER and len(data) >= 32:
            self._deliver_local(data[:32], data[32:])
        else:
            self.counters.dropped["bad-frame"] += 1

    async def _worker(self) -> None:
        # Several workers share the queue, so that batches run on every core at once.
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.batch_max))]
            if self._queue:
                self._wake.set()          # more left: let another worker take a batch
            self.counters.batches += 1
            if len(batch) >= 8:           # worth a thread: process_many runs without the GIL
                results = await loop.run_in_executor(None, self.sphinx.process_many, batch)
            else:
                results = self.sphinx.process_many(batch)
            for r in results:
                self._handle(r)

    def _handle(self, r) -> None:
        if isinstance(r, BetanetError):
            self.counters.dropped[_reason(r)] += 1
            return
        self.counters.processed += 1
        if isinstance(r, sphinx.Relay):
            if self._held >= self.held_limit:
                self.counters.dropped["held-full"] += 1
                return
            self._held += 1
            self._hold(r.delay_ms, lambda: self._forward(r.next_node, r.packet))
        elif isinstance(r, sphinx.Deliver):
            self._hold(r.delay_ms, lambda: self._deliver(r.destination, r.body))
        else:
            self._hold(r.delay_ms, lambda: self._send_reply(r))

    def _hold(self, delay_ms: int, action: Callable[[], Awaitable[None]]) -> None:
        # Hold for the sender-chosen delay, then run the action (a coroutine factory, so
        # that a timer cancelled at shutdown leaves no never-awaited coroutine behind).
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            if not self._closed:
                self._spawn(action())
        handle = loop.call_later(delay_ms / 1000.0, fire)
        self._timers.add(handle)

    async def _forward(self, next_node: bytes, packet: bytes) -> None:
        try:
            entry = self.directory.get(next_node)
            if entry is None:
                self.counters.dropped["unknown-next-hop"] += 1
                return
            await self.transport.send_to(entry, FRAME_PACKET, packet)
            self.counters.forwarded += 1
        except OSError:
            self.counters.dropped["send-failed"] += 1
        finally:
            self._held -= 1

    async def _deliver(self, destination: bytes, body: bytes) -> None:
        if destination == self.node_id:
            self._deliver_local(destination, body)
            return
        entry = self.directory.get(destination)
        if entry is None:
            self.counters.dropped["unknown-destination"] += 1
            return
        try:
            await self.transport.send_to(entry, FRAME_DELIVER, destination + body)
            self.counters.delivered += 1
        except OSError:
            self.counters.dropped["send-failed"] += 1

    def _deliver_local(self, destination: bytes, body: bytes) -> None:
        try:
            kind, message, surb = decode_body(body)
        except MalformedError:
            self.counters.dropped["bad-body"] += 1
            return
        if kind == KIND_LOOP:
            self.counters.loops_returned += 1
        elif kind == KIND_DROP:
            self.counters.cover_dropped += 1
        else:
            self.counters.delivered += 1
            if self.on_message is not None:
                try:
                    self.on_message(Message(destination, message, surb))
                except Exception:       # the application's bug must not take the link down
                    log.exception("on_message handler failed")

    async def _send_reply(self, r: sphinx.Reply) -> None:
        entry = self.directory.get(r.destination)
        if entry is None:
            self.counters.dropped["unknown-destination"] += 1
            return
        try:
            await self.transport.send_to(entry, FRAME_REPLY, r.destination + r.surb_id + r.payload)
            self.counters.replies += 1
        except OSError:
            self.counters.dropped["send-failed"] += 1

    # -- send
    async def reply(self, message: Message, data: bytes) -> None:
        """Answer a delivered message through its SURB (single use)."""
        if not message.surb:
            raise InvalidArgumentError("message carries no SURB")
        first, packet = sphinx.use_surb(self.geometry, message.surb,
                                        encode_body(self.geometry, KIND_DATA, data))
        await self.sender.send_packet(first, packet)

    async def _send_loop(self) -> None:
        # Loopix mix loop: through other mixnodes and back to this one.
        route = self.sender.choose_route(self.node_id, exclude=self.node_id)
        await self.sender.send_body(self.node_id, encode_body(self.geometry, KIND_LOOP), route)
        self.counters.loops_sent += 1

    async def close(self) -> None:
        """Stop: cancel timers and tasks, close links, wipe keys. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()
        self.sphinx.close()
        log.info("mixnode %s stopped: %s", self.node_id.hex()[:12], self.counters.summary())

    async def __aenter__(self) -> Mixnode:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


# ---- the client ------------------------------------------------------------------------

class MixClient:
    """Sends through the mixnet and receives deliveries and SURB replies at its own id.

    ``payload_rate`` (messages/s): when > 0, real messages leave only at Poisson ticks and
    a tick with nothing queued sends a drop cover message instead (Loopix); 0 sends at once.
    ``loop_rate`` / ``drop_rate``: independent Poisson streams of loop and drop cover."""

    def __init__(self, client_id: bytes, directory: Directory, *, epoch: int = 1,
                 geometry: Geometry = Geometry(), transport: PacketTransport | None = None,
                 selector: RouteSelectorLike | None = None, hops: int = 3,
                 mean_delay_ms: float = 50.0, payload_rate: float = 0.0, loop_rate: float = 0.0,
                 drop_rate: float = 0.0, as_group: int = 0, max_pending_surbs: int = 1024) -> None:
        self.client_id, self.directory, self.geometry, self.epoch = client_id, directory, geometry, epoch
        self.transport = transport or TcpTransport()
        self.counters = MixCounters()
        self.transport.counters = self.counters
        self.sender = _Sender(client_id, geometry, directory, epoch, selector, hops, mean_delay_ms,
                              self.transport, self.counters, as_group)
        self.payload_rate, self.loop_rate, self.drop_rate = payload_rate, loop_rate, drop_rate
        self.max_pending_surbs = max_pending_surbs
        self.address: tuple[str, int] | None = None
        self.inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1024)
        self.routes: list[Route] = []      # routes used for real messages (for reports)
        self._surbs: collections.OrderedDict[bytes, tuple[sphinx.SurbSecret, asyncio.Future]] = \
            collections.OrderedDict()
        self._outbox: asyncio.Queue = asyncio.Queue(maxsize=1024)
        self._tasks: set[asyncio.Task] = set()

    def descriptor(self) -> Descriptor:
        assert self.address is not None, "start() first"
        return Descriptor(self.client_id, self.address, b"", self.sender.as_group,
                          self.transport.public_key, self.transport.kind)

    async def start(self) -> tuple[str, int]:
        self.address = await self.transport.start(self._on_frame)
        for rate, action in ((self.loop_rate, self._send_loop), (self.drop_rate, self._send_drop)):
            if rate > 0:
                self._spawn(_poisson(rate, action))
        if self.payload_rate > 0:
            self._spawn(self._payload_ticks())
        return self.address

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def send(self, destination: bytes, data: bytes, *, route: Route | None = None,
                   reply_route: Route | None = None, want_reply: bool = True) -> asyncio.Future | None:
        """Send ``data`` to ``destination`` (a mixnode's id: its local application).
        With ``want_reply`` a SURB rides along; the returned future resolves to the reply.
        Routes are selected (VRF selector if configured) unless given."""
        route = route or self.sender.choose_route(destination)
        surb = b""
        fut = None
        if want_reply:
            reply_route = reply_route or self.sender.choose_route(self.client_id)
            s, secret = sphinx.create_surb(self.geometry, self.epoch, reply_route, self.client_id)
            surb = s.data
            fut = asyncio.get_running_loop().create_future()
            self._surbs[secret.surb_id] = (secret, fut)
            while len(self._surbs) > self.max_pending_surbs:
                _, (_, old) = self._surbs.popitem(last=False)
                old.cancel()
        body = encode_body(self.geometry, KIND_DATA, data, surb)
        packet = sphinx.create_packet(self.geometry, self.epoch, route, destination, body)
        self.routes.append(route)
        if self.payload_rate > 0:
            await self._outbox.put((route.hops[0].node_id, packet))
        else:
            await self.sender.send_packet(route.hops[0].node_id, packet)
        return fut

    async def _payload_ticks(self) -> None:
        while True:
            await asyncio.sleep(_rng.expovariate(self.payload_rate))
            if self._outbox.empty():
                await self._send_drop()
            else:
                await self.sender.send_packet(*self._outbox.get_nowait())

    async def _send_loop(self) -> None:
        await self.sender.send_body(self.client_id, encode_body(self.geometry, KIND_LOOP))
        self.counters.loops_sent += 1

    async def _send_drop(self) -> None:
        mixnodes = self.directory.mixnodes
        dst = mixnodes[secrets.randbelow(len(mixnodes))].node_id
        await self.sender.send_body(dst, encode_body(self.geometry, KIND_DROP))
        self.counters.drops_sent += 1

    def _on_frame(self, frame_type: int, data: bytes) -> None:
        self.counters.received += 1
        if frame_type == FRAME_REPLY and len(data) == 48 + self.geometry.payload_bytes:
            entry = self._surbs.pop(data[32:48], None)
            if entry is None:
                self.counters.dropped["unknown-surb"] += 1
                return
            secret, fut = entry
            try:
                kind, message, _ = decode_body(sphinx.open_reply(self.geometry, secret, data[48:]))
            except BetanetError as exc:
                self.counters.dropped[_reason(exc)] += 1
                return
            self.counters.replies += 1
            if not fut.done():
                fut.set_result(message)
        elif frame_type == FRAME_DELIVER and len(data) >= 32:
            try:
                kind, message, surb = decode_body(data[32:])
            except MalformedError:
                self.counters.dropped["bad-body"] += 1
                return
            if kind == KIND_LOOP:
                self.counters.loops_returned += 1
            elif kind == KIND_DROP:
                self.counters.cover_dropped += 1
            else:
                self.counters.delivered += 1
                if self.inbox.full():
                    self.counters.dropped["inbox-full"] += 1
                else:
                    self.inbox.put_nowait(Message(data[:32], message, surb))
        else:
            self.counters.dropped["bad-frame"] += 1

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, fut in self._surbs.values():
            fut.cancel()
        self._surbs.clear()
        await self.transport.close()

    async def __aenter__(self) -> MixClient:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


# ---- a local mixnet (demo, tests, `betanet mixnode --local N`) --------------------------

class LocalMixnet:
    """N mixnodes on loopback sharing one directory, each in its own AS group, linked by
    ``transport`` (a ``TRANSPORT_KINDS`` name; each node gets a fresh HTX key)."""

    def __init__(self, n: int = 3, *, geometry: Geometry = Geometry(), epoch: int = 1,
                 mean_delay_ms: float = 20.0, loop_rate: float = 0.0, hops: int = 3,
                 on_message: Callable[[Mixnode, Message], None] | None = None,
                 transport: str = TCP_FRAMING, transport_options: dict | None = None) -> None:
        self.directory = Directory()
        self.geometry, self.epoch, self.transport = geometry, epoch, transport
        self.nodes = []
        for i in range(n):
            node_id = secrets.token_bytes(32)
            node = Mixnode(node_id, KeyPair.generate(), self.directory, epoch=epoch,
                           transport=make_transport(transport, **(transport_options or {})),
                           geometry=geometry, mean_delay_ms=mean_delay_ms, loop_rate=loop_rate,
                           hops=min(hops, n - 1) or 1, as_group=100 + i,
                           on_message=(lambda m, i=i: on_message(self.nodes[i], m)) if on_message else None)
            self.nodes.append(node)

    async def start(self) -> None:
        for node in self.nodes:
            await node.start()
            self.directory.add(node.descriptor())

    def vrf_descriptors(self) -> list:
        return [n.descriptor().vrf_descriptor() for n in self.nodes]

    async def close(self) -> None:
        await asyncio.gather(*(n.close() for n in self.nodes))

    async def __aenter__(self) -> LocalMixnet:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


# ---- CLI -------------------------------------------------------------------------------

def add_parser(sub) -> None:
    p = sub.add_parser("mixnode", help="run a Sphinx mixnode (or --local N mixnodes on loopback)")
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on")
    p.add_argument("--key-seed", help="hex 32-byte seed for the node key (default: random)")
    p.add_argument("--node-id", help="hex 32-byte node id (default: random)")
    p.add_argument("--directory", help="JSON file: list of descriptors of the other nodes")
    p.add_argument("--epoch", type=int, default=1)
    p.add_argument("--mean-delay-ms", type=float, default=50.0, help="mean of per-hop delays")
    p.add_argument("--loop-rate", type=float, default=0.0, help="loop cover messages per second")
    p.add_argument("--queue-limit", type=int, default=4096)
    p.add_argument("--local", type=int, default=0, metavar="N",
                   help="run N mixnodes on loopback with a client sending test traffic")
    p.add_argument("--messages", type=int, default=5, help="with --local: messages to send")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--stats-interval", type=float, default=0.0, help="print counters every N s")
    p.add_argument("--print-descriptor", action="store_true",
                   help="print this node's descriptor as JSON once listening")
    p.add_argument("--transport", choices=TRANSPORT_KINDS, default="htx-tcp",
                   help="links: HTX over TCP+TLS 1.3 (htx-tcp, default), over QUIC (htx-quic), over "
                        "plain TCP (htx-plain), or unencrypted length-prefixed TCP (tcp-framing); "
                        "peers are reached with the kind their descriptor advertises")
    p.add_argument("--htx-key", metavar="FILE",
                   help="this node's X25519 HTX private key (raw or hex, mode 0600; created with "
                        "FILE.pub if missing — see `betanet htx keygen`); default: a fresh key per run")
    p.add_argument("--tls-cert", metavar="PEM", help="TLS certificate for htx-tcp/htx-quic "
                   "(default: a self-signed one made at start)")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--tls-cafile", metavar="PEM",
                   help="verify peers' TLS certificates against this CA; without it certificate "
                        "verification is OFF (peers are authenticated by their pinned HTX key)")
    p.set_defaults(func=_main)


def _htx_key(path: str | None) -> bytes | None:
    """Load ``path`` (creating it and ``path.pub`` when missing), or None for a fresh key."""
    if not path:
        return None
    from betanet.htx import keys
    if not os.path.exists(path):
        priv = keys.generate_private_key()
        keys.save_private_key(path, priv)
        keys.save_public_key(path + ".pub", keys.public_key(priv))
        log.info("created HTX key %s", path)
        return priv
    return keys.load_private_key(path)


def _cli_transport(args, host: str = "127.0.0.1", port: int = 0) -> PacketTransport:
    if args.transport == TCP_FRAMING:
        return TcpTransport(host, port)
    return make_transport(args.transport, host, port, _htx_key(args.htx_key),
                          certfile=args.tls_cert, keyfile=args.tls_key, cafile=args.tls_cafile)


def _main(args) -> int:
    try:
        return asyncio.run(_run_local(args) if args.local else _run_node(args))
    except KeyboardInterrupt:
        return 130


async def _stats(nodes: Sequence, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for n in nodes:
            print(f"{n.node_id.hex()[:12]}: {n.counters.summary()}", flush=True)


async def _run_node(args) -> int:
    import json
    host, _, port = args.listen.rpartition(":")
    key = KeyPair.from_seed(bytes.fromhex(args.key_seed)) if args.key_seed else KeyPair.generate()
    node_id = bytes.fromhex(args.node_id) if args.node_id else secrets.token_bytes(32)
    directory = Directory()
    if args.directory:
        with open(args.directory) as f:
            for d in json.load(f):
                directory.add(Descriptor.from_json(d))
    node = Mixnode(node_id, key, directory, epoch=args.epoch, mean_delay_ms=args.mean_delay_ms,
                   loop_rate=args.loop_rate, queue_limit=args.queue_limit,
                   transport=_cli_transport(args, host or "127.0.0.1", int(port or 0)),
                   on_message=lambda m: print(f"message for {m.destination.hex()[:12]}: {m.data!r}",
                                              flush=True))
    await node.start()
    directory.add(node.descriptor())
    if args.print_descriptor:
        print(json.dumps(node.descriptor().to_json()), flush=True)
    print(f"mixnode {node_id.hex()[:12]} listening on {node.address[0]}:{node.address[1]} "
          f"({node.transport.kind}" + (f", HTX key {node.transport.public_key.hex()}"
                                       if node.transport.public_key else "") + ")", flush=True)
    tasks = [asyncio.ensure_future(_stats([node], args.stats_interval))] if args.stats_interval else []
    try:
        await asyncio.sleep(args.duration if args.duration > 0 else math.inf)
    finally:
        for t in tasks:
            t.cancel()
        await node.close()
        print(f"counters: {node.counters.summary()}", flush=True)
    return 0


async def _run_local(args) -> int:
    n = max(args.local, 2)
    replies = 0

    def on_message(node: Mixnode, m: Message) -> None:
        asyncio.ensure_future(node.reply(m, b"ack: " + m.data))

    net = LocalMixnet(n, mean_delay_ms=args.mean_delay_ms, loop_rate=args.loop_rate,
                      on_message=on_message, transport=args.transport)
    async with net:
        client = MixClient(secrets.token_bytes(32), net.directory, hops=min(3, n),
                           mean_delay_ms=args.mean_delay_ms, loop_rate=args.loop_rate,
                           drop_rate=args.loop_rate, transport=make_transport(args.transport))
        async with client:
            net.directory.add(client.descriptor())
            print(f"{n} mixnodes on loopback over {args.transport}: " +
                  ", ".join(f"{m.node_id.hex()[:8]}@{m.address[1]}" for m in net.nodes), flush=True)
            futs = []
            for i in range(args.messages):
                dst = net.nodes[i % n].node_id
                futs.append(await client.send(dst, f"message {i}".encode()))
            done = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True),
                                          timeout=max(10.0, args.mean_delay_ms / 100))
            replies = sum(1 for d in done if isinstance(d, bytes))
            print(f"replies received through SURBs: {replies}/{args.messages}", flush=True)
            if args.duration > 0:
                await asyncio.sleep(args.duration)
            print(f"client: {client.counters.summary()}", flush=True)
    for node in net.nodes:
        print(f"{node.node_id.hex()[:12]}: {node.counters.summary()}", flush=True)
    return 0 if replies == args.messages else 1
