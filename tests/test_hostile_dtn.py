"""Hostile load on the DTN convergence layers: floods from one peer while another is served.

The attackers run as subprocesses (raw sockets, blocking sends), so their own buffers do not
count against the server process whose memory is measured.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from betanet.dtn.mtcp import open_mtcp, serve_mtcp
from betanet.dtn.tcpcl.aio import open_session, serve
from betanet.dtn.tcpcl.protocol import SessionConfig
from hostile import MiB, open_fds, peak_rss_bytes, reset_peak_rss, rss_bytes

pytestmark = pytest.mark.hostile

FLOOD_SECONDS = 3.0

# Pushes 64 KiB single-segment transfers as fast as the server reads them and never reads
# the acknowledgments. sendall blocks when the server stops reading: that is the server's
# backpressure, and the attacker cannot get around it.
TCPCL_FLOOD = textwrap.dedent("""
    import socket, struct, sys, time
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"dtn!\\x04\\x00")
    assert s.recv(6) == b"dtn!\\x04\\x00"
    nid = b"ipn:666.0"
    s.sendall(struct.pack(">BHQQH", 7, 0, 1 << 20, 1 << 24, len(nid)) + nid + bytes(4))
    payload = b"A" * 65536
    s.settimeout(seconds + 5)
    end, tid, sent = time.time() + seconds, 0, 0
    try:
        while time.time() < end:
            s.sendall(struct.pack(">BBQIQ", 1, 3, tid, 0, len(payload)) + payload)
            tid += 1
            sent += len(payload)
    except OSError:
        pass
    print(tid, sent, flush=True)
""")

MTCP_FLOOD = textwrap.dedent("""
    import socket, struct, sys, time
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    s = socket.create_connection(("127.0.0.1", port))
    item = b"\\x5a" + struct.pack(">I", 65536) + b"B" * 65536
    s.settimeout(seconds + 5)
    end, n = time.time() + seconds, 0
    try:
        while time.time() < end:
            s.sendall(item)
            n += 1
    except OSError:
        pass
    print(n, flush=True)
""")


def _flood(script: str, port: int, n: int = 2) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", script, str(port), str(FLOOD_SECONDS)],
                             stdout=subprocess.PIPE, text=True) for _ in range(n)]


def test_tcpcl_flood_bounded_memory_other_peer_served():
    async def main():
        received = {"flood": 0, "legit": 0}

        async def on_bundle(data: bytes):
            await asyncio.sleep(0.002)  # a store that takes time: the flood outpaces it
            received["legit" if data.startswith(b"legit") else "flood"] += 1

        server = await serve("127.0.0.1", 0, config=SessionConfig(node_id="ipn:2.0"),
                             on_bundle=on_bundle, window=16, max_pending_bytes=1 << 20)
        base_fds = open_fds()
        await asyncio.sleep(0.1)
        reset_peak_rss()
        base = rss_bytes()
        procs = _flood(TCPCL_FLOOD, server.port)
        await asyncio.sleep(0.3)
        # the legitimate peer is served during the flood
        conn = await open_session("127.0.0.1", server.port, config=SessionConfig(node_id="ipn:1.0"),
                                  timeout=10)
        t0 = time.monotonic()
        for i in range(20):
            await asyncio.wait_for(conn.send_bundle(b"legit %d" % i), 10)
        legit_time = time.monotonic() - t0
        await conn.close()
        outs = [await asyncio.to_thread(p.communicate, timeout=FLOOD_SECONDS + 20) for p in procs]
        growth = peak_rss_bytes() - base
        sent_transfers = sum(int(o[0].split()[0]) for o in outs)
        assert received["legit"] == 20
        assert received["flood"] > 0 and sent_transfers >= received["flood"]
        # window 16 x 64 KiB per session plus socket buffers: far below the data pushed at us
        assert growth < 48 * MiB, f"server grew by {growth / MiB:.1f} MiB"
        await server.close()
        await asyncio.sleep(0.1)
        assert open_fds() <= base_fds + 2
        print(f"tcpcl flood: {sent_transfers} x 64 KiB offered, {received['flood']} accepted, "
              f"peak growth {growth / MiB:.1f} MiB, 20 legit bundles in {legit_time:.2f} s")
    asyncio.run(asyncio.wait_for(main(), 60))


def test_tcpcl_session_limit_and_slow_negotiation():
    async def main():
        server = await serve("127.0.0.1", 0, config=SessionConfig(contact_timeout=1.0),
                             max_sessions=4)
        # four connections that never send a contact header hold every slot ...
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
        await asyncio.sleep(0.1)
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(r.read(), 5) == b""  # ... so a fifth is refused
        assert server.refused_sessions == 1
        # ... until the negotiation timeout frees them
        for ir, _ in idle:
            assert await asyncio.wait_for(ir.read(), 5) == b""
        conn = await open_session("127.0.0.1", server.port, timeout=5)
        await conn.send_bundle(b"served")
        await conn.close()
        for _, iw in idle + [(r, w)]:
            iw.close()
        await server.close()
    asyncio.run(asyncio.wait_for(main(), 30))


def test_mtcp_flood_bounded_memory_other_peer_served():
    async def main():
        got = {"flood": 0, "legit": 0}

        async def on_bundle(data: bytes):
            await asyncio.sleep(0.002)
            got["legit" if data.startswith(b"legit") else "flood"] += 1

        server = await serve_mtcp("127.0.0.1", 0, on_bundle=on_bundle)
        await asyncio.sleep(0.1)
        reset_peak_rss()
        base = rss_bytes()
        procs = _flood(MTCP_FLOOD, server.port)
        await asyncio.sleep(0.3)
        conn = await open_mtcp("127.0.0.1", server.port)
        for i in range(20):
            await conn.send_bundle(b"legit %d" % i)
        for _ in range(1000):
            if got["legit"] == 20:
                break
            await asyncio.sleep(0.01)
        assert got["legit"] == 20
        await conn.close()
        for p in procs:
            await asyncio.to_thread(p.communicate, timeout=FLOOD_SECONDS + 20)
        growth = peak_rss_bytes() - base
        assert growth < 48 * MiB, f"server grew by {growth / MiB:.1f} MiB"
        await server.close()
    asyncio.run(asyncio.wait_for(main(), 60))
