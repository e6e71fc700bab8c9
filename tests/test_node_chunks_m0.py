"""Chunks without parity (FEATURE_CHUNKS_M0): a node advertises in its peer record that it
takes chunked messages as their data shards alone, and senders give such a peer no parity
chunk on a path that loses nothing; peers whose records lack it still get one (docs/node.md
"Node frames")."""
from __future__ import annotations

import asyncio
import os
import random

import pytest

from betanet.errors import MalformedError
from betanet.fec import ReedSolomon, data_shards, unframe
from betanet.node import envelope as env
from betanet.node.identity import Identity
from betanet.node.peers import PeerRecord
from node_helpers import LocalAir, fast_config, introduce, make_node, started_pair, take

def _km(frame: bytes) -> tuple[int, int]:
    """(k, m) of a chunk frame, read with the envelope's own header layout."""
    _, _, _, k, m = env._CHUNK.unpack_from(frame)
    return k, m


# ---- the format -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 1000, 65_533])
def test_data_shards_are_the_data_half_of_split_and_unframe_inverts_them(n):
    msg = os.urandom(n)
    for k in (1, 2, 7):
        rows = data_shards(msg, k)
        assert [r.tobytes() for r in rows] == ReedSolomon(k, 1).split(msg)[:k]
        assert unframe(b"".join(r.tobytes() for r in rows)) == msg


@pytest.mark.parametrize("bad", [b"", b"\x00\x00\x00", b"\x00\x00\x00\x05abcd",
                                 b"\x00\x00\x00\x01a\x00\x01"])
def test_unframe_refuses_short_frames_and_nonzero_padding(bad):
    with pytest.raises(MalformedError):
        unframe(bad)


def test_chunks_without_parity_only_for_a_receiver_that_takes_them():
    sealed = os.urandom(50_000)
    plain = env.frames_for(sealed, 4096, 0, m0_ok=True)
    assert {_km(f) for f in plain} == {(13, 0)} and len(plain) == 13
    assert {_km(f) for f in env.frames_for(sealed, 4096, 0)} == {(13, 1)}       # earlier peers
    assert {_km(f) for f in env.frames_for(sealed, 4096, 2, m0_ok=True)} == {(13, 2)}  # lossy path
    order = plain[:]
    random.Random(1).shuffle(order)
    asm = env.Assembler()
    out = [asm.feed(f) for f in order + order[:3]]          # any order, duplicates after
    done = [o for o in out if o is not None]
    assert len(done) == 1 and bytes(done[0]) == sealed and asm.pending == 0


def test_chunks_without_parity_need_every_data_shard_and_refuse_bad_padding():
    sealed = os.urandom(9_000)
    frames = env.frames_for(sealed, 4096, 0, m0_ok=True)
    asm = env.Assembler()
    assert all(asm.feed(f) is None for f in frames[1:]) and asm.pending == 1   # one lost: waits
    last = bytearray(frames[-1])
    last[-1] ^= 1                                           # padding that is not zero
    with pytest.raises(MalformedError):
        asm2 = env.Assembler()
        for f in frames[:-1] + [bytes(last)]:
            asm2.feed(f)
    # a lone m = 0 chunk too short to hold the length prefix
    with pytest.raises(MalformedError):
        env.Assembler().feed(b"\x02" + bytes(8) + bytes([0, 1, 0]) + b"x")


# ---- the record --------------------------------------------------------------------------
def test_features_round_trip_and_stay_out_of_records_that_have_none():
    ident = Identity.generate()
    rec = PeerRecord.decode(PeerRecord.create(ident, 1, features=[env.FEATURE_CHUNKS_M0]).raw)
    assert rec.features == (env.FEATURE_CHUNKS_M0,)
    plain = PeerRecord.create(ident, 2, htx_tcp=["127.0.0.1:1"])
    assert plain.features == () and b"features" not in plain.raw


def test_a_record_with_too_many_or_odd_features_is_malformed():
    ident = Identity.generate()
    for bad in ([f"f{i}" for i in range(17)], ["x" * 256], [7]):
        with pytest.raises(MalformedError):
            PeerRecord.create(ident, 1, features=bad)


# ---- two nodes ---------------------------------------------------------------------------
def _chunks_seen(node) -> list[tuple[int, int]]:
    link, seen = node.links[0], []
    real = link.on_frame

    async def spy(frame):
        if frame[:1] == b"\x02":
            seen.append(_km(frame))
        return await real(frame)
    link.on_frame = spy
    return seen


def _without_features(node) -> bytes:
    """``node``'s record as a node of the earlier release would write it."""
    rec = node.record()
    assert rec.features == (env.FEATURE_CHUNKS_M0,)
    return PeerRecord.create(node.identity, rec.seq + 1, htx_tcp=rec.htx_tcp, htx_quic=rec.htx_quic,
                             dtn_eids=rec.dtn_eids, ble_id=rec.ble_id).raw


def test_a_node_sends_no_parity_to_a_peer_that_takes_it_and_one_chunk_to_a_peer_that_does_not(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path, transport={"chunk_size": 4096})
        seen = _chunks_seen(d)
        body = os.urandom(40_000)
        await (await a.send(d.me, body)).acked(20)
        assert seen and {m for _, m in seen} == {0}
        assert len(seen) == seen[0][0]                      # the k data chunks, nothing more
        a.add_peer(_without_features(d))                    # d as an earlier node
        seen.clear()
        await (await a.send(d.me, body[::-1])).acked(20)
        assert seen and {m for _, m in seen} == {1}
        assert len(seen) == seen[0][0] + 1
        got = await take(d, 2)
        assert [m.body for m in got] == [body, body[::-1]]
        await a.stop()
        await d.stop()
    asyncio.run(go())


def test_a_radio_link_keeps_its_parity_chunk_even_for_a_peer_that_takes_none(tmp_path):
    """m = 0 only over reliable links (HTX, QUIC, DTN custody): over BLE a lost chunk would
    cost the whole message again, and the radio's loss estimate may read 0 before it has data."""
    air = LocalAir()
    a = make_node(tmp_path, "a", air=air, config=fast_config(transport={"chunk_size": 4096}))
    d = make_node(tmp_path, "d", air=air, seed=1)
    introduce([a, d])
    sealed = os.urandom(20_000)
    assert {_km(f)[1] for f in a._frames(sealed, "htx", d.me)} == {0}
    assert {_km(f)[1] for f in a._frames(sealed, "ble", d.me)} == {1}
