"""HTX: Betanet's encrypted, authenticated, multiplexed channel (docs/htx.md).

- ``HTXConnection``: the sans-IO protocol (Noise XK handshake, frames, streams, flow
  control, key updates), in the style of h2.
- ``connect`` / ``serve``: asyncio over TCP+TLS 1.3, QUIC v1 or plain TCP, with
  ``Connection`` and ``Stream`` objects.
- key helpers: ``generate_private_key``, ``public_key``, ``save_private_key``, ...
"""
from betanet.htx.aio import Connection, HTXTimeoutError, Stream, StreamResetError
from betanet.htx.connection import ConnectionClosedError, FlowControlError, HTXConfig, HTXConnection
from betanet.htx.events import (ConnectionClosed, Event, HandshakeCompleted, KeyUpdated, PingAcked,
                                PingReceived, StreamData, StreamEnded, StreamOpened, StreamReset,
                                WindowUpdated)
from betanet.htx.keys import (generate_private_key, load_private_key, load_public_key, public_key,
                              save_private_key, save_public_key)
from betanet.htx.protocol import ALPN, PROLOGUE, CloseCode, FrameType
from betanet.htx.transports import Server, connect, serve

__all__ = [
    "HTXConnection", "HTXConfig", "connect", "serve", "Server", "Connection", "Stream",
    "HTXTimeoutError", "StreamResetError", "ConnectionClosedError", "FlowControlError",
    "Event", "HandshakeCompleted", "StreamOpened", "StreamData", "StreamEnded", "StreamReset",
    "WindowUpdated", "PingReceived", "PingAcked", "KeyUpdated", "ConnectionClosed",
    "generate_private_key", "public_key", "save_private_key", "load_private_key",
    "save_public_key", "load_public_key", "CloseCode", "FrameType", "PROLOGUE", "ALPN",
]
