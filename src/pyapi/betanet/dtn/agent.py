"""The bundle protocol agent (RFC 9171 §5), sans-IO: decisions only, no sockets, no clock.

Every method takes the current DTN time (``now_ms``) and returns *actions* for the adapter
(:mod:`betanet.dtn.node`) to carry out, in order:

- :class:`Persist`: store the bundle durably (``BundleStore.put``), then call
  :meth:`Agent.persisted` with whether it was new (or :meth:`Agent.refused` when the store
  refused it). Nothing is acknowledged, forwarded, delivered or custody-signalled before that.
- :class:`Transmit`: send bytes to a peer (node id) over a convergence layer; report the
  outcome with :meth:`Agent.sent` (``bundle_id`` None: fire and forget).
- :class:`Deliver`: hand a bundle to the application registered at ``endpoint``; once the
  application has it, mark it delivered in the store and call :meth:`Agent.delivered`.
- :class:`Forget`: the bundle left this node (forwarded, released by custody, expired,
  discarded): drop its data from the store, keep its id (dedup until expiry).
- :class:`ReportReceived`: a status report arrived for this node.

Forwarding decisions come from a :mod:`betanet.dtn.routing` strategy. Custody, the echo
endpoint and every record layout are pinned in docs/dtn.md.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from betanet.dtn.admin import RECORD_STATUS_REPORT, StatusFlags, StatusReport, status_report_bundle
from betanet.dtn.bundle import (DEFAULT_LIFETIME_MS, DTN_EPOCH_UNIX, BlockType, Bundle, BundleFlags,
                                CanonicalBlock, CRCType, Limits, ReasonCode, Reassembler)
from betanet.dtn.eid import SCHEME_IPN, EID
from betanet.dtn.extensions import (BLOCK_CUSTODY, BLOCK_PRIORITY, BLOCK_SPRAY, MAX_SIGNAL_IDS,
                                    MAX_SUMMARY, RECORD_CUSTODY_SIGNAL, RECORD_SUMMARY_VECTOR,
                                    CustodySignal, decode_eid, decode_summary, decode_uint,
                                    encode_summary, record_type, summary_digest, uint_data)
from betanet.dtn.routing import StaticRoutes, Strategy
from betanet.errors import (BetanetError, InvalidArgumentError, LimitExceededError,
                            MalformedError)

__all__ = ["Agent", "AgentConfig", "Held", "Persist", "Transmit", "Deliver", "Forget",
           "ReportReceived", "ECHO_IPN_SERVICE", "ECHO_DTN_DEMUX", "KNOWN_BLOCKS", "unix_to_dtn_ms",
           "dtn_ms_to_unix"]

log = logging.getLogger(__name__)

ECHO_IPN_SERVICE = 7          # ipn:N.7 answers pings, as dtnping expects of ION nodes
ECHO_DTN_DEMUX = "echo"       # dtn://node/echo
KNOWN_BLOCKS = (BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT, BlockType.BIB,
                BlockType.BCB, BLOCK_PRIORITY, BLOCK_CUSTODY, BLOCK_SPRAY)


def unix_to_dtn_ms(t: float) -> int:
    return int((t - DTN_EPOCH_UNIX) * 1000)


def dtn_ms_to_unix(ms: int) -> float:
    return ms / 1000.0 + DTN_EPOCH_UNIX


@dataclass(frozen=True)
class AgentConfig:
    """Policies and bounds (docs/limits.md)."""
    accept_custody: bool = True
    custody_timeout_ms: int = 2_000        # first retransmission of a bundle still in our custody
    max_backoff_ms: int = 60_000
    retry_ms: int = 200                    # after a failed convergence-layer send
    scan_ms: int = 500                     # full re-evaluation of waiting bundles at least this often
    max_volatile: int = 10_000             # reports, signals, echo replies held in memory only
    max_reassembly: int = 64               # ADUs being reassembled at once
    max_reassembly_bytes: int = 64 << 20
    max_seen: int = 65_536                 # in-memory dedup of records that are never stored
    max_reports: int = 1024                # received status reports kept for the adapter
    limits: Limits = Limits()
    crc_type: CRCType = CRCType.CRC32C


@dataclass(slots=True, eq=False)
class Held:
    """A bundle this node holds for forwarding (or, ``local``, for delivery)."""
    id: str                       # hex of the 64-byte bundle id: the store key
    bid: bytes
    data: bytes
    destination: EID
    dest_node: str
    source: str
    expires_ms: int
    priority: int
    received_ms: int
    flags: int
    local: bool = False
    custody: bool = False         # this node is the bundle's custodian
    custodian: EID | None = None  # the custodian named in the bundle as it arrived
    durable: bool = True
    prev: str | None = None       # node id of the previous node (not sent back there)
    prev_ipn: int | None = None
    copies: int | None = None     # spray-and-wait copies this node may still hand out
    sent_to: set[str] = field(default_factory=set)
    in_flight: set[str] = field(default_factory=set)
    retry_ms: int = 0
    tries: int = 0
    reported_fwd: bool = False
    summaries: dict | None = None
    _digest: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def known_by(self, peer: str) -> bool:
        """True when peer's last summary vector lists this bundle."""
        s = self.summaries.get(peer) if self.summaries else None
        if not s:
            return False
        if self._digest is None:
            self._digest = summary_digest(self.bid)
        return self._digest in s


@dataclass(frozen=True, slots=True)
class Persist:
    held: Held


@dataclass(frozen=True, slots=True)
class Transmit:
    peer: str
    bundle_id: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    endpoint: str
    bundle_id: str                # the id to mark delivered (the ADU's for a reassembled bundle)
    bundle: Bundle
    parts: tuple[str, ...] = ()   # stored fragments to forget once delivered
    expires_ms: int = 0
    custodian: EID | None = None  # the node whose custody this node holds for the bundle


@dataclass(frozen=True, slots=True)
class Forget:
    bundle_id: str
    why: str


@dataclass(frozen=True, slots=True)
class ReportReceived:
    report: StatusReport
    sender: EID


Action = Persist | Transmit | Deliver | Forget | ReportReceived


class Agent:
    """A bundle protocol agent for one node (``node_id``: ``ipn:N.0`` or ``dtn://name/``)."""

    def __init__(self, node_id: EID | str, *, strategy: Strategy | None = None,
                 config: AgentConfig = AgentConfig()) -> None:
        nid = EID.parse(node_id) if isinstance(node_id, str) else node_id
        if nid.is_none:
            raise InvalidArgumentError("a node id cannot be dtn:none")
        self.node_id = nid.node_id
        self.name = str(self.node_id)
        self.strategy: Strategy = strategy if strategy is not None else StaticRoutes()
        self.config = config
        self.registrations: set[str] = set()
        self._on_delivery: set[str] = set()           # endpoints that accept custody on delivery
        self._delivering: set[str] = set()            # their bundles handed up, outcome pending
        self.held: dict[str, Held] = {}
        self._persisting: dict[str, Held] = {}
        self._undelivered: dict[str, list[Deliver]] = {}
        self._ready: dict[str, None] = {}              # ordered set of ids to look at next poll
        self._reasm: dict[bytes, tuple[Reassembler, list[str], int]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._signals: dict[str, tuple[EID, int, list[bytes]]] = {}
        self.summaries: dict[str, frozenset[bytes]] = {}
        self._volatile = 0
        self._last_up: frozenset[str] = frozenset()
        self._next_scan = 0
        self._seq_ms = 0
        self._seq = 0
        self.counters: dict[str, int] = dict.fromkeys((
            "received", "originated", "delivered", "forwarded", "duplicate", "malformed",
            "expired", "hop_limit", "unprocessable", "no_endpoint", "refused", "custody_accepted",
            "custody_released", "custody_refused", "custody_retransmit", "custody_forged",
            "reports_sent", "reports_received", "echo", "volatile_dropped", "reassembled",
            "send_failed", "delivery_refused"), 0)

    # ---- endpoints ---------------------------------------------------------------------------
    def is_local(self, eid: EID) -> bool:
        return not eid.is_none and eid.node_id == self.node_id

    def endpoint(self, service: str | int) -> EID:
        """This node's endpoint for a service: ipn:N.<service>, dtn://node/<service>."""
        if self.node_id.scheme == SCHEME_IPN:
            return EID.ipn(self.node_id.node, int(service))
        return EID.dtn(self.node_id.ssp + str(service))

    @property
    def echo_endpoint(self) -> EID:
        return self.endpoint(ECHO_IPN_SERVICE if self.node_id.scheme == SCHEME_IPN else ECHO_DTN_DEMUX)

    def register(self, endpoint: EID | str, *, custody_on_delivery: bool = False) -> tuple[str, list[Deliver]]:
        """Register an application endpoint of this node; returns its name and the bundles
        stored for it before it registered (restored after a restart).

        ``custody_on_delivery``: custody of a bundle for this endpoint is accepted only once
        the application took it (:meth:`delivered`), so the application may still refuse it
        (:meth:`refuse_delivery`) and the custodian keeps it. Otherwise custody is accepted
        when the bundle is stored (fragments always are)."""
        eid = EID.parse(endpoint) if isinstance(endpoint, str) else endpoint
        if not self.is_local(eid) or eid == self.node_id or eid == self.echo_endpoint:
            raise InvalidArgumentError(f"{eid} is not an application endpoint of node {self.name}")
        name = str(eid)
        self.registrations.add(name)
        if custody_on_delivery:
            self._on_delivery.add(name)
        return name, self._undelivered.pop(name, [])

    def unregister(self, endpoint: EID | str) -> None:
        self.registrations.discard(str(endpoint))
        self._on_delivery.discard(str(endpoint))

    # ---- origination (§5.2) ------------------------------------------------------------------
    def _next_sequence(self, now_ms: int) -> tuple[int, int]:
        if now_ms != self._seq_ms:
            self._seq_ms, self._seq = now_ms, 0
        else:
            self._seq += 1
        return now_ms, self._seq

    def send(self, destination: EID | str, payload: bytes, *, now_ms: int,
             lifetime_ms: int = DEFAULT_LIFETIME_MS, priority: int = 1,
             report_to: EID | str | None = None, flags: BundleFlags = BundleFlags.NONE,
             hop_limit: int | None = None, custody: bool = False, source: EID | str | None = None,
             crc_type: CRCType | None = None) -> tuple[str, list[Action]]:
        """Originate a bundle; returns its id (hex) and the actions (a :class:`Persist`)."""
        dest = EID.parse(destination) if isinstance(destination, str) else destination
        src = self.node_id if source is None else (EID.parse(source) if isinstance(source, str) else source)
        if dest.is_none:
            raise InvalidArgumentError("cannot send to dtn:none")
        if not self.is_local(src):
            raise InvalidArgumentError(f"source {src} is not an endpoint of this node")
        if not 0 <= int(priority) <= 2:
            raise InvalidArgumentError("priority is 0 (bulk), 1 (normal) or 2 (expedited)")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError("payload must be bytes")
        if lifetime_ms <= 0:
            raise InvalidArgumentError("lifetime_ms must be positive")
        extra = []
        if int(priority) != 1:
            extra.append(CanonicalBlock(BLOCK_PRIORITY, 2, uint_data(int(priority))))
        if custody:
            extra.append(CanonicalBlock(BLOCK_CUSTODY, 3, self.node_id.encode()))
        ms, seq = self._next_sequence(now_ms)
        b = Bundle.build(dest, src, bytes(payload), report_to=report_to, creation_ms=ms, sequence=seq,
                         lifetime_ms=lifetime_ms, flags=BundleFlags(flags), hop_limit=hop_limit,
                         crc_type=self.config.crc_type if crc_type is None else crc_type,
                         extra_blocks=extra)
        data = b.to_bytes()
        b = Bundle.parse(data, limits=self.config.limits)
        h = self._held(b, data, now_ms, None)
        h.custody = custody
        self.counters["originated"] += 1
        self._persisting[h.id] = h
        return h.id, [Persist(h)]

    def _held(self, b: Bundle, data: bytes, now_ms: int, peer: str | None) -> Held:
        p = b.primary
        bid = b.bundle_id
        prio, custodian, copies = 1, None, None
        for blk in b.blocks:
            try:
                if blk.type == BLOCK_PRIORITY:
                    prio = min(decode_uint(blk.data, "priority block"), 2)
                elif blk.type == BLOCK_CUSTODY:
                    custodian = decode_eid(blk.data)
                elif blk.type == BLOCK_SPRAY:
                    copies = decode_uint(blk.data, "spray block")
            except MalformedError as e:
                log.info("bundle %s: ignoring an unintelligible block: %s", bid.hex()[:16], e)
        if p.creation_ms:
            expires = p.creation_ms + p.lifetime_ms
        else:
            expires = now_ms + p.lifetime_ms - (b.age_ms or 0)
        prev = b.previous_node
        prev_name = peer if peer is not None else (None if prev is None else str(prev.node_id))
        prev_ipn = None
        if prev is not None and prev.scheme == SCHEME_IPN:
            prev_ipn = prev.node
        return Held(bid.hex(), bid, data, p.destination, str(p.destination.node_id), str(p.source),
                    expires, prio, now_ms, int(p.flags), local=self.is_local(p.destination),
                    custodian=custodian, prev=prev_name, prev_ipn=prev_ipn, copies=copies,
                    summaries=self.summaries)

    def _originate(self, b: Bundle, now_ms: int) -> list[Action]:
        """A bundle this agent makes itself (report, signal, echo reply): memory only."""
        data = b.to_bytes()
        if self.is_local(b.primary.destination):
            return self.receive(data, now_ms=now_ms)
        if self._volatile >= self.config.max_volatile:
            self.counters["volatile_dropped"] += 1
            return []
        b = Bundle.parse(data)
        h = self._held(b, data, now_ms, None)
        h.durable = False
        if h.id in self.held:
            return []
        self._volatile += 1
        self.held[h.id] = h
        self._ready[h.id] = None
        return []

    def _report(self, b: Bundle, flag: StatusFlags, reason: ReasonCode, now_ms: int) -> list[Action]:
        p = b.primary
        want = {StatusFlags.RECEIVED: BundleFlags.REPORT_RECEPTION,
                StatusFlags.FORWARDED: BundleFlags.REPORT_FORWARDING,
                StatusFlags.DELIVERED: BundleFlags.REPORT_DELIVERY,
                StatusFlags.DELETED: BundleFlags.REPORT_DELETION}[flag]
        if not p.flags & want or p.flags & BundleFlags.ADMIN_RECORD or p.report_to.is_none:
            return []
        ms, seq = self._next_sequence(now_ms)
        rb = status_report_bundle(StatusReport.about(b, flag, reason, at_ms=now_ms), p.report_to,
                                  self.node_id, creation_ms=ms, sequence=seq,
                                  crc_type=self.config.crc_type)
        self.counters["reports_sent"] += 1
        return self._originate(rb, now_ms)

    def _admin(self, destination: EID, record: bytes, now_ms: int, hop_limit: int | None = None) -> Bundle:
        ms, seq = self._next_sequence(now_ms)
        return Bundle.build(destination, self.node_id, record, report_to=EID.NONE, creation_ms=ms,
                            sequence=seq, flags=BundleFlags.ADMIN_RECORD | BundleFlags.MUST_NOT_FRAGMENT,
                            crc_type=self.config.crc_type, hop_limit=hop_limit)

    def _signal(self, custodian: EID, disposition: int, bid: bytes) -> None:
        key = f"{custodian.node_id}|{disposition}"
        entry = self._signals.setdefault(key, (custodian.node_id, disposition, []))
        entry[2].append(bid)

    # ---- reception (§5.6) --------------------------------------------------------------------
    def _seen_add(self, bid: str) -> None:
        self._seen[bid] = None
        if len(self._seen) > self.config.max_seen:
            self._seen.popitem(last=False)

    def receive(self, data: bytes, *, now_ms: int, peer: str | None = None) -> list[Action]:
        """A bundle arrived (from peer, a node id, when known). Raises MalformedError for bytes
        that are not a well-formed bundle (the convergence layer refuses the transfer); every
        other refusal is a counted drop with a status report when one is requested."""
        c = self.counters
        c["received"] += 1
        try:
            b = Bundle.parse(data, limits=self.config.limits)
        except (MalformedError, LimitExceededError):
            c["malformed"] += 1
            raise
        p = b.primary
        out: list[Action] = []
        if p.flags & BundleFlags.REPORT_RECEPTION:
            out += self._report(b, StatusFlags.RECEIVED, ReasonCode.NO_INFO, now_ms)
        verdict = b.policy(KNOWN_BLOCKS)
        if verdict.delete:
            c["unprocessable"] += 1
            return out + self._report(b, StatusFlags.DELETED, verdict.reason, now_ms)
        if verdict.discard:
            data = b.without_discarded(KNOWN_BLOCKS)
            b = Bundle.parse(data, limits=self.config.limits)
            p = b.primary
        if b.expired(now_ms):
            c["expired"] += 1
            return out + self._report(b, StatusFlags.DELETED, ReasonCode.LIFETIME_EXPIRED, now_ms)
        hop = b.hop_count
        if hop is not None and hop[1] > hop[0]:
            c["hop_limit"] += 1
            return out + self._report(b, StatusFlags.DELETED, ReasonCode.HOP_LIMIT_EXCEEDED, now_ms)
        data = bytes(data)
        h = self._held(b, data, now_ms, peer)
        if h.id in self.held or h.id in self._persisting or h.id in self._seen:
            return out + self._duplicate(h)
        if h.local:
            if p.flags & BundleFlags.ADMIN_RECORD:
                self._seen_add(h.id)
                return out + self._admin_record(b, now_ms)
            if p.destination == self.echo_endpoint:
                self._seen_add(h.id)
                return out + self._echo(b, now_ms)
            if str(p.destination) not in self.registrations:
                c["no_endpoint"] += 1
                if h.custodian is not None:
                    self._signal(h.custodian, int(ReasonCode.DESTINATION_UNINTELLIGIBLE), h.bid)
                return out + self._report(b, StatusFlags.DELETED, ReasonCode.DESTINATION_UNINTELLIGIBLE,
                                          now_ms)
        h.custody = h.custodian is not None and self.config.accept_custody
        self._persisting[h.id] = h
        return out + [Persist(h)]

    def _duplicate(self, h: Held) -> list[Action]:
        self.counters["duplicate"] += 1
        if h.id in self._delivering and str(h.destination) in self._on_delivery:
            return []                             # the delivery's outcome answers the custodian
        if h.custodian is not None and h.custodian.node_id != self.node_id:
            self._signal(h.custodian, 0, h.bid)   # we have (or had) it: the sender may let go
        return []

    def persisted(self, bundle_id: str, new: bool, *, now_ms: int, delivered: bool = False) -> list[Action]:
        """The store holds the bundle (new: False when it was already known there; delivered:
        its ADU was already delivered here, for a fragment)."""
        h = self._persisting.pop(bundle_id, None)
        if h is None:
            return []
        if not new or delivered:
            return self._duplicate(h)
        out: list[Action] = []
        if h.local:
            return out + self._deliver_local(h, now_ms)
        if h.custodian is not None and h.custody and h.custodian.node_id != self.node_id:
            self._signal(h.custodian, 0, h.bid)
            self.counters["custody_accepted"] += 1
        self.held[h.id] = h
        self._ready[h.id] = None
        return out

    def refused(self, bundle_id: str, reason: ReasonCode, *, now_ms: int) -> list[Action]:
        """The store refused the bundle (quota): custody refused, deletion reported."""
        h = self._persisting.pop(bundle_id, None)
        if h is None:
            return []
        self.counters["refused"] += 1
        if h.custodian is not None and h.custodian.node_id != self.node_id:
            self._signal(h.custodian, int(reason) or int(ReasonCode.DEPLETED_STORAGE), h.bid)
        return self._report(Bundle.parse(h.data), StatusFlags.DELETED, reason, now_ms)

    # ---- local delivery (§5.7, §5.9) ---------------------------------------------------------
    def _deliver_local(self, h: Held, now_ms: int, *, restoring: bool = False) -> list[Action]:
        b = Bundle.parse(h.data)
        p = b.primary
        parts: tuple[str, ...] = ()
        bundle_id = h.id
        custodian = h.custodian if h.custody and h.custodian is not None \
            and h.custodian.node_id != self.node_id else None
        on_delivery = custodian is not None and not p.is_fragment and str(p.destination) in self._on_delivery
        if custodian is not None and not on_delivery and not restoring:
            self._signal(custodian, 0, h.bid)      # accepted on arrival
            self.counters["custody_accepted"] += 1
        if p.is_fragment:
            custodian = None
            adu = b.adu_id
            entry = self._reasm.get(adu)
            if entry is None:
                cfg = self.config
                if (len(self._reasm) >= cfg.max_reassembly
                        or sum(e[2] for e in self._reasm.values()) + p.total_adu_length > cfg.max_reassembly_bytes):
                    self.counters["refused"] += 1
                    return [Forget(h.id, "reassembly bound")]
                try:
                    entry = (Reassembler.for_fragment(b, max_adu_bytes=cfg.max_reassembly_bytes), [],
                             p.total_adu_length)
                except BetanetError:
                    self.counters["malformed"] += 1
                    return [Forget(h.id, "bad fragment")]
                self._reasm[adu] = entry
            r, ids, _n = entry
            try:
                done = r.add(b)
            except BetanetError as e:
                self.counters["malformed"] += 1
                log.info("fragment %s refused: %s", h.id[:16], e)
                return [Forget(h.id, "bad fragment")]
            ids.append(h.id)
            if not done:
                return []
            del self._reasm[adu]
            b = Bundle.parse(r.finish(), limits=Limits(max_bytes=max(self.config.limits.max_bytes,
                                                                       p.total_adu_length + 4096)))
            self.counters["reassembled"] += 1
            parts = tuple(ids)
            bundle_id = adu.hex()
        d = Deliver(str(b.primary.destination), bundle_id, b, parts, h.expires_ms, custodian)
        if custodian is not None and (on_delivery or restoring):
            self._delivering.add(bundle_id)
        if d.endpoint not in self.registrations:
            if restoring:
                self._undelivered.setdefault(d.endpoint, []).append(d)
                return []
            self.counters["no_endpoint"] += 1
            self._delivering.discard(bundle_id)
            return [Forget(i, "no endpoint") for i in (parts or (h.id,))]
        return [d]

    def delivered(self, d: Deliver, *, now_ms: int) -> list[Action]:
        """The application took d (the adapter has marked it delivered in the store)."""
        self.counters["delivered"] += 1
        self._delivering.discard(d.bundle_id)
        if d.custodian is not None and d.endpoint in self._on_delivery:
            self._signal(d.custodian, 0, d.bundle.bundle_id)
            self.counters["custody_accepted"] += 1
        out: list[Action] = [Forget(i, "delivered") for i in d.parts]
        return out + self._report(d.bundle, StatusFlags.DELIVERED, ReasonCode.NO_INFO, now_ms)

    def refuse_delivery(self, d: Deliver, reason: ReasonCode = ReasonCode.TRAFFIC_PARED, *,
                        now_ms: int) -> list[Action]:
        """The application refused d (the adapter removed it from the store, so a copy sent
        again is new). With custody on delivery the custodian hears a custody refusal with
        ``reason`` and keeps the bundle, sending it again after its bounded back-off; a
        deletion is reported when the bundle asks for it."""
        reason = ReasonCode(reason) if int(reason) else ReasonCode.TRAFFIC_PARED   # 0 = accepted
        self.counters["delivery_refused"] += 1
        self._delivering.discard(d.bundle_id)
        if d.custodian is not None and d.endpoint in self._on_delivery:
            self._signal(d.custodian, int(reason), d.bundle.bundle_id)
        return self._report(d.bundle, StatusFlags.DELETED, reason, now_ms)

    def _echo(self, b: Bundle, now_ms: int) -> list[Action]:
        p = b.primary
        if p.source.is_none:
            return []
        self.counters["echo"] += 1
        ms, seq = self._next_sequence(now_ms)
        reply = Bundle.build(p.source, p.destination, bytes(b.payload), report_to=EID.NONE,
                             creation_ms=ms, sequence=seq, lifetime_ms=p.lifetime_ms,
                             crc_type=self.config.crc_type)
        return self._originate(reply, now_ms)

    def _admin_record(self, b: Bundle, now_ms: int) -> list[Action]:
        sender = b.primary.source
        try:
            rtype, content = record_type(b.payload)
            if rtype == RECORD_STATUS_REPORT:
                self.counters["reports_received"] += 1
                return [ReportReceived(StatusReport.decode(b.payload), sender)]
            if rtype == RECORD_CUSTODY_SIGNAL:
                return self._custody_signal(CustodySignal.from_content(content), sender, now_ms)
            if rtype == RECORD_SUMMARY_VECTOR:
                self.summaries[str(sender.node_id)] = decode_summary(content)
                self._next_scan = 0
                return []
        except BetanetError as e:
            self.counters["malformed"] += 1
            log.info("administrative record from %s refused: %s", sender, e)
            return []
        self.counters["unprocessable"] += 1
        return []

    # ---- custody -----------------------------------------------------------------------------
    def _custody_signal(self, sig: CustodySignal, sender: EID, now_ms: int) -> list[Action]:
        peer = str(sender.node_id)
        out: list[Action] = []
        for bid in sig.bundle_ids:
            h = self.held.get(bid.hex())
            if h is None or not h.custody:
                continue
            if peer not in h.sent_to and peer not in h.in_flight:
                self.counters["custody_forged"] += 1   # only a node we sent it to may answer
                continue
            if sig.accepted:
                self.counters["custody_released"] += 1
                out += self._forget(h, "custody released")
            else:
                self.counters["custody_refused"] += 1
                h.sent_to.discard(peer)
                h.retry_ms = now_ms + self._backoff(h)
                self._ready[h.id] = None
        return out

    def _backoff(self, h: Held) -> int:
        h.tries += 1
        return min(self.config.custody_timeout_ms << min(h.tries - 1, 16), self.config.max_backoff_ms)

    def _forget(self, h: Held, why: str) -> list[Action]:
        self.held.pop(h.id, None)
        self._ready.pop(h.id, None)
        if not h.durable:
            self._volatile -= 1
            return []
        return [Forget(h.id, why)]

    # ---- forwarding (§5.4) -------------------------------------------------------------------
    def contact_up(self, peer: str, *, now_ms: int) -> list[Action]:
        """A contact to peer (node id) opened: with a replicating strategy, our summary vector."""
        self._next_scan = 0
        if not self.strategy.wants_summary:
            return []
        digests = [summary_digest(h.bid) for h in self.held.values() if h.durable][:MAX_SUMMARY]
        b = self._admin(EID.parse(peer), encode_summary(digests), now_ms, hop_limit=1)
        return [Transmit(peer, None, b.to_bytes())]

    def contact_down(self, peer: str) -> None:
        self._next_scan = 0
        for h in self.held.values():
            if peer in h.in_flight:
                h.in_flight.discard(peer)

    def poll(self, now_ms: int, up: Iterable[str]) -> list[Action]:
        """What to send now over the contacts that are up (node ids)."""
        upset = frozenset(up)
        out: list[Action] = self._flush_signals(now_ms)
        if upset != self._last_up or now_ms >= self._next_scan:
            self._last_up = upset
            self._next_scan = now_ms + self.config.scan_ms
            todo = sorted(self.held.values(), key=lambda h: (-h.priority, h.received_ms))
            self._ready.clear()
        else:
            todo = self._take_ready()
        out += self._forward(todo, now_ms, upset)
        for _ in range(3):   # reports and signals made just now go out in this same poll
            out += self._flush_signals(now_ms)
            if not self._ready:
                break
            out += self._forward(self._take_ready(), now_ms, upset)
        return out

    def _take_ready(self) -> list[Held]:
        todo = [self.held[i] for i in self._ready if i in self.held]
        self._ready.clear()
        todo.sort(key=lambda h: -h.priority)
        return todo

    def _forward(self, todo: list[Held], now_ms: int, upset: frozenset[str]) -> list[Action]:
        out: list[Action] = []
        for h in todo:
            if h.id not in self.held:
                continue
            if h.expires_ms <= now_ms:
                self.counters["expired"] += 1
                out += self._report(Bundle.parse(h.data), StatusFlags.DELETED, ReasonCode.LIFETIME_EXPIRED, now_ms)
                out += self._forget(h, "expired")
                continue
            if h.in_flight or now_ms < h.retry_ms:
                continue
            if h.custody and h.sent_to and not self.strategy.replicate:
                h.sent_to.clear()              # custody timer ran out without a signal: again
                self.counters["custody_retransmit"] += 1
            if not upset:
                continue
            for peer in self.strategy.choose(h, now_ms, upset):
                data = self._copy_for(h, peer, now_ms)
                if data is None:
                    out += self._report(Bundle.parse(h.data), StatusFlags.DELETED,
                                        ReasonCode.HOP_LIMIT_EXCEEDED, now_ms)
                    out += self._forget(h, "hop limit")
                    break
                h.in_flight.add(peer)
                out.append(Transmit(peer, h.id, data))
        return out

    def _flush_signals(self, now_ms: int) -> list[Action]:
        out: list[Action] = []
        if not self._signals:
            return out
        signals, self._signals = self._signals, {}
        for custodian, disposition, ids in signals.values():
            for i in range(0, len(ids), MAX_SIGNAL_IDS):
                rec = CustodySignal(disposition, tuple(ids[i:i + MAX_SIGNAL_IDS])).encode()
                out += self._originate(self._admin(custodian, rec, now_ms), now_ms)
        return out

    def _copy_for(self, h: Held, peer: str, now_ms: int) -> bytes | None:
        b = Bundle.parse(h.data)
        try:
            fwd = b.for_forwarding(self.node_id, max(0, now_ms - h.received_ms))
        except LimitExceededError:
            self.counters["hop_limit"] += 1
            return None
        copies = self.strategy.copies_for(h, peer)
        blocks = fwd.blocks
        if h.custody:
            for i, blk in enumerate(blocks):
                if blk.type == BLOCK_CUSTODY:
                    blocks[i] = CanonicalBlock(BLOCK_CUSTODY, blk.number, self.node_id.encode(), blk.flags)
        if copies is not None:
            for i, blk in enumerate(blocks):
                if blk.type == BLOCK_SPRAY:
                    blocks[i] = CanonicalBlock(BLOCK_SPRAY, blk.number, uint_data(copies), blk.flags)
                    break
            else:
                blocks.insert(0, CanonicalBlock(BLOCK_SPRAY, max(x.number for x in blocks) + 1,
                                                uint_data(copies)))
        return fwd.to_bytes()

    def sent(self, bundle_id: str | None, peer: str, ok: bool, *, now_ms: int) -> list[Action]:
        """Outcome of a Transmit: ok means the convergence layer delivered (acknowledged) it."""
        h = self.held.get(bundle_id) if bundle_id is not None else None
        if h is None:
            return []
        h.in_flight.discard(peer)
        if not ok:
            self.counters["send_failed"] += 1
            h.retry_ms = now_ms + self.config.retry_ms
            self._ready[h.id] = None
            return []
        self.counters["forwarded"] += 1
        h.sent_to.add(peer)
        self.strategy.on_sent(h, peer)
        out: list[Action] = []
        if not h.reported_fwd:
            h.reported_fwd = True
            out += self._report(Bundle.parse(h.data), StatusFlags.FORWARDED, ReasonCode.NO_INFO, now_ms)
        if h.custody:
            h.retry_ms = now_ms + self._backoff(h)     # wait for the custody signal
            return out
        if peer == h.dest_node or not self.strategy.replicate:
            return out + self._forget(h, "forwarded")
        self._ready[h.id] = None
        return out

    # ---- restart -----------------------------------------------------------------------------
    def restore(self, bundle_id: str, data: bytes, *, custody: bool, received_ms: int,
                now_ms: int) -> list[Action]:
        """A bundle the store held when the node started (stored or in custody)."""
        try:
            b = Bundle.parse(data, limits=self.config.limits)
        except BetanetError:
            self.counters["malformed"] += 1
            return [Forget(bundle_id, "unreadable in store")]
        h = self._held(b, bytes(data), received_ms, None)
        h.received_ms = min(received_ms, now_ms)
        h.custody = custody
        if h.local:
            return self._deliver_local(h, now_ms, restoring=True)
        self.held[h.id] = h
        self._ready[h.id] = None
        return []

    def stats(self) -> dict[str, Any]:
        return {"node": self.name, "strategy": self.strategy.name, "held": len(self.held),
                "custody": sum(1 for h in self.held.values() if h.custody),
                "reassembling": len(self._reasm), "registrations": sorted(self.registrations),
                "counters": dict(self.counters)}
