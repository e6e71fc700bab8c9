"""Hostile load against a real mixnode on loopback (issue 9, defects 1-4).

Each test runs one bounded attack (a few thousand packets or connections, a few seconds)
and asserts both the bound (held packets, send queues, links, peak-RSS growth, counted
drops) and that a legitimate client is still served during the attack. The limits are
documented in docs/limits.md ("Mixnode")."""
from __future__ import annotations

import asyncio
import logging
import secrets

import pytest

from betanet import htx, mix, sphinx
from betanet.mix import (FRAME_DELIVER, FRAME_PACKET, Descriptor, Directory, Mixnode, TcpTransport,
                         encode_body, encode_frame)
from betanet.sphinx import Geometry, KeyPair, NodeInfo, Route
from hostile import MiB, peak_rss_bytes, reset_peak_rss, rss_bytes
from mix_helpers import eventually, run

pytestmark = pytest.mark.hostile

G = Geometry()
MAX_DELAY = 0xFFFFFFFF                    # ~49.7 days, the longest a Sphinx header can ask


class Net:
    """Mixnode ``a`` under attack, mixnode ``b`` behind it, messages for both apps recorded."""

    def __init__(self, **a_options) -> None:
        self.directory = Directory()
        self.got: dict[str, list[bytes]] = {"a": [], "b": []}
        transport = a_options.pop("transport", None) or TcpTransport()
        self.a = Mixnode(secrets.token_bytes(32), KeyPair.generate(), self.directory, transport=transport,
                         on_message=lambda m: self.got["a"].append(m.data), **a_options)
        self.b = Mixnode(secrets.token_bytes(32), KeyPair.generate(), self.directory,
                         on_message=lambda m: self.got["b"].append(m.data))

    def hop(self, name: str) -> NodeInfo:
        n = getattr(self, name)
        return NodeInfo(n.node_id, n.key.public_key)

    def packet(self, route: list[str], delays: list[int], dst: bytes | None = None,
               data: bytes = b"", kind: int = mix.KIND_DATA) -> bytes:
        dst = dst or getattr(self, route[-1]).node_id
        return sphinx.create_packet(G, 1, Route([self.hop(h) for h in route], delays), dst,
                                    encode_body(G, kind, data))

    async def __aenter__(self) -> Net:
        for n in (self.a, self.b):
            await n.start()
            self.directory.add(n.descriptor())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.a.close()
        await self.b.close()


async def flood(address, packets, frame_type: int = FRAME_PACKET) -> asyncio.StreamWriter:
    """Send ``packets`` on one new connection, in chunks; returns the open writer."""
    _, w = await asyncio.open_connection(*address)
    for i in range(0, len(packets), 100):
        w.write(b"".join(encode_frame(frame_type, p) for p in packets[i:i + 100]))
        await w.drain()
    return w


async def serve_legit(net: Net, n: int = 10, route: tuple[str, ...] = ("a",)) -> None:
    """A legitimate sender on its own link: ``n`` messages to a's application, all arrive."""
    first = net.directory.get(getattr(net, route[0]).node_id)
    legit = mix.make_transport(first.transport)
    want = {b"legit %d" % i for i in range(n)}
    for d in sorted(want):
        await legit.send_to(first, FRAME_PACKET, net.packet(list(route), [5] * len(route),
                                                            net.a.node_id, d))
    await eventually(lambda: want <= set(net.got["a"]), timeout=15)
    await legit.close()


def test_maximal_delays_are_capped_and_held_slots_are_shared_between_links():
    # Defect 1: packets asking for weeks of delay pinned every held slot.
    async def main():
        async with Net(mean_delay_ms=1000, held_limit=200) as net:
            a = net.a
            assert a.protocol.max_delay_ms == 5000          # 5 x the mean
            over = [net.packet(["a", "b"], [MAX_DELAY, 0]) for _ in range(150)]
            at_cap = [net.packet(["a", "b"], [4900, 0], data=b"attacker") for _ in range(300)]
            base = rss_bytes()
            reset_peak_rss()
            w = await flood(a.address, over + at_cap)
            await eventually(lambda: a.counters.processed + a.counters.dropped["queue-full"] >= 450)
            assert a.counters.dropped["delay-over-cap"] == 150
            assert len(a.protocol.held) == 200 and a.counters.dropped["held-full"] == 100
            # the store is full of the attacker's packets; an honest link still gets through
            await serve_legit(net, 10)
            assert a.counters.dropped["held-evicted"] == 10 and len(a.protocol.held) <= 200
            assert peak_rss_bytes() - base < 40 * MiB
            w.close()

    run(main())


def test_deliver_flood_and_burst_to_a_stalled_endpoint_stay_bounded():
    # Defect 2: deliver/reply packets were not counted in held_limit, and every released
    # packet waited in its own send task.
    async def main():
        stalled = []

        async def never_reads(reader, writer):
            stalled.append(writer)
        server = await asyncio.start_server(never_reads, "127.0.0.1", 0)
        async with Net(mean_delay_ms=200, held_limit=300, out_queue_limit=50, out_total_limit=200) as net:
            a = net.a
            victim = secrets.token_bytes(32)
            net.directory.add(Descriptor(victim, server.sockets[0].getsockname()[:2]))
            held = [net.packet(["a"], [900], victim) for _ in range(1000)]
            burst = [net.packet(["a"], [0], victim, b"x" * 1500) for _ in range(1500)]
            base = rss_bytes()
            reset_peak_rss()
            tasks_before = len(asyncio.all_tasks())
            w = await flood(a.address, held)
            await eventually(lambda: a.counters.processed >= 1000 - a.counters.dropped["queue-full"])
            assert len(a.protocol.held) <= 300 and a.counters.dropped["held-full"] >= 700
            await serve_legit(net, 5)                   # during the attack
            w.write(b"".join(encode_frame(FRAME_PACKET, p) for p in burst))
            await w.drain()
            await eventually(lambda: a.counters.processed >= 2500)
            await asyncio.sleep(1.0)                    # the held deliveries come due
            assert a.out.pending <= 200 and a.counters.dropped["out-queue-full"] > 0
            assert len(asyncio.all_tasks()) <= tasks_before + 10     # no task per packet
            await serve_legit(net, 5)
            assert peak_rss_bytes() - base < 60 * MiB
            w.close()
        for s in stalled:
            s.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_idle_tcp_links_are_evicted_when_full_and_time_out(caplog):
    # Defect 3: 1 024 silent connections locked every later link out, forever.
    async def main():
        t = TcpTransport(max_connections=32, first_frame_timeout=1.0)
        async with Net(transport=t) as net:
            base = rss_bytes()
            reset_peak_rss()
            silent = [(await asyncio.open_connection(*net.a.address))[1] for _ in range(200)]
            await eventually(lambda: t.counters.links_accepted >= 200)
            assert len(t.accepted) <= 32 and t.counters.link_errors["evicted"] >= 168
            await serve_legit(net, 10)                 # a new link evicts an idle one
            await serve_legit(net, 5, ("b", "a"))      # and b's link to a gets in too
            await eventually(lambda: len(t.accepted) <= 2, timeout=5)   # silent ones timed out
            assert t.counters.link_errors["first-frame-timeout"] >= 1
            assert peak_rss_bytes() - base < 20 * MiB
            for w in silent:
                w.close()
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "link" in r.getMessage()]
        assert 1 <= len(warnings) <= 3, [r.getMessage() for r in warnings]   # rate-limited

    run(main())


def test_idle_htx_links_are_evicted_when_full():
    # Defect 3 over HTX: handshaken links that never send a mix frame (pings keep HTX alive).
    async def main():
        t = mix.HtxTransport("plain", max_connections=8, first_frame_timeout=30.0)
        async with Net(transport=t) as net:
            d = net.a.descriptor()
            idle = [await htx.connect(*d.address, d.htx_public_key, transport="plain") for _ in range(20)]
            await eventually(lambda: t.counters.links_accepted >= 20)
            assert len(t.accepted) <= 8 and t.counters.link_errors["evicted"] >= 12
            sender = mix.HtxTransport("plain")
            await sender.send_to(d, FRAME_PACKET, net.packet(["a"], [1], data=b"legit over htx"))
            await eventually(lambda: b"legit over htx" in net.got["a"])
            await sender.close()
            await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)

    run(main())


def test_htx_links_without_mix_frames_time_out_even_while_pinging():
    # Defect 3 over HTX: HTX keepalive PINGs kept an idle link (and its slot) forever.
    async def main():
        t = mix.HtxTransport("plain", first_frame_timeout=0.5, link_idle_timeout=1.0)
        async with Net(transport=t) as net:
            d = net.a.descriptor()
            conns = [await htx.connect(*d.address, d.htx_public_key, transport="plain", idle_timeout=0.4)
                     for _ in range(3)]
            st = await conns[0].open_stream()           # one link sends a frame, then idles
            st.write(encode_frame(FRAME_PACKET, net.packet(["a"], [1], data=b"then silent")))
            await eventually(lambda: b"then silent" in net.got["a"])
            await eventually(lambda: all(c.closed for c in conns), timeout=5)
            errs = t.counters.link_errors
            assert (errs["first-frame-timeout"], errs["idle-timeout"]) == (2, 1)
            await serve_legit(net, 3)
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    run(main())


def test_raw_deliver_frames_from_a_link_peer_are_refused():
    # Defect 4: a DELIVER frame reached the application unprocessed, with a SURB of the
    # attacker's choosing that the application then used.
    async def main():
        async with Net(mean_delay_ms=5) as net:
            a = net.a
            attacker = secrets.token_bytes(32)
            surb, _ = sphinx.create_surb(G, 1, Route([net.hop("b")]), attacker)
            body = encode_body(G, mix.KIND_DATA, b"injected", surb.data)
            base = rss_bytes()
            reset_peak_rss()
            w = await flood(a.address, [a.node_id + body] * 2000, FRAME_DELIVER)
            await eventually(lambda: a.counters.dropped["unexpected-frame"] == 2000)
            assert b"injected" not in net.got["a"] and a.counters.delivered == 0
            await serve_legit(net, 5)
            assert peak_rss_bytes() - base < 20 * MiB
            w.close()

    run(main())
