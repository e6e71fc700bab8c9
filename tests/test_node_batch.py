"""The node's batching (issue 14 throughput): the version-2 batch envelope (vector, an
independent opener from docs/node.md, tamper of any message refuses the whole batch), the
coalescing lane, batched acknowledgments, a batch tampered in flight losing nothing, peers
that read only version 1, legacy outbox rows, and the store's batch operations."""
from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from betanet.errors import AuthenticationError, InvalidArgumentError, LimitExceededError, MalformedError
from betanet.node import envelope as env
from betanet.node.batcher import Lane, pack_record, unpack_record
from betanet.node.identity import Identity
from betanet.node.store import ACKED, NodeStore

from node_helpers import introduce, make_node, started_pair, take, wait_for

VEC = json.loads((Path(__file__).parent / "vectors" / "node_envelope.json").read_text())


def run(coro, timeout=60):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def _ident(hexstr: str) -> Identity:
    return Identity.from_bytes(bytes.fromhex(hexstr))


# ---- the envelope ------------------------------------------------------------------------
def test_batch_vector_opens_with_the_library():
    bob, v = _ident(VEC["bob"]["identity"]), VEC["batch"]
    msgs = env.open_any(bob, bytes.fromhex(v["sealed"]))
    assert [(m.message_id.hex(), m.seq, m.kind, m.topic, m.created_ms, m.expires_ms, m.body.hex())
            for m in msgs] == [(e["message_id"], e["seq"], e["kind"], e["topic"], e["created_ms"],
                                e["expires_ms"], e["body"]) for e in v["entries"]]
    assert {m.sender for m in msgs} == {VEC["alice"]["peer_id_text"]}


def test_independent_opener_reads_the_batch_vector():
    """A second implementation of docs/node.md "Batch envelope", from primitives only."""
    v, bob = VEC["batch"], _ident(VEC["bob"]["identity"])
    sealed = bytes.fromhex(v["sealed"])
    header, eph = sealed[:67], sealed[35:67]
    assert sealed[0] == 2 and env.recipient_of(sealed) == VEC["bob"]["peer_id_text"]
    shared = X25519PrivateKey.from_private_bytes(bob.exchange_private).exchange(
        X25519PublicKey.from_public_bytes(eph))
    key = HKDF(hashes.SHA256(), 32, eph + bob.exchange_public, b"betanet/node/seal/2").derive(shared)
    inner = ChaCha20Poly1305(key).decrypt(bytes(12), sealed[67:], header)
    ed, xp, count = struct.unpack_from(">32s32sH", inner)
    Ed25519PublicKey.from_public_bytes(ed).verify(inner[-64:], b"betanet/node/batch/2" + header + inner[:-64])
    assert ed.hex() == VEC["alice"]["ed25519_public"] and xp.hex() == VEC["alice"]["x25519_public"]
    pos, got = 66, []
    for _ in range(count):
        mid, seq, created, expires, kind, tlen, blen = struct.unpack_from(">16sQQQBBI", inner, pos)
        pos += 46
        topic, body = inner[pos:pos + tlen].decode(), inner[pos + tlen:pos + tlen + blen]
        pos += tlen + blen
        got.append({"message_id": mid.hex(), "seq": seq, "kind": kind, "topic": topic,
                    "created_ms": created, "expires_ms": expires, "body": body.hex()})
    assert pos == len(inner) - 64 and got == v["entries"]
    # fixed bytes of a batch and of each entry, as documented
    assert env.BATCH_OVERHEAD == 67 + 66 + 16 + 64 and env.ENTRY_OVERHEAD == 46


def test_version_1_still_opens_through_open_any():
    bob = _ident(VEC["bob"]["identity"])
    [m] = env.open_any(bob, bytes.fromhex(VEC["sealed"]["sealed"]))
    assert m.body == b"hello, betanet" and m.seq == 7


def test_tampering_any_byte_of_any_entry_refuses_the_whole_batch():
    a, b = Identity.generate(), Identity.generate()
    entries = [env.Entry(bytes([i]) * 16, b"m%d" % i * 20, i, topic="t") for i in range(5)]
    s = env.seal_batch(a, b.signing_public, b.exchange_public, entries)
    assert [m.body for m in env.open_any(b, s)] == [e.body for e in entries]
    for pos in list(range(0, len(s), 7)) + [len(s) - 1]:
        t = bytearray(s)
        t[pos] ^= 0x10
        with pytest.raises((AuthenticationError, MalformedError)):
            env.open_any(b, bytes(t))
    with pytest.raises(AuthenticationError, match="another peer"):
        env.open_any(Identity.generate(), s)
    with pytest.raises(MalformedError):
        env.open_sealed(b, s)            # the version-1 opener does not take a batch


def test_batch_with_a_valid_aead_but_foreign_signer_is_refused():
    a, b, mallory = Identity.generate(), Identity.generate(), Identity.generate()
    eph = bytes([9] * 32)
    s = env.seal_batch(a, b.signing_public, b.exchange_public, [env.Entry(bytes(16), b"hi")],
                       ephemeral_private=eph, version=2)
    header, ephpub = s[:67], s[35:67]
    shared = X25519PrivateKey.from_private_bytes(eph).exchange(X25519PublicKey.from_public_bytes(b.exchange_public))
    key = HKDF(hashes.SHA256(), 32, ephpub + b.exchange_public, b"betanet/node/seal/2").derive(shared)
    inner = ChaCha20Poly1305(key).decrypt(bytes(12), s[67:], header)
    inner = mallory.signing_public + inner[32:]
    with pytest.raises(AuthenticationError, match="signature"):
        env.open_any(b, header + ChaCha20Poly1305(key).encrypt(bytes(12), inner, header))


def test_batch_arguments_and_bad_ack_bodies():
    a, b = Identity.generate(), Identity.generate()
    with pytest.raises(InvalidArgumentError):
        env.seal_batch(a, b.signing_public, b.exchange_public, [])
    with pytest.raises(InvalidArgumentError):
        env.seal_batch(a, b.signing_public, b.exchange_public, [env.Entry(bytes(15), b"x")])
    with pytest.raises(InvalidArgumentError):
        env.seal_batch(a, b.signing_public, b.exchange_public, [env.Entry(bytes(16), b"x", topic="t" * 256)])
    s = env.seal_batch(a, b.signing_public, b.exchange_public, [env.Entry(bytes(16), b"x" * 17, kind=env.ACK)])
    with pytest.raises(MalformedError, match="16-byte"):
        env.open_any(b, s)


def test_outbox_record_roundtrip():
    r = pack_record(1, 2, b"body")
    assert r[0] == 0 and unpack_record(r) == (1, 2, b"body")
    assert unpack_record(b"\x01" + bytes(100)) is None        # a legacy sealed row
    with pytest.raises(MalformedError):
        unpack_record(b"\x00short")


# ---- the lane ----------------------------------------------------------------------------
def test_lane_sends_a_lone_item_at_once_and_coalesces_while_busy():
    async def go():
        sent, gate = [], asyncio.Event()

        async def send(batch):
            sent.append(list(batch))
            await gate.wait()

        def take(q):
            out = []
            while q and len(out) < 3:
                out.append(q.popleft())
            return out
        lane = Lane(send, take, max_inflight=1)
        lane.put(1)
        await asyncio.sleep(0)                 # one turn of the loop: no timer, no window
        await asyncio.sleep(0)
        assert sent == [[1]]
        for i in range(2, 7):                  # queued while the first batch is in flight
            lane.put(i)
        await asyncio.sleep(0)
        assert sent == [[1]] and lane.busy == 6
        gate.set()
        await wait_for(lambda: lane.busy == 0, 5)
        assert sent == [[1], [2, 3, 4], [5, 6]]
    run(go())


# ---- nodes -------------------------------------------------------------------------------
def test_many_messages_travel_in_few_batches_and_few_acknowledgments(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        first = await a.send(d.me, b"warm-up")
        await first.acked(10)
        frames0 = a.links[0].counters["frames_received"]
        handles = await a.send_many(d.me, [b"msg %03d" % i for i in range(60)], topic="bulk")
        assert [h.message_id for h in handles] == list(dict.fromkeys(h.message_id for h in handles))
        await asyncio.gather(*(h.acked(20) for h in handles))
        got = await take(d, 61, 20.0)
        assert [m.body for m in got] == [b"warm-up"] + [b"msg %03d" % i for i in range(60)]
        assert [m.seq for m in got] == list(range(61))
        # 60 messages: a handful of batch envelopes out, a handful of acknowledgments back
        assert a.counters["batches_sent"] <= 10
        assert a.links[0].counters["frames_received"] - frames0 <= 10
        assert a.counters["messages_acked"] == 61 and d.counters["acks_sent"] == 61
        assert all(h.transports == ["htx"] and h.route == [a.me, d.me] for h in handles)
        st = await a.store.counts()
        assert st["outbox_acked"] == 61 and st["outbox_pending"] == 0
        await a.stop()
        await d.stop()
    run(go())


def test_concurrent_sends_coalesce_and_arrive_once_in_order(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        handles = await asyncio.gather(*(a.send(d.me, b"c%03d" % i) for i in range(80)))
        await asyncio.gather(*(h.acked(20) for h in handles))
        got = await take(d, 80, 20.0)
        assert sorted(m.body for m in got) == [b"c%03d" % i for i in range(80)]
        assert [m.seq for m in got] == list(range(80))        # in order per sender
        assert len({m.message_id for m in got}) == 80
        assert a.counters["batches_sent"] < 80
        await a.stop()
        await d.stop()
    run(go())


def test_a_batch_tampered_in_flight_is_refused_and_nothing_is_lost(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path)
        link = d.links[0]
        real, tampered = link.on_frame, []

        async def tamper(frame):
            if frame[:2] == b"\x01\x03" and not tampered:      # the first batch envelope
                t = bytearray(frame)
                t[len(t) // 2] ^= 1                             # inside one of its messages
                tampered.append(1)
                return await real(bytes(t))
            return await real(frame)
        link.on_frame = tamper
        handles = await a.send_many(d.me, [b"t%02d" % i for i in range(20)])
        await asyncio.gather(*(h.acked(30) for h in handles))
        got = await take(d, 20, 20.0)
        assert tampered and d.counters["dropped_auth"] >= 1
        assert [m.body for m in got] == [b"t%02d" % i for i in range(20)]
        st = await d.store.counts()
        assert st["inbox_delivered"] == 20                      # each once
        await a.stop()
        await d.stop()
    run(go())


def test_a_peer_that_reads_only_version_1_still_gets_everything(tmp_path):
    """d behaves as a node before batching: a version-2 envelope is not a message it knows
    (refused at the hop, as its recipient_of did), and it acknowledges one by one in
    version 1. a finds out and sends singles; all arrive once, in order."""
    async def go():
        a, d = await started_pair(tmp_path)
        link = d.links[0]
        real = link.on_frame

        async def old(frame):
            if frame[:2] in (b"\x01\x02", b"\x01\x03"):
                return False
            return await real(frame)
        link.on_frame = old
        handles = await a.send_many(d.me, [b"v1 %02d" % i for i in range(12)])
        await asyncio.gather(*(h.acked(30) for h in handles))
        got = await take(d, 12, 20.0)
        assert [m.body for m in got] == [b"v1 %02d" % i for i in range(12)]
        assert d.counters["acks_sent"] == 12 and d.me not in a._v2_peers
        assert a.me not in d._v2_peers                 # so d's acks were version 1
        # the other direction: d sends as an old node does (version 1 only); a (new)
        # answers in version 1, which d's old hop takes
        d._v1_until[a.me] = float("inf")
        h = await d.send(a.me, b"from the old side")
        await h.acked(20)
        assert [m.body for m in await take(a, 1, 20.0)] == [b"from the old side"]
        await a.stop()
        await d.stop()
    run(go())


def test_legacy_sealed_outbox_row_is_sent_as_it_is(tmp_path):
    """An outbox written by the version before batching holds version-1 sealed bytes."""
    async def go():
        a, d = make_node(tmp_path, "a"), make_node(tmp_path, "d")
        await d.start()
        store = NodeStore(a.store_path)
        mid = bytes(range(16))
        await store.add_outgoing(mid, d.me, "balanced", "old", 1e12, lambda seq: env.seal(
            a.identity, d.identity.signing_public, d.identity.exchange_public, b"from before",
            message_id=mid, seq=seq, topic="old"))
        await store.close()
        await a.start()
        introduce([a, d])
        got = await take(d, 1, 20.0)
        assert (got[0].body, got[0].topic, got[0].message_id) == (b"from before", "old", mid)
        assert await wait_for(lambda: a.counters.get("messages_acked", 0) == 1, 10)
        await a.stop()
        await d.stop()
    run(go())


# ---- store batch operations ----------------------------------------------------------------
def test_store_batch_operations(tmp_path):
    async def go():
        s = NodeStore(tmp_path / "s.db", inbox_limit=3)
        for dest, idx in (("C", (0, 2)), ("B", (1, 3)), ("C", (4,))):
            first = await s.add_outgoing_batch(dest, "balanced", "", 1e12, [bytes([i]) * 16 for i in idx],
                                               [pack_record(0, 1, b"%d" % i) for i in idx])
            assert first == (2 if idx == (4,) else 0)     # consecutive per destination
        assert [o.seq for o in await s.get_outgoing_many([bytes([i]) * 16 for i in (4, 0, 2)])] == [0, 1, 2]
        assert await s.finish_outgoing_many([bytes([1]) * 16, bytes([1]) * 16, bytes([0]) * 16, bytes(16)],
                                            ACKED, "B") == ["done", "again", "stray", "stray"]
        assert len(await s.pending_brief()) == 4
        out = await s.accept_incoming_many([(bytes([i]) * 16, "X", i, "", b"b") for i in range(5)]
                                           + [(bytes([0]) * 16, "X", 0, "", b"b")])
        assert out[:3] == ["new"] * 3 and all(isinstance(o, LimitExceededError) for o in out[3:5])
        assert out[5] == "duplicate"
        ready = await s.ready()
        assert [m.seq for m in ready] == [0, 1, 2]
        fut = await s.mark_delivered(ready[0].msg_id, wait=False)
        assert await fut is True
        await s.close()
        s = NodeStore(tmp_path / "s.db", inbox_limit=3)
        assert [m.seq for m in await s.ready()] == [1, 2]         # the deferred mark was durable
        out = await s.accept_incoming_many([(bytes([3]) * 16, "X", 3, "", b"b")])
        assert out == ["new"] and [m.seq for m in await s.ready()] == [1, 2, 3]   # order kept after reopen
        await s.close()
    run(go())


# ---- kill -9 of the sender while batches are on their way ---------------------------------
def test_kill_9_of_the_sender_mid_batch_then_restart_delivers_each_message_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    helper = str(Path(__file__).parent / "node_batch_sender.py")
    env_vars = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    a_dir = tmp_path / "a"
    a_dir.mkdir()
    n = 400

    async def go():
        d = make_node(tmp_path, "d")
        await d.start()
        (tmp_path / "d.record").write_bytes(d.record().raw)
        got: list = []
        agen = d.messages()

        async def consume():
            async for m in agen:
                got.append(m)

        async def start_sender():
            p = await asyncio.create_subprocess_exec(
                sys.executable, helper, str(a_dir), str(tmp_path / "d.record"), str(n),
                stdout=subprocess.PIPE, env=env_vars)
            assert (await asyncio.wait_for(p.stdout.readline(), 30)).startswith(b"ready")
            d.add_peer((a_dir / "peer.record").read_bytes())
            return p
        consumer = asyncio.ensure_future(consume())
        link = d.links[0]
        real = link.on_frame

        one_at_a_time = asyncio.Lock()

        async def slow(frame):                    # a slow receiver: batches pile up in flight
            async with one_at_a_time:
                await asyncio.sleep(0.2)
                return await real(frame)
        link.on_frame = slow
        p = await start_sender()
        # kill -9 once messages are arriving (batches in flight, more being accepted)
        assert await wait_for(lambda: len(got) >= 1, 60)
        p.send_signal(signal.SIGKILL)
        await p.wait()
        before = len(got)
        accepted = (await p.stdout.read()).split()
        p = await start_sender()                  # resumes its outbox
        try:
            # every message the sender had accepted arrives, each once, in order
            last = max([int(x) for x in accepted if x.isdigit()] or [0])
            assert await wait_for(lambda: len(got) >= last, 90), (len(got), last)
            # the restarted sender resends what was never acknowledged; d drops those by id
            await wait_for(lambda: before < n or d.counters.get("duplicates_received", 0) > 0, 20)
            await asyncio.sleep(1.0)              # room for any duplicate to show up
            bodies = [m.body for m in got]
            assert bodies == [b"m%04d" % i for i in range(len(bodies))]
            assert len(bodies) >= last
            # the kill cut the stream, or batches d took were never acknowledged to the dead
            # sender and came again after its restart (dropped by id)
            assert before < n or d.counters.get("duplicates_received", 0) > 0
            assert len({m.message_id for m in got}) == len(got)
        finally:
            p.send_signal(signal.SIGKILL)
            await p.wait()
            consumer.cancel()
            await d.stop()
    run(go(), 240)
