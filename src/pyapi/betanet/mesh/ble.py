"""BitChat over real Bluetooth LE: `BleakRadio` (central role through `bleak`).

Split as everywhere else: `BleLinks` is sans-IO — the links to peripherals by address,
each with its negotiated ATT_MTU and a `gatt.WriteAssembler`; which peer id a link
belongs to (learnt from the first *direct* announce heard on it: TTL 7, as BitChat iOS
binds links — a relayed announce has lost a hop and names someone further away — whose
signature verifies against the key it carries and whose peer id is its Noise key's);
which writes carry a frame to each link (`gatt.plan_writes`); and which devices not to
reconnect yet (a device refused for a too-small ATT_MTU is retried after a backoff that
doubles up to REFUSED_BACKOFF_MAX_S, not at every advertisement the scanner sees). `BleakRadio` only moves
bytes: it scans for BitChat's service UUID, connects (up to `max_links`), subscribes to
the characteristic's notifications, writes without response (one ordered writer per link),
and reconnects when the scanner, which keeps running, sees the device again. It implements the `Radio` protocol, so `MeshService` runs on it unchanged.

The peripheral role (being found and written to by phones) is in `ble_peripheral.py`
(BlueZ over D-Bus, Linux), and `ble_peripheral.BleRadio` runs both roles as one radio.

Link quality: BLE gives no delivery feedback for writes without response, so a connected
link reports 1.0 and a lost one disappears. Energy is estimated with radio.py's per-byte
constants (the real radio's draw is not observable from user space).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from betanet.errors import BetanetError, InvalidArgumentError, StateError, UnsupportedError
from betanet.mesh.gatt import (ATT_HEADER_BYTES, ATT_MTU_DEFAULT, ATT_MTU_REQUEST, MIN_WRITE_LIMIT, WriteAssembler,
                               plan_writes, write_limit)
from betanet.mesh.announce import Announce, peer_id as derive_peer_id
from betanet.mesh.packet import ANNOUNCE, Packet
from betanet.mesh.radio import MTU_BYTES, RX_J_PER_BYTE, TX_J_PER_BYTE, Energy

__all__ = ["SERVICE_UUID", "TESTNET_SERVICE_UUID", "CHARACTERISTIC_UUID", "BleLinks", "BleakRadio"]

log = logging.getLogger(__name__)

SERVICE_UUID = "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5c"
TESTNET_SERVICE_UUID = "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5a"
CHARACTERISTIC_UUID = "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"
MIN_ATT_MTU = MIN_WRITE_LIMIT + ATT_HEADER_BYTES      # the smallest link that carries BitChat (110)
DIRECT_ANNOUNCE_TTL = 7          # BitChat's messageTTL: an announce with it has not been relayed
REFUSED_BACKOFF_S = 30.0         # first wait before reconnecting a device refused for its MTU
REFUSED_BACKOFF_MAX_S = 960.0    # the wait doubles per refusal up to this
REFUSED_MEMORY = 256             # refused devices remembered (oldest forgotten first)


@dataclass
class _Link:
    address: str
    att_mtu: int
    peer: bytes | None = None
    assembler: WriteAssembler = field(default_factory=WriteAssembler)


class BleLinks:
    """The sans-IO state of a central's links (addresses in, peer ids and writes out)."""

    def __init__(self, me: bytes) -> None:
        self.me = me
        self.links: dict[str, _Link] = {}
        self.by_peer: dict[bytes, str] = {}
        self.unbound_announces = 0       # announces that did not bind a link: relayed or not genuine
        self._refused: dict[str, tuple[float, int]] = {}     # address -> (retry at, refusals)

    def connected(self, address: str, att_mtu: int) -> None:
        # a smaller link could not carry a frame (plan_writes refuses it), so it is refused
        # here, once, rather than at every send (BitChat Android drops such links too)
        if write_limit(att_mtu) < MIN_WRITE_LIMIT:
            raise InvalidArgumentError(f"a link with ATT_MTU {att_mtu} cannot carry BitChat (needs {MIN_ATT_MTU})")
        self.links[address] = _Link(address, att_mtu)

    def disconnected(self, address: str) -> bytes | None:
        """Forget a link; returns the peer that went down, if it was known."""
        link = self.links.pop(address, None)
        if link is None or link.peer is None:
            return None
        if self.by_peer.get(link.peer) == address:
            del self.by_peer[link.peer]
            return link.peer
        return None

    def received(self, address: str, data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """Bytes of one notification -> ([(frame, link id)], peer newly bound or None).

        Until a link is bound, its frames carry a provisional link id (the address's
        hash, never a real peer id) so the router can still rate-limit them."""
        link = self.links.get(address)
        if link is None:
            return [], None
        out, bound = [], None
        for frame in link.assembler.feed(data):
            if link.peer is None:
                try:
                    p = Packet.decode(frame)
                except BetanetError:
                    p = None
                if p is not None and p.type == ANNOUNCE and p.sender != self.me and p.sender not in self.by_peer:
                    if p.ttl == DIRECT_ANNOUNCE_TTL and _genuine(p):
                        link.peer = bound = p.sender
                        self.by_peer[p.sender] = address
                    else:
                        self.unbound_announces += 1
            out.append((frame, link.peer if link.peer is not None else _provisional(address)))
        return out, bound

    def refused(self, address: str, now: float) -> float:
        """The device at `address` was refused (its link cannot carry BitChat): returns how
        long to wait before connecting it again (doubling per refusal, bounded)."""
        _, n = self._refused.pop(address, (0.0, 0))
        wait = min(REFUSED_BACKOFF_S * 2 ** n, REFUSED_BACKOFF_MAX_S)
        self._refused[address] = (now + wait, n + 1)
        while len(self._refused) > REFUSED_MEMORY:
            del self._refused[next(iter(self._refused))]
        return wait

    def may_connect(self, address: str, now: float) -> bool:
        """False while a refused device's backoff runs."""
        entry = self._refused.get(address)
        return entry is None or now >= entry[0]

    def writes(self, frame: bytes) -> list[tuple[str, bytes]]:
        """(address, write) for every link, each cut to that link's write limit."""
        out = []
        for addr, link in self.links.items():
            out += [(addr, w) for w in plan_writes(frame, write_limit(link.att_mtu))]
        return out

    def neighbours(self) -> list[bytes]:
        return list(self.by_peer)


def _genuine(p: Packet) -> bool:
    """An announce signed by the key it carries, from the peer id its Noise key gives."""
    try:
        a = Announce.decode(p.payload)
        if p.signature is None or derive_peer_id(a.noise_key) != p.sender:
            return False
        p.verify(a.signing_key)
    except BetanetError:
        return False
    return True


def hand_up(radio: Any, received: tuple[list, bytes | None]) -> None:
    """What a BLE radio (either role) does with what its ``BleLinks`` reassembled from a
    link's bytes: report a neighbour its announce just bound, and pass the complete frames
    to ``on_frames`` (one call per run of frames from one link: the router takes them as a
    batch) when the owner set it, else to ``on_frame`` one by one."""
    frames, bound = received
    if bound is not None and radio.on_neighbour:
        radio.on_neighbour(bound, True)
    radio.energy.frames_received += len(frames)
    batch = getattr(radio, "on_frames", None)
    if batch is not None:
        i = 0
        while i < len(frames):
            j = i
            while j < len(frames) and frames[j][1] == frames[i][1]:
                j += 1
            batch([f for f, _ in frames[i:j]], frames[i][1])
            i = j
        return
    for frame, link in frames:
        if radio.on_frame:
            radio.on_frame(frame, link)


def _provisional(address: str) -> bytes:
    import hashlib
    return b"\0" + hashlib.sha256(address.encode()).digest()[:7]


def _bleak() -> Any:
    try:
        import bleak
    except ImportError:
        raise UnsupportedError("BleakRadio needs the 'ble' extra: pip install 'betanet[ble]'") from None
    return bleak


class BleakRadio:
    """A BitChat central on a real adapter (BlueZ on Linux, CoreBluetooth, WinRT)."""

    def __init__(self, peer_id: bytes, *, service_uuid: str = SERVICE_UUID, adapter: str | None = None,
                 max_links: int = 8, att_mtu: int = ATT_MTU_REQUEST) -> None:
        if len(peer_id) != 8:
            raise InvalidArgumentError("peer id must be 8 bytes")
        if max_links < 1:
            raise InvalidArgumentError("max_links must be >= 1")
        if write_limit(att_mtu) < MIN_WRITE_LIMIT:
            raise InvalidArgumentError(f"att_mtu {att_mtu} cannot carry BitChat (needs {MIN_ATT_MTU})")
        self.bleak = _bleak()
        self.peer_id = bytes(peer_id)
        self.service_uuid, self.adapter = service_uuid, adapter
        self.max_links, self.att_mtu = max_links, att_mtu
        self.energy = Energy()
        self.on_frame: Callable[[bytes, bytes], None] | None = None
        self.on_neighbour: Callable[[bytes, bool], None] | None = None
        self.links = BleLinks(self.peer_id)
        self._clients: dict[str, Any] = {}
        self._queues: dict[str, asyncio.Queue] = {}
        self._writers: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._connecting: set[str] = set()
        self._scanner: Any = None
        self._running = False

    # ---- Radio protocol -----------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        if len(frame) > MTU_BYTES:
            raise InvalidArgumentError(f"frame of {len(frame)} bytes exceeds the {MTU_BYTES}-byte MTU")
        if not self._running:
            raise StateError("the BLE radio is not running")
        for addr, w in self.links.writes(frame):
            q = self._queues.get(addr)
            if q is not None and q.qsize() < 256:          # a stalled link loses writes, not memory
                q.put_nowait(w)

    def neighbours(self) -> list[bytes]:
        return self.links.neighbours()

    def link_quality(self, peer: bytes) -> float:
        return 1.0 if peer in self.links.by_peer else 0.0

    # ---- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start scanning; raises UnsupportedError when no adapter can be reached."""
        kw: dict[str, Any] = {"service_uuids": [self.service_uuid]}
        if self.adapter:
            kw["bluez"] = {"adapter": self.adapter}
        try:
            self._scanner = self.bleak.BleakScanner(self._seen, **kw)
            await self._scanner.start()
        except (OSError, self.bleak.exc.BleakError) as exc:
            raise UnsupportedError(f"no Bluetooth LE adapter available ({type(exc).__name__}: {exc}); "
                                   "BlueZ needs bluetoothd on the system D-Bus") from None
        self._running = True

    async def stop(self) -> None:
        self._running = False
        if self._scanner is not None:
            with contextlib.suppress(Exception):
                await self._scanner.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in list(self._clients.values()):
            with contextlib.suppress(Exception):
                await client.disconnect()
        self._clients.clear()

    # ---- adapter side -------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def _seen(self, device: Any, adv: Any) -> None:
        addr = device.address
        if (not self._running or addr in self._clients or addr in self._connecting
                or len(self._clients) + len(self._connecting) >= self.max_links
                or not self.links.may_connect(addr, asyncio.get_running_loop().time())):
            return
        self._connecting.add(addr)
        self._spawn(self._connect(device))

    async def _connect(self, device: Any) -> None:
        addr = device.address
        client = None
        try:
            client = self.bleak.BleakClient(device, disconnected_callback=lambda c, a=addr: self._lost(a))
            await client.connect()
            mtu = int(getattr(client, "mtu_size", ATT_MTU_DEFAULT) or ATT_MTU_DEFAULT)
            try:
                self.links.connected(addr, min(mtu, self.att_mtu))
            except InvalidArgumentError:
                wait = self.links.refused(addr, asyncio.get_running_loop().time())
                log.info("BLE: %s offers ATT_MTU %d; retrying in %.0f s", addr, mtu, wait)
                raise
            self._clients[addr] = client
            self._queues[addr] = asyncio.Queue()
            await client.start_notify(CHARACTERISTIC_UUID, lambda _c, data, a=addr: self._notified(a, bytes(data)))
            self._writers[addr] = self._spawn(self._writer(addr, client))
        except (OSError, asyncio.TimeoutError, BetanetError, self.bleak.exc.BleakError) as exc:
            log.info("BLE: could not link to %s: %s", addr, exc)
            self._lost(addr)
            if client is not None:             # connected but unusable: do not hold the link open
                with contextlib.suppress(Exception):
                    await client.disconnect()
        finally:
            self._connecting.discard(addr)

    async def _writer(self, addr: str, client: Any) -> None:
        q = self._queues[addr]
        while True:                      # one writer per link keeps its writes in order
            w = await q.get()
            try:
                await client.write_gatt_char(CHARACTERISTIC_UUID, w, response=False)
            except (OSError, self.bleak.exc.BleakError) as exc:
                log.info("BLE: write to %s failed: %s", addr, exc)
                self._lost(addr)
                return
            self.energy.frames_sent += 1
            self.energy.bytes_sent += len(w)
            self.energy.tx += len(w) * TX_J_PER_BYTE

    def _notified(self, addr: str, data: bytes) -> None:
        self.energy.rx += len(data) * RX_J_PER_BYTE
        hand_up(self, self.links.received(addr, data))

    def _lost(self, addr: str) -> None:
        """A link ended (disconnected, failed write or failed connect); scanning finds
        the device again when it advertises, which is the reconnection."""
        self._clients.pop(addr, None)
        self._queues.pop(addr, None)
        writer = self._writers.pop(addr, None)
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        peer = self.links.disconnected(addr)
        if peer is not None and self.on_neighbour:
            self.on_neighbour(peer, False)
