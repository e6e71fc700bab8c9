"""Demo: two local nodes talk HTX over TCP+TLS 1.3 and over QUIC."""
from __future__ import annotations

import asyncio
import tempfile

TITLE = "HTX secure channel: Noise XK, multiplexed streams over TCP+TLS and QUIC"


async def run(report) -> None:
    import betanet.htx as htx
    from betanet.htx import tls

    certs = tls.write_self_signed(tempfile.mkdtemp(prefix="betanet-htx-demo-"))
    server_key = htx.generate_private_key()
    report.line(f"server static key (X25519): {htx.public_key(server_key).hex()[:16]}...")

    async def node_b(conn: htx.Connection) -> None:
        async def serve_stream(st: htx.Stream) -> None:
            async with st:
                msg = await st.read()
                st.write(b"ack: " + msg)
        tasks = []
        try:
            while True:
                tasks.append(asyncio.ensure_future(serve_stream(await conn.accept_stream())))
        except Exception:
            pass
        await asyncio.gather(*tasks, return_exceptions=True)

    for transport in ("tcp", "quic"):
        server = await htx.serve(node_b, "127.0.0.1", 0, server_key, transport=transport,
                                 certfile=certs[0], keyfile=certs[1])
        label = "TCP+TLS 1.3" if transport == "tcp" else "QUIC v1"
        conn = await htx.connect("127.0.0.1", server.port, htx.public_key(server_key),
                                 transport=transport, cafile=certs[0])
        report.line(f"{label}: handshake done, hash {conn.handshake_hash.hex()[:16]}...")
        replies = []
        streams = [await conn.open_stream() for _ in range(3)]
        for i, st in enumerate(streams):
            st.write(f"hello #{i} over {transport}".encode())
            st.write_eof()
        await conn.update_key()
        for st in streams:
            replies.append(await st.read())
        rtt = await conn.ping(timeout=5)
        ok = all(r == f"ack: hello #{i} over {transport}".encode() for i, r in enumerate(replies))
        report.result(ok, f"{label}: 3 streams {[s.id for s in streams]} echoed, e.g. {replies[0].decode()!r}")
        peer = next(iter(server.connections), None)
        report.result(conn.stats()["send_epoch"] == 1 and peer is not None and peer.key_updates_received == 1,
                      f"{label}: key update sent by node A, seen by node B; ping rtt {rtt * 1000:.1f} ms")
        await conn.close()
        server.close()
        await server.wait_closed()
