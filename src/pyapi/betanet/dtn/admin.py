"""Administrative records (RFC 9171 §6.1): bundle status reports, through the core codec.

A status report is the payload of a bundle flagged ADMIN_RECORD, sent to the subject
bundle's report-to endpoint: ``[1, [[rcv], [fwd], [dlv], [del], reason, source, [t, seq]
(, fragment offset, payload length)]]`` where each status item is ``[false]``, ``[true]`` or
``[true, dtn time]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import TYPE_CHECKING

from betanet._native import bundle as _nb
from betanet.dtn.bundle import Bundle, BundleFlags, CRCType, ReasonCode
from betanet.dtn.eid import EID
from betanet.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Buffer

__all__ = ["StatusFlags", "StatusReport", "status_report_bundle", "RECORD_STATUS_REPORT"]

RECORD_STATUS_REPORT = 1
_ORDER = ("received", "forwarded", "delivered", "deleted")


class StatusFlags(IntFlag):
    RECEIVED = 0x1
    FORWARDED = 0x2
    DELIVERED = 0x4
    DELETED = 0x8


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One bundle status report. ``times`` maps an asserted status to its DTN time (ms)
    when the subject bundle asked for times (STATUS_TIME flag)."""

    asserted: StatusFlags
    reason: ReasonCode
    source: EID                       # the subject bundle's source
    creation_ms: int
    sequence: int
    fragment: tuple[int, int] | None = None   # (offset, payload length) of a fragment subject
    times: tuple[tuple[StatusFlags, int], ...] = ()

    def encode(self) -> bytes:
        timed, times = 0, [0, 0, 0, 0]
        for flag, t in self.times:
            i = int(flag).bit_length() - 1
            if int(flag) != 1 << i or not self.asserted & flag:
                raise InvalidArgumentError("a status time needs its status asserted, one status each")
            timed |= int(flag)
            times[i] = t
        return _nb.status_encode(int(self.asserted), timed, times, int(self.reason), self.source.spec(),
                                 self.creation_ms, self.sequence, self.fragment)

    @classmethod
    def decode(cls, record: Buffer) -> StatusReport:
        """MalformedError for a record that is not a well-formed status report,
        UnsupportedError for another administrative record type."""
        (asserted, timed, times, reason, src, ms, seq, is_frag, foff, plen) = _nb.status_decode(record)
        t = tuple((StatusFlags(1 << i), times[i]) for i in range(4) if timed & (1 << i))
        try:
            why = ReasonCode(reason)
        except ValueError:
            why = reason  # unassigned codes are carried as plain ints
        return cls(StatusFlags(asserted), why, EID.from_view(memoryview(record).cast("B"), src), ms, seq,
                   (foff, plen) if is_frag else None, t)

    @classmethod
    def about(cls, subject: Bundle, asserted: StatusFlags, reason: ReasonCode = ReasonCode.NO_INFO,
              at_ms: int | None = None) -> StatusReport:
        """A report on subject; with at_ms, times are included when the subject asked for them."""
        p = subject.primary
        frag = (p.fragment_offset, len(subject.payload)) if p.is_fragment else None
        times: tuple = ()
        if at_ms is not None and p.flags & BundleFlags.STATUS_TIME:
            times = tuple((f, at_ms) for f in StatusFlags if asserted & f)
        return cls(asserted, reason, p.source, p.creation_ms, p.sequence, frag, times)


def status_report_bundle(report: StatusReport, subject_report_to: EID, node_id: EID, *,
                         creation_ms: int | None = None, sequence: int = 0,
                         lifetime_ms: int = 86_400_000, crc_type: CRCType = CRCType.CRC32C) -> Bundle:
    """The bundle carrying a report from node_id to the subject's report-to endpoint."""
    if subject_report_to.is_none:
        raise InvalidArgumentError("the subject bundle has no report-to endpoint (dtn:none)")
    return Bundle.build(subject_report_to, node_id, report.encode(), report_to=EID.NONE,
                        creation_ms=creation_ms, sequence=sequence, lifetime_ms=lifetime_ms,
                        flags=BundleFlags.ADMIN_RECORD | BundleFlags.MUST_NOT_FRAGMENT, crc_type=crc_type)
