"""Signed peer records and the peer book.

A record says how to reach a node: its keys, HTX endpoints over TCP and QUIC, DTN endpoint
ids and BLE mesh peer id. The owner signs it; a record is accepted only when the signature
verifies, the PeerID is the hash of the signing key, and its sequence number is higher than
the one held (a replayed or older record is a ReplayError; forged ones AuthenticationError).

Wire form (docs/node.md "Peer records")::

    "BNPR" | version:u8 = 1 | body_len:u16 BE | body (UTF-8 JSON object) | Ed25519 signature (64)

signed over ``"betanet/node/peer-record/1" || everything before the signature``. The body
is JSON so operators can read it; the signature covers the exact bytes, so no canonical form
is needed.
"""
from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass, field

from betanet.errors import InvalidArgumentError, MalformedError, NotFoundError, ReplayError
from betanet.node.identity import Identity, peer_id_of, peer_id_text, verify

__all__ = ["PeerRecord", "PeerBook", "MAX_RECORD_BYTES"]

MAGIC = b"BNPR"
VERSION = 1
SIG_CONTEXT = b"betanet/node/peer-record/1"
MAX_RECORD_BYTES = 4096
_HDR = struct.Struct(">4sBH")
_LIST_KEYS = ("htx_tcp", "htx_quic", "dtn_eids", "features")


def _endpoint(v: str, key: str) -> str:
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MalformedError(f"peer record: {key} entry {v!r:.80} is not host:port")
    return v


@dataclass(frozen=True)
class PeerRecord:
    signing_public: bytes
    exchange_public: bytes
    seq: int
    htx_tcp: tuple[str, ...] = ()
    htx_quic: tuple[str, ...] = ()
    dtn_eids: tuple[str, ...] = ()
    ble_id: bytes | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)
    # htx-web (docs/stealth.md): the ticket publication line and SPKI pin a dialer needs to
    # reach htx_tcp endpoints through the decoy site; absent (None) for plain HTX TLS
    htx_ticket: str | None = None
    htx_pin: str | None = None
    # what the peer's node accepts beyond the first release's frames (e.g.
    # envelope.FEATURE_CHUNKS_M0); absent in records that advertise nothing
    features: tuple[str, ...] = ()

    @property
    def peer_id(self) -> bytes:
        return peer_id_of(self.signing_public)

    @functools.cached_property
    def peer(self) -> str:
        return peer_id_text(self.peer_id)

    @classmethod
    def create(cls, identity: Identity, seq: int, *, htx_tcp=(), htx_quic=(), dtn_eids=(),
               ble_id: bytes | None = None, htx_ticket: str | None = None,
               htx_pin: str | None = None, features=()) -> "PeerRecord":
        body = {"peer": identity.peer_id_text, "ed25519": identity.signing_public.hex(),
                "x25519": identity.exchange_public.hex(), "seq": int(seq),
                "htx_tcp": list(htx_tcp), "htx_quic": list(htx_quic), "dtn_eids": list(dtn_eids),
                "ble": ble_id.hex() if ble_id else None}
        if htx_ticket is not None or htx_pin is not None:      # only then: older records stay as they were
            body.update(htx_ticket=htx_ticket, htx_pin=htx_pin)
        if features:                                           # likewise
            body["features"] = sorted(features)
        enc = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        head = _HDR.pack(MAGIC, VERSION, len(enc)) + enc
        raw = head + identity.sign(SIG_CONTEXT + head)
        if len(raw) > MAX_RECORD_BYTES:
            raise InvalidArgumentError(f"peer record of {len(raw)} bytes exceeds {MAX_RECORD_BYTES}")
        return cls.decode(raw)

    @classmethod
    def decode(cls, raw: bytes) -> "PeerRecord":
        """Parse and verify a record (MalformedError / AuthenticationError)."""
        raw = bytes(raw)
        if len(raw) > MAX_RECORD_BYTES:
            raise MalformedError(f"peer record of {len(raw)} bytes exceeds {MAX_RECORD_BYTES}")
        if len(raw) < _HDR.size + 64:
            raise MalformedError("peer record too short")
        magic, ver, n = _HDR.unpack_from(raw)
        if magic != MAGIC or ver != VERSION:
            raise MalformedError("not a version-1 betanet peer record")
        if len(raw) != _HDR.size + n + 64:
            raise MalformedError("peer record length does not match its header")
        try:
            body = json.loads(raw[_HDR.size:_HDR.size + n].decode())
            ed, x = bytes.fromhex(body["ed25519"]), bytes.fromhex(body["x25519"])
            seq = body["seq"]
            lists = {k: tuple(body.get(k) or ()) for k in _LIST_KEYS}
            ble = bytes.fromhex(body["ble"]) if body.get("ble") else None
            claimed = body["peer"]
            web = body.get("htx_ticket"), body.get("htx_pin")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            raise MalformedError("peer record body is not a valid record") from None
        if len(ed) != 32 or len(x) != 32 or not isinstance(seq, int) or isinstance(seq, bool) \
                or not 0 <= seq < 2 ** 63 or (ble is not None and len(ble) != 8):
            raise MalformedError("peer record: bad key length, seq or ble id")
        for k in _LIST_KEYS:
            if len(lists[k]) > 16 or not all(isinstance(v, str) and len(v) <= 255 for v in lists[k]):
                raise MalformedError(f"peer record: {k} must be at most 16 strings")
        for k in ("htx_tcp", "htx_quic"):
            for v in lists[k]:
                _endpoint(v, k)
        from betanet.tls.weblink import check_advertised
        try:
            check_advertised(*web)
        except MalformedError as e:
            raise MalformedError(f"peer record: {e}") from None
        verify(ed, raw[-64:], SIG_CONTEXT + raw[:-64], "peer record")
        rec = cls(ed, x, seq, lists["htx_tcp"], lists["htx_quic"], lists["dtn_eids"], ble, raw, *web,
                  features=lists["features"])
        if claimed != rec.peer:
            raise MalformedError("peer record: its peer id is not the hash of its key")
        return rec


class PeerBook:
    """Known peers by PeerID text. ``add`` verifies and applies the sequence rule."""

    def __init__(self) -> None:
        self._records: dict[str, PeerRecord] = {}
        self.rejected: dict[str, int] = {}

    def add(self, raw: bytes | PeerRecord) -> PeerRecord:
        try:
            rec = raw if isinstance(raw, PeerRecord) else PeerRecord.decode(raw)
            if isinstance(raw, PeerRecord):
                PeerRecord.decode(raw.raw)           # a record object is re-verified too
            old = self._records.get(rec.peer)
            if old is not None and rec.seq <= old.seq:
                if rec.seq == old.seq and rec.raw == old.raw:
                    return old
                raise ReplayError(f"peer record for {rec.peer} has seq {rec.seq}, "
                                  f"not above the held {old.seq}")
        except Exception as e:
            name = type(e).__name__
            self.rejected[name] = self.rejected.get(name, 0) + 1
            raise
        self._records[rec.peer] = rec
        return rec

    def get(self, peer: str) -> PeerRecord:
        try:
            return self._records[peer]
        except KeyError:
            raise NotFoundError(f"unknown peer {peer}") from None

    def find(self, peer: str) -> PeerRecord | None:
        return self._records.get(peer)

    def remove(self, peer: str) -> bool:
        """Forget a peer (an expired discovery); a later record of any seq is accepted."""
        return self._records.pop(peer, None) is not None

    def by_exchange_key(self, key: bytes) -> PeerRecord | None:
        for r in self._records.values():
            if r.exchange_public == key:
                return r
        return None

    def by_ble(self, ble: bytes) -> PeerRecord | None:
        for r in self._records.values():
            if r.ble_id == ble:
                return r
        return None

    def __iter__(self):
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, peer: str) -> bool:
        return peer in self._records
