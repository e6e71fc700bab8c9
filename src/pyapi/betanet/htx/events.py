"""Events returned by ``HTXConnection.receive_data`` (h2 style)."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Event", "HandshakeCompleted", "StreamOpened", "StreamData", "StreamEnded", "StreamReset",
           "WindowUpdated", "PingReceived", "PingAcked", "KeyUpdated", "ConnectionClosed"]


class Event:
    """Base class of HTX events."""


@dataclass
class HandshakeCompleted(Event):
    """The Noise XK handshake finished; frames may flow."""
    remote_static_public: bytes
    handshake_hash: bytes


@dataclass
class StreamOpened(Event):
    """The peer opened a stream (its first frame arrived)."""
    stream_id: int


@dataclass
class StreamData(Event):
    """Data on a stream. Call ``acknowledge_received_data(len(data), stream_id)`` once consumed."""
    stream_id: int
    data: bytes = field(repr=False)


@dataclass
class StreamEnded(Event):
    """The peer will send no more on this stream (FIN)."""
    stream_id: int


@dataclass
class StreamReset(Event):
    """The stream was aborted (by the peer unless ``remote`` is False)."""
    stream_id: int
    code: int
    remote: bool = True


@dataclass
class WindowUpdated(Event):
    """The peer granted more send window (stream_id 0: the connection)."""
    stream_id: int
    delta: int


@dataclass
class PingReceived(Event):
    """The peer pinged; the reply is already queued."""
    token: bytes


@dataclass
class PingAcked(Event):
    """The peer answered one of our pings."""
    token: bytes


@dataclass
class KeyUpdated(Event):
    """The peer switched its sending key (we switched our receive key)."""
    epoch: int


@dataclass
class ConnectionClosed(Event):
    """The connection is over. ``remote``: the peer sent CLOSE (or went away).
    ``error`` is the exception describing a failure, None for a clean close."""
    code: int
    reason: str
    remote: bool
    error: Exception | None = None
