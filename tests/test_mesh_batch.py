"""Flat-buffer batches of mesh packets (betanet.mesh.PacketArray, the *_batch core calls):
every frame equals the per-packet codec's, bad frames never stop a batch, hostile columns
are refused with clear errors, and the router's batch path behaves like its per-frame one."""
from __future__ import annotations

import random

import numpy as np
import pytest

from betanet._native import mesh as m
from betanet.errors import InvalidArgumentError, LimitExceededError
from betanet.mesh import PacketArray
from betanet.mesh.ble import hand_up
from betanet.mesh.packet import BROADCAST, Packet, packet_id
from betanet.mesh.radio import Energy
from betanet.mesh.router import Identity, MeshRouter

TS = 1_764_633_600_000
VIEW_FIELDS = ("version", "type", "ttl", "flags", "timestamp", "original_size", "sender_off",
               "recipient_off", "route_off", "route_hops", "payload_off", "payload_len",
               "signature_off", "packet_len")


def _columns(n, rng):
    payloads = [rng.randbytes(rng.randrange(0, 300)) for _ in range(n)]
    po = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum([len(p) for p in payloads], out=po[1:])
    senders = np.frombuffer(rng.randbytes(8 * n), np.uint8).reshape(n, 8)
    return payloads, po, senders


@pytest.mark.parametrize("version,pad,signed,directed", [(1, True, True, False), (2, False, False, True),
                                                         (1, False, True, True), (2, True, False, False)])
def test_encode_batch_equals_per_packet_encode(version, pad, signed, directed):
    rng = random.Random(version * 10 + pad)
    n = 57
    payloads, po, senders = _columns(n, rng)
    ttls = np.array([rng.randrange(256) for _ in range(n)], dtype=np.uint8)
    types = np.array([rng.choice((1, 2, 0x20, 0x60)) for _ in range(n)], dtype=np.uint8)
    stamps = np.array([TS + rng.randrange(10**6) for _ in range(n)], dtype=np.uint64)
    sig = rng.randbytes(64) if signed else None           # one row shared by all
    rcp = np.frombuffer(rng.randbytes(8 * n), np.uint8).reshape(n, 8) if directed else None
    arr = PacketArray.encode(sender=senders, payload=b"".join(payloads), payload_offsets=po, type=types,
                             timestamp=stamps, ttl=ttls, version=version, recipient=rcp, signature=sig, pad=pad)
    assert len(arr) == n
    for i in range(n):
        want = m.encode(version, int(types[i]), int(ttls[i]), int(stamps[i]), senders[i].tobytes(), payloads[i],
                        recipient=rcp[i].tobytes() if directed else None, signature=sig, pad=pad)
        assert arr.frame(i) == want
    assert arr.frames() == [arr.frame(i) for i in range(n)]


def test_decode_batch_matches_decode_and_survives_bad_frames():
    rng = random.Random(5)
    good = [Packet(type=2, sender=rng.randbytes(8), payload=rng.randbytes(rng.randrange(1, 400)), timestamp=TS + i,
                   ttl=i % 8, version=1 + i % 2, recipient=BROADCAST if i % 3 else None,
                   signature=rng.randbytes(64) if i % 2 else None, compress=False).encode(pad=bool(i % 2))
            for i in range(40)]
    frames = list(good)
    frames[7] = b"\x09" + frames[7][1:]                    # bad version
    frames[20] = frames[20][:15]                           # truncated
    frames.insert(30, b"")                                 # empty frame
    arr = PacketArray.from_frames(frames)
    assert arr.decoded == len(frames) - 3
    bad = {7, 20, 30}
    assert [i for i in range(len(frames)) if not arr.ok[i]] == sorted(bad)
    for i, frame in enumerate(frames):
        if i in bad:
            assert arr.status[i] < 0 and arr.views[i]["sender_off"] == 0
            continue
        one = m.decode(frame)
        base = int(arr.offsets[i])
        for name, want in zip(VIEW_FIELDS, one):
            got = int(arr.views[i][name])
            if name.endswith("_off") and want:
                got -= base                                # batch offsets count from the buffer
            assert got == want, (i, name)
        assert bytes(arr.payload(i)) == frame[one[10]:one[10] + one[11]]
    ids = arr.ids()
    for i, frame in enumerate(frames):
        assert ids[i].tobytes() == (bytes(16) if i in bad else packet_id(frame))


def test_dedup_check_batch_remembers_across_and_within_batches():
    d = m.Dedup(1024)
    ids = np.frombuffer(random.Random(1).randbytes(16 * 10), np.uint8).reshape(10, 16).copy()
    assert not d.check(ids[3].tobytes())
    ids[8] = ids[2]                                        # a copy later in the same batch
    ids[5] = 0                                             # a frame that did not decode
    seen = d.check_batch(ids)
    assert seen.tolist() == [False, False, False, True, False, True, False, False, True, False]
    assert d.check_batch(ids).all()
    assert d.check_batch(np.zeros((0, 16), np.uint8)).shape == (0,)


def test_hostile_columns_are_refused_with_clear_errors():
    s = bytes(8)
    with pytest.raises(InvalidArgumentError, match="payload_offsets"):
        m.encode_batch(s, b"abc", [0, 2, 1], type=2, timestamp=TS)
    with pytest.raises(InvalidArgumentError, match="payload_offsets"):
        m.encode_batch(s, b"abc", [0, 4], type=2, timestamp=TS)
    with pytest.raises(InvalidArgumentError, match="sender"):
        m.encode_batch(bytes(7), b"abc", [0, 3], type=2, timestamp=TS)
    with pytest.raises(InvalidArgumentError, match="sender"):
        m.encode_batch(bytes(24), b"abc", [0, 1, 3], type=2, timestamp=TS)     # 3 rows for 2
    with pytest.raises(InvalidArgumentError, match="ttl"):
        m.encode_batch(s, b"abc", [0, 3], type=2, timestamp=TS, ttl=300)
    with pytest.raises(InvalidArgumentError, match="ttl"):
        m.encode_batch(s, b"abc", [0, 3], type=2, timestamp=TS, ttl=[-1])
    with pytest.raises(InvalidArgumentError, match="version"):
        m.encode_batch(s, b"abc", [0, 1, 3], type=2, timestamp=TS, version=[1, 1, 1])
    with pytest.raises(InvalidArgumentError, match="batch packet 1"):
        m.encode_batch(s, b"abc", [0, 1, 3], type=2, timestamp=TS, version=[1, 3])
    big = bytes(70_000)
    with pytest.raises(LimitExceededError, match="batch packet 1"):      # v1 length field is 16 bits
        m.encode_batch(s, big, [0, 10, 70_000], type=2, timestamp=TS, version=1)
    buf, off = m.encode_batch(s, b"", [0, 0], type=2, timestamp=TS)
    assert len(buf) == 256 and off.tolist() == [0, 256]
    assert m.encode_batch(s, b"", [0], type=2, timestamp=TS)[0] == b""
    with pytest.raises(InvalidArgumentError):
        m.decode_batch(buf, [0, 300])                    # past the buffer
    with pytest.raises(InvalidArgumentError):
        m.decode_batch(buf + buf, [0, 300, 256])         # out of order
    with pytest.raises(InvalidArgumentError):
        m.decode_batch(buf, [])
    views, status, ok = m.decode_batch(buf, [0])
    assert ok == 0 and len(views) == 0
    views, status, ok = m.decode_batch(buf, off)
    forged = views.copy()
    forged[0]["payload_off"] = 10**9
    with pytest.raises(InvalidArgumentError, match="outside"):
        m.packet_id_batch(buf, forged)
    with pytest.raises(InvalidArgumentError):
        m.packet_id_batch(buf, np.zeros(1, np.uint64))


def _pair():
    rng = random.Random(3)
    a, b = Identity.generate("a", rng), Identity.generate("b", rng)
    ra, rb = MeshRouter(a, rng=random.Random(1)), MeshRouter(b, rng=random.Random(2))
    ra.link_up(b.peer_id)
    rb.link_up(a.peer_id)
    return ra, rb


def test_router_receive_batch_behaves_like_receive():
    ra, _ = _pair()
    frames = []
    for i in range(6):
        ra.broadcast(b"msg %d" % i, 1000 + i)
    frames = ra.frames_to_send()
    burst = frames + frames[:3] + [b"\x07junk" * 5] + frames[3:4]      # copies and a bad frame
    results = []
    for batch in (True, False):
        _, rb = _pair()
        ev = rb.receive_batch(burst, ra.me, 2000) if batch else \
            [e for f in burst for e in rb.receive(f, ra.me, 2000)]
        results.append(([(type(e).__name__, getattr(e, "packet", None) and e.packet.payload) for e in ev],
                         dict(rb.counters), {k: (p.send_ttl, p.heard) for k, p in rb._pending.items()}))
    assert results[0] == results[1]
    events, counters, _ = results[0]
    assert [p for name, p in events if name == "Delivered"] == [b"msg %d" % i for i in range(6)]
    assert counters["duplicates"] == 4 and counters["rejected_malformed"] == 1 and counters["rx_frames"] == 11


def test_hand_up_gives_a_links_frames_to_on_frames_as_one_batch():
    class R:
        energy = Energy()
        on_neighbour = on_frame = None

        def __init__(self):
            self.calls = []
            self.on_frames = lambda frames, link: self.calls.append((list(frames), link))

    r = R()
    hand_up(r, ([(b"1", b"A"), (b"2", b"A"), (b"3", b"B"), (b"4", b"A")], None))
    assert r.calls == [([b"1", b"2"], b"A"), ([b"3"], b"B"), ([b"4"], b"A")]
    assert r.energy.frames_received == 4
