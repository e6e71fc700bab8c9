"""What the sans-IO mix protocols return: actions for the adapter to carry out (send a
frame) and events for the application. Plain data, no behaviour."""
from __future__ import annotations

from dataclasses import dataclass, field

from betanet.mix.types import Message

__all__ = ["Event", "Forward", "Deliver", "Reply", "Drop", "MessageReceived", "ReplyReceived",
           "ReplyExpired", "SendPacket"]


class Event:
    """Base class of everything the mix protocols return."""


@dataclass(frozen=True)
class Forward(Event):
    """Send the Sphinx ``packet`` (a PACKET frame) to mixnode ``next_node``."""
    next_node: bytes
    packet: bytes = field(repr=False)


@dataclass(frozen=True)
class Deliver(Event):
    """Send ``body`` in a DELIVER frame to the (client) endpoint ``destination``."""
    destination: bytes
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Reply(Event):
    """Send a SURB reply (REPLY frame) to endpoint ``destination``."""
    destination: bytes
    surb_id: bytes
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Drop(Event):
    """A frame or packet was discarded; ``reason`` is the counter it was counted under."""
    reason: str


@dataclass(frozen=True)
class MessageReceived(Event):
    """A data message for the local application (node: its own id; client: its id)."""
    message: Message


@dataclass(frozen=True)
class ReplyReceived(Event):
    """A SURB reply opened by the client; ``ticket`` names the message it answers."""
    ticket: int
    data: bytes


@dataclass(frozen=True)
class ReplyExpired(Event):
    """The SURB of message ``ticket`` was forgotten (``max_pending_surbs``): no reply will come."""
    ticket: int


@dataclass(frozen=True)
class SendPacket(Event):
    """An originated packet (message, reply or cover) to send to its first hop."""
    first_hop: bytes
    packet: bytes = field(repr=False)
    kind: int = 0                  # KIND_DATA / KIND_LOOP / KIND_DROP (for counting only)
