"""The HTX link: node frames over HTX (TCP+TLS or QUIC), on one frame stream per connection.

Outbound: one HTX connection per peer, to the endpoints of its peer record, authenticated
by the peer's X25519 static key (Noise XK); TLS is the outer disguise and is not verified
(the Noise handshake is the authentication). On it, one long-lived *frame stream* (docs/node.md
"Links"): the sender opens it with ``PIPE_HELLO`` and waits for the same two bytes back, then
writes ``length:u32 | frame`` after ``length:u32 | frame``; the receiver hands each frame to its
node as it arrives (frames are handled concurrently) and answers ``index:u64 | status:u8``
(1 = taken, 0 = refused) once its node handled frame ``index`` (counted from 0 on the stream,
answers in any order): that answer is the hop acknowledgment and its delay the measured round
trip. One stream instead of one per frame: no stream set-up, window ramp or teardown per
frame. A peer of an earlier release does not answer the hello (it reads a stream to its end
as one frame): unanswered within half the hop timeout, the peer gets one stream per frame
(write the frame, end the stream, read the one-byte answer) for LEGACY_RECHECK_S; the
receiver here still takes frames that way too.

A failed connect or a send that times out marks the peer down for ``retry_s`` (the link
reports it through ``on_change``); the next attempt after that probes it again.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time

from betanet.errors import BetanetError
from betanet.htx import connect, serve
from betanet.htx.tls import write_self_signed
from betanet.node.identity import Identity
from betanet.node.links import PRIVACY_EPS, ENERGY, NOMINAL_BYTES, Ewma, LinkError
from betanet.node.peers import PeerBook

log = logging.getLogger(__name__)

MAX_FRAME = 32 << 20
OK, REFUSED = b"\x01", b"\x00"
PIPE_HELLO = b"\xfe\x01"        # not a node frame type: opens a frame stream (version 1)
_LEN = struct.Struct(">I")
_ANSWER = struct.Struct(">QB")
_READ = 256 << 10               # read a frame in pieces: the stream window is smaller than MAX_FRAME
# frames of one stream being handled at once: beyond these the stream is not read, so the
# sender's flow-control window closes (a flooding peer holds bounded memory)
STREAM_INFLIGHT_FRAMES = 64
STREAM_INFLIGHT_BYTES = 2 * MAX_FRAME
LEGACY_RECHECK_S = 600.0        # a peer that did not answer the hello is asked again after this


async def _read_joined(st, n: int, first: bytes = b"", to_eof: bool = False) -> bytes | None:
    """``n`` bytes of ``st`` (counting ``first``, already read), or with ``to_eof`` what comes
    before its end if that is fewer; None if the stream ends short without ``to_eof``.

    Reads are bounded by what is missing, so nothing of the next frame is read ahead, and the
    pieces are joined once (appending to bytes copied the frame so far at every read). Not
    ``Stream.readexactly``: it keeps the bytes unconsumed until all are in, so a frame larger
    than the stream window would never finish arriving."""
    parts, got = ([first], len(first)) if first else ([], 0)
    while got < n:
        more = await st.read(min(n - got, _READ))
        if not more:
            if not to_eof:
                return None
            break
        parts.append(more)
        got += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _Pipe:
    """The sending end of a frame stream: frames out in order, answers matched by index."""

    def __init__(self, st) -> None:
        self.st = st
        self.next = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.dead: BaseException | None = None
        self.reader = asyncio.ensure_future(self._answers())

    async def _answers(self) -> None:
        try:
            while True:
                idx, status = _ANSWER.unpack(await self.st.readexactly(_ANSWER.size))
                fut = self.pending.pop(idx, None)
                if fut is not None and not fut.done():
                    fut.set_result(OK if status == 1 else REFUSED)
        except BaseException as e:          # end of stream, reset, connection lost, cancelled
            self.dead = e if isinstance(e, Exception) else ConnectionError("frame stream closed")
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"htx frame stream lost: {type(e).__name__} {e}"))
                    fut.exception()
            self.pending.clear()

    async def send(self, frame: bytes) -> bytes:
        if self.dead is not None:
            raise ConnectionError(f"htx frame stream lost: {self.dead}")
        idx, self.next = self.next, self.next + 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[idx] = fut
        try:
            self.st.write(_LEN.pack(len(frame)))
            self.st.write(frame)
            await self.st.drain()           # several senders may wait here at once
            return await fut
        finally:
            self.pending.pop(idx, None)

    def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(Exception):
            self.st.reset()


def _hostport(v: str) -> tuple[str, int]:
    host, _, port = v.rpartition(":")
    return host.strip("[]"), int(port)


class HtxLink:
    reliable = True            # TCP or QUIC streams

    def __init__(self, identity: Identity, peers: PeerBook, *, transport: str = "tcp",
                 listen: str = "127.0.0.1:0", cert_dir: str = ".", retry_s: float = 1.0,
                 connect_timeout: float = 2.0, web=None) -> None:
        self.transport = "htx" if transport == "tcp" else "quic"
        self._htx_transport = transport
        self.identity, self.peers = identity, peers
        self.listen, self.cert_dir = listen, cert_dir
        self.retry_s, self.connect_timeout = retry_s, connect_timeout
        self.on_frame = None
        self.on_change = None
        self.server = None
        self.port = 0
        self._conns: dict[str, object] = {}
        self._connecting: dict[str, asyncio.Future] = {}
        self._pipes: dict[object, _Pipe] = {}            # per connection
        self._pipes_opening: dict[object, asyncio.Future] = {}
        self._legacy: dict[str, float] = {}              # peer -> until: one stream per frame
        self._down_until: dict[str, float] = {}
        self._rtt: dict[str, Ewma] = {}
        self._fail: dict[str, Ewma] = {}
        self._last_ok: dict[str, float] = {}
        self.counters = {"frames_sent": 0, "frames_received": 0, "send_failures": 0,
                         "connects": 0, "connect_failures": 0, "refused": 0,
                         "frame_streams": 0, "legacy_connections": 0}
        self.enabled = True
        self.web = web                       # betanet.tls.weblink.WebLink (TCP link only) or None
        self.pipelined = True           # frames may be sent concurrently (on the frame stream)

    # ---- connection set-up: plain HTX TLS or htx-web (docs/stealth.md) ------------------
    def _listen_options(self, cert: str, key: str) -> dict:
        if self.web is not None and self.web.listens and self._htx_transport == "tcp":
            return self.web.serve_options(cert, key)
        return {"transport": self._htx_transport, "certfile": cert, "keyfile": key}

    def _dial_options(self, rec) -> dict:
        """A peer advertising a ticket line is dialled over htx-web, whatever we listen with."""
        if self._htx_transport == "tcp" and rec.htx_ticket is not None:
            if self.web is None:
                from betanet.tls.weblink import WebLink
                self.web = WebLink()
            return self.web.dial_options(rec.htx_ticket, rec.htx_pin)
        return {"transport": self._htx_transport}

    def advertised(self) -> dict:
        """Extra peer-record fields for our listener (htx-web: ticket line and SPKI pin)."""
        return self.web.advertised() if self.web is not None and self.server is not None else {}

    # ---- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        if not self.listen:
            return
        host, port = _hostport(self.listen)
        cert, key = self.cert_dir + "/cert.pem", self.cert_dir + "/key.pem"
        import os
        if not (os.path.exists(cert) and os.path.exists(key)):
            cert, key = write_self_signed(self.cert_dir)
        self.server = await serve(self._handle, host, port, self.identity.exchange_private,
                                  **self._listen_options(cert, key))
        self.port = self.server.port

    async def close(self) -> None:
        for c in list(self._conns.values()):
            self._drop_pipe(c)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 1.0)
        self._conns.clear()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed(grace=1.0)

    # ---- receiving ---------------------------------------------------------------------
    async def _handle(self, conn) -> None:
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                st = await conn.accept_stream()
                t = asyncio.ensure_future(self._one(st))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        except Exception:
            pass
        finally:
            for t in tasks:
                t.cancel()

    async def _one(self, st) -> None:
        try:
            first = await st.read(1)            # a frame stream's hello, or a frame's type
            if first == PIPE_HELLO[:1]:
                await self._frame_stream(st)
                return
            frame = await _read_joined(st, MAX_FRAME + 1, first=first, to_eof=True)
            if len(frame) > MAX_FRAME or not frame:
                st.reset()
                return
            ok = await self._take(frame)
            st.write(OK if ok else REFUSED)
            st.write_eof()
            await st.drain()
        except Exception as e:
            log.debug("htx link: inbound stream failed: %s", e)
            with contextlib.suppress(Exception):
                st.reset()

    async def _take(self, frame: bytes) -> bool:
        self.counters["frames_received"] += 1
        ok = await self.on_frame(frame) if self.on_frame else False
        if not ok:
            self.counters["refused"] += 1
        return bool(ok)

    async def _frame_stream(self, st) -> None:
        """An inbound frame stream (its first byte read): frames handled as they arrive,
        answered by index."""
        if await st.readexactly(len(PIPE_HELLO) - 1) != PIPE_HELLO[1:]:
            st.reset()                        # a later version of the stream: not ours to read
            return
        st.write(PIPE_HELLO)
        tasks: set[asyncio.Task] = set()
        held = 0                             # bytes of the frames being handled

        async def one(idx: int, frame: bytes) -> None:
            nonlocal held
            try:
                ok = await self._take(frame)
            except Exception as e:
                log.debug("htx link: frame %d failed: %s", idx, e)
                ok = False
            finally:
                held -= len(frame)
            with contextlib.suppress(Exception):
                st.write(_ANSWER.pack(idx, 1 if ok else 0))

        idx = 0
        try:
            while True:
                head = await _read_joined(st, _LEN.size)
                if head is None:
                    break
                (n,) = _LEN.unpack(head)
                if not 0 < n <= MAX_FRAME:
                    st.reset()
                    return
                frame = await _read_joined(st, n)
                if frame is None:
                    break
                held += len(frame)
                t = asyncio.ensure_future(one(idx, frame))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                idx += 1
                while tasks and (len(tasks) >= STREAM_INFLIGHT_FRAMES or held >= STREAM_INFLIGHT_BYTES):
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks:                          # the sender ended the stream: answer the rest
                await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                st.write_eof()
                await st.drain()
        finally:
            for t in tasks:
                t.cancel()

    # ---- sending -----------------------------------------------------------------------
    def _endpoints(self, peer: str) -> tuple:
        rec = self.peers.find(peer)
        if rec is None:
            return ()
        return rec.htx_tcp if self.transport == "htx" else rec.htx_quic

    def reaches(self) -> set[str]:
        if not self.enabled:
            return set()
        now = time.monotonic()
        return {r.peer for r in self.peers if r.peer != self.identity.peer_id_text
                and (r.htx_tcp if self.transport == "htx" else r.htx_quic)
                and self._down_until.get(r.peer, 0) <= now}

    def _mark_down(self, peer: str, why: str) -> None:
        was_up = self._down_until.get(peer, 0) <= time.monotonic()
        self._down_until[peer] = time.monotonic() + self.retry_s
        self._fail.setdefault(peer, Ewma(0.0)).add(1.0)
        c = self._conns.pop(peer, None)
        if c is not None:
            self._drop_pipe(c)
            with contextlib.suppress(Exception):
                c._abort(LinkError(why))
        if was_up:
            log.info("htx link to %s down: %s", peer, why)
            if self.on_change:
                self.on_change(peer, False)

    def mark_up_probe(self) -> list[str]:
        """Peers whose down period ended (the node probes them again)."""
        now = time.monotonic()
        return [p for p, t in self._down_until.items() if t <= now]

    async def _conn(self, peer: str):
        c = self._conns.get(peer)
        if c is not None and not c.closed:
            return c
        if c is not None:
            self._drop_pipe(c)
        fut = self._connecting.get(peer)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._connecting[peer] = fut
        try:
            rec = self.peers.get(peer)
            err: Exception | None = None
            for ep in self._endpoints(peer):
                host, port = _hostport(ep)
                try:
                    self.counters["connects"] += 1
                    c = await connect(host, port, rec.exchange_public, **self._dial_options(rec),
                                      static_private_key=self.identity.exchange_private, verify=False,
                                      handshake_timeout=self.connect_timeout, idle_timeout=None)
                    self._conns[peer] = c
                    fut.set_result(c)
                    return c
                except (OSError, asyncio.TimeoutError, BetanetError) as e:
                    self.counters["connect_failures"] += 1
                    err = e
            raise LinkError(f"htx: cannot connect to {peer}: {err or 'no endpoint'}")
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
                fut.exception()
            raise
        finally:
            self._connecting.pop(peer, None)

    async def send(self, peer: str, frame: bytes, timeout: float) -> float:
        if not self.enabled:
            raise LinkError(f"{self.transport} link disabled")
        t0 = time.monotonic()
        rtt_est = self._rtt.get(peer)
        # a loaded peer is slow, not gone: allow 4 measured round trips
        limit = max(timeout, 4 * rtt_est.value / 1000) if rtt_est else timeout
        try:
            reply, t_sent = await asyncio.wait_for(self._send(peer, frame, limit / 2), limit)
        except LinkError as e:
            self.counters["send_failures"] += 1
            self._mark_down(peer, str(e))
            raise
        except (asyncio.TimeoutError, OSError, BetanetError, ConnectionError) as e:
            self.counters["send_failures"] += 1
            if isinstance(e, asyncio.TimeoutError) and self._last_ok.get(peer, 0) > t0:
                # other frames on this connection were acknowledged meanwhile: it is alive,
                # this frame is late; do not tear down what works
                raise LinkError(f"{self.transport} to {peer}: hop acknowledgment late") from None
            self._mark_down(peer, f"send failed: {type(e).__name__} {e}")
            raise LinkError(f"{self.transport} to {peer}: {type(e).__name__} {e}") from None
        if reply != OK:
            self._fail.setdefault(peer, Ewma(0.0)).add(0.0)
            raise LinkError(f"{self.transport} to {peer}: the next hop refused the frame")
        self._last_ok[peer] = time.monotonic()
        rtt = (time.monotonic() - t_sent) * 1000
        self._rtt.setdefault(peer, Ewma(rtt)).add(rtt)
        self._fail.setdefault(peer, Ewma(0.0)).add(0.0)
        self.counters["frames_sent"] += 1
        if self._down_until.pop(peer, None) is not None and self.on_change:
            self.on_change(peer, True)
        return rtt

    async def _send(self, peer: str, frame: bytes, hello_wait: float) -> tuple[bytes, float]:
        """The hop acknowledgment and when the frame left: the round trip the Navigator sees
        excludes connecting (TCP + TLS + Noise XK + the frame stream's hello), which happens
        once per connection."""
        c = await self._conn(peer)
        pipe = await self._pipe(peer, c, hello_wait)
        t_sent = time.monotonic()
        if pipe is not None:
            return await pipe.send(frame), t_sent
        st = await c.open_stream()              # an older peer: one stream per frame
        st.write(frame)
        st.write_eof()
        await st.drain()
        return await st.read(1), t_sent

    def _drop_pipe(self, c) -> None:
        pipe = self._pipes.pop(c, None)
        if pipe is not None:
            pipe.close()

    async def _pipe(self, peer: str, c, hello_wait: float) -> _Pipe | None:
        """The connection's frame stream (opened on first use), or None for a peer that did
        not answer the hello within ``hello_wait`` (an earlier release, or too slow to tell:
        either way one stream per frame works), remembered for LEGACY_RECHECK_S."""
        while True:
            pipe = self._pipes.get(c)
            if pipe is not None:
                if pipe.dead is None:
                    return pipe
                del self._pipes[c]                 # lost: a new stream on the same connection
            if self._legacy.get(peer, 0) > time.monotonic():
                return None
            fut = self._pipes_opening.get(c)
            if fut is None:
                break
            await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._pipes_opening[c] = fut
        st = None
        try:
            st = await c.open_stream()
            st.write(PIPE_HELLO)
            await st.drain()
            try:
                got = await asyncio.wait_for(st.readexactly(len(PIPE_HELLO)), hello_wait)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError):
                got = b""
            if got != PIPE_HELLO:
                st.reset()
                self._legacy[peer] = time.monotonic() + LEGACY_RECHECK_S
                self.counters["legacy_connections"] += 1
                log.info("htx link: %s does not answer the frame-stream hello; one stream per frame", peer)
                return None
            pipe = _Pipe(st)
            self.counters["frame_streams"] += 1
            self._legacy.pop(peer, None)
            if not c.closed:
                self._pipes[c] = pipe
            return pipe
        except BaseException:
            if st is not None:
                with contextlib.suppress(Exception):
                    st.reset()
            raise
        finally:
            self._pipes_opening.pop(c, None)
            fut.set_result(None)

    def measure(self, peer: str) -> dict:
        rtt = self._rtt.get(peer)
        fail = self._fail.get(peer)
        return {"latency_ms": rtt.value if rtt else 5.0,
                "energy_mj": ENERGY[self.transport].energy_mj(NOMINAL_BYTES),
                "failure": min(0.99, fail.value) if fail else 0.0,
                "privacy_eps": PRIVACY_EPS[self.transport]}

    def stats(self) -> dict:
        return {**self.counters, "connections": len(self._conns),
                "down": sorted(p for p, t in self._down_until.items() if t > time.monotonic())}
