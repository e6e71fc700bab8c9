"""Radios behind one interface, and a simulated BLE medium on a discrete-event clock.

A radio moves frames (<= 512 bytes, BitChat's MTU) between this node and its neighbours:
`send(frame)` writes the frame to every connected neighbour (BitChat writes each packet
to each GATT link), received frames and neighbour up/down go to the callbacks the node
sets, `link_quality(peer)` is the delivery probability of a link, and `energy` counts
joules. `SimMedium` places radios on a plane: two radios are neighbours within
`range_m`; every link write is lost with the link's loss probability; delivery takes a
random wait for the next connection event (uniform in one connection interval) plus the
airtime of the frame at the effective GATT throughput, and a link carries its writes one
after the other, in order (a burst of fragments takes its airtime, as on a phone). Time
is the `Scheduler`'s simulated clock: tests run thousands of simulated seconds without
sleeping.

Energy constants (Nordic nRF52840 Product Specification v1.7, section 6.20 "RADIO" and
5.2 "Current consumption", 3 V supply, 1 Mbit/s PHY, DC/DC on):
  TX at 0 dBm 4.8 mA -> 14.4 mW; RX 4.6 mA -> 13.8 mW; one byte is 8 us on air, so
  TX 115 nJ/byte and RX 110 nJ/byte of airtime (GATT headers and retransmissions add
  on top, ~17 % with 27-byte LL PDUs: we charge 1.17x);
  idle (connected, radio mostly off between connection events) ~ 10 uA -> 30 uW;
  sleep (System ON, RAM retained, no radio) 1.5 uA -> 4.5 uW.
Effective GATT write throughput 125 kbit/s and a 30 ms connection interval are typical
phone figures (iOS allows 15-30 ms; measured write-without-response throughputs of
100-200 kbit/s, Apple Accessory Design Guidelines and Punchthrough's BLE throughput notes).
"""
from __future__ import annotations

import heapq
import math
import random
import numbers
from dataclasses import dataclass
from typing import Callable, Protocol

from betanet.errors import InvalidArgumentError, NotFoundError

MTU_BYTES = 512
CONN_INTERVAL_S = 0.030
THROUGHPUT_BPS = 125_000
TX_J_PER_BYTE = 115e-9 * 1.17
RX_J_PER_BYTE = 110e-9 * 1.17
IDLE_W = 30e-6
SLEEP_W = 4.5e-6
LINK_QUEUE_BYTES = 1_000_000    # writes queued per link at most (BitChat iOS: blePendingWriteBufferCapBytes)
_CELL_LIMIT = 1 << 62           # grid cell indices are clamped here (coordinates ~1e19 ranges away)


def _coordinate(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number of metres, not {value!r}")
    return float(value)


def _cell_index(q: float) -> int:
    # floor, clamped (monotone, so a clamped cell still contains its neighbours' cells)
    return math.floor(q) if -_CELL_LIMIT < q < _CELL_LIMIT else (_CELL_LIMIT if q > 0 else -_CELL_LIMIT)


def _seq_of(r: "SimRadio") -> int:
    return r._seq


class Scheduler:
    """A discrete-event loop on simulated time (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self.now), self._seq, fn))

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.call_at(self.now + delay, fn)

    def run(self, until: float | None = None, max_events: int = 10_000_000) -> int:
        """Run events (up to `until` seconds); returns how many ran."""
        n = 0
        while self._heap and n < max_events:
            if until is not None and self._heap[0][0] > until:
                break
            when, _, fn = heapq.heappop(self._heap)
            self.now = when
            fn()
            n += 1
        if until is not None and self.now < until:
            self.now = until
        return n


@dataclass
class Energy:
    """Joules spent by one radio, split by cause."""
    tx: float = 0.0
    rx: float = 0.0
    idle: float = 0.0
    sleep: float = 0.0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0

    @property
    def total(self) -> float:
        return self.tx + self.rx + self.idle + self.sleep


class Radio(Protocol):
    """What a mesh node needs from a radio (simulated or real)."""
    peer_id: bytes
    energy: Energy
    on_frame: Callable[[bytes, bytes], None] | None          # (frame, neighbour peer id)
    on_neighbour: Callable[[bytes, bool], None] | None       # (neighbour peer id, up)

    def send(self, frame: bytes) -> None: ...
    def neighbours(self) -> list[bytes]: ...
    def link_quality(self, peer: bytes) -> float: ...


class SimRadio:
    """A radio on a SimMedium. Its position (`x`, `y`, metres) may be set directly: the
    medium's neighbour index follows (neighbours are not told; `SimMedium.move` tells them)."""

    def __init__(self, medium: "SimMedium", peer_id: bytes, x: float, y: float, energy: Energy | None = None,
                 on_frame: Callable[[bytes, bytes], None] | None = None,
                 on_neighbour: Callable[[bytes, bool], None] | None = None,
                 asleep: bool = False, _since: float = 0.0) -> None:
        self.medium, self.peer_id = medium, peer_id
        self._x, self._y = _coordinate(x, "x"), _coordinate(y, "y")
        self.energy = energy if energy is not None else Energy()
        self.on_frame, self.on_neighbour = on_frame, on_neighbour
        self.asleep, self._since = asleep, _since
        self._cell: tuple[int, int] | None = None      # where the medium's index holds it (None: not indexed)
        self._seq = 0                                  # its place in medium.radios (the order links are written)
        self._nbrs: list[SimRadio] | None = None       # cached neighbours_of, before partitions

    @property
    def x(self) -> float:
        return self._x

    @x.setter
    def x(self, value: float) -> None:
        old, self._x = self._x, _coordinate(value, "x")
        self.medium._moved(self, old, self._y)

    @property
    def y(self) -> float:
        return self._y

    @y.setter
    def y(self, value: float) -> None:
        old, self._y = self._y, _coordinate(value, "y")
        self.medium._moved(self, self._x, old)

    def __repr__(self) -> str:
        return f"SimRadio(peer_id={self.peer_id.hex()}, x={self._x!r}, y={self._y!r}, asleep={self.asleep})"

    def send(self, frame: bytes) -> None:
        self.medium.transmit(self, frame)

    def neighbours(self) -> list[bytes]:
        return [r.peer_id for r in self.medium.neighbours_of(self)]

    def link_quality(self, peer: bytes) -> float:
        other = self.medium.radios.get(peer)
        return 0.0 if other is None else 1.0 - self.medium.loss_between(self, other)

    def set_asleep(self, asleep: bool) -> None:
        """Sleeping radios neither send nor receive (friendship's low-power nodes)."""
        self._account()
        self.asleep = asleep

    def _account(self) -> None:
        now = self.medium.scheduler.now
        dt = now - self._since
        if self.asleep:
            self.energy.sleep += dt * SLEEP_W
        else:
            self.energy.idle += dt * IDLE_W
        self._since = now


class SimMedium:
    """Radios on a plane with range, per-link loss and BLE timing.

    Neighbours come from an index: a grid of `range_m` cells (a radio's neighbours are in
    its own and the adjacent cells) and each radio's list cached until a radio near it
    moves, joins or leaves, or the range changes. Lists keep the order of `radios`, the
    order links are written in, so a seeded run is the same as with the scan of every
    pair that `neighbour_index=False` keeps as the reference. Add and remove radios with
    `add`/`join`/`leave`, not through `radios`.
    """

    def __init__(self, scheduler: Scheduler, *, range_m: float = 30.0, loss: float = 0.0,
                 rng: random.Random | None = None, conn_interval_s: float = CONN_INTERVAL_S,
                 throughput_bps: float = THROUGHPUT_BPS, neighbour_index: bool = True) -> None:
        self.scheduler = scheduler
        self.radios: dict[bytes, SimRadio] = {}
        self._indexed = neighbour_index
        self._cells: dict[tuple[int, int], list[SimRadio]] = {}
        self._seq = 0
        self.range_m = range_m
        self.loss = loss
        self.link_loss: dict[frozenset[bytes], float] = {}
        self.blocked: set[frozenset[bytes]] = set()        # partitions: links cut by hand
        self.rng = rng or random.Random(0)
        self.conn_interval_s = conn_interval_s
        self.throughput_bps = throughput_bps
        self.link_writes = 0
        self.link_losses = 0
        self.link_overflows = 0
        self._link_free: dict[tuple[bytes, bytes], float] = {}   # (from, to) -> when its last write lands

    @property
    def range_m(self) -> float:
        return self._range_m

    @range_m.setter
    def range_m(self, value: float) -> None:
        """Radios are not told of the links a new range makes or breaks (as with setting x, y)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise InvalidArgumentError(f"range_m must be a number of metres >= 0, not {value!r}")
        self._range_m = float(value)
        # Grid cells of one range; no grid for a zero or infinite range (every radio is scanned).
        self._cell_m = self._range_m if 0.0 < self._range_m < math.inf else 0.0
        # A neighbour's coordinates differ by at most the range (times 1 + 2^-53 for the
        # rounding of the subtraction): the margin keeps it inside the cells searched.
        self._reach = self._range_m * (1 + 1e-9)
        self._cells = {}
        for r in self.radios.values():
            r._cell = None
            self._index(r)

    def add(self, peer_id: bytes, x: float, y: float) -> SimRadio:
        r = SimRadio(self, peer_id, x, y, _since=self.scheduler.now)
        old = self.radios.get(peer_id)
        if old is not None:                 # a replaced radio keeps its place in `radios`
            self._unindex(old, old._x, old._y)
            r._seq = old._seq
        else:
            self._seq += 1
            r._seq = self._seq
        self.radios[peer_id] = r
        self._index(r)
        return r

    def _remove(self, peer_id: bytes) -> SimRadio:
        r = self.radios.pop(peer_id)
        self._unindex(r, r._x, r._y)
        return r

    def in_range(self, a: SimRadio, b: SimRadio) -> bool:
        return (a is not b and frozenset((a.peer_id, b.peer_id)) not in self.blocked
                and math.hypot(a.x - b.x, a.y - b.y) <= self.range_m)

    def neighbours_of(self, radio: SimRadio) -> list[SimRadio]:
        if not self._indexed:
            return [r for r in self.radios.values() if self.in_range(radio, r)]
        near = radio._nbrs if radio._nbrs is not None else self._near(radio)
        if self.blocked:
            me, blocked = radio.peer_id, self.blocked
            return [r for r in near if frozenset((me, r.peer_id)) not in blocked]
        return list(near)

    # ---- the neighbour index -----------------------------------------------------------
    def _near(self, radio: SimRadio) -> list[SimRadio]:
        """Radios within range of `radio` (partitions aside), in `radios` order; cached
        while `radio` is on the medium."""
        x, y, rm, hypot = radio._x, radio._y, self._range_m, math.hypot
        near = [r for r in self._candidates(x, y) if r is not radio and hypot(x - r._x, y - r._y) <= rm]
        if self._cell_m:
            near.sort(key=_seq_of)
        if radio._cell is not None:
            radio._nbrs = near
        return near

    def _candidates(self, x: float, y: float):
        """Every radio that can be within range of (x, y), and maybe others."""
        c, reach = self._cell_m, self._reach
        if not c:
            return self.radios.values()
        x0, x1 = _cell_index((x - reach) / c), _cell_index((x + reach) / c)
        y0, y1 = _cell_index((y - reach) / c), _cell_index((y + reach) / c)
        if x1 - x0 > 3 or y1 - y0 > 3:       # coordinates so large that cells lose meaning
            return self.radios.values()
        cells, out = self._cells, []
        for i in range(x0, x1 + 1):
            for j in range(y0, y1 + 1):
                cell = cells.get((i, j))
                if cell:
                    out.extend(cell)
        return out

    def _index(self, r: SimRadio) -> None:
        self._forget_near(r._x, r._y)
        c = self._cell_m
        r._cell = (_cell_index(r._x / c), _cell_index(r._y / c)) if c else (0, 0)
        if c:
            self._cells.setdefault(r._cell, []).append(r)
        r._nbrs = None

    def _unindex(self, r: SimRadio, x: float, y: float) -> None:
        """Take `r`, last indexed at (x, y), out of the index."""
        if r._cell is None:
            return
        if self._cell_m:
            cell = self._cells[r._cell]
            cell.remove(r)
            if not cell:
                del self._cells[r._cell]
        r._cell, r._nbrs = None, None
        self._forget_near(x, y)

    def _forget_near(self, x: float, y: float) -> None:
        """Drop the cached lists that a radio appearing or vanishing at (x, y) may change."""
        for o in self._candidates(x, y):
            o._nbrs = None

    def _moved(self, r: SimRadio, old_x: float, old_y: float) -> None:
        if r._cell is not None and self.radios.get(r.peer_id) is r:
            self._unindex(r, old_x, old_y)
            self._index(r)

    def loss_between(self, a: SimRadio, b: SimRadio) -> float:
        return self.link_loss.get(frozenset((a.peer_id, b.peer_id)), self.loss)

    def set_blocked(self, a: bytes, b: bytes, blocked: bool) -> None:
        """Cut or restore the link a-b (a partition), telling both ends."""
        key = frozenset((a, b))
        self._radio(a), self._radio(b)
        self._relinked((a, b), lambda: (self.blocked.add if blocked else self.blocked.discard)(key))

    def join(self, peer_id: bytes, x: float, y: float) -> SimRadio:
        """Add a radio while the medium runs: the radios in range hear it come up (and it
        hears them once its callbacks are set; `neighbours()` lists them meanwhile)."""
        if peer_id in self.radios:
            raise InvalidArgumentError(f"peer {peer_id.hex()} is already on the medium")
        return self._relinked((peer_id,), lambda: self.add(peer_id, x, y))

    def leave(self, peer_id: bytes) -> None:
        """Remove a radio: its neighbours, and the radio itself, see the links go down."""
        self._radio(peer_id)._account()
        self._relinked((peer_id,), lambda: self._remove(peer_id))
        for key in [k for k in self._link_free if peer_id in k]:
            del self._link_free[key]

    def move(self, peer_id: bytes, x: float, y: float) -> None:
        r = self._radio(peer_id)

        def place() -> None:
            r.x, r.y = x, y
        self._relinked((peer_id,), place)

    def set_loss(self, loss: float, a: bytes | None = None, b: bytes | None = None) -> None:
        """Loss for every link (no a, b) or for the link a-b; ends of changed links are told
        again that the link is up, so they pick up its new quality."""
        if not 0.0 <= loss <= 1.0:
            raise InvalidArgumentError(f"loss must be in [0, 1], not {loss}")
        if a is None or b is None:
            self.loss = loss
            self.link_loss.clear()
            pairs = [(r, n) for r in self.radios.values() for n in self.neighbours_of(r)]
        else:
            ra, rb = self._radio(a), self._radio(b)
            self.link_loss[frozenset((a, b))] = loss
            pairs = [(ra, rb), (rb, ra)] if self.in_range(ra, rb) else []
        for x, y in pairs:
            if x.on_neighbour:
                x.on_neighbour(y.peer_id, True)

    def _radio(self, peer_id: bytes) -> SimRadio:
        r = self.radios.get(peer_id)
        if r is None:
            raise NotFoundError(f"no radio {bytes(peer_id).hex()} on the medium")
        return r

    def _links(self, ids: tuple[bytes, ...]) -> set[frozenset[bytes]]:
        return {frozenset((i, n.peer_id)) for i in ids if i in self.radios
                for n in self.neighbours_of(self.radios[i])}

    def _relinked(self, ids: tuple[bytes, ...], change: Callable[[], object]):
        """Run `change` (which moves only the radios `ids`) and tell both ends of every
        link it made or broke."""
        by_id = dict(self.radios)
        before = self._links(ids)
        out = change()
        after = self._links(ids)
        by_id.update(self.radios)
        for links, up in ((before - after, False), (after - before, True)):
            for link in links:
                a, b = tuple(link)
                for x, y in ((a, b), (b, a)):
                    r = by_id[x]
                    if r.on_neighbour:
                        r.on_neighbour(y, up)
        return out

    def transmit(self, sender: SimRadio, frame: bytes) -> None:
        if len(frame) > MTU_BYTES:
            raise InvalidArgumentError(f"frame of {len(frame)} bytes exceeds the {MTU_BYTES}-byte MTU")
        if sender.asleep:
            return
        airtime = len(frame) * 8 / self.throughput_bps
        sender.energy.frames_sent += 1
        sender.energy.bytes_sent += len(frame)
        for r in self.neighbours_of(sender):
            self.link_writes += 1
            sender.energy.tx += len(frame) * TX_J_PER_BYTE
            if self.rng.random() < self.loss_between(sender, r):
                self.link_losses += 1
                continue
            # A link carries one write at a time, in order: the write waits for the next
            # connection event, and behind the writes still on the link (GATT is FIFO per link).
            key = (sender.peer_id, r.peer_id)
            now = self.scheduler.now
            at = max(now + self.rng.uniform(0, self.conn_interval_s), self._link_free.get(key, 0.0)) + airtime
            if (at - now) * self.throughput_bps / 8 > LINK_QUEUE_BYTES:
                self.link_overflows += 1          # a bounded write queue drops, never grows
                continue
            self._link_free[key] = at
            self.scheduler.call_later(at - now, lambda r=r: self._deliver(r, sender.peer_id, frame))

    def _deliver(self, r: SimRadio, src: bytes, frame: bytes) -> None:
        if r.asleep:
            return
        r.energy.rx += len(frame) * RX_J_PER_BYTE
        r.energy.frames_received += 1
        if r.on_frame:
            r.on_frame(frame, src)

    def settle_energy(self) -> None:
        """Charge idle/sleep draw up to now (call before reading energy)."""
        for r in self.radios.values():
            r._account()
