"""The sans-IO mix protocols: :class:`MixnodeProtocol` and :class:`MixClientProtocol`.

No sockets, no clock, no asyncio: the caller passes ``now`` (seconds, any monotonic origin)
and a random source, feeds received frames to ``receive_frame`` and acts on the returned
events (``betanet.mix.events``); ``tick(now, rng)`` releases what is due (held packets,
Poisson cover and payload ticks) and ``next_deadline()`` says when to call it again.
The asyncio adapters (``betanet.mix.node``, ``betanet.mix.client``) only move frames and
run one timer. Limits are documented in docs/limits.md ("Mixnode")."""
from __future__ import annotations

import collections
import logging
import random
from dataclasses import dataclass, field
from typing import Hashable

from betanet import sphinx
from betanet.errors import BetanetError, InvalidArgumentError, LimitExceededError, MalformedError
from betanet.mix.events import (Deliver, Drop, Event, Forward, MessageReceived, Reply,
                                ReplyExpired, ReplyReceived, SendPacket)
from betanet.mix.held import EVICTED_OTHER, REFUSED, HeldPackets
from betanet.mix.ratelog import RateLimitedLog
from betanet.mix.routes import SYSTEM_RNG, RouteBuilder, RouteSelectorLike
from betanet.mix.types import (FRAME_DELIVER, FRAME_PACKET, FRAME_REPLY, KIND_DATA, KIND_DROP,
                               KIND_LOOP, Directory, Message, MixCounters, decode_body,
                               drop_reason, encode_body)
from betanet.sphinx import Geometry, KeyPair, Route

log = logging.getLogger(__name__)

__all__ = ["MixnodeProtocol", "MixClientProtocol", "Batch", "dispatch_body"]


def dispatch_body(destination: bytes, body: bytes, counters: MixCounters) -> list[Event]:
    """The one LOOP / DROP / DATA dispatch of a body that reached its destination."""
    try:
        kind, message, surb = decode_body(body)
    except MalformedError:
        counters.dropped["bad-body"] += 1
        return [Drop("bad-body")]
    if kind == KIND_LOOP:
        counters.loops_returned += 1
        return []
    if kind == KIND_DROP:
        counters.cover_dropped += 1
        return []
    counters.delivered += 1
    return [MessageReceived(Message(destination, message, surb))]


def _drop(counters: MixCounters, reason: str) -> list[Event]:
    counters.dropped[reason] += 1
    return [Drop(reason)]


class _Poisson:
    """The next time of a Poisson stream of ``rate`` events per second (0: never)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.at = rate, None

    def due(self, now: float, rng: random.Random) -> bool:
        if self.rate <= 0:
            return False
        if self.at is None:                    # first tick: start the stream
            self.at = now + rng.expovariate(self.rate)
            return False
        if now < self.at:
            return False
        self.at = now + rng.expovariate(self.rate)
        return True


@dataclass
class Batch:
    """Packets taken from the input queue for one ``process_many`` call."""
    packets: list[bytes] = field(default_factory=list)
    links: list[Hashable] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.packets)


# ---- the mixnode ---------------------------------------------------------------------------

class MixnodeProtocol:
    """A mixnode without IO: queue → Sphinx batches → fair bounded hold → events.

    * ``receive_frame(kind, data, now, link)``: a PACKET enters the input queue (at most
      ``queue_limit``; overflow ``queue-full``). DELIVER and REPLY frames are refused
      (``unexpected-frame``): a link peer can only hand in packets this node processes.
    * ``take_batch()`` / ``process_batch(batch)`` (thread-safe, GIL released) /
      ``complete_batch(batch, results, now)``, or ``process(now)`` for all three at once.
    * Each result is held for its delay: delays above ``max_delay_ms`` are dropped
      (``delay-over-cap``); all kinds share ``held_limit``, fairly between links
      (``held-evicted`` / ``held-full``).
    * ``tick(now, rng)``: held packets now due (:class:`Forward`, :class:`Deliver`,
      :class:`Reply`, :class:`MessageReceived` for the local application) and loop cover
      (:class:`SendPacket`) at Poisson rate ``loop_rate``.
    """

    def __init__(self, node_id: bytes, key: KeyPair, directory: Directory, *, epoch: int = 1,
                 geometry: Geometry = Geometry(), counters: MixCounters | None = None,
                 selector: RouteSelectorLike | None = None, hops: int = 3,
                 mean_delay_ms: float = 50.0, max_delay_ms: float | None = None,
                 loop_rate: float = 0.0, queue_limit: int = 4096, held_limit: int = 16384,
                 batch_max: int = 256, replay_capacity: int = 1 << 18, as_group: int = 0) -> None:
        if queue_limit < 1 or batch_max < 1:
            raise InvalidArgumentError("queue_limit and batch_max must be at least 1")
        self.node_id, self.key, self.geometry, self.epoch = node_id, key, geometry, epoch
        self.directory = directory
        self.counters = counters if counters is not None else MixCounters()
        self.routes = RouteBuilder(node_id, geometry, directory, epoch, selector, hops,
                                   mean_delay_ms, as_group, max_delay_ms)
        self.queue_limit, self.batch_max = queue_limit, batch_max
        self.held = HeldPackets(held_limit)
        self.sphinx = sphinx.SphinxNode(geometry, replay_capacity)
        self.sphinx.add_key(epoch, key.secret_key)
        self._queue: collections.deque[tuple[bytes, Hashable]] = collections.deque()
        self._loops = _Poisson(loop_rate)
        self._refusals = RateLimitedLog(log)

    @property
    def max_delay_ms(self) -> float:
        """The longest per-hop delay this node holds a packet for."""
        return self.routes.max_delay_ms

    @property
    def queued(self) -> int:
        """Packets waiting for Sphinx processing."""
        return len(self._queue)

    # -- receive
    def receive_frame(self, frame_type: int, data: bytes, now: float,
                      link: Hashable = None) -> list[Event]:
        if frame_type != FRAME_PACKET:
            # DELIVER/REPLY are for clients; a mixnode processes every packet itself.
            return _drop(self.counters, "unexpected-frame" if frame_type in (FRAME_DELIVER, FRAME_REPLY)
                         else "bad-frame")
        self.counters.received += 1
        if len(self._queue) >= self.queue_limit:
            return _drop(self.counters, "queue-full")
        self._queue.append((data, link))
        return []

    def take_batch(self) -> Batch:
        b = Batch()
        for _ in range(min(len(self._queue), self.batch_max)):
            data, link = self._queue.popleft()
            b.packets.append(data)
            b.links.append(link)
        if b:
            self.counters.batches += 1
        return b

    def process_batch(self, batch: Batch) -> list:
        """Sphinx-process a batch (thread-safe; touches only the SphinxNode)."""
        return self.sphinx.process_many(batch.packets)

    def complete_batch(self, batch: Batch, results: list, now: float) -> list[Event]:
        events: list[Event] = []
        for r, link in zip(results, batch.links):
            events += self._hold(r, now, link)
        return events + self._release(now)

    def process(self, now: float) -> list[Event]:
        """Process everything queued (synchronously) and return what is due at ``now``."""
        events: list[Event] = []
        while self._queue:
            b = self.take_batch()
            events += self.complete_batch(b, self.process_batch(b), now)
        return events

    def _hold(self, r, now: float, link: Hashable) -> list[Event]:
        if isinstance(r, BetanetError):
            return _drop(self.counters, drop_reason(r))
        self.counters.processed += 1
        if r.delay_ms > self.max_delay_ms:
            return _drop(self.counters, "delay-over-cap")
        if isinstance(r, sphinx.Deliver) and r.destination != self.node_id:
            dest = self.directory.get(r.destination)
            if dest is not None and dest.is_mixnode:
                # a mixnode gets its messages as packets it processes (routes end there)
                return _drop(self.counters, "deliver-to-mixnode")
        outcome = self.held.add(now + r.delay_ms / 1000.0, r, link)
        if outcome == REFUSED:
            self._refusals.warning("held-full", "held packets full (%d): refusing a packet",
                                   self.held.limit)
            return _drop(self.counters, "held-full")
        if outcome == EVICTED_OTHER:
            return _drop(self.counters, "held-evicted")
        return []

    # -- time
    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do (None: only after new input)."""
        times = [t for t in (self.held.next_due(), self._loops.at) if t is not None]
        return min(times) if times else None

    def tick(self, now: float, rng: random.Random | None = None) -> list[Event]:
        events = self._release(now)
        if self._loops.due(now, rng or SYSTEM_RNG):
            events += self._loop(rng or SYSTEM_RNG)
        return events

    def _release(self, now: float) -> list[Event]:
        events: list[Event] = []
        for r in self.held.pop_due(now):
            if isinstance(r, sphinx.Relay):
                events.append(Forward(r.next_node, r.packet))
            elif isinstance(r, sphinx.Deliver):
                events += (dispatch_body(r.destination, r.body, self.counters)
                           if r.destination == self.node_id else [Deliver(r.destination, r.body)])
            else:
                events.append(Reply(r.destination, r.surb_id, r.payload))
        return events

    def _loop(self, rng: random.Random) -> list[Event]:
        # Loopix mix loop: through other mixnodes and back to this one.
        try:
            route = self.routes.choose_route(self.node_id, rng, exclude=self.node_id)
            first, packet, _ = self.routes.packet(self.node_id, encode_body(self.geometry, KIND_LOOP), route)
        except BetanetError as exc:
            self.counters.tick_errors[type(exc).__name__] += 1
            self._refusals.warning("loop", "loop cover not sent: %s", exc)
            return []
        self.counters.loops_sent += 1
        return [SendPacket(first, packet, KIND_LOOP)]

    # -- the local application and keys
    def reply(self, message: Message, data: bytes) -> SendPacket:
        """The packet answering a delivered message through its SURB (single use)."""
        if not message.surb:
            raise InvalidArgumentError("message carries no SURB")
        first, packet = sphinx.use_surb(self.geometry, message.surb,
                                        encode_body(self.geometry, KIND_DATA, data))
        return SendPacket(first, packet, KIND_DATA)

    def rotate_key(self, epoch: int, key: KeyPair, keep_previous: int = 1) -> None:
        """Start key epoch ``epoch``; packets of the last ``keep_previous`` epochs are still
        accepted, older ones are rejected as expired."""
        self.sphinx.add_key(epoch, key.secret_key)
        self.sphinx.expire(max(0, epoch - keep_previous))
        self.key, self.epoch, self.routes.epoch = key, epoch, epoch

    def close(self) -> None:
        """Forget queued and held packets and wipe the keys."""
        self._queue.clear()
        self.held.clear()
        self.sphinx.close()


# ---- the client ----------------------------------------------------------------------------

@dataclass
class _Outgoing:
    destination: bytes
    data: bytes
    ticket: int | None
    route: Route | None
    reply_route: Route | None


class MixClientProtocol:
    """A mix client without IO.

    ``send(...)`` returns a ticket (when a reply is wanted) and, with ``payload_rate`` 0, the
    packet to send now; with ``payload_rate > 0`` the message waits in a bounded outbox and
    leaves at a Poisson tick (Loopix), its route chosen then — so messages queued before any
    mixnode is known leave once one is. A tick with nothing queued sends drop cover;
    ``loop_rate`` / ``drop_rate`` add independent Poisson streams. A tick that cannot send
    (no route yet, ...) is counted in ``counters.tick_errors`` and logged (rate-limited);
    the message stays queued.
    """

    def __init__(self, client_id: bytes, directory: Directory, *, epoch: int = 1,
                 geometry: Geometry = Geometry(), counters: MixCounters | None = None,
                 selector: RouteSelectorLike | None = None, hops: int = 3,
                 mean_delay_ms: float = 50.0, payload_rate: float = 0.0, loop_rate: float = 0.0,
                 drop_rate: float = 0.0, as_group: int = 0, max_pending_surbs: int = 1024,
                 outbox_limit: int = 1024, route_history: int = 256) -> None:
        self.client_id, self.directory, self.geometry, self.epoch = client_id, directory, geometry, epoch
        self.counters = counters if counters is not None else MixCounters()
        self.routes_builder = RouteBuilder(client_id, geometry, directory, epoch, selector, hops,
                                           mean_delay_ms, as_group)
        self.payload_rate = payload_rate
        self.max_pending_surbs, self.outbox_limit = max_pending_surbs, outbox_limit
        #: the latest routes used for real messages (for reports), at most ``route_history``
        self.routes: collections.deque[Route] = collections.deque(maxlen=route_history)
        self._surbs: collections.OrderedDict[bytes, tuple[sphinx.SurbSecret, int]] = collections.OrderedDict()
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._tickets = 0
        self._payload, self._loops, self._drops = (_Poisson(payload_rate), _Poisson(loop_rate),
                                                   _Poisson(drop_rate))
        self._failures = RateLimitedLog(log)

    @property
    def outbox_full(self) -> bool:
        return len(self._outbox) >= self.outbox_limit

    @property
    def queued(self) -> int:
        return len(self._outbox)

    # -- send
    def send(self, destination: bytes, data: bytes, *, route: Route | None = None,
             reply_route: Route | None = None, want_reply: bool = True,
             rng: random.Random | None = None) -> tuple[int | None, list[Event]]:
        """Queue or build a message: (ticket or None, events). The ticket names the
        :class:`ReplyReceived` / :class:`ReplyExpired` event that answers it."""
        ticket = None
        if want_reply:
            self._tickets += 1
            ticket = self._tickets
        out = _Outgoing(destination, data, ticket, route, reply_route)
        if self.payload_rate > 0:
            if self.outbox_full:
                raise LimitExceededError(f"outbox full ({self.outbox_limit} messages)")
            self._outbox.append(out)
            return ticket, []
        return ticket, self._build(out, rng or SYSTEM_RNG)

    def _build(self, out: _Outgoing, rng: random.Random) -> list[Event]:
        # Raises (NoPathError, ...) before any state changes, so the message can wait.
        rb = self.routes_builder
        route = out.route or rb.choose_route(out.destination, rng)
        surb, secret = b"", None
        if out.ticket is not None:
            reply_route = out.reply_route or rb.choose_route(self.client_id, rng)
            s, secret = sphinx.create_surb(self.geometry, self.epoch, reply_route, self.client_id)
            surb = s.data
        first, packet, _ = rb.packet(out.destination, encode_body(self.geometry, KIND_DATA, out.data, surb), route)
        events: list[Event] = []
        if secret is not None:
            self._surbs[secret.surb_id] = (secret, out.ticket)
            while len(self._surbs) > self.max_pending_surbs:
                _, (_, old) = self._surbs.popitem(last=False)
                events.append(ReplyExpired(old))
        self.routes.append(route)
        return events + [SendPacket(first, packet, KIND_DATA)]

    # -- time
    def next_deadline(self) -> float | None:
        times = [s.at for s in (self._payload, self._loops, self._drops) if s.rate > 0]
        if any(t is None for t in times):
            return 0.0                         # streams not started yet: tick now
        return min(times) if times else None

    def tick(self, now: float, rng: random.Random | None = None) -> list[Event]:
        """Payload, loop and drop ticks due at ``now``; never raises for a failed tick."""
        rng = rng or SYSTEM_RNG
        events: list[Event] = []
        if self._payload.due(now, rng):
            events += self._attempt("payload", lambda: self._payload_tick(rng))
        if self._loops.due(now, rng):
            events += self._attempt("loop", lambda: self._cover(KIND_LOOP, self.client_id, rng))
        if self._drops.due(now, rng):
            events += self._attempt("drop", lambda: self._cover(
                KIND_DROP, self.routes_builder.any_mixnode(rng).node_id, rng))
        return events

    def _attempt(self, what: str, action) -> list[Event]:
        try:
            return action()
        except BetanetError as exc:
            reason = f"{what}: {type(exc).__name__}"
            self.counters.tick_errors[reason] += 1
            self._failures.warning(reason, "%s tick failed (%d so far): %s", what,
                                   self.counters.tick_errors[reason], exc)
            return []

    def _payload_tick(self, rng: random.Random) -> list[Event]:
        if not self._outbox:
            return self._cover(KIND_DROP, self.routes_builder.any_mixnode(rng).node_id, rng)
        events = self._build(self._outbox[0], rng)     # stays queued if this raises
        self._outbox.popleft()
        return events

    def _cover(self, kind: int, dst: bytes, rng: random.Random) -> list[Event]:
        first, packet, _ = self.routes_builder.packet(dst, encode_body(self.geometry, kind), rng=rng)
        if kind == KIND_LOOP:
            self.counters.loops_sent += 1
        else:
            self.counters.drops_sent += 1
        return [SendPacket(first, packet, kind)]

    # -- receive
    def receive_frame(self, frame_type: int, data: bytes, now: float,
                      link: Hashable = None, peer_key: bytes | None = None) -> list[Event]:
        """A frame from a link peer. ``peer_key``: the static key the link authenticated
        (HTX: the initiator's Noise XK key; ``b""`` if the link is authenticated but the key
        is unknown), or None for a link that authenticates nobody (plain framing).
        DELIVER and REPLY frames come only from mixnodes: on an authenticated link they are
        refused (``unexpected-sender``) unless ``peer_key`` is a mixnode's HTX key in the
        directory; plain framing cannot tell (docs/sphinx.md, "Links")."""
        self.counters.received += 1
        if (frame_type in (FRAME_DELIVER, FRAME_REPLY) and peer_key is not None
                and not self.directory.is_mixnode_link_key(peer_key)):
            return _drop(self.counters, "unexpected-sender")
        if frame_type == FRAME_REPLY and len(data) == 48 + self.geometry.payload_bytes:
            return self._open_reply(data[32:48], data[48:])
        if frame_type == FRAME_DELIVER and len(data) >= 32:
            return dispatch_body(data[:32], data[32:], self.counters)
        return _drop(self.counters, "bad-frame")

    def _open_reply(self, surb_id: bytes, payload: bytes) -> list[Event]:
        entry = self._surbs.pop(surb_id, None)
        if entry is None:
            return _drop(self.counters, "unknown-surb")
        secret, ticket = entry
        try:
            _, message, _ = decode_body(sphinx.open_reply(self.geometry, secret, payload))
        except BetanetError as exc:
            return _drop(self.counters, drop_reason(exc))
        self.counters.replies += 1
        return [ReplyReceived(ticket, message)]

    def close(self) -> list[Event]:
        """Forget pending SURBs and queued messages; the tickets that will get no reply."""
        events = [ReplyExpired(t) for _, t in self._surbs.values() if t is not None]
        events += [ReplyExpired(o.ticket) for o in self._outbox if o.ticket is not None]
        self._surbs.clear()
        self._outbox.clear()
        return events
