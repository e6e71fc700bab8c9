"""The BLE mesh link: node frames as directed BitChat packets through the mesh.

:class:`betanet.mesh.service.MeshService` drives the router (radio callbacks, timers, the
announce every ``announce_s`` with TTL 7, so peers several hops away learn of us); this
adapter only maps its events and measurements onto the node's link interface. A peer is
reachable over the mesh while its announce is fresh in the router and its peer record names
its BLE peer id. The mesh has no hop acknowledgment: ``send`` returns once the frame is
queued on the radio; the end-to-end acknowledgment tells the node whether it arrived.
``enabled = False`` takes the link out of the node's routes and drops the frames it hears
(the service keeps relaying for others).

Discovery from announces (docs/node.md "Discovery over the mesh"): our announces carry the
SHA-256 of our signed peer record in TLV 0x70 (``PEER_RECORD_HASH``, which BitChat skips).
A peer announcing a hash whose record we do not hold is asked for it with a directed mesh
message ``0x70 || hash``; it answers ``0x71 || record`` (node frames begin with 1 or 2, so
these never reach the node). The record is imported only if it has the announced hash, names
the announcing BLE peer id and passes ``PeerBook.add`` (the owner's signature, the sequence
rule) exactly as a record file or mDNS; refused records are counted and their hash is not
asked for again. A record learned this way is dropped when that peer's announces have not
been heard for ``expiry_s``.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from typing import Callable

from betanet.errors import BetanetError, MalformedError
from betanet.mesh.announce import PEER_RECORD_HASH
from betanet.mesh.packet import MESSAGE
from betanet.mesh.router import MeshRouter
from betanet.mesh.service import Delivered, MeshService, NeighbourChanged, PeerAnnounced
from betanet.node.links import ENERGY, NOMINAL_BYTES, PRIVACY_EPS, LinkError
from betanet.node.peers import PeerBook, PeerRecord

log = logging.getLogger(__name__)

RECORD_REQUEST, RECORD_RESPONSE = 0x70, 0x71     # first byte of a directed mesh message
ASK_AGAIN_S = 5.0          # an unanswered record request is repeated after this
HOP_LATENCY_MS = 60.0      # a connection interval (30 ms) plus airtime and relay delay per hop


class MeshLink:
    transport = "ble"
    reliable = False           # a radio: parity chunks even while the loss estimate reads 0

    def __init__(self, router: MeshRouter, radio, peers: PeerBook, *, announce_s: float = 1.0,
                 max_tasks: int = 256, clock: Callable[[], float] = time.time,
                 discovery: bool = True, expiry_s: float = 120.0) -> None:
        self.service = MeshService(router, radio, announce_interval_s=announce_s, clock=clock)
        self.router, self.radio, self.peers = router, radio, peers
        self.announce_s = announce_s
        self.on_frame = None
        self.on_change = None
        self._reader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._max_tasks = max_tasks
        self._known: set[str] = set()
        self.counters = {"frames_sent": 0, "frames_received": 0, "dropped_busy": 0,
                         "records_imported": 0, "records_refused": 0, "records_expired": 0,
                         "records_served": 0, "record_requests": 0}
        self.enabled = True
        self.discovery, self.expiry_s = discovery, expiry_s
        self._record: bytes | None = None
        self._asked: dict[bytes, tuple[bytes, float]] = {}      # ble id -> (hash, when)
        self._learned: dict[str, tuple[bytes, int]] = {}        # PeerID -> (ble id, last heard ms)
        self._refused: OrderedDict[bytes, None] = OrderedDict()  # hashes not asked for again
        self._scanned = 0.0
        self._served: dict[bytes, float] = {}                   # ble id -> when we last answered

    def set_record(self, record: PeerRecord | bytes) -> None:
        """Our signed peer record: its hash goes into our announces, the record to who asks."""
        self._record = record.raw if isinstance(record, PeerRecord) else bytes(record)
        if self.discovery:
            self.router.extra_tlvs[PEER_RECORD_HASH] = hashlib.sha256(self._record).digest()

    async def open(self) -> None:
        events = self.service.events()           # subscribed before the first frame can arrive
        await self.service.start()
        self._reader = asyncio.ensure_future(self._read(events))

    async def close(self) -> None:
        for t in [self._reader, *self._tasks]:
            if t is not None:
                t.cancel()
        await self.service.stop()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        if hasattr(self.radio, "close"):
            await self.radio.close()

    async def _read(self, events) -> None:
        # announces age out with time, not with events: re-check reach at least every announce
        nxt = asyncio.ensure_future(events.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({nxt}, timeout=self.announce_s)
                if not done:
                    self._check_reach()
                    continue
                try:
                    ev = nxt.result()
                except StopAsyncIteration:
                    return
                nxt = asyncio.ensure_future(events.__anext__())
                self._on_event(ev)
        finally:
            nxt.cancel()

    def _on_event(self, ev) -> None:
        if isinstance(ev, Delivered):
            if ev.packet.type != MESSAGE or ev.packet.recipient != self.router.me or not self.enabled:
                return
            body = bytes(ev.packet.payload)
            if body[:1] in (bytes([RECORD_REQUEST]), bytes([RECORD_RESPONSE])):
                self._on_record_message(ev.packet.sender, body)
                return
            if time.monotonic() - self._scanned > self.announce_s:
                self._check_reach()
            self.counters["frames_received"] += 1
            if self.on_frame is None:
                return
            if len(self._tasks) >= self._max_tasks:
                self.counters["dropped_busy"] += 1      # the sender retries end to end
                return
            t = asyncio.ensure_future(self.on_frame(bytes(ev.packet.payload)))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        elif isinstance(ev, (PeerAnnounced, NeighbourChanged)):
            self._check_reach()

    # ---- discovery from announces -----------------------------------------------------------
    def _on_record_message(self, sender: bytes, body: bytes) -> None:
        if not self.discovery:
            return
        if body[0] == RECORD_REQUEST:
            t = time.monotonic()
            if t - self._served.get(sender, -ASK_AGAIN_S) < ASK_AGAIN_S / 2:
                return                              # one answer per asker per period: no amplification
            self._served[sender] = t
            if len(self._served) > 1024:
                self._served = {b: at for b, at in self._served.items() if t - at < ASK_AGAIN_S}
            if self._record is not None and body[1:] == hashlib.sha256(self._record).digest():
                with contextlib.suppress(BetanetError, OSError):
                    self.service.send_to(sender, bytes([RECORD_RESPONSE]) + self._record)
                    self.counters["records_served"] += 1
            return
        asked = self._asked.pop(sender, None)
        raw = body[1:]
        h = hashlib.sha256(raw).digest()
        try:
            if asked is None or asked[0] != h:
                raise MalformedError("a record nobody asked for, or not the announced one")
            rec = PeerRecord.decode(raw)
            if rec.ble_id != sender:
                raise MalformedError(f"record of {rec.peer} names BLE id "
                                     f"{rec.ble_id.hex() if rec.ble_id else None}, announced by {sender.hex()}")
            self.peers.add(rec)                 # signature and sequence rule, as for record files
        except BetanetError as e:
            self.counters["records_refused"] += 1
            why = f"records_refused_{type(e).__name__}"
            self.counters[why] = self.counters.get(why, 0) + 1
            self._refused[h] = None
            while len(self._refused) > 1024:
                self._refused.popitem(last=False)
            log.warning("mesh peer record from %s refused: %s", sender.hex(), e)
            return
        self._learned[rec.peer] = (sender, self.service.now_ms())
        self.counters["records_imported"] += 1
        log.info("peer %s learned from mesh announces", rec.peer)
        self._check_reach()

    def _discover(self) -> None:
        """Ask announcing peers for records we do not hold; forget learned ones gone quiet."""
        now_ms = self.service.now_ms()
        t = time.monotonic()
        for ble, peer in list(self.service.peers.items()):
            h = peer.announce.tlv(PEER_RECORD_HASH)
            if h is None or len(h) != 32 or h in self._refused or ble == self.router.me:
                continue
            held = self.peers.by_ble(ble)
            if held is not None and hashlib.sha256(held.raw).digest() == h:
                continue
            asked = self._asked.get(ble)
            if asked is not None and asked[0] == h and t - asked[1] < ASK_AGAIN_S:
                continue
            if len(self._asked) >= 256 and ble not in self._asked:
                continue                        # bounded: the rest are asked later
            with contextlib.suppress(BetanetError, OSError):
                self.service.send_to(ble, bytes([RECORD_REQUEST]) + h)
                self._asked[ble] = (h, t)
                self.counters["record_requests"] += 1
        for ble in [b for b, (_, at) in self._asked.items() if t - at > 4 * ASK_AGAIN_S]:
            del self._asked[ble]
        for pid, (ble, heard) in list(self._learned.items()):
            seen = self.service.peers.get(ble)
            if seen is not None and seen.seen_ms > heard:
                self._learned[pid] = (ble, heard := seen.seen_ms)
            if now_ms - heard > self.expiry_s * 1000:
                del self._learned[pid]
                rec = self.peers.find(pid)
                if rec is not None and rec.ble_id == ble:
                    self.peers.remove(pid)
                    self.counters["records_expired"] += 1
                    log.info("peer %s expired (no mesh announce for %.0f s)", pid, self.expiry_s)

    def _check_reach(self) -> None:
        self._scanned = time.monotonic()
        if self.discovery and self.enabled:
            self._discover()
        now = self.reaches()
        if self.on_change:
            for p in now - self._known:
                self.on_change(p, True)
            for p in self._known - now:
                self.on_change(p, False)
        self._known = now

    def reaches(self) -> set[str]:
        if not self.enabled or not self.router.links:      # no neighbour: nobody, however fresh
            return set()
        out = set()
        now = self.service.now_ms()
        for ble, peer in self.service.peers.items():
            if now - peer.seen_ms > 3 * self.announce_s * 1000 + 500:
                continue
            rec = self.peers.by_ble(ble)
            if rec is not None:
                out.add(rec.peer)
        return out

    async def send(self, peer: str, frame: bytes, timeout: float) -> float:
        rec = self.peers.find(peer)
        if not self.enabled or rec is None or rec.ble_id is None or peer not in self.reaches():
            raise LinkError(f"ble: {peer} is not on the mesh")
        try:
            self.service.send_to(rec.ble_id, frame)
        except (BetanetError, OSError) as e:        # the radio refused it: the node takes the next route
            raise LinkError(f"ble: send failed: {type(e).__name__} {e}") from None
        self.counters["frames_sent"] += 1
        return 0.0

    def measure(self, peer: str) -> dict:
        # loss: the radio's estimates for our neighbours, over the 3 hops the energy model assumes
        losses = [self.service.observe_kwargs(n)["failure"] for n in self.service.neighbours()]
        loss = sum(losses) / len(losses) if losses else 0.0
        return {"latency_ms": 3 * HOP_LATENCY_MS,
                "energy_mj": ENERGY["ble"].energy_mj(NOMINAL_BYTES),
                "failure": min(0.99, 1 - (1 - loss) ** 3), "privacy_eps": PRIVACY_EPS["ble"]}

    def stats(self) -> dict:
        m = self.service.metrics()
        return {**self.counters, "radio_errors": self.service.counters.get("send_failed", 0),
                "neighbours": m.neighbours, "mesh_peers": m.peers,
                **{f"service_{k}": v for k, v in self.service.counters.items()},
                **{f"router_{k}": v for k, v in self.router.counters.items()}}
