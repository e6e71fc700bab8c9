"""The convergence-layer interface over TCPCLv4, MTCP and UDP: send, receive, metrics."""
from __future__ import annotations

import asyncio

import pytest

from betanet.dtn.cla import ConvergenceLayer, LinkMetrics, MtcpLink, TcpclLink, UdpLink
from betanet.dtn.mtcp import serve_mtcp
from betanet.dtn.tcpcl.aio import serve
from betanet.dtn.tcpcl.protocol import SessionConfig
from betanet.errors import InvalidArgumentError, LimitExceededError


def run(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def test_tcpcl_link_sends_receives_and_measures():
    async def main():
        got = []

        async def on_bundle(b):
            got.append(b)

        async def handler(conn):
            await conn.send_bundle(b"from server")

        server = await serve("127.0.0.1", 0, on_bundle=on_bundle, handler=handler)
        link: ConvergenceLayer = TcpclLink("127.0.0.1", server.port,
                                           config=SessionConfig(node_id="ipn:1.0"))
        assert not link.up and link.acknowledged
        async with link:
            assert link.up
            for i in range(20):
                await link.send(bytes([i]) * 100)
            assert got == [bytes([i]) * 100 for i in range(20)]  # acknowledged = received
            back = await asyncio.wait_for(link.received().__anext__(), 5)
            assert back == b"from server"
            m = link.metrics()
            assert isinstance(m, LinkMetrics) and m.up and m.bundles_sent == 20
            assert m.rtt is not None and m.rtt > 0 and m.throughput > 0
            assert m.bytes_sent > 2000 and m.bundles_received == 1
            kw = m.observe_kwargs()
            assert kw["latency_ms"] > 0 and kw["failure"] == 0.0 and kw["capacity"] > 0
        assert not link.up
        await server.close()
    run(main())


def test_tcpcl_link_survives_a_dropped_session():
    async def main():
        got = []
        conns = []

        async def handler(conn):
            conns.append(conn)

        async def on_bundle(b):
            got.append(b)

        server = await serve("127.0.0.1", 0, on_bundle=on_bundle, handler=handler)
        link = TcpclLink("127.0.0.1", server.port)
        await link.open_contact()
        await link.send(b"one")
        conns[0].abort()
        await link.send(b"two")  # sent on a new session (retried if it raced the cut)
        assert got == [b"one", b"two"] and link.up
        assert link.sessions_opened == 2
        m = link.metrics()
        assert m.bundles_sent == 2 and m.bytes_sent > 2 * 20  # summed over both sessions
        await link.close_contact()
        await server.close()
    run(main())


def test_mtcp_link():
    async def main():
        got = []

        async def on_bundle(b):
            got.append(b)

        server = await serve_mtcp("127.0.0.1", 0, on_bundle=on_bundle)
        link = MtcpLink("127.0.0.1", server.port)
        assert not link.acknowledged
        async with link:
            for i in range(5):
                await link.send(bytes([i]) * 10)
            for _ in range(200):
                if len(got) == 5:
                    break
                await asyncio.sleep(0.01)
            assert got == [bytes([i]) * 10 for i in range(5)]
            m = link.metrics()
            assert m.up and m.bundles_sent == 5 and m.bytes_sent == 5 * 11
        await server.close()
    run(main())


def test_udp_link_one_bundle_per_datagram():
    async def main():
        a = UdpLink("127.0.0.1", 9, max_bundle=1200)
        await a.open_contact()
        b = UdpLink("127.0.0.1", a.local_address[1])
        await b.open_contact()
        a.peer = ("127.0.0.1", b.local_address[1])
        a._peer_addr = a.peer
        await b.send(b"hello a")
        await a.send(b"x" * 1200)
        with pytest.raises(LimitExceededError):
            await a.send(b"x" * 1201)
        assert await asyncio.wait_for(a.received().__anext__(), 5) == b"hello a"
        assert await asyncio.wait_for(b.received().__anext__(), 5) == b"x" * 1200
        # a stranger's datagram is dropped and counted
        stranger = UdpLink("127.0.0.1", a.local_address[1])
        await stranger.send(b"spoof")
        await asyncio.sleep(0.05)
        assert a.dropped == 1 and a.metrics().bundles_received == 1
        assert a.metrics().failures == 1
        for link in (a, b, stranger):
            await link.close_contact()
        with pytest.raises(InvalidArgumentError):
            UdpLink("127.0.0.1", 1, max_bundle=70000)
    run(main())
