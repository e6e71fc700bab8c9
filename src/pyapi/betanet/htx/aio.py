"""asyncio on top of HTXConnection: connections, streams, timeouts. Transports live in
``transports.py``; this module only moves bytes between them and the sans-IO protocol."""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Awaitable, Callable

from betanet._log import escape
from betanet.errors import ExpiredError, LimitExceededError, StateError
from betanet.htx.connection import ConnectionClosedError, HTXConfig, HTXConnection
from betanet.htx.events import (ConnectionClosed, HandshakeCompleted, KeyUpdated, PingAcked,
                                StreamData, StreamEnded, StreamOpened, StreamReset, WindowUpdated)
from betanet.htx.protocol import (DEFAULT_CLOSE_GRACE, DEFAULT_CONTROL_BACKLOG, DEFAULT_HANDSHAKE_TIMEOUT,
                                  DEFAULT_IDLE_TIMEOUT, CloseCode)

log = logging.getLogger(__name__)

__all__ = ["Connection", "Stream", "HTXTimeoutError", "StreamResetError"]

_WRITE_HIGH = 256 * 1024      # a stream's unsent bytes above which drain() waits
_PUMP_CHUNK = 256 * 1024      # data sealed per stream per turn (fairness between streams)


class HTXTimeoutError(ExpiredError, TimeoutError):
    """The handshake or the idle timeout expired."""


class StreamResetError(StateError, ConnectionResetError):
    """The stream was reset; ``reset_code`` is the RESET code."""

    def __init__(self, message: str, reset_code: int = 0) -> None:
        super().__init__(message)
        self.reset_code = reset_code


class Stream:
    """One bidirectional HTX stream: ``read``/``readexactly``/``write``/``drain``/``close``."""

    def __init__(self, conn: "Connection", stream_id: int) -> None:
        self._conn = conn
        self.id = stream_id
        self._rbuf: collections.deque[bytes] = collections.deque()   # received, not yet read
        self._rlen = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._rwait: asyncio.Future | None = None
        self._wq: collections.deque[memoryview] = collections.deque()
        self._wq_bytes = 0
        self._fin_wanted = False
        self._fin_sent = False
        self._dwaiters: list[asyncio.Future] = []     # drain()/close() callers, all woken

    def __repr__(self) -> str:
        return f"<htx.Stream {self.id}>"

    # ---- reading -----------------------------------------------------------------------
    def _wake_reader(self) -> None:
        w, self._rwait = self._rwait, None
        if w is not None and not w.done():
            w.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._rbuf.append(data)
        self._rlen += len(data)
        self._wake_reader()

    def _take(self, n: int) -> bytes:
        """Remove and return the first n buffered bytes (n <= self._rlen)."""
        buf = self._rbuf
        first = buf[0]
        if len(first) == n:
            buf.popleft()
        elif len(first) > n:
            buf[0] = first[n:]
            first = first[:n]
        else:
            parts, got = [], 0
            while got < n:
                chunk = buf.popleft()
                if got + len(chunk) > n:
                    buf.appendleft(chunk[n - got:])
                    chunk = chunk[:n - got]
                parts.append(chunk)
                got += len(chunk)
            first = b"".join(parts)
        self._rlen -= n
        self._conn._consumed(self.id, n)
        return first

    def _feed_eof(self) -> None:
        self._eof = True
        self._wake_reader()

    def _fail(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
        self._wake_reader()
        self._wake_drain()

    def _reader_future(self) -> asyncio.Future:
        # one reader at a time, as asyncio.StreamReader: a second would take the first's
        # wake-up and leave it waiting for ever
        if self._rwait is not None and not self._rwait.done():
            raise StateError(f"htx stream {self.id}: read while another read is waiting")
        self._rwait = asyncio.get_running_loop().create_future()
        return self._rwait

    async def _wait_data(self) -> None:
        while not self._rbuf and not self._eof:
            if self._exc is not None:
                raise self._exc
            await self._reader_future()

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all buffered when n < 0); b"" at end of stream."""
        if n == 0:
            return b""
        await self._wait_data()
        if not self._rlen:
            return b""
        return self._take(self._rlen if n < 0 else min(n, self._rlen))

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or asyncio.IncompleteReadError at end of stream."""
        while self._rlen < n and not self._eof:
            if self._exc is not None:
                raise self._exc
            await self._reader_future()
        if self._rlen < n:
            raise asyncio.IncompleteReadError(self._take(self._rlen) if self._rlen else b"", n)
        return self._take(n) if n else b""

    def at_eof(self) -> bool:
        return self._eof and not self._rlen

    # ---- writing -------------------------------------------------------------------------
    def _write_error(self) -> BaseException | None:
        """Why nothing more can be sent: the stream's failure, or the connection's end."""
        if self._exc is not None:
            return self._exc
        if self._conn.closed:
            return self._conn.error or ConnectionClosedError("htx connection closed")
        return None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue data; it is sent as the windows allow. Use ``await drain()`` for back-pressure."""
        err = self._write_error()
        if err is not None:
            raise err
        if self._fin_wanted:
            raise StateError(f"htx stream {self.id}: write after close")
        mv = memoryview(data).cast("B")
        if not mv.nbytes:
            return
        if not isinstance(data, bytes):
            mv = memoryview(bytes(mv))       # the caller may reuse its buffer
        self._wq.append(mv)
        self._wq_bytes += len(mv)
        self._conn._pump()

    def _wake_drain(self) -> None:
        ws, self._dwaiters = self._dwaiters, []
        for w in ws:
            if not w.done():
                w.set_result(None)

    async def _wait_drain(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._dwaiters.append(fut)
        await fut

    async def drain(self) -> None:
        """Wait until the unsent data is below the high-water mark."""
        while (self._wq_bytes > _WRITE_HIGH or self._conn._paused) and self._write_error() is None:
            await self._wait_drain()
        err = self._write_error()
        if err is not None and (self._wq_bytes or not self._fin_sent):
            raise err

    def write_eof(self) -> None:
        """FIN after the queued data."""
        if not self._fin_wanted:
            self._fin_wanted = True
            self._conn._pump()

    async def close(self) -> None:
        """FIN, then wait until everything queued is sent."""
        self.write_eof()
        while not self._fin_sent:
            err = self._write_error()
            if err is not None:
                raise err
            await self._wait_drain()

    def _discard(self) -> None:
        """Drop queued and unread data; unread bytes are credited to the connection window
        (the peer sent them within it, nobody will read them now)."""
        self._wq.clear()
        self._wq_bytes = 0
        if self._rlen:
            n, self._rlen = self._rlen, 0
            self._rbuf.clear()
            self._conn._consumed(self.id, n)

    def reset(self, code: int = CloseCode.NO_ERROR) -> None:
        """Abort the stream in both directions."""
        conn = self._conn
        conn._accept_queue.pop(self.id, None)
        if not conn.htx.closed:
            try:
                conn.htx.reset_stream(self.id, code)
            except Exception:          # stream already gone
                pass
        self._discard()
        if not conn.htx.closed:
            conn._flush()
        conn._streams.pop(self.id, None)
        self._fail(StreamResetError(f"htx stream {self.id} reset locally", int(code)))

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, et, ev, tb) -> None:
        # Clean exit: FIN and flush. On an exception: RESET. A stream that already failed
        # (reset, connection gone) has nothing left to do.
        if self._exc is not None:
            return
        if et is None:
            await self.close()
        else:
            self.reset(CloseCode.INTERNAL_ERROR)


class Connection:
    """An established (or establishing) HTX connection over some byte transport.

    Created by ``connect``/``serve``. The transport adapter calls ``_data_received`` /
    ``_connection_lost`` / ``_pause``/``_resume`` / ``_transport_lost``; we call
    ``writer(bytes)``, ``closer()``, and where the transport has them ``pause_reading()``,
    ``resume_reading()`` and ``abort()``.

    Peer-provoked writes are bounded: bytes queued while the transport is paused (PING
    replies, stream refusals: the data path itself stops at the pause) above
    ``max_control_backlog`` stop reading from the peer until the transport drains; at twice
    that, or on a transport that cannot stop reading, the connection is aborted. After the
    connection ends, a transport that has not finished closing ``close_grace`` seconds later
    (a peer that does not read the last bytes) is aborted.
    """

    def __init__(self, htx: HTXConnection, writer: Callable[[bytes], None],
                 closer: Callable[[], None], *, transport: str,
                 idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                 close_grace: float | None = DEFAULT_CLOSE_GRACE,
                 max_control_backlog: int = DEFAULT_CONTROL_BACKLOG,
                 pause_reading: Callable[[], None] | None = None,
                 resume_reading: Callable[[], None] | None = None,
                 abort: Callable[[], None] | None = None) -> None:
        self.htx = htx
        self.transport = transport
        self._write = writer
        self._close_transport = closer
        self._transport_closing: asyncio.Future | None = None   # set by transports that close asynchronously
        self._loop = asyncio.get_running_loop()
        self._streams: dict[int, Stream] = {}
        # Peer-opened streams not yet accepted, oldest first. Each is open on the protocol
        # (counts toward max_streams), so there are at most max_streams; a reset one leaves.
        self._accept_queue: dict[int, Stream] = {}
        self._accept_ready = asyncio.Event()
        self._close_grace = close_grace
        self._grace_handle: asyncio.TimerHandle | None = None
        self._transport_gone = False
        self._abort_transport = abort
        self._pause_reading = pause_reading
        self._resume_reading = resume_reading
        self._reading_paused = False
        self._max_backlog = max_control_backlog
        self._backlog = 0             # bytes written while the transport was paused
        self.counters = {"streams_dropped_unaccepted": 0, "read_pauses": 0,
                         "backlog_aborts": 0, "grace_aborts": 0}
        self._handshake: asyncio.Future = self._loop.create_future()
        self._closed: asyncio.Future = self._loop.create_future()
        self._pings: dict[bytes, tuple[asyncio.Future, float]] = {}
        self._paused = False
        self._pumping = False
        self._idle_timeout = idle_timeout
        self._last_rx = time.monotonic()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._rr: collections.deque[Stream] = collections.deque()   # streams with data to send
        self.error: BaseException | None = None
        self.key_updates_received = 0
        self._progress: asyncio.Future | None = None   # set when stream data went out

    # ---- public -----------------------------------------------------------------------------
    @property
    def remote_static_public(self) -> bytes | None:
        return self.htx.remote_static_public

    @property
    def handshake_hash(self) -> bytes | None:
        return self.htx.handshake_hash

    @property
    def closed(self) -> bool:
        return self._closed.done()

    def stats(self) -> dict:
        """Protocol and session counters, plus this layer's: ``accept_queue`` (streams
        waiting for ``accept_stream``), ``write_backlog`` and the ``counters``."""
        s = self.htx.stats
        s.update(self.counters, accept_queue=len(self._accept_queue), write_backlog=self._backlog,
                 reading_paused=self._reading_paused)
        return s

    async def open_stream(self) -> Stream:
        """A new stream (the peer sees it with its first frame)."""
        self._check()
        sid = self.htx.open_stream()
        st = self._streams[sid] = Stream(self, sid)
        return st

    async def accept_stream(self) -> Stream:
        """The next stream the peer opened; ConnectionClosedError once closed."""
        while not self._accept_queue:
            if self.closed:
                raise self.error or ConnectionClosedError("htx connection closed")
            self._accept_ready.clear()
            await self._accept_ready.wait()
        return self._accept_queue.pop(next(iter(self._accept_queue)))

    async def ping(self, timeout: float | None = None) -> float:
        """Round-trip time in seconds of one PING."""
        self._check()
        token = self.htx.ping()
        fut = self._loop.create_future()
        self._pings[token] = (fut, time.perf_counter())
        self._flush()
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pings.pop(token, None)

    async def update_key(self) -> None:
        """Switch our sending key now (KEY_UPDATE)."""
        self._check()
        self._pump()
        self.htx.update_key()
        self._flush()

    async def close(self, code: int = CloseCode.NO_ERROR, reason: str = "",
                    timeout: float | None = 10.0) -> None:
        """Close: with NO_ERROR, data already written to streams is sent first (waiting up
        to ``timeout`` seconds for the peer's windows), then CLOSE; the transport closes."""
        if not self.closed and code == CloseCode.NO_ERROR:
            deadline = None if timeout is None else self._loop.time() + timeout
            while not self.closed and any(st._wq and st._exc is None for st in self._streams.values()):
                self._pump()
                self._progress = self._loop.create_future()
                left = None if deadline is None else deadline - self._loop.time()
                if left is not None and left <= 0:
                    break
                try:
                    await asyncio.wait_for(asyncio.shield(self._progress), left)
                except asyncio.TimeoutError:
                    break
        if not self.closed:
            self._pump()
            self.htx.close(code, reason)
            self._flush()
            self._finish(None)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed and its transport has finished closing."""
        await asyncio.shield(self._closed)
        if self._transport_closing is not None:
            await asyncio.shield(self._transport_closing)

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, et, ev, tb) -> None:
        await self.close(CloseCode.NO_ERROR if et is None else CloseCode.INTERNAL_ERROR)

    # ---- plumbing ---------------------------------------------------------------------------
    def _check(self) -> None:
        if self.closed:
            raise self.error or ConnectionClosedError("htx connection closed")

    def _start(self, handshake_timeout: float | None) -> None:
        if self.htx.client:
            self.htx.initiate_connection()
            self._flush()
        if handshake_timeout:
            self._loop.call_later(handshake_timeout, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        if not self._handshake.done():
            self._abort(HTXTimeoutError("htx handshake timed out"))

    async def _wait_handshake(self) -> None:
        await asyncio.shield(self._handshake)

    def _flush(self) -> None:
        data = self.htx.data_to_send()
        if data:
            if self._paused:
                self._backlog += len(data)
            self._write(data)

    def _data_received(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        events = self.htx.receive_data(data)
        for ev in events:
            self._dispatch(ev)
        if not self.closed:
            self._pump()
        self._flush()
        if self.htx.closed and not self.closed:
            self._finish(self.htx.close_event.error if self.htx.close_event else None)
        elif self._backlog > self._max_backlog and not self.closed:
            self._control_backlog()

    def _control_backlog(self) -> None:
        """The peer provokes replies faster than it reads them."""
        if self._pause_reading is not None and not self._reading_paused:
            self._reading_paused = True
            self.counters["read_pauses"] += 1
            self._pause_reading()
            return
        if self._pause_reading is None or self._backlog > 2 * self._max_backlog:
            self.counters["backlog_aborts"] += 1
            self._abort(LimitExceededError(
                f"htx: peer does not read its replies ({self._backlog} bytes unsent)"))
            if self._abort_transport is not None:
                self._abort_transport()

    def _dispatch(self, ev) -> None:
        if isinstance(ev, StreamData):
            st = self._streams.get(ev.stream_id)
            if st is not None:
                st._feed(ev.data)
            else:
                self.htx.acknowledge_received_data(len(ev.data), ev.stream_id)
        elif isinstance(ev, WindowUpdated):
            pass                                  # _pump runs after every batch
        elif isinstance(ev, StreamOpened):
            st = self._streams[ev.stream_id] = Stream(self, ev.stream_id)
            self._accept_queue[ev.stream_id] = st
            self._accept_ready.set()
        elif isinstance(ev, StreamEnded):
            st = self._streams.get(ev.stream_id)
            if st is not None:
                st._feed_eof()
                self._maybe_drop(st)
        elif isinstance(ev, StreamReset):
            st = self._streams.pop(ev.stream_id, None)
            if st is not None:
                if self._accept_queue.pop(ev.stream_id, None) is not None:
                    # Never accepted: nobody will read it. Forget it (open-then-reset floods
                    # must not pile up streams) and credit what it had received.
                    self.counters["streams_dropped_unaccepted"] += 1
                    st._discard()
                st._fail(StreamResetError(f"htx stream {ev.stream_id} reset by peer (code {ev.code})", ev.code))
        elif isinstance(ev, PingAcked):
            entry = self._pings.pop(ev.token, None)
            if entry and not entry[0].done():
                entry[0].set_result(time.perf_counter() - entry[1])
        elif isinstance(ev, KeyUpdated):
            self.key_updates_received = ev.epoch
            log.debug("htx: peer updated its key (epoch %d)", ev.epoch)
        elif isinstance(ev, HandshakeCompleted):
            if not self._handshake.done():
                self._handshake.set_result(None)
            self._arm_idle()
        elif isinstance(ev, ConnectionClosed):
            self._finish(ev.error)

    def _maybe_drop(self, st: Stream) -> None:
        if st._eof and st._fin_sent:
            self._streams.pop(st.id, None)

    def _consumed(self, sid: int, n: int) -> None:
        if n and not self.closed:
            self.htx.acknowledge_received_data(n, sid)
            self._flush()

    def _pump(self) -> None:
        """Seal queued stream data as far as the windows and the transport allow."""
        if self._pumping or self.closed or not self.htx.handshake_complete:
            return
        self._pumping = True
        try:
            for st in list(self._streams.values()):
                if (st._wq or (st._fin_wanted and not st._fin_sent)) and st not in self._rr:
                    self._rr.append(st)
            while self._rr and not self._paused:
                st = self._rr.popleft()
                if st._exc is not None or st._fin_sent:
                    continue
                if not self._send_some(st):
                    continue
                if st._wq or (st._fin_wanted and not st._fin_sent):
                    self._rr.append(st)
                self._flush()
        finally:
            self._pumping = False
        self._flush()

    def _send_some(self, st: Stream) -> bool:
        """Send one chunk of a stream's queue; False if its window is closed."""
        try:
            window = self.htx.local_flow_control_window(st.id)
        except Exception:
            return False
        n = min(window, _PUMP_CHUNK, st._wq_bytes)
        if n == 0 and st._wq:
            return False
        parts, got = [], 0
        while got < n:
            mv = st._wq[0]
            take = min(len(mv), n - got)
            parts.append(mv[:take])
            got += take
            if take == len(mv):
                st._wq.popleft()
            else:
                st._wq[0] = mv[take:]
        st._wq_bytes -= got
        fin = st._fin_wanted and not st._wq
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if got or fin:
            self.htx.send_data(st.id, data, end_stream=fin)
        if fin:
            st._fin_sent = True
            self._maybe_drop(st)
        if st._wq_bytes <= _WRITE_HIGH or fin:
            st._wake_drain()
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)
        return True

    def _pause(self) -> None:
        self._paused = True

    def _resume(self) -> None:
        self._paused = False
        self._backlog = 0
        if self._reading_paused and not self.closed:
            self._reading_paused = False
            self._resume_reading()
        self._pump()
        for st in list(self._streams.values()):
            if st._wq_bytes <= _WRITE_HIGH:
                st._wake_drain()

    def _arm_idle(self) -> None:
        if self._idle_timeout:
            self._idle_handle = self._loop.call_later(self._idle_timeout / 4, self._idle_check)

    def _idle_check(self) -> None:
        if self.closed:
            return
        quiet = time.monotonic() - self._last_rx
        if quiet >= self._idle_timeout:
            try:
                self.htx.close(CloseCode.IDLE_TIMEOUT, "idle timeout")
                self._flush()
            except Exception:
                pass
            self._abort(HTXTimeoutError(f"htx idle timeout: nothing from the peer for {quiet:.1f} s"))
            return
        if quiet >= self._idle_timeout / 3:
            # Keepalive: a live peer answers, which resets its and our idle clocks.
            self.htx.ping()
            self._flush()
        self._arm_idle()

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        events = self.htx.connection_lost(exc if isinstance(exc, Exception) else None)
        err = events[0].error if events else ConnectionClosedError("htx connection lost", remote=True)
        self._finish(err)

    def _abort(self, exc: BaseException) -> None:
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.error = exc
        if exc is not None:
            log.info("htx connection ended: %s", escape(exc))
        if not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionClosedError("htx connection closed during handshake"))
            self._handshake.exception()    # retrieved: no "never retrieved" warning
        err = exc or ConnectionClosedError("htx connection closed")
        for st in list(self._streams.values()):
            st._wq.clear()             # can never be sent now
            st._wq_bytes = 0
            if not st._eof or exc is not None:
                st._fail(err)
            st._wake_drain()
        for fut, _ in self._pings.values():
            if not fut.done():
                fut.set_exception(err)
        self._accept_ready.set()
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._closed.set_result(None)
        try:
            self._flush()              # a queued CLOSE goes out before the transport closes
            self._close_transport()
        except Exception:
            pass
        if self._abort_transport is not None and not self._transport_gone and self._close_grace is not None:
            # close() waits for the buffer to flush, forever if the peer does not read.
            self._grace_handle = self._loop.call_later(max(0.0, self._close_grace), self._grace_expired)

    def _grace_expired(self) -> None:
        if not self._transport_gone:
            self.counters["grace_aborts"] += 1
            log.debug("htx: transport still closing %.1f s after the end; aborting", self._close_grace)
            self._abort_transport()

    def _transport_lost(self) -> None:
        """The transport is gone (its connection_lost ran): nothing left to abort."""
        self._transport_gone = True
        if self._grace_handle is not None:
            self._grace_handle.cancel()
            self._grace_handle = None


async def _run_handler(conn: Connection, handler: Callable[[Connection], Awaitable[None]],
                       on_handshake_error: Callable[[BaseException], None] | None = None) -> None:
    try:
        await conn._wait_handshake()
    except Exception as exc:
        log.info("htx handshake failed (%s): %s", conn.transport, escape(exc))
        if on_handshake_error is not None:
            on_handshake_error(exc)
        return
    try:
        await handler(conn)
    except Exception as exc:
        if conn.closed:        # the peer went away or the server is closing: a normal end
            log.debug("htx handler ended with its connection: %s", escape(exc))
            return
        log.exception("htx handler failed")
        await conn.close(CloseCode.INTERNAL_ERROR, "handler failed")
        return
    await conn.close()
