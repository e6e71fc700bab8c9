"""Delay-tolerant networking: BPv7 bundles (RFC 9171), BPSec (RFC 9172/9173), status reports.

- ``Bundle``, ``PrimaryBlock``, ``CanonicalBlock``, ``EID``: the bundle codec of libbetanet
  (zero-copy parse, deterministic encode, CRCs, fragmentation, reassembly, block policy).
- ``StatusReport``: administrative records (``betanet.dtn.admin``).
- ``betanet.dtn.bpsec``: BIB-HMAC-SHA2, BCB-AES-GCM and an Ed25519 signature context.
- ``betanet.dtn.store``: the crash-safe SQLite (WAL) bundle store; ``betanet.dtn.tcpcl``,
  ``betanet.dtn.mtcp`` and ``betanet.dtn.cla``: the convergence layers (docs/dtn-cla.md).
Every byte layout and choice is pinned in docs/dtn.md.
"""
from betanet.dtn.admin import StatusFlags, StatusReport, status_report_bundle
from betanet.dtn.bundle import (ADU_ID_BYTES, ID_BYTES, BlockFlags, BlockStatus, BlockType, Bundle,
                                BundleFlags, CanonicalBlock, CRCType, Limits, PrimaryBlock,
                                ReasonCode, Reassembler, Verdict, crc, dtn_time_ms)
from betanet.dtn.eid import EID

__all__ = [
    "Bundle", "PrimaryBlock", "CanonicalBlock", "EID", "CRCType", "BlockType", "BlockFlags",
    "BlockStatus", "BundleFlags", "ReasonCode", "Limits", "Verdict", "Reassembler", "crc",
    "dtn_time_ms", "ID_BYTES", "ADU_ID_BYTES", "StatusReport", "StatusFlags", "status_report_bundle",
]
