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
What a relay forwards (flows, datagram mappings) is in ``flows``; its command line in
``relay_cli``.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import typing

from betanet._log import Throttle, escape
from betanet.errors import BetanetError, InvalidArgumentError
from betanet.tools.flows import UDP_IDLE_S, Forwarder, TcpFlow, UdpListener
from betanet.tools.shaper import LinkSettings, Pipe

__all__ = ["Relay", "parse_forward", "control", "add_parser", "main"]

log = logging.getLogger("betanet.relay")

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
        self._udp_listeners: list[UdpListener] = []
        self._flows: set[TcpFlow] = set()
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
            _, lst = await self.loop.create_datagram_endpoint(lambda t=target: UdpListener(self, t),
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
            # datagrams in flight die with the link (counted as cut drops); TCP bytes are held
            # (TCP would resend them)
            for lst in self._udp_listeners:
                for m in lst.mappings.values():
                    self.down.counters["dropped_cut"] += m.fwd_down.drop_queued()
                    if m.fwd_up is not None:
                        self.up.counters["dropped_cut"] += m.fwd_up.drop_queued()
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

    def spawn(self, coro) -> asyncio.Task:
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
        flow = TcpFlow(self, target, reader, writer)
        self._flows.add(flow)
        t = self.spawn(flow.run())
        t.add_done_callback(lambda _t: self._flows.discard(flow))

    def seen(self, pipe: Pipe, data: bytes) -> None:
        f = self._capture.get(id(pipe))
        if f is not None:
            f.write(data)
            f.flush()

    def forward_datagram(self, pipe: Pipe, fwd: Forwarder, data: bytes) -> None:
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


def __getattr__(name: str):
    # the command line lives in relay_cli (it imports this module); its names stay importable here
    if name in ("add_parser", "main"):
        from betanet.tools import relay_cli
        return getattr(relay_cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    import sys

    from betanet.tools.relay_cli import main as _main
    sys.exit(_main())
