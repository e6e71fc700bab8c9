"""The asyncio mix client: a thin adapter around :class:`~betanet.mix.protocol.MixClientProtocol`
(futures for SURB replies, an inbox, one timer for the Poisson ticks)."""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Hashable

from betanet.mix.events import (Event, MessageReceived, ReplyExpired, ReplyReceived, SendPacket)
from betanet.mix.protocol import MixClientProtocol
from betanet.mix.routes import SYSTEM_RNG, RouteSelectorLike
from betanet.mix.sendq import SendQueues
from betanet.mix.transport import PacketTransport, TcpTransport
from betanet.mix.types import FRAME_PACKET, Address, Descriptor, Directory, Message
from betanet.sphinx import Geometry, Route

log = logging.getLogger(__name__)

__all__ = ["MixClient"]


class MixClient:
    """Sends through the mixnet and receives deliveries and SURB replies at its own id.

    ``payload_rate`` (messages/s): when > 0, real messages leave only at Poisson ticks and
    a tick with nothing queued sends a drop cover message instead (Loopix); 0 sends at once.
    ``loop_rate`` / ``drop_rate``: independent Poisson streams of loop and drop cover.
    A tick that fails is counted (``counters.tick_errors``) and logged; ticking goes on."""

    def __init__(self, client_id: bytes, directory: Directory, *, epoch: int = 1,
                 geometry: Geometry = Geometry(), transport: PacketTransport | None = None,
                 selector: RouteSelectorLike | None = None, hops: int = 3,
                 mean_delay_ms: float = 50.0, payload_rate: float = 0.0, loop_rate: float = 0.0,
                 drop_rate: float = 0.0, as_group: int = 0, max_pending_surbs: int = 1024,
                 outbox_limit: int = 1024, route_history: int = 256,
                 rng: random.Random | None = None) -> None:
        self.transport = transport or TcpTransport()
        self.counters = self.transport.counters
        self.protocol = MixClientProtocol(
            client_id, directory, epoch=epoch, geometry=geometry, counters=self.counters,
            selector=selector, hops=hops, mean_delay_ms=mean_delay_ms, payload_rate=payload_rate,
            loop_rate=loop_rate, drop_rate=drop_rate, as_group=as_group,
            max_pending_surbs=max_pending_surbs, outbox_limit=outbox_limit, route_history=route_history)
        self.client_id, self.directory, self.geometry, self.epoch = client_id, directory, geometry, epoch
        self.out = SendQueues(self.transport, directory, self.counters)
        self.address: Address | None = None
        self.inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1024)
        self._rng = rng or SYSTEM_RNG
        self._replies: dict[int, asyncio.Future] = {}
        self._space = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    routes = property(lambda self: self.protocol.routes)          # the latest routes used
    sender = property(lambda self: self.protocol.routes_builder)  # .as_group, .choose_route

    def descriptor(self) -> Descriptor:
        assert self.address is not None, "start() first"
        return Descriptor(self.client_id, self.address, b"", self.sender.as_group,
                          self.transport.public_key, self.transport.kind, **self.transport.advertised())

    async def start(self) -> Address:
        self.address = await self.transport.start(self._on_frame)
        self._reschedule()
        return self.address

    async def send(self, destination: bytes, data: bytes, *, route: Route | None = None,
                   reply_route: Route | None = None, want_reply: bool = True) -> asyncio.Future | None:
        """Send ``data`` to ``destination`` (a mixnode's id: its local application).
        With ``want_reply`` a SURB rides along; the returned future resolves to the reply.
        Routes are selected (VRF selector if configured) unless given. With a payload rate
        the message is queued (waiting while the outbox is full) and leaves at a tick."""
        while self.protocol.payload_rate > 0 and self.protocol.outbox_full:
            self._space.clear()
            await self._space.wait()
        ticket, events = self.protocol.send(destination, data, route=route, reply_route=reply_route,
                                            want_reply=want_reply, rng=self._rng)
        fut = None
        if ticket is not None:
            fut = self._replies[ticket] = asyncio.get_running_loop().create_future()
        for e in events:
            if isinstance(e, SendPacket):       # payload_rate 0: now, awaiting the link
                await self._send_now(e)
        self._act([e for e in events if not isinstance(e, SendPacket)])
        return fut

    async def _send_now(self, e: SendPacket) -> None:
        entry = self.directory.get(e.first_hop)
        if entry is None:
            self.counters.dropped["unknown-next-hop"] += 1
            return
        try:
            await self.transport.send_to(entry, FRAME_PACKET, e.packet)
            self.counters.sent += 1
        except OSError as exc:
            self.counters.dropped["send-failed"] += 1
            log.debug("send to %s failed: %s", entry.address, exc)

    def _tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        try:
            self._act(self.protocol.tick(self._now(), self._rng))
        except Exception:                       # never let the ticker die silently
            self.counters.tick_errors["error"] += 1
            log.exception("mix client tick failed")
        if not self.protocol.outbox_full:
            self._space.set()
        self._reschedule()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _reschedule(self) -> None:
        at = self.protocol.next_deadline()
        if at is not None and not self._closed:
            self._timer = asyncio.get_running_loop().call_at(at, self._tick)

    def _on_frame(self, frame_type: int, data: bytes, link: Hashable = None) -> None:
        self._act(self.protocol.receive_frame(frame_type, data, self._now(), link,
                                              self.transport.link_peer_key(link)))

    def _act(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, SendPacket):
                self.out.push(e.first_hop, FRAME_PACKET, e.packet, "sent")
            elif isinstance(e, ReplyReceived):
                fut = self._replies.pop(e.ticket, None)
                if fut is not None and not fut.done():
                    fut.set_result(e.data)
            elif isinstance(e, ReplyExpired):
                fut = self._replies.pop(e.ticket, None)
                if fut is not None:
                    fut.cancel()
            elif isinstance(e, MessageReceived):
                if self.inbox.full():
                    self.counters.dropped["inbox-full"] += 1
                else:
                    self.inbox.put_nowait(e.message)

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._act(self.protocol.close())
        for fut in self._replies.values():
            fut.cancel()
        self._replies.clear()
        self._space.set()
        await self.out.close()
        await self.transport.close()

    async def __aenter__(self) -> MixClient:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
