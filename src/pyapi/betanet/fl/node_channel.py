"""The FL ``Channel`` over node messages (``betanet.node``): a round runs between Node
instances whatever link carries their messages -- HTX now, the BLE mesh or DTN custody when
the internet is gone (docs/fl.md, "Over the node").

Every FL frame is one node message on a dedicated topic (``"fl"``), so it inherits what the
node gives each message: sealed to the recipient, signed by the sender's Ed25519 key,
exactly-once and in order per sender, committed to the store before ``send`` returns. The
first byte of a message says what it is: HELLO (a participant joins; the body is its signed
peer record, so the coordinator can answer without being told about it beforehand), DATA
(one FL frame), BYE (the channel ends, as a closed HTX connection does).

Identity: a participant *is* its node. The coordinator's directory (participant id ->
Ed25519 public key, which signs round keys and receipts) holds the node's signing key, and
the node's PeerID is the multihash of that key, so the coordinator maps a message's
verified sender to a participant id with no second table: a peer cannot claim another's
id, and a message from a PeerID outside the directory is dropped. ``fl_identity`` gives the
node's key in the form the orchestrator signs with. Reusing the key is safe because every
signature it makes is domain-separated (``betanet/node/msg/1``, ``betanet/fl/receipt/v1``,
``betanet/secagg/v1/...``).

Timing: a node message may wait in the store (DTN) for as long as its deadline; the
orchestrator's stage timeouts (``RoundPlan.stage_timeout``, the participant's
``stage_timeout``) and this transport's ``deadline_ms`` must then be set to the hours a
disconnected network needs, not the seconds HTX does.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet._log import escape
from betanet.errors import BetanetError, InvalidArgumentError, StateError
from betanet.node.identity import Identity, peer_id_of, peer_id_text
from betanet.node.node import DeliveryHandle, Node, Received

log = logging.getLogger(__name__)

__all__ = ["NodeChannel", "NodeCoordinatorTransport", "NodeParticipantTransport",
           "fl_identity", "peer_of", "TOPIC"]

TOPIC = "fl"
HELLO, DATA, BYE = b"H", b"D", b"B"


def fl_identity(identity: Identity) -> Ed25519PrivateKey:
    """The node's Ed25519 key as the orchestrator signs with it (the same key)."""
    return Ed25519PrivateKey.from_private_bytes(identity.signing_seed)


def peer_of(signing_public: bytes) -> str:
    """The PeerID (text) of the node whose Ed25519 key is ``signing_public``."""
    return peer_id_text(peer_id_of(signing_public))


class NodeChannel:
    """An ordered FL message channel to one node over ``node.send``/topic messages."""

    def __init__(self, node: Node, dest: str, peer: int, topic: str,
                 deadline_ms: int | None) -> None:
        self.peer = peer
        self.dest = dest
        self._node, self._topic, self._deadline = node, topic, deadline_ms
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._handles: list[DeliveryHandle] = []
        self.closed = False

    async def _post(self, kind: bytes, body: bytes = b"") -> DeliveryHandle:
        h = await self._node.send(self.dest, kind + body, topic=self._topic,
                                  deadline_ms=self._deadline)
        # keep only what is not yet acknowledged (drain waits for those)
        self._handles = [x for x in self._handles if not x.is_acked] + [h]
        return h

    async def send(self, data: bytes) -> None:
        """Commits the frame to the node's outbox; the node delivers it (or it expires)."""
        if self.closed:
            raise ConnectionError("FL channel closed")
        await self._post(DATA, bytes(data))

    async def recv(self) -> bytes:
        data = await self._inbox.get()
        if data is None:
            self._inbox.put_nowait(None)      # every later recv ends too
            raise ConnectionError("FL channel ended")
        return data

    async def drain(self, timeout: float | None = None) -> None:
        """Until every frame sent so far is acknowledged end to end by the peer's node
        (asyncio.TimeoutError after ``timeout``; ExpiredError if one passed its deadline)."""
        await asyncio.wait_for(asyncio.gather(*(h.acked() for h in self._handles)), timeout)

    def _deliver(self, data: bytes) -> None:
        if not self.closed:
            self._inbox.put_nowait(data)

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self._inbox.put_nowait(None)

    async def close(self) -> None:
        """Ends the channel here and tells the peer (best effort: a stopped node cannot)."""
        if self.closed:
            return
        self._end()
        try:
            await self._post(BYE)
        except BetanetError as exc:
            log.debug("FL: no BYE to %s: %s", self.dest, escape(exc))


def _kind(msg: Received) -> tuple[bytes, bytes]:
    return msg.body[:1], msg.body[1:]


class NodeCoordinatorTransport:
    """The coordinator's side: participants join by a HELLO message on ``topic``.
    ``directory``: participant id -> Ed25519 public key, the same mapping the
    ``CoordinatorService`` checks signatures with; a participant's node is the one whose
    PeerID that key hashes to."""

    def __init__(self, node: Node, directory: Mapping[int, bytes], *, topic: str = TOPIC,
                 deadline_ms: int | None = None) -> None:
        if not topic:
            raise InvalidArgumentError("the FL topic must not be empty")
        self.node = node
        self._peers = {peer_of(pk): pid for pid, pk in directory.items()}
        self._topic, self._deadline = topic, deadline_ms
        self._channels: dict[str, NodeChannel] = {}
        self._on_channel: Callable[[NodeChannel], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task] = set()
        self.refused = 0                       # messages from PeerIDs outside the directory

    async def start(self, on_channel: Callable[[NodeChannel], Awaitable[None]]) -> None:
        if not self.node.running:
            raise StateError("start the node before the FL transport")
        self._on_channel = on_channel
        self.node.on(self._topic, self._on_message)

    async def _on_message(self, msg: Received) -> None:
        # runs in the node's dispatch loop: never block here
        pid = self._peers.get(msg.sender)
        if pid is None:
            self.refused += 1
            log.warning("FL: dropped a message from %s, not in the directory", escape(msg.sender))
            return
        kind, body = _kind(msg)
        ch = self._channels.get(msg.sender)
        if kind == HELLO:
            self._learn(msg.sender, body)
            if ch is not None:                 # the participant restarted: a new channel
                ch._end()
            ch = self._channels[msg.sender] = NodeChannel(self.node, msg.sender, pid,
                                                          self._topic, self._deadline)
            assert self._on_channel is not None
            t = asyncio.ensure_future(self._on_channel(ch))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        elif ch is None:
            log.info("FL: message from participant %d outside a channel", pid)
        elif kind == DATA:
            ch._deliver(body)
        elif kind == BYE:
            ch._end()
            del self._channels[msg.sender]
        else:
            log.info("FL: participant %d sent an unknown message kind %r", pid, kind)

    def _learn(self, sender: str, raw: bytes) -> None:
        """A HELLO carries the participant's signed peer record (optional)."""
        if not raw or sender in self.node.peers:
            return
        try:
            if self.node.add_peer(raw).peer != sender:   # signed by its node: harmless, but odd
                log.warning("FL: participant %s sent another node's record", escape(sender))
        except BetanetError as exc:
            log.info("FL: bad peer record in a HELLO from %s: %s", escape(sender), escape(exc))

    async def close(self) -> None:
        for ch in list(self._channels.values()):
            await ch.close()
        self._channels.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class NodeParticipantTransport:
    """A participant's way to its coordinator: the coordinator's PeerID (its record must be
    in the node's peer book). ``connect`` says HELLO and returns the channel."""

    def __init__(self, node: Node, coordinator: str, *, topic: str = TOPIC,
                 deadline_ms: int | None = None, send_record: bool = True) -> None:
        if not topic:
            raise InvalidArgumentError("the FL topic must not be empty")
        self.node = node
        self.coordinator = coordinator
        self._topic, self._deadline, self._send_record = topic, deadline_ms, send_record
        self.channel: NodeChannel | None = None

    async def connect(self) -> NodeChannel:
        if not self.node.running:
            raise StateError("start the node before the FL transport")
        self.node.peers.get(self.coordinator)          # NotFoundError: no record for it
        ch = self.channel = NodeChannel(self.node, self.coordinator, 0, self._topic, self._deadline)
        self.node.on(self._topic, self._on_message)
        await ch._post(HELLO, self.node.record().raw if self._send_record else b"")
        return ch

    async def _on_message(self, msg: Received) -> None:
        ch = self.channel
        if msg.sender != self.coordinator or ch is None:
            log.warning("FL: dropped a message from %s, not the coordinator", escape(msg.sender))
            return
        kind, body = _kind(msg)
        if kind == DATA:
            ch._deliver(body)
        elif kind == BYE:
            ch._end()
        else:
            log.info("FL: coordinator sent an unknown message kind %r", kind)
