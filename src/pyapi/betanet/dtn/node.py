"""A DTN node: the sans-IO :class:`~betanet.dtn.agent.Agent` run over the durable
:class:`~betanet.dtn.store.BundleStore` and any set of convergence-layer links.

    node = Node("ipn:2.0", "b.db", strategy=StaticRoutes([("ipn:3.*", "ipn:3.0")]))
    await node.start()
    port = await node.listen_tcpcl("127.0.0.1", 0)          # bundles from any peer
    node.add_link("ipn:3.0", TcpclLink("127.0.0.1", 4557))  # a contact to a next hop
    reg = node.register("ipn:2.1")                          # async for d in reg: ...
    await node.send("ipn:3.1", b"hello", custody=True)

Every bundle is stored (commit on disk) before the convergence layer acknowledges it; it
waits in the store until a contact to a next hop is up (``set_contact`` opens and closes a
scheduled contact; a link whose peer is unreachable is retried with back-off) and leaves it
when forwarded, released by custody, delivered or expired. Delivery to a registration is
exactly once across restarts: a bundle is marked delivered in the store when the
application has taken it (the callback returned, or the iterator was advanced past it).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from betanet.dtn.agent import (Action, Agent, AgentConfig, Deliver, Forget, Persist, ReportReceived,
                               Transmit, dtn_ms_to_unix, unix_to_dtn_ms)
from betanet.dtn.bundle import Bundle, ReasonCode
from betanet.dtn.cla import ConvergenceLayer
from betanet.dtn.eid import SCHEME_IPN, EID
from betanet.dtn.routing import Strategy
from betanet.dtn.store import BundleState, BundleStore, StoreLimits
from betanet.errors import (BetanetError, ExpiredError, InvalidArgumentError, LimitExceededError,
                            StateError)

__all__ = ["Node", "Registration", "Delivery", "DeliveryRefused"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """A bundle delivered to an application endpoint."""
    bundle_id: str
    source: EID
    destination: EID
    payload: bytes
    bundle: Bundle


class DeliveryRefused(BetanetError):
    """Raised by a registration callback that will not take a bundle now: the bundle is
    removed from this node and a deletion reported with ``reason``; with
    ``register(custody_on_delivery=True)`` the custodian keeps it and sends it again after
    its back-off."""

    def __init__(self, reason: ReasonCode = ReasonCode.TRAFFIC_PARED, message: str = "") -> None:
        super().__init__(message or f"delivery refused ({reason.name})")
        self.reason = reason


class Registration:
    """An application endpoint: ``async for d in reg`` (a bundle counts as delivered when the
    loop asks for the next one) or a callback (delivered when it returns; it raises
    :class:`DeliveryRefused` to refuse the bundle)."""

    def __init__(self, node: Node, endpoint: str,
                 callback: Callable[[Delivery], Awaitable[Any] | Any] | None) -> None:
        self.node, self.endpoint, self.callback = node, endpoint, callback
        self._queue: asyncio.Queue[Deliver] = asyncio.Queue()
        self._taken: Deliver | None = None

    async def _offer(self, d: Deliver) -> None:
        if self.callback is None:
            self._queue.put_nowait(d)
            return
        try:
            r = self.callback(_delivery(d))
            if asyncio.iscoroutine(r):
                await r
        except DeliveryRefused as e:
            await self.node._refuse_delivery(d, e.reason)
            return
        await self.node._mark_delivered(d)

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        if self._taken is not None:
            taken, self._taken = self._taken, None
            await self.node._mark_delivered(taken)
        d = await self._queue.get()
        self._taken = d
        return _delivery(d)

    async def get(self, timeout: float | None = None) -> Delivery:
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def ack(self) -> None:
        """Mark the last bundle taken as delivered now (instead of at the next iteration)."""
        if self._taken is not None:
            taken, self._taken = self._taken, None
            await self.node._mark_delivered(taken)


def _delivery(d: Deliver) -> Delivery:
    p = d.bundle.primary
    return Delivery(d.bundle_id, p.source, p.destination, bytes(d.bundle.payload), d.bundle)


async def _cancel(tasks: list[asyncio.Task]) -> None:
    """Cancel and wait, boundedly: wait_for in a loop can swallow a cancellation (3.11), so
    loops also check a stop flag; this never waits more than a few seconds for them."""
    tasks = list(tasks)
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=3.0)


class _SessionLink(ConvergenceLayer):
    """The reverse direction of a TCPCL session a peer opened to us."""

    name = "tcpcl-in"
    acknowledged = True

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn

    async def open_contact(self) -> None:
        if self.conn.closed.is_set():
            raise StateError("the peer's session is closed")

    async def close_contact(self) -> None:
        pass  # the peer owns the session

    async def send(self, bundle: bytes) -> None:
        await self.conn.send_bundle(bundle)

    @property
    def up(self) -> bool:
        return not self.conn.closed.is_set()

    def metrics(self) -> Any:
        return None


class _Peer:
    def __init__(self, name: str, link: ConvergenceLayer, enabled: bool) -> None:
        self.name, self.link, self.enabled = name, link, enabled
        self.up = False
        self.stopped = False
        self.queue: asyncio.Queue[Transmit] = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []
        self.wake = asyncio.Event()


class Node:
    """A bundle node. ``clock`` gives Unix seconds (tests inject it)."""

    def __init__(self, node_id: EID | str, store: str, *, strategy: Strategy | None = None,
                 config: AgentConfig = AgentConfig(), store_limits: StoreLimits = StoreLimits(),
                 synchronous: str = "FULL", clock: Callable[[], float] = time.time,
                 window: int = 16, tick: float = 0.1, inbound_contacts: bool = True,
                 on_report: Callable[[ReportReceived], Any] | None = None) -> None:
        self.agent = Agent(node_id, strategy=strategy, config=config)
        self.node_id = self.agent.node_id
        self._store_args = (store, store_limits, synchronous)
        self.store: BundleStore | None = None
        self._clock = clock
        self.window = max(1, window)
        self.tick = tick
        self.peers: dict[str, _Peer] = {}
        self.registrations: dict[str, Registration] = {}
        self.reports: deque[ReportReceived] = deque(maxlen=config.max_reports)
        self.on_report = on_report
        self._servers: list[Any] = []
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self.errors = 0
        self.inbound_contacts = inbound_contacts

    def now_ms(self) -> int:
        return unix_to_dtn_ms(self._clock())

    # ---- life cycle ---------------------------------------------------------------------
    async def start(self) -> Node:
        """Open the store, take back what it held (custody, waiting, undelivered), run."""
        path, limits, sync = self._store_args
        self.store = BundleStore(path, limits=limits, synchronous=sync, clock=self._clock)
        now = self.now_ms()
        restored = 0
        for bid in await self.store.ids(BundleState.STORED, BundleState.CUSTODY):
            rec = await self.store.get(bid)
            if rec is None or rec.data is None:
                continue
            restored += 1
            await self._run(self.agent.restore(bid, rec.data, custody=rec.state == BundleState.CUSTODY,
                                               received_ms=unix_to_dtn_ms(rec.received_at), now_ms=now))
        if restored:
            log.info("dtn node %s: %d bundles restored from the store", self.agent.name, restored)
        self._tasks.append(asyncio.create_task(self._poller(), name="dtn-poll"))
        self._tasks.append(asyncio.create_task(self._purger(), name="dtn-purge"))
        return self

    async def close(self) -> None:
        self._closing = True
        for p in list(self.peers.values()):
            await self._stop_peer(p)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await srv.close()
        await _cancel(self._tasks)
        if self.store is not None:
            await self.store.close()

    async def __aenter__(self) -> Node:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- applications ---------------------------------------------------------------------
    def register(self, endpoint: EID | str,
                 callback: Callable[[Delivery], Awaitable[Any] | Any] | None = None, *,
                 custody_on_delivery: bool = False) -> Registration:
        """``custody_on_delivery``: see :meth:`Agent.register` (custody accepted once the
        application took the bundle, refused back to the custodian when it raised
        :class:`DeliveryRefused`)."""
        name, pending = self.agent.register(endpoint, custody_on_delivery=custody_on_delivery)
        if name in self.registrations:
            raise StateError(f"{name} is already registered")
        reg = Registration(self, name, callback)
        self.registrations[name] = reg
        for d in pending:
            self._spawn(reg._offer(d))
        return reg

    def unregister(self, endpoint: EID | str) -> None:
        self.agent.unregister(endpoint)
        self.registrations.pop(str(endpoint), None)

    async def send(self, destination: EID | str, payload: bytes, **kw: Any) -> str:
        """Originate a bundle (keywords of :meth:`Agent.send`: lifetime_ms, priority,
        report_to, flags, hop_limit, custody, source, crc_type). Returns once it is stored."""
        bid, actions = self.agent.send(destination, payload, now_ms=self.now_ms(), **kw)
        await self._run(actions)
        self._kick.set()
        return bid

    async def ping(self, destination: EID | str, *, count: int = 1, timeout: float = 5.0,
                   interval: float = 0.0) -> list[float | None]:
        """Round-trip times (s) to the echo endpoint of a node (None: no answer in time)."""
        dest = EID.parse(destination) if isinstance(destination, str) else destination
        echo = EID.ipn(dest.node, 7) if dest.scheme == SCHEME_IPN else EID.dtn(dest.node_id.ssp + "echo")
        tag = secrets.randbits(31) | 1 << 20
        me = self.agent.endpoint(tag if self.node_id.scheme == SCHEME_IPN else f"ping-{tag:x}")
        reg = self.register(me)
        out: list[float | None] = []
        try:
            for i in range(count):
                nonce = secrets.token_bytes(8)
                t0 = time.perf_counter()
                await self.send(echo, nonce + i.to_bytes(4, "big"), source=me,
                                lifetime_ms=int(timeout * 1000) + 1000)
                rtt = None
                deadline = t0 + timeout
                while (left := deadline - time.perf_counter()) > 0:
                    try:
                        d = await reg.get(left)
                    except asyncio.TimeoutError:
                        break
                    if d.payload[:8] == nonce:
                        rtt = time.perf_counter() - t0
                        break
                out.append(rtt)
                if interval and i + 1 < count:
                    await asyncio.sleep(interval)
            await reg.ack()
        finally:
            self.unregister(me)
        return out

    async def _mark_delivered(self, d: Deliver) -> None:
        assert self.store is not None
        await self.store.mark_delivered(d.bundle_id, expires_at=dtn_ms_to_unix(d.expires_ms))
        await self._run(self.agent.delivered(d, now_ms=self.now_ms()))

    async def _refuse_delivery(self, d: Deliver, reason: ReasonCode) -> None:
        assert self.store is not None
        for i in d.parts or (d.bundle_id,):     # gone, id too: a copy sent again is new
            await self.store.remove(i)
        await self._run(self.agent.refuse_delivery(d, reason, now_ms=self.now_ms()))
        self._kick.set()

    # ---- convergence layers ----------------------------------------------------------------
    async def listen_tcpcl(self, host: str = "127.0.0.1", port: int = 4556, **kw: Any) -> int:
        """Accept TCPCLv4 sessions; every bundle is stored before its XFER_ACK. Returns the port."""
        from betanet.dtn.tcpcl.aio import serve
        from betanet.dtn.tcpcl.protocol import SessionConfig
        kw.setdefault("config", SessionConfig(node_id=self.agent.name))
        handler = self._inbound if self.inbound_contacts else None
        srv = await serve(host, port, on_bundle=self.receive_bundle, handler=handler, **kw)
        self._servers.append(srv)
        return srv.port

    async def listen_mtcp(self, host: str = "127.0.0.1", port: int = 4224, **kw: Any) -> int:
        from betanet.dtn.mtcp import serve_mtcp
        srv = await serve_mtcp(host, port, on_bundle=self.receive_bundle, **kw)
        self._servers.append(srv)
        return srv.port

    def add_link(self, peer: EID | str, link: ConvergenceLayer, *, up: bool = True) -> None:
        """A link to a next hop (its node id). ``up=False``: the contact opens later
        (:meth:`set_contact`)."""
        name = str((EID.parse(peer) if isinstance(peer, str) else peer).node_id)
        if name in self.peers:
            raise StateError(f"a link to {name} exists; remove it first")
        p = _Peer(name, link, up)
        self.peers[name] = p
        p.tasks.append(asyncio.create_task(self._connector(p), name=f"dtn-contact-{name}"))
        p.tasks += [asyncio.create_task(self._sender(p), name=f"dtn-send-{name}")
                    for _ in range(self.window)]
        p.tasks.append(asyncio.create_task(self._reader(p), name=f"dtn-read-{name}"))

    def connect_tcpcl(self, peer: EID | str, host: str, port: int = 4556, *, up: bool = True,
                      **session_kw: Any) -> ConvergenceLayer:
        """``add_link`` with a TCPCLv4 link that announces this node's id and stores every
        bundle the peer sends back before acknowledging it."""
        from betanet.dtn.cla import TcpclLink
        from betanet.dtn.tcpcl.protocol import SessionConfig
        session_kw.setdefault("config", SessionConfig(node_id=self.agent.name))
        link = TcpclLink(host, port, on_bundle=self.receive_bundle, **session_kw)
        self.add_link(peer, link, up=up)
        return link

    async def remove_link(self, peer: str) -> None:
        p = self.peers.pop(str(EID.parse(peer).node_id), None)
        if p is not None:
            await self._stop_peer(p)

    async def _inbound(self, conn: Any) -> None:
        """A TCPCL session from a peer that named its node id (SESS_INIT) is a contact to it
        for as long as the session lasts, unless a configured link to that node exists."""
        try:
            name = str(EID.parse(conn.peer_node_id).node_id)
        except BetanetError:
            return
        if name in self.peers or name == self.agent.name or self._closing:
            return
        self.add_link(name, _SessionLink(conn))

        async def drop_when_closed() -> None:
            await conn.closed.wait()
            p = self.peers.get(name)
            if p is not None and isinstance(p.link, _SessionLink) and p.link.conn is conn:
                del self.peers[name]
                await self._stop_peer(p)
        self._spawn(drop_when_closed())

    def set_contact(self, peer: str, up: bool) -> None:
        """Open or close the contact to peer (a scheduled window, an encounter)."""
        p = self.peers.get(str(EID.parse(peer).node_id))
        if p is None:
            raise InvalidArgumentError(f"no link to {peer}")
        p.enabled = up
        p.wake.set()

    @property
    def contacts(self) -> dict[str, bool]:
        """Peer node id -> contact up now."""
        return {n: p.up for n, p in self.peers.items()}

    async def _stop_peer(self, p: _Peer) -> None:
        p.enabled = False
        p.stopped = True
        p.wake.set()
        await _cancel(p.tasks)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.link.close_contact(), 2.0)
        self._link_down(p)

    def _link_down(self, p: _Peer) -> None:
        if p.up:
            p.up = False
            self.agent.contact_down(p.name)
            while not p.queue.empty():    # not sent: the agent decides again
                tx = p.queue.get_nowait()
                self._run_now(self.agent.sent(tx.bundle_id, p.name, False, now_ms=self.now_ms()))
            self._kick.set()

    async def _connector(self, p: _Peer) -> None:
        delay = 0.05
        while not p.stopped:
            if p.enabled and not p.up:
                try:
                    await asyncio.wait_for(p.link.open_contact(), 10.0)
                except (OSError, asyncio.TimeoutError, BetanetError) as e:
                    log.debug("dtn node: contact to %s failed: %s", p.name, e)
                    p.wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(p.wake.wait(), delay)
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.05
                p.up = True
                await self._run(self.agent.contact_up(p.name, now_ms=self.now_ms()))
                self._kick.set()
            elif not p.enabled and p.up:
                self._link_down(p)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(p.link.close_contact(), 2.0)
            p.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(p.wake.wait(), 0.5)
            if p.up and not p.link.up:
                self._link_down(p)

    async def _reader(self, p: _Peer) -> None:
        """Bundles the peer sends back over our link (links built with
        ``on_bundle=node.receive_bundle`` bypass this and store before acknowledging)."""
        async for data in p.link.received():
            try:
                await self.receive_bundle(data)
            except BetanetError as e:
                log.info("dtn node: bundle from %s refused: %s", p.name, e)

    async def _sender(self, p: _Peer) -> None:
        while True:
            tx = await p.queue.get()
            ok = False
            if p.up and p.enabled:
                try:
                    await p.link.send(tx.data)
                    ok = True
                except (OSError, asyncio.TimeoutError, BetanetError) as e:
                    log.info("dtn node: send to %s failed: %s", p.name, e)
                    self._link_down(p)
                    p.wake.set()
            await self._run(self.agent.sent(tx.bundle_id, p.name, ok, now_ms=self.now_ms()))
            self._kick.set()

    # ---- reception ---------------------------------------------------------------------------
    async def receive_bundle(self, data: bytes) -> None:
        """A bundle from any convergence layer: returns once it is stored (so an acknowledgment
        sent after it means "durable"); raises to refuse it (TCPCL XFER_REFUSE)."""
        await self._run(self.agent.receive(data, now_ms=self.now_ms()))
        self._kick.set()

    # ---- carrying out actions ----------------------------------------------------------------
    def _spawn(self, coro: Awaitable[Any]) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.append(t)
        t.add_done_callback(self._reap)

    def _reap(self, t: asyncio.Task) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(t)
        if not t.cancelled() and t.exception() is not None:
            self.errors += 1
            log.error("dtn node %s: %r", self.agent.name, t.exception())

    def _run_now(self, actions: list[Action]) -> None:
        if actions:
            self._spawn(self._run(actions))

    async def _run(self, actions: list[Action]) -> None:
        store = self.store
        assert store is not None
        for a in actions:
            if isinstance(a, Persist):
                h = a.held
                try:
                    new = await store.put(h.id, h.data, destination=str(h.destination), source=h.source,
                                          expires_at=dtn_ms_to_unix(h.expires_ms), priority=h.priority,
                                          custody=h.custody)
                except LimitExceededError:
                    await self._run(self.agent.refused(h.id, ReasonCode.DEPLETED_STORAGE, now_ms=self.now_ms()))
                    raise
                except ExpiredError:
                    await self._run(self.agent.refused(h.id, ReasonCode.LIFETIME_EXPIRED, now_ms=self.now_ms()))
                    continue
                await self._run(self.agent.persisted(h.id, new, now_ms=self.now_ms()))
                self._kick.set()
            elif isinstance(a, Transmit):
                p = self.peers.get(a.peer)
                if p is None or not p.up:
                    await self._run(self.agent.sent(a.bundle_id, a.peer, False, now_ms=self.now_ms()))
                else:
                    p.queue.put_nowait(a)
            elif isinstance(a, Deliver):
                reg = self.registrations.get(a.endpoint)
                if reg is None:
                    continue  # unregistered since: stays stored, offered at the next start
                if reg.callback is None:
                    await reg._offer(a)
                else:
                    self._spawn(reg._offer(a))
            elif isinstance(a, Forget):
                with contextlib.suppress(StateError):
                    await store.forwarded(a.bundle_id)
            elif isinstance(a, ReportReceived):
                self.reports.append(a)
                if self.on_report is not None:
                    self.on_report(a)

    async def _poller(self) -> None:
        while not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.tick)
            self._kick.clear()
            up = [n for n, p in self.peers.items() if p.up and p.enabled]
            try:
                await self._run(self.agent.poll(self.now_ms(), up))
            except Exception:
                self.errors += 1
                log.exception("dtn node %s: poll failed", self.agent.name)

    async def _purger(self) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(60.0)
            with contextlib.suppress(BetanetError):
                await self.store.purge_expired()

    # ---- status -------------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        assert self.store is not None
        st = await self.store.stats()
        out = self.agent.stats()
        out["store"] = {"count": st.count, "bytes": st.bytes,
                        "by_state": {s.name.lower(): n for s, n in st.by_state.items()}}
        out["contacts"] = self.contacts
        out["errors"] = self.errors
        return out
