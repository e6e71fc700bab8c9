"""TCPCLv4 (RFC 9174) as a sans-IO session: bytes in, events and bytes out, time injected.

One :class:`Session` per TCP connection. The adapter feeds received bytes with
``receive_data(data, now)``, writes ``data_to_send()``, calls ``tick(now)`` about once a
second, runs the TLS handshake when a :class:`StartTls` event asks for it, and closes the
connection on :class:`SessionClosed`. Choices the RFC leaves open are pinned in
``docs/dtn-cla.md``.
"""
from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from betanet.dtn.tcpcl.events import (BundleReceived, Event, ExtensionItem, MessageRejected,
                                      MessageType, RefuseReason, RejectReason, SessionClosed,
                                      SessionEstablished, SessionTerminating, SessTermReason,
                                      StartTls, TransferAcknowledged, TransferRefused)
from betanet.errors import InvalidArgumentError, LimitExceededError, StateError

__all__ = ["MAGIC", "VERSION", "CAN_TLS", "FLAG_START", "FLAG_END", "TRANSFER_LENGTH_EXT",
           "SessionConfig", "State", "Session", "contact_header", "encode_extensions"]

MAGIC = b"dtn!"
VERSION = 4
CAN_TLS = 0x01
FLAG_END = 0x01
FLAG_START = 0x02
TERM_REPLY = 0x01
EXT_CRITICAL = 0x01
TRANSFER_LENGTH_EXT = 0x0001
MAX_TRANSFER_ID = (1 << 64) - 1
NODE_ID_POLICIES = ("prefer", "require", "none")
_XFER_SEGMENT, _XFER_ACK = int(MessageType.XFER_SEGMENT), int(MessageType.XFER_ACK)  # plain ints: hot compares
_SINGLE = FLAG_START | FLAG_END

_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in ("!B", "!H", "!I", "!Q"))
_SESS_INIT_FIXED = struct.Struct("!HQQH")   # keepalive, segment MRU, transfer MRU, node id len
_SEG_HEAD = struct.Struct("!BBQ")           # type, flags, transfer id
_ACK = struct.Struct("!BBQQ")               # type, flags, transfer id, length
_SINGLE_HEAD = struct.Struct("!BBQIQ")      # one-segment transfer: ..., no extensions, data length
_REFUSE = struct.Struct("!BBQ")             # type, reason, transfer id
_EXT_HEAD = struct.Struct("!BHH")           # flags, type, length


@dataclass(frozen=True)
class SessionConfig:
    """Our side of the negotiation and our limits. Defaults are pinned in docs/dtn-cla.md."""
    node_id: str = ""
    keepalive: int = 30                 # seconds offered; negotiated = min of both, 0 = off
    segment_mru: int = 1 << 20          # largest segment we accept
    transfer_mru: int = 16 << 20        # largest bundle we accept
    can_tls: bool = False               # CAN_TLS in our contact header
    require_tls: bool = False           # refuse the session (Contact Failure) without TLS
    max_extension_bytes: int = 16384    # session / transfer extension items we accept
    session_extensions: tuple[ExtensionItem, ...] = ()
    max_segment_out: int | None = None  # cap our segments below the peer's MRU
    contact_timeout: float = 30.0       # contact header + TLS + SESS_INIT must finish within
    idle_timeout: float | None = None   # default: twice the negotiated keepalive
    ending_timeout: float = 30.0        # SESS_TERM sent: close anyway after this long
    max_unresolved: int = 1024          # received transfers whose ack/refusal is still held
    # NODE-ID check of the peer's certificate (RFC 9174 §4.4.4.3): "prefer" fails the session
    # when the certificate names other Node IDs than SESS_INIT claims and accepts one naming
    # none (unauthenticated); "require" also fails without TLS or without a NODE-ID; "none"
    # does not look
    node_id_policy: str = "prefer"

    def __post_init__(self) -> None:
        if not 0 <= self.keepalive <= 0xFFFF:
            raise InvalidArgumentError("keepalive must fit in 16 bits")
        if not 1 <= self.segment_mru < 1 << 64 or not 1 <= self.transfer_mru < 1 << 64:
            raise InvalidArgumentError("MRUs must be positive 64-bit values")
        if len(self.node_id.encode()) > 0xFFFF:
            raise InvalidArgumentError("node id longer than 65535 bytes")
        if self.require_tls and not self.can_tls:
            raise InvalidArgumentError("require_tls needs can_tls")
        if self.node_id_policy not in NODE_ID_POLICIES:
            raise InvalidArgumentError(f"node_id_policy must be one of {NODE_ID_POLICIES}")


class State(Enum):
    CONTACT = "contact"        # waiting for the peer's contact header
    TLS = "tls"                # TLS handshake in the adapter
    SESS_INIT = "sess_init"    # waiting for the peer's SESS_INIT
    ESTABLISHED = "established"
    ENDING = "ending"
    CLOSED = "closed"


def contact_header(can_tls: bool) -> bytes:
    return MAGIC + bytes([VERSION, CAN_TLS if can_tls else 0])


def encode_extensions(items: tuple[ExtensionItem, ...] | list[ExtensionItem]) -> bytes:
    out = bytearray()
    for it in items:
        if not 0 <= it.type <= 0xFFFF or len(it.value) > 0xFFFF:
            raise InvalidArgumentError("extension item type/length out of range")
        out += _EXT_HEAD.pack(EXT_CRITICAL if it.critical else 0, it.type, len(it.value)) + it.value
    return bytes(out)


def _decode_extensions(buf: memoryview) -> list[ExtensionItem] | None:
    """Items of an extension list, or None if an item overruns the list."""
    items, pos, end = [], 0, len(buf)
    while pos < end:
        if end - pos < _EXT_HEAD.size:
            return None
        flags, typ, length = _EXT_HEAD.unpack_from(buf, pos)
        pos += _EXT_HEAD.size
        if end - pos < length:
            return None
        items.append(ExtensionItem(typ, bytes(buf[pos:pos + length]), bool(flags & EXT_CRITICAL)))
        pos += length
    return items


class _Close(Exception):
    """Internal: stop parsing, the session is closed."""


class _RxOrder:
    """Acks/refusals of one incoming transfer, released in transfer order (RFC 9174 §5.2.4:
    earlier transfers are fully acknowledged or refused before a later one is refused)."""
    __slots__ = ("tid", "msgs", "done")

    def __init__(self, tid: int) -> None:
        self.tid, self.msgs, self.done = tid, [], False


class _Tx:
    __slots__ = ("total", "acked")

    def __init__(self, total: int) -> None:
        self.total, self.acked = total, 0


class Session:
    """One TCPCLv4 session. ``active`` is the entity that opened the TCP connection."""

    def __init__(self, *, active: bool, config: SessionConfig = SessionConfig(),
                 now: float = 0.0) -> None:
        self.active = active
        self.config = config
        self.state = State.CONTACT
        self.tls = False
        self.peer_node_id = ""
        self.keepalive = 0
        self.peer_segment_mru = 0
        self.peer_transfer_mru = 0
        self.peer_extensions: tuple[ExtensionItem, ...] = ()
        self.peer_node_id_authenticated = False  # its certificate named it (§4.4.4.3)
        self._cert_node_ids: tuple[str, ...] | None = None
        self._single_max = 0
        self.close_reason = ""
        self._now = now
        self._started = now
        self._last_rx = now
        self._last_tx = now
        self._ending_since = 0.0
        self._in = bytearray()
        self._pos = 0
        self._out: deque[tuple[int | None, bytes]] = deque()
        self._events: list[Event] = []
        self._term_sent = False
        self._term_received = False
        self._next_tid = 0
        self._tx: dict[int, _Tx] = {}
        self._rx_tid: int | None = None
        self._rx_buf = bytearray()
        self._rx_total: int | None = None
        self._rx_exts: tuple[ExtensionItem, ...] = ()
        self._rx_refused: int | None = None
        self._rx_order: deque[_RxOrder] = deque()
        self._awaiting: dict[int, tuple[_RxOrder, int, int]] = {}  # tid -> (entry, flags, length)
        # counters for link measurements
        self.bytes_sent = 0
        self.bytes_received = 0
        if active:
            self._send(contact_header(config.can_tls))

    # ---- output -----------------------------------------------------------------------
    def _send(self, msg: bytes, tid: int | None = None) -> None:
        self._out.append((tid, msg))
        self._last_tx = self._now

    def data_to_send(self) -> bytes:
        """Bytes to write to the connection now (possibly empty)."""
        if not self._out:
            return b""
        data = b"".join(m for _, m in self._out)
        self._out.clear()
        self.bytes_sent += len(data)
        return data

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    # ---- input ------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes read from the connection; returns the events they caused."""
        self._now = now
        if self.state is State.CLOSED or not data:
            return self._take_events()
        self.bytes_received += len(data)
        self._last_rx = now
        self._in += data
        try:
            while self.state not in (State.CLOSED, State.TLS):
                if not self._step():
                    break
        except _Close:
            pass
        if self._pos:
            del self._in[:self._pos]
            self._pos = 0
        if self.state is State.TLS and self._in:
            # The peer sent bytes before the TLS handshake could start: not TCPCL.
            self._close("data before the TLS handshake")
        self._flush_acks()
        return self._take_events()

    def _take_events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def _avail(self) -> int:
        return len(self._in) - self._pos

    def _step(self) -> bool:
        """Handle one complete unit at the front of the buffer; False if more bytes are needed."""
        if self.state is State.CONTACT:
            return self._contact_header()
        buf, p = self._in, self._pos
        n = len(buf) - p
        if n == 0:
            return False
        mtype = buf[p]
        if mtype == _XFER_SEGMENT:  # the two per-bundle messages first
            return self._xfer_segment()
        if mtype == _XFER_ACK:
            if n < _ACK.size:
                return False
            _, flags, tid, length = _ACK.unpack_from(buf, p)
            self._pos += _ACK.size
            self._on_ack(flags, tid, length)
            return True
        if mtype == MessageType.KEEPALIVE:
            self._pos += 1
            return True
        if mtype == MessageType.XFER_REFUSE:
            if n < _REFUSE.size:
                return False
            _, reason, tid = _REFUSE.unpack_from(buf, p)
            self._pos += _REFUSE.size
            self._on_refuse(reason, tid)
            return True
        if mtype == MessageType.SESS_TERM:
            if n < 3:
                return False
            flags, reason = buf[p + 1], buf[p + 2]
            self._pos += 3
            self._on_sess_term(flags, reason)
            return True
        if mtype == MessageType.MSG_REJECT:
            if n < 3:
                return False
            reason, rejected = buf[p + 1], buf[p + 2]
            self._pos += 3
            self._events.append(MessageRejected(reason, rejected))
            return True
        if mtype == MessageType.SESS_INIT:
            return self._sess_init()
        # Unknown type: we cannot know its length, so the stream is lost (RFC 9174 §5.1.2).
        self._send(bytes([MessageType.MSG_REJECT, RejectReason.TYPE_UNKNOWN, mtype]))
        self._close(f"unknown message type 0x{mtype:02x}")
        return False

    # ---- contact header and negotiation -------------------------------------------------
    def _contact_header(self) -> bool:
        head = bytes(self._in[self._pos:self._pos + 6])
        if not MAGIC.startswith(head[:4]):
            self._close("bad contact header magic")  # no SESS_TERM: not a TCPCL peer
        if len(head) < 6:
            return False
        self._pos += 6
        version, flags = head[4], head[5]
        if version != VERSION:
            if not self.active:
                self._send(contact_header(self.config.can_tls))
                self._send(bytes([MessageType.SESS_TERM, 0, SessTermReason.VERSION_MISMATCH]))
                self._term_sent = True
            self._close(f"peer speaks TCPCL version {version}")
        if not self.active:
            self._send(contact_header(self.config.can_tls))
        self.tls = self.config.can_tls and bool(flags & CAN_TLS)
        if self.config.require_tls and not self.tls:
            self._terminate(SessTermReason.CONTACT_FAILURE, close=True, why="peer cannot do TLS")
        if self.tls:
            self.state = State.TLS
            self._events.append(StartTls(server_side=not self.active))
        else:
            self._begin_sess_init()
        return True

    def tls_established(self, now: float, peer_node_ids: Iterable[str] | None = None) -> list[Event]:
        """The adapter finished the TLS handshake: session negotiation continues inside it.
        ``peer_node_ids``: the NODE-IDs of the peer's certificate once the certificate was
        validated (None: no validated certificate), checked against its SESS_INIT."""
        self._now = now
        if self.state is not State.TLS:
            raise StateError(f"no TLS handshake expected in state {self.state.value}")
        self._cert_node_ids = None if peer_node_ids is None else tuple(peer_node_ids)
        self._begin_sess_init()
        return self._take_events()

    def _check_node_id(self, node_id: str) -> None:
        """RFC 9174 §4.4.4.3: the Node ID the peer claims against its certificate."""
        policy = self.config.node_id_policy
        if policy == "none":
            return
        ids = self._cert_node_ids if self.tls else None
        if ids:
            if node_id not in ids:
                self._terminate(SessTermReason.CONTACT_FAILURE, close=True,
                                why=f"peer node id {node_id!r} is not a NODE-ID of its "
                                    f"certificate {list(ids)!r}")
            self.peer_node_id_authenticated = True
        elif policy == "require":
            self._terminate(SessTermReason.CONTACT_FAILURE, close=True,
                            why="peer node id not authenticated (no TLS)" if not self.tls
                            else "peer certificate has no NODE-ID")

    def _begin_sess_init(self) -> None:
        self.state = State.SESS_INIT
        if self.active:
            self._send_sess_init()

    def _send_sess_init(self) -> None:
        c = self.config
        node = c.node_id.encode()
        exts = encode_extensions(c.session_extensions)
        self._send(bytes([MessageType.SESS_INIT]) +
                   _SESS_INIT_FIXED.pack(c.keepalive, c.segment_mru, c.transfer_mru, len(node)) +
                   node + _U32.pack(len(exts)) + exts)

    def _sess_init(self) -> bool:
        buf, p, n = self._in, self._pos, self._avail()
        fixed = 1 + _SESS_INIT_FIXED.size
        if n < fixed:
            return False
        keepalive, seg_mru, xfer_mru, node_len = _SESS_INIT_FIXED.unpack_from(buf, p + 1)
        if n < fixed + node_len + 4:
            return False
        ext_len = _U32.unpack_from(buf, p + fixed + node_len)[0]
        if ext_len > self.config.max_extension_bytes:
            self._terminate(SessTermReason.CONTACT_FAILURE, close=True,
                            why=f"session extensions of {ext_len} bytes")
        total = fixed + node_len + 4 + ext_len
        if n < total:
            return False
        mv = memoryview(buf)
        node_raw = bytes(mv[p + fixed:p + fixed + node_len])
        exts = _decode_extensions(mv[p + fixed + node_len + 4:p + total])
        mv.release()
        self._pos += total
        if self.state is not State.SESS_INIT:
            self._reject(RejectReason.UNEXPECTED, MessageType.SESS_INIT)
            return True
        try:
            node_id = node_raw.decode()
        except UnicodeDecodeError:
            self._terminate(SessTermReason.CONTACT_FAILURE, close=True, why="node id not UTF-8")
        if exts is None:
            self._terminate(SessTermReason.CONTACT_FAILURE, close=True,
                            why="session extension item overruns its list")
        for it in exts:  # RFC 9174 defines no session extension type; we know none
            if it.critical:
                self._terminate(SessTermReason.CONTACT_FAILURE, close=True,
                                why=f"unknown critical session extension {it.type}")
        if seg_mru == 0 or xfer_mru == 0:
            self._terminate(SessTermReason.CONTACT_FAILURE, close=True, why="zero MRU")
        self._check_node_id(node_id)
        if not self.active:
            self._send_sess_init()
        self.peer_node_id = node_id
        self.keepalive = min(keepalive, self.config.keepalive)
        self.peer_segment_mru = seg_mru
        self.peer_transfer_mru = xfer_mru
        self.peer_extensions = tuple(exts)
        # largest bundle that goes as one segment (the fast path of send_transfer)
        self._single_max = min(seg_mru, xfer_mru, self.config.max_segment_out or seg_mru)
        self.state = State.ESTABLISHED
        self._events.append(SessionEstablished(node_id, self.keepalive, seg_mru, xfer_mru,
                                               self.tls, self.peer_extensions))
        return True

    # ---- incoming transfers -------------------------------------------------------------
    def _xfer_segment(self) -> bool:
        buf, p, n = self._in, self._pos, self._avail()
        if n >= _SINGLE_HEAD.size:
            _, flags, tid, ext_len, data_len = _SINGLE_HEAD.unpack_from(buf, p)
            q = p + _SINGLE_HEAD.size
            if (flags == _SINGLE and not ext_len and n >= q - p + data_len
                    and self._rx_tid is None and self.state is State.ESTABLISHED
                    and tid != self._rx_refused and data_len <= self.config.segment_mru
                    and data_len <= self.config.transfer_mru
                    and len(self._rx_order) < self.config.max_unresolved):
                # the common small bundle, one segment and no extensions: what the general
                # path below does for it, without its general checks
                self._pos = q + data_len
                entry = _RxOrder(tid)
                self._rx_order.append(entry)
                self._awaiting[tid] = (entry, flags, data_len)
                self._events.append(BundleReceived(tid, bytes(buf[q:q + data_len]), ()))
                return True
        if n < _SEG_HEAD.size:
            return False
        _, flags, tid = _SEG_HEAD.unpack_from(buf, p)
        q = p + _SEG_HEAD.size
        ext_len = 0
        if flags & FLAG_START:
            if n < q - p + 4:
                return False
            ext_len = _U32.unpack_from(buf, q)[0]
            if ext_len > self.config.max_extension_bytes:
                self._terminate(SessTermReason.RESOURCE_EXHAUSTION, close=True,
                                why=f"transfer extensions of {ext_len} bytes")
            q += 4 + ext_len
        if n < q - p + 8:
            return False
        data_len = _U64.unpack_from(buf, q)[0]
        if data_len > self.config.segment_mru:  # hostile length: refused before buffering it
            self._terminate(SessTermReason.RESOURCE_EXHAUSTION, close=True,
                            why=f"segment of {data_len} bytes over our MRU {self.config.segment_mru}")
        q += 8
        if n < q - p + data_len:
            return False
        mv = memoryview(buf)
        exts = (_decode_extensions(mv[p + _SEG_HEAD.size + 4:p + _SEG_HEAD.size + 4 + ext_len])
                if flags & FLAG_START and ext_len else [])
        data = mv[q:q + data_len]
        try:
            self._pos = q + data_len
            if self.state is not State.ESTABLISHED and not (
                    self.state is State.ENDING and not flags & FLAG_START and tid == self._rx_tid):
                if self.state is State.ENDING:
                    self._refuse_rx(tid, RefuseReason.SESSION_TERMINATING)
                else:
                    self._reject(RejectReason.UNEXPECTED, MessageType.XFER_SEGMENT)
                return True
            self._on_segment(flags, tid, exts, data)
        finally:
            data.release()
            mv.release()
        return True

    def _on_segment(self, flags: int, tid: int, exts: list[ExtensionItem] | None,
                    data: memoryview) -> None:
        if tid == self._rx_refused:
            self._refuse_rx(tid, RefuseReason.NOT_ACCEPTABLE)  # segments crossed our refusal
            return
        if flags & FLAG_START:
            if self._rx_tid is not None:  # the peer abandoned its previous transfer
                self._abandon_rx()
            if len(self._rx_order) >= self.config.max_unresolved:
                # acks held behind one the application has not resolved: a peer flooding
                # transfers we refuse must not grow this queue without bound
                self._terminate(SessTermReason.RESOURCE_EXHAUSTION, close=True,
                                why="too many unresolved incoming transfers")
            self._rx_tid, self._rx_total = tid, None
            self._rx_order.append(_RxOrder(tid))
            if exts is None:
                self._refuse_rx(tid, RefuseReason.EXTENSION_FAILURE)
                return
            seen_length = False
            for it in exts:
                if it.type == TRANSFER_LENGTH_EXT:
                    if seen_length or len(it.value) != 8:
                        self._refuse_rx(tid, RefuseReason.EXTENSION_FAILURE)
                        return
                    seen_length = True
                    self._rx_total = _U64.unpack(it.value)[0]
                elif it.critical:
                    self._refuse_rx(tid, RefuseReason.EXTENSION_FAILURE)
                    return
            if self._rx_total is not None and self._rx_total > self.config.transfer_mru:
                self._refuse_rx(tid, RefuseReason.NOT_ACCEPTABLE)
                return
            self._rx_exts = tuple(exts)
        elif tid != self._rx_tid:
            self._reject(RejectReason.UNEXPECTED, MessageType.XFER_SEGMENT)
            return
        size = len(self._rx_buf) + len(data)
        if size > self.config.transfer_mru or (self._rx_total is not None and size > self._rx_total):
            self._refuse_rx(tid, RefuseReason.NOT_ACCEPTABLE)
            return
        single = flags & FLAG_START and flags & FLAG_END
        if not single:
            self._rx_buf += data
        entry = self._rx_order[-1]
        if flags & FLAG_END:
            if self._rx_total is not None and size != self._rx_total:
                self._refuse_rx(tid, RefuseReason.NOT_ACCEPTABLE)
                return
            bundle = bytes(data) if single else bytes(self._rx_buf)
            self._awaiting[tid] = (entry, flags, size)
            self._rx_tid, self._rx_buf, self._rx_total = None, bytearray(), None
            self._events.append(BundleReceived(tid, bundle, self._rx_exts))
        else:
            entry.msgs.append(_ACK.pack(MessageType.XFER_ACK, flags, tid, size))

    def _abandon_rx(self) -> None:
        entry = self._rx_order[-1]
        entry.done = True
        self._rx_tid, self._rx_buf, self._rx_total = None, bytearray(), None

    def _refuse_rx(self, tid: int, reason: int) -> None:
        msg = _REFUSE.pack(MessageType.XFER_REFUSE, reason, tid)
        if self._rx_tid == tid and self._rx_order:
            entry = self._rx_order[-1]
            entry.msgs.append(msg)
            entry.done = True
            self._rx_tid, self._rx_buf, self._rx_total = None, bytearray(), None
        else:
            if len(self._rx_order) >= self.config.max_unresolved:
                self._terminate(SessTermReason.RESOURCE_EXHAUSTION, close=True,
                                why="too many unresolved incoming transfers")
            done = _RxOrder(tid)
            done.msgs.append(msg)
            done.done = True
            self._rx_order.append(done)
        self._rx_refused = tid

    def _flush_acks(self) -> None:
        while self._rx_order:
            head = self._rx_order[0]
            for m in head.msgs:
                self._send(m)
            head.msgs.clear()
            if not head.done:
                break
            self._rx_order.popleft()

    def ack_transfer(self, transfer_id: int) -> list[Event]:
        """The received bundle is processed (stored): send its final XFER_ACK."""
        return self.ack_transfers((transfer_id,))

    def ack_transfers(self, transfer_ids: Iterable[int]) -> list[Event]:
        """:meth:`ack_transfer` for many received bundles at once (the pipelined case)."""
        order, out = self._rx_order, self._out
        for tid in transfer_ids:
            entry, flags, length = self._pop_awaiting(tid)
            if order and order[0] is entry and not entry.msgs and self.state is State.ESTABLISHED:
                # in-order ack with nothing held before it: straight out
                order.popleft()
                out.append((None, _ACK.pack(_XFER_ACK, flags, tid, length)))
                if order:
                    self._flush_acks()
                continue
            entry.msgs.append(_ACK.pack(_XFER_ACK, flags, tid, length))
            entry.done = True
            self._flush_acks()
        self._last_tx = self._now
        try:
            self._maybe_finish()
        except _Close:
            pass
        return self._take_events()

    def refuse_transfer(self, transfer_id: int, reason: RefuseReason | int) -> list[Event]:
        """Refuse a received bundle instead of acknowledging it (store full, not acceptable)."""
        entry, _, _ = self._pop_awaiting(transfer_id)
        entry.msgs.append(_REFUSE.pack(MessageType.XFER_REFUSE, int(reason), transfer_id))
        return self._resolve_rx(entry)

    def _resolve_rx(self, entry: _RxOrder) -> list[Event]:
        entry.done = True
        self._flush_acks()
        try:
            self._maybe_finish()
        except _Close:
            pass
        return self._take_events()

    def _pop_awaiting(self, tid: int) -> tuple[_RxOrder, int, int]:
        try:
            return self._awaiting.pop(tid)
        except KeyError:
            raise StateError(f"no received transfer {tid} awaits an acknowledgment") from None

    @property
    def awaiting_ack(self) -> int:
        """Received bundles whose final acknowledgment the adapter still owes."""
        return len(self._awaiting)

    # ---- outgoing transfers -------------------------------------------------------------
    def send_transfer(self, data: bytes | bytearray | memoryview,
                      extensions: tuple[ExtensionItem, ...] = ()) -> int:
        """Queue one bundle as a transfer; returns its transfer id. Segments follow the peer's
        segment MRU; a multi-segment transfer carries the Transfer Length extension."""
        if self.state is not State.ESTABLISHED:
            raise StateError(f"cannot start a transfer in state {self.state.value}")
        if type(data) is bytes and not extensions and len(data) <= self._single_max:
            # the common small bundle: one message, one pack, no memoryview
            tid = self._next_tid
            if tid <= MAX_TRANSFER_ID:
                self._next_tid = tid + 1
                self._out.append((tid, _SINGLE_HEAD.pack(_XFER_SEGMENT, _SINGLE, tid, 0,
                                                         len(data)) + data))
                self._last_tx = self._now
                self._tx[tid] = _Tx(len(data))
                return tid
        mv = memoryview(data).cast("B")
        total = len(mv)
        if total > self.peer_transfer_mru:
            raise LimitExceededError(f"bundle of {total} bytes exceeds the peer's transfer MRU "
                                     f"{self.peer_transfer_mru}")
        if self._next_tid > MAX_TRANSFER_ID:
            try:
                self._terminate(SessTermReason.RESOURCE_EXHAUSTION, close=False, why="transfer ids")
            except _Close:
                pass
            raise LimitExceededError("transfer id space exhausted")
        tid = self._next_tid
        self._next_tid += 1
        seg = self.peer_segment_mru
        if self.config.max_segment_out:
            seg = min(seg, self.config.max_segment_out)
        if total <= seg and not extensions:  # the common small bundle: one message, one pack
            self._send(_SINGLE_HEAD.pack(_XFER_SEGMENT, FLAG_START | FLAG_END, tid, 0, total)
                       + mv, tid)
            self._tx[tid] = _Tx(total)
            return tid
        items = list(extensions)
        if total > seg:
            items.append(ExtensionItem(TRANSFER_LENGTH_EXT, _U64.pack(total), critical=False))
        exts = encode_extensions(items)
        pos = 0
        while True:
            chunk = mv[pos:pos + seg]
            flags = (FLAG_START if pos == 0 else 0)
            pos += len(chunk)
            if pos >= total:
                flags |= FLAG_END
            head = _SEG_HEAD.pack(MessageType.XFER_SEGMENT, flags, tid)
            if flags & FLAG_START:
                head += _U32.pack(len(exts)) + exts
            self._send(b"".join((head, _U64.pack(len(chunk)), chunk)), tid)
            if flags & FLAG_END:
                break
        self._tx[tid] = _Tx(total)
        return tid

    def _on_ack(self, flags: int, tid: int, length: int) -> None:
        tx = self._tx.get(tid)
        if tx is None or length > tx.total or length < tx.acked:
            self._reject(RejectReason.UNEXPECTED, MessageType.XFER_ACK)
            return
        tx.acked = length
        complete = bool(flags & FLAG_END) and length == tx.total
        if complete:
            del self._tx[tid]
        self._events.append(TransferAcknowledged(tid, length, complete))
        if complete and self.state is State.ENDING:
            self._maybe_finish()

    def _on_refuse(self, reason: int, tid: int) -> None:
        if tid not in self._tx:
            self._reject(RejectReason.UNEXPECTED, MessageType.XFER_REFUSE)
            return
        del self._tx[tid]
        # Segments of the refused bundle not yet handed to the adapter are never sent.
        self._out = deque(item for item in self._out if item[0] != tid)
        self._events.append(TransferRefused(tid, reason))
        self._maybe_finish()

    @property
    def unacknowledged(self) -> tuple[int, ...]:
        """Our transfers not yet fully acknowledged or refused."""
        return tuple(self._tx)

    # ---- termination and timers ---------------------------------------------------------
    def _reject(self, reason: int, mtype: int) -> None:
        self._send(bytes([MessageType.MSG_REJECT, reason, mtype]))

    def terminate(self, reason: SessTermReason | int = SessTermReason.UNKNOWN,
                  now: float | None = None) -> list[Event]:
        """Start a clean termination: no new transfers; pending ones may finish."""
        if now is not None:
            self._now = now
        try:
            if self.state in (State.CONTACT, State.TLS):
                self._close("terminated before negotiation")
            elif self.state is not State.CLOSED:
                self._terminate(int(reason), close=False, why="local request")
        except _Close:
            pass
        return self._take_events()

    def _terminate(self, reason: int, *, close: bool, why: str) -> None:
        if not self._term_sent:
            self._send(bytes([MessageType.SESS_TERM, 0, reason]))
            self._term_sent = True
        if self.state is not State.ENDING:
            self.state = State.ENDING
            self._ending_since = self._now
            self._events.append(SessionTerminating(reason, by_peer=False))
        self.close_reason = why
        if close:
            self._close(why)
        self._maybe_finish()

    def _on_sess_term(self, flags: int, reason: int) -> None:
        if flags & TERM_REPLY:
            if not self._term_sent:
                self._reject(RejectReason.UNEXPECTED, MessageType.SESS_TERM)
                return
            self._term_received = True
        else:
            self._term_received = True
            if not self._term_sent:
                self._send(bytes([MessageType.SESS_TERM, TERM_REPLY, reason]))
                self._term_sent = True
            if self.state is not State.ENDING:
                self.state = State.ENDING
                self._ending_since = self._now
                self._events.append(SessionTerminating(reason, by_peer=True))
            self.close_reason = f"peer terminated (reason {reason})"
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if (self.state is State.ENDING and self._term_sent and self._term_received
                and not self._tx and self._rx_tid is None and not self._awaiting):
            self._close(self.close_reason or "terminated")

    def _close(self, reason: str) -> None:
        if self.state is State.CLOSED:
            raise _Close
        self.state = State.CLOSED
        self.close_reason = reason
        self._flush_acks()
        self._events.append(SessionClosed(reason, tuple(self._tx)))
        raise _Close

    def connection_lost(self, now: float) -> list[Event]:
        """The TCP connection closed (or failed) under us."""
        self._now = now
        if self.state is not State.CLOSED:
            try:
                self._close("connection lost")
            except _Close:
                pass
        return self._take_events()

    def tick(self, now: float) -> list[Event]:
        """Run timers: negotiation timeout, KEEPALIVE, idle timeout, ending timeout."""
        self._now = now
        try:
            if self.state in (State.CONTACT, State.TLS, State.SESS_INIT):
                if now - self._started > self.config.contact_timeout:
                    self._close("session negotiation timed out")
            elif self.state is State.ESTABLISHED:
                idle = self.config.idle_timeout or (2 * self.keepalive if self.keepalive else None)
                if idle and now - self._last_rx > idle:
                    self._terminate(SessTermReason.IDLE_TIMEOUT, close=True, why="idle timeout")
                if self.keepalive and now - self._last_tx >= self.keepalive:
                    self._send(bytes([MessageType.KEEPALIVE]))
            elif self.state is State.ENDING:
                if now - self._ending_since > self.config.ending_timeout:
                    self._close("termination timed out")
        except _Close:
            pass
        return self._take_events()
