"""The sans-IO TCPCLv4 session (RFC 9174), driven with injected time and no sockets."""
from __future__ import annotations

import struct

import pytest

from betanet.dtn.tcpcl.events import (BundleReceived, ExtensionItem, MessageRejected,
                                      MessageType, RefuseReason, SessionClosed,
                                      SessionEstablished, SessionTerminating, SessTermReason,
                                      StartTls, TransferAcknowledged, TransferRefused)
from betanet.dtn.tcpcl.protocol import (FLAG_END, FLAG_START, Session, SessionConfig, State,
                                        contact_header)
from betanet.errors import InvalidArgumentError, LimitExceededError, StateError


def pump(a: Session, b: Session, now: float = 0.0) -> tuple[list, list]:
    """Move bytes both ways until quiet; returns (events of a, events of b)."""
    ea, eb = [], []
    while True:
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            return ea, eb
        if da:
            eb += b.receive_data(da, now)
        if db:
            ea += a.receive_data(db, now)


def pair(ca: SessionConfig | None = None, cb: SessionConfig | None = None):
    a = Session(active=True, config=ca or SessionConfig(node_id="ipn:1.0"))
    b = Session(active=False, config=cb or SessionConfig(node_id="ipn:2.0"))
    ea, eb = pump(a, b)
    return a, b, ea, eb


def sess_init(keepalive=30, seg=1 << 20, xfer=1 << 24, node=b"ipn:9.0", exts=b"") -> bytes:
    return (bytes([7]) + struct.pack("!HQQH", keepalive, seg, xfer, len(node)) + node +
            struct.pack("!I", len(exts)) + exts)


def established_passive(**cfg) -> Session:
    b = Session(active=False, config=SessionConfig(node_id="ipn:2.0", **cfg))
    b.receive_data(contact_header(False), 0)
    b.receive_data(sess_init(), 0)
    b.data_to_send()
    assert b.established
    return b


def test_negotiation_takes_minimum_keepalive_and_exchanges_mrus():
    a, b, ea, eb = pair(SessionConfig(node_id="ipn:1.0", keepalive=20, segment_mru=1000),
                        SessionConfig(node_id="ipn:2.0", keepalive=45, transfer_mru=5000))
    (est_a,), (est_b,) = ea, eb
    assert isinstance(est_a, SessionEstablished) and isinstance(est_b, SessionEstablished)
    assert est_a.peer_node_id == "ipn:2.0" and est_b.peer_node_id == "ipn:1.0"
    assert est_a.keepalive == est_b.keepalive == 20
    assert est_a.peer_transfer_mru == 5000 and est_b.peer_segment_mru == 1000
    assert not est_a.tls


def test_contact_header_bytes_and_passive_waits():
    a = Session(active=True, config=SessionConfig(can_tls=True))
    assert a.data_to_send() == b"dtn!\x04\x01"
    b = Session(active=False)
    assert b.data_to_send() == b""  # the passive entity speaks only after the active one
    b.receive_data(b"dtn!\x04\x00", 0)
    out = b.data_to_send()
    assert out == b"dtn!\x04\x00"  # its contact header, and no SESS_INIT before the peer's
    assert b.state is State.SESS_INIT


def test_transfer_segmented_by_peer_mru_with_cumulative_acks():
    a, b, _, _ = pair(cb=SessionConfig(node_id="ipn:2.0", segment_mru=100))
    data = bytes(range(256)) * 2
    tid = a.send_transfer(data)
    raw = a.data_to_send()
    # first segment: START, transfer id 0, Transfer Length extension (type 1) = 512
    assert raw[:2] == bytes([MessageType.XFER_SEGMENT, FLAG_START]) and raw[2:10] == bytes(8)
    assert raw[10:14] == struct.pack("!I", 13)
    assert raw[14:27] == struct.pack("!BHHQ", 0, 1, 8, 512)
    eb = b.receive_data(raw, 0)
    (got,) = [e for e in eb if isinstance(e, BundleReceived)]
    assert got.data == data and got.transfer_id == tid
    acks = b.data_to_send()
    ea = a.receive_data(acks, 0)
    lengths = [e.length for e in ea]
    assert lengths == [100, 200, 300, 400, 500]  # the final ack waits for the application
    assert not any(e.complete for e in ea)
    b.ack_transfer(tid)
    (done,) = a.receive_data(b.data_to_send(), 0)
    assert done == TransferAcknowledged(tid, 512, True)
    assert a.unacknowledged == ()


def test_single_segment_transfer_has_no_length_extension_and_ids_increment():
    a, b, _, _ = pair()
    assert a.send_transfer(b"x") == 0
    raw = a.data_to_send()
    assert raw == bytes([1, FLAG_START | FLAG_END]) + bytes(8) + bytes(4) + struct.pack("!Q", 1) + b"x"
    assert a.send_transfer(b"") == 1
    eb = b.receive_data(a.data_to_send(), 0)
    assert [e.data for e in [*b.receive_data(raw, 0), *eb] if isinstance(e, BundleReceived)]


def test_final_acks_leave_in_transfer_order():
    a, b, _, _ = pair()
    t0, t1 = a.send_transfer(b"first"), a.send_transfer(b"second")
    b.receive_data(a.data_to_send(), 0)
    b.ack_transfer(t1)
    assert b.data_to_send() == b""  # t0 is not acknowledged yet: t1's ack waits
    b.refuse_transfer(t0, RefuseReason.NO_RESOURCES)
    ev = a.receive_data(b.data_to_send(), 0)
    assert ev == [TransferRefused(t0, RefuseReason.NO_RESOURCES), TransferAcknowledged(t1, 6, True)]
    with pytest.raises(StateError):
        b.ack_transfer(t0)


def test_refusal_stops_unsent_segments():
    a, b, _, _ = pair(cb=SessionConfig(node_id="x", segment_mru=10))
    tid = a.send_transfer(b"y" * 100)
    a.receive_data(struct.pack("!BBQ", MessageType.XFER_REFUSE, RefuseReason.NO_RESOURCES, tid), 0)
    assert a.data_to_send() == b""  # none of the ten segments leaves
    assert a.unacknowledged == ()


def test_transfer_length_mismatch_and_mru_overrun_are_refused():
    b = established_passive(transfer_mru=50)
    ext = struct.pack("!BHHQ", 0, 1, 8, 10)
    seg = struct.pack("!BBQI", 1, FLAG_START | FLAG_END, 7, len(ext)) + ext + struct.pack("!Q", 4) + b"abcd"
    assert b.receive_data(seg, 0) == []
    assert b.data_to_send() == struct.pack("!BBQ", 3, RefuseReason.NOT_ACCEPTABLE, 7)
    big = struct.pack("!BHHQ", 0, 1, 8, 51)  # declares more than our transfer MRU
    seg = struct.pack("!BBQI", 1, FLAG_START, 8, len(big)) + big + struct.pack("!Q", 1) + b"a"
    b.receive_data(seg, 0)
    assert b.data_to_send() == struct.pack("!BBQ", 3, RefuseReason.NOT_ACCEPTABLE, 8)
    # its next segment crossed the refusal on the wire: refused again
    b.receive_data(struct.pack("!BBQQ", 1, FLAG_END, 8, 1) + b"b", 0)
    assert b.data_to_send() == struct.pack("!BBQ", 3, RefuseReason.NOT_ACCEPTABLE, 8)
    assert b.established


def test_unknown_critical_transfer_extension_refused_noncritical_ignored():
    b = established_passive()
    crit = struct.pack("!BHH", 1, 0x7777, 2) + b"zz"
    seg = struct.pack("!BBQI", 1, 3, 0, len(crit)) + crit + struct.pack("!Q", 1) + b"a"
    b.receive_data(seg, 0)
    assert b.data_to_send() == struct.pack("!BBQ", 3, RefuseReason.EXTENSION_FAILURE, 0)
    soft = struct.pack("!BHH", 0, 0x7777, 2) + b"zz"
    seg = struct.pack("!BBQI", 1, 3, 1, len(soft)) + soft + struct.pack("!Q", 1) + b"a"
    (ev,) = b.receive_data(seg, 0)
    assert isinstance(ev, BundleReceived) and ev.extensions == (ExtensionItem(0x7777, b"zz"),)


def test_session_extensions_critical_flag_honoured():
    crit = struct.pack("!BHH", 1, 0x4242, 1) + b"\x00"
    b = Session(active=False)
    b.receive_data(contact_header(False), 0)
    ev = b.receive_data(sess_init(exts=crit), 0)
    assert b.closed and any(isinstance(e, SessionClosed) for e in ev)
    out = b.data_to_send()
    assert out.endswith(bytes([5, 0, SessTermReason.CONTACT_FAILURE]))
    soft = struct.pack("!BHH", 0, 0x4242, 1) + b"\x00"
    b = Session(active=False)
    b.receive_data(contact_header(False), 0)
    (est,) = b.receive_data(sess_init(exts=soft), 0)
    assert est.extensions == (ExtensionItem(0x4242, b"\x00"),)


@pytest.mark.parametrize("head", [b"DTN!\x04\x00", b"GET / HTTP/1.1\r\n", b"dtn?"])
def test_bad_magic_closes_without_sess_term(head):
    b = Session(active=False)
    ev = b.receive_data(head, 0)
    assert b.closed and isinstance(ev[-1], SessionClosed) and "magic" in ev[-1].reason
    assert b.data_to_send() == b""


def test_version_mismatch_passive_replies_then_terminates():
    b = Session(active=False)
    b.receive_data(b"dtn!\x03\x00", 0)
    assert b.data_to_send() == b"dtn!\x04\x00" + bytes([5, 0, SessTermReason.VERSION_MISMATCH])
    assert b.closed


def test_unknown_message_type_gets_msg_reject_and_close():
    b = established_passive()
    ev = b.receive_data(b"\x42rest", 0)
    assert b.data_to_send() == bytes([6, 1, 0x42])
    assert b.closed and isinstance(ev[-1], SessionClosed)


def test_unexpected_messages_rejected():
    b = established_passive()
    b.receive_data(sess_init(), 0)  # SESS_INIT again
    b.receive_data(struct.pack("!BBQQ", 2, 3, 99, 5), 0)  # XFER_ACK of no transfer
    assert b.data_to_send() == bytes([6, 3, 7, 6, 3, 2])
    assert b.established
    (ev,) = b.receive_data(bytes([6, 1, 0x99]), 0)
    assert ev == MessageRejected(1, 0x99)


def test_hostile_lengths_rejected_before_buffering():
    b = established_passive(segment_mru=1000)
    # a segment header claiming 2**63 bytes: the session ends at once, nothing is awaited
    ev = b.receive_data(struct.pack("!BBQIQ", 1, 3, 0, 0, 1 << 63), 0)
    assert b.closed and isinstance(ev[-1], SessionClosed)
    assert b.data_to_send().endswith(bytes([5, 0, SessTermReason.RESOURCE_EXHAUSTION]))
    b = established_passive(max_extension_bytes=100)
    b.receive_data(struct.pack("!BBQI", 1, 3, 0, 0xFFFFFFFF), 0)
    assert b.closed
    c = Session(active=False)
    c.receive_data(contact_header(False), 0)
    c.receive_data(bytes([7]) + struct.pack("!HQQH", 1, 1, 1, 0) + struct.pack("!I", 1 << 31), 0)
    assert c.closed and c.data_to_send().endswith(bytes([5, 0, SessTermReason.CONTACT_FAILURE]))
    with pytest.raises(LimitExceededError):
        a, _, _, _ = pair(cb=SessionConfig(transfer_mru=10))
        a.send_transfer(b"x" * 11)


def test_zero_mru_and_non_utf8_node_id_fail_negotiation():
    for msg in (sess_init(seg=0), sess_init(node=b"\xff\xfe")):
        b = Session(active=False)
        b.receive_data(contact_header(False), 0)
        b.receive_data(msg, 0)
        assert b.closed


def test_tls_negotiated_only_when_both_offer():
    a, b = (Session(active=True, config=SessionConfig(can_tls=True)),
            Session(active=False, config=SessionConfig(can_tls=True)))
    ea, eb = pump(a, b)
    assert ea == [StartTls(server_side=False)] and eb == [StartTls(server_side=True)]
    assert a.state is State.TLS and a.data_to_send() == b""  # nothing until the handshake ends
    a.tls_established(0)
    b.tls_established(0)
    ea, eb = pump(a, b)
    assert ea[0].tls and eb[0].tls
    # one side without TLS: plain session, unless policy requires TLS
    a, b, ea, eb = pair(SessionConfig(can_tls=True), SessionConfig())
    assert isinstance(ea[0], SessionEstablished) and not ea[0].tls
    a, b, ea, eb = pair(SessionConfig(can_tls=True, require_tls=True), SessionConfig())
    assert a.closed and any(isinstance(e, SessionTerminating) for e in eb)
    with pytest.raises(InvalidArgumentError):
        SessionConfig(require_tls=True)


def test_keepalive_and_idle_timeout():
    a, b, _, _ = pair(SessionConfig(keepalive=10), SessionConfig(keepalive=10))
    assert a.tick(5) == [] and a.data_to_send() == b""
    a.tick(10)
    assert a.data_to_send() == bytes([MessageType.KEEPALIVE])
    b.receive_data(bytes([4]), 10)
    assert b.tick(25) == []  # heard from a at t=10, idle limit 20
    ev = b.tick(31)
    assert b.closed and any(isinstance(e, SessionClosed) for e in ev)
    assert b.data_to_send().endswith(bytes([5, 0, SessTermReason.IDLE_TIMEOUT]))


def test_negotiation_timeout():
    b = Session(active=False, config=SessionConfig(contact_timeout=5))
    b.receive_data(b"dtn", 0)
    assert b.tick(4) == []
    assert isinstance(b.tick(6)[-1], SessionClosed)


def test_clean_termination_lets_pending_transfer_finish():
    a, b, _, _ = pair()
    tid = a.send_transfer(b"bundle")
    a.terminate(SessTermReason.UNKNOWN, now=0)
    with pytest.raises(StateError):
        a.send_transfer(b"more")
    ea, eb = pump(a, b)
    assert any(isinstance(e, SessionTerminating) and e.by_peer for e in eb)
    (rx,) = [e for e in eb if isinstance(e, BundleReceived)]
    assert not a.closed  # our transfer is still waiting for its final ack
    eb2 = b.ack_transfer(rx.transfer_id)
    ea, eb = pump(a, b)
    assert TransferAcknowledged(tid, 6, True) in ea
    assert a.closed and b.closed
    # a new transfer from a peer in the ending state is refused with Session Terminating
    a, b, _, _ = pair()
    b.terminate(now=0)
    b.data_to_send()
    b.receive_data(struct.pack("!BBQIQ", 1, 3, 5, 0, 1) + b"z", 0)
    assert b.data_to_send() == struct.pack("!BBQ", 3, RefuseReason.SESSION_TERMINATING, 5)
    assert isinstance(eb2[-1], SessionClosed)  # b was done once its last ack was queued


def test_connection_lost_reports_unacknowledged():
    a, b, _, _ = pair()
    t0 = a.send_transfer(b"one")
    t1 = a.send_transfer(b"two")
    b.receive_data(a.data_to_send(), 0)
    b.ack_transfer(t0)
    a.receive_data(b.data_to_send(), 0)
    (ev,) = a.connection_lost(1)
    assert ev == SessionClosed("connection lost", (t1,))


def test_byte_at_a_time_delivery():
    a, b, _, _ = pair(cb=SessionConfig(segment_mru=7))
    data = bytes(range(50))
    a.send_transfer(data)
    raw = a.data_to_send()
    got = []
    for i in range(len(raw)):
        got += b.receive_data(raw[i:i + 1], 0)
    assert [e.data for e in got if isinstance(e, BundleReceived)] == [data]


def test_refusals_held_behind_an_unresolved_transfer_are_bounded():
    b = established_passive(max_unresolved=8)
    b.receive_data(struct.pack("!BBQIQ", 1, 3, 0, 0, 1) + b"a", 0)  # awaits the application
    crit = struct.pack("!BHH", 1, 0x7777, 0)
    for tid in range(1, 8):  # refused, but held behind transfer 0
        b.receive_data(struct.pack("!BBQI", 1, 3, tid, len(crit)) + crit + struct.pack("!Q", 0), 0)
    assert b.data_to_send() == b"" and b.established
    b.receive_data(struct.pack("!BBQI", 1, 3, 8, len(crit)) + crit + struct.pack("!Q", 0), 0)
    assert b.closed
    assert b.data_to_send().endswith(bytes([5, 0, SessTermReason.RESOURCE_EXHAUSTION]))
