"""ECVRF-EDWARDS25519-SHA512-TAI in libbetanet: RFC 9381 vectors, interop with an
independent pure-Python implementation (tests/vrf_reference.py), and every rejection
the RFC requires (bad encodings, small-order keys, tampering)."""
from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings, strategies as st

import vrf_reference as ref
from betanet import AuthenticationError, BetanetError, InvalidArgumentError, MalformedError, vrf
from betanet._native import core

VECTORS = json.loads((Path(__file__).parent / "vectors" / "vrf.json").read_text())["vectors"]
L = ref.Q

# The eight points of order dividing 8 (canonical encodings) and non-canonical aliases.
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # (0, -1), order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]
NON_CANONICAL = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p (= 0)
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1 (= 1)
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # y = 2^255 - 1
    "0100000000000000000000000000000000000000000000000000000000000080",  # x = 0 with sign 1
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # x = 0 with sign 1
]


pytestmark = pytest.mark.usefixtures("no_leaks")   # conftest.py: libbetanet leak check


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc9381_vectors(v):
    sk, alpha = bytes.fromhex(v["sk"]), bytes.fromhex(v["alpha"])
    key = vrf.VRFKeyPair.from_seed(sk)
    assert key.public_key.hex() == v["pk"]
    proof = key.prove(alpha)
    assert proof.hex() == v["pi"]
    assert vrf.verify(key.public_key, proof, alpha).hex() == v["beta"]
    assert vrf.proof_to_hash(proof).hex() == v["beta"]
    assert key.prove_with_output(alpha) == (proof, bytes.fromhex(v["beta"]))
    # the independent reference agrees byte for byte, including hash-to-curve
    assert ref.prove(sk, alpha).hex() == v["pi"]
    assert ref.encode(ref.encode_to_curve(bytes.fromhex(v["pk"]), alpha)).hex() == v["h"]


def test_keys_are_ed25519_keys():
    for seed in (bytes(32), bytes(range(32)), b"\xff" * 32):
        ed = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert vrf.VRFKeyPair.from_seed(seed).public_key == ed


@settings(max_examples=12, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), alpha=st.binary(max_size=200))
def test_matches_independent_reference(seed, alpha):
    key = vrf.VRFKeyPair.from_seed(seed)
    proof = key.prove(alpha)
    assert proof == ref.prove(seed, alpha)
    assert ref.verify(key.public_key, proof, alpha) == vrf.verify(key.public_key, proof, alpha)


@settings(max_examples=40, deadline=None)
@given(alpha=st.binary(max_size=300), other=st.binary(max_size=40))
def test_round_trip_and_wrong_alpha(alpha, other):
    key = vrf.VRFKeyPair.generate()
    proof = key.prove(alpha)
    assert len(proof) == vrf.PROOF_BYTES
    out = vrf.verify(key.public_key, proof, alpha)
    assert len(out) == vrf.OUTPUT_BYTES and out == vrf.proof_to_hash(proof)
    assert key.prove(alpha) == proof                      # deterministic
    if other != alpha:
        with pytest.raises(AuthenticationError):
            vrf.verify(key.public_key, proof, other)


def test_outputs_are_unique_per_key_and_input():
    a, b = vrf.VRFKeyPair.generate(), vrf.VRFKeyPair.generate()
    outs = {vrf.proof_to_hash(k.prove(m)) for k in (a, b) for m in (b"", b"x", b"y")}
    assert len(outs) == 6


def test_wrong_key_rejected():
    a, b = vrf.VRFKeyPair.generate(), vrf.VRFKeyPair.generate()
    with pytest.raises(AuthenticationError):
        vrf.verify(b.public_key, a.prove(b"m"), b"m")


def test_every_bit_flip_is_rejected():
    key = vrf.VRFKeyPair.from_seed(bytes(range(32)))
    proof = key.prove(b"alpha")
    for i in range(len(proof)):
        for bit in (0, 7):
            bad = bytearray(proof)
            bad[i] ^= 1 << bit
            with pytest.raises((AuthenticationError, MalformedError)):
                vrf.verify(key.public_key, bytes(bad), b"alpha")
    for i in range(32):
        bad = bytearray(key.public_key)
        bad[i] ^= 1
        with pytest.raises((AuthenticationError, MalformedError)):
            vrf.verify(bytes(bad), proof, b"alpha")


@pytest.mark.parametrize("n", [0, 31, 33, 64])
def test_wrong_key_length_is_malformed(n):
    proof = vrf.VRFKeyPair.generate().prove(b"")
    with pytest.raises(MalformedError):
        vrf.verify(bytes(n), proof, b"")
    with pytest.raises(MalformedError):
        vrf.validate_public_key(bytes(n))


@pytest.mark.parametrize("n", [0, 1, 79, 81, 160])
def test_wrong_proof_length_is_malformed(n):
    key = vrf.VRFKeyPair.generate()
    with pytest.raises(MalformedError):
        vrf.verify(key.public_key, bytes(n), b"")
    with pytest.raises(MalformedError):
        vrf.proof_to_hash(bytes(n))


def test_scalar_out_of_range_is_malformed():
    key = vrf.VRFKeyPair.generate()
    proof = key.prove(b"m")
    for s in (L, L + 1, 2**256 - 1):
        bad = proof[:48] + s.to_bytes(32, "little")
        with pytest.raises(MalformedError):
            vrf.proof_to_hash(bad)
        with pytest.raises(MalformedError):
            vrf.verify(key.public_key, bad, b"m")
        assert ref.decode_proof(bad) is None
    bad = proof[:48] + (L - 1).to_bytes(32, "little")     # in range, wrong: authentication
    with pytest.raises(AuthenticationError):
        vrf.verify(key.public_key, bad, b"m")


@pytest.mark.parametrize("enc", SMALL_ORDER)
def test_small_order_public_keys_rejected(enc):
    pk = bytes.fromhex(enc)
    assert ref.decode(pk) is not None and ref._is_identity(ref.mul(8, ref.decode(pk)))
    with pytest.raises(MalformedError):
        vrf.validate_public_key(pk)
    with pytest.raises(MalformedError):
        vrf.verify(pk, vrf.VRFKeyPair.generate().prove(b""), b"")


@pytest.mark.parametrize("enc", NON_CANONICAL)
def test_non_canonical_points_rejected(enc):
    pt = bytes.fromhex(enc)
    assert ref.decode(pt) is None
    with pytest.raises(MalformedError):
        vrf.validate_public_key(pt)
    proof = vrf.VRFKeyPair.generate().prove(b"")
    with pytest.raises(MalformedError):
        vrf.proof_to_hash(pt + proof[32:])


def test_off_curve_gamma_rejected():
    # y = 2 is not the y coordinate of any curve point
    pt = (2).to_bytes(32, "little")
    assert ref.decode(pt) is None
    key = vrf.VRFKeyPair.generate()
    with pytest.raises(MalformedError):
        vrf.verify(key.public_key, pt + key.prove(b"")[32:], b"")


@pytest.mark.parametrize("enc", SMALL_ORDER)
def test_small_order_gamma_decodes_but_fails(enc):
    key = vrf.VRFKeyPair.generate()
    bad = bytes.fromhex(enc) + key.prove(b"z")[32:]
    assert vrf.proof_to_hash(bad) == ref.proof_to_hash(bad)   # 8*Gamma = identity, still defined
    with pytest.raises(AuthenticationError):
        vrf.verify(key.public_key, bad, b"z")


def _torsion_proof(seed: bytes, alpha: bytes, torsion_in_key: bool) -> tuple[bytes, bytes]:
    """A proof the RFC accepts although Gamma (or the key) carries an order-8 component:
    the prover retries its nonce until c is a multiple of 8, so c*T vanishes."""
    t8 = ref.decode(bytes.fromhex(SMALL_ORDER[4]))
    x, prefix = ref._secret(seed)
    y = ref.mul(x, ref.B)
    if torsion_in_key:
        y = ref._add(y, t8)
    pk = ref.encode(y)
    h = ref.encode_to_curve(pk, alpha)
    gamma = ref.mul(x, h) if torsion_in_key else ref._add(ref.mul(x, h), t8)
    for k in range(1, 200):
        u = ref.mul(k, ref.B)   # = s*B - c*Y' when 8 | c, torsion or not
        c = ref.challenge(y, h, gamma, u, ref.mul(k, h))
        if c % 8 == 0:
            s = (k + c * x) % L
            return pk, ref.encode(gamma) + c.to_bytes(16, "little") + s.to_bytes(32, "little")
    raise AssertionError("no suitable nonce")


@pytest.mark.parametrize("torsion_in_key", [False, True], ids=["gamma", "public-key"])
def test_full_group_arithmetic_matches_rfc(torsion_in_key):
    seed = bytes(range(1, 33))
    pk, proof = _torsion_proof(seed, b"torsion", torsion_in_key)
    assert ref.verify(pk, proof, b"torsion") is not None           # the RFC accepts it
    assert vrf.verify(pk, proof, b"torsion") == ref.verify(pk, proof, b"torsion")
    if not torsion_in_key:   # same output as the honest proof: 8*Gamma kills the torsion
        assert vrf.proof_to_hash(proof) == vrf.proof_to_hash(vrf.VRFKeyPair.from_seed(seed).prove(b"torsion"))
    bad = bytearray(proof)
    bad[32] ^= 8                                                   # c no longer matches
    assert ref.verify(pk, bytes(bad), b"torsion") is None
    with pytest.raises(AuthenticationError):
        vrf.verify(pk, bytes(bad), b"torsion")


def test_differential_mutations_against_reference():
    """Bounded Python-level fuzz: mutated (key, proof, alpha) triples get the same verdict
    and output from libbetanet and from the independent reference."""
    rng = random.Random(20261120)
    key = vrf.VRFKeyPair.from_seed(bytes(range(32)))
    base = key.public_key + key.prove(b"fuzz") + b"fuzz"
    for _ in range(60):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(3)
            if op == 0:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif op == 1:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                i = rng.randrange(len(data))
                data[i:i + 32] = rng.randbytes(min(32, len(data) - i))
        pk, proof, alpha = bytes(data[:32]), bytes(data[32:112]), bytes(data[112:])
        expected = ref.verify(pk, proof, alpha)
        try:
            got = vrf.verify(pk, proof, alpha)
        except BetanetError:
            got = None
        assert got == expected
        try:
            got_hash = vrf.proof_to_hash(proof)
        except MalformedError:
            got_hash = None
        assert got_hash == ref.proof_to_hash(proof)


def test_random_bytes_never_crash():
    rng = random.Random(7)
    for _ in range(300):
        blob = rng.randbytes(rng.choice([0, 1, 32, 80, 112, 150]))
        for call in (lambda: vrf.verify(blob[:32], blob[32:112], blob[112:]),
                     lambda: vrf.proof_to_hash(blob[:80]), lambda: vrf.validate_public_key(blob[:32])):
            try:
                call()
            except (MalformedError, AuthenticationError):
                pass


def test_accepts_any_buffer():
    key = vrf.VRFKeyPair.from_seed(bytearray(range(32)))
    proof = key.prove(memoryview(b"buf"))
    assert key.prove(np.frombuffer(b"buf", dtype=np.uint8)) == proof
    out = vrf.verify(bytearray(key.public_key), memoryview(proof), bytearray(b"buf"))
    assert out == vrf.proof_to_hash(np.frombuffer(proof, dtype=np.uint8))


def test_bad_seed_length():
    for n in (0, 31, 33):
        with pytest.raises(InvalidArgumentError):
            vrf.VRFKeyPair.from_seed(bytes(n))


def test_secret_is_hidden():
    seed = bytes(range(100, 132))
    key = vrf.VRFKeyPair.from_seed(seed)
    assert seed.hex() not in repr(key)
    assert not hasattr(key, "__dict__")
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        pickle.dumps(key._key)


def test_keys_are_freed():
    before = core.live_allocations()
    keys = [vrf.VRFKeyPair.generate() for _ in range(10)]
    assert core.live_allocations() == before + 10
    del keys
    assert core.live_allocations() == before


def test_benchmark_quick_runs():
    import subprocess
    import sys
    bench = Path(__file__).resolve().parent.parent / "bench" / "vrf_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "vrf prove / libsodium sign" in out and "route select" in out


C_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "betanet.h"

static void unhex(const char *h, uint8_t *out) { while (*h) { sscanf(h, "%2hhx", out++); h += 2; } }

int main(void) {
    uint8_t seed[32], pk[32], proof[80], out[64], out2[64], want_pi[80], want_beta[64];
    betanet_vrf_key_t *key = NULL;
    if (betanet_init() != 0) return 1;
    unhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", seed);
    unhex("9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf8096bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a2d41b00b05081ed0f58ee5e31b3a970e", want_pi);
    unhex("645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c452118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f", want_beta);
    const uint8_t alpha[2] = {0xaf, 0x82};
    if (betanet_vrf_key_new(seed, 31, &key) != BETANET_E_INVALID || key != NULL) return 2;
    if (betanet_vrf_key_new(seed, sizeof seed, &key) != 0) return 3;
    if (betanet_vrf_key_public(key, pk, 31) != BETANET_E_BUFFER_TOO_SMALL) return 4;
    if (betanet_vrf_key_public(key, pk, sizeof pk) != 0) return 5;
    if (betanet_vrf_prove(key, alpha, 2, proof, 79, NULL, 0) != BETANET_E_BUFFER_TOO_SMALL) return 6;
    if (betanet_vrf_prove(key, NULL, 2, proof, 80, NULL, 0) != BETANET_E_INVALID) return 7;
    if (betanet_vrf_prove(key, alpha, 2, proof, sizeof proof, out2, sizeof out2) != 0) return 8;
    if (memcmp(proof, want_pi, 80) || memcmp(out2, want_beta, 64)) return 9;
    if (betanet_vrf_verify(pk, 32, proof, 80, alpha, 2, out, 63) != BETANET_E_BUFFER_TOO_SMALL) return 10;
    if (betanet_vrf_verify(pk, 32, proof, 80, alpha, 2, out, sizeof out) != 0 || memcmp(out, want_beta, 64)) return 11;
    if (betanet_vrf_verify(pk, 32, proof, 80, alpha, 1, out, sizeof out) != BETANET_E_AUTH) return 12;
    if (betanet_vrf_verify(pk, 32, proof, 79, alpha, 2, out, sizeof out) != BETANET_E_MALFORMED) return 13;
    if (betanet_vrf_proof_to_hash(proof, 80, out, sizeof out) != 0 || memcmp(out, want_beta, 64)) return 14;
    if (betanet_vrf_validate_key(pk, 32) != 0) return 15;
    betanet_vrf_key_free(key);
    betanet_vrf_key_free(NULL);
    if (betanet_live_allocations() != 0) return 16;
    puts("ok");
    return 0;
}
"""


def test_c_api(tmp_path):
    """The C API as a host sees it: RFC 9381 example 18, sizes and error codes."""
    import subprocess
    import betanet
    src = tmp_path / "vrf_c.c"
    src.write_text(C_PROGRAM)
    exe = tmp_path / "vrf_c"
    lib = Path(betanet.get_library())
    subprocess.run(["cc", "-Wall", "-Werror", "-I", betanet.get_include(), str(src), str(lib),
                    f"-Wl,-rpath,{lib.parent}", "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), f"C check {proc.returncode} failed"


# ---- bad arguments (issue 9, defect 13): always a BetanetError, never silent -------------------

def test_from_seed_none_is_an_error_not_a_random_key():
    with pytest.raises(BetanetError) as exc:
        vrf.VRFKeyPair.from_seed(None)
    assert isinstance(exc.value, TypeError)
    with pytest.raises(InvalidArgumentError):
        vrf.VRFKeyPair.from_seed(b"\x01" * 31)


def test_prove_none_is_an_error():
    key = vrf.VRFKeyPair.from_seed(bytes(32))
    for call in (key.prove, key.prove_with_output):
        with pytest.raises(BetanetError) as exc:
            call(None)
        assert isinstance(exc.value, TypeError)
    with pytest.raises(BetanetError):
        key.prove(12345)
    for bad in (None, 3.5, "text"):
        with pytest.raises(BetanetError):
            vrf.verify(key.public_key, key.prove(b""), bad)


def test_strided_buffers_are_read_not_refused():
    key = vrf.VRFKeyPair.from_seed(bytes(range(32)))
    proof = key.prove(b"abc")
    strided_alpha = memoryview(b"aXbXcX")[::2]          # b"abc", not contiguous
    strided_proof = memoryview(bytes(b for p in proof for b in (p, 0)))[::2]
    strided_pk = np.frombuffer(bytes(b for p in key.public_key for b in (p, 0)), np.uint8)[::2]
    assert vrf.verify(strided_pk, strided_proof, strided_alpha) == vrf.proof_to_hash(proof)
    assert key.prove(strided_alpha) == proof
    assert vrf.proof_to_hash(strided_proof) == vrf.proof_to_hash(proof)
    vrf.validate_public_key(strided_pk)
