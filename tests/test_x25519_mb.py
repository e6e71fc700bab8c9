"""The multi-buffer X25519 (src/core/x25519_mb.h, AVX-512 IFMA) against libsodium.

Two levels:
* the raw kernel, through tests/x25519_mb_check.c (compiled here against the header and
  libsodium; runs only on CPUs with IFMA): RFC 7748 vectors and iterations, edge and
  low-order u values, mixed lanes, and random batches compared lane by lane;
* the Sphinx batch path that uses it: process_many must give exactly what processing the
  same packets one at a time gives (statuses, results, outputs, replay filter), with the
  fast path on and off (betanet_cpu_restrict), including replays inside one batch, MAC
  failures, low-order α, tampered payloads, expired / unknown epochs and a full filter.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from betanet import sphinx
from betanet._native import core
from betanet.errors import BetanetError
from betanet.sphinx import Geometry, KeyPair, NodeInfo, Route, SphinxNode, create_packet, create_surb, use_surb

ROOT = Path(__file__).parent.parent
P = 2**255 - 19
IFMA = core.CPU_FLAGS["avx512ifma"]
HAVE_IFMA = bool(core.cpu_features() & IFMA)
# Low-order points (order 1, 2, 4, 8) and their non-canonical encodings below 2^255.
ORDER8 = [325606250916557431795983626356110631294008115727848805560023387167927233504,
          39382357235489614581723060781553021112529911719440698176882885853963445705823]
LOW_ORDER = [0, 1, *ORDER8, P - 1, P, P + 1]
# RFC 7748 §5.2
RFC_VECTORS = [
    ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
]
ITER_1 = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
ITER_1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
# Random batches per lane position (each batch: 8 lanes, every lane checked).
RANDOM_BATCHES = int(os.environ.get("BETANET_X25519_MB_BATCHES", "100000"))


def u_bytes(u: int) -> bytes:
    return u.to_bytes(32, "little")


# ---- the raw kernel ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    if not HAVE_IFMA:
        pytest.skip("CPU without AVX-512 IFMA: the kernel is never used here")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("x25519mb") / "x25519_mb_check"
    subprocess.run([cc, "-O2", "-Wall", "-Werror", "-mavx512f", "-mavx512ifma", "-I", str(ROOT / "src" / "core"),
                    "-o", str(exe), str(ROOT / "tests" / "x25519_mb_check.c"), "-lsodium"], check=True)
    return exe


def run_lines(checker, pairs):
    """[(scalar, point)] → [(status, out, sodium_rc, sodium_out)] through 8-lane batches."""
    text = "".join(f"{k.hex()} {u.hex()}\n" for k, u in pairs)
    proc = subprocess.run([str(checker), "lines"], input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        st, out, rc, ref = line.split()
        rows.append((int(st), bytes.fromhex(out), int(rc), bytes.fromhex(ref)))
    assert len(rows) == len(pairs)
    return rows


def reference(k: bytes, u: bytes) -> bytes | None:
    """X25519 from the cryptography package (OpenSSL); None for an all-zero result."""
    try:
        return X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(u))
    except ValueError:
        return None


def test_rfc7748_vectors_in_every_lane(checker):
    pairs = [(bytes.fromhex(k), bytes.fromhex(u)) for k, u, _ in RFC_VECTORS] * 8
    for (st, out, rc, ref), (_, _, want) in zip(run_lines(checker, pairs), RFC_VECTORS * 8):
        assert (st, rc) == (0, 0) and out == ref == bytes.fromhex(want)


@pytest.mark.parametrize("lane", [0, 3, 7])
def test_rfc7748_iterations(checker, lane):
    one = subprocess.run([str(checker), "iterate", "1", str(lane)], capture_output=True, text=True, check=True)
    assert one.stdout.strip() == ITER_1
    if lane in (0, 7):
        many = subprocess.run([str(checker), "iterate", "1000", str(lane)], capture_output=True, text=True,
                              check=True)
        assert many.stdout.strip() == ITER_1000


def test_edge_u_values(checker):
    rng = random.Random(7)
    us = [0, 1, 2, 9, P - 2, P - 1] + [P + k for k in range(19)] + [2**255 - 1, 2**254, 2**252 - 1]
    us += [u | 2**255 for u in us if u < 2**255]                       # bit 255 is ignored
    pairs = [(rng.randbytes(32), u_bytes(u)) for u in us for _ in range(2)]
    for (k, u), (st, out, rc, ref) in zip(pairs, run_lines(checker, pairs)):
        assert st == rc
        want = reference(k, u)
        assert (st == -1) == (want is None)
        if st == 0:
            assert out == ref == want
        else:
            assert out == bytes(32)


def test_low_order_points_give_all_zero_status_in_any_lane(checker):
    rng = random.Random(8)
    points = [u_bytes(u) for u in LOW_ORDER] + [u_bytes(u | 2**255) for u in LOW_ORDER]
    assert len(points) == 14
    pairs = [(rng.randbytes(32), pt) for pt in points for _ in range(8)]
    rng.shuffle(pairs)
    for st, out, rc, _ in run_lines(checker, pairs):
        assert (st, rc, out) == (-1, -1, bytes(32))


def test_mixed_valid_and_invalid_lanes_in_one_batch(checker):
    rng = random.Random(9)
    for pattern in range(0, 256, 37):
        pairs = []
        for j in range(8):
            if pattern >> j & 1:
                pairs.append((rng.randbytes(32), u_bytes(rng.choice(LOW_ORDER))))
            else:
                pairs.append((rng.randbytes(32), rng.randbytes(32)))
        for j, (st, out, rc, ref) in enumerate(run_lines(checker, pairs)):
            assert st == rc == (-1 if pattern >> j & 1 else 0)
            assert out == (bytes(32) if st else ref)
            if not st:
                assert out == reference(*pairs[j])


def test_random_batches_against_libsodium(checker):
    """RANDOM_BATCHES batches (default 100 000 per lane position) in two processes; a
    quarter of the lanes take an edge or low-order u, bit 255 set at random."""
    half = RANDOM_BATCHES // 2
    procs = [subprocess.Popen([str(checker), "random", str(n), str(seed)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for seed, n in ((1, half), (2, RANDOM_BATCHES - half))]
    zero = 0
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0, err
        word, lanes, z = out.split()
        assert word == "ok"
        zero += int(z)
    assert zero > 0                                        # the all-zero path was exercised


# ---- the Sphinx batch path --------------------------------------------------------------

G = Geometry(5, 2048)


@pytest.fixture(params=["ifma", "portable"])
def fast_path(request):
    full = core.cpu_restrict(0xFFFFFFFF)
    if request.param == "ifma":
        if not full & IFMA:
            pytest.skip("CPU without AVX-512 IFMA")
    else:
        core.cpu_restrict(0xFFFFFFFF & ~IFMA)
        assert not core.cpu_features() & IFMA
    # The batch path really takes the path under test (same decision as the core's).
    assert sphinx.kernel() == ("avx512ifma-x8" if request.param == "ifma" else "libsodium")
    yield request.param
    core.cpu_restrict(full)


def test_kernel_follows_cpu_features():
    full = core.cpu_restrict(0xFFFFFFFF)
    try:
        assert sphinx.kernel() == ("avx512ifma-x8" if full & IFMA else "libsodium")
        core.cpu_restrict(0)
        assert sphinx.kernel() == "libsodium"
    finally:
        core.cpu_restrict(full)


def same(a, b) -> bool:
    if isinstance(a, BetanetError) or isinstance(b, BetanetError):
        return type(a) is type(b)
    return a == b


def twin_nodes(kp, capacity=4096, epochs=(1,)):
    nodes = []
    for _ in range(2):
        n = SphinxNode(G, capacity)
        for e in epochs:
            n.add_key(e, kp.secret_key)
        nodes.append(n)
    return nodes


def packet_mix(rng, me: NodeInfo, others: list[NodeInfo], n: int) -> list[bytes]:
    """Valid relays, delivers and replies for `me`, and their damaged / replayed variants."""
    hb = G.header_bytes
    valid = []
    for i in range(n):
        kind = rng.randrange(4)
        hops = [me] + others[: rng.randrange(1, 4)] if kind in (1, 2) else [me]
        epoch = 1 if rng.random() < 0.9 else rng.choice([0, 2])       # 0: expired, 2: unknown
        if kind == 3:
            surb, _ = create_surb(G, epoch, Route(hops), b"\x11" * 32)
            _, pkt = use_surb(G, surb, b"reply %d" % i)
        else:
            pkt = create_packet(G, epoch, Route(hops), b"\xdd" * 32, b"msg %d" % i)
        valid.append(pkt)
    out = list(valid)
    for pkt in valid:
        r = rng.random()
        if r < 0.15:
            out.append(pkt)                                              # replay
        elif r < 0.3:
            bad = bytearray(pkt)
            bad[rng.randrange(36, hb)] ^= 1 << rng.randrange(8)          # β or γ: MAC
            out.append(bytes(bad))
        elif r < 0.4:
            bad = bytearray(pkt)
            bad[rng.randrange(hb, len(pkt))] ^= 1                        # payload
            out.append(bytes(bad))
        elif r < 0.5:
            low = u_bytes(rng.choice(LOW_ORDER) | (rng.randrange(2) << 255))
            out.append(pkt[:4] + low + pkt[36:])                         # low-order α
        elif r < 0.55:
            out.append(pkt[:4] + u_bytes(int.from_bytes(pkt[4:36], "little") ^ 2**255) + pkt[36:])
    rng.shuffle(out)
    # the same α with another β right behind a valid packet, and before it
    for _ in range(3):
        i = rng.randrange(len(out))
        bad = bytearray(out[i])
        bad[40] ^= 4
        out.insert(i + 1, bytes(bad))
        out.insert(max(0, i - 1), bytes(bad))
    return out


def compare_batch_with_single(packets, nodes, chunks, expire=None):
    single, batch = nodes
    if expire is not None:
        single.expire(expire)
        batch.expire(expire)
    want = []
    for p in packets:
        try:
            want.append(single.process(p))
        except BetanetError as e:
            want.append(e)
    got = []
    i = 0
    for c in chunks:
        got += batch.process_many(packets[i:i + c])
        i += c
    got += batch.process_many(packets[i:])
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(want, got)):
        assert same(a, b), (k, a, b)
    for e in (0, 1, 2):
        assert single.replay_count(e) == batch.replay_count(e)
    return want


@pytest.mark.parametrize("seed", [1, 2])
def test_process_many_equals_one_at_a_time(fast_path, seed):
    rng = random.Random(seed)
    kp = KeyPair.from_seed(bytes([seed]) * 32)
    me = NodeInfo(b"\xa0" * 32, kp.public_key)
    others = [NodeInfo(bytes([0xb0 + i]) * 32, KeyPair.from_seed(bytes([0x40 + i]) * 32).public_key)
              for i in range(4)]
    packets = packet_mix(rng, me, others, 60)
    chunks = [rng.choice([1, 2, 3, 7, 8, 9, 16, 40]) for _ in range(8)]
    nodes = twin_nodes(kp, epochs=(0, 1))
    try:
        want = compare_batch_with_single(packets, nodes, chunks, expire=1)
    finally:
        for n in nodes:
            n.close()
    kinds = {type(w).__name__ for w in want}
    assert {"Relay", "Deliver", "Reply", "ReplayError", "AuthenticationError", "MalformedError",
            "ExpiredError", "NotFoundError"} <= kinds, kinds


def test_process_many_full_filter(fast_path):
    kp = KeyPair.from_seed(b"\x05" * 32)
    me = NodeInfo(b"\xa0" * 32, kp.public_key)
    packets = [create_packet(G, 1, Route([me]), b"\xdd" * 32, b"%d" % i) for i in range(12)]
    packets += packets[:3]
    nodes = twin_nodes(kp, capacity=5)
    try:
        want = compare_batch_with_single(packets, nodes, [11])
    finally:
        for n in nodes:
            n.close()
    assert sum(type(w).__name__ == "LimitExceededError" for w in want) == 7


def test_fast_and_portable_batches_agree_on_relays():
    """Same packets, a fresh node each: byte-identical next packets with the path on and off."""
    kp = KeyPair.from_seed(b"\x06" * 32)
    me = NodeInfo(b"\xa0" * 32, kp.public_key)
    nxt = NodeInfo(b"\xa1" * 32, KeyPair.from_seed(b"\x07" * 32).public_key)
    packets = [create_packet(G, 1, Route([me, nxt]), b"\xdd" * 32, b"%d" % i) for i in range(19)]
    full = core.cpu_restrict(0xFFFFFFFF)
    outs = []
    try:
        for mask in (full, full & ~IFMA):
            core.cpu_restrict(mask)
            with SphinxNode(G, 64) as node:
                node.add_key(1, kp.secret_key)
                outs.append(node.process_many(packets))
    finally:
        core.cpu_restrict(full)
    assert outs[0] == outs[1]
    assert all(isinstance(r, sphinx.Relay) for r in outs[0])


def test_replays_and_failures_inside_one_group(fast_path):
    """One group of 8: the first acceptance of an α makes every later packet with that α a
    replay, even one whose MAC fails; a MAC failure records nothing; a tampered payload at
    the final hop is recorded (its header was fine)."""
    kp = KeyPair.from_seed(b"\x08" * 32)
    me = NodeInfo(b"\xa0" * 32, kp.public_key)
    nxt = NodeInfo(b"\xa1" * 32, KeyPair.from_seed(b"\x09" * 32).public_key)
    relay = create_packet(G, 1, Route([me, nxt]), b"\xdd" * 32, b"r")
    bad_mac = relay[:40] + bytes([relay[40] ^ 1]) + relay[41:]
    final = bytearray(create_packet(G, 1, Route([me]), b"\xdd" * 32, b"f"))
    final[-1] ^= 1
    final = bytes(final)
    low = relay[:4] + u_bytes(ORDER8[0]) + relay[36:]
    batch = [bad_mac, relay, bad_mac, relay, final, final, low, low]
    expect = ["AuthenticationError", "Relay", "ReplayError", "ReplayError", "AuthenticationError",
              "ReplayError", "MalformedError", "MalformedError"]
    nodes = twin_nodes(kp)
    try:
        want = compare_batch_with_single(batch, nodes, [8])
    finally:
        for n in nodes:
            n.close()
    assert [type(w).__name__ for w in want] == expect
