"""BPv7 bundles (RFC 9171) over the core codec (``betanet_bundle_*``, docs/dtn.md).

``Bundle.parse(data)`` checks the whole bundle (structure, CRCs, limits) in C and gives
zero-copy access: block data are ``memoryview`` slices of ``data``; the primary block and
block objects are built on first access. ``Bundle.build(...)`` and ``to_bytes()`` encode
deterministically, so ``Bundle.parse(b).to_bytes() == b`` for every bundle the parser
accepts (unknown blocks included, byte for byte).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING

from betanet._native import bundle as _nb
from betanet.dtn.eid import EID
from betanet.errors import InvalidArgumentError, LimitExceededError, ProtocolError

if TYPE_CHECKING:
    from collections.abc import Buffer, Iterable

__all__ = [
    "CRCType", "BlockType", "BundleFlags", "BlockFlags", "BlockStatus", "ReasonCode",
    "PrimaryBlock", "CanonicalBlock", "Bundle", "BundleBatch", "Verdict", "Reassembler", "Limits",
    "DTN_EPOCH_UNIX", "dtn_time_ms", "crc", "ID_BYTES", "ADU_ID_BYTES", "hop_count_data",
    "bundle_age_data", "previous_node_data",
]

DTN_EPOCH_UNIX = 946_684_800          # 2000-01-01T00:00:00Z, RFC 9171 §4.2.6
ID_BYTES: int = _nb.ID_BYTES
ADU_ID_BYTES: int = _nb.ADU_ID_BYTES
DEFAULT_LIFETIME_MS = 86_400_000      # one day
_parse = _nb.parse
_new = object.__new__


def dtn_time_ms(unix_seconds: float | None = None) -> int:
    """DTN time (ms since 2000-01-01 UTC) of a Unix time (now when None)."""
    t = time.time() if unix_seconds is None else unix_seconds
    return max(0, int((t - DTN_EPOCH_UNIX) * 1000))


class CRCType(IntEnum):
    NONE = 0
    CRC16 = 1      # CRC-16/X.25
    CRC32C = 2     # CRC-32C (Castagnoli)


class BlockType(IntEnum):
    PAYLOAD = 1
    PREVIOUS_NODE = 6
    BUNDLE_AGE = 7
    HOP_COUNT = 10
    BIB = 11
    BCB = 12


class BundleFlags(IntFlag):
    NONE = 0
    IS_FRAGMENT = 0x000001
    ADMIN_RECORD = 0x000002
    MUST_NOT_FRAGMENT = 0x000004
    ACK_REQUESTED = 0x000020
    STATUS_TIME = 0x000040
    REPORT_RECEPTION = 0x004000
    REPORT_FORWARDING = 0x010000
    REPORT_DELIVERY = 0x020000
    REPORT_DELETION = 0x040000


class BlockFlags(IntFlag):
    NONE = 0
    REPLICATE = 0x01
    REPORT_IF_UNPROCESSABLE = 0x02
    DELETE_BUNDLE_IF_UNPROCESSABLE = 0x04
    DISCARD_IF_UNPROCESSABLE = 0x10


class BlockStatus(IntEnum):
    OK = 0
    UNKNOWN = 1          # a type the codec does not interpret
    UNINTELLIGIBLE = 2   # a known type whose data does not decode


class ReasonCode(IntEnum):
    NO_INFO = 0
    LIFETIME_EXPIRED = 1
    UNIDIRECTIONAL_LINK = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_UNINTELLIGIBLE = 5
    NO_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8
    HOP_LIMIT_EXCEEDED = 9
    TRAFFIC_PARED = 10
    BLOCK_UNSUPPORTED = 11


_CRC = tuple(CRCType)
_STATUS = tuple(BlockStatus)


def _bundle_flags(v: int) -> BundleFlags:
    f = BundleFlags._value2member_map_.get(v)     # enum construction is slow; members are cached
    return f if f is not None else BundleFlags(v)


def _block_flags(v: int) -> BlockFlags:
    f = BlockFlags._value2member_map_.get(v)
    return f if f is not None else BlockFlags(v)


@dataclass(frozen=True, slots=True)
class Limits:
    """Parser bounds; hostile inputs beyond them fail before anything is read."""

    max_bytes: int = _nb.DEFAULT_MAX_BYTES
    max_blocks: int = _nb.DEFAULT_MAX_BLOCKS
    max_eid_bytes: int = _nb.DEFAULT_MAX_EID


DEFAULT_LIMITS = Limits()


def crc(crc_type: int, data: Buffer) -> int:
    """The raw CRC-16/X.25 (1) or CRC-32C (2) of data."""
    return _nb.crc(int(crc_type), data)


@dataclass(slots=True)
class PrimaryBlock:
    destination: EID
    source: EID
    report_to: EID = EID.NONE
    creation_ms: int = 0
    sequence: int = 0
    lifetime_ms: int = DEFAULT_LIFETIME_MS
    flags: BundleFlags = BundleFlags.NONE
    crc_type: CRCType = CRCType.CRC32C
    fragment_offset: int = 0          # meaningful when flags has IS_FRAGMENT
    total_adu_length: int = 0

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags & BundleFlags.IS_FRAGMENT)

    def spec(self) -> tuple:
        return (self.flags, self.crc_type, self.destination._spec, self.source._spec,
                self.report_to._spec, self.creation_ms, self.sequence, self.lifetime_ms,
                self.fragment_offset, self.total_adu_length)


@dataclass(slots=True)
class CanonicalBlock:
    type: int
    number: int
    data: Buffer = b""
    flags: BlockFlags = BlockFlags.NONE
    crc_type: CRCType = CRCType.NONE
    status: BlockStatus = BlockStatus.OK

    def spec(self) -> tuple:
        return (self.type, self.number, self.flags, self.crc_type, self.data)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What RFC 9171 §4.2.4 says to do with a bundle's unprocessable blocks."""

    delete: bool
    report: bool
    discard: tuple[int, ...]          # block numbers to discard
    reason: ReasonCode                # for the status report (NO_INFO when none)
    unprocessable: tuple[int, ...] = field(default=())

    def raise_if_deleted(self) -> None:
        if self.delete:
            raise ProtocolError(
                f"bundle must be deleted: unprocessable block(s) {list(self.unprocessable)} carry "
                f"the delete-bundle flag ({self.reason.name})")


class Bundle:
    """A BPv7 bundle: a primary block and canonical blocks, the payload block last."""

    __slots__ = ("_primary", "_blocks", "_view", "_buf")

    def __init__(self, primary: PrimaryBlock, blocks: list[CanonicalBlock]) -> None:
        self._primary = primary
        self._blocks = blocks
        self._view = None
        self._buf = None

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, destination: EID | str, source: EID | str, payload: Buffer, *,
              report_to: EID | str | None = None, creation_ms: int | None = None, sequence: int = 0,
              lifetime_ms: int = DEFAULT_LIFETIME_MS, flags: BundleFlags = BundleFlags.NONE,
              crc_type: CRCType = CRCType.CRC32C, payload_crc: CRCType = CRCType.NONE,
              hop_limit: int | None = None, extra_blocks: Iterable[CanonicalBlock] = ()) -> Bundle:
        """A new bundle. creation_ms defaults to now; with creation_ms=0 (no clock) a bundle
        age block is added, as RFC 9171 §4.4.2 asks."""
        dest = EID.parse(destination) if isinstance(destination, str) else destination
        src = EID.parse(source) if isinstance(source, str) else source
        rpt = (EID.parse(report_to) if isinstance(report_to, str) else report_to) or src
        ms = dtn_time_ms() if creation_ms is None else creation_ms
        blocks = list(extra_blocks)
        used = {b.number for b in blocks} | {1}
        nxt = 2

        def number() -> int:
            nonlocal nxt
            while nxt in used:
                nxt += 1
            used.add(nxt)
            return nxt
        if hop_limit is not None:
            blocks.append(CanonicalBlock(BlockType.HOP_COUNT, number(), _cbor_hop(hop_limit, 0)))
        if ms == 0 and not any(b.type == BlockType.BUNDLE_AGE for b in blocks):
            blocks.append(CanonicalBlock(BlockType.BUNDLE_AGE, number(), _cbor_uint(0)))
        blocks.append(CanonicalBlock(BlockType.PAYLOAD, 1, payload, crc_type=payload_crc))
        return cls(PrimaryBlock(dest, src, rpt, ms, sequence, lifetime_ms, BundleFlags(flags), crc_type),
                   blocks)

    # -- parsing -----------------------------------------------------------------------------
    @classmethod
    def parse_many(cls, buffers: Iterable[Buffer], *, limits: Limits = DEFAULT_LIMITS,
                   strict: bool = False) -> BundleBatch:
        """Parse many bundles in one call (the C parser runs over all of them with the GIL
        released); see :class:`BundleBatch`. A bundle that fails does not stop the others."""
        return BundleBatch(_nb.parse_many(buffers, limits.max_bytes, limits.max_blocks,
                                          limits.max_eid_bytes, strict))

    @classmethod
    def parse(cls, data: Buffer, *, limits: Limits = DEFAULT_LIMITS, strict: bool = False) -> Bundle:
        """Parse and check one bundle (CRCs included). Raises MalformedError (with ``detail``
        and ``offset``) or LimitExceededError."""
        if type(data) is not bytes:
            try:
                data = memoryview(data).cast("B")  # byte-wise offsets whatever the exporter
            except (TypeError, BufferError, ValueError):
                raise InvalidArgumentError("bundle data must be a C-contiguous byte buffer") from None
        if limits is DEFAULT_LIMITS and not strict:
            view = _parse(data)
        else:
            view = _parse(data, limits.max_bytes, limits.max_blocks, limits.max_eid_bytes, strict)
        self = _new(cls)
        self._view = view
        self._buf = data
        self._primary = None
        self._blocks = None
        return self

    @property
    def primary(self) -> PrimaryBlock:
        if self._primary is None:
            (flags, crc_type, dst, src, rpt, ms, seq, life, foff, total, _o, _l) = self._view.primary
            buf = self._buf
            self._primary = PrimaryBlock(EID.from_view(buf, dst), EID.from_view(buf, src),
                                         EID.from_view(buf, rpt), ms, seq, life, _bundle_flags(flags),
                                         _CRC[crc_type], foff, total)
        return self._primary

    @property
    def blocks(self) -> list[CanonicalBlock]:
        """Canonical blocks in bundle order (payload last). Data are views of the input."""
        if self._blocks is None:
            mv = memoryview(self._buf)
            out = []
            for i in range(self._view.nblocks):
                t, num, flags, crc_type, status, _action, doff, dlen, _o, _l = self._view.block(i)
                out.append(CanonicalBlock(t, num, mv[doff:doff + dlen], _block_flags(flags),
                                          _CRC[crc_type], _STATUS[status]))
            self._blocks = out
        return self._blocks

    @property
    def payload(self) -> memoryview | Buffer:
        if self._blocks is None and self._view is not None:
            return self._view.payload()
        return self.blocks[-1].data

    def block(self, block_type: int) -> CanonicalBlock | None:
        """The first block of a type, or None."""
        return next((b for b in self.blocks if b.type == block_type), None)

    def _native_view(self):
        if self._view is None or self._primary is not None or self._blocks is not None:
            # built or possibly modified since parsing: re-encode and re-parse
            data = self.to_bytes()
            self._view = _nb.parse(data, max(len(data), 1), max(len(self.blocks), 1), 1 << 20)
            self._buf = data
        return self._view

    def primary_bytes(self) -> bytes:
        """The primary block's encoding as it is in the bundle (BPSec's canonical form)."""
        view = self._native_view()
        off, n = view.primary[-2:]
        return bytes(memoryview(self._buf)[off:off + n])

    # -- encoding ----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        if self._primary is None and self._blocks is None:
            return bytes(memoryview(self._buf)[:self._view.length])
        return _nb.encode(self.primary.spec(), [b.spec() for b in self.blocks])

    __bytes__ = to_bytes

    # -- extension blocks ---------------------------------------------------------------------
    @property
    def hop_count(self) -> tuple[int, int] | None:
        """(hop limit, hop count), or None without an (intelligible) hop count block."""
        return self._native_view().extensions[2]

    @property
    def age_ms(self) -> int | None:
        return self._native_view().extensions[1]

    @property
    def previous_node(self) -> EID | None:
        t = self._native_view().extensions[0]
        return None if t is None else EID.from_view(self._buf, t)

    # -- identity ------------------------------------------------------------------------------
    @property
    def bundle_id(self) -> bytes:
        """The 64-byte key of this bundle (docs/dtn.md): ADU id + fragment offset/length."""
        return self._native_view().bundle_id()

    @property
    def adu_id(self) -> bytes:
        return self.bundle_id[:ADU_ID_BYTES]

    # -- policy ----------------------------------------------------------------------------------
    def policy(self, known_types: Iterable[int] | None = None) -> Verdict:
        """Apply §4.2.4 to unknown / unintelligible blocks (and, with known_types, to every
        type not listed). The verdict names the blocks to discard; see ``without_discarded``."""
        view = self._native_view()
        known = None if known_types is None else {int(t) for t in known_types}
        verdict, reason = view.policy(None if known is None else sorted(known))
        discard, bad = [], []
        for i in range(view.nblocks):
            t, num, _f, _c, status, action, *_ = view.block(i)
            if action == 1:
                discard.append(num)
            if status == 2 or (known is None and status != 0) or (known is not None and t != 1 and t not in known):
                bad.append(num)
        return Verdict(bool(verdict & 1), bool(verdict & 4), tuple(discard), ReasonCode(reason), tuple(bad))

    def without_discarded(self, known_types: Iterable[int] | None = None) -> bytes:
        """The bundle without the blocks the policy discards (others byte for byte)."""
        view = self._native_view()
        view.policy(None if known_types is None else [int(t) for t in known_types])
        return view.rewrite()

    # -- forwarding (RFC 9171 §5.4, §4.4) -------------------------------------------------------------
    def expired(self, now_ms: int) -> bool:
        """Past its lifetime: creation time + lifetime, or (no clock) bundle age >= lifetime."""
        p = self.primary
        if p.creation_ms:
            return now_ms - p.creation_ms >= p.lifetime_ms
        age = self.age_ms
        return age is not None and age >= p.lifetime_ms

    def for_forwarding(self, node: EID, held_ms: int = 0) -> Bundle:
        """The copy this node forwards: hop count + 1 (LimitExceededError, reason
        HOP_LIMIT_EXCEEDED, when it would pass the limit), the previous node block set to
        node, held_ms added to the bundle age block. Other blocks byte for byte."""
        hop = self.hop_count
        if hop is not None and hop[1] + 1 > hop[0]:
            err = LimitExceededError(f"hop limit {hop[0]} exceeded")
            err.reason = ReasonCode.HOP_LIMIT_EXCEEDED
            raise err
        age = self.age_ms
        blocks = []
        has_prev = False
        for b in self.blocks:
            data = b.data
            if b.type == BlockType.HOP_COUNT and hop is not None:
                data = _cbor_hop(hop[0], hop[1] + 1)
            elif b.type == BlockType.BUNDLE_AGE and age is not None:
                data = _cbor_uint(age + max(0, held_ms))
            elif b.type == BlockType.PREVIOUS_NODE:
                data, has_prev = node.encode(), True
            blocks.append(CanonicalBlock(b.type, b.number, bytes(data), b.flags, b.crc_type, b.status))
        if not has_prev:
            number = max(b.number for b in blocks) + 1
            blocks.insert(0, CanonicalBlock(BlockType.PREVIOUS_NODE, number, node.encode()))
        return Bundle(self.primary, blocks)

    # -- fragmentation ----------------------------------------------------------------------------
    def fragment(self, max_bundle_bytes: int) -> list[bytes]:
        """Split into fragments of at most max_bundle_bytes each (RFC 9171 §5.8); the bundle
        itself (one element) when it fits."""
        view = self._native_view()
        if view.length <= max_bundle_bytes:
            return [self.to_bytes()]
        _off, total = view.payload_span
        out, at = [], 0
        while at < total:
            # largest slice that fits: the overhead grows by at most a few head bytes
            lo, hi = 1, total - at
            if view.fragment_size(at, 1) > max_bundle_bytes:
                raise InvalidArgumentError(f"{max_bundle_bytes} bytes cannot hold a fragment of this bundle")
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if view.fragment_size(at, mid) <= max_bundle_bytes:
                    lo = mid
                else:
                    hi = mid - 1
            out.append(view.fragment(at, lo))
            at += lo
        return out

    def fragment_at(self, offset: int, length: int) -> bytes:
        """The one fragment holding payload bytes [offset, offset + length)."""
        return self._native_view().fragment(offset, length)

    def __repr__(self) -> str:
        p = self.primary
        return (f"Bundle({p.source} -> {p.destination}, ts={p.creation_ms}.{p.sequence}, "
                f"blocks={[(int(b.type), b.number) for b in self.blocks]})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bundle) and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]


class BundleBatch:
    """Bundles decoded together by :meth:`Bundle.parse_many`: a compact view over their
    buffers (kept alive, not copied). Fields are read lazily, per bundle, on access —
    ``payload(i)`` / ``payloads()`` are memoryviews, ``batch[i]`` is a full :class:`Bundle`
    built only when asked. A bundle that did not parse raises its error from every accessor
    (``errors()`` lists them; ``payloads()`` has None in its place)."""

    __slots__ = ("_b",)

    def __init__(self, native) -> None:
        self._b = native

    def __len__(self) -> int:
        return len(self._b)

    @property
    def failed(self) -> int:
        """How many buffers were not valid bundles."""
        return self._b.failed

    def ok(self, i: int) -> bool:
        return self._b.status(i)[0] == 0

    def error(self, i: int) -> Exception | None:
        return self._b.error(i)

    def errors(self) -> list[tuple[int, Exception]]:
        b = self._b
        if not b.failed:
            return []
        return [(i, b.error(i)) for i in range(len(b)) if b.status(i)[0]]

    def payload(self, i: int) -> memoryview:
        return self._b.payload(i)

    def payloads(self) -> list[memoryview | None]:
        return self._b.payloads()

    def destination(self, i: int) -> EID:
        return EID.from_view(self._b.buffers[i], self._b.destination(i))

    def source(self, i: int) -> EID:
        return EID.from_view(self._b.buffers[i], self._b.source(i))

    def __getitem__(self, i: int) -> Bundle:
        view = self._b.view(i)
        b = _new(Bundle)
        b._view, b._buf, b._primary, b._blocks = view, view.buffer, None, None
        return b

    def __iter__(self):
        """Every bundle that parsed, as a :class:`Bundle` (failed ones are skipped)."""
        for i in range(len(self._b)):
            if self._b.status(i)[0] == 0:
                yield self[i]


class Reassembler:
    """Reassembles the fragments of one ADU (RFC 9171 §5.9). Bounded: the ADU length must
    not exceed ``max_adu_bytes`` and at most ``max_ranges`` gaps are tracked."""

    def __init__(self, total_adu_length: int, *, max_adu_bytes: int = _nb.DEFAULT_MAX_BYTES,
                 max_ranges: int = 256) -> None:
        self._r = _nb.Reassembler(total_adu_length, max_adu_bytes, max_ranges)
        self.total_adu_length = total_adu_length

    @classmethod
    def for_fragment(cls, fragment: Bundle, **kw) -> Reassembler:
        if not fragment.primary.is_fragment:
            raise InvalidArgumentError("not a fragment")
        return cls(fragment.primary.total_adu_length, **kw)

    def add(self, fragment: Bundle | Buffer) -> bool:
        """Add a fragment; True once the ADU is complete. MalformedError for a fragment of
        another bundle, beyond its ADU, or overlapping with different bytes."""
        b = fragment if isinstance(fragment, Bundle) else Bundle.parse(fragment)
        return self._r.add(b._native_view())

    @property
    def complete(self) -> bool:
        return self._r.complete

    def finish(self) -> bytes:
        return self._r.finish()


def _cbor_uint(v: int) -> bytes:
    if v < 24:
        return bytes([v])
    for ai, n in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if v < 1 << (8 * n):
            return bytes([ai]) + v.to_bytes(n, "big")
    raise InvalidArgumentError("integer beyond 64 bits")


def _cbor_hop(limit: int, count: int) -> bytes:
    return b"\x82" + _cbor_uint(limit) + _cbor_uint(count)


def hop_count_data(limit: int, count: int) -> bytes:
    """Block data of a hop count block (RFC 9171 §4.4.3)."""
    return _cbor_hop(limit, count)


def bundle_age_data(age_ms: int) -> bytes:
    """Block data of a bundle age block (RFC 9171 §4.4.2)."""
    return _cbor_uint(age_ms)


def previous_node_data(node: EID) -> bytes:
    """Block data of a previous node block (RFC 9171 §4.4.1)."""
    return node.encode()
