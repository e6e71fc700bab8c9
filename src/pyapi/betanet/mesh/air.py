"""A real-time simulated BLE medium ("air") for real processes, and the radio that uses it.

The propagation model is radio.py's `SimMedium` (range, per-link loss, one connection
interval wait plus airtime per frame, energy per byte and idle/sleep draw), run on the
asyncio loop clock (`LoopClock`) instead of the discrete-event one. Two ways in:

* in one process: `local_medium()` returns a `SimMedium` on the loop clock; `medium.join(
  peer_id, x, y)` gives a `SimRadio` that a `MeshService` drives directly;
* across processes: `AirServer` owns such a medium behind a Unix socket
  (`python -m betanet.mesh.air --socket PATH [--loss p] [--range m]`); each `AirRadio`
  connects, declares its peer id and position, and implements the `Radio` protocol; an
  `AirControl` connection moves radios, cuts and restores links, sets loss, puts radios to
  sleep and reads energy — what tests use to break BLE links.

Wire format on the socket, both ways: type (1 byte) || length (u32 big-endian) || body.
  radio -> air   0x01 HELLO  JSON {"peer": hex, "x": m, "y": m, "mtu"?: ATT_MTU offered}
                 0x02 SEND   one GATT write (<= 512 bytes)
                 0x03 CTRL   JSON {"id": n, "op": ..., ...}     (any connection)
  air -> radio   0x81 WELCOME JSON {"mtu", "range_m", "loss", "conn_interval_s", "throughput_bps"}
                 0x82 RECV   sender peer id (8) || frame
                 0x83 LINK   JSON {"peer": hex, "up": bool, "quality": p, "mtu": ATT_MTU}
                 0x84 ENERGY JSON (radio.Energy's fields), at most every ENERGY_PUSH_S
                 0x85 REPLY  JSON {"id": n, "ok": bool, "error"?: str, ...}
Control ops: move {peer, x, y}; block / unblock {a, b}; loss {loss, a?, b?}; sleep {peer,
asleep}; energy {peer}; neighbours {peer}. When the server goes away every AirRadio reports
each neighbour down. Each link's ATT_MTU is the smaller of its ends' offers; an AirRadio
cuts and joins frames with gatt.py exactly as a BLE radio does, so a small MTU is tested
here without an adapter.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import struct
import sys
from dataclasses import asdict
from typing import Any, Callable

from betanet.errors import BetanetError, InvalidArgumentError, NotFoundError, ProtocolError, StateError
from betanet.mesh.gatt import ATT_MTU_REQUEST, MIN_WRITE_LIMIT, WriteAssembler, negotiate_mtu, plan_writes, write_limit
from betanet.mesh.radio import CONN_INTERVAL_S, MTU_BYTES, THROUGHPUT_BPS, Energy, SimMedium

__all__ = ["LoopClock", "local_medium", "AirServer", "AirRadio", "AirControl", "main"]

log = logging.getLogger(__name__)

HELLO, SEND, CTRL = 0x01, 0x02, 0x03
WELCOME, RECV, LINK, ENERGY, REPLY = 0x81, 0x82, 0x83, 0x84, 0x85
MAX_BODY = 4096                 # a frame is <= 512 bytes; JSON bodies are small
ENERGY_PUSH_S = 0.2
PEER_ID_BYTES = 8
_HDR = struct.Struct(">BI")


class LoopClock:
    """`Scheduler`'s interface (now, call_at, call_later) on the running asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self._origin = self.loop.time()

    @property
    def now(self) -> float:
        return self.loop.time() - self._origin

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        self.loop.call_at(self._origin + max(when, self.now), fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.loop.call_later(max(delay, 0.0), fn)


def local_medium(*, range_m: float = 30.0, loss: float = 0.0, rng: random.Random | None = None,
                 **kw: Any) -> SimMedium:
    """An in-process real-time medium (call inside a running loop)."""
    return SimMedium(LoopClock(), range_m=range_m, loss=loss, rng=rng or random.Random(), **kw)  # type: ignore[arg-type]


def _peer(value: Any) -> bytes:
    try:
        b = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"peer id must be {PEER_ID_BYTES} bytes in hex, not {value!r}") from None
    if len(b) != PEER_ID_BYTES:
        raise InvalidArgumentError(f"peer id must be {PEER_ID_BYTES} bytes, not {len(b)}")
    return b


def _num(msg: dict, key: str) -> float:
    v = msg.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        raise InvalidArgumentError(f"{key!r} must be a finite number, not {v!r}")
    return float(v)


def _encode(kind: int, body: bytes) -> bytes:
    return _HDR.pack(kind, len(body)) + body


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """One message, or None at a clean end of stream."""
    try:
        hdr = await reader.readexactly(_HDR.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("air connection ended inside a message header") from None
        return None
    kind, n = _HDR.unpack(hdr)
    if n > MAX_BODY:
        raise ProtocolError(f"air message of {n} bytes exceeds {MAX_BODY}")
    try:
        return kind, await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ProtocolError("air connection ended inside a message") from None


def _json(body: bytes) -> dict:
    try:
        msg = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("air control body is not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("air control body is not a JSON object")
    return msg


# ---- server ------------------------------------------------------------------------------
class _Client:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.peer: bytes | None = None
        self.energy_due = False

    def push(self, kind: int, body: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(_encode(kind, body))


class AirServer:
    """The medium behind a Unix socket; radios and controllers connect to it."""

    def __init__(self, path: str, *, range_m: float = 30.0, loss: float = 0.0,
                 rng: random.Random | None = None, conn_interval_s: float = CONN_INTERVAL_S,
                 throughput_bps: float = THROUGHPUT_BPS) -> None:
        if not 0.0 <= loss <= 1.0 or range_m < 0:
            raise InvalidArgumentError("loss must be in [0, 1] and range non-negative")
        self.path = path
        self._kw = dict(range_m=range_m, loss=loss, rng=rng or random.Random(),
                        conn_interval_s=conn_interval_s, throughput_bps=throughput_bps)
        self.medium: SimMedium | None = None
        self._server: asyncio.AbstractServer | None = None
        self._clients: dict[bytes, _Client] = {}
        self._mtu: dict[bytes, int] = {}
        self._conns: set[_Client] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.medium = local_medium(**self._kw)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        log.info("air on %s (range %.0f m, loss %.2f)", self.path, self.medium.range_m, self.medium.loss)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self._conns):
                c.writer.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    async def __aenter__(self) -> "AirServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        c = _Client(writer)
        self._conns.add(c)
        try:
            while (msg := await _read(reader)) is not None:
                kind, body = msg
                if kind == HELLO:
                    self._hello(c, _json(body))
                elif kind == SEND:
                    if c.peer is None:
                        raise ProtocolError("SEND before HELLO")
                    if len(body) > MTU_BYTES:
                        raise ProtocolError(f"frame of {len(body)} bytes exceeds the {MTU_BYTES}-byte MTU")
                    self.medium.transmit(self.medium.radios[c.peer], body)
                    self._energy_later(c)
                elif kind == CTRL:
                    c.push(REPLY, json.dumps(self._control(_json(body))).encode())
                else:
                    raise ProtocolError(f"unknown air message type {kind:#x}")
                await writer.drain()
        except (ProtocolError, InvalidArgumentError) as exc:
            log.warning("air: dropping connection: %s", exc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(c)
            if c.peer is not None and self._clients.get(c.peer) is c:
                del self._clients[c.peer]
                self.medium.leave(c.peer)
                self._mtu.pop(c.peer, None)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def _hello(self, c: _Client, msg: dict) -> None:
        if c.peer is not None:
            raise ProtocolError("second HELLO on one connection")
        peer, x, y = _peer(msg.get("peer")), _num(msg, "x"), _num(msg, "y")
        mtu = msg.get("mtu", ATT_MTU_REQUEST)
        if isinstance(mtu, bool) or not isinstance(mtu, int) or write_limit(mtu) < MIN_WRITE_LIMIT:
            raise InvalidArgumentError(f"ATT_MTU {mtu!r} is too small for BitChat (or not an integer)")
        if peer in self._clients:
            raise ProtocolError(f"peer {peer.hex()} is already on the air")
        m = self.medium
        c.push(WELCOME, json.dumps(dict(mtu=MTU_BYTES, range_m=m.range_m, loss=m.loss,
                                        conn_interval_s=m.conn_interval_s,
                                        throughput_bps=m.throughput_bps)).encode())
        c.peer = peer
        self._clients[peer] = c
        self._mtu[peer] = mtu
        radio = m.join(peer, x, y)
        radio.on_frame = lambda frame, src, c=c: self._deliver(c, frame, src)
        radio.on_neighbour = lambda other, up, c=c, r=radio: c.push(LINK, json.dumps(
            dict(peer=other.hex(), up=up, quality=r.link_quality(other) if up else 0.0,
                 mtu=negotiate_mtu(mtu, self._mtu.get(other, mtu)))).encode())
        for other in radio.neighbours():
            radio.on_neighbour(other, True)

    def _deliver(self, c: _Client, frame: bytes, src: bytes) -> None:
        c.push(RECV, src + frame)
        self._energy_later(c)

    def _energy_later(self, c: _Client) -> None:
        if not c.energy_due:
            c.energy_due = True
            asyncio.get_running_loop().call_later(ENERGY_PUSH_S, self._push_energy, c)

    def _push_energy(self, c: _Client) -> None:
        c.energy_due = False
        r = self.medium.radios.get(c.peer) if c.peer else None
        if r is not None:
            r._account()
            c.push(ENERGY, json.dumps(asdict(r.energy)).encode())

    def _control(self, msg: dict) -> dict:
        mid = msg.get("id")
        m = self.medium
        try:
            op = msg.get("op")
            out: dict[str, Any] = {}
            if op == "move":
                m.move(_peer(msg.get("peer")), _num(msg, "x"), _num(msg, "y"))
            elif op in ("block", "unblock"):
                m.set_blocked(_peer(msg.get("a")), _peer(msg.get("b")), op == "block")
            elif op == "loss":
                a, b = msg.get("a"), msg.get("b")
                m.set_loss(_num(msg, "loss"), _peer(a) if a is not None else None,
                           _peer(b) if b is not None else None)
            elif op == "sleep":
                m._radio(_peer(msg.get("peer"))).set_asleep(bool(msg.get("asleep")))
            elif op == "energy":
                r = m._radio(_peer(msg.get("peer")))
                r._account()
                out["energy"] = asdict(r.energy)
            elif op == "neighbours":
                out["neighbours"] = [p.hex() for p in m._radio(_peer(msg.get("peer"))).neighbours()]
            else:
                raise InvalidArgumentError(f"unknown air control op {op!r}")
            return dict(id=mid, ok=True, **out)
        except BetanetError as exc:
            return dict(id=mid, ok=False, error=str(exc))


# ---- clients -----------------------------------------------------------------------------
class _Conn:
    """One connection to the air: a reader task and request/reply for control ops."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_message: Callable[[int, bytes], None]) -> None:
        self.reader, self.writer = reader, writer
        self.on_message = on_message
        self.on_close: Callable[[], None] | None = None
        self.closed = False
        self._replies: dict[int, asyncio.Future] = {}
        self._next = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    @classmethod
    async def open(cls, path: str, on_message: Callable[[int, bytes], None]) -> "_Conn":
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as exc:
            raise StateError(f"no air server at {path}: {exc}") from None
        return cls(reader, writer, on_message)

    def write(self, kind: int, body: bytes) -> None:
        if self.closed:
            raise StateError("the air connection is closed")
        self.writer.write(_encode(kind, body))

    async def request(self, op: str, **args: Any) -> dict:
        self._next += 1
        fut = asyncio.get_running_loop().create_future()
        self._replies[self._next] = fut
        self.write(CTRL, json.dumps(dict(id=self._next, op=op, **args)).encode())
        reply = await fut
        if not reply.get("ok"):
            err = reply.get("error", "air control failed")
            raise (NotFoundError if "no radio" in err else InvalidArgumentError)(err)
        return reply

    async def _run(self) -> None:
        try:
            while (msg := await _read(self.reader)) is not None:
                kind, body = msg
                if kind == REPLY:
                    reply = _json(body)
                    fut = self._replies.pop(reply.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(reply)
                else:
                    self.on_message(kind, body)
        except (ProtocolError, ConnectionError) as exc:
            log.warning("air connection lost: %s", exc)
        except asyncio.CancelledError:
            pass
        finally:
            self._closed()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(StateError("the air connection closed"))
        self._replies.clear()
        if self.on_close:
            self.on_close()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._closed()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class AirRadio:
    """A `Radio` on an air server (create with `await AirRadio.connect(...)`).

    Frames go through gatt.py as on a real BLE link: each link's ATT_MTU is negotiated
    (the smaller offer), a frame larger than the smallest link's write limit is cut into
    BitChat fragments, and what arrives is joined per neighbour by a `WriteAssembler`."""

    def __init__(self, peer_id: bytes, att_mtu: int = ATT_MTU_REQUEST) -> None:
        if len(peer_id) != PEER_ID_BYTES:
            raise InvalidArgumentError(f"peer id must be {PEER_ID_BYTES} bytes")
        if write_limit(att_mtu) < MIN_WRITE_LIMIT:
            raise InvalidArgumentError(f"ATT_MTU {att_mtu} is too small for BitChat "
                                       f"(writes of at least {MIN_WRITE_LIMIT} bytes are needed)")
        self.peer_id = bytes(peer_id)
        self.att_mtu = att_mtu
        self.energy = Energy()
        self.on_frame: Callable[[bytes, bytes], None] | None = None
        self.on_neighbour: Callable[[bytes, bool], None] | None = None
        self.mtu = MTU_BYTES                       # largest frame accepted from the router
        self.config: dict[str, Any] = {}
        self._links: dict[bytes, float] = {}
        self._link_mtu: dict[bytes, int] = {}
        self._assemblers: dict[bytes, WriteAssembler] = {}
        self._conn: _Conn | None = None
        self._gone = asyncio.Event()

    @classmethod
    async def connect(cls, path: str, peer_id: bytes, x: float = 0.0, y: float = 0.0,
                      *, att_mtu: int = ATT_MTU_REQUEST, timeout: float = 10.0) -> "AirRadio":
        self = cls(peer_id, att_mtu)
        welcome: asyncio.Future = asyncio.get_running_loop().create_future()

        def first(kind: int, body: bytes) -> None:
            if kind == WELCOME and not welcome.done():
                welcome.set_result(_json(body))
            else:
                self._on_message(kind, body)

        self._conn = await _Conn.open(path, first)
        self._conn.on_close = lambda: (self._lost(), welcome.done() or welcome.set_exception(
            StateError(f"the air server refused peer {self.peer_id.hex()}")))
        self._conn.write(HELLO, json.dumps(dict(peer=self.peer_id.hex(), x=float(x), y=float(y),
                                                mtu=att_mtu)).encode())
        try:
            self.config = await asyncio.wait_for(welcome, timeout)
        except asyncio.TimeoutError:
            await self._conn.close()
            raise StateError(f"the air server at {path} did not answer") from None
        return self

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def write_limit(self) -> int:
        """Bytes one write carries to every current neighbour (the smallest link's)."""
        return write_limit(min(self._link_mtu.values(), default=self.att_mtu))

    def send(self, frame: bytes) -> None:
        if len(frame) > self.mtu:
            raise InvalidArgumentError(f"frame of {len(frame)} bytes exceeds the {self.mtu}-byte MTU")
        if not self.connected:
            raise StateError("the air connection is closed")
        for w in plan_writes(frame, self.write_limit()):
            self._conn.write(SEND, w)
            self.energy.frames_sent += 1
            self.energy.bytes_sent += len(w)

    def neighbours(self) -> list[bytes]:
        return list(self._links)

    def link_quality(self, peer: bytes) -> float:
        return self._links.get(peer, 0.0)

    def link_mtu(self, peer: bytes) -> int | None:
        """The negotiated ATT_MTU of the link to `peer` (None when it is down)."""
        return self._link_mtu.get(peer)

    @property
    def dropped_bytes(self) -> int:
        """Bytes of split frames that never completed (all links)."""
        return sum(a.dropped_bytes for a in self._assemblers.values())

    async def move(self, x: float, y: float) -> None:
        await self._control().request("move", peer=self.peer_id.hex(), x=float(x), y=float(y))

    async def refresh_energy(self) -> Energy:
        """Ask the air for this radio's energy now (it also pushes it every 0.2 s)."""
        reply = await self._control().request("energy", peer=self.peer_id.hex())
        self._set_energy(reply["energy"])
        return self.energy

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def _control(self) -> _Conn:
        if not self.connected:
            raise StateError("the air connection is closed")
        return self._conn

    def _set_energy(self, e: dict) -> None:
        sent = self.energy.frames_sent, self.energy.bytes_sent
        self.energy = Energy(**{k: e[k] for k in asdict(Energy()) if k in e})
        # the air counts what reached it; writes still in flight are counted here already
        self.energy.frames_sent = max(sent[0], self.energy.frames_sent)
        self.energy.bytes_sent = max(sent[1], self.energy.bytes_sent)

    def _on_message(self, kind: int, body: bytes) -> None:
        if kind == RECV:
            if len(body) <= PEER_ID_BYTES:
                log.warning("air: short RECV ignored")
                return
            src = body[:PEER_ID_BYTES]
            asm = self._assemblers.get(src)
            if asm is None:
                asm = self._assemblers[src] = WriteAssembler()
            for frame in asm.feed(body[PEER_ID_BYTES:]):
                if self.on_frame:
                    self.on_frame(frame, src)
        elif kind == LINK:
            msg = _json(body)
            peer = _peer(msg.get("peer"))
            if msg.get("up"):
                self._links[peer] = float(msg.get("quality", 1.0))
                self._link_mtu[peer] = int(msg.get("mtu", self.att_mtu))
            else:
                self._link_mtu.pop(peer, None)
                self._assemblers.pop(peer, None)
                if self._links.pop(peer, None) is None:
                    return
            if self.on_neighbour:
                self.on_neighbour(peer, bool(msg.get("up")))
        elif kind == ENERGY:
            self._set_energy(_json(body))

    async def wait_closed(self) -> None:
        """Return once the connection to the air has ended (server gone or close())."""
        await self._gone.wait()

    def _lost(self) -> None:
        self._gone.set()
        links, self._links = list(self._links), {}
        self._link_mtu.clear()
        self._assemblers.clear()
        for peer in links:
            if self.on_neighbour:
                self.on_neighbour(peer, False)


class AirControl:
    """Test and operator control of an air server: move radios, cut links, set loss."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    @classmethod
    async def connect(cls, path: str) -> "AirControl":
        return cls(await _Conn.open(path, lambda kind, body: None))

    async def move(self, peer: bytes, x: float, y: float) -> None:
        await self._conn.request("move", peer=peer.hex(), x=float(x), y=float(y))

    async def block(self, a: bytes, b: bytes) -> None:
        await self._conn.request("block", a=a.hex(), b=b.hex())

    async def unblock(self, a: bytes, b: bytes) -> None:
        await self._conn.request("unblock", a=a.hex(), b=b.hex())

    async def set_loss(self, loss: float, a: bytes | None = None, b: bytes | None = None) -> None:
        args: dict[str, Any] = dict(loss=float(loss))
        if a is not None and b is not None:
            args.update(a=a.hex(), b=b.hex())
        await self._conn.request("loss", **args)

    async def sleep(self, peer: bytes, asleep: bool = True) -> None:
        await self._conn.request("sleep", peer=peer.hex(), asleep=asleep)

    async def energy(self, peer: bytes) -> Energy:
        return Energy(**(await self._conn.request("energy", peer=peer.hex()))["energy"])

    async def neighbours(self, peer: bytes) -> list[bytes]:
        return [bytes.fromhex(p) for p in (await self._conn.request("neighbours", peer=peer.hex()))["neighbours"]]

    async def close(self) -> None:
        await self._conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m betanet.mesh.air",
                                 description="a real-time simulated BLE medium on a Unix socket")
    ap.add_argument("--socket", required=True, help="Unix socket path to listen on")
    ap.add_argument("--loss", type=float, default=0.0, help="frame loss per link write (0-1)")
    ap.add_argument("--range", dest="range_m", type=float, default=30.0, help="radio range, metres")
    ap.add_argument("--seed", type=int, default=None, help="seed the loss and latency draws")
    args = ap.parse_args(argv)
    if not 0.0 <= args.loss <= 1.0 or args.range_m < 0:
        print("--loss must be in [0, 1] and --range >= 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        server = AirServer(args.socket, range_m=args.range_m, loss=args.loss,
                           rng=random.Random(args.seed) if args.seed is not None else None)
        await server.start()
        print(f"air listening on {args.socket}", flush=True)
        try:
            await server.serve_forever()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
