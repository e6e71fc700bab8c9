"""The HTX core (libbetanet): vectors, varints, key schedule, session parser and sealing."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings, strategies as st

from betanet._native import htx as n
from betanet.errors import (AuthenticationError, InvalidArgumentError, LimitExceededError,
                            MalformedError)

V = json.loads((Path(__file__).parent / "vectors" / "htx.json").read_text())
K1, K2, HH = (bytes.fromhex(V[k]) for k in ("k1", "k2", "handshake_hash"))


def hkdf(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


pytestmark = pytest.mark.usefixtures("no_leaks")   # conftest.py: libbetanet leak check


def test_key_schedule_matches_rfc5869_hkdf():
    assert n.derive_ns(K1).hex() == V["ns1"] == hkdf(K1, None, b"ns", 12).hex()
    assert n.derive_ns(K2).hex() == V["ns2"]
    assert n.next_key(K1, HH).hex() == V["next_k1"] == hkdf(K1, HH, b"next", 32).hex()


def test_vectors_seal_and_open_with_core_and_cryptography():
    keys = {"i2r": K1, "r2i": K2}
    for f in V["frames"]:
        key = keys[f["direction"]]
        if f["note"].startswith("first frame under K'"):
            key = bytes.fromhex(V["next_k1"])
        ns = n.derive_ns(key)
        pt = bytes.fromhex(f["plaintext"])
        frame = bytes.fromhex(f["frame"])
        assert n.frame_seal(key, ns, f["counter"], f["type"], f["stream_id"], pt) == frame, f["note"]
        t, sid, got, used = n.frame_open(key, ns, f["counter"], frame)
        assert (t, sid, got, used) == (f["type"], f["stream_id"], pt, len(frame))
        # Independently: header is AD, nonce = NS xor LE64(counter)||0^4.
        hlen = len(frame) - len(pt) - 16
        nonce = bytes(a ^ b for a, b in zip(ns, f["counter"].to_bytes(8, "little") + bytes(4)))
        assert ChaCha20Poly1305(key).decrypt(nonce, frame[hlen:], frame[:hlen]) == pt
        assert int.from_bytes(frame[:3], "big") == len(pt) and frame[3] == f["type"]


def test_varints():
    for v in V["varints"]:
        assert n.varint_encode(v["value"]).hex() == v["hex"]
        assert n.varint_decode(bytes.fromhex(v["hex"])) == (v["value"], len(v["hex"]) // 2)
    for v in V["varints_non_shortest"]:
        assert n.varint_decode(bytes.fromhex(v["hex"]))[0] == v["value"]
    with pytest.raises(InvalidArgumentError):
        n.varint_encode(1 << 62)
    with pytest.raises(MalformedError):
        n.varint_decode(b"\x80\x01")


@given(st.integers(0, (1 << 62) - 1))
def test_varint_roundtrip(v):
    enc = n.varint_encode(v)
    assert n.varint_decode(enc + b"junk") == (v, len(enc))


def pair(**kw):
    return n.Session(n.INITIATOR, K1, K2, HH, **kw), n.Session(n.RESPONDER, K1, K2, HH)


def all_frames(sess, data, split=None):
    out, i = [], 0
    split = split or len(data) or 1
    while i < len(data):
        frames, err = sess.receive(data[i:i + split])
        assert err == 0
        out += frames
        i += split
    return out


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=40000), max_size=6), st.integers(1, 5000))
def test_any_split_yields_the_same_frames(chunks, split):
    a, b = pair()
    wire = b"".join(bytes(a.seal_stream(1, c)) for c in chunks)
    got = all_frames(b, wire, split)
    assert b"".join(f[3] for f in got) == b"".join(chunks)
    assert b.pending == 0


def test_session_seal_matches_vectors_direction_keys():
    a, b = pair()
    f0 = V["frames"][0]
    assert bytes(a.seal_stream(1, b"hello")).hex() == f0["frame"]
    r = V["frames"][5]
    assert b.seal(n.PING, 0, bytes.fromhex(r["plaintext"])).hex() == r["frame"]


@pytest.mark.parametrize("threshold", ["frames", "bytes", "time"])
def test_key_update_schedule(threshold):
    kw = dict(frames={"rekey_frames": 10}, bytes={"rekey_bytes": 5000}, time={"rekey_ms": 1000})[threshold]
    a, b = pair(**kw)
    got = []
    for i in range(50):
        wire = a.seal_stream(1, b"x" * 500, now_ms=i * 100)
        got += all_frames(b, wire, 7)
    updates = [f for f in got if f[0] == n.KEY_UPDATE]
    assert len(updates) >= 4
    assert a.stats()["send_epoch"] == b.stats()["recv_epoch"] == len(updates)
    assert sum(len(f[3]) for f in got if f[0] == n.STREAM) == 50 * 500
    if threshold == "frames":
        assert a.stats()["send_counter"] < 10


def test_forced_key_update_and_old_key_rejected():
    a, b = pair()
    old = a.seal_stream(1, b"one")
    ku = a.seal(n.KEY_UPDATE, 0)
    assert len(ku) == 20
    new = a.seal_stream(1, b"two")
    assert [f[3] for f in all_frames(b, bytes(old) + ku + bytes(new))] == [b"one", b"", b"two"]
    # The same frame replayed after the update fails: the key moved on.
    c = n.Session(n.RESPONDER, K1, K2, HH)
    assert c.receive(bytes(old) + bytes(old))[1] == AuthenticationError.code


def test_corruption_replay_reorder_truncation_unknown_type_oversize():
    a, b = pair()
    f1, f2 = bytes(a.seal_stream(1, b"a" * 100)), bytes(a.seal_stream(1, b"b" * 100))
    for bad, code in [
        (f1[:10] + bytes([f1[10] ^ 1]) + f1[11:], AuthenticationError.code),   # ciphertext bit
        (f1[:-1] + bytes([f1[-1] ^ 0x80]), AuthenticationError.code),          # tag
        (f1 + f1, AuthenticationError.code),                                   # replay
        (f2 + f1, AuthenticationError.code),                                   # reorder
        (bytes([0, 0, 99]) + f1[3:], AuthenticationError.code),               # length changed (AD)
        (f1[:3] + b"\x07" + f1[4:], -15),                                      # unknown type
        (b"\xff\xff\xff\x00", LimitExceededError.code),                        # oversized length
    ]:
        s = n.Session(n.RESPONDER, K1, K2, HH)
        frames, err = s.receive(bad)
        assert err == code
        assert all(f[3] in (b"a" * 100,) for f in frames)       # only the authentic first frame
        assert s.receive(f1)[1] == code                         # sticky
    s = n.Session(n.RESPONDER, K1, K2, HH)
    assert s.receive(f1[:-5]) == ([], 0) and s.pending == len(f1) - 5   # stopped mid-frame


def test_oversized_length_rejected_before_buffering():
    s = n.Session(n.RESPONDER, K1, K2, HH, max_frame=1024)
    assert s.receive(b"\x00\x04")[1] == 0                     # not yet known
    assert s.receive(b"\x01")[1] == LimitExceededError.code   # 1025 > 1024 after 3 bytes
    assert s.pending == 3


def test_seal_limits():
    a, _ = pair(max_frame=1000)
    with pytest.raises(LimitExceededError):
        a.seal(n.STREAM, 1, b"\x00" + b"x" * 1000)
    with pytest.raises(InvalidArgumentError):
        a.seal(n.PING, 5, b"\x00" * 9)          # PING carries no stream id
    with pytest.raises(ValueError):
        n.Session(n.INITIATOR, K1[:31], K2, HH)
    with pytest.raises(InvalidArgumentError):
        n.Session(n.INITIATOR, K1, K2, HH, max_frame=1 << 24)


def test_plaintext_shape_checked_after_authentication():
    # A frame that authenticates but has an invalid shape (STREAM flags bit 2) is rejected.
    ns = n.derive_ns(K1)
    bad = n.frame_seal(K1, ns, 0, n.STREAM, 1, b"\x04data")
    s = n.Session(n.RESPONDER, K1, K2, HH)
    assert s.receive(bad) == ([], MalformedError.code)


def test_bounded_mutation_fuzz_of_the_parser():
    rng = random.Random(1234)
    a, _ = pair()
    seeds = [bytes(a.seal_stream(1, os.urandom(rng.randrange(0, 300)))) for _ in range(8)]
    seeds.append(a.seal(n.PING, 0, b"\x00" * 9))
    seeds.append(a.seal(n.WINDOW_UPDATE, 0, n.varint_encode(1000)))
    for i in range(3000):
        data = bytearray(b"".join(rng.sample(seeds, rng.randrange(1, 4))))
        for _ in range(rng.randrange(0, 4)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif op == 1:
                data = data[:rng.randrange(len(data) + 1)]
            else:
                data[rng.randrange(len(data) + 1):0] = os.urandom(rng.randrange(1, 20))
        s = n.Session(n.RESPONDER, K1, K2, HH, max_frame=rng.choice([64, 1024, 16384]))
        off = 0
        while off < len(data):
            step = rng.randrange(1, 200)
            frames, err = s.receive(bytes(data[off:off + step]))
            off += step
            if err:
                assert err in (-3, -4, -6, -15)
                break
        s.close()


def test_docs_reproduce_the_vectors():
    doc = (Path(__file__).parent.parent / "docs" / "htx.md").read_text()
    for key in ("k1", "k2", "handshake_hash", "ns1", "ns2", "next_k1", "next_ns1"):
        assert V[key] in doc, key
    for f in V["frames"]:
        assert f["frame"] in doc, f["note"]
    for v in V["varints"]:
        assert v["hex"] in doc


@pytest.mark.parametrize("size", [0, 1, 62, 63, 64, 65, 127, 128, 129, 1000, 16383])
def test_seal_stream_equals_generic_seal(size):
    # seal_stream encrypts flags|data without assembling it (RFC 8439 built by hand):
    # it must give the same bytes as the AEAD over the assembled plaintext.
    data = os.urandom(size)
    a, _ = pair()
    b, _ = pair()
    for flags in (0, 1):
        assert bytes(a.seal_stream(7, data, fin=bool(flags))) == b.seal(n.STREAM, 7, bytes([flags]) + data)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["d1", "d3", "fin3", "ping", "reset5", "ku"]),
                          st.binary(max_size=3000)), max_size=25), st.integers(1, 4000))
def test_receive_merges_data_runs_without_changing_meaning(ops, split):
    a, b = pair()
    wire, expect = bytearray(), []
    for op, payload in ops:
        if op in ("d1", "d3"):
            sid = int(op[1])
            wire += a.seal_stream(sid, payload)
            expect += [("data", sid, bytes(payload))] if payload else []
        elif op == "fin3":
            wire += a.seal_stream(3, payload, fin=True)
            expect += ([("data", 3, bytes(payload))] if payload else []) + [("fin", 3)]
        elif op == "ping":
            wire += a.seal(n.PING, 0, b"\x00" + payload[:8].ljust(8, b"p"))
            expect.append(("ping", payload[:8].ljust(8, b"p")))
        elif op == "reset5":
            wire += a.seal_stream(5, b"\x00\x09", flags=2)
            expect.append(("reset", 5, b"\x00\x09"))
        else:
            wire += a.seal(n.KEY_UPDATE, 0)
            expect.append(("ku",))
    got = []
    for t, sid, flags, body in all_frames(b, bytes(wire), split):
        if t == n.STREAM and flags & 2:
            got.append(("reset", sid, body))
        elif t == n.STREAM:
            if body:
                if got and got[-1][0] == "data" and got[-1][1] == sid:
                    got[-1] = ("data", sid, got[-1][2] + body)
                else:
                    got.append(("data", sid, body))
            if flags & 1:
                got.append(("fin", sid))
        elif t == n.PING:
            got.append(("ping", body))
        elif t == n.KEY_UPDATE:
            got.append(("ku",))
    merged = []
    for e in expect:                       # adjacent data on one stream reads as one run
        if e[0] == "data" and merged and merged[-1][0] == "data" and merged[-1][1] == e[1]:
            merged[-1] = ("data", e[1], merged[-1][2] + e[2])
        else:
            merged.append(e)
    assert got == merged
