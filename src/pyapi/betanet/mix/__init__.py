"""Mixnet service and client over Sphinx packets (Loopix-style Poisson mixing; docs/sphinx.md).

Layers, bottom up (no module imports one above it, none imports this package):

- ``types``: frame and body codecs, :class:`Descriptor`, :class:`Directory`,
  :class:`MixCounters`, :class:`Message`; ``events``: what the protocols return;
  ``ratelog``, ``held`` (the fair bounded store of held packets), ``routes`` (route
  choice and packet creation).
- ``protocol``: the sans-IO :class:`MixnodeProtocol` and :class:`MixClientProtocol`
  (``receive_frame(kind, data, now)`` → events, ``tick(now, rng)``), no asyncio.
- ``transport`` (:class:`PacketTransport`, :class:`TcpTransport`), ``htx_transport``
  (:class:`HtxTransport`, :func:`make_transport`), ``sendq`` (bounded outgoing queues).
- ``node`` (:class:`Mixnode`), ``client`` (:class:`MixClient`): thin asyncio adapters;
  ``local`` (:class:`LocalMixnet`); ``cli`` (``betanet mixnode``).
"""
from betanet.errors import InvalidArgumentError
from betanet.mix.cli import add_parser
from betanet.mix.client import MixClient
from betanet.mix.events import (Deliver, Drop, Event, Forward, MessageReceived, Reply, ReplyExpired,
                                ReplyReceived, SendPacket)
from betanet.mix.htx_transport import HtxTransport, LinkBusyError, make_transport
from betanet.mix.local import LocalMixnet
from betanet.mix.node import Mixnode
from betanet.mix.protocol import MixClientProtocol, MixnodeProtocol, dispatch_body
from betanet.mix.routes import RandomSelector, RouteBuilder, RouteSelectorLike
from betanet.mix.transport import FrameHandler, PacketTransport, TcpTransport
from betanet.mix.types import (DELAY_CAP_FACTOR, FRAME_DELIVER, FRAME_PACKET, FRAME_REPLY, KIND_DATA,
                               KIND_DROP, KIND_LOOP, MAX_FRAME, TCP_FRAMING, TRANSPORT_KINDS,
                               Descriptor, Directory, Message, MixCounters, decode_body,
                               encode_body, encode_frame)

__all__ = [
    "Descriptor", "Directory", "MixCounters", "Message", "Mixnode", "MixClient",
    "MixnodeProtocol", "MixClientProtocol", "dispatch_body",
    "Event", "Forward", "Deliver", "Reply", "Drop", "MessageReceived", "ReplyReceived",
    "ReplyExpired", "SendPacket",
    "PacketTransport", "TcpTransport", "HtxTransport", "LinkBusyError", "make_transport",
    "FrameHandler", "TRANSPORT_KINDS", "TCP_FRAMING", "MAX_FRAME",
    "FRAME_PACKET", "FRAME_DELIVER", "FRAME_REPLY", "encode_frame",
    "LocalMixnet", "RouteSelectorLike", "RandomSelector", "RouteBuilder", "DELAY_CAP_FACTOR",
    "encode_body", "decode_body", "KIND_DATA", "KIND_LOOP", "KIND_DROP", "add_parser",
    "InvalidArgumentError",
]
