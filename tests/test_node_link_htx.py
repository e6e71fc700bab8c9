"""The node's HTX link (node/link_htx.py): one frame stream per connection with hop
acknowledgments by index, frames larger than the stream window, refusals, peers of the
earlier release (one stream per frame) in both directions, and a lost connection failing
the frames on their way and marking the peer down."""
from __future__ import annotations

import asyncio
import os

import pytest

from betanet.node.identity import Identity
from betanet.node.link_htx import MAX_FRAME, OK, REFUSED, HtxLink
from betanet.node.links import LinkError
from betanet.node.peers import PeerBook, PeerRecord


def run(coro, timeout=60):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


async def _pair(tmp_path, on_frame):
    """Link ``a`` (sender) knowing link ``b`` (listening, frames to ``on_frame``)."""
    ia, ib = Identity.generate(), Identity.generate()
    pa, pb = PeerBook(), PeerBook()
    a = HtxLink(ia, pa, listen="", cert_dir=str(tmp_path), retry_s=0.3, connect_timeout=2.0)
    os.makedirs(tmp_path / "b", exist_ok=True)
    b = HtxLink(ib, pb, cert_dir=str(tmp_path / "b"))
    b.on_frame = on_frame
    await b.open()
    pa.add(PeerRecord.create(ib, 1, htx_tcp=[f"127.0.0.1:{b.port}"]))
    return a, b, ib.peer_id_text


async def _old_receiver(link: HtxLink, st) -> None:
    """The earlier release's inbound stream: the stream to its end is one frame."""
    frame = b""
    while len(frame) <= MAX_FRAME:
        more = await st.read(MAX_FRAME + 1 - len(frame))
        if not more:
            break
        frame += more
    ok = await link.on_frame(frame)
    st.write(OK if ok else REFUSED)
    st.write_eof()
    await st.drain()


def test_frames_share_one_stream_answered_by_index(tmp_path):
    async def go():
        got = []

        async def on_frame(f):
            got.append(f)
            if f == b"\x01slow":
                await asyncio.sleep(0.2)         # answered after the frames behind it
            return f != b"\x01no"
        a, b, peer = await _pair(tmp_path, on_frame)
        big = b"\x01" + os.urandom(3 << 20)      # above the 1 MiB stream window
        frames = [b"\x01slow", b"\x01one", big, b"\x01no", b"\x01two"]
        res = await asyncio.gather(*(a.send(peer, f, 10) for f in frames), return_exceptions=True)
        assert [type(r) for r in res] == [float, float, float, LinkError, float]
        assert "refused" in str(res[3])
        assert got == frames                      # all of them, in order, intact
        assert a.counters["frame_streams"] == 1 and a.counters["connects"] == 1
        assert a.counters["frames_sent"] == 4 and b.counters["refused"] == 1
        for _ in range(20):                       # the stream stays: more frames, no new one
            await a.send(peer, b"\x01more", 10)
        assert a.counters["frame_streams"] == 1 and b.counters["frames_received"] == 25
        assert peer in a.reaches()
        await a.close()
        await b.close()
    run(go())


def test_a_receiver_of_the_earlier_release_gets_one_stream_per_frame(tmp_path):
    async def go():
        got = []

        async def on_frame(f):
            got.append(f)
            return True
        a, b, peer = await _pair(tmp_path, on_frame)
        b._one = lambda st: _old_receiver(b, st)
        # the hello waits half the hop timeout (1 s here, below connect_timeout 2 s): the
        # first frame still gets through, one stream per frame
        await a.send(peer, b"\x01first", 1.0)
        await asyncio.gather(*(a.send(peer, b"\x01n%d" % i, 1.0) for i in range(5)))
        assert got[0] == b"\x01first" and sorted(got[1:]) == [b"\x01n%d" % i for i in range(5)]
        assert a.counters["legacy_connections"] == 1 and a.counters["frame_streams"] == 0
        a._mark_down(peer, "test: a new connection")   # remembered per peer, not asked again
        await a.send(peer, b"\x01later", 1.0)
        assert a.counters["connects"] == 2 and a.counters["legacy_connections"] == 1
        assert got[-1] == b"\x01later"
        await a.close()
        await b.close()
    run(go())


def test_a_sender_of_the_earlier_release_is_still_read(tmp_path):
    async def go():
        got = []

        async def on_frame(f):
            got.append(f)
            return f != b"\x01no"
        a, b, peer = await _pair(tmp_path, on_frame)

        async def no_pipe(peer, c, wait):
            return None                           # a sender that opens a stream per frame
        a._pipe = no_pipe
        await a.send(peer, b"\x01old", 10)
        with pytest.raises(LinkError, match="refused"):
            await a.send(peer, b"\x01no", 10)
        assert got == [b"\x01old", b"\x01no"] and b.counters["frames_received"] == 2
        await a.close()
        await b.close()
    run(go())


def test_a_lost_connection_fails_the_frames_on_their_way(tmp_path):
    async def go():
        gate = asyncio.Event()

        async def on_frame(f):
            if f == b"\x01stuck":
                await gate.wait()
            return True
        a, b, peer = await _pair(tmp_path, on_frame)
        await a.send(peer, b"\x01warm", 10)
        changes = []
        a.on_change = lambda p, up: changes.append((p, up))
        pending = asyncio.ensure_future(a.send(peer, b"\x01stuck", 30))
        await asyncio.sleep(0.2)
        for c in list(a._conns.values()):
            c._abort(ConnectionResetError("cut"))   # as a dropped TCP connection
        with pytest.raises(LinkError):
            await asyncio.wait_for(pending, 10)
        assert changes == [(peer, False)] and peer not in a.reaches()
        gate.set()
        await asyncio.sleep(0.4)                  # retry_s: probed again on a new connection
        await a.send(peer, b"\x01again", 10)
        assert a.counters["connects"] == 2 and a.counters["frame_streams"] == 2
        await a.close()
        await b.close()
    run(go())


def test_a_bad_frame_length_resets_the_stream_not_the_node(tmp_path):
    async def go():
        async def on_frame(f):
            return True
        a, b, peer = await _pair(tmp_path, on_frame)
        await a.send(peer, b"\x01warm", 10)
        pipe = next(iter(a._pipes.values()))
        pipe.st.write((MAX_FRAME + 1).to_bytes(4, "big"))   # a length no frame may have
        await asyncio.sleep(0.3)
        assert pipe.dead is not None              # the receiver reset the stream
        await a.send(peer, b"\x01after", 10)      # a new stream on the same connection
        assert a.counters["frame_streams"] == 2 and a.counters["connects"] == 1
        await a.close()
        await b.close()
    run(go())


def test_a_stream_holds_a_bounded_number_of_frames_in_handling(tmp_path, monkeypatch):
    """A peer sending faster than its frames are handled is not read further: the frames in
    handling stay at the bound, the rest wait in the sender's flow-control window."""
    import betanet.node.link_htx as lh
    monkeypatch.setattr(lh, "STREAM_INFLIGHT_FRAMES", 4)

    async def go():
        gate, busy, peak = asyncio.Event(), [0], [0]

        async def on_frame(f):
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
            await gate.wait()
            busy[0] -= 1
            return True
        a, b, peer = await _pair(tmp_path, on_frame)
        sends = [asyncio.ensure_future(a.send(peer, b"\x01f%d" % i, 30)) for i in range(12)]
        await asyncio.sleep(0.5)
        assert peak[0] == 4 and b.counters["frames_received"] == 4
        gate.set()
        await asyncio.gather(*sends)
        assert b.counters["frames_received"] == 12 and peak[0] == 4
        await a.close()
        await b.close()
    run(go())
