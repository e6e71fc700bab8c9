"""Bundles split to fit a datagram and put back together at the other end (RFC 9171 §5.8,
§5.9), for convergence layers with a size limit (UDP to the path MTU).

:func:`split` fragments a bundle with the core's fragment function. :class:`FragmentCollector`
is sans-IO (time injected): it reassembles fragments by ADU with the core's reassembler,
bounded in ADUs, bytes and time. Nothing it holds is lost: an ADU that does not complete in
time (a fragment was lost, or the bundle was already a fragment of a larger ADU before it
was split) or that is evicted by the bounds is handed up as its fragments, which are valid
bundles for the destination's own reassembly.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from betanet.dtn.bundle import Bundle, BundleFlags, Reassembler
from betanet.errors import BetanetError, LimitExceededError

__all__ = ["split", "FragmentCollector", "CollectorStats"]


def split(bundle: bytes, max_bytes: int) -> list[bytes]:
    """``bundle`` as datagrams of at most ``max_bytes``: itself when it fits, else its
    fragments. :class:`LimitExceededError` when it cannot be split (not a bundle, flagged
    must-not-fragment, or ``max_bytes`` too small for any fragment)."""
    if len(bundle) <= max_bytes:
        return [bundle]
    try:
        b = Bundle.parse(bundle)
    except BetanetError as e:
        raise LimitExceededError(f"{len(bundle)} bytes exceed the link's {max_bytes} and are "
                                 f"not a bundle that could be fragmented ({e})") from None
    if b.primary.flags & BundleFlags.MUST_NOT_FRAGMENT:
        raise LimitExceededError(f"bundle of {len(bundle)} bytes exceeds the link's {max_bytes} "
                                 f"and is flagged must-not-fragment")
    try:
        return b.fragment(max_bytes)
    except BetanetError as e:
        raise LimitExceededError(f"bundle cannot be fragmented to {max_bytes} bytes: {e}") from None


@dataclass
class CollectorStats:
    reassembled: int = 0        # whole bundles put back together
    fragments: int = 0          # fragments received
    passed_up: int = 0          # fragments handed up unassembled (timeout, eviction)
    rejected: int = 0           # fragments the reassembler refused (overlap with other bytes...)
    duplicates: int = 0         # late copies of fragments of an ADU already reassembled


@dataclass
class _Adu:
    reasm: Reassembler
    started: float
    raw: list[bytes] = field(default_factory=list)
    size: int = 0


class FragmentCollector:
    """Reassembles received fragments. ``add(datagram, now)`` returns the bundles to hand
    up now: the datagram itself when it is not a fragment (or not a bundle: the caller's
    upper layer judges it), a whole bundle when its last fragment arrived, or held fragments
    passed up because the bounds were reached. Call ``expire(now)`` now and then."""

    def __init__(self, *, timeout: float = 30.0, max_adus: int = 64,
                 max_bytes: int = 16 << 20, remember: int = 1024) -> None:
        self.timeout, self.max_adus, self.max_bytes = timeout, max_adus, max_bytes
        self._adus: OrderedDict[bytes, _Adu] = OrderedDict()
        # ADUs handed up whole lately: a late duplicate fragment of one is dropped (counted)
        # instead of starting an ADU that can never complete
        self._done: OrderedDict[bytes, None] = OrderedDict()
        self._remember = remember
        self._bytes = 0
        self.stats = CollectorStats()

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def add(self, datagram: bytes, now: float) -> list[bytes]:
        try:
            b = Bundle.parse(datagram)
            if not b.primary.is_fragment:
                return [datagram]
            key = b.adu_id
        except BetanetError:
            return [datagram]
        self.stats.fragments += 1
        out = self.expire(now)
        if key in self._done:
            self.stats.duplicates += 1
            return out
        adu = self._adus.get(key)
        if adu is None:
            total = b.primary.total_adu_length
            if total > self.max_bytes:  # can never be held: hand it up as it is
                self.stats.passed_up += 1
                return out + [datagram]
            try:
                adu = _Adu(Reassembler(total, max_adu_bytes=self.max_bytes), now)
            except BetanetError:
                self.stats.passed_up += 1
                return out + [datagram]
            self._adus[key] = adu
            self._bytes += total  # the reassembler allocates the whole ADU
        try:
            complete = adu.reasm.add(b)
        except BetanetError:
            # inconsistent with what we hold: keep it out of the buffer, but do not lose it
            self.stats.rejected += 1
            self.stats.passed_up += 1
            return out + [datagram]
        adu.raw.append(datagram)
        adu.size += len(datagram)
        self._bytes += len(datagram)
        if complete:
            whole = adu.reasm.finish()
            self._drop(key)
            self.stats.reassembled += 1
            self._done[key] = None
            if len(self._done) > self._remember:
                self._done.popitem(last=False)
            return out + [whole]
        while self._adus and (len(self._adus) > self.max_adus or self._bytes > self.max_bytes):
            out += self._give_up(next(iter(self._adus)))
        return out

    def expire(self, now: float) -> list[bytes]:
        """Hand up the fragments of every ADU older than the timeout."""
        out: list[bytes] = []
        while self._adus:
            key, adu = next(iter(self._adus.items()))
            if now - adu.started < self.timeout:
                break
            out += self._give_up(key)
        return out

    def _drop(self, key: bytes) -> _Adu:
        adu = self._adus.pop(key)
        self._bytes -= adu.reasm.total_adu_length + adu.size
        return adu

    def _give_up(self, key: bytes) -> list[bytes]:
        adu = self._drop(key)
        self.stats.passed_up += len(adu.raw)
        return adu.raw
