"""Reed-Solomon forward error correction over GF(2^8) (docs/fec.md).

``ReedSolomon(k, m)`` turns k equal-length data shards into m parity shards such that
any k of the k + m shards give back the others (``reconstruct``), and silently corrupted
shards are found and repaired while 2·errors + erasures <= m (``correct``). Each byte
column is a codeword of the code of ``reedsolo.RSCodec(nsym=m, fcr=0, prim=0x11d,
generator=2)``, computed by libbetanet's SIMD kernels with the GIL released.

Shards are given in one of two forms:

* a sequence of bytes-like objects (bytes, bytearray, memoryview, 1-D uint8 arrays), with
  ``None`` for a missing shard. Inputs are never modified; results are new ``bytearray``
  objects (present shards are returned as the very objects given).
* a C-contiguous 2-D ``numpy.uint8`` array, one shard per row: zero copy. ``reconstruct``
  and ``correct`` repair its rows in place; which rows are missing is given by
  ``present`` (a sequence of n booleans).

``split(message)`` and ``join(shards)`` work on whole messages: the data shards carry
a 4-byte big-endian length before the message and zero padding after it (docs/fec.md,
"Message framing"), so ``join`` returns exactly the bytes given to ``split``.

Example::

    rs = ReedSolomon(4, 2)
    shards = rs.split(b"hello, betanet")
    shards[0] = shards[5] = None          # two shards lost
    assert rs.join(shards) == b"hello, betanet"
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from betanet._native import fec as _fec
from betanet._native.fec import ShardTypeError
from betanet.errors import InvalidArgumentError, MalformedError, UncorrectableError

__all__ = ["ReedSolomon", "Corrected", "ShardTypeError", "MAX_SHARDS", "FRAME_HEADER", "kernel",
           "data_shards", "unframe"]

#: k + m may be at most this.
MAX_SHARDS: int = _fec.MAX_SHARDS
#: Bytes of the length prefix ``split`` puts before the message (big-endian uint32).
FRAME_HEADER = 4
_LEN = struct.Struct(">I")

Buffer = Any           # any object with the buffer protocol
Shards = Union[Sequence[Optional[Buffer]], np.ndarray]


class Corrected(NamedTuple):
    """Result of :meth:`ReedSolomon.correct`."""

    shards: Any            # the repaired shards: a list, or the very array given
    corrupted: list[int]   # indices of shards found corrupted and repaired (not the missing ones)


def kernel() -> str:
    """The GF(2^8) kernel in use: "gfni-avx512", "gfni-avx2", "avx2", "ssse3", "neon" or "scalar"."""
    return _fec.kernel()


def data_shards(message: Buffer, k: int) -> np.ndarray:
    """The k data shards of ``split`` (no parity), as a k × shard-size array: the frame
    ``len(message) as uint32 big-endian || message || zero padding`` cut into k equal pieces."""
    try:
        body = memoryview(message).cast("B")
    except TypeError:
        raise ShardTypeError(f"message must be bytes-like, got {type(message).__name__}") from None
    if not 1 <= k <= MAX_SHARDS:
        raise InvalidArgumentError(f"need 1 <= k <= {MAX_SHARDS}; got k={k}")
    size = _shard_size(body.nbytes, k)
    frame = np.zeros((k, size), dtype=np.uint8)
    flat = frame.reshape(-1)
    flat[:FRAME_HEADER] = np.frombuffer(_LEN.pack(body.nbytes), dtype=np.uint8)
    flat[FRAME_HEADER:FRAME_HEADER + body.nbytes] = np.frombuffer(body, dtype=np.uint8)
    return frame


def _shard_size(message_length: int, k: int) -> int:
    if message_length < 0 or message_length > 0xFFFFFFFF:
        raise InvalidArgumentError("message length must be 0 .. 2**32 - 1")
    return max(1, -(-(FRAME_HEADER + message_length) // k))


def unframe(frame: bytes) -> bytes:
    """The message in the k data shards of ``split`` joined in order (MalformedError if the
    frame's length prefix or zero padding is inconsistent)."""
    if len(frame) < FRAME_HEADER:
        raise MalformedError("shards too short to hold the frame header")
    (length,) = _LEN.unpack_from(frame)
    end = FRAME_HEADER + length
    if end > len(frame):
        raise MalformedError(f"frame claims {length} bytes but the shards hold {len(frame) - FRAME_HEADER}")
    if frame[end:].count(0) != len(frame) - end:
        raise MalformedError("non-zero padding after the message")
    return frame[FRAME_HEADER:end]


def _check_sequence(shards: Any) -> None:
    if isinstance(shards, (bytes, bytearray, memoryview, str)) or not isinstance(shards, Sequence):
        raise ShardTypeError(
            f"shards must be a sequence of buffers or a 2-D uint8 array, got {type(shards).__name__}")


def _length(shard: Any, index: int) -> int:
    try:
        view = memoryview(shard)
    except TypeError:
        raise ShardTypeError(
            f"shard {index}: expected a bytes-like object or None, got {type(shard).__name__}") from None
    return view.nbytes


class ReedSolomon:
    """A systematic RS code with k data shards and m parity shards (k + m <= 255)."""

    def __init__(self, k: int, m: int) -> None:
        for name, value in (("k", k), ("m", m)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ShardTypeError(f"{name} must be an int, got {type(value).__name__}")
        if k < 1 or m < 1 or k + m > MAX_SHARDS:      # before the C int conversion can overflow
            raise InvalidArgumentError(f"need 1 <= k, 1 <= m, k + m <= {MAX_SHARDS}; got k={k}, m={m}")
        self._codec = _fec.Codec(k, m)
        self.k, self.m, self.n = k, m, k + m

    def __repr__(self) -> str:
        return f"ReedSolomon(k={self.k}, m={self.m})"

    # -- shard level ---------------------------------------------------------------
    def encode(self, data: Shards, out: Optional[Shards] = None) -> Any:
        """Parity shards for k data shards.

        ``data``: k equal-length buffers, or a (k, L) uint8 array. ``out`` (optional): m
        writable buffers or an (m, L) array to write the parity into. Returns ``out``, or
        a new (m, L) array for array input, or a list of m new bytearrays.
        """
        if isinstance(data, np.ndarray):
            return self._codec.encode_array(data, out)
        _check_sequence(data)
        if len(data) != self.k:
            raise InvalidArgumentError(f"expected {self.k} data shards, got {len(data)}")
        if any(d is None for d in data):
            raise InvalidArgumentError("data shards may not be None (encode needs all k)")
        if out is None:
            length = _length(data[0], 0)
            out = [bytearray(length) for _ in range(self.m)]
        self._codec.encode(list(data), list(out))     # list(array) = its rows, as views
        return out

    def reconstruct(self, shards: Shards, present: Optional[Sequence[bool]] = None) -> Any:
        """Rebuild every missing shard (data and parity) from any k present ones.

        ``shards``: n buffers with ``None`` for missing ones (returns a new list), or an
        (n, L) array whose rows with ``present[i]`` false are rebuilt in place (returns the
        array). Raises :class:`UncorrectableError` when fewer than k shards are present.
        """
        if isinstance(shards, np.ndarray):
            self._codec.repair_array(shards, present, False)
            return shards
        _check_sequence(shards)
        items, flags = self._listed(shards, present)
        length = self._common_length(items)
        filled = [s if s is not None else bytearray(length) for s in items]
        self._codec.reconstruct(filled, flags)
        return filled

    def correct(self, shards: Shards, present: Optional[Sequence[bool]] = None) -> Corrected:
        """Find and repair silently corrupted shards, and rebuild missing ones.

        Works while 2·(corrupted) + (missing) <= m; otherwise raises
        :class:`UncorrectableError` (wrong data is never returned when the shards are
        within that bound of a codeword). ``shards`` as for :meth:`reconstruct`; a list is
        copied (inputs stay untouched), an array is repaired in place.
        """
        if isinstance(shards, np.ndarray):
            return Corrected(shards, self._codec.repair_array(shards, present, True))
        _check_sequence(shards)
        items, flags = self._listed(shards, present)
        length = self._common_length(items)
        copies = [bytearray(length) if s is None else bytearray(s) for s in items]
        bad = self._codec.correct(copies, flags)
        return Corrected(copies, bad)

    # -- message level -------------------------------------------------------------
    def shard_size(self, message_length: int) -> int:
        """Length of each shard ``split`` makes for a message of this many bytes."""
        return _shard_size(message_length, self.k)

    def split(self, message: Buffer) -> list[bytes]:
        """The n = k + m shards (k data, then m parity) carrying ``message``.

        Data shards are the frame ``len(message) as uint32 big-endian || message || zero
        padding`` cut into k equal pieces of :meth:`shard_size` bytes.
        """
        frame = data_shards(message, self.k)
        parity = self.encode(frame)
        return [row.tobytes() for row in frame] + [row.tobytes() for row in parity]

    def join(self, shards: Sequence[Optional[Buffer]], *, correct: bool = False) -> bytes:
        """The message ``split`` made, from n shards with ``None`` for lost ones.

        Missing shards are rebuilt when needed; with ``correct=True`` silently corrupted
        shards are found and repaired first. Raises :class:`MalformedError` if the frame's
        length or padding is inconsistent, :class:`UncorrectableError` if too few shards.
        """
        if correct:
            items = self.correct(shards).shards
        else:
            items, _ = self._listed(shards, None)
            if any(s is None for s in items[:self.k]):
                items = self.reconstruct(items)
        return unframe(b"".join(bytes(s) for s in items[:self.k]))

    # -- helpers -------------------------------------------------------------------
    def _listed(self, shards: Sequence[Optional[Buffer]], present: Optional[Sequence[bool]]):
        items = list(shards)
        if len(items) != self.n:
            raise InvalidArgumentError(f"expected {self.n} shards (None for missing), got {len(items)}")
        if present is not None:
            flags = list(map(bool, present))
            if len(flags) != self.n:
                raise InvalidArgumentError(f"present must have {self.n} entries, got {len(flags)}")
            items = [s if f else None for s, f in zip(items, flags)]
        flags = bytes(0 if s is None else 1 for s in items)
        if sum(flags) < self.k:
            raise UncorrectableError(f"only {sum(flags)} of {self.n} shards present; need {self.k}")
        return items, flags

    def _common_length(self, items: list) -> int:
        lengths = {_length(s, i) for i, s in enumerate(items) if s is not None}
        if len(lengths) != 1:
            raise InvalidArgumentError(f"shards must be equal length, got lengths {sorted(lengths)}")
        return lengths.pop()
