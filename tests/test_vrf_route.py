"""VRF-based mixnode route selection (Betanet 1.1 section 7.2): the route seed, beacons,
distinct hops, the 8-distinct-sets reuse rule, AS diversity, determinism and verification."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from betanet import (AuthenticationError, BetanetError, InvalidArgumentError, NoPathError, vrf)

VEC = json.loads((Path(__file__).parent / "vectors" / "vrf.json").read_text())
SRC, DST = b"\xaa" * 32, b"\xbb" * 32


def nodes(n: int, groups: int = 4) -> list[vrf.MixnodeDescriptor]:
    return [vrf.MixnodeDescriptor(hashlib.sha256(b"node%d" % i).digest(), as_group=i % groups,
                                  address=("127.0.0.1", 9000 + i)) for i in range(n)]


def selector(n: int = 12, groups: int = 4, **kw) -> vrf.RouteSelector:
    return vrf.RouteSelector(nodes(n, groups), vrf.VRFKeyPair.from_seed(b"k" * 32),
                             vrf.LocalBeacon(b"test-beacon"), **kw)


pytestmark = pytest.mark.usefixtures("no_leaks")   # conftest.py: libbetanet leak check


def test_route_seed_vector():
    v = VEC["route_seed"]
    seed = vrf.route_seed(*(bytes.fromhex(v[k]) for k in ("beacon_set", "src_peer_id", "dst_peer_id", "stream_nonce")))
    assert seed.hex() == v["seed"]
    concat = b"".join(bytes.fromhex(v[k]) for k in ("beacon_set", "src_peer_id", "dst_peer_id", "stream_nonce"))
    assert seed == hashlib.sha256(concat).digest()


@pytest.mark.parametrize("n", [0, 15, 17, 32])
def test_stream_nonce_must_be_16_bytes(n):
    with pytest.raises(InvalidArgumentError):
        vrf.route_seed(bytes(32), SRC, DST, bytes(n))


def test_route_seed_argument_checks():
    with pytest.raises(InvalidArgumentError):
        vrf.route_seed(bytes(31), SRC, DST, bytes(16))
    with pytest.raises(InvalidArgumentError):
        vrf.route_seed(bytes(32), b"", DST, bytes(16))
    with pytest.raises(InvalidArgumentError):
        vrf.route_seed(bytes(32), "peer", DST, bytes(16))


def test_local_beacon_is_the_spec_fallback_formula():
    v = VEC["local_beacon"]
    beacon = vrf.LocalBeacon(bytes.fromhex(v["seed"]))
    for epoch, value in v["beacon_set"].items():
        assert beacon.beacon_set(int(epoch)).hex() == value
        assert bytes.fromhex(value) == hashlib.sha256(
            b"bn-fallback" + bytes.fromhex(v["seed"]) + struct.pack(">Q", int(epoch))).digest()
    assert beacon.beacon_set(1) != beacon.beacon_set(2)
    assert isinstance(beacon, vrf.BeaconProvider)
    assert vrf.epoch_of(7200.5) == 2


@pytest.mark.parametrize("t", [float("inf"), float("-inf"), float("nan"), -1, -0.5, "3600", None, True])
def test_epoch_of_rejects_bad_times(t):
    with pytest.raises(InvalidArgumentError) as e:
        vrf.epoch_of(t)
    assert isinstance(e.value, BetanetError) and isinstance(e.value, ValueError)
    assert vrf.epoch_of(0) == 0 and vrf.epoch_of(3599.9) == 0 and vrf.epoch_of(3600) == 1


def test_xor_beacon():
    a, b = vrf.LocalBeacon(b"a"), vrf.LocalBeacon(b"b")
    x = vrf.XorBeacon(a, b).beacon_set(5)
    assert x == bytes(p ^ q for p, q in zip(a.beacon_set(5), b.beacon_set(5)))
    assert vrf.XorBeacon(a, a).beacon_set(5) == bytes(32)


def test_route_selection_vector():
    v = VEC["route_selection"]
    ns = [vrf.MixnodeDescriptor(bytes.fromhex(m["node_id"]), m["as_group"]) for m in v["mixnodes"]]
    key = vrf.VRFKeyPair.from_seed(bytes.fromhex(v["vrf_seed"]))
    assert key.public_key.hex() == v["vrf_public_key"]
    sel = vrf.RouteSelector(ns[::-1], key, vrf.LocalBeacon(bytes.fromhex(v["beacon_seed"])))
    choice = sel.select_route(bytes.fromhex(v["src_peer_id"]), bytes.fromhex(v["dst_peer_id"]),
                              bytes.fromhex(v["stream_nonce"]), v["hops"], v["src_as"], v["dst_as"], v["epoch"])
    assert [h.hex() for h in choice.node_ids] == v["route"]
    assert choice.proofs[0].hex() == v["proof"] and choice.output.hex() == v["output"]
    assert vrf.route_alpha(choice.seed, 0).hex() == v["alpha"]
    assert vrf.verify(key.public_key, bytes.fromhex(v["proof"]), bytes.fromhex(v["alpha"])).hex() == v["output"]


@settings(max_examples=40, deadline=None)
@given(hops=st.integers(1, 6), n=st.integers(6, 20), groups=st.integers(1, 5),
       src_as=st.integers(0, 5), dst_as=st.integers(0, 5), nonce=st.binary(min_size=16, max_size=16))
def test_hops_distinct_and_as_diverse(hops, n, groups, src_as, dst_as, nonce):
    sel = selector(n, groups)
    if not any(m.as_group not in (src_as, dst_as) for m in sel.mixnodes):
        with pytest.raises(NoPathError):
            sel.select(SRC, DST, nonce, hops, src_as, dst_as, 1)
        return
    route = sel.select(SRC, DST, nonce, hops, src_as, dst_as, 1)
    assert len(route) == hops
    assert len({h.node_id for h in route}) == hops
    assert all(h in sel.mixnodes for h in route)
    assert any(h.as_group not in (src_as, dst_as) for h in route)


def test_single_diverse_node_is_always_in_the_route():
    ns = nodes(10, groups=2)                        # AS 0 and 1 only
    odd = vrf.MixnodeDescriptor(b"\x01" * 32, as_group=7)
    sel = vrf.RouteSelector(ns + [odd], vrf.VRFKeyPair.generate(), vrf.LocalBeacon(b"x"))
    for _ in range(20):
        assert odd in sel.select(SRC, DST, os.urandom(16), 3, 0, 1, 9)


def test_eight_distinct_hop_sets_before_reuse():
    sel = selector(12)
    history: list[frozenset[bytes]] = []
    for _ in range(80):
        history.append(frozenset(h.node_id for h in sel.select(SRC, DST, os.urandom(16), 3, 0, 1, 3)))
    assert len(set(history[:9])) == 9
    for i, s in enumerate(history):
        if s in history[:i]:
            last = max(j for j in range(i) if history[j] == s)
            assert len(set(history[last + 1:i])) >= vrf.DIVERSITY_WINDOW


def test_reuse_rule_is_per_pair_and_epoch():
    sel = selector(12)
    nonce = bytes(16)
    a = sel.select(SRC, DST, nonce, 3, 0, 1, 3)
    # another pair or epoch is not affected by (SRC, DST, 3)'s history: same first draw
    fresh = selector(12)
    assert fresh.select(DST, SRC, nonce, 3, 0, 1, 3) == sel.select(DST, SRC, nonce, 3, 0, 1, 3)
    assert fresh.select(SRC, DST, nonce, 3, 0, 1, 4) == sel.select(SRC, DST, nonce, 3, 0, 1, 4)
    # the same pair, epoch and nonce again must move to another hop set
    again = sel.select_route(SRC, DST, nonce, 3, 0, 1, 3)
    assert frozenset(again.hops) != frozenset(a) and again.attempt >= 1


def test_small_set_cycles_and_verifies():
    sel = selector(4, groups=4)                     # C(4,3) = 4 < 8 possible hop sets
    seen = []
    for _ in range(12):
        nonce = os.urandom(16)
        choice = sel.select_route(SRC, DST, nonce, 3, 0, 1, 2)
        sel.verify_selection(choice, SRC, DST, nonce, 3, 0, 1)
        seen.append(frozenset(choice.node_ids))
    assert len(set(seen)) >= 2


def test_deterministic_given_beacon_and_key():
    ns = nodes(15)
    shuffled = ns[:]
    random.Random(3).shuffle(shuffled)
    a = vrf.RouteSelector(ns, vrf.VRFKeyPair.from_seed(b"s" * 32), vrf.LocalBeacon(b"b"))
    b = vrf.RouteSelector(shuffled, vrf.VRFKeyPair.from_seed(b"s" * 32), vrf.LocalBeacon(b"b"))
    c = vrf.RouteSelector(ns, vrf.VRFKeyPair.from_seed(b"t" * 32), vrf.LocalBeacon(b"b"))
    nonces = [bytes([i]) * 16 for i in range(10)]
    ra = [a.select(SRC, DST, n, 4, 0, 1, 11) for n in nonces]
    assert ra == [b.select(SRC, DST, n, 4, 0, 1, 11) for n in nonces]
    assert ra != [c.select(SRC, DST, n, 4, 0, 1, 11) for n in nonces]


def test_errors_are_clear():
    with pytest.raises(NoPathError, match="needs 5 distinct mixnodes"):
        selector(4).select(SRC, DST, bytes(16), 5, 0, 1, 1)
    with pytest.raises(NoPathError, match="outside AS groups"):
        selector(6, groups=2).select(SRC, DST, bytes(16), 2, 0, 1, 1)
    with pytest.raises(InvalidArgumentError):
        selector().select(SRC, DST, bytes(16), 0, 0, 1, 1)
    with pytest.raises(InvalidArgumentError):
        selector().select(SRC, DST, bytes(15), 3, 0, 1, 1)
    with pytest.raises(InvalidArgumentError, match="duplicate"):
        vrf.RouteSelector(nodes(3) + nodes(1), vrf.VRFKeyPair.generate(), vrf.LocalBeacon(b"x"))
    with pytest.raises(InvalidArgumentError):
        vrf.MixnodeDescriptor(b"short", 1)
    with pytest.raises(InvalidArgumentError):
        vrf.MixnodeDescriptor(bytes(32), -1)


def test_history_memory_is_bounded():
    sel = selector(12, max_tracked_pairs=4)
    for i in range(20):
        sel.select(bytes([i]) * 32, DST, bytes(16), 3, 0, 1, 1)
    assert len(sel._history) == 4
    assert all(len(d) <= vrf.DIVERSITY_WINDOW for d in sel._history.values())


def _third_party(sel, choice, nonce, **over):
    args = dict(mixnodes=sel.mixnodes, beacon=vrf.LocalBeacon(b"test-beacon").beacon_set(choice.epoch),
                src_peer_id=SRC, dst_peer_id=DST, stream_nonce=nonce, hops=3, src_as=0, dst_as=1,
                vrf_public_key=sel.vrf_public_key)
    args.update(over)
    vrf.verify_selection(choice, **args)


def test_verifier_accepts_honest_selections():
    sel = selector(12)
    for _ in range(15):
        nonce = os.urandom(16)
        choice = sel.select_route(SRC, DST, nonce, 3, 0, 1, 6)
        sel.verify_selection(choice, SRC, DST, nonce, 3, 0, 1)
        _third_party(sel, choice, nonce)


def test_verifier_rejects_forgeries():
    sel = selector(12)
    nonce = os.urandom(16)
    choice = sel.select_route(SRC, DST, nonce, 3, 0, 1, 6)
    others = [m for m in sel.mixnodes if m not in choice.hops]
    forged = [
        dataclasses.replace(choice, hops=(others[0],) + choice.hops[1:]),          # swapped hop
        dataclasses.replace(choice, hops=choice.hops[::-1]),                       # reordered
        dataclasses.replace(choice, proofs=(vrf.VRFKeyPair.generate().prove(b"x"),)),
        dataclasses.replace(choice, attempt=1),
        dataclasses.replace(choice, proofs=()),
        dataclasses.replace(choice, output=bytes(64)),
        dataclasses.replace(choice, seed=bytes(32)),
    ]
    bad_proof = bytearray(choice.proofs[0])
    bad_proof[40] ^= 1
    forged.append(dataclasses.replace(choice, proofs=(bytes(bad_proof),)))
    for f in forged:
        with pytest.raises(BetanetError):
            _third_party(sel, f, nonce)
    # the right choice checked against the wrong public inputs
    for over in (dict(stream_nonce=bytes(16)), dict(src_peer_id=DST),
                 dict(vrf_public_key=vrf.VRFKeyPair.generate().public_key),
                 dict(beacon=bytes(32)), dict(src_as=2)):
        with pytest.raises(BetanetError):
            _third_party(sel, choice, nonce, **over)
    # a route chosen by a different key, presented under its own (honest) public key, is
    # still the only valid route for that key: swapping in another key's hops fails
    other = vrf.RouteSelector(sel.mixnodes, vrf.VRFKeyPair.generate(), vrf.LocalBeacon(b"test-beacon"))
    theirs = other.select_route(SRC, DST, nonce, 3, 0, 1, 6)
    if theirs.node_ids != choice.node_ids:
        with pytest.raises(AuthenticationError):
            _third_party(sel, dataclasses.replace(choice, hops=theirs.hops), nonce)


def test_verifier_rejects_cherry_picked_skips():
    sel = selector(12)
    nonce = bytes(range(16))  # fixed: with a random nonce, repeated skipped sets can make the claim legal
    choice = sel.select_route(SRC, DST, nonce, 3, 0, 1, 6)
    # claim 9 skipped draws: more distinct skipped sets than the reuse window allows
    seed = choice.seed
    key = vrf.VRFKeyPair.from_seed(b"k" * 32)
    proofs = tuple(key.prove(vrf.route_alpha(seed, i)) for i in range(10))
    output = vrf.proof_to_hash(proofs[9])
    diverse = [i for i, m in enumerate(sel.mixnodes) if m.as_group not in (0, 1)]
    hops = tuple(sel.mixnodes[i] for i in vrf._candidate(output, 12, diverse, 3))
    forged = dataclasses.replace(choice, proofs=proofs, attempt=9, output=output, hops=hops)
    with pytest.raises(AuthenticationError, match="skipped"):
        _third_party(sel, forged, nonce)
