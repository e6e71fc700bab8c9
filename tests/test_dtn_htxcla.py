"""The HTX convergence layer: the sans-IO framing, bundles both ways over real HTX
connections (plain and TLS), per-bundle acks and refusals, and a peer vanishing in the
middle of a transfer (nothing lost: the link re-sends on a new connection)."""
from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import struct
import sys
import textwrap

import pytest

from betanet import htx
from betanet.dtn.cla import ConvergenceLayer
from betanet.dtn.htxcla import (MAGIC, BundleAcked, BundleFraming, BundleReceived,
                                BundleRefused, ContactClosedError, HtxLink, serve_htx)
from betanet.dtn.store import BundleStore
from betanet.errors import InvalidArgumentError, LimitExceededError, MalformedError
from betanet.htx.tls import write_self_signed


def run(coro, timeout=60):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


# ---- framing (sans-IO) ----------------------------------------------------------------------

def test_framing_bytes_are_pinned():
    f = BundleFraming()
    assert f.header() == MAGIC == b"BNDL\x01"
    seq, msg = f.encode_bundle(b"abc")
    assert seq == 0 and msg == b"\x01" + bytes(8) + b"\x00\x00\x00\x03abc"
    assert f.encode_ack(5) == b"\x02" + struct.pack("!Q", 5)
    assert f.encode_refuse(5, 1) == b"\x03" + struct.pack("!Q", 5) + b"\x01"
    assert f.encode_bundle(b"")[0] == 1


def test_framing_round_trip_byte_at_a_time():
    a, b = BundleFraming(), BundleFraming()
    wire = a.header() + b"".join(a.encode_bundle(bytes([i]) * i)[1] for i in range(5))
    events = []
    for i in range(len(wire)):
        events += b.feed(wire[i:i + 1])
    assert [(e.seq, e.data) for e in events] == [(i, bytes([i]) * i) for i in range(5)]
    assert all(isinstance(e, BundleReceived) for e in events)
    back = b.header() + b.encode_ack(0) + b.encode_refuse(1, 2) + b.encode_ack(2)
    ev = a.feed(back)
    assert [type(e) for e in ev] == [BundleAcked, BundleRefused, BundleAcked]
    assert ev[1].reason == 2


@pytest.mark.parametrize("wire, err", [
    (b"XNDL\x01", MalformedError),                                    # bad header
    (b"BNDL\x02", MalformedError),                                    # unknown version
    (MAGIC + b"\x07", MalformedError),                                # unknown type
    (MAGIC + b"\x01" + struct.pack("!QI", 1, 1) + b"x", MalformedError),   # seq out of order
    (MAGIC + b"\x02" + bytes(8), MalformedError),                     # ack for nothing sent
    (MAGIC + b"\x01" + struct.pack("!QI", 0, 1001), LimitExceededError),  # over the limit
])
def test_framing_rejects_bad_streams(wire, err):
    with pytest.raises(err):
        BundleFraming(max_bundle_bytes=1000).feed(wire)


def test_framing_limit_is_checked_before_the_data_arrives():
    f = BundleFraming(max_bundle_bytes=1 << 20)
    with pytest.raises(LimitExceededError):
        f.feed(MAGIC + b"\x01" + struct.pack("!QI", 0, 0xFFFFFFFF))  # head only
    with pytest.raises(InvalidArgumentError):
        BundleFraming(max_bundle_bytes=0)


# ---- over real HTX connections -------------------------------------------------------------

@pytest.fixture(scope="module")
def keys():
    priv = htx.generate_private_key()
    return priv, htx.public_key(priv)


@pytest.mark.parametrize("transport", ["plain", "tcp"])
def test_bundles_both_ways_with_acks_and_metrics(keys, transport, tmp_path):
    priv, pub = keys
    kw_srv, kw_cli = {"transport": transport}, {"transport": transport}
    if transport == "tcp":
        cert, key = write_self_signed(tmp_path)
        kw_srv.update(certfile=str(cert), keyfile=str(key))
        kw_cli.update(cafile=str(cert), server_hostname="localhost")

    async def main():
        got = []
        channels = []

        async def handler(ch):
            channels.append(ch)

        async def on_bundle(data):
            got.append(data)

        server = await serve_htx("127.0.0.1", 0, priv, on_bundle=on_bundle, handler=handler,
                                 **kw_srv)
        link: ConvergenceLayer = HtxLink("127.0.0.1", server.port, pub, **kw_cli)
        assert link.acknowledged
        async with link:
            bundles = [os.urandom(n) for n in (0, 1, 1000, 70_000, 300_000)]
            for b in bundles:
                await link.send(b)  # returns at the peer's ACK: stored already
            assert got == bundles
            # the server side sends back on the same stream
            await asyncio.wait_for(_send_on(channels[0], b"reply"), 10)
            rx = link.received()
            assert await asyncio.wait_for(rx.__anext__(), 10) == b"reply"
            assert channels[0].peer_static_key is not None
            m = link.metrics()
            assert m.up and m.bundles_sent == 5 and m.bundles_received == 1
            assert m.bytes_sent > sum(map(len, bundles)) and m.rtt is not None
            assert "latency_ms" in m.observe_kwargs()
        assert not link.up
        await server.close()
    run(main())


async def _send_on(ch, data):
    fut = asyncio.get_running_loop().create_future()
    ch.submit(data, lambda e: fut.set_result(e))
    assert await fut is None


def test_refusal_reaches_the_sender_and_the_link_goes_on(keys):
    priv, pub = keys

    def on_bundle(data):  # a plain function: called inline
        if data.startswith(b"full"):
            raise LimitExceededError("store full")
        if data.startswith(b"bad"):
            raise MalformedError("not a bundle")

    async def main():
        server = await serve_htx("127.0.0.1", 0, priv, on_bundle=on_bundle, transport="plain")
        async with HtxLink("127.0.0.1", server.port, pub, transport="plain") as link:
            with pytest.raises(LimitExceededError):
                await link.send(b"full one")
            with pytest.raises(MalformedError):
                await link.send(b"bad one")
            await link.send(b"good one")
            assert link.retried == 0 and link.sessions_opened == 1
        await server.close()
    run(main())


def test_pipelined_sends_and_a_wrong_server_key_fails_cleanly(keys):
    priv, pub = keys

    async def main():
        got = []
        server = await serve_htx("127.0.0.1", 0, priv, on_bundle=got.append, transport="plain")
        async with HtxLink("127.0.0.1", server.port, pub, transport="plain", window=16) as link:
            bundles = [i.to_bytes(2, "big") * 100 for i in range(400)]
            for b in bundles:
                await link.send(b, wait="queued")
            await link.flush()
            assert got == bundles
        wrong = HtxLink("127.0.0.1", server.port, htx.public_key(htx.generate_private_key()),
                        transport="plain", attempts=2, backoff=0.01, handshake_timeout=2)
        with pytest.raises(ContactClosedError):
            await wrong.send(b"never")
        await wrong.close_contact()
        await server.close()
    run(main())


@pytest.mark.parametrize("cut", ["after_store", "mid_bundle"])
def test_peer_vanishing_mid_transfer_loses_nothing(keys, tmp_path, cut):
    """The receiver's connection is dropped (no CLOSE, no FIN) right after some bundles were
    stored without their ACK leaving, or while a 2 MB bundle is half received. The link
    re-sends on a new connection; the store's dedup hands each bundle up exactly once."""
    priv, pub = keys

    async def main():
        store = BundleStore(tmp_path / "rx.db")
        delivered = []
        channels = []

        async def on_bundle(data):
            bid = hashlib.sha256(data).hexdigest()
            if await store.put(bid, data, destination="ipn:2.0", source="ipn:1.0",
                               expires_at=1e12):
                delivered.append(data)
            if cut == "after_store" and len(channels) == 1 and len(delivered) == 3:
                channels[0].abort()  # stored, acks never leave

        async def handler(ch):
            channels.append(ch)
            if cut == "mid_bundle" and len(channels) == 1:
                while ch.bytes_received < 30_000 + 1_000_000:  # half of the big bundle
                    await asyncio.sleep(0.0005)
                ch.abort()

        server = await serve_htx("127.0.0.1", 0, priv, on_bundle=on_bundle, handler=handler,
                                 transport="plain")
        link = HtxLink("127.0.0.1", server.port, pub, transport="plain")
        bundles = [bytes([i]) * 5000 for i in range(6)] + [os.urandom(2_000_000)]
        for b in bundles:
            await link.send(b, wait="queued")
        await link.flush()
        assert link.sessions_opened == 2 and link.retried >= 1
        assert sorted(delivered) == sorted(bundles)  # all, each exactly once
        assert not link.undelivered
        await link.close_contact()
        await server.close()
        await store.close()
    run(main())


RECEIVER = textwrap.dedent("""
    import asyncio, sys
    from betanet.dtn.htxcla import serve_htx
    from betanet.dtn.store import BundleStore

    async def main(path, port, key):
        store = BundleStore(path)

        async def on_bundle(data):
            bid = data[:12].decode()
            if await store.put(bid, data, destination="ipn:2.0", source="ipn:1.0",
                               expires_at=1e12):
                print("new", bid, flush=True)

        srv = await serve_htx("127.0.0.1", int(port), bytes.fromhex(key), on_bundle=on_bundle,
                              transport="plain")
        print("ready", srv.port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
""")


@pytest.mark.slow
def test_receiver_process_killed_mid_transfer_then_restarted(keys, tmp_path):
    """kill -9 of the receiving process while bundles are in flight; it restarts on the same
    store and port; the link's retries complete every bundle and none is stored twice."""
    priv, pub = keys
    path = tmp_path / "rx.db"
    ids = [f"bundle{i:06d}" for i in range(60)]
    bundles = {i: i.encode() + os.urandom(20_000) for i in ids}

    async def start(port):
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", RECEIVER, str(path),
                                                    str(port), priv.hex(),
                                                    stdout=asyncio.subprocess.PIPE)
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
        assert line[0] == "ready"
        return proc, int(line[1])

    async def collect(proc, into):
        async for line in proc.stdout:
            parts = line.decode().split()
            if len(parts) == 2 and parts[0] == "new":
                into.append(parts[1])

    async def main():
        proc, port = await start(0)
        printed = []
        readers = [asyncio.create_task(collect(proc, printed))]
        link = HtxLink("127.0.0.1", port, pub, transport="plain", attempts=60,
                       max_backoff=0.3, window=8, handshake_timeout=5)
        sender = asyncio.create_task(_send_all(link, [bundles[i] for i in ids]))
        while len(printed) < 20:
            await asyncio.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        proc, _ = await start(port)
        readers.append(asyncio.create_task(collect(proc, printed)))
        await asyncio.wait_for(sender, 60)
        await link.close_contact()
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        await asyncio.gather(*readers)
        assert link.retried >= 1 and link.sessions_opened >= 2
        assert len(printed) == len(set(printed))  # none handed up twice
        async with BundleStore(path) as store:
            assert sorted(await store.ids()) == sorted(ids)
    run(main(), 120)


async def _send_all(link, items):
    for b in items:
        await link.send(b, wait="queued")
    await link.flush()


def test_a_bundle_over_the_limit_fails_at_once_and_the_link_goes_on(keys):
    priv, pub = keys

    async def main():
        got = []
        server = await serve_htx("127.0.0.1", 0, priv, on_bundle=got.append, transport="plain")
        async with HtxLink("127.0.0.1", server.port, pub, transport="plain",
                           max_bundle_bytes=1000) as link:
            with pytest.raises(LimitExceededError):
                await link.send(b"x" * 1001, wait="queued")
            await link.send(b"fits", wait="queued")
            await asyncio.wait_for(link.flush(), 10)
            assert got == [b"fits"] and link.retried == 0
        await server.close()
    run(main())
