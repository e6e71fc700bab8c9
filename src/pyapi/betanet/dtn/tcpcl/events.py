"""Events the sans-IO TCPCLv4 session returns, and the RFC 9174 code points."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "MessageType", "SessTermReason", "RefuseReason", "RejectReason", "ExtensionItem",
    "Event", "StartTls", "SessionEstablished", "BundleReceived", "TransferAcknowledged",
    "TransferRefused", "MessageRejected", "SessionTerminating", "SessionClosed",
]


class MessageType(IntEnum):
    XFER_SEGMENT = 0x01
    XFER_ACK = 0x02
    XFER_REFUSE = 0x03
    KEEPALIVE = 0x04
    SESS_TERM = 0x05
    MSG_REJECT = 0x06
    SESS_INIT = 0x07


class SessTermReason(IntEnum):
    UNKNOWN = 0x00
    IDLE_TIMEOUT = 0x01
    VERSION_MISMATCH = 0x02
    BUSY = 0x03
    CONTACT_FAILURE = 0x04
    RESOURCE_EXHAUSTION = 0x05


class RefuseReason(IntEnum):
    UNKNOWN = 0x00
    COMPLETED = 0x01
    NO_RESOURCES = 0x02
    RETRANSMIT = 0x03
    NOT_ACCEPTABLE = 0x04
    EXTENSION_FAILURE = 0x05
    SESSION_TERMINATING = 0x06


class RejectReason(IntEnum):
    TYPE_UNKNOWN = 0x01
    UNSUPPORTED = 0x02
    UNEXPECTED = 0x03


@dataclass(frozen=True)
class ExtensionItem:
    """A session or transfer extension item (RFC 9174 §4.8, §5.2.5)."""
    type: int
    value: bytes = b""
    critical: bool = False


class Event:
    """Base class of session events."""


@dataclass(frozen=True)
class StartTls(Event):
    """Both contact headers carried CAN_TLS: the adapter must run the TLS handshake now (the
    active entity as client) and then call ``Session.tls_established()``."""
    server_side: bool


@dataclass(frozen=True)
class SessionEstablished(Event):
    peer_node_id: str
    keepalive: int            # negotiated seconds, 0 = disabled
    peer_segment_mru: int     # our segment MTU
    peer_transfer_mru: int    # our transfer MTU
    tls: bool
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(slots=True)  # not frozen: built once per bundle, frozen init costs ~1 µs
class BundleReceived(Event):
    """A complete incoming transfer. Its final XFER_ACK is sent when the adapter calls
    ``ack_transfer`` (after the bundle is stored) or refused by ``refuse_transfer``."""
    transfer_id: int
    data: bytes
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(slots=True)  # not frozen: built once per bundle, frozen init costs ~1 µs
class TransferAcknowledged(Event):
    transfer_id: int
    length: int
    complete: bool


@dataclass(frozen=True)
class TransferRefused(Event):
    transfer_id: int
    reason: int


@dataclass(frozen=True)
class MessageRejected(Event):
    reason: int
    message_type: int


@dataclass(frozen=True)
class SessionTerminating(Event):
    reason: int
    by_peer: bool


@dataclass(frozen=True)
class SessionClosed(Event):
    """The session is over; the adapter closes the connection. ``unacknowledged`` lists our
    transfers that were not fully acknowledged (the caller retries them on a new session)."""
    reason: str
    unacknowledged: tuple[int, ...] = field(default=())
