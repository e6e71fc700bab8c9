"""The bottom of ``betanet.mix``: wire constants, the frame and body codecs, descriptors and
the directory, counters. Imports nothing else from the package (docs/sphinx.md, "Mixnet
service")."""
from __future__ import annotations

import collections
import struct
from dataclasses import dataclass, field
from typing import Iterable

from betanet.errors import (AuthenticationError, ExpiredError, InvalidArgumentError,
                            LimitExceededError, MalformedError, NotFoundError, ReplayError)
from betanet.sphinx import Geometry

__all__ = [
    "FRAME_PACKET", "FRAME_DELIVER", "FRAME_REPLY", "MAX_FRAME", "TCP_FRAMING", "HTX_WEB", "TRANSPORT_KINDS",
    "KIND_DATA", "KIND_LOOP", "KIND_DROP", "DELAY_CAP_FACTOR", "Address",
    "encode_frame", "encode_body", "decode_body", "Descriptor", "Directory", "MixCounters",
    "Message", "drop_reason",
]

# ---- link frames: BE32(1 + len(data)) ‖ type ‖ data -----------------------------------------
FRAME_PACKET, FRAME_DELIVER, FRAME_REPLY = 1, 2, 3
MAX_FRAME = 1 << 17                    # bytes of type + data in one frame
TCP_FRAMING = "tcp-framing"
HTX_WEB = "htx-web"
TRANSPORT_KINDS = ("htx-tcp", "htx-quic", "htx-plain", TCP_FRAMING, HTX_WEB)

Address = tuple[str, int]


def encode_frame(frame_type: int, data: bytes) -> bytes:
    """``BE32(1 + len(data)) ‖ type ‖ data`` — the one mix frame encoding of every link."""
    return (len(data) + 1).to_bytes(4, "big") + bytes([frame_type]) + data


# ---- message bodies inside Sphinx ----------------------------------------------------------
KIND_DATA, KIND_LOOP, KIND_DROP = 1, 2, 3
_BODY_HDR = struct.Struct(">BHH")      # kind, message length, SURB length

#: Per-hop delays above ``DELAY_CAP_FACTOR`` × the mean are refused by mixnodes (a sender
#: asking for weeks would pin held slots) and never drawn by clients.
DELAY_CAP_FACTOR = 5


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


# ---- directory ------------------------------------------------------------------------------
def check_spki_pin(pin: str) -> str:
    """``""`` or ``sha256//`` + Base64 of 32 bytes (curl's PINNEDPUBLICKEY form)."""
    import base64
    import binascii
    if pin:
        try:
            ok = pin.startswith("sha256//") and len(base64.b64decode(pin[8:], validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise InvalidArgumentError("descriptor spki_pin must be 'sha256//<base64 of 32 bytes>', "
                                       f"not {pin[:60]!r}")
    return pin


@dataclass(frozen=True)
class Descriptor:
    """A reachable endpoint: a mixnode (with a Sphinx key and AS group) or a client.

    ``transport`` says how to reach it (one of ``TRANSPORT_KINDS``); for the HTX kinds
    ``htx_public_key`` is its X25519 HTX static key, which connecting peers pin (Noise XK).
    "htx-web" endpoints also publish what a dialer needs to get past their decoy site:
    ``ticket`` (the access-ticket publication line, ``BN-Ticket: v1; ...``: ticket public
    key, key id, carrier policy, cookie name) and ``spki_pin`` (``sha256//<base64>`` of the
    TLS certificate's key; empty: dialers verify the chain only when given a CA, as for
    htx-tcp)."""

    node_id: bytes
    address: Address
    sphinx_public_key: bytes = b""
    as_group: int = 0
    htx_public_key: bytes = b""
    transport: str = TCP_FRAMING
    ticket: str = ""
    spki_pin: str = ""

    @classmethod
    def at_address(cls, address: Address) -> Descriptor:
        """An endpoint known only by its address: reached with plain framing."""
        return cls(b"", (address[0], int(address[1])))

    @property
    def is_mixnode(self) -> bool:
        return len(self.sphinx_public_key) == 32

    def to_json(self) -> dict:
        d = {"node_id": self.node_id.hex(), "address": list(self.address),
             "sphinx_public_key": self.sphinx_public_key.hex(), "as_group": self.as_group,
             "transport": self.transport, "htx_public_key": self.htx_public_key.hex()}
        if self.transport == HTX_WEB:
            d["ticket"], d["spki_pin"] = self.ticket, self.spki_pin
        return d

    @classmethod
    def from_json(cls, d: dict) -> Descriptor:
        transport = d.get("transport", TCP_FRAMING)
        if transport not in TRANSPORT_KINDS:
            raise InvalidArgumentError(f"descriptor transport {transport!r} is not one of {TRANSPORT_KINDS}")
        htx_key = bytes.fromhex(d.get("htx_public_key", ""))
        if transport != TCP_FRAMING and len(htx_key) != 32:
            raise InvalidArgumentError(f"descriptor for {transport} needs a 32-byte htx_public_key")
        ticket, pin = "", ""
        if transport == HTX_WEB:
            from betanet.tls.tickets import TicketPublication
            ticket, pin = str(d.get("ticket", "")), str(d.get("spki_pin", ""))
            TicketPublication.from_text(ticket)          # MalformedError if unusable
            check_spki_pin(pin)
        return cls(bytes.fromhex(d["node_id"]), (d["address"][0], int(d["address"][1])),
                   bytes.fromhex(d.get("sphinx_public_key", "")), int(d.get("as_group", 0)),
                   htx_key, transport, ticket, pin)

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

    def is_mixnode_link_key(self, htx_public_key: bytes) -> bool:
        """Whether a mixnode listed here advertises this HTX static key (the key a link
        peer proved in its Noise XK handshake)."""
        return bool(htx_public_key) and any(e.htx_public_key == htx_public_key
                                            for e in self._by_id.values() if e.is_mixnode)

    def get(self, node_id: bytes) -> Descriptor | None:
        return self._by_id.get(node_id)

    @property
    def mixnodes(self) -> list[Descriptor]:
        return [e for e in self._by_id.values() if e.is_mixnode]

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass(frozen=True)
class Message:
    """A message delivered to a local application; ``surb`` lets it reply once."""

    destination: bytes
    data: bytes
    surb: bytes = b""


# ---- counters -------------------------------------------------------------------------------
@dataclass
class MixCounters:
    """Everything a node, client or transport counts (shown by the CLI, logged on shutdown).

    One object is shared by an endpoint and its transport (given to the transport at
    construction)."""

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
    # lost (an open link failed), bad-frame, link-busy, too-many-links, idle-timeout, evicted
    tick_errors: collections.Counter = field(default_factory=collections.Counter)
    # a Poisson tick (payload, loop or drop) that could not send, by reason (no-route, ...)

    _COUNTERS = ("dropped", "link_errors", "tick_errors")

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in self._COUNTERS}
        for k in self._COUNTERS:
            d[k] = dict(getattr(self, k))
        return d

    def summary(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        links = ", ".join(f"{k}={v}" for k, v in sorted(self.link_errors.items())) or "none"
        ticks = ", ".join(f"{k}={v}" for k, v in sorted(self.tick_errors.items()))
        return (f"received={self.received} sent={self.sent} forwarded={self.forwarded} delivered={self.delivered} "
                f"replies={self.replies} loops sent/returned={self.loops_sent}/{self.loops_returned} "
                f"drop-cover sent/absorbed={self.drops_sent}/{self.cover_dropped} "
                f"batches={self.batches} links out/in={self.links_opened}/{self.links_accepted} "
                f"link errors: {links} dropped: {drops}" + (f" failed ticks: {ticks}" if ticks else ""))


_REASON = {MalformedError: "malformed", AuthenticationError: "auth", ReplayError: "replay",
           ExpiredError: "expired", NotFoundError: "unknown-epoch", LimitExceededError: "replay-filter-full"}


def drop_reason(err: BaseException) -> str:
    """The counter name of a Sphinx processing error."""
    for cls, name in _REASON.items():
        if isinstance(err, cls):
            return name
    return "error"
