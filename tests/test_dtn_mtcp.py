"""MTCP framing (CBOR byte strings) and interop with pyd3tn's MTCP in both directions."""
from __future__ import annotations

import asyncio
import socket
import threading

import cbor2
import pytest

from betanet.dtn.mtcp import MtcpFramer, frame, open_mtcp, serve_mtcp
from betanet.errors import LimitExceededError, MalformedError

pyd3tn_mtcp = pytest.importorskip("pyd3tn.mtcp")
from pyd3tn.bundle7 import Bundle, CRCType, serialize_bundle7  # noqa: E402


def run(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def pyd3tn_bundles() -> list[bytes]:
    """Bundles serialised by pyd3tn itself, every CRC type, small to 70 KB."""
    out = []
    for i, (crc, size) in enumerate([(CRCType.NONE, 1), (CRCType.CRC16, 23), (CRCType.CRC32, 24),
                                     (CRCType.CRC32, 255), (CRCType.CRC16, 256),
                                     (CRCType.NONE, 70_000)]):
        out.append(serialize_bundle7("dtn://a/", "dtn://b/", bytes([i]) * size,
                                     crc_type_primary=crc, crc_type_canonical=crc,
                                     creation_timestamp=1000 + i, sequence_number=i))
    return out


@pytest.mark.parametrize("n", [0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 20])
def test_frame_is_cbor_byte_string(n):
    data = bytes(n)
    assert frame(data) == cbor2.dumps(data)  # shortest definite-length encoding
    f = MtcpFramer(max_bundle_bytes=1 << 21)
    assert f.receive_data(frame(data)) == [data]


def test_framer_byte_at_a_time_and_many_per_read():
    items = [b"a", b"", bytes(300), b"xyz" * 10000]
    stream = b"".join(frame(i) for i in items)
    f = MtcpFramer()
    got = []
    for i in range(len(stream)):
        got += f.receive_data(stream[i:i + 1])
    assert got == items and f.partial == 0
    assert MtcpFramer().receive_data(stream) == items


@pytest.mark.parametrize("bad", [b"\x01", b"\xa0", b"\x5f\x41a\xff", b"\x5c"])
def test_non_byte_string_is_malformed(bad):
    with pytest.raises(MalformedError):
        MtcpFramer().receive_data(bad)


def test_hostile_length_refused_before_buffering():
    f = MtcpFramer(max_bundle_bytes=1000)
    with pytest.raises(LimitExceededError):
        f.receive_data(b"\x5b" + (1 << 62).to_bytes(8, "big"))
    assert f.partial == 9


def test_pyd3tn_client_sends_to_our_listener():
    bundles = pyd3tn_bundles()

    async def main():
        got = []
        done = asyncio.Event()

        async def on_bundle(b):
            got.append(b)
            if len(got) == len(bundles):
                done.set()

        server = await serve_mtcp("127.0.0.1", 0, on_bundle=on_bundle)

        def client():
            with pyd3tn_mtcp.MTCPConnection("127.0.0.1", server.port) as conn:
                for b in bundles:
                    conn.send_bundle(b)

        await asyncio.to_thread(client)
        await done.wait()
        assert got == bundles
        # and the bytes are bundles pyd3tn parses back
        assert Bundle.parse(got[2]).payload_block.data == bytes([2]) * 24
        await server.close()
    run(main())


def test_our_client_sends_to_pyd3tn_and_receives_its_bundles():
    bundles = pyd3tn_bundles()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    received = []

    def pyd3tn_side():
        s, _ = lsock.accept()
        peer = pyd3tn_mtcp.MTCPSocket(s, timeout=10)
        for _ in bundles:
            received.append(peer.recv_bundle())
        for b in reversed(bundles):
            peer.send_bundle(b)
        peer.disconnect()

    t = threading.Thread(target=pyd3tn_side, daemon=True)
    t.start()

    async def main():
        conn = await open_mtcp("127.0.0.1", port)
        for b in bundles:
            await conn.send_bundle(b)
        back = [b async for b in conn]
        assert back == list(reversed(bundles))
        await conn.close()
    run(main())
    t.join(10)
    lsock.close()
    assert received == bundles


def test_listener_closes_on_garbage_and_keeps_serving():
    async def main():
        got = []

        async def on_bundle(b):
            got.append(b)

        server = await serve_mtcp("127.0.0.1", 0, on_bundle=on_bundle, max_bundle_bytes=100)
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(frame(b"ok") + b"\x5a" + (10 ** 6).to_bytes(4, "big"))
        assert await asyncio.wait_for(r.read(), 5) == b""  # closed on the hostile length
        conn = await open_mtcp("127.0.0.1", server.port)
        await conn.send_bundle(b"next")
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        assert got == [b"ok", b"next"]
        await conn.close()
        await server.close()
    run(main())
