"""UDP convergence layer fragmentation to the path MTU (RFC 9171 §5.8 fragments made by the
core, reassembled at the receiving link), and the bounded FragmentCollector underneath."""
from __future__ import annotations

import asyncio
import os
import random

import pytest

from betanet.dtn.bundle import Bundle, BundleFlags, CRCType
from betanet.dtn.cla import UDP_IPV4_OVERHEAD, UdpLink, path_mtu
from betanet.dtn.fragments import FragmentCollector, split
from betanet.errors import InvalidArgumentError, LimitExceededError


def big_bundle(n: int = 20_000, seq: int = 0, **kw) -> bytes:
    return Bundle.build("ipn:2.0", "ipn:1.0", os.urandom(n), creation_ms=1000, sequence=seq,
                        crc_type=CRCType.CRC16, hop_limit=30, **kw).to_bytes()


def test_split_fits_each_piece_and_refuses_what_cannot_be_split():
    b = big_bundle()
    assert split(b, len(b)) == [b]
    parts = split(b, 1472)
    assert len(parts) > 1 and all(len(p) <= 1472 for p in parts)
    assert all(Bundle.parse(p).primary.is_fragment for p in parts)
    with pytest.raises(LimitExceededError, match="not a bundle"):
        split(b"x" * 2000, 1472)
    with pytest.raises(LimitExceededError, match="must-not-fragment"):
        split(big_bundle(flags=BundleFlags.MUST_NOT_FRAGMENT), 1472)
    with pytest.raises(LimitExceededError):
        split(b, 20)  # no fragment fits


def test_collector_reassembles_out_of_order_with_duplicates():
    b = big_bundle()
    parts = split(b, 1000)
    rng = random.Random(7)
    feed = parts + rng.sample(parts, 5)
    rng.shuffle(feed)
    c = FragmentCollector()
    out, done_at = [], None
    for k, p in enumerate(feed):
        got = c.add(p, 0.0)
        if got and done_at is None:
            done_at = k
        out += got
    assert out == [b]  # exactly the original bytes, once
    # copies arriving after completion are recognised as late duplicates and dropped,
    # instead of starting an ADU that could never complete
    assert c.stats.duplicates == len(feed) - done_at - 1
    assert c.expire(1000.0) == [] and c.held_bytes == 0 and c.stats.reassembled == 1


def test_collector_hands_up_what_cannot_complete():
    c = FragmentCollector(timeout=5.0)
    parts = split(big_bundle(), 1000)
    got = []
    for p in parts[:-1]:  # the last fragment is lost
        got += c.add(p, 1.0)
    assert got == [] and c.held_bytes > 0
    assert c.expire(5.9) == []
    assert c.expire(6.0) == parts[:-1]  # passed up for the destination's reassembly
    assert c.held_bytes == 0 and c.stats.passed_up == len(parts) - 1
    plain = Bundle.build("ipn:2.0", "ipn:1.0", b"small").to_bytes()
    assert c.add(plain, 7.0) == [plain] and c.add(b"junk", 7.0) == [b"junk"]


def test_collector_is_bounded_in_adus_and_bytes():
    c = FragmentCollector(max_adus=4, max_bytes=200_000)
    held = []
    for seq in range(20):  # 20 ADUs, one fragment each: only 4 are held
        held += c.add(split(big_bundle(seq=seq), 1000)[0], 0.0)
        assert len(c._adus) <= 4 and c.held_bytes <= 200_000
    assert len(held) == 16 and c.stats.passed_up == 16
    huge = split(big_bundle(300_000), 1000)[0]  # larger than the whole buffer
    assert c.add(huge, 0.0) == [huge]


def run(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def _pair(**kw):
    a = UdpLink("127.0.0.1", 9, **kw)
    await a.open_contact()
    b = UdpLink("127.0.0.1", a.local_address[1], **kw)
    await b.open_contact()
    a.peer = a._peer_addr = ("127.0.0.1", b.local_address[1])
    return a, b


def test_bundles_larger_than_the_mtu_cross_udp():
    async def main():
        a, b = await _pair(mtu=1500)
        assert a.max_bundle == 1500 - UDP_IPV4_OVERHEAD
        bundles = [big_bundle(n, seq=i) for i, n in enumerate((100, 5_000, 60_000, 200_000))]
        for x in bundles:
            await a.send(x)
        rx = b.received()
        got = [await asyncio.wait_for(rx.__anext__(), 10) for _ in bundles]
        assert got == bundles
        assert a.fragments_sent > 100 and a.bundles_sent == 4
        assert b.collector.stats.reassembled == 3 and b.metrics().bundles_received == 4
        with pytest.raises(LimitExceededError):
            await a.send(b"not a bundle" * 200)
        for link in (a, b):
            await link.close_contact()
    run(main())


def test_lost_fragment_hands_fragments_up_after_the_timeout():
    async def main():
        a, b = await _pair(mtu=1200, reassembly_timeout=0.2)
        orig = a._transport.sendto
        sent = []

        def lossy(data, addr):  # drop the third fragment on the wire
            sent.append(data)
            if len(sent) != 3:
                orig(data, addr)
        a._transport.sendto = lossy
        x = big_bundle(6_000)
        await a.send(x)
        rx = b.received()
        got = [await asyncio.wait_for(rx.__anext__(), 5) for _ in range(len(sent) - 1)]
        assert sorted(got) == sorted(sent[:2] + sent[3:])  # every fragment that arrived
        for link in (a, b):
            await link.close_contact()
    run(main())


def test_path_mtu_and_arguments():
    assert path_mtu("127.0.0.1", 9) >= 1280  # loopback's route MTU (65536 on Linux)
    with pytest.raises(InvalidArgumentError):
        UdpLink("127.0.0.1", 1, mtu=20)
    with pytest.raises(InvalidArgumentError):
        UdpLink("127.0.0.1", 1, max_bundle=0)
