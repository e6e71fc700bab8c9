"""Sphinx mix packets (Danezis–Goldberg 2009) over X25519, computed in libbetanet.

A sender wraps a body for a route of mixnodes (:func:`create_packet`); each mixnode's
:class:`SphinxNode` peels one layer and learns only the next hop and how long to hold the
packet (:class:`Relay`), or, at the end, the destination and the body (:class:`Deliver`)
or a SURB reply for its creator (:class:`Reply`). Byte layout: ``docs/sphinx.md``.

>>> geom = Geometry()                                   # 5 hops, 2048-byte payload
>>> keys = [KeyPair.generate() for _ in range(3)]
>>> route = [NodeInfo(bytes([i]) * 32, k.public_key) for i, k in enumerate(keys)]
>>> packet = create_packet(geom, epoch=1, route=Route(route, [0, 0, 0]),
...                        destination=b"D" * 32, body=b"hi")
"""
from __future__ import annotations

import secrets
from collections import abc
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence, Union

from betanet._check import byte_buffer as _byte_buffer, integer as _integer
from betanet._native import sphinx as _sx
from betanet.errors import ArgumentTypeError, BetanetError, InvalidArgumentError

__all__ = [
    "kernel",
    "Geometry", "KeyPair", "NodeInfo", "Route", "Relay", "Deliver", "Reply", "Result",
    "SphinxNode", "Surb", "SurbSecret", "create_packet", "create_surb", "use_surb", "open_reply",
    "DEFAULT_HOPS", "DEFAULT_PAYLOAD", "MAX_HOPS", "MAX_EPOCHS",
]

Buffer = Union[bytes, bytearray, memoryview]

DEFAULT_HOPS: int = _sx.DEFAULT_HOPS
DEFAULT_PAYLOAD: int = _sx.DEFAULT_PAYLOAD
MAX_HOPS: int = _sx.MAX_HOPS
MAX_EPOCHS: int = _sx.MAX_EPOCHS


@dataclass(frozen=True)
class Geometry:
    """Packet geometry: every node of a mixnet uses the same one. Sizes are computed by the C
    library (``BETANET_SPHINX_*_BYTES``)."""

    max_hops: int = DEFAULT_HOPS
    payload_bytes: int = DEFAULT_PAYLOAD
    header_bytes: int = field(init=False)
    packet_bytes: int = field(init=False)
    body_bytes: int = field(init=False)
    surb_bytes: int = field(init=False)
    surb_secret_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        _integer(self.max_hops, "max_hops")
        _integer(self.payload_bytes, "payload_bytes")
        h, p, b, s, k = _sx.sizes(self.max_hops, self.payload_bytes)
        for name, value in (("header_bytes", h), ("packet_bytes", p), ("body_bytes", b),
                            ("surb_bytes", s), ("surb_secret_bytes", k)):
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class KeyPair:
    """A mixnode's X25519 Sphinx key for one epoch."""

    public_key: bytes
    secret_key: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(*_sx.keypair())

    @classmethod
    def from_seed(cls, seed: Buffer) -> KeyPair:
        """Deterministic key from a 32-byte seed (tests, vectors, derived epoch keys)."""
        return cls(*_sx.keypair(bytes(_byte_buffer(seed, "seed"))))


@dataclass(frozen=True)
class NodeInfo:
    """What a sender needs about a hop: its 32-byte id and its Sphinx public key."""

    node_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.node_id) != 32 or len(self.public_key) != 32:
            raise InvalidArgumentError("node_id and public_key must be 32 bytes")

    @classmethod
    def from_descriptor(cls, descriptor) -> NodeInfo:
        """From a :class:`betanet.vrf.MixnodeDescriptor`."""
        return cls(bytes(descriptor.node_id), bytes(descriptor.sphinx_public_key))


@dataclass(frozen=True)
class Route:
    """Hops in order and the delay (milliseconds) each one holds the packet."""

    hops: tuple[NodeInfo, ...]
    delays_ms: tuple[int, ...]

    def __init__(self, hops: Iterable[NodeInfo], delays_ms: Iterable[int] | None = None) -> None:
        hops = tuple(hops)
        delays = tuple(int(d) for d in delays_ms) if delays_ms is not None else (0,) * len(hops)
        if len(delays) != len(hops):
            raise InvalidArgumentError("one delay per hop")
        if any(d < 0 or d > 0xFFFFFFFF for d in delays):
            raise InvalidArgumentError("delays must fit in uint32 milliseconds")
        object.__setattr__(self, "hops", hops)
        object.__setattr__(self, "delays_ms", delays)

    def __len__(self) -> int:
        return len(self.hops)

    def _c(self) -> list[tuple[bytes, bytes, int]]:
        return [(h.node_id, h.public_key, d) for h, d in zip(self.hops, self.delays_ms)]


class Relay(NamedTuple):
    """Forward ``packet`` to ``next_node`` after ``delay_ms``."""

    next_node: bytes
    delay_ms: int
    epoch: int
    packet: bytes


class Deliver(NamedTuple):
    """Final hop: hand ``body`` (payload − 16 bytes, zero-padded) to ``destination``."""

    destination: bytes
    delay_ms: int
    epoch: int
    body: bytes


class Reply(NamedTuple):
    """Final hop of a SURB route: pass ``payload`` to ``destination`` (the SURB's creator),
    who opens it with the secret of ``surb_id``."""

    destination: bytes
    surb_id: bytes
    delay_ms: int
    epoch: int
    payload: bytes


# Results are NamedTuples: immutable, typed, and cheap to build once per packet.
Result = Union[Relay, Deliver, Reply]


_RELAY, _DELIVER = _sx.RELAY, _sx.DELIVER


def _result(t: tuple) -> Result:
    action, delay, epoch, node_id, surb_id, out = t
    if action == _RELAY:
        return Relay(node_id, delay, epoch, out)
    if action == _DELIVER:
        return Deliver(node_id, delay, epoch, out)
    return Reply(node_id, surb_id, delay, epoch, out)


class SphinxNode:
    """A mixnode's packet processor: one key per epoch (at most ``MAX_EPOCHS``), a bounded
    replay filter per epoch, and expiry of old epochs. Thread-safe; ``process_many``
    releases the GIL for the whole batch so that threads use every core."""

    def __init__(self, geometry: Geometry = Geometry(), replay_capacity: int = 1 << 18) -> None:
        self.geometry = geometry
        capacity = _integer(replay_capacity, "replay_capacity", 1, (1 << 64) - 1)
        self._node = _sx.Node(geometry.max_hops, geometry.payload_bytes, capacity)

    def add_key(self, epoch: int, secret_key: Buffer) -> None:
        self._node.add_key(_integer(epoch, "epoch"), _byte_buffer(secret_key, "secret_key"))

    def expire(self, oldest_valid: int) -> None:
        """Drop keys and replay filters of epochs < oldest_valid (their packets: ExpiredError)."""
        self._node.expire(_integer(oldest_valid, "oldest_valid"))

    def replay_count(self, epoch: int) -> int:
        return self._node.replay_count(_integer(epoch, "epoch"))

    def process(self, packet: Buffer) -> Result:
        """Peel one layer. Raises MalformedError, AuthenticationError, ReplayError,
        ExpiredError, NotFoundError (no key for that epoch) or LimitExceededError."""
        return _result(self._node.process(_byte_buffer(packet, "packet")))

    def process_many(self, packets: Sequence[Buffer]) -> list[Result | BetanetError]:
        """Process a batch in one C call without the GIL; per packet a result or its error."""
        if isinstance(packets, (bytes, bytearray, memoryview, str)) or not isinstance(packets, abc.Iterable):
            raise ArgumentTypeError(f"packets must be a sequence of buffers, got {type(packets).__name__}")
        batch = [_byte_buffer(p, "packet") for p in packets]
        return [r if isinstance(r, BetanetError) else _result(r)
                for r in self._node.process_many(batch)]

    def close(self) -> None:
        self._node.close()

    def __enter__(self) -> SphinxNode:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def create_packet(geometry: Geometry, epoch: int, route: Route, destination: Buffer,
                  body: Buffer, *, seed: Buffer | None = None) -> bytes:
    """A forward packet; the final hop delivers ``body`` to ``destination`` (32 bytes).
    ``seed`` makes it deterministic (test vectors only)."""
    return _sx.create(geometry.max_hops, geometry.payload_bytes, _integer(epoch, "epoch"),
                      route._c(), bytes(_byte_buffer(destination, "destination")),
                      _byte_buffer(body, "body"),
                      None if seed is None else bytes(_byte_buffer(seed, "seed")))


@dataclass(frozen=True)
class Surb:
    """A single-use reply block, safe to give to the party that will reply."""

    data: bytes

    @property
    def first_hop(self) -> bytes:
        return self.data[:32]


@dataclass(frozen=True)
class SurbSecret:
    """What the SURB's creator keeps to open the reply (never share it)."""

    surb_id: bytes
    data: bytes = field(repr=False)


def create_surb(geometry: Geometry, epoch: int, route: Route, destination: Buffer, *,
                seed: Buffer | None = None) -> tuple[Surb, SurbSecret]:
    """A SURB for a route whose last hop hands the reply to ``destination`` (the creator)."""
    surb, secret, sid = _sx.surb_create(geometry.max_hops, geometry.payload_bytes,
                                        _integer(epoch, "epoch"), route._c(),
                                        bytes(_byte_buffer(destination, "destination")),
                                        None if seed is None else bytes(_byte_buffer(seed, "seed")))
    return Surb(surb), SurbSecret(sid, secret)


def use_surb(geometry: Geometry, surb: Surb | Buffer, body: Buffer) -> tuple[bytes, bytes]:
    """(first hop id, packet) replying ``body`` through a SURB."""
    data = surb.data if isinstance(surb, Surb) else bytes(_byte_buffer(surb, "surb"))
    return _sx.surb_use(geometry.max_hops, geometry.payload_bytes, data, _byte_buffer(body, "body"))


def open_reply(geometry: Geometry, secret: SurbSecret, payload: Buffer) -> bytes:
    """The body of a reply (AuthenticationError if it was not made with this SURB)."""
    return _sx.surb_open(geometry.max_hops, geometry.payload_bytes, secret.data,
                         _byte_buffer(payload, "payload"))


def kernel() -> str:
    """The X25519 implementation batch processing uses on this CPU: "avx512ifma-x8" (eight
    ladders at once) or "libsodium"; follows ``betanet._native.core.cpu_restrict``."""
    return _sx.kernel()


def random_id() -> bytes:
    """A fresh 32-byte node or destination id."""
    return secrets.token_bytes(32)
