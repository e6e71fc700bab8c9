"""Stealth benchmark (htx-web): Chrome-fingerprinted TLS + ticket + WebSocket next to HTX
over Python ssl TLS ("tcp"), and the server's ticket verification rate.

  1. connection set-up (TCP + TLS + ticket/upgrade + Noise XK), median of N, per transport;
  2. single-stream upload throughput through htx-web vs HTX over asyncio TLS (target >= 0.7x);
  3. ticket verifications per second (distinct valid tickets, rate limit out of the way).

Loopback only. The two transports alternate in interleaved rounds (bench/harness.py): set-up
and throughput are the best round, the ratio the median within-round ratio. htx-web needs
curl_cffi (the `web` extra); without it the run says so and measures the rest.
usage: python bench/stealth_bench.py [--smoke|--quick] [--impersonate TARGET]
"""
from __future__ import annotations

import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import harness

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
        kw = {"web": WebClient(tk.publication, **({"impersonate": target} if target else {}))} if web else {}
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


def _curl_cffi():
    import curl_cffi
    return curl_cffi


def main() -> None:
    ap = harness.parser(__doc__.splitlines()[0])
    ap.add_argument("--impersonate", default=None, help="a CHROME_TARGETS name (default: the first)")
    a = ap.parse_args()
    harness.header("Stealth htx-web (bench/stealth_bench.py)", a.smoke)
    peers = harness.Peers()
    peers.load("htx-web (curl_cffi)", _curl_cffi, "pip install '.[web]'")
    peers.report()
    n_setup, size, n_t, rounds = (3, 2 << 20, 300, 1) if a.smoke else (20, 64 << 20, 5000, 3)
    transports = ["tcp"] + (["htx-web"] if "htx-web (curl_cffi)" in peers else [])
    with tempfile.TemporaryDirectory() as d:
        per_round = harness.interleaved(
            {t: (lambda t=t: asyncio.run(_run(t, n_setup, size, Path(d), a.impersonate))) for t in transports},
            rounds)
    res = {t: (min(s for s, _ in rs), max(m for _, m in rs)) for t, rs in per_round.items()}
    print(f"{'transport':10} {'set-up ms (median)':>20} {'upload MB/s':>12}")
    for t, (s, mbps) in res.items():
        print(f"{t:10} {s * 1e3:20.1f} {mbps:12.1f}")
    if "htx-web" in res:
        web, tcp = per_round["htx-web"], per_round["tcp"]
        ratio = harness.median_ratio([m for _, m in web], [m for _, m in tcp])
        print(f"htx-web / tcp throughput: {harness.ratio(ratio, 2)} (target >= 0.7x: "
              f"{'met' if ratio >= 0.7 else 'MISSED'})")
        print(f"set-up htx-web / tcp: {harness.ratio(harness.median_ratio([s for s, _ in web], [s for s, _ in tcp]), 2)}")
    print(f"ticket verifications/s: {_tickets(n_t):,.0f}")


if __name__ == "__main__":
    main()
