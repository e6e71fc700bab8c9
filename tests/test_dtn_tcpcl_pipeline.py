"""Pipelined TCPCLv4 sending: many transfers in flight under a window, acks matched in
order, outcomes reported without a future per bundle, and the retry-on-reconnect guarantee
kept by TcpclClient when a session drops in the middle of a pipeline."""
from __future__ import annotations

import asyncio
import hashlib
import socket

import pytest

from betanet.dtn.store import BundleStore
from betanet.dtn.tcpcl.aio import SessionClosedError, TcpclClient, open_session, serve
from betanet.dtn.tcpcl.events import TransferAcknowledged
from betanet.dtn.tcpcl.protocol import Session, SessionConfig
from betanet.errors import InvalidArgumentError, LimitExceededError


def run(coro, timeout=60):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def test_ack_transfers_releases_acks_in_transfer_order():
    a = Session(active=True, config=SessionConfig(node_id="ipn:1.0"))
    b = Session(active=False, config=SessionConfig(node_id="ipn:2.0"))
    for _ in range(4):
        b.receive_data(a.data_to_send(), 0)
        a.receive_data(b.data_to_send(), 0)
    tids = [a.send_transfer(bytes([i]) * 10) for i in range(3)]
    b.receive_data(a.data_to_send(), 0)
    b.ack_transfers([tids[2], tids[1]])
    assert b.data_to_send() == b""  # held behind the first, not yet processed
    b.ack_transfers([tids[0]])
    ev = a.receive_data(b.data_to_send(), 0)
    assert ev == [TransferAcknowledged(t, 10, True) for t in tids]
    assert a.unacknowledged == ()


def test_pipelined_send_respects_window_and_delivers_in_order():
    async def main():
        got = []
        server = await serve("127.0.0.1", 0, on_bundle=got.append)  # a plain function
        conn = await open_session("127.0.0.1", server.port, send_window=8)
        bundles = [i.to_bytes(4, "big") * 50 for i in range(500)]
        peak = 0
        for b in bundles:
            await conn.send(b, wait="queued")
            peak = max(peak, conn.in_flight)
        assert 1 < peak <= 8  # pipelined, and never more than the window
        await conn.flush()
        assert conn.in_flight == 0 and conn.bundles_sent == 500
        assert got == bundles
        with pytest.raises(InvalidArgumentError):
            await conn.send(b"x", wait="later")
        await conn.close()
        await server.close()
    run(main())


def test_refusal_by_a_plain_handler_reaches_the_sender():
    async def main():
        def on_bundle(data: bytes) -> None:
            if data == b"too big":
                raise LimitExceededError("store full")

        server = await serve("127.0.0.1", 0, on_bundle=on_bundle)
        conn = await open_session("127.0.0.1", server.port)
        with pytest.raises(LimitExceededError):
            await conn.send(b"too big")
        await conn.send(b"fine")  # the session goes on
        await conn.close()
        await server.close()
    run(main())


def test_client_pipeline_survives_a_cut_session_exactly_once(tmp_path):
    """300 bundles queued without waiting; the receiver's first session is cut after 40
    stored bundles (their acks partly unsent). flush() returns only when every bundle is
    acknowledged; the store's dedup makes each arrive at the application once."""
    async def main():
        store = BundleStore(tmp_path / "rx.db")
        delivered = []
        sessions = []

        async def on_bundle(data: bytes):
            bid = hashlib.sha256(data).hexdigest()
            if await store.put(bid, data, destination="ipn:2.0", source="ipn:1.0",
                               expires_at=1e12):
                delivered.append(data)
            if len(sessions) == 1 and len(delivered) == 40:
                sessions[0].abort()

        async def handler(conn):
            sessions.append(conn)

        server = await serve("127.0.0.1", 0, config=SessionConfig(node_id="ipn:2.0"),
                             on_bundle=on_bundle, handler=handler)
        client = TcpclClient("127.0.0.1", server.port, window=64,
                             config=SessionConfig(node_id="ipn:1.0"))
        bundles = [i.to_bytes(4, "big") * 100 for i in range(300)]
        for b in bundles:
            await client.send(b, wait="queued")
            assert client.in_flight <= 64
        await client.flush()
        assert client.in_flight == 0 and not client.undelivered
        assert client.sessions_opened == 2 and client.retried >= 1
        assert sorted(delivered) == sorted(bundles)  # all, each exactly once
        await client.close()
        await server.close()
        await store.close()
    run(main())


def test_client_reports_bundles_it_could_not_deliver():
    async def main():
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = TcpclClient("127.0.0.1", port, attempts=2, backoff=0.01)
        await client.send(b"one", wait="queued")
        await client.send(b"two", wait="queued")
        with pytest.raises(SessionClosedError):
            await client.flush()
        assert client.undelivered == [b"one", b"two"]  # reported, not silently lost
        with pytest.raises(SessionClosedError):
            await client.send(b"three")  # a waiting send fails the same way
        await client.close()
    run(main())


def test_client_holds_at_most_max_bytes_of_unacknowledged_bundles():
    async def main():
        release = asyncio.Event()
        got = []

        async def on_bundle(data):
            await release.wait()  # acks withheld until released
            got.append(data)

        server = await serve("127.0.0.1", 0, on_bundle=on_bundle)
        client = TcpclClient("127.0.0.1", server.port, window=100, max_bytes=10_000)
        for i in range(3):
            await client.send(bytes([i]) * 4000, wait="queued")
        assert client.in_flight_bytes == 12_000
        fourth = asyncio.ensure_future(client.send(b"\x03" * 4000, wait="queued"))
        await asyncio.sleep(0.1)
        assert not fourth.done()  # held back: 12 000 bytes unacknowledged >= 10 000
        release.set()
        await fourth
        await client.flush()
        assert got == [bytes([i]) * 4000 for i in range(4)] and client.in_flight_bytes == 0
        await client.close()
        await server.close()
    run(main())


def test_a_bundle_the_link_cannot_carry_fails_at_once_and_does_not_block_flush():
    async def main():
        got = []
        server = await serve("127.0.0.1", 0, on_bundle=got.append,
                             config=SessionConfig(node_id="ipn:2.0", transfer_mru=1000))
        client = TcpclClient("127.0.0.1", server.port)
        await client.send(b"small")
        with pytest.raises(LimitExceededError):  # over the peer's transfer MRU
            await client.send(b"x" * 2000, wait="queued")
        await client.send(b"after", wait="queued")
        await asyncio.wait_for(client.flush(), 10)
        assert got == [b"small", b"after"] and client.in_flight == 0
        await client.close()
        await server.close()
    run(main())
