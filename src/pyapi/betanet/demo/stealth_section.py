"""Demo: one port, two faces. A probe sees a website; a Betanet client with an access ticket
gets HTX over a TLS connection whose ClientHello is Chrome's."""
from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
from pathlib import Path

TITLE = "Looking like the web: htx-web (Chrome's TLS, access tickets, a decoy site)"
PAGE = b"<!doctype html><title>Corner Bakery</title><h1>Fresh bread daily</h1>\n"


async def _probe_with_python(port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = await r.read()
    w.close()
    return data.partition(b"\r\n\r\n")[2]


async def run(report) -> None:
    from betanet.htx import connect, serve
    from betanet.htx.keys import generate_private_key, public_key
    from betanet.htx.tls import write_self_signed
    from betanet.tls.clienthello import hello_bytes_needed, parse_client_hello
    from betanet.tls.fingerprint import fingerprints
    from betanet.tls.htxweb import WebClient, WebServer
    from betanet.tls.tickets import TicketKey
    from betanet.tools.flows import splice

    with tempfile.TemporaryDirectory() as d:
        cert, key = write_self_signed(Path(d) / "tls", ["localhost", "127.0.0.1"])
        site = Path(d) / "site"
        site.mkdir()
        (site / "index.html").write_bytes(PAGE)
        tk = TicketKey.generate()
        sk = generate_private_key()

        async def echo(conn):
            st = await conn.accept_stream()
            st.write(await st.read())
            await st.close()
        srv = await serve(echo, "127.0.0.1", 0, sk, transport="htx-web", certfile=cert, keyfile=key,
                          web=WebServer(site, tk))
        hellos: list[bytes] = []

        async def relay(reader, writer):           # records the ClientHello, then relays
            buf = bytearray()
            while not (n := hello_bytes_needed(buf)):
                chunk = await reader.read(65536)
                if not chunk:
                    writer.close()
                    return
                buf += chunk
            hellos.append(bytes(buf[:n]))
            ur, uw = await asyncio.open_connection("127.0.0.1", srv.port)
            uw.write(bytes(buf))
            try:
                await splice((reader, writer), (ur, uw))
            except asyncio.CancelledError:      # the demo is over; the relay just stops
                uw.close()
                writer.close()
        tap = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = tap.sockets[0].getsockname()[1]
        async with srv:
            report.line(f"listener on 127.0.0.1:{srv.port}; ticket key published as:")
            report.line("  " + tk.publication.to_text())
            if shutil.which("curl"):
                proc = await asyncio.create_subprocess_exec(
                    "curl", "-sk", "--http1.1", f"https://127.0.0.1:{srv.port}/", stdout=asyncio.subprocess.PIPE)
                body, _ = await proc.communicate()
                who = "curl -sk"
            else:
                body, who = await _probe_with_python(srv.port), "a Python ssl client"
            report.result(body == PAGE, f"probe ({who}, no ticket) sees the website: {body[:48]!r}...")
            conn = await connect("127.0.0.1", port, public_key(sk), transport="htx-web", cafile=cert,
                                 server_hostname="localhost", web=WebClient(tk.publication, "chrome152"))
            st = await conn.open_stream()
            st.write(b"hello through Chrome's TLS")
            st.write_eof()
            got = await st.read()
            report.result(got == b"hello through Chrome's TLS", "Betanet client with a ticket: HTX on the same port")
            await conn.close()
        tap.close()
        fp = fingerprints(parse_client_hello(hellos[0]))
        chrome = "t13d1516h1_8daaf6152771_5b37b36a67c0"   # tests/vectors/chrome156/ws_localhost_1.bin
        report.line(f"JA4 of the client's ClientHello: {fp.ja4}")
        report.line(f"JA4 of real Chromium 156 opening a WebSocket (captured): {chrome}")
        report.result(fp.ja4 == chrome, "the fingerprints are equal (docs/stealth.md cites the reference)")
