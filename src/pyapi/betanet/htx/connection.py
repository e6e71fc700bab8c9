"""HTXConnection: the sans-IO HTX protocol (h2 style) over the core session.

Feed received bytes to ``receive_data`` and act on the returned events; call the
methods to send; write ``data_to_send()`` to the transport. No sockets, no clock reads
except through the ``clock`` given (used only for the time-based key update).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable

from betanet._log import escape
from betanet._native import htx as _n
from betanet.errors import (AuthenticationError, BetanetError, InvalidArgumentError,
                            LimitExceededError, MalformedError, ProtocolError, StateError)
from betanet.htx.events import (ConnectionClosed, Event, HandshakeCompleted, KeyUpdated,
                                PingAcked, PingReceived, StreamData, StreamEnded,
                                StreamOpened, StreamReset, WindowUpdated)
from betanet.htx.handshake import NoiseXKHandshake
from betanet.htx.protocol import (DEFAULT_CONNECTION_WINDOW, DEFAULT_MAX_FRAME, DEFAULT_MAX_STREAMS,
                                  DEFAULT_STREAM_WINDOW, FLAG_FIN, FLAG_REPLY, FLAG_RESET,
                                  INITIAL_WINDOW, MAX_WINDOW, CloseCode, FrameType, code_name)

log = logging.getLogger(__name__)

__all__ = ["HTXConfig", "HTXConnection", "FlowControlError", "ConnectionClosedError"]


class FlowControlError(ProtocolError):
    """More data than the peer's window allows (locally: wait for WINDOW_UPDATE)."""


class ConnectionClosedError(StateError):
    """The HTX connection is closed; ``close_code``, ``reason`` and ``remote`` say how."""

    def __init__(self, message: str, close_code: int = 0, reason: str = "", remote: bool = False):
        super().__init__(message)
        self.close_code, self.reason, self.remote = close_code, reason, remote


@dataclass
class HTXConfig:
    """Tunables of one connection (defaults in docs/htx.md)."""
    max_frame: int = DEFAULT_MAX_FRAME          # max plaintext per frame, both directions
    rekey_bytes: int = 8 << 30
    rekey_frames: int = 1 << 16
    rekey_seconds: float = 3600.0
    stream_window: int = DEFAULT_STREAM_WINDOW  # receive window we grant per stream
    connection_window: int = DEFAULT_CONNECTION_WINDOW
    max_streams: int = DEFAULT_MAX_STREAMS      # peer-opened streams open at once; more are refused


# Core status -> (CLOSE code, exception class) for receive failures, keyed by the code each
# class carries (which the library itself supplies: betanet.errors).
_RECV_ERRORS = {cls.code: (close, cls, text) for close, cls, text in (
    (CloseCode.DECRYPT_ERROR, AuthenticationError, "frame failed authentication "
     "(corrupted, truncated, replayed or reordered)"),
    (CloseCode.FRAME_SIZE_ERROR, LimitExceededError, "frame length above the maximum frame size"),
    (CloseCode.UNKNOWN_FRAME_TYPE, ProtocolError, "unknown frame type"),
    (CloseCode.PROTOCOL_ERROR, MalformedError, "frame plaintext does not match its type"),
)}


class _Stream:
    __slots__ = ("id", "send_window", "recv_window", "unacked", "send_closed", "recv_closed", "granted")

    def __init__(self, sid: int) -> None:
        self.id = sid
        self.send_window = INITIAL_WINDOW     # what the peer lets us send
        self.recv_window = INITIAL_WINDOW     # what we let the peer send (remaining)
        self.unacked = 0                      # consumed by the app, not yet credited
        self.send_closed = False
        self.recv_closed = False
        self.granted = False                  # the extra receive window was announced


class HTXConnection:
    """One side of an HTX connection.

    ``client=True``: the Noise initiator, which must know ``remote_static_public``; it
    opens odd stream ids. The server (responder) needs ``static_private_key`` and opens
    even ids.
    """

    def __init__(self, *, client: bool, static_private_key: bytes | None = None,
                 remote_static_public: bytes | None = None, config: HTXConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.config = config or HTXConfig()
        self._clock = clock
        self._hs = NoiseXKHandshake(initiator=client, static_private_key=static_private_key,
                                    remote_static_public=remote_static_public)
        self._session: _n.Session | None = None
        self._out: list[bytes | bytearray] = []
        self._streams: dict[int, _Stream] = {}
        self._next_local = 1 if client else 2
        self._highest_remote = 0
        self._remote_open = 0         # peer-opened streams in self._streams
        self._send_window = INITIAL_WINDOW
        self._recv_window = INITIAL_WINDOW
        self._unacked = 0
        self._pings: set[bytes] = set()
        self.remote_static_public: bytes | None = None
        self.handshake_hash: bytes | None = None
        self.closed = False
        self.close_event: ConnectionClosed | None = None
        self.key_updates_received = 0

    # ---- handshake ---------------------------------------------------------------------
    def initiate_connection(self) -> None:
        """Queue the first handshake message (client). Servers need not call it."""
        self._out.append(self._hs.data_to_send())

    @property
    def handshake_complete(self) -> bool:
        return self._session is not None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _start_session(self) -> Event:
        r = self._hs.result
        assert r is not None
        c = self.config
        # The split keys go from the core handshake into the core session directly.
        self._session = self._hs.session(max_frame=c.max_frame, rekey_bytes=c.rekey_bytes,
                                         rekey_frames=c.rekey_frames,
                                         rekey_ms=max(1, int(c.rekey_seconds * 1000)), now_ms=self._now_ms())
        self.remote_static_public = r.remote_static_public
        self.handshake_hash = r.handshake_hash
        extra = c.connection_window - INITIAL_WINDOW
        if extra > 0:
            self._recv_window += extra
            self._seal(FrameType.WINDOW_UPDATE, 0, _n.varint_encode(extra))
        return HandshakeCompleted(r.remote_static_public, r.handshake_hash)

    # ---- sending ----------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """All bytes queued for the transport (empty when nothing is pending)."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out = []
        return out

    def _require_open(self) -> _n.Session:
        if self.closed:
            ev = self.close_event
            raise ConnectionClosedError("htx connection is closed", ev.code if ev else 0,
                                        ev.reason if ev else "", ev.remote if ev else False)
        if self._session is None:
            raise StateError("htx handshake not complete")
        return self._session

    def _seal(self, ftype: int, sid: int, payload: bytes) -> None:
        self._out.append(self._session.seal(ftype, sid, payload, self._now_ms()))

    def get_next_available_stream_id(self) -> int:
        return self._next_local

    def open_stream(self) -> int:
        """Reserve the next local stream id (the peer learns of it with the first frame)."""
        self._require_open()
        sid = self._next_local
        self._next_local += 2
        self._streams[sid] = _Stream(sid)
        return sid

    def _local_stream(self, sid: int) -> _Stream:
        st = self._streams.get(sid)
        if st is None:
            raise InvalidArgumentError(f"htx: stream {sid} is not open")
        return st

    def local_flow_control_window(self, stream_id: int) -> int:
        """How many data bytes may be sent on the stream now."""
        st = self._local_stream(stream_id)
        return max(0, min(st.send_window, self._send_window))

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview, end_stream: bool = False) -> None:
        """Send data (split into frames); raises FlowControlError above the window."""
        session = self._require_open()
        st = self._local_stream(stream_id)
        if st.send_closed:
            raise StateError(f"htx: stream {stream_id} already ended")
        n = memoryview(data).nbytes      # bytes, also for typed buffers (NumPy arrays)
        if n > st.send_window or n > self._send_window:
            raise FlowControlError(f"htx: {n} bytes exceed the send window "
                                   f"({min(st.send_window, self._send_window)})")
        self._out.append(session.seal_stream(stream_id, data, end_stream, 0, self._now_ms()))
        st.send_window -= n
        self._send_window -= n
        if end_stream:
            st.send_closed = True
        self._announce(st)
        self._maybe_forget(st)

    def _announce(self, st: _Stream) -> None:
        # Grant our larger receive window once the peer knows the stream (after its first frame).
        if st.granted or st.recv_closed:
            return
        st.granted = True
        extra = self.config.stream_window - INITIAL_WINDOW
        if extra > 0:
            st.recv_window += extra
            self._seal(FrameType.WINDOW_UPDATE, st.id, _n.varint_encode(extra))

    def end_stream(self, stream_id: int) -> None:
        """Send FIN: no more data from us on this stream."""
        self.send_data(stream_id, b"", end_stream=True)

    def reset_stream(self, stream_id: int, code: int = CloseCode.NO_ERROR) -> None:
        """Abort the stream in both directions (RESET with ``code``)."""
        session = self._require_open()
        st = self._local_stream(stream_id)
        self._out.append(session.seal_stream(stream_id, int(code).to_bytes(2, "big"), False,
                                             FLAG_RESET, self._now_ms()))
        st.send_closed = st.recv_closed = True
        self._maybe_forget(st)

    def ping(self, token: bytes | None = None) -> bytes:
        """Send a PING; the PingAcked event carries the same 8-byte token."""
        self._require_open()
        token = os.urandom(8) if token is None else bytes(token)
        if len(token) != 8:
            raise InvalidArgumentError("htx ping token is 8 bytes")
        self._pings.add(token)
        self._seal(FrameType.PING, 0, b"\x00" + token)
        return token

    def update_key(self) -> None:
        """Send KEY_UPDATE now and switch the sending key."""
        self._require_open()
        self._seal(FrameType.KEY_UPDATE, 0, b"")

    def close(self, code: int = CloseCode.NO_ERROR, reason: str = "") -> None:
        """Send CLOSE and stop. Idempotent."""
        if self.closed:
            return
        if self._session is not None:
            self._seal(FrameType.CLOSE, 0, int(code).to_bytes(2, "big") + reason.encode()[:1000])
        self._finish(ConnectionClosed(int(code), reason, remote=False))

    def acknowledge_received_data(self, nbytes: int, stream_id: int) -> None:
        """The application consumed ``nbytes`` of a stream: credit the windows back
        (WINDOW_UPDATE once at least half of a window is consumed)."""
        if self.closed or nbytes <= 0:
            return
        self._unacked += nbytes
        if self._unacked >= self.config.connection_window // 2:
            self._recv_window += self._unacked
            self._seal(FrameType.WINDOW_UPDATE, 0, _n.varint_encode(self._unacked))
            self._unacked = 0
        st = self._streams.get(stream_id)
        if st is None or st.recv_closed:
            return
        st.unacked += nbytes
        if st.unacked >= self.config.stream_window // 2:
            st.recv_window += st.unacked
            self._seal(FrameType.WINDOW_UPDATE, stream_id, _n.varint_encode(st.unacked))
            st.unacked = 0

    @property
    def stats(self) -> dict:
        s = self._session.stats() if self._session is not None else {}
        s["open_streams"] = len(self._streams)
        return s

    # ---- receiving ----------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process bytes from the transport. Returns events; a failure ends with a
        ConnectionClosed event carrying the error (a CLOSE is queued when keys exist)."""
        if self.closed:
            return []
        events: list[Event] = []
        if self._session is None:
            try:
                rest = self._hs.receive_data(bytes(data))
            except BetanetError as exc:
                return self._fail(events, CloseCode.PROTOCOL_ERROR, exc, send_close=False)
            hs_out = self._hs.data_to_send()
            if hs_out:
                self._out.append(hs_out)
            if self._hs.result is None:
                return events
            events.append(self._start_session())
            data = rest
            if not data:
                return events
        frames, err = self._session.receive(data)
        try:
            for ftype, sid, flags, body in frames:
                self._on_frame(events, ftype, sid, flags, body)
                if self.closed:
                    return events
        except _Violation as v:
            return self._fail(events, v.code, v.exc)
        if err:
            code, cls, text = _RECV_ERRORS.get(err, (CloseCode.PROTOCOL_ERROR, ProtocolError, "bad frame"))
            return self._fail(events, code, cls(f"htx: {text}", err))
        return events

    def connection_lost(self, exc: Exception | None = None) -> list[Event]:
        """The transport ended. A peer that stopped mid-frame or without CLOSE is an error."""
        if self.closed:
            return []
        if self._session is None:
            err: Exception = ConnectionClosedError(
                "htx: connection closed during the handshake (wrong server public key, "
                "or the peer is not an HTX endpoint)", remote=True)
        elif self._session.pending:
            err = MalformedError("htx: connection lost in the middle of a frame (truncated frame)")
        else:
            err = ConnectionClosedError("htx: connection lost without CLOSE", remote=True)
        if exc is not None:
            err.__cause__ = exc
        ev = ConnectionClosed(CloseCode.INTERNAL_ERROR, str(err), remote=True, error=err)
        self._finish(ev)
        return [ev]

    def _fail(self, events: list[Event], code: int, exc: Exception, send_close: bool = True) -> list[Event]:
        log.debug("htx connection failed: %s (%s)", escape(exc), code_name(code))
        if send_close and self._session is not None:
            try:
                self._seal(FrameType.CLOSE, 0, int(code).to_bytes(2, "big") + str(exc).encode()[:200])
            except BetanetError:
                pass
        ev = ConnectionClosed(int(code), str(exc), remote=False, error=exc)
        self._finish(ev)
        events.append(ev)
        return events

    def _finish(self, ev: ConnectionClosed) -> None:
        self.closed = True
        self.close_event = ev

    def _maybe_forget(self, st: _Stream) -> None:
        if st.send_closed and st.recv_closed and self._streams.pop(st.id, None) is not None:
            if st.id % 2 != self._next_local % 2:
                self._remote_open -= 1

    def _remote_stream(self, events: list[Event], sid: int) -> _Stream | None:
        """The stream for a frame from the peer, opening it if it is new; None if it was
        closed already (late frames after our RESET are dropped)."""
        st = self._streams.get(sid)
        if st is not None:
            return st
        if sid == 0:
            raise _Violation(CloseCode.PROTOCOL_ERROR, ProtocolError("htx: stream id 0 is not a stream"))
        peer_parity = 0 if self.client else 1
        if sid % 2 != peer_parity:
            if sid < self._next_local:
                return None   # one of ours, already closed
            raise _Violation(CloseCode.STREAM_STATE_ERROR,
                             ProtocolError(f"htx: peer used stream {sid}, which has our parity and was never opened"))
        if sid <= self._highest_remote:
            return None
        self._highest_remote = sid
        if self._remote_open >= self.config.max_streams:
            # Refuse: RESET it; its later frames are dropped as those of a closed stream.
            self._out.append(self._session.seal_stream(sid, int(CloseCode.REFUSED_STREAM).to_bytes(2, "big"),
                                                       False, FLAG_RESET, self._now_ms()))
            return None
        self._remote_open += 1
        st = self._streams[sid] = _Stream(sid)
        events.append(StreamOpened(sid))
        self._announce(st)
        return st

    def _on_frame(self, events: list[Event], ftype: int, sid: int, flags: int, body: bytes) -> None:
        if ftype == FrameType.STREAM:
            st = self._remote_stream(events, sid)
            if flags & FLAG_RESET:
                if st is not None:
                    st.send_closed = st.recv_closed = True
                    self._maybe_forget(st)
                    events.append(StreamReset(sid, int.from_bytes(body, "big")))
                return
            n = len(body)
            if n > self._recv_window:
                raise _Violation(CloseCode.FLOW_CONTROL_ERROR,
                                 ProtocolError(f"htx: peer overran the connection window ({n} > {self._recv_window})"))
            self._recv_window -= n
            if st is None:       # late data for a stream we closed: drop, credit the connection
                self.acknowledge_received_data(n, 0)
                return
            if st.recv_closed:
                raise _Violation(CloseCode.STREAM_STATE_ERROR,
                                 ProtocolError(f"htx: data on stream {sid} after FIN"))
            if n > st.recv_window:
                raise _Violation(CloseCode.FLOW_CONTROL_ERROR,
                                 ProtocolError(f"htx: peer overran the window of stream {sid} ({n} > {st.recv_window})"))
            st.recv_window -= n
            if n:
                events.append(StreamData(sid, body))
            if flags & FLAG_FIN:
                st.recv_closed = True
                events.append(StreamEnded(sid))
                self._maybe_forget(st)
        elif ftype == FrameType.WINDOW_UPDATE:
            inc, _ = _n.varint_decode(body)
            if inc == 0:
                raise _Violation(CloseCode.PROTOCOL_ERROR, ProtocolError("htx: WINDOW_UPDATE of 0"))
            if sid == 0:
                self._send_window += inc
                if self._send_window > MAX_WINDOW:
                    raise _Violation(CloseCode.FLOW_CONTROL_ERROR, ProtocolError("htx: connection window above 2^62-1"))
            else:
                st = self._remote_stream(events, sid)
                if st is None:
                    return
                st.send_window += inc
                if st.send_window > MAX_WINDOW:
                    raise _Violation(CloseCode.FLOW_CONTROL_ERROR, ProtocolError("htx: stream window above 2^62-1"))
            events.append(WindowUpdated(sid, inc))
        elif ftype == FrameType.PING:
            if flags & FLAG_REPLY:
                if body in self._pings:
                    self._pings.discard(body)
                    events.append(PingAcked(body))
            else:
                self._seal(FrameType.PING, 0, bytes([FLAG_REPLY]) + body)
                events.append(PingReceived(body))
        elif ftype == FrameType.KEY_UPDATE:
            self.key_updates_received += 1
            events.append(KeyUpdated(self.key_updates_received))
        elif ftype == FrameType.CLOSE:
            code = int.from_bytes(body[:2], "big")
            reason = body[2:].decode("utf-8", "replace")
            err = None
            if code != CloseCode.NO_ERROR:
                # The reason is the peer's text: escaped in the message (which gets logged),
                # verbatim in ``.reason``.
                err = ConnectionClosedError(f"htx: peer closed the connection: {code_name(code)}"
                                            + (f" ({escape(reason)})" if reason else ""), code, reason, True)
            ev = ConnectionClosed(code, reason, remote=True, error=err)
            self._finish(ev)
            events.append(ev)


class _Violation(Exception):
    def __init__(self, code: int, exc: Exception) -> None:
        self.code, self.exc = code, exc
