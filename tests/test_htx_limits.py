"""HTX under hostile peers, the fast unit half (the loaded half: test_hostile_htx.py):
admission control, the accept queue, peer text in logs, the limit settings."""
from __future__ import annotations

import asyncio
import logging
import ssl

import pytest

import betanet.htx as htx
from betanet._log import Throttle, escape, safe_repr
from betanet.errors import BetanetError, InvalidArgumentError, LimitExceededError
from betanet.htx import tls
from betanet.htx.admission import Admission
from betanet.htx.protocol import CloseCode
from htx_helpers import aio


# ---- peer text in logs --------------------------------------------------------------------

def test_escape_makes_one_printable_line():
    forged = "bye\n2026-01-01 CRITICAL root: disk wiped\x1b[2J\r\u202eevil\\"
    out = escape(forged)
    assert out.isprintable() and "\n" not in out and "\x1b" not in out
    assert out == "bye\\n2026-01-01 CRITICAL root: disk wiped\\x1b[2J\\r\\u202eevil\\"
    assert escape(out) == out                            # idempotent: safe to layer
    assert escape(b"\xff\x00ok") == "\\xff\\x00ok"         # undecodable bytes stay visible
    assert escape("a" * 300, limit=10) == "a" * 10 + "...(+290 chars)"
    assert escape("plain text") == "plain text"
    assert safe_repr('say "hi"\n') == '"say \\"hi\\"\\n"'


def test_throttle_counts_what_it_suppressed():
    now = [0.0]
    t = Throttle(10.0, clock=lambda: now[0])
    assert t.allow() == 0
    assert t.allow() is None and t.allow() is None
    now[0] = 10.0
    assert t.allow() == 2


async def _plain_server(handler, **kw):
    priv = htx.generate_private_key()
    server = await htx.serve(handler, "127.0.0.1", 0, priv, transport="plain", **kw)
    return server, htx.public_key(priv)


@aio(30)
async def test_peer_close_reason_cannot_forge_log_lines(caplog):
    ended = asyncio.Event()

    async def handler(conn):
        try:
            await conn.accept_stream()
        except BetanetError:
            pass
        ended.set()

    server, pub = await _plain_server(handler)
    reason = "bye\nCRITICAL:root:forged line\x1b[31m"
    try:
        with caplog.at_level(logging.DEBUG, logger="betanet"):
            conn = await htx.connect("127.0.0.1", server.port, pub, transport="plain")
            await conn.close(CloseCode.PROTOCOL_ERROR, reason)
            await asyncio.wait_for(ended.wait(), 10)
            await asyncio.sleep(0.05)
        srv_conn_logs = [r.getMessage() for r in caplog.records if "peer closed" in r.getMessage()]
        assert srv_conn_logs, "the server logs the peer's close"
        for r in caplog.records:
            msg = r.getMessage()
            assert "\n" not in msg and "\x1b" not in msg, msg
        assert any("bye\\nCRITICAL:root:forged line\\x1b[31m" in m for m in srv_conn_logs)
    finally:
        server.close()
        await server.wait_closed()


# ---- the accept queue ----------------------------------------------------------------------

@aio(30)
async def test_reset_streams_leave_the_accept_queue_and_return_their_window():
    go = asyncio.Event()
    got = asyncio.get_running_loop().create_future()
    seen = {}

    async def handler(conn):
        await go.wait()                            # a slow application
        seen["queue"] = conn.stats()["accept_queue"]
        st = await conn.accept_stream()
        got.set_result((st.id, await st.readexactly(5)))
        await asyncio.sleep(0.2)

    # The server grants only the initial 64 KiB connection window: 40 streams of 4 KiB
    # reset before they are accepted only fit if their data is credited back.
    cfg = htx.HTXConfig(connection_window=65535, stream_window=65535)
    server, pub = await _plain_server(handler, config=cfg)
    try:
        conn = await htx.connect("127.0.0.1", server.port, pub, transport="plain")
        for _ in range(40):
            st = await conn.open_stream()
            st.write(b"z" * 4096)
            await asyncio.wait_for(st.drain(), 5)
            while st._wq_bytes:                    # sent, not only queued
                await asyncio.sleep(0.001)
            st.reset()
        last = await conn.open_stream()
        last.write(b"hello")
        await asyncio.sleep(0.3)
        srv_conn = next(iter(server.connections))
        stats = srv_conn.stats()
        assert stats["accept_queue"] == 1 and stats["streams_dropped_unaccepted"] == 40
        go.set()
        assert await asyncio.wait_for(got, 10) == (last.id, b"hello")
        assert seen["queue"] == 1
        await conn.close()
    finally:
        server.close()
        await server.wait_closed()


# ---- admission control (sans-IO) -----------------------------------------------------------

def test_admission_sheds_the_oldest_pending_handshake_of_the_same_host_first():
    a = Admission(max_connections=100, max_handshakes=10, max_handshakes_per_host=2)
    shed = []
    for i in range(3):
        assert a.admit(("a", i), "10.0.0.1", lambda i=i: shed.append(("a", i)))
    assert shed == [("a", 0)] and a.handshakes_from("10.0.0.1") == 2
    assert a.admit("b", "10.0.0.2", lambda: shed.append("b"))
    assert shed == [("a", 0)]                           # another host is not affected
    a.established(("a", 1))
    assert a.admit(("a", 3), "10.0.0.1", lambda: shed.append(("a", 3)))
    assert shed == [("a", 0)]                           # an established one frees its slot
    assert a.connections == 4 and a.handshakes == 3
    a.release(("a", 1))
    a.release(("a", 1))                                 # idempotent
    a.release(("a", 0))                                 # shed earlier: nothing left
    assert a.connections == 3 and a.counters["shed"] == 1


def test_admission_global_caps():
    a = Admission(max_connections=3, max_handshakes=2, max_handshakes_per_host=10)
    shed = []
    for i in range(3):
        assert a.admit(i, f"h{i}", lambda i=i: shed.append(i))
    assert shed == [0] and a.handshakes == 2            # the oldest pending gave way
    for k in (1, 2):
        a.established(k)
    assert a.admit(3, "h3", lambda: shed.append(3))
    assert a.admit(4, "h4", lambda: shed.append(4))     # at max_connections: shed pending 3
    assert shed == [0, 3]
    a.established(4)
    assert not a.admit(5, "h5", lambda: shed.append(5))  # all established: refused
    assert a.counters == {"admitted": 5, "refused": 1, "shed": 2} and a.connections == 3


@pytest.mark.parametrize("kw", [{"max_connections": 0}, {"max_handshakes": -1},
                                {"max_handshakes_per_host": 1.5}, {"close_grace": -1.0},
                                {"max_control_backlog": 0}])
@aio(10)
async def test_limit_settings_are_checked(kw):
    with pytest.raises(InvalidArgumentError):
        await htx.serve(lambda c: None, "127.0.0.1", 0, htx.generate_private_key(), transport="plain", **kw)


@aio(30)
async def test_connection_cap_refuses_when_all_slots_are_established():
    async def hold(conn):
        await asyncio.sleep(30)

    server, pub = await _plain_server(hold, max_connections=2)
    try:
        a = await htx.connect("127.0.0.1", server.port, pub, transport="plain")
        b = await htx.connect("127.0.0.1", server.port, pub, transport="plain")
        with pytest.raises(BetanetError):
            await htx.connect("127.0.0.1", server.port, pub, transport="plain", handshake_timeout=3)
        assert server.stats()["refused"] == 1 and server.stats()["connections"] == 2
        await a.close()
        for _ in range(100):
            if server.stats()["connections"] < 2:
                break
            await asyncio.sleep(0.02)
        c = await htx.connect("127.0.0.1", server.port, pub, transport="plain")   # a slot again
        for x in (b, c):
            await x.close()
    finally:
        server.close()
        await server.wait_closed()


@aio(30)
async def test_quic_client_that_never_opens_the_htx_stream_times_out(tmp_path):
    from aioquic.asyncio import connect as quic_connect
    from aioquic.quic.configuration import QuicConfiguration

    cert, key = tls.write_self_signed(tmp_path)
    errors = []
    server = await htx.serve(lambda c: None, "127.0.0.1", 0, htx.generate_private_key(), transport="quic",
                             certfile=cert, keyfile=key, handshake_timeout=0.5,
                             on_handshake_error=errors.append)
    try:
        qc = QuicConfiguration(is_client=True, alpn_protocols=[htx.ALPN], verify_mode=ssl.CERT_NONE)
        async with quic_connect("127.0.0.1", server.port, configuration=qc) as client:
            assert server.stats()["handshakes"] == 1
            for _ in range(100):
                if errors:
                    break
                await asyncio.sleep(0.05)
            assert errors and isinstance(errors[0], htx.HTXTimeoutError)
            await client.wait_closed()
        for _ in range(100):                      # released when QUIC reports the end
            if server.stats()["connections"] == 0:
                break
            await asyncio.sleep(0.05)
        assert server.stats()["connections"] == 0
    finally:
        server.close()
        await server.wait_closed()


# ---- replies a peer provokes but does not read ---------------------------------------------

def _wired(**kw):
    """A server-side asyncio Connection over a fake transport, handshaken with a sans-IO client."""
    from betanet.htx.aio import Connection
    priv = htx.generate_private_key()
    out, calls = [], []
    server = Connection(htx.HTXConnection(client=False, static_private_key=priv), out.append,
                        lambda: calls.append("close"), transport="fake", abort=lambda: calls.append("abort"),
                        **kw)
    client = htx.HTXConnection(client=True, remote_static_public=htx.public_key(priv))
    client.initiate_connection()
    while not (client.handshake_complete and server.htx.handshake_complete):
        server._data_received(client.data_to_send())
        client.receive_data(b"".join(out))
        out.clear()
    return server, client, out, calls


def _ping_flood(server, client, n):
    for _ in range(n):
        client.ping()
    server._data_received(client.data_to_send())


@aio(10)
async def test_control_backlog_pauses_reading_until_the_transport_drains():
    paused = []
    server, client, out, calls = _wired(max_control_backlog=1000, pause_reading=lambda: paused.append(1),
                                        resume_reading=lambda: paused.append(0))
    _ping_flood(server, client, 20)               # transport not paused: replies are not a backlog
    assert not paused and server.stats()["write_backlog"] == 0
    server._pause()                               # the peer stopped reading
    _ping_flood(server, client, 50)               # ~1.5 KB of replies queued
    assert paused == [1] and server.stats()["reading_paused"] and server.counters["read_pauses"] == 1
    server._resume()                              # drained
    assert paused == [1, 0] and server.stats()["write_backlog"] == 0 and not server.closed
    server._pause()
    _ping_flood(server, client, 50)
    _ping_flood(server, client, 50)               # data already read keeps coming: past 2x
    assert server.closed and server.counters["backlog_aborts"] == 1 and "abort" in calls
    assert isinstance(server.error, LimitExceededError)


@aio(10)
async def test_control_backlog_aborts_where_reading_cannot_pause():
    server, client, out, calls = _wired(max_control_backlog=1000)    # like QUIC: no pause_reading
    server._pause()
    _ping_flood(server, client, 50)
    assert server.closed and server.counters["backlog_aborts"] == 1 and "abort" in calls
    assert isinstance(server.error, LimitExceededError)
