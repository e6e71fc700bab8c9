"""Betanet's extension blocks and administrative records beyond RFC 9171 (pinned in docs/dtn.md).

RFC 9171 has no custody transfer; draft-ietf-dtn-bibect defines one for encapsulated bundles.
We keep its shape (a custody signal is an administrative record sent by the accepting
custodian to the previous one) but identify subject bundles directly by their 64-byte bundle
id instead of BIBE transmission ids, and carry the request in an extension block. Every
number is in a private-use range (docs/dtn.md, "Numbers"): block types 192-255 (RFC 9171
§4.3.2), administrative record types 64512-65535 (RFC 9713):

- block 192 ``PRIORITY``: CBOR uint, 0 bulk / 1 normal / 2 expedited.
- block 193 ``CUSTODY``: the EID of the current custodian; its presence requests custody.
- block 194 ``SPRAY``: CBOR uint, the copies this holder of the bundle may still hand out.
- admin record 64516 ``custody signal``: ``[64516, [disposition, [bundle id (bstr 64), ...]]]``,
  disposition 0 = accepted, otherwise the RFC 9171 reason code of the refusal.
- admin record 64762 ``summary vector``: ``[64762, [digest (bstr 16), ...]]``, digests are
  BLAKE2b-128 of the bundle ids the sender holds (epidemic / spray-and-wait, at contact start).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from betanet.dtn.bpsec import _enc, _eid_from, _Reader
from betanet.dtn.bundle import ID_BYTES, ReasonCode
from betanet.dtn.eid import EID
from betanet.errors import InvalidArgumentError, MalformedError

__all__ = ["BLOCK_PRIORITY", "BLOCK_CUSTODY", "BLOCK_SPRAY", "RECORD_CUSTODY_SIGNAL",
           "RECORD_SUMMARY_VECTOR", "CustodySignal", "summary_digest", "encode_summary",
           "record_type", "decode_summary", "uint_data", "decode_uint", "decode_eid",
           "MAX_SIGNAL_IDS", "MAX_SUMMARY"]

BLOCK_PRIORITY = 192
BLOCK_CUSTODY = 193
BLOCK_SPRAY = 194
# Private use (RFC 9713): 0xFC00 + the number they had first; 4 is CCSDS's Aggregate Custody
# Signal in the IANA registry and 250 lies in its unassigned range.
RECORD_CUSTODY_SIGNAL = 0xFC04         # 64516
RECORD_SUMMARY_VECTOR = 0xFCFA         # 64762
MAX_SIGNAL_IDS = 1024          # ids per custody signal we send or accept
MAX_SUMMARY = 1024             # digests per summary vector (the CBOR reader's array bound)
DIGEST_BYTES = 16


def uint_data(v: int) -> bytes:
    return _enc(int(v))


def _read(data: Any, what: str) -> Any:
    r = _Reader(bytes(data))
    try:
        item = r.item()
    except MalformedError as e:
        raise MalformedError(f"{what}: {str(e).replace('BPSec block: ', '')}") from None
    if r.i != len(r.d):
        raise MalformedError(f"{what}: trailing bytes")
    return item


def decode_uint(data: Any, what: str = "extension block") -> int:
    v = _read(data, what)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise MalformedError(f"{what}: expected an unsigned integer")
    return v


def decode_eid(data: Any) -> EID:
    try:
        return _eid_from(_read(data, "custody block"))
    except MalformedError:
        raise MalformedError("custody block: not an EID") from None


def record_type(payload: Any) -> tuple[int, Any]:
    """(record type, content) of an administrative record."""
    item = _read(payload, "administrative record")
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)
            and not isinstance(item[0], bool) and item[0] >= 0):
        raise MalformedError("administrative record: expected [type, content]")
    return item[0], item[1]


@dataclass(frozen=True, slots=True)
class CustodySignal:
    """Custody accepted (``disposition`` 0) or refused (an RFC 9171 reason code) for bundles."""

    disposition: int
    bundle_ids: tuple[bytes, ...]

    @property
    def accepted(self) -> bool:
        return self.disposition == 0

    def encode(self) -> bytes:
        if not 1 <= len(self.bundle_ids) <= MAX_SIGNAL_IDS:
            raise InvalidArgumentError(f"a custody signal names 1..{MAX_SIGNAL_IDS} bundles")
        if any(len(b) != ID_BYTES for b in self.bundle_ids):
            raise InvalidArgumentError(f"bundle ids are {ID_BYTES} bytes")
        return _enc([RECORD_CUSTODY_SIGNAL, [int(self.disposition), list(self.bundle_ids)]])

    @classmethod
    def from_content(cls, content: Any) -> CustodySignal:
        if not (isinstance(content, list) and len(content) == 2 and isinstance(content[0], int)
                and not isinstance(content[0], bool) and 0 <= content[0] <= 255
                and isinstance(content[1], list) and 1 <= len(content[1]) <= MAX_SIGNAL_IDS
                and all(isinstance(b, bytes) and len(b) == ID_BYTES for b in content[1])):
            raise MalformedError("custody signal: expected [disposition, [64-byte bundle id, ...]]")
        return cls(content[0], tuple(content[1]))

    @classmethod
    def decode(cls, payload: Any) -> CustodySignal:
        t, content = record_type(payload)
        if t != RECORD_CUSTODY_SIGNAL:
            raise MalformedError(f"administrative record type {t} is not a custody signal")
        return cls.from_content(content)

    @classmethod
    def refused(cls, reason: ReasonCode, ids: tuple[bytes, ...]) -> CustodySignal:
        """0 means accepted, so a refusal without a reason says TRAFFIC_PARED."""
        return cls(int(reason) or int(ReasonCode.TRAFFIC_PARED), ids)


def summary_digest(bundle_id: bytes) -> bytes:
    return hashlib.blake2b(bundle_id, digest_size=DIGEST_BYTES).digest()


def encode_summary(digests: list[bytes]) -> bytes:
    return _enc([RECORD_SUMMARY_VECTOR, list(digests[:MAX_SUMMARY])])


def decode_summary(content: Any) -> frozenset[bytes]:
    if not (isinstance(content, list) and len(content) <= MAX_SUMMARY
            and all(isinstance(d, bytes) and len(d) == DIGEST_BYTES for d in content)):
        raise MalformedError("summary vector: expected [16-byte digest, ...]")
    return frozenset(content)
