"""Sans-IO HTXConnection: handshake, streams, flow control, key updates, errors (no sockets)."""
from __future__ import annotations

import pytest

import betanet.htx as htx
from betanet.htx import events as ev
from betanet.htx.protocol import CloseCode


pytestmark = pytest.mark.usefixtures("no_leaks")   # conftest.py: libbetanet leak check

class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def make_pair(client_cfg=None, server_cfg=None, clock=None):
    priv = htx.generate_private_key()
    clock = clock or Clock()
    c = htx.HTXConnection(client=True, remote_static_public=htx.public_key(priv), config=client_cfg, clock=clock)
    s = htx.HTXConnection(client=False, static_private_key=priv, config=server_cfg, clock=clock)
    c.initiate_connection()
    pump(c, s)
    assert c.handshake_complete and s.handshake_complete
    return c, s


def pump(a, b, events=None):
    """Move bytes both ways until quiet; collect (side, event)."""
    events = [] if events is None else events
    while True:
        moved = False
        for x, y, name in ((a, b, "b"), (b, a, "a")):
            data = x.data_to_send()
            if data:
                moved = True
                events += [(name, e) for e in y.receive_data(data)]
        if not moved:
            return events


def test_handshake_and_stream_exchange():
    c, s = make_pair()
    assert s.remote_static_public is not None and c.handshake_hash == s.handshake_hash
    sid = c.open_stream()
    assert sid == 1 and c.open_stream() == 3
    c.send_data(1, b"hello", end_stream=True)
    evs = pump(c, s)
    kinds = [type(e) for side, e in evs if side == "b"]
    assert ev.StreamOpened in kinds and ev.StreamData in kinds and ev.StreamEnded in kinds
    ssid = s.open_stream()
    assert ssid == 2
    s.send_data(2, b"x")
    assert any(isinstance(e, ev.StreamData) and e.stream_id == 2 for _, e in pump(c, s))


def test_flow_control_windows_and_updates():
    cfg = htx.HTXConfig(stream_window=65535, connection_window=65535)
    c, s = make_pair(cfg, cfg)
    sid = c.open_stream()
    assert c.local_flow_control_window(sid) == 65535
    c.send_data(sid, b"a" * 65535)
    with pytest.raises(htx.FlowControlError):
        c.send_data(sid, b"a")
    evs = pump(c, s)
    got = sum(len(e.data) for _, e in evs if isinstance(e, ev.StreamData))
    assert got == 65535
    s.acknowledge_received_data(30000, sid)          # below half: no update yet
    pump(c, s)
    assert c.local_flow_control_window(sid) == 0
    s.acknowledge_received_data(3000, sid)           # 33000 >= half of 65535
    evs = pump(c, s)
    assert any(isinstance(e, ev.WindowUpdated) for _, e in evs)
    assert c.local_flow_control_window(sid) == 33000


def test_window_overrun_is_a_flow_control_error():
    cfg = htx.HTXConfig(stream_window=65535, connection_window=65535)
    c, s = make_pair(cfg, cfg)
    sid = c.open_stream()
    c._streams[sid].send_window = 10**9            # a misbehaving sender ignores the window
    c._send_window = 10**9
    c.send_data(sid, b"z" * 70000)
    evs = pump(c, s)
    closed = [e for side, e in evs if isinstance(e, ev.ConnectionClosed)]
    assert closed[0].code == CloseCode.FLOW_CONTROL_ERROR and closed[0].error is not None
    assert sum(len(e.data) for side, e in evs if side == "b" and isinstance(e, ev.StreamData)) <= 65535
    assert any(side == "a" and e.remote and e.code == CloseCode.FLOW_CONTROL_ERROR
               for side, e in evs if isinstance(e, ev.ConnectionClosed))


def test_stream_parity_violation():
    c, s = make_pair()
    # The client forges a frame on an even (server-parity) id the server never opened.
    from betanet.htx.connection import _Stream
    c._streams[4] = _Stream(4)
    c.send_data(4, b"x")
    evs = pump(c, s)
    closed = [e for side, e in evs if side == "b" and isinstance(e, ev.ConnectionClosed)]
    assert closed and closed[0].code == CloseCode.STREAM_STATE_ERROR


def test_ping_reset_and_close():
    c, s = make_pair()
    token = c.ping()
    evs = pump(c, s)
    assert ("b", ev.PingReceived(token)) in evs and ("a", ev.PingAcked(token)) in evs
    sid = c.open_stream()
    c.send_data(sid, b"abc")
    c.reset_stream(sid, 7)
    evs = pump(c, s)
    assert ("b", ev.StreamReset(sid, 7)) in evs
    s.close(CloseCode.NO_ERROR, "done")
    evs = pump(c, s)
    assert ("a", ev.ConnectionClosed(0, "done", True, None)) in evs
    with pytest.raises(htx.ConnectionClosedError):
        c.send_data(1, b"x")


@pytest.mark.parametrize("threshold", ["frames", "bytes", "time"])
def test_key_update_each_threshold_both_directions(threshold):
    cfg = {"frames": htx.HTXConfig(rekey_frames=16), "bytes": htx.HTXConfig(rekey_bytes=40_000),
           "time": htx.HTXConfig(rekey_seconds=2.0)}[threshold]
    clock = Clock()
    c, s = make_pair(cfg, cfg, clock)
    a = c.open_stream()
    received = {"a": bytearray(), "b": bytearray()}
    updates = {"a": 0, "b": 0}
    def handle(evs):
        for side, e in evs:
            if isinstance(e, ev.StreamData):
                received[side] += e.data
                (s if side == "b" else c).acknowledge_received_data(len(e.data), e.stream_id)
            elif isinstance(e, ev.KeyUpdated):
                updates[side] += 1

    for i in range(60):
        clock.t += 0.5
        c.send_data(a, bytes([i % 256]) * 3000)
        if i == 0:
            handle(pump(c, s))     # the server learns of the stream
        s.send_data(a, bytes([255 - i % 256]) * 3000)
        handle(pump(c, s))
    assert updates["a"] >= 3 and updates["b"] >= 3
    assert c.stats["send_epoch"] == updates["b"] and s.stats["send_epoch"] == updates["a"]
    assert bytes(received["b"]) == b"".join(bytes([i % 256]) * 3000 for i in range(60))
    assert bytes(received["a"]) == b"".join(bytes([255 - i % 256]) * 3000 for i in range(60))


def test_wrong_server_key_fails_handshake():
    priv = htx.generate_private_key()
    c = htx.HTXConnection(client=True, remote_static_public=htx.public_key(htx.generate_private_key()))
    s = htx.HTXConnection(client=False, static_private_key=priv)
    c.initiate_connection()
    evs = s.receive_data(c.data_to_send())
    assert isinstance(evs[-1], ev.ConnectionClosed)
    from betanet.errors import AuthenticationError
    assert isinstance(evs[-1].error, AuthenticationError)
    assert s.data_to_send() == b""       # nothing is answered to a failed handshake


def test_truncated_frame_at_connection_end():
    cfg = htx.HTXConfig(stream_window=65535)       # no WINDOW_UPDATE after the data frame
    c, s = make_pair(cfg, cfg)
    sid = c.open_stream()
    c.send_data(sid, b"q" * 1000)
    data = c.data_to_send()
    evs = s.receive_data(data[:-3])
    assert not any(isinstance(e, ev.StreamData) and len(e.data) == 1000 for e in evs)
    closed = s.connection_lost()
    from betanet.errors import MalformedError
    assert isinstance(closed[0].error, MalformedError)


def test_handshake_message_too_long():
    priv = htx.generate_private_key()
    s = htx.HTXConnection(client=False, static_private_key=priv)
    evs = s.receive_data(b"\xff\xff" + b"\x00" * 10)
    assert isinstance(evs[-1], ev.ConnectionClosed) and evs[-1].error is not None


def test_authenticated_but_hostile_frames_never_crash():
    """A peer with valid keys sends random frames (types, ids, plaintexts): the receiver
    only ever returns events, ends with ConnectionClosed on a violation, never raises."""
    import random

    from betanet._native import htx as n
    rng = random.Random(99)
    for trial in range(300):
        c, s = make_pair()
        for _ in range(rng.randrange(1, 12)):
            ftype = rng.randrange(5)
            sid = rng.choice([0, 1, 2, 3, 4, 5, 7, 2**20, 2**62 - 1]) if ftype in (0, 4) else 0
            kind = rng.randrange(4)
            if ftype == 0:
                flags = rng.choice([0, 1, 2, 3, 4, 0x80])
                body = bytes([flags]) + rng.randbytes(rng.choice([0, 1, 2, 5, 70000 % 16000]))
            elif ftype == 1:
                body = rng.randbytes(rng.choice([9, 8, 10, 0]))
            elif ftype == 2:
                body = rng.randbytes(rng.choice([0, 1, 2, 40]))
            elif ftype == 3:
                body = b"" if kind else b"x"
            else:
                body = rng.choice([n.varint_encode(rng.randrange(1 << 62)), b"", b"\x00", b"\x40", rng.randbytes(3)])
            try:
                c._out.append(c._session.seal(ftype, sid, body, 0))
            except Exception:
                continue
        try:
            evs = s.receive_data(c.data_to_send())
        except Exception as exc:           # pragma: no cover - the failure this test looks for
            raise AssertionError(f"trial {trial}: receive_data raised {exc!r}") from exc
        closed = [e for e in evs if isinstance(e, ev.ConnectionClosed)]
        assert len(closed) <= 1 and (not closed or evs[-1] is closed[0])
        assert s.receive_data(b"more") == [] if s.closed else True


def test_streams_beyond_the_limit_are_refused():
    cfg = htx.HTXConfig(max_streams=2)
    c, s = make_pair(None, cfg)
    ids = [c.open_stream() for _ in range(3)]
    for sid in ids:
        c.send_data(sid, b"data")
    evs = pump(c, s)
    opened = [e.stream_id for side, e in evs if side == "b" and isinstance(e, ev.StreamOpened)]
    assert opened == ids[:2]
    assert ("a", ev.StreamReset(ids[2], CloseCode.REFUSED_STREAM)) in evs
    assert not any(isinstance(e, ev.StreamData) and e.stream_id == ids[2] for side, e in evs)
    # once one finishes in both directions, a new stream is accepted again
    c.end_stream(ids[0])
    s.end_stream(ids[0])
    pump(c, s)
    new = c.open_stream()
    c.send_data(new, b"x")
    assert any(side == "b" and isinstance(e, ev.StreamOpened) and e.stream_id == new for side, e in pump(c, s))


def test_any_buffer_is_accepted():
    import numpy as np
    c, s = make_pair()
    sid = c.open_stream()
    arr = np.arange(1000, dtype=np.int32)
    c.send_data(sid, arr)
    c.send_data(sid, bytearray(b"tail"), end_stream=True)
    data = b"".join(e.data for side, e in pump(c, s) if isinstance(e, ev.StreamData))
    assert data == arr.tobytes() + b"tail"
