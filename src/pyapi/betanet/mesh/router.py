"""The sans-IO mesh router: receive frames from links, relay, deliver (docs/mesh.md).

No sockets, no clocks: `receive(frame, link, now_ms)` returns events, `tick(now_ms)` runs
due timers, `frames_to_send()` hands over frames for the radio (each goes to every
neighbour, as BitChat writes each packet to each link), `next_timer()` says when to tick.

Pipeline for a frame: per-link rate limit -> decode -> de-duplication (packet identity,
rotating Bloom filters) -> per-sender rate limit -> signature check (announces against
the key they carry and the key pinned for that peer; other packets against the sender's
pinned key when known) -> relay decision -> local processing (fragments reassembled with
FEC, announces into the peer table with expiry, packets for this node delivered).

Rebroadcast policy ("adaptive"): a broadcast with TTL > 1 is not relayed at once but after
a random assessment delay, uniform in [0, rad_ms * min(neighbours, 8)] — denser
neighbourhoods spread their decisions wider. While waiting the node notes every
neighbour it hears the same packet from. At the deadline it relays only if some
neighbour may still lack the packet: neighbour n counts as covered when n itself sent it,
or when enough heard transmitters list n among their direct neighbours (announce TLV
0x04). "Enough" adapts to link quality: one transmitter on a lossless link, and
ceil(log 0.01 / log loss) of them when the link to n drops a fraction `loss` of frames,
so a neighbour misses the packet with probability under 1 %. Only copies sent with at
least the TTL ours would carry count, so pruning never shortens a packet's reach. Without
loss this is neighbour-coverage self-pruning, which never loses coverage. Where a node has
31 or more neighbours (announced lists are truncated there) it falls back to counter-based
suppression: silent after hearing 3 such copies. `policy="flood"` relays every first copy (BitChat's behaviour).
First copy wins the de-duplication; when a copy with more hops left (a shorter path)
arrives after the node relayed, or after a copy it could not relay, it relays once more
with that TTL (counted as `relay_upgrades`, same policy and delay). So a node transmits
each packet it relays at most twice (MAX_RELAYS), once where copies arrive shortest path
first, and the packet reaches every node within its TTL in hops.
"""
from __future__ import annotations

import math
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from betanet._native import mesh as _m
from betanet.errors import AuthenticationError, BetanetError, ReplayError
from betanet.mesh.announce import CAP_FEC, CAP_FRIEND, Announce, peer_id as derive_peer_id
from betanet.mesh.batch import PacketArray
from betanet.mesh.fragment import CHUNK_BYTES, split
from betanet.mesh.friend import FRIEND_POLL, FriendQueues
from betanet.mesh.noise import (NOISE_ENCRYPTED, NOISE_HANDSHAKE, NoiseSession, parse_private_message,
                                private_message)
from betanet.mesh.packet import (ANNOUNCE, BROADCAST, FEC_PARITY, FRAGMENT, MESSAGE, Packet,
                                 packet_id, with_ttl)

MTU = _m.MTU_BYTES
MAX_NEIGHBOURS_TLV = 31        # 255 // 8: a full list may be truncated, so it proves nothing
MAX_NESTING = 2               # fragments of fragments (a small-MTU link cut them again)
EARLY_NOISE_FRAMES = 16       # per peer, held while its handshake completes
DENSE_COPIES = 3               # counter threshold where neighbour lists are truncated
MAX_RELAYS = 2                 # relays of one packet by one node: the first, and one TTL upgrade


def _raw(key) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Identity:
    """A node's Noise static key (its peer id) and Ed25519 signing key."""
    nickname: str
    noise_private: bytes
    signing_seed: bytes

    @classmethod
    def generate(cls, nickname: str, rng: random.Random | None = None) -> "Identity":
        import secrets
        gen = (lambda n: rng.randbytes(n)) if rng is not None else secrets.token_bytes
        return cls(nickname, gen(32), gen(32))

    @property
    def noise_public(self) -> bytes:
        return _raw(X25519PrivateKey.from_private_bytes(self.noise_private).public_key())

    @property
    def signing_public(self) -> bytes:
        return _raw(Ed25519PrivateKey.from_private_bytes(self.signing_seed).public_key())

    @property
    def signing_secret(self) -> bytes:
        """libsodium's 64-byte layout: seed || public key."""
        return self.signing_seed + self.signing_public

    @property
    def peer_id(self) -> bytes:
        return derive_peer_id(self.noise_public)


@dataclass(frozen=True)
class Delivered:
    packet: Packet
    link: bytes
    now_ms: int
    verified: bool


@dataclass(frozen=True)
class PeerAnnounced:
    peer_id: bytes
    announce: Announce


@dataclass(frozen=True)
class PrivateMessage:
    peer_id: bytes
    message_id: str
    content: str


@dataclass(frozen=True)
class Rejected:
    reason: str
    link: bytes


@dataclass
class Peer:
    announce: Announce
    seen_ms: int


@dataclass
class _Pending:
    frame: bytes
    deadline: int
    send_ttl: int
    heard: dict[bytes, int] = field(default_factory=dict)     # transmitter -> TTL it sent


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: int) -> None:
        self.tokens, self.at = tokens, at


class MeshRouter:
    """One node's mesh logic (sans-IO; time in milliseconds, randomness injected)."""

    def __init__(self, identity: Identity, *, rng: random.Random | None = None,
                 policy: str = "adaptive", fec_parity: int = 0, chunk: int = CHUNK_BYTES,
                 rad_ms: int = 10, peer_ttl_ms: int = 300_000, rate_per_s: float = 50.0,
                 burst: int = 200, dedup_capacity: int = 8192, reasm_assemblies: int = 128,
                 reasm_bytes: int = 1 << 20, reasm_timeout_ms: int = 30_000,
                 relay: bool = True, friend: bool = False, store_frames: int = 256,
                 store_ms: int = 300_000) -> None:
        if policy not in ("adaptive", "flood"):
            raise ValueError(f"unknown rebroadcast policy {policy!r}")
        self.identity = identity
        self.me = identity.peer_id
        self.rng = rng or random.Random()
        self.policy = policy
        self.fec_parity = fec_parity
        self.chunk = chunk
        self.rad_ms = rad_ms
        self.peer_ttl_ms = peer_ttl_ms
        self.rate_per_s, self.burst = rate_per_s, burst
        self.peers: dict[bytes, Peer] = {}
        self.links: dict[bytes, float] = {}          # neighbour -> loss estimate
        self.counters: dict[str, int] = {}
        self._dedup = _m.Dedup(dedup_capacity)
        self._reasm = _m.Reassembler(reasm_assemblies, reasm_bytes, reasm_timeout_ms)
        self._pending: dict[bytes, _Pending] = {}
        self.relay_memory = dedup_capacity // 8        # packets whose relay state is kept
        self._relays: OrderedDict[bytes, tuple[bytes, int, int]] = OrderedDict()
        self._out: list[bytes] = []
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()
        # packet id -> times this node sent it, for the last relay_memory packets (bounded)
        self.transmitted: OrderedDict[bytes, int] = OrderedDict()
        self.relay = relay                           # False on low-power nodes
        self.extra_caps = 0                          # capability bits of layers above (dtn_cla)
        self.extra_tlvs: dict[int, bytes] = {}       # announce TLVs of layers above (node record hash)
        self.friends = FriendQueues() if friend else None
        self.sessions: dict[bytes, NoiseSession] = {}
        # store-and-forward: recent broadcast frames (ready to relay) handed to new neighbours
        self.store_frames, self.store_ms = store_frames, store_ms
        self._recent: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._private_queue: dict[bytes, list[bytes]] = {}
        self._early: dict[bytes, deque[bytes]] = {}     # peer -> transport frames before its session

    # ---- links -------------------------------------------------------------------------
    def link_up(self, link: bytes, loss: float = 0.0, now_ms: int | None = None) -> None:
        """A neighbour appeared. With now_ms, it is handed the recent broadcasts it may have
        missed (a healed partition catches up); they still carry their remaining TTL."""
        fresh = link not in self.links
        self.links[link] = loss
        if fresh and now_ms is not None and self.store_frames:
            for pid, (frame, at) in list(self._recent.items()):
                if now_ms - at > self.store_ms:
                    del self._recent[pid]
                else:
                    self._out.append(frame)
                    self._inc("healed_frames")

    def _remember(self, pid: bytes, frame: bytes, now_ms: int) -> None:
        if not self.store_frames:
            return
        self._recent[pid] = (frame, now_ms)
        self._recent.move_to_end(pid)
        while len(self._recent) > self.store_frames:
            self._recent.popitem(last=False)

    def link_down(self, link: bytes) -> None:
        self.links.pop(link, None)

    # ---- sending ---------------------------------------------------------------------
    def announce(self, now_ms: int, ttl: int = 1) -> None:
        caps = (CAP_FEC if self.fec_parity else 0) | (CAP_FRIEND if self.friends else 0) | self.extra_caps
        a = Announce(self.identity.nickname, self.identity.noise_public, self.identity.signing_public,
                     neighbors=tuple(sorted(self.links))[:MAX_NEIGHBOURS_TLV], capabilities=caps,
                     extra=tuple(sorted(self.extra_tlvs.items())))
        self._originate(Packet(type=ANNOUNCE, sender=self.me, payload=a.encode(), timestamp=now_ms,
                               ttl=ttl).signed(self.identity.signing_secret))

    def broadcast(self, payload: bytes, now_ms: int, *, ptype: int = MESSAGE, ttl: int = 7) -> bytes:
        """Sign and send a public message; returns its packet identity."""
        p = Packet(type=ptype, sender=self.me, payload=payload, timestamp=now_ms, ttl=ttl)
        return self._originate(p.signed(self.identity.signing_secret))

    def send_to(self, recipient: bytes, payload: bytes, now_ms: int, *, ptype: int = MESSAGE,
                ttl: int = 7, route: tuple[bytes, ...] = ()) -> bytes:
        """A directed packet; with `route` (intermediate hops) a v2 source-routed one."""
        # v1 carries payloads up to 65 535 bytes; longer ones (bundles) need v2's u32 length
        p = Packet(type=ptype, sender=self.me, payload=payload, timestamp=now_ms, ttl=ttl,
                   recipient=recipient, route=route, version=2 if route or len(payload) > 0xFFFF else 1)
        return self._originate(p.signed(self.identity.signing_secret))

    def poll_friend(self, friend: bytes, now_ms: int) -> None:
        """Low-power node, on waking: ask `friend` for what it kept (friend.py)."""
        p = Packet(type=FRIEND_POLL, sender=self.me, payload=b"P", timestamp=now_ms, ttl=1,
                   recipient=friend)
        self._out.append(p.signed(self.identity.signing_secret).encode())
        self._inc("friend_polls")

    def send_private(self, peer: bytes, content: str, now_ms: int, message_id: str | None = None) -> None:
        """Encrypt to `peer` over a Noise XX session, establishing it first if needed."""
        import uuid
        body = private_message(message_id or str(uuid.UUID(bytes=self.rng.randbytes(16))), content)
        s = self.sessions.get(peer)
        if s is not None and s.established:
            self._send_noise(peer, NOISE_ENCRYPTED, s.encrypt(body), now_ms)
            return
        self._private_queue.setdefault(peer, []).append(body)
        if s is None:
            s = self.sessions[peer] = NoiseSession(self.identity.noise_private, initiator=True)
            self._send_noise(peer, NOISE_HANDSHAKE, s.start(), now_ms)

    def _send_noise(self, peer: bytes, ptype: int, payload: bytes, now_ms: int) -> None:
        self._originate(Packet(type=ptype, sender=self.me, payload=payload, timestamp=now_ms, ttl=7,
                               recipient=peer))

    def _noise(self, p: Packet, link: bytes, now_ms: int) -> list:
        s = self.sessions.get(p.sender)
        if p.type == NOISE_HANDSHAKE:
            if s is None or (s.established and not s.initiator):
                s = self.sessions[p.sender] = NoiseSession(self.identity.noise_private, initiator=False)
            try:
                reply = s.receive_handshake(p.payload)
            except BetanetError:
                self.sessions.pop(p.sender, None)
                self._early.pop(p.sender, None)
                return self._reject("noise_handshake", link)
            if reply is not None:
                self._send_noise(p.sender, NOISE_HANDSHAKE, reply, now_ms)
            if s.established:
                if derive_peer_id(s.remote_static) != p.sender:
                    self.sessions.pop(p.sender, None)
                    self._early.pop(p.sender, None)
                    return self._reject("noise_identity", link)
                for body in self._private_queue.pop(p.sender, []):
                    self._send_noise(p.sender, NOISE_ENCRYPTED, s.encrypt(body), now_ms)
                events: list = []
                for payload in self._early.pop(p.sender, ()):
                    events += self._decrypt(s, p.sender, payload, link)
                return events
            return []
        if s is None:
            return self._reject("noise_no_session", link)
        if not s.established:
            # Frames take different paths through a mesh: the first message of a session
            # can overtake the handshake's last one. Keep a few until the session is up.
            early = self._early.setdefault(p.sender, deque(maxlen=EARLY_NOISE_FRAMES))
            if len(early) == early.maxlen:
                self._inc("rejected_noise_early_overflow")
            early.append(p.payload)
            self._inc("noise_early")
            return []
        return self._decrypt(s, p.sender, p.payload, link)

    def _decrypt(self, s: NoiseSession, sender: bytes, payload: bytes, link: bytes) -> list:
        try:
            mid, content = parse_private_message(s.decrypt(payload))
        except ReplayError:
            return self._reject("replay", link)
        except BetanetError:
            return self._reject("noise_auth", link)
        self._inc("private_delivered")
        return [PrivateMessage(sender, mid, content)]

    def _originate(self, p: Packet) -> bytes:
        frame = p.encode()
        pid = packet_id(frame)
        self._dedup.check(pid)
        stored = p.is_broadcast and not p.route and p.ttl > 1 and p.type != ANNOUNCE
        if len(frame) <= MTU:
            self._emit(frame)
            if stored:
                self._remember(pid, frame, p.timestamp)
        else:
            for f in split(p, chunk=self.chunk, parity=self.fec_parity, max_frame=MTU):
                fr = f.encode()
                fid = packet_id(fr)
                self._dedup.check(fid)
                self._emit(fr)
                if stored:
                    self._remember(fid, fr, p.timestamp)
        return pid

    def _emit(self, frame: bytes) -> None:
        pid = packet_id(frame)
        self.transmitted[pid] = self.transmitted.get(pid, 0) + 1
        self.transmitted.move_to_end(pid)
        if len(self.transmitted) > self.relay_memory:
            self.transmitted.popitem(last=False)
        self._inc("tx_frames")
        self._out.append(frame)

    def frames_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    # ---- timers ----------------------------------------------------------------------
    def next_timer(self) -> int | None:
        return min((p.deadline for p in self._pending.values()), default=None)

    def tick(self, now_ms: int) -> None:
        for pid in [k for k, p in self._pending.items() if p.deadline <= now_ms]:
            p = self._pending.pop(pid)
            if self.policy == "adaptive" and self._covered(p):
                self._inc("relay_suppressed")
            else:
                self._inc("relayed")
                self._emit(p.frame)
        for peer in [k for k, v in self.peers.items() if now_ms - v.seen_ms > self.peer_ttl_ms]:
            del self.peers[peer]
            self._inc("peers_expired")
        self._reasm.expire(now_ms)

    def _covered(self, pend: _Pending) -> bool:
        # Only copies sent with at least the TTL ours would carry count: a neighbour that
        # got the packet with fewer hops left could not carry it as far as we would.
        fresh = [t for t, ttl in pend.heard.items() if ttl >= pend.send_ttl]
        if len(self.links) >= MAX_NEIGHBOURS_TLV:
            # Dense: neighbour lists are truncated, so fall back to counter-based
            # suppression (Ni et al., MobiCom 1999): silent after DENSE_COPIES fresh copies.
            return len(fresh) >= DENSE_COPIES
        for n, loss in self.links.items():
            if n in pend.heard:
                continue
            need = 1 if loss <= 0 else max(1, math.ceil(math.log(0.01) / math.log(min(loss, 0.99))))
            have = 0
            for t in fresh:
                peer = self.peers.get(t)
                if peer and len(peer.announce.neighbors) < MAX_NEIGHBOURS_TLV and n in peer.announce.neighbors:
                    have += 1
            if have < need:
                return False
        return True

    # ---- receiving -------------------------------------------------------------------
    def _inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _reject(self, reason: str, link: bytes) -> list:
        self._inc("rejected_" + reason)
        return [Rejected(reason, link)]

    def _allow(self, key: bytes, now_ms: int) -> bool:
        b = self._buckets.get(key)
        if b is None:
            b = _Bucket(float(self.burst), now_ms)
            self._buckets[key] = b
            if len(self._buckets) > 4096:               # bounded: forget the oldest sender
                self._buckets.popitem(last=False)
        b.tokens = min(self.burst, b.tokens + (now_ms - b.at) * self.rate_per_s / 1000.0)
        b.at = now_ms
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True

    def receive(self, frame: bytes, link: bytes, now_ms: int) -> list:
        self._inc("rx_frames")
        try:
            pid = packet_id(frame)          # the core decodes the header; no Packet for a copy
        except BetanetError:
            return self._reject("malformed", link)
        if self._dedup.check(pid):
            self._duplicate(pid, frame[2], link, now_ms)      # byte 2 is the TTL (v1 and v2)
            return []
        try:
            p = Packet.decode(frame)
        except BetanetError:
            return self._reject("malformed", link)
        return self._fresh(p, frame, pid, link, now_ms)

    def receive_batch(self, frames: list[bytes], link: bytes, now_ms: int) -> list:
        """`receive` for several frames from one link (a BLE link's burst): decoding,
        identities and de-duplication run in one core call for the batch (PacketArray), and
        only the frames seen for the first time become `Packet` objects — in a mesh most
        frames a node hears are copies of one it already has."""
        if not frames:
            return []
        arr = PacketArray.from_frames(frames)
        self._inc("rx_frames", len(frames))
        ids = arr.ids()
        seen = self._dedup.check_batch(ids).tolist()
        ok, ttls = arr.ok.tolist(), arr.field("ttl").tolist()
        events: list = []
        for i, frame in enumerate(frames):
            if not ok[i]:
                events += self._reject("malformed", link)
            elif seen[i]:
                self._duplicate(ids[i].tobytes(), ttls[i], link, now_ms)
            else:
                try:
                    p = Packet.decode(frame)
                except BetanetError:
                    events += self._reject("malformed", link)
                    continue
                events += self._fresh(p, frame, ids[i].tobytes(), link, now_ms)
        return events

    def _duplicate(self, pid: bytes, ttl: int, link: bytes, now_ms: int) -> None:
        self._inc("duplicates")
        pend = self._pending.get(pid)
        if pend is not None:
            pend.heard[link] = max(pend.heard.get(link, 0), ttl)
            if ttl - 1 > pend.send_ttl:      # a shorter path arrived late: carry its TTL
                pend.send_ttl = ttl - 1
                pend.frame = with_ttl(pend.frame, pend.send_ttl)
                frame, _, scheduled = self._relays.get(pid, (pend.frame, 0, 1))
                self._note_relay(pid, frame, pend.send_ttl, scheduled)
            return
        # First copy wins the de-duplication, but it may have come the long way round: when
        # a copy with more hops left arrives after our relay (or after a copy we could not
        # relay), relay once more with that TTL so the packet still reaches as far as its
        # TTL allows. Bounded: at most MAX_RELAYS relays per packet per node. The frame
        # relayed is the one this node checked first, not the copy's bytes.
        done = self._relays.get(pid)
        if done is not None and ttl > 1 and ttl - 1 > done[1] and done[2] < MAX_RELAYS:
            self._inc("relay_upgrades")
            self._schedule_relay(pid, done[0], ttl, link, now_ms)
            if pid in self._recent:           # new neighbours are handed the longer reach too
                self._remember(pid, with_ttl(done[0], ttl - 1), self._recent[pid][1])

    def _fresh(self, p: Packet, frame: bytes, pid: bytes, link: bytes, now_ms: int) -> list:
        if p.sender == self.me:
            return []
        if not self._allow(p.sender, now_ms):
            return self._reject("rate", link)
        events: list = []
        if p.type == FRIEND_POLL:
            return self._friend_poll(p, link)
        if self.friends is not None:
            self.friends.store(frame, p.sender)
        if p.type in (FRAGMENT, FEC_PARITY):
            self._maybe_relay(p, frame, pid, link, now_ms)
            inner = p
            # A link with a small MTU cuts fragments again (gatt.py): reassemble up to
            # MAX_NESTING times, as BitChat re-enters its pipeline with each whole packet.
            for _ in range(MAX_NESTING):
                try:
                    whole = self._reasm.add(inner.sender, inner.payload, now_ms,
                                            is_parity=inner.type == FEC_PARITY)
                except BetanetError:
                    return events + self._reject("fragment", link)
                if whole is None:
                    return events
                try:
                    outer, inner = inner, Packet.decode(whole)
                except BetanetError:
                    return self._reject("malformed", link)
                if inner.sender != outer.sender:
                    return self._reject("fragment", link)
                if inner.type not in (FRAGMENT, FEC_PARITY):
                    break
            else:
                return self._reject("fragment_nesting", link)
            # the inner packet is never relayed (its fragments were); keep the hop count
            inner = replace(inner, ttl=p.ttl)
            verified = self._check_signature(inner, link)
            if verified is None:
                return self._reject("signature", link)
            return events + self._process(inner, link, now_ms, verified)
        verified_ok = self._check_signature(p, link)
        if verified_ok is None:
            return self._reject("signature" if p.type != ANNOUNCE else "forged_announce", link)
        self._maybe_relay(p, frame, pid, link, now_ms)
        return events + self._process(p, link, now_ms, verified_ok)

    def _check_signature(self, p: Packet, link: bytes) -> bool | None:
        """True verified, False unverifiable (no signature / unknown key), None bad."""
        if p.type == ANNOUNCE:
            try:
                a = Announce.decode(p.payload)
            except BetanetError:
                return None
            pinned = self.peers.get(p.sender)
            if (p.signature is None or derive_peer_id(a.noise_key) != p.sender
                    or (pinned and pinned.announce.signing_key != a.signing_key)):
                return None
            key = a.signing_key
        else:
            peer = self.peers.get(p.sender)
            if p.signature is None or peer is None:
                self._inc("unverified")
                return False
            key = peer.announce.signing_key
        try:
            p.verify(key)
        except (AuthenticationError, BetanetError):
            return None
        return True

    def _friend_poll(self, p: Packet, link: bytes) -> list:
        if self.friends is None or p.recipient != self.me or link != p.sender:
            return []
        if self._check_signature(p, link) is not True:
            return self._reject("signature", link)
        frames = self.friends.poll(p.sender)
        self._inc("friend_frames", len(frames))
        self._out.extend(frames)
        return []

    def _maybe_relay(self, p: Packet, frame: bytes, pid: bytes, link: bytes, now_ms: int) -> None:
        if p.recipient == self.me or not self.relay:
            return
        if p.route:
            # v2 source route: only listed hops carry it on, and nobody else relays it
            if p.ttl <= 1 or self.me not in p.route:
                return
            self._inc("relayed")
            self._emit(with_ttl(frame, p.ttl - 1))
            return
        if p.ttl <= 1:
            self._note_relay(pid, frame, 0, 0)     # a later copy with hops left may still go on
            return
        self._schedule_relay(pid, frame, p.ttl, link, now_ms)
        if p.is_broadcast and p.type != ANNOUNCE:
            self._remember(pid, with_ttl(frame, p.ttl - 1), now_ms)

    def _schedule_relay(self, pid: bytes, frame: bytes, ttl: int, link: bytes, now_ms: int) -> None:
        n = max(1, min(len(self.links), 8))
        delay = self.rng.uniform(0, self.rad_ms * n) if self.policy == "adaptive" else self.rng.uniform(0, self.rad_ms)
        self._pending[pid] = _Pending(with_ttl(frame, ttl - 1), now_ms + int(delay), ttl - 1, {link: ttl})
        prior = self._relays.get(pid)
        self._note_relay(pid, frame, ttl - 1, (prior[2] if prior else 0) + 1)

    def _note_relay(self, pid: bytes, frame: bytes, send_ttl: int, scheduled: int) -> None:
        # Bounded memory of what this node did with recent packets: the frame it holds, the
        # TTL its relay carried (0: none) and how many relays it scheduled.
        self._relays[pid] = (frame, send_ttl, scheduled)
        self._relays.move_to_end(pid)
        while len(self._relays) > self.relay_memory:
            self._relays.popitem(last=False)

    def _process(self, p: Packet, link: bytes, now_ms: int, verified: bool = False) -> list:
        if p.type in (NOISE_HANDSHAKE, NOISE_ENCRYPTED):
            return self._noise(p, link, now_ms) if p.recipient == self.me else []
        if p.type == ANNOUNCE:
            a = Announce.decode(p.payload)
            fresh = p.sender not in self.peers
            self.peers[p.sender] = Peer(a, now_ms)
            self._inc("announces")
            return [PeerAnnounced(p.sender, a)] if fresh else []
        if p.recipient is None or p.recipient == BROADCAST or p.recipient == self.me:
            self._inc("delivered")
            return [Delivered(p, link, now_ms, verified)]
        return []
