"""TCPCLv4 over real sockets: ours against the independent reference peer (tests/tcpcl_reference.py)
in both roles, with and without TLS; TLS verification; faults (cut mid-transfer, bad magic)."""
from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import struct

import pytest

import tcpcl_reference as ref
from betanet.dtn.store import BundleStore
from betanet.dtn.tcpcl.aio import (SessionClosedError, TcpclClient, client_context,
                                   open_session, serve, server_context)
from betanet.dtn.tcpcl.events import RefuseReason
from betanet.dtn.tcpcl.protocol import SessionConfig
from betanet.errors import LimitExceededError
from betanet.htx.tls import write_self_signed


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    cert, key = write_self_signed(tmp_path_factory.mktemp("tcpcl-certs"))
    return str(cert), str(key)


def ref_contexts(certs):
    """The reference peer's own TLS contexts, built directly on ssl."""
    cert, key = certs
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(cert, key)
    srv.load_verify_locations(cert)
    srv.verify_mode = ssl.CERT_REQUIRED
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.load_verify_locations(cert)
    cli.load_cert_chain(cert, key)
    return srv, cli


def run(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


BUNDLES = [b"", b"\x9f\x88\x07" + os.urandom(40) + b"\xff", os.urandom(3000), os.urandom(200_000)]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_ours_as_client_against_reference_server(certs, tls):
    srv_ctx, _ = ref_contexts(certs)
    cert, key = certs

    async def main():
        got = []

        async def handler(peer):
            for _ in BUNDLES:
                got.append(await peer.recv_bundle())
            await peer.send_bundle(b"reply from reference", segment=5)
            await peer.expect_termination()

        server = await ref.listen(handler, tls=srv_ctx if tls else None, segment_mru=1000)
        port = server.sockets[0].getsockname()[1]
        ctx = client_context(cafile=cert, certfile=cert, keyfile=key) if tls else None
        conn = await open_session("127.0.0.1", port, config=SessionConfig(node_id="ipn:1.0"), ssl=ctx,
                                  server_hostname="localhost")
        assert conn.peer_node_id == "dtn://ref/" and conn.tls == tls
        for b in BUNDLES:
            await conn.send_bundle(b)
        assert got == BUNDLES  # segmented at the reference's 1000-byte MRU and reassembled
        received = await conn.__aiter__().__anext__()
        assert received == b"reply from reference"
        await conn.close()
        assert conn.rtt is not None and conn.bundles_sent == len(BUNDLES)
        server.close()
        await server.wait_closed()
    run(main())


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_reference_client_against_ours_as_server(certs, tls, tmp_path):
    _, cli_ctx = ref_contexts(certs)
    cert, key = certs

    async def main():
        store = BundleStore(tmp_path / "s.db")

        async def on_bundle(data: bytes):
            bid = hashlib.sha256(data).hexdigest()
            await store.put(bid, data, destination="ipn:2.0", source="ref", expires_at=1e12)

        async def handler(conn):
            await conn.send_bundle(b"hello reference" * 100)

        sctx = server_context(cert, key, cafile=cert) if tls else None
        server = await serve("127.0.0.1", 0, config=SessionConfig(node_id="ipn:2.0", segment_mru=777),
                             ssl=sctx, on_bundle=on_bundle, handler=handler)
        peer = await ref.connect("127.0.0.1", server.port, tls=cli_ctx if tls else None,
                                 server_hostname="localhost")
        assert peer.peer["node_id"] == "ipn:2.0" and peer.peer["segment_mru"] == 777
        assert await peer.recv_bundle() == b"hello reference" * 100
        for b in BUNDLES:
            acks = await peer.send_bundle(b)
            assert acks[-1] == len(b)
            if len(b) > 777:
                assert len(acks) > 1 and acks == sorted(acks)  # cumulative per segment
        for b in BUNDLES:  # acknowledged means stored
            assert (await store.get(hashlib.sha256(b).hexdigest())).data == b
        reply = await peer.terminate()
        assert reply["reason"] == 0
        await server.close()
        await store.close()
    run(main())


def test_tls_verification_is_on_by_default(certs):
    cert, key = certs

    async def main():
        server = await serve("127.0.0.1", 0, ssl=server_context(cert, key))
        with pytest.raises((SessionClosedError, ssl.SSLError)):
            # default context: the self-signed certificate is not trusted
            await open_session("127.0.0.1", server.port, ssl=client_context(), timeout=5)
        await server.close()
    run(main())


def test_tls_required_but_peer_plain_is_refused(certs):
    cert, key = certs

    async def main():
        server = await serve("127.0.0.1", 0, ssl=server_context(cert, key))
        with pytest.raises(SessionClosedError):
            await open_session("127.0.0.1", server.port, timeout=5)
        await server.close()
    run(main())


def test_store_full_refuses_with_no_resources(tmp_path):
    async def main():
        async def on_bundle(data: bytes):
            raise LimitExceededError("store full")

        server = await serve("127.0.0.1", 0, on_bundle=on_bundle)
        peer = await ref.connect("127.0.0.1", server.port)
        with pytest.raises(ConnectionRefusedError, match=f"reason {RefuseReason.NO_RESOURCES}"):
            await peer.send_bundle(b"x" * 10)
        await peer.terminate()
        conn = await open_session("127.0.0.1", server.port)
        with pytest.raises(LimitExceededError):
            await conn.send_bundle(b"y")
        await conn.close()
        await server.close()
    run(main())


@pytest.mark.parametrize("cut", ["after_data", "mid_segments"])
def test_session_cut_mid_transfer_retried_and_delivered_exactly_once(tmp_path, cut):
    """The receiver stores each bundle (dedup by id) before its final XFER_ACK. The first
    session is cut before the sender sees that ack; the client retries on a new session and the
    application sees every bundle exactly once."""
    async def main():
        store = BundleStore(tmp_path / "rx.db")
        delivered = []
        sessions = []

        async def on_bundle(data: bytes):
            bid = hashlib.sha256(data).hexdigest()
            if await store.put(bid, data, destination="ipn:2.0", source="ipn:1.0", expires_at=1e12):
                delivered.append(data)
            if cut == "after_data" and len(sessions) == 1 and len(delivered) == 2:
                sessions[0].abort()  # stored, but the ack never leaves

        async def handler(conn):
            sessions.append(conn)
            if cut == "mid_segments" and len(sessions) == 1:
                # the first session dies while the third bundle's segments are arriving
                while conn.session.bytes_received < 2 * 3000 + 1500:
                    await asyncio.sleep(0.001)
                conn.abort()

        server = await serve("127.0.0.1", 0, config=SessionConfig(node_id="ipn:2.0", segment_mru=500),
                             on_bundle=on_bundle, handler=handler)
        client = TcpclClient("127.0.0.1", server.port, config=SessionConfig(node_id="ipn:1.0"))
        bundles = [bytes([i]) * 3000 for i in range(5)]
        for b in bundles:
            await client.send_bundle(b)
        assert client.sessions_opened == 2 and client.retried >= 1
        assert client.retried_log
        assert sorted(delivered) == sorted(bundles)  # each exactly once
        await client.close()
        await server.close()
        await store.close()
    run(main())


def test_bad_magic_closes_connection():
    async def main():
        server = await serve("127.0.0.1", 0)
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(r.read(), 5) == b""  # closed, nothing sent back
        w.close()
        await server.close()
    run(main())


def test_unknown_message_type_msg_reject_over_socket():
    async def main():
        server = await serve("127.0.0.1", 0)
        peer = await ref.connect("127.0.0.1", server.port)
        peer.w.write(b"\x99")
        await peer.w.drain()
        t, m = await peer.read_message()
        assert t == ref.T_REJECT and m == {"reason": 1, "header": 0x99}
        assert await asyncio.wait_for(peer.r.read(), 5) == b""
        await server.close()
    run(main())


def test_hostile_segment_length_terminates_session():
    async def main():
        server = await serve("127.0.0.1", 0, config=SessionConfig(segment_mru=4096))
        peer = await ref.connect("127.0.0.1", server.port)
        peer.w.write(struct.pack(">BBQIQ", 1, 3, 0, 0, 1 << 62))
        await peer.w.drain()
        t, m = await peer.read_message()
        assert t == ref.T_TERM and m["reason"] == 5
        assert await asyncio.wait_for(peer.r.read(), 5) == b""
        await server.close()
    run(main())
