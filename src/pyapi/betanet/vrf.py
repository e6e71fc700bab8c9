"""Verifiable random functions and VRF-based mixnode route selection.

The VRF is ECVRF-EDWARDS25519-SHA512-TAI exactly as RFC 9381 specifies, computed by
libbetanet (``betanet_vrf_*`` in ``betanet.h``): :class:`VRFKeyPair` proves, :func:`verify`
checks a proof and returns the 64-byte output, :func:`proof_to_hash` reads the output of a
proof without checking it.

Route selection follows Betanet 1.1 section 7.2: a per-stream route seed
``SHA256(BeaconSet(epoch) || srcPeerID || dstPeerID || streamNonce16)`` is fed to the VRF,
whose outputs pick distinct hops from the published mixnode set; a route always holds a hop
outside the source's and destination's AS groups, and a hop set is not reused for a
(src, dst, epoch) until 8 other distinct sets have been used. :class:`RouteChoice` carries
the VRF proofs so that anyone with the selector's VRF public key can check the selection
(:func:`verify_selection`). Every byte is pinned in ``docs/vrf.md``.

BeaconSet comes from a :class:`BeaconProvider`. No public randomness beacon (drand, NIST,
Ethereum) is reachable from here, so :class:`LocalBeacon` implements the specification's
fallback formula with a local key; a real provider plugs in through the same Protocol.
"""
from __future__ import annotations

import hashlib
import logging
import math
import struct
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from betanet._check import byte_buffer as _byte_buffer
from betanet._native import vrf as _vrf
from betanet.errors import AuthenticationError, InvalidArgumentError, NoPathError

if TYPE_CHECKING:  # annotations only (collections.abc.Buffer is Python >= 3.12)
    from collections.abc import Buffer

__all__ = [
    "SEED_BYTES", "PUBLIC_KEY_BYTES", "PROOF_BYTES", "OUTPUT_BYTES", "STREAM_NONCE_BYTES",
    "BEACON_BYTES", "DIVERSITY_WINDOW", "MAX_ATTEMPTS", "EPOCH_SECONDS",
    "VRFKeyPair", "verify", "proof_to_hash", "validate_public_key",
    "route_seed", "route_alpha", "epoch_of", "MixnodeDescriptor", "BeaconProvider",
    "LocalBeacon", "XorBeacon", "RouteChoice", "RouteSelector", "verify_selection",
]

log = logging.getLogger(__name__)

SEED_BYTES: int = _vrf.SEED_BYTES            # 32
PUBLIC_KEY_BYTES: int = _vrf.PUBLIC_KEY_BYTES  # 32
PROOF_BYTES: int = _vrf.PROOF_BYTES          # 80
OUTPUT_BYTES: int = _vrf.OUTPUT_BYTES        # 64
STREAM_NONCE_BYTES = 16
BEACON_BYTES = 32
NODE_ID_BYTES = 32
EPOCH_SECONDS = 3600                          # Betanet 1.1 7.2: epoch = floor(unixTime/3600)
DIVERSITY_WINDOW = 8                          # distinct hop sets before a set may repeat
MAX_ATTEMPTS = 32                             # VRF draws per route before falling back to LRU
MAX_TRACKED_PAIRS = 4096                      # bounded memory for the diversity history

_ALPHA_LABEL = b"betanet-route-v1"
_DRAW_LABEL = b"betanet-route-draw-v1"
_FALLBACK_LABEL = b"bn-fallback"


# ---- the VRF -------------------------------------------------------------------------------

class VRFKeyPair:
    """A VRF key pair. The secret lives in libbetanet, is wiped when the object goes away,
    and is never exposed (no accessor, no pickling, not in ``repr``)."""

    __slots__ = ("_key", "_public")

    def __init__(self, _key: _vrf.Key) -> None:
        self._key = _key
        self._public = _key.public_key()

    @classmethod
    def generate(cls) -> VRFKeyPair:
        """A fresh key from libsodium's random generator."""
        return cls(_vrf.Key())

    @classmethod
    def from_seed(cls, seed: Buffer) -> VRFKeyPair:
        """The key for a 32-byte secret seed (derived like an Ed25519 key, RFC 8032 5.1.5)."""
        return cls(_vrf.Key(_byte_buffer(seed, "seed")))     # None must not mean "random"

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key (an encoded edwards25519 point)."""
        return self._public

    def prove(self, alpha: Buffer) -> bytes:
        """The 80-byte RFC 9381 proof for ``alpha`` (deterministic)."""
        return self._key.prove(_byte_buffer(alpha, "alpha"))

    def prove_with_output(self, alpha: Buffer) -> tuple[bytes, bytes]:
        """``(proof, output)`` in one call; output equals ``proof_to_hash(proof)``."""
        return self._key.prove(_byte_buffer(alpha, "alpha"), True)

    def __repr__(self) -> str:
        return f"VRFKeyPair(public_key={self._public.hex()})"

    def __reduce__(self):
        raise TypeError("VRFKeyPair holds a secret and cannot be pickled")


def verify(public_key: Buffer, proof: Buffer, alpha: Buffer) -> bytes:
    """Check an RFC 9381 proof and return the 64-byte VRF output.

    Raises :class:`~betanet.MalformedError` when the key or proof do not decode (wrong
    length, not a canonical point, small-order key, scalar out of range) and
    :class:`~betanet.AuthenticationError` when a well-formed proof does not verify.
    """
    return _vrf.verify(_byte_buffer(public_key, "public_key"), _byte_buffer(proof, "proof"),
                       _byte_buffer(alpha, "alpha"))


def proof_to_hash(proof: Buffer) -> bytes:
    """The 64-byte VRF output of a proof WITHOUT verifying it (RFC 9381 5.2)."""
    return _vrf.proof_to_hash(_byte_buffer(proof, "proof"))


def validate_public_key(public_key: Buffer) -> None:
    """Raise :class:`~betanet.MalformedError` unless ``public_key`` is a usable VRF key."""
    _vrf.validate_key(_byte_buffer(public_key, "public_key"))


# ---- route seeds and beacons ---------------------------------------------------------------

def _bytes(value: Buffer, name: str, size: int | None = None) -> bytes:
    try:
        b = bytes(memoryview(value).cast("B"))
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a bytes-like object, "
                                   f"not {type(value).__name__}") from None
    if size is not None and len(b) != size:
        raise InvalidArgumentError(f"{name} must be {size} bytes, got {len(b)}")
    return b


def route_seed(beacon_set: bytes, src_peer_id: bytes, dst_peer_id: bytes,
               stream_nonce: bytes) -> bytes:
    """``SHA256(BeaconSet || srcPeerID || dstPeerID || streamNonce16)`` (Betanet 1.1 7.2).

    ``beacon_set`` is the epoch's 32-byte BeaconSet, ``stream_nonce`` the 16 bytes the
    initiator picked for the stream. Peer ids are hashed as given; use fixed-length ids
    (e.g. 32 bytes) so that the concatenation is unambiguous.
    """
    beacon = _bytes(beacon_set, "beacon_set", BEACON_BYTES)
    nonce = _bytes(stream_nonce, "stream_nonce", STREAM_NONCE_BYTES)
    src = _bytes(src_peer_id, "src_peer_id")
    dst = _bytes(dst_peer_id, "dst_peer_id")
    if not src or not dst:
        raise InvalidArgumentError("peer ids must not be empty")
    return hashlib.sha256(beacon + src + dst + nonce).digest()


def route_alpha(seed: bytes, attempt: int) -> bytes:
    """The VRF input of draw ``attempt``: ``"betanet-route-v1" || seed || uint32_be(attempt)``."""
    return _ALPHA_LABEL + seed + struct.pack(">I", attempt)


def epoch_of(unix_time: float) -> int:
    """The beacon epoch of a Unix time: ``floor(unixTime / 3600)``. The time must be a
    finite number >= 0 (:class:`~betanet.InvalidArgumentError` otherwise)."""
    try:
        t = float(unix_time) if not isinstance(unix_time, (bool, str, bytes)) else math.nan
    except (TypeError, ValueError):
        t = math.nan
    if not (math.isfinite(t) and t >= 0):
        raise InvalidArgumentError(f"unix_time must be a finite number >= 0, got {unix_time!r}")
    return math.floor(t / EPOCH_SECONDS)


@runtime_checkable
class BeaconProvider(Protocol):
    """Source of the per-epoch BeaconSet (32 bytes, the same for every node in the epoch).

    A production provider combines public beacons as Betanet 1.1 7.2 describes
    (``XOR32(drand, nistRBv2, ethL1_finalized_hash)``, see :class:`XorBeacon`).
    """

    def beacon_set(self, epoch: int) -> bytes: ...


class LocalBeacon:
    """Deterministic local BeaconSet: ``SHA256("bn-fallback" || seed || uint64_be(epoch))``.

    This is the specification's fallback formula with ``seed`` in place of K0c. Every node
    configured with the same seed agrees on the BeaconSet; it suits tests, demos and
    closed deployments. It is not a public beacon: whoever knows the seed can predict it.
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = _bytes(seed, "seed")
        if not self._seed:
            raise InvalidArgumentError("LocalBeacon seed must not be empty")

    def beacon_set(self, epoch: int) -> bytes:
        if not 0 <= epoch < 2**64:
            raise InvalidArgumentError(f"epoch out of range: {epoch}")
        return hashlib.sha256(_FALLBACK_LABEL + self._seed + struct.pack(">Q", epoch)).digest()


class XorBeacon:
    """``XOR32`` of several providers' 32-byte values (Betanet 1.1 7.2's combination)."""

    def __init__(self, *components: BeaconProvider) -> None:
        if not components:
            raise InvalidArgumentError("XorBeacon needs at least one component")
        self._components = components

    def beacon_set(self, epoch: int) -> bytes:
        acc = bytearray(BEACON_BYTES)
        for provider in self._components:
            value = _bytes(provider.beacon_set(epoch), "beacon component", BEACON_BYTES)
            for i, b in enumerate(value):
                acc[i] ^= b
        return bytes(acc)


# ---- mixnodes and routes ---------------------------------------------------------------------

@dataclass(frozen=True)
class MixnodeDescriptor:
    """A published mixnode: 32-byte node id, AS group, and how to reach and address it."""

    node_id: bytes
    as_group: int
    address: tuple[str, int] | None = None
    sphinx_public_key: bytes = b""
    vrf_public_key: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, bytes) or len(self.node_id) != NODE_ID_BYTES:
            raise InvalidArgumentError(f"node_id must be {NODE_ID_BYTES} bytes")
        if not isinstance(self.as_group, int) or self.as_group < 0:
            raise InvalidArgumentError(f"as_group must be a non-negative int, got {self.as_group!r}")


@dataclass(frozen=True)
class RouteChoice:
    """A selected route plus the evidence for it.

    ``proofs[i]`` is the VRF proof over ``route_alpha(seed, i)``; draw ``attempt`` chose
    ``hops``. Earlier draws were skipped because their hop set was recently used for the
    same (src, dst, epoch); when every one of ``MAX_ATTEMPTS`` draws hit a recent set (or
    the set is so small that every possible hop set is recent, then after one draw), the
    least recently used of them was taken (``attempt`` may then be any index).
    """

    hops: tuple[MixnodeDescriptor, ...]
    epoch: int
    seed: bytes
    vrf_public_key: bytes
    proofs: tuple[bytes, ...]
    attempt: int
    output: bytes

    @property
    def node_ids(self) -> tuple[bytes, ...]:
        return tuple(h.node_id for h in self.hops)


class _Draws:
    """Unbiased integers from a VRF output: SHA-512(label || output || uint32_be(block))
    gives 16 big-endian uint32 per block; rejection sampling removes modulo bias."""

    def __init__(self, output: bytes) -> None:
        self._output = output
        self._block = 0
        self._words: list[int] = []

    def below(self, n: int) -> int:
        limit = (1 << 32) - ((1 << 32) % n)
        while True:
            if not self._words:
                digest = hashlib.sha512(_DRAW_LABEL + self._output
                                        + struct.pack(">I", self._block)).digest()
                self._block += 1
                self._words = list(struct.unpack(">16I", digest))[::-1]
            v = self._words.pop()
            if v < limit:
                return v % n


def _canonical(mixnodes: Sequence[MixnodeDescriptor]) -> list[MixnodeDescriptor]:
    """The published set in the order every party uses: sorted by node id, no duplicates."""
    nodes = sorted(mixnodes, key=lambda m: m.node_id)
    for a, b in zip(nodes, nodes[1:]):
        if a.node_id == b.node_id:
            raise InvalidArgumentError(f"duplicate mixnode id {a.node_id.hex()}")
    return nodes


def _check_feasible(nodes: Sequence[MixnodeDescriptor], hops: int, src_as: int,
                    dst_as: int) -> list[int]:
    if not isinstance(hops, int) or hops < 1:
        raise InvalidArgumentError(f"hops must be a positive int, got {hops!r}")
    if len(nodes) < hops:
        raise NoPathError(f"a {hops}-hop route needs {hops} distinct mixnodes; "
                          f"the published set has {len(nodes)}")
    diverse = [i for i, n in enumerate(nodes) if n.as_group not in (src_as, dst_as)]
    if not diverse:
        raise NoPathError(f"no published mixnode is outside AS groups {src_as} (source) "
                          f"and {dst_as} (destination)")
    return diverse


def _candidate(output: bytes, n: int, diverse: list[int], hops: int) -> tuple[int, ...]:
    """Hop indices for one VRF output: an anchor drawn from the AS-diverse nodes at a drawn
    position, the other hops drawn from all remaining nodes, all distinct."""
    draws = _Draws(output)
    anchor = diverse[draws.below(len(diverse))]
    position = draws.below(hops)
    chosen = [anchor]
    others: list[int] = []
    while len(others) < hops - 1:
        i = draws.below(n)
        if i not in chosen:
            chosen.append(i)
            others.append(i)
    others.insert(position, anchor)
    return tuple(others)


class RouteSelector:
    """Chooses mixnode routes with a VRF over the Betanet route seed (sans-IO, not thread-safe).

    ``mixnodes`` is the published set (any order: it is sorted by node id), ``vrf_key`` the
    selector's VRF key (publish its public key so that others can verify selections), and
    ``beacon`` the BeaconSet source. Memory is bounded: the reuse history keeps the last
    ``DIVERSITY_WINDOW`` hop sets for at most ``max_tracked_pairs`` (src, dst, epoch) keys.
    """

    def __init__(self, mixnodes: Sequence[MixnodeDescriptor], vrf_key: VRFKeyPair,
                 beacon: BeaconProvider, *, max_attempts: int = MAX_ATTEMPTS,
                 max_tracked_pairs: int = MAX_TRACKED_PAIRS) -> None:
        if not isinstance(vrf_key, VRFKeyPair):
            raise InvalidArgumentError("vrf_key must be a VRFKeyPair")
        if max_attempts < 1 or max_tracked_pairs < 1:
            raise InvalidArgumentError("max_attempts and max_tracked_pairs must be positive")
        self._nodes = _canonical(mixnodes)
        self._key = vrf_key
        self._beacon = beacon
        self._max_attempts = max_attempts
        self._max_pairs = max_tracked_pairs
        self._history: OrderedDict[tuple[bytes, bytes, int], deque[frozenset[bytes]]] = OrderedDict()

    @property
    def mixnodes(self) -> tuple[MixnodeDescriptor, ...]:
        return tuple(self._nodes)

    @property
    def vrf_public_key(self) -> bytes:
        return self._key.public_key

    def _beacon_set(self, epoch: int) -> bytes:
        return _bytes(self._beacon.beacon_set(epoch), "BeaconSet", BEACON_BYTES)

    def select(self, src_peer_id: bytes, dst_peer_id: bytes, stream_nonce: bytes, hops: int,
               src_as: int, dst_as: int, epoch: int) -> list[MixnodeDescriptor]:
        """The hops of a new route (see :meth:`select_route` for the proofs)."""
        return list(self.select_route(src_peer_id, dst_peer_id, stream_nonce, hops,
                                      src_as, dst_as, epoch).hops)

    def select_route(self, src_peer_id: bytes, dst_peer_id: bytes, stream_nonce: bytes,
                     hops: int, src_as: int, dst_as: int, epoch: int) -> RouteChoice:
        """Choose a route and record it in the reuse history.

        Raises :class:`~betanet.NoPathError` when the set has fewer than ``hops`` nodes or
        no node outside ``src_as`` and ``dst_as``; :class:`~betanet.InvalidArgumentError`
        for bad sizes (stream nonce must be 16 bytes).
        """
        diverse = _check_feasible(self._nodes, hops, src_as, dst_as)
        seed = route_seed(self._beacon_set(epoch), src_peer_id, dst_peer_id, stream_nonce)
        pair = (bytes(src_peer_id), bytes(dst_peer_id), epoch)
        recent = self._history.get(pair) or deque(maxlen=DIVERSITY_WINDOW)
        proofs: list[bytes] = []
        outputs: list[bytes] = []
        candidates: list[tuple[int, ...]] = []
        chosen = -1
        # When every possible hop set is in the window, further draws cannot help.
        attempts = 1 if math.comb(len(self._nodes), hops) <= len(recent) else self._max_attempts
        for attempt in range(attempts):
            proof, output = self._key.prove_with_output(route_alpha(seed, attempt))
            proofs.append(proof)
            outputs.append(output)
            cand = _candidate(output, len(self._nodes), diverse, hops)
            candidates.append(cand)
            if self._set_of(cand) not in recent:
                chosen = attempt
                break
        else:
            # Fewer feasible hop sets than the window: reuse the least recently used one.
            order = list(recent)
            chosen = min(range(len(candidates)), key=lambda i: order.index(self._set_of(candidates[i])))
            log.debug("route %s->%s epoch %d: %d draws all hit the last %d hop sets; reusing "
                      "the least recently used", pair[0].hex()[:8], pair[1].hex()[:8], epoch,
                      attempts, DIVERSITY_WINDOW)
        used = self._set_of(candidates[chosen])
        if used in recent:
            recent.remove(used)
        recent.append(used)
        self._history[pair] = recent
        self._history.move_to_end(pair)
        while len(self._history) > self._max_pairs:
            self._history.popitem(last=False)
        return RouteChoice(hops=tuple(self._nodes[i] for i in candidates[chosen]), epoch=epoch,
                           seed=seed, vrf_public_key=self._key.public_key, proofs=tuple(proofs),
                           attempt=chosen, output=outputs[chosen])

    def _set_of(self, cand: tuple[int, ...]) -> frozenset[bytes]:
        return frozenset(self._nodes[i].node_id for i in cand)

    def verify_selection(self, choice: RouteChoice, src_peer_id: bytes, dst_peer_id: bytes,
                         stream_nonce: bytes, hops: int, src_as: int, dst_as: int) -> None:
        """:func:`verify_selection` against this selector's set, beacon and public key."""
        verify_selection(choice, mixnodes=self._nodes, beacon=self._beacon,
                         src_peer_id=src_peer_id, dst_peer_id=dst_peer_id,
                         stream_nonce=stream_nonce, hops=hops, src_as=src_as, dst_as=dst_as,
                         vrf_public_key=self._key.public_key, max_attempts=self._max_attempts)


def verify_selection(choice: RouteChoice, *, mixnodes: Sequence[MixnodeDescriptor],
                     beacon: BeaconProvider | bytes, src_peer_id: bytes, dst_peer_id: bytes,
                     stream_nonce: bytes, hops: int, src_as: int, dst_as: int,
                     vrf_public_key: bytes, max_attempts: int = MAX_ATTEMPTS) -> None:
    """Check that ``choice`` is what the holder of ``vrf_public_key`` must have selected.

    ``beacon`` is a provider or the epoch's BeaconSet bytes. Checks: the seed, every VRF
    proof, that the hops are the candidate of draw ``choice.attempt``, distinct and
    AS-diverse, and that the skipped draws are consistent with the reuse rule (they hit at
    most ``DIVERSITY_WINDOW`` distinct sets; a later draw may only be chosen after all
    ``max_attempts`` draws were used). The selector's private reuse history itself cannot be
    checked by a third party. Raises :class:`~betanet.AuthenticationError` on any mismatch
    (and :class:`~betanet.MalformedError` for undecodable proofs).
    """
    nodes = _canonical(mixnodes)
    diverse = _check_feasible(nodes, hops, src_as, dst_as)
    beacon_set = beacon if isinstance(beacon, (bytes, bytearray, memoryview)) \
        else beacon.beacon_set(choice.epoch)
    seed = route_seed(beacon_set, src_peer_id, dst_peer_id, stream_nonce)
    if choice.seed != seed:
        raise AuthenticationError("route seed does not match the beacon, peers and nonce")
    if bytes(vrf_public_key) != choice.vrf_public_key:
        raise AuthenticationError("route was selected with a different VRF key")
    n_proofs = len(choice.proofs)
    if not 1 <= n_proofs <= max_attempts or not 0 <= choice.attempt < n_proofs:
        raise AuthenticationError("route choice has an impossible number of draws")
    if choice.attempt != n_proofs - 1 and n_proofs != max_attempts:
        raise AuthenticationError("a later draw was chosen before the draws ran out")
    candidates = []
    for i, proof in enumerate(choice.proofs):
        output = verify(vrf_public_key, proof, route_alpha(seed, i))
        candidates.append(_candidate(output, len(nodes), diverse, hops))
    expected = tuple(nodes[i].node_id for i in candidates[choice.attempt])
    if choice.node_ids != expected:
        raise AuthenticationError("hops are not the VRF's choice")
    if tuple(nodes[i] for i in candidates[choice.attempt]) != choice.hops:
        raise AuthenticationError("hop descriptors differ from the published set")
    if choice.output != proof_to_hash(choice.proofs[choice.attempt]):
        raise AuthenticationError("route output does not match its proof")
    skipped = {frozenset(nodes[j].node_id for j in c)
               for i, c in enumerate(candidates) if i != choice.attempt}
    if len(skipped) > DIVERSITY_WINDOW:
        raise AuthenticationError("more distinct hop sets were skipped than the reuse window holds")
    if len(set(expected)) != hops or not any(nodes[i].as_group not in (src_as, dst_as)
                                              for i in candidates[choice.attempt]):
        raise AuthenticationError("route violates distinctness or AS diversity")
