"""Stealth benchmark (htx-web): Chrome-fingerprinted TLS + ticket + WebSocket next to HTX
over Python ssl TLS ("tcp"), and the server's ticket verification rate.

  1. connection set-up (TCP + TLS + ticket/upgrade + Noise XK), median of N, per transport;
  2. single-stream upload throughput through htx-web vs HTX over asyncio TLS (target >= 0.7x);
  3. ticket verifications per second (distinct valid tickets, rate limit out of the way).

Self-contained timer (time.perf_counter); loopback only.
usage: python bench/stealth_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from betanet.htx import connect, serve
from betanet.htx.keys import generate_private_key, public_key
from betanet.htx.tls import write_self_signed
from betanet.tls.htxweb import WebClient, WebServer
from betanet.tls.tickets import TicketKey, TicketVerifier, make_ticket


async def _sink(conn) -> None:
    while True:
        try:
            st = await conn.accept_stream()
        except Exception:   # noqa: BLE001 - connection over
            return
        h = hashlib.sha256()
        while d := await st.read(1 << 16):
            h.update(d)
        st.write(h.digest())
        await st.close()


async def _run(transport: str, n_setup: int, size: int, d: Path, target: str) -> tuple[float, float]:
    cert, key = write_self_signed(d / transport, ["localhost", "127.0.0.1"])
    site = d / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("<h1>hello</h1>\n")
    sk = generate_private_key()
    tk = TicketKey.generate()
    web = WebServer(site, tk, rate=1e6, burst=1e6) if transport == "htx-web" else None
    srv = await serve(_sink, "127.0.0.1", 0, sk, transport=transport, certfile=cert, keyfile=key, web=web)

    async def dial():
        kw = {"web": WebClient(tk.publication, impersonate=target)} if web else {}
        return await connect("127.0.0.1", srv.port, public_key(sk), transport=transport, cafile=cert,
                             server_hostname="localhost", **kw)
    async with srv:
        times = []
        for _ in range(n_setup):
            t0 = time.perf_counter()
            c = await dial()
            times.append(time.perf_counter() - t0)
            await c.close()
        c = await dial()
        data = bytes(range(256)) * (size // 256)
        st = await c.open_stream()
        t0 = time.perf_counter()
        for i in range(0, len(data), 1 << 16):
            st.write(data[i:i + (1 << 16)])
            await st.drain()
        st.write_eof()
        got = await st.readexactly(32)
        dt = time.perf_counter() - t0
        assert got == hashlib.sha256(data).digest()
        await c.close()
    return statistics.median(times), size / dt / 1e6


def _tickets(n: int) -> float:
    key = TicketKey.generate()
    v = TicketVerifier(key, rate=1e9, burst=1e9)
    now = 1767225600.0
    tickets = [make_ticket(key.publication, now).encoded for _ in range(n)]
    t0 = time.perf_counter()
    for i, t in enumerate(tickets):
        assert v.verify(t, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", now).ok
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--impersonate", default="chrome142")
    a = ap.parse_args()
    n_setup, size, n_t = (5, 8 << 20, 500) if a.quick else (20, 64 << 20, 5000)
    with tempfile.TemporaryDirectory() as d:
        res = {t: asyncio.run(_run(t, n_setup, size, Path(d), a.impersonate)) for t in ("tcp", "htx-web")}
    print(f"{'transport':10} {'set-up ms (median)':>20} {'upload MB/s':>12}")
    for t, (s, mbps) in res.items():
        print(f"{t:10} {s * 1e3:20.1f} {mbps:12.1f}")
    ratio = res["htx-web"][1] / res["tcp"][1]
    print(f"htx-web / tcp throughput: {ratio:.2f}x (target >= 0.7x)")
    print(f"set-up htx-web / tcp: {res['htx-web'][0] / res['tcp'][0]:.2f}x")
    print(f"ticket verifications/s: {_tickets(n_t):,.0f}")


if __name__ == "__main__":
    main()
