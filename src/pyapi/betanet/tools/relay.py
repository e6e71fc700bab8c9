"""``betanet relay``: a user-space TCP and UDP relay that shapes what it forwards — loss (UDP),
delay, a bandwidth cap and a cut — changeable while it runs (for kernels without netem, and
for operators injecting faults in front of a service).

    betanet relay --tcp 0.0.0.0:9000=10.0.0.2:9000 --udp 0.0.0.0:9001=10.0.0.2:9001 \
                  --loss 0.05 --delay-ms 50 --control /run/relay.sock
    betanet relay ctl /run/relay.sock set loss=0 cut=drop
    betanet relay ctl /run/relay.sock stats

Both directions of every forwarded flow share one ``Pipe`` per direction (``shaper``), so the
cap is per link, not per connection. Control: one JSON object per line on a Unix socket,
``{"cmd": "set", "loss": 0.1}`` / ``{"cmd": "stats"}``, answered by one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import random
import sys
import typing
from typing import Callable

from betanet._log import Throttle, escape
from betanet.errors import BetanetError, InvalidArgumentError
from betanet.tools.shaper import CUT_MODES, LinkSettings, Pipe

__all__ = ["Relay", "parse_forward", "control", "add_parser", "main"]

log = logging.getLogger("betanet.relay")

READ_HIGH = 256 * 1024      # bytes of one TCP direction held before we stop reading its source
UDP_IDLE_S = 60.0           # a UDP mapping with no traffic this long is closed
MAX_UDP_MAPPINGS = 1024
CONTROL_LINE_MAX = 4096


def parse_forward(spec: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """``LISTEN_HOST:PORT=TARGET_HOST:PORT`` (IPv6 hosts in brackets) -> two (host, port)."""
    if spec.count("=") != 1:
        raise InvalidArgumentError(f"relay forward {spec!r}: expected LISTEN_HOST:PORT=TARGET_HOST:PORT")
    return tuple(_parse_addr(part, spec) for part in spec.split("="))  # type: ignore[return-value]


def _parse_addr(text: str, spec: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise InvalidArgumentError(f"relay forward {spec!r}: {text!r} is not HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or int(port) > 65535:
        raise InvalidArgumentError(f"relay forward {spec!r}: bad port {port!r}")
    return host, int(port)


class _Forwarder:
    """Delivers chunks in order at the times a ``Pipe`` gave them; holds them while cut."""

    def __init__(self, relay: "Relay", write: Callable[[bytes], None],
                 on_drain: Callable[[], None] | None = None) -> None:
        self._relay = relay
        self._write = write
        self._on_drain = on_drain
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def push(self, at: float, data: bytes) -> None:
        self._queue.append((at, data))
        self.queued += len(data)
        self.kick()

    def kick(self) -> None:
        if self._timer is None and self._queue and not self.closed and not self._relay.settings.cut:
            self._timer = self._relay.loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        now = self._relay.loop.time()
        while self._queue and self._queue[0][0] <= now and not self._relay.settings.cut:
            _, data = self._queue.popleft()
            self.queued -= len(data)
            if not self.closed:
                self._write(data)
        if self._on_drain is not None and self.queued < READ_HIGH // 2:
            self._on_drain()
        self.kick()

    def drop_queued(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.queued = 0

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.queued = 0


class _TcpFlow:
    """One relayed TCP connection: client side accepted, upstream connected when the link
    allows; bytes each way pass through the relay's pipes."""

    def __init__(self, relay: "Relay", target: tuple[str, int], client: asyncio.StreamReader,
                 client_w: asyncio.StreamWriter) -> None:
        self.relay = relay
        self.target = target
        self.client_r, self.client_w = client, client_w
        self.up_w: asyncio.StreamWriter | None = None
        self.forwarders: list[_Forwarder] = []

    async def run(self) -> None:
        r = self.relay
        try:
            await r.link_usable()            # a cut link: the connect waits (as a SYN would)
            up_r, self.up_w = await asyncio.wait_for(asyncio.open_connection(*self.target), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            r.counters["tcp_upstream_failed"] += 1
            suppressed = r.throttle.allow()
            if suppressed is not None:
                log.info("relay: upstream %s:%d failed: %s%s", *self.target, escape(exc),
                         f" ({suppressed} similar suppressed)" if suppressed else "")
            self.abort()
            return
        fwd_up = _Forwarder(r, self.up_w.write)
        fwd_down = _Forwarder(r, self.client_w.write)
        self.forwarders = [fwd_up, fwd_down]
        pumps = [asyncio.ensure_future(self._pump(self.client_r, r.up, fwd_up, self.up_w)),
                 asyncio.ensure_future(self._pump(up_r, r.down, fwd_down, self.client_w))]
        clean = False
        try:
            # both directions end with EOF (a clean close), or one fails and both go
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            clean = all(t.done() and not t.cancelled() and t.exception() is None for t in pumps)
        finally:
            for t in pumps:
                t.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            fwd_up.close()
            fwd_down.close()
            if clean:
                for w in (self.client_w, self.up_w):
                    w.close()
            else:
                self.abort()

    async def _pump(self, reader: asyncio.StreamReader, pipe: Pipe, fwd: _Forwarder,
                    dest: asyncio.StreamWriter) -> None:
        r = self.relay
        drained = asyncio.Event()
        fwd._on_drain = drained.set
        while True:
            await r.link_usable()
            data = await reader.read(65536)
            if not data:
                # EOF: pass it on once everything before it has been delivered
                while fwd.queued and not fwd.closed:
                    drained.clear()
                    await drained.wait()
                if dest.can_write_eof():
                    dest.write_eof()
                return
            r.seen(pipe, data)
            at = pipe.admit(len(data), r.loop.time(), droppable=False)
            if at is None:                   # cut between the wait and the read: hold it
                at = r.loop.time()
            fwd.push(at, data)
            while fwd.queued >= READ_HIGH and not fwd.closed:
                drained.clear()
                await drained.wait()
            await dest.drain()

    def abort(self) -> None:
        for w in (self.client_w, self.up_w):
            if w is not None and not w.is_closing():
                w.transport.abort()


class _UdpMapping(asyncio.DatagramProtocol):
    """The upstream socket of one client address (like a NAT entry)."""

    def __init__(self, relay: "Relay", listener: "_UdpListener", client: tuple) -> None:
        self.relay, self.listener, self.client = relay, listener, client
        self.transport: asyncio.DatagramTransport | None = None
        self.fwd_up: _Forwarder | None = None
        self.fwd_down = _Forwarder(relay, lambda d: listener.transport.sendto(d, client))
        self.last = relay.loop.time()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.fwd_up = _Forwarder(self.relay, transport.sendto)

    def datagram_received(self, data: bytes, addr) -> None:
        self.last = self.relay.loop.time()
        self.relay._udp(self.relay.down, self.fwd_down, data)

    def error_received(self, exc) -> None:
        self.relay.counters["udp_errors"] += 1

    def close(self) -> None:
        self.fwd_down.close()
        if self.fwd_up is not None:
            self.fwd_up.close()
        if self.transport is not None:
            self.transport.close()


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, relay: "Relay", target: tuple[str, int]) -> None:
        self.relay, self.target = relay, target
        self.transport: asyncio.DatagramTransport | None = None
        self.mappings: dict[tuple, _UdpMapping] = {}
        self._opening: dict[tuple, list[bytes]] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        m = self.mappings.get(addr)
        if m is not None and m.fwd_up is not None:
            m.last = self.relay.loop.time()
            self.relay._udp(self.relay.up, m.fwd_up, data)
        elif addr in self._opening:
            self._opening[addr].append(data)
        elif len(self.mappings) + len(self._opening) >= MAX_UDP_MAPPINGS:
            self.relay.counters["udp_mappings_refused"] += 1
        else:
            self._opening[addr] = [data]
            self.relay._spawn(self._open(addr))

    async def _open(self, addr) -> None:
        r = self.relay
        try:
            _, m = await r.loop.create_datagram_endpoint(lambda: _UdpMapping(r, self, addr),
                                                         remote_addr=self.target)
        except OSError as exc:
            if r.throttle.allow() is not None:
                log.info("relay: udp upstream %s:%d failed: %s", *self.target, escape(exc))
            self._opening.pop(addr, None)
            return
        self.mappings[addr] = m
        for data in self._opening.pop(addr, []):
            r._udp(r.up, m.fwd_up, data)

    def expire(self, now: float) -> None:
        for addr, m in list(self.mappings.items()):
            if now - m.last > UDP_IDLE_S:
                m.close()
                del self.mappings[addr]

    def close(self) -> None:
        for m in self.mappings.values():
            m.close()
        self.mappings.clear()
        if self.transport is not None:
            self.transport.close()


class Relay:
    """Forward TCP and UDP between address pairs through one shaped link.

    ``tcp``/``udp``: lists of ``((listen_host, port), (target_host, port))``; port 0 picks
    one (``ports`` after ``start``). ``settings``: initial ``LinkSettings``; ``set(...)``
    changes them at run time. ``seed``: the loss decisions' random source (reproducible runs;
    this is fault injection, not cryptography). ``capture``: a directory where every byte the
    relay receives is appended, as received, to ``up.bin`` (client -> target) and
    ``down.bin`` — what an on-path observer sees (tests check it holds no plaintext)."""

    def __init__(self, tcp=(), udp=(), settings: LinkSettings | None = None,
                 seed: int | None = None, capture: str | os.PathLike | None = None) -> None:
        self.tcp_specs = list(tcp)
        self.udp_specs = list(udp)
        self.settings = settings or LinkSettings()
        rng = random.Random(seed)
        self.up = Pipe(self.settings, rng)      # client -> target
        self.down = Pipe(self.settings, rng)    # target -> client
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.ports: dict[str, list[int]] = {"tcp": [], "udp": []}
        self.counters = collections.Counter({"tcp_connections": 0, "tcp_refused": 0,
                                             "tcp_upstream_failed": 0, "udp_errors": 0,
                                             "udp_mappings_refused": 0})
        self.throttle = Throttle(5.0)
        self._servers: list[asyncio.AbstractServer] = []
        self._udp_listeners: list[_UdpListener] = []
        self._flows: set[_TcpFlow] = set()
        self._tasks: set[asyncio.Task] = set()
        self._usable = asyncio.Event()
        self._capture: dict[int, typing.BinaryIO] = {}
        if capture is not None:
            os.makedirs(capture, exist_ok=True)
            self._capture = {id(self.up): open(os.path.join(capture, "up.bin"), "ab"),
                             id(self.down): open(os.path.join(capture, "down.bin"), "ab")}
        self._control: asyncio.AbstractServer | None = None
        self._expiry: asyncio.Task | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._apply(self.settings)
        for (lh, lp), target in self.tcp_specs:
            srv = await asyncio.start_server(lambda r, w, t=target: self._accept(r, w, t), lh, lp)
            self._servers.append(srv)
            self.ports["tcp"].append(srv.sockets[0].getsockname()[1])
        for (lh, lp), target in self.udp_specs:
            _, lst = await self.loop.create_datagram_endpoint(lambda t=target: _UdpListener(self, t),
                                                              local_addr=(lh, lp))
            self._udp_listeners.append(lst)
            self.ports["udp"].append(lst.transport.get_extra_info("sockname")[1])
        self._expiry = asyncio.ensure_future(self._expire_loop())

    def set(self, **changes) -> LinkSettings:
        """Change settings now (``LinkSettings`` names); returns the new settings."""
        self._apply(self.settings.updated(**changes))
        return self.settings

    def _apply(self, s: LinkSettings) -> None:
        self.settings = s
        self.up.settings = self.down.settings = s
        if s.cut:
            self._usable.clear()
        else:
            self._usable.set()
        if s.cut:
            # datagrams in flight die with the link; TCP bytes are held (TCP would resend them)
            for lst in self._udp_listeners:
                for m in lst.mappings.values():
                    m.fwd_down.drop_queued()
                    if m.fwd_up is not None:
                        m.fwd_up.drop_queued()
        if s.cut == "reset":
            for f in list(self._flows):
                f.abort()
        if not s.cut:                        # restored: deliver what the cut held
            for fwd in self._all_forwarders():
                fwd.kick()

    def _all_forwarders(self):
        for lst in self._udp_listeners:
            for m in lst.mappings.values():
                yield m.fwd_down
                if m.fwd_up is not None:
                    yield m.fwd_up
        for f in self._flows:
            yield from f.forwarders

    async def link_usable(self) -> None:
        await self._usable.wait()

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def _accept(self, reader, writer, target) -> None:
        if self.settings.cut == "reset":
            self.counters["tcp_refused"] += 1
            writer.transport.abort()
            return
        self.counters["tcp_connections"] += 1
        flow = _TcpFlow(self, target, reader, writer)
        self._flows.add(flow)
        t = self._spawn(flow.run())
        t.add_done_callback(lambda _t: self._flows.discard(flow))

    def seen(self, pipe: Pipe, data: bytes) -> None:
        f = self._capture.get(id(pipe))
        if f is not None:
            f.write(data)
            f.flush()

    def _udp(self, pipe: Pipe, fwd: _Forwarder, data: bytes) -> None:
        self.seen(pipe, data)
        at = pipe.admit(len(data), self.loop.time(), droppable=True)
        if at is not None:
            fwd.push(at, data)

    def stats(self) -> dict:
        return {"settings": self.settings.as_dict(), "ports": self.ports,
                "tcp_open": len(self._flows),
                "udp_mappings": sum(len(u.mappings) for u in self._udp_listeners),
                **dict(self.counters),
                "up": dict(self.up.counters), "down": dict(self.down.counters)}

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(UDP_IDLE_S / 4)
            for lst in self._udp_listeners:
                lst.expire(self.loop.time())

    # -- control socket ------------------------------------------------------------------
    async def serve_control(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)                  # a stale socket of an earlier run
        self._control = await asyncio.start_unix_server(self._control_client, path)
        os.chmod(path, 0o600)

    async def _control_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    writer.write(b'{"ok": false, "error": "line too long"}\n')
                    return
                writer.write(json.dumps(self.handle_command(line[:CONTROL_LINE_MAX])).encode() + b"\n")
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def handle_command(self, line: bytes) -> dict:
        """One control request (a JSON object) -> the reply object."""
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise InvalidArgumentError("a control request is a JSON object")
            cmd = req.pop("cmd", None)
            if cmd == "set":
                s = self.set(**req)
                log.info("relay: settings now %s", s.as_dict())
                return {"ok": True, "settings": s.as_dict()}
            if cmd == "stats":
                return {"ok": True, **self.stats()}
            raise InvalidArgumentError(f"unknown control command {escape(cmd)!s}; use set or stats")
        except (ValueError, TypeError, BetanetError) as exc:
            return {"ok": False, "error": escape(exc)}

    async def close(self) -> None:
        for srv in self._servers:
            srv.close()
        if self._control is not None:
            self._control.close()
        for lst in self._udp_listeners:
            lst.close()
        for f in list(self._flows):
            f.abort()
        if self._expiry is not None:
            self._expiry.cancel()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for f in self._capture.values():
            f.close()


def control(path: str, cmd: str = "stats", timeout: float = 5.0, **settings) -> dict:
    """Send one control request to a running relay (blocking); raises ``BetanetError`` when
    the relay refuses it."""
    import socket
    from betanet.errors import StateError
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps({"cmd": cmd, **settings}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise StateError(f"relay refused {cmd}: {reply.get('error')}")
    return reply


# -- command line ------------------------------------------------------------------------
def _settings_arg(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, (value if name == "cut" else float(value))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("relay", help="TCP/UDP relay with loss, delay, bandwidth cap and cut (fault injection)")
    _add_run_args(p)
    p.set_defaults(func=_cli_main, _parser=p)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tcp", action="append", default=[], metavar="LISTEN=TARGET",
                   help="forward TCP from LISTEN_HOST:PORT to TARGET_HOST:PORT (repeatable)")
    p.add_argument("--udp", action="append", default=[], metavar="LISTEN=TARGET",
                   help="forward UDP datagrams likewise (repeatable)")
    p.add_argument("--loss", type=float, default=0.0, help="datagram loss probability 0..1")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay")
    p.add_argument("--rate-bps", type=float, default=0.0, help="bandwidth cap, bits/s per direction (0: none)")
    p.add_argument("--queue-ms", type=float, default=1000.0, help="datagram queue limit behind the cap")
    p.add_argument("--cut", default="", choices=CUT_MODES, help="start cut (drop or reset)")
    p.add_argument("--seed", type=int, default=None, help="seed of the loss decisions")
    p.add_argument("--control", metavar="SOCKET", help="Unix socket for run-time control")
    p.add_argument("--capture", metavar="DIR", help="append every byte received to DIR/up.bin, DIR/down.bin")
    p.add_argument("ctl", nargs="*", metavar="ctl SOCKET (set NAME=VALUE...|stats)",
                   help="talk to a running relay instead of starting one")


def _cli_main(args: argparse.Namespace) -> int:
    if args.ctl:
        if args.ctl[0] != "ctl" or len(args.ctl) < 3 or args.ctl[2] not in ("set", "stats"):
            print("betanet relay: usage: betanet relay ctl SOCKET set NAME=VALUE... | stats", file=sys.stderr)
            return 2
        try:
            changes = dict(_settings_arg(a) for a in args.ctl[3:])
            print(json.dumps(control(args.ctl[1], args.ctl[2], **changes)))
        except (argparse.ArgumentTypeError, ValueError, OSError, BetanetError) as exc:
            print(f"betanet relay ctl: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        relay = Relay([parse_forward(s) for s in args.tcp], [parse_forward(s) for s in args.udp],
                      LinkSettings(loss=args.loss, delay_ms=args.delay_ms, rate_bps=args.rate_bps,
                                   queue_ms=args.queue_ms, cut=args.cut), seed=args.seed,
                      capture=args.capture)
    except BetanetError as exc:
        print(f"betanet relay: {exc}", file=sys.stderr)
        return 2
    if not relay.tcp_specs and not relay.udp_specs:
        print("betanet relay: give at least one --tcp or --udp forward", file=sys.stderr)
        return 2
    return asyncio.run(_run(relay, args.control))


async def _run(relay: Relay, control_path: str | None) -> int:
    try:
        await relay.start()
        if control_path:
            await relay.serve_control(control_path)
    except OSError as exc:
        print(f"betanet relay: {exc}", file=sys.stderr)
        await relay.close()
        return 1
    # one machine-readable line: scripts and tests wait for it
    print(json.dumps({"ready": relay.ports, "control": control_path}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await relay.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m betanet.tools.relay", description=__doc__.split("\n")[0])
    _add_run_args(p)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return _cli_main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
