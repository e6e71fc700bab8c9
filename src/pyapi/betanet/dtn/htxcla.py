"""HTX convergence layer: bundles over one HTX stream, so the overlay carries them encrypted
and authenticated by the peer's static key.

The dialing side opens one stream per contact; both directions carry bundles. Framing
(pinned in docs/dtn-cla.md): each direction starts with the 5 bytes ``BNDL\\x01``, then

    BUNDLE  0x01 | seq:uint64 | length:uint32 | bundle[length]
    ACK     0x02 | seq:uint64                     the bundle is processed (stored)
    REFUSE  0x03 | seq:uint64 | reason:uint8      1 no resources, 2 not acceptable, 0 other

big-endian, ``seq`` counting this direction's bundles from 0. Acks and refusals answer
bundles in order. :class:`BundleFraming` is the sans-IO codec; :class:`HtxChannel` runs it
on an asyncio HTX stream; :class:`HtxLink` is the :class:`~betanet.dtn.cla.ConvergenceLayer`
(holding each bundle until its ACK and re-sending it on a new connection if the peer
vanished first); :func:`serve_htx` listens.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from betanet.dtn.cla import ConvergenceLayer, LinkMetrics
from betanet.dtn.reliable import DeliveryError, ReliableSender
from betanet.errors import (BetanetError, InvalidArgumentError, LimitExceededError,
                            MalformedError, ProtocolError)

__all__ = ["BundleFraming", "BundleReceived", "BundleAcked", "BundleRefused", "HtxChannel",
           "HtxLink", "HtxClaServer", "serve_htx", "ContactClosedError", "BundleRefusedError",
           "MAGIC", "REFUSE_OTHER", "REFUSE_NO_RESOURCES", "REFUSE_NOT_ACCEPTABLE"]

log = logging.getLogger(__name__)

MAGIC = b"BNDL\x01"          # stream header, each direction: name + framing version 1
T_BUNDLE, T_ACK, T_REFUSE = 1, 2, 3
REFUSE_OTHER, REFUSE_NO_RESOURCES, REFUSE_NOT_ACCEPTABLE = 0, 1, 2
_BUNDLE = struct.Struct("!BQI")
_ACK = struct.Struct("!BQ")
_REFUSE = struct.Struct("!BQB")
_READ = 1 << 16

OnBundle = Callable[[bytes], Awaitable[Any] | Any]
OnDone = Callable[[BaseException | None], Any]


class ContactClosedError(DeliveryError):
    """The HTX connection or stream ended before the bundle was acknowledged."""


class BundleRefusedError(ProtocolError):
    """The peer refused the bundle (``reason``: one of the REFUSE_* codes)."""

    def __init__(self, message: str, reason: int) -> None:
        super().__init__(message)
        self.reason = reason


class BundleReceived:
    __slots__ = ("seq", "data")

    def __init__(self, seq: int, data: bytes) -> None:
        self.seq, self.data = seq, data


class BundleAcked:
    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq


class BundleRefused:
    __slots__ = ("seq", "reason")

    def __init__(self, seq: int, reason: int) -> None:
        self.seq, self.reason = seq, reason


class BundleFraming:
    """Sans-IO codec of one direction pair. ``feed`` raises :class:`MalformedError` for
    anything off the framing (bad header, unknown type, a sequence number out of order, an
    answer to no bundle) and :class:`LimitExceededError` for a bundle longer than
    ``max_bundle_bytes`` as soon as its head is read; the stream cannot be resynchronised
    after either, so the caller ends it."""

    def __init__(self, max_bundle_bytes: int = 16 << 20) -> None:
        if not 0 < max_bundle_bytes <= 0xFFFFFFFF:
            raise InvalidArgumentError("max_bundle_bytes must be 1..2^32-1")
        self.max_bundle_bytes = max_bundle_bytes
        self._buf = bytearray()
        self._header = False
        self._rx_seq = 0                     # next BUNDLE we expect
        self._tx_seq = 0                     # next BUNDLE we send
        self._answered = 0                   # our bundles answered so far (in order)

    def header(self) -> bytes:
        return MAGIC

    def encode_bundle(self, data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
        n = len(data)
        if n > self.max_bundle_bytes:
            raise LimitExceededError(f"bundle of {n} bytes exceeds {self.max_bundle_bytes}")
        seq = self._tx_seq
        self._tx_seq += 1
        return seq, _BUNDLE.pack(T_BUNDLE, seq, n) + data

    def encode_ack(self, seq: int) -> bytes:
        return _ACK.pack(T_ACK, seq)

    def encode_refuse(self, seq: int, reason: int) -> bytes:
        return _REFUSE.pack(T_REFUSE, seq, reason)

    def feed(self, data: bytes) -> list[BundleReceived | BundleAcked | BundleRefused]:
        buf = self._buf
        buf += data
        out: list[BundleReceived | BundleAcked | BundleRefused] = []
        p = 0
        if not self._header:
            if len(buf) < len(MAGIC):
                if MAGIC[:len(buf)] != bytes(buf):
                    raise MalformedError("not a Betanet bundle stream (bad header)")
                return out
            if bytes(buf[:len(MAGIC)]) != MAGIC:
                raise MalformedError("not a Betanet bundle stream (bad header)")
            self._header = True
            p = len(MAGIC)
        try:
            while p < len(buf):
                t = buf[p]
                if t == T_BUNDLE:
                    if len(buf) - p < _BUNDLE.size:
                        break
                    _, seq, n = _BUNDLE.unpack_from(buf, p)
                    if n > self.max_bundle_bytes:
                        raise LimitExceededError(f"bundle of {n} bytes over our limit "
                                                 f"{self.max_bundle_bytes}")
                    if seq != self._rx_seq:
                        raise MalformedError(f"bundle {seq} out of order (expected {self._rx_seq})")
                    q = p + _BUNDLE.size
                    if len(buf) - q < n:
                        break
                    self._rx_seq += 1
                    out.append(BundleReceived(seq, bytes(buf[q:q + n])))
                    p = q + n
                elif t == T_ACK or t == T_REFUSE:
                    st = _ACK if t == T_ACK else _REFUSE
                    if len(buf) - p < st.size:
                        break
                    fields = st.unpack_from(buf, p)
                    seq = fields[1]
                    if seq != self._answered or seq >= self._tx_seq:
                        raise MalformedError(f"answer for bundle {seq} out of order")
                    self._answered += 1
                    out.append(BundleAcked(seq) if t == T_ACK else BundleRefused(seq, fields[2]))
                    p += st.size
                else:
                    raise MalformedError(f"unknown bundle-stream message type {t}")
        finally:
            del buf[:p]
        return out


def _refuse_reason(e: BaseException) -> int:
    if isinstance(e, LimitExceededError):
        return REFUSE_NO_RESOURCES
    if isinstance(e, MalformedError):
        return REFUSE_NOT_ACCEPTABLE
    return REFUSE_OTHER


def _refusal_error(reason: int) -> BetanetError:
    msg = f"peer refused the bundle (reason {reason})"
    if reason == REFUSE_NO_RESOURCES:
        return LimitExceededError(msg)
    if reason == REFUSE_NOT_ACCEPTABLE:
        return MalformedError(msg)
    return BundleRefusedError(msg, reason)


class HtxChannel:
    """Bundles both ways over one HTX stream. ``submit(data, on_done)`` queues one (``on_done``
    runs at its ACK, refusal, or the channel's end); received bundles go to ``on_bundle``
    (a plain function is called inline; a coroutine function gets a task; its completion
    sends the ACK, its exception a REFUSE), at most ``window`` awaiting their answer."""

    def __init__(self, conn: Any, stream: Any, *, on_bundle: OnBundle,
                 max_bundle_bytes: int = 16 << 20, window: int = 64, own_connection: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conn, self.stream = conn, stream
        self.framing = BundleFraming(max_bundle_bytes)
        self._on_bundle = on_bundle
        self._window = max(1, window)
        self._own = own_connection
        self._clock = clock
        self._sending: dict[int, tuple[int, float, OnDone | None]] = {}
        self._acks: deque[list[Any]] = deque()   # [seq, outcome or None], arrival order
        self._progress = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.rtt: float | None = None
        self.bytes_sent = self.bytes_received = self.bytes_acked = 0
        self.bundles_sent = self.bundles_received = 0
        self.stream.write(self.framing.header())
        self._reader = asyncio.create_task(self._read_loop(), name="htxcla-read")

    @property
    def peer_static_key(self) -> bytes | None:
        """The peer's static X25519 key, authenticated by the HTX handshake."""
        return self.conn.remote_static_public

    @property
    def in_flight(self) -> int:
        return len(self._sending)

    def submit(self, data: bytes | bytearray | memoryview, on_done: OnDone | None = None) -> int:
        if self.closed.is_set():
            raise ContactClosedError(f"htx contact closed ({self.close_reason})")
        seq, msg = self.framing.encode_bundle(data)
        self._sending[seq] = (len(data), self._clock(), on_done)
        try:
            self.stream.write(msg)
        except Exception as e:  # the stream or connection already ended
            self._finish(f"write failed: {e}")
            return seq
        self.bytes_sent += len(msg)
        return seq

    async def _read_loop(self) -> None:
        reason = "peer ended the stream"
        try:
            while True:
                while len(self._acks) >= self._window:   # backpressure: stop reading
                    self._progress.clear()
                    await self._progress.wait()
                data = await self.stream.read(_READ)
                if not data:
                    break
                self.bytes_received += len(data)
                for ev in self.framing.feed(data):
                    if isinstance(ev, BundleReceived):
                        self._accept(ev)
                    elif isinstance(ev, BundleAcked):
                        self._answered(ev.seq, None)
                    else:
                        self._answered(ev.seq, _refusal_error(ev.reason))
                self._drain()
        except asyncio.CancelledError:
            reason = "closed"
            raise
        except (MalformedError, LimitExceededError) as e:
            reason = f"bad bundle stream from the peer: {e}"
            log.info("htx cla: %s", reason)
            try:
                self.stream.reset()
            except Exception:
                pass
        except (BetanetError, ConnectionError, OSError) as e:
            reason = f"htx stream lost: {e}"
        except Exception as e:  # a bug must not leave the peer hanging
            log.exception("htx cla channel failed")
            reason = f"internal error: {e}"
        finally:
            self._finish(reason)

    def _answered(self, seq: int, exc: BaseException | None) -> None:
        size, t0, on_done = self._sending.pop(seq)
        if exc is None:
            self.bundles_sent += 1
            self.bytes_acked += size
            if size <= 4096:
                sample = self._clock() - t0
                self.rtt = sample if self.rtt is None else 0.875 * self.rtt + 0.125 * sample
        if on_done is not None:
            on_done(exc)

    def _accept(self, ev: BundleReceived) -> None:
        entry: list[Any] = [ev.seq, None]
        self._acks.append(entry)
        try:
            res = self._on_bundle(ev.data)
        except Exception as e:
            entry[1] = e
            return
        if res is not None and inspect.isawaitable(res):
            fut = asyncio.ensure_future(res)   # never cancelled by the channel's end
            fut.add_done_callback(lambda f, e=entry: self._resolved(e, f))
        else:
            entry[1] = True

    def _resolved(self, entry: list[Any], fut: asyncio.Future) -> None:
        if fut.cancelled():
            entry[1] = ContactClosedError("bundle handler cancelled")
        else:
            entry[1] = fut.exception() or True
        self._drain()

    def _drain(self) -> None:
        """ACK (or REFUSE) every processed bundle at the head, in order."""
        acks = self._acks
        if not acks or acks[0][1] is None:
            return
        out = []
        while acks and acks[0][1] is not None:
            seq, outcome = acks.popleft()
            if outcome is True:
                self.bundles_received += 1
                out.append(self.framing.encode_ack(seq))
            else:
                log.info("htx cla: refused bundle %d: %s", seq, outcome)
                out.append(self.framing.encode_refuse(seq, _refuse_reason(outcome)))
        self._progress.set()
        if not self.closed.is_set():
            try:
                self.stream.write(b"".join(out))
            except Exception as e:
                self._finish(f"write failed: {e}")

    def _finish(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        self._progress.set()
        sending, self._sending = self._sending, {}
        for seq in sorted(sending):
            on_done = sending[seq][2]
            if on_done is not None:
                on_done(ContactClosedError(f"htx contact closed ({reason}) before bundle {seq} "
                                           f"was acknowledged"))
        if self._own:
            asyncio.ensure_future(self._close_conn())

    async def _close_conn(self) -> None:
        try:
            await self.conn.close()
        except Exception:
            pass

    async def close(self) -> None:
        """End the stream (FIN) and, for the dialing side, the connection."""
        if not self.closed.is_set():
            try:
                self.stream.write_eof()
            except Exception:
                pass
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        self._finish("closed")
        if self._own:
            await self._close_conn()

    def abort(self) -> None:
        """Drop the connection under the channel at once (tests use it: a peer vanishing)."""
        abort = getattr(self.conn, "_abort_transport", None)
        if abort is not None:
            abort()


class _HtxSender(ReliableSender):
    closed_error = ContactClosedError

    def __init__(self, link: HtxLink, **kw: Any) -> None:
        super().__init__(f"htx cla {link.host}:{link.port}", **kw)
        self.link = link
        self.past = {"bytes_sent": 0, "bytes_received": 0, "bytes_acked": 0,
                     "bundles_sent": 0, "bundles_received": 0}

    async def _open(self) -> HtxChannel:
        return await self.link._open_channel()

    def _retired(self, ch: Any) -> None:
        _add(self.past, ch)

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, ContactClosedError)


def _add(acc: dict[str, int], ch: HtxChannel) -> None:
    for k in acc:
        acc[k] += getattr(ch, k)


class HtxLink(ConvergenceLayer):
    """The HTX convergence layer toward one peer (its address and static public key).
    ``send`` returns at the peer's ACK (``wait="acked"``) or once the link holds the bundle
    (``wait="queued"``; then :meth:`flush`); bundles a vanished peer did not acknowledge go
    out again, in order, on the next connection (``retried``). Other keyword arguments go to
    :func:`betanet.htx.connect` (``transport``, ``cafile``, ``static_private_key``, ...)."""

    name = "htx"
    acknowledged = True

    def __init__(self, host: str, port: int, server_public_key: bytes | str, *,
                 on_bundle: OnBundle | None = None, attempts: int = 5, backoff: float = 0.05,
                 max_backoff: float = 60.0, window: int = 256, max_bytes: int = 64 << 20,
                 max_bundle_bytes: int = 16 << 20, **htx_kw: Any) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.server_public_key = server_public_key
        self._on_bundle = on_bundle
        self.max_bundle_bytes = max_bundle_bytes
        self._htx_kw = htx_kw
        self._sender = _HtxSender(self, attempts=attempts, backoff=backoff,
                                  max_backoff=max_backoff, window=window, max_bytes=max_bytes)

    async def _open_channel(self) -> HtxChannel:
        from betanet.htx import connect  # the HTX package is only needed by this link
        conn = await connect(self.host, self.port, self.server_public_key, **self._htx_kw)
        try:
            stream = await conn.open_stream()
            return HtxChannel(conn, stream, on_bundle=self._on_bundle or self._deliver,
                              max_bundle_bytes=self.max_bundle_bytes, own_connection=True)
        except BaseException:
            await conn.close()
            raise

    @property
    def channel(self) -> HtxChannel | None:
        return self._sender.conn

    @property
    def retried(self) -> int:
        return self._sender.retried

    @property
    def sessions_opened(self) -> int:
        return self._sender.sessions_opened

    @property
    def undelivered(self) -> list[bytes]:
        return self._sender.undelivered

    async def open_contact(self) -> None:
        await self._sender.open()
        self._opened_at = time.monotonic()

    async def close_contact(self) -> None:
        await self._sender.close()

    async def send(self, bundle: bytes, *, wait: str = "acked") -> None:
        try:
            await self._sender.send(bundle, wait=wait)
        except Exception:
            self.failures += 1
            raise

    async def flush(self) -> None:
        await self._sender.flush()

    @property
    def up(self) -> bool:
        c = self._sender.conn
        return c is not None and not c.closed.is_set()

    def metrics(self) -> LinkMetrics:
        c = self._sender.conn
        t = dict(self._sender.past)
        if c is not None:
            _add(t, c)
        return LinkMetrics(self.up, c.rtt if c else None, self._throughput(t["bytes_acked"]),
                           t["bytes_sent"], t["bytes_received"], t["bundles_sent"],
                           t["bundles_received"], self.failures + self._sender.retried,
                           self._opened_at)


class HtxClaServer:
    """Listening side: every stream a peer opens is an :class:`HtxChannel` (``channels``).
    Bundles go to ``on_bundle`` or, without one, to ``async for ch, data in
    server.received()``."""

    def __init__(self, on_bundle: OnBundle | None, window: int, max_bundle_bytes: int,
                 handler: Callable[[HtxChannel], Awaitable[Any]] | None) -> None:
        self._on_bundle = on_bundle
        self._window, self._max = window, max_bundle_bytes
        self._handler = handler
        self.channels: set[HtxChannel] = set()
        self._queue: asyncio.Queue[tuple[HtxChannel, bytes]] = asyncio.Queue(maxsize=256)
        self.server: Any = None
        self._tasks: set[asyncio.Future] = set()

    @property
    def port(self) -> int:
        return self.server.port

    async def _on_connection(self, conn: Any) -> None:
        while True:
            stream = await conn.accept_stream()   # ConnectionClosedError ends the handler
            ch: HtxChannel

            async def to_queue(data: bytes) -> None:
                await self._queue.put((ch, data))

            ch = HtxChannel(conn, stream, on_bundle=self._on_bundle or to_queue,
                            window=self._window, max_bundle_bytes=self._max)
            self.channels.add(ch)
            t = asyncio.ensure_future(self._forget(ch))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
            if self._handler is not None:
                await self._handler(ch)

    async def _forget(self, ch: HtxChannel) -> None:
        await ch.closed.wait()
        self.channels.discard(ch)

    async def received(self) -> AsyncIterator[tuple[HtxChannel, bytes]]:
        while True:
            yield await self._queue.get()

    async def close(self) -> None:
        await asyncio.gather(*(ch.close() for ch in list(self.channels)), return_exceptions=True)
        self.server.close()
        await self.server.wait_closed()

    async def __aenter__(self) -> HtxClaServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve_htx(host: str, port: int, static_private_key: bytes | str, *,
                    on_bundle: OnBundle | None = None,
                    handler: Callable[[HtxChannel], Awaitable[Any]] | None = None,
                    window: int = 64, max_bundle_bytes: int = 16 << 20,
                    **htx_kw: Any) -> HtxClaServer:
    """Listen for HTX connections carrying bundle streams (``port=0``: a free port,
    ``server.port``). Other keyword arguments go to :func:`betanet.htx.serve`
    (``transport``, ``certfile``, ``keyfile``, limits)."""
    from betanet.htx import serve
    srv = HtxClaServer(on_bundle, window, max_bundle_bytes, handler)
    srv.server = await serve(srv._on_connection, host, port, static_private_key, **htx_kw)
    return srv
