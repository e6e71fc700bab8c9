"""VRF benchmark: libbetanet ECVRF-EDWARDS25519-SHA512-TAI prove / verify / proof_to_hash
next to libsodium's Ed25519 sign / verify (the reference cost: the same curve and hash,
called through ctypes on the very libsodium libbetanet links) and OpenSSL's Ed25519 through
`cryptography`, plus route selection. One run, ratios printed, because the machine is noisy.

    .venv/bin/python bench/vrf_bench.py [--smoke] [--seconds S]
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import harness
from betanet import vrf


def rates(ops: dict, seconds: float, min_calls: int, rounds: int) -> dict[str, float]:
    """Best rate of each op over `rounds` interleaved rounds, so that every op and its
    reference see the same machine conditions (the machine is shared and noisy)."""
    for fn in ops.values():
        fn()
    per_round = harness.interleaved(ops, rounds, lambda fn: harness.window_rate(fn, seconds / rounds, min_calls))
    return {name: max(values) for name, values in per_round.items()}


def main() -> int:
    ap = harness.parser(__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per operation (all rounds)")
    args = ap.parse_args()
    seconds, min_calls, rounds = (0.02, 3, 1) if args.smoke else (args.seconds, 20, 6)
    harness.header("VRF (bench/vrf_bench.py)", args.smoke)

    msg = b"betanet route seed ......... 32B"
    key = vrf.VRFKeyPair.from_seed(os.urandom(32))
    proof = key.prove(msg)

    sodium = harness.libsodium()
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    sodium.crypto_sign_keypair(pk, sk)
    sig = ctypes.create_string_buffer(64)
    siglen = ctypes.c_ulonglong()
    sodium.crypto_sign_detached(sig, ctypes.byref(siglen), msg, len(msg), sk)
    assert sodium.crypto_sign_verify_detached(sig, msg, len(msg), pk) == 0

    ossl = Ed25519PrivateKey.generate()
    ossl_pub = ossl.public_key()
    ossl_sig = ossl.sign(msg)

    results = rates({
        "vrf prove": lambda: key.prove(msg),
        "vrf verify": lambda: vrf.verify(key.public_key, proof, msg),
        "vrf proof_to_hash": lambda: vrf.proof_to_hash(proof),
        "libsodium ed25519 sign": lambda: sodium.crypto_sign_detached(sig, None, msg, len(msg), sk),
        "libsodium ed25519 verify": lambda: sodium.crypto_sign_verify_detached(sig, msg, len(msg), pk),
        "openssl ed25519 sign": lambda: ossl.sign(msg),
        "openssl ed25519 verify": lambda: ossl_pub.verify(ossl_sig, msg),
    }, seconds, min_calls, rounds)

    # Two threads proving at once: the GIL is released inside libbetanet.
    batch = 8 if args.smoke else 400

    def prove_many(_):
        for i in range(batch):
            key.prove(msg + bytes([i & 255]))

    with ThreadPoolExecutor(2) as pool, harness.Stopwatch() as sw:
        list(pool.map(prove_many, range(2)))
    results["vrf prove, 2 threads"] = 2 * batch / sw.wall

    nodes = [vrf.MixnodeDescriptor(hashlib.sha256(b"%d" % i).digest(), as_group=i % 16)
             for i in range(100)]
    selector = vrf.RouteSelector(nodes, key, vrf.LocalBeacon(b"bench"))
    nonces = iter(os.urandom(16) for _ in range(10**7))
    src, dst = os.urandom(32), os.urandom(32)
    choice = selector.select_route(src, dst, nonce := os.urandom(16), 3, 0, 1, 1)
    results.update(rates({
        "route select (3 hops / 100 nodes)":
            lambda: selector.select_route(src, dst, next(nonces), 3, 0, 1, 1),
        "route verify_selection": lambda: selector.verify_selection(choice, src, dst, nonce, 3, 0, 1),
    }, seconds, min_calls, rounds))

    print(f"{'operation':40} {'ops/s':>10} {'us/op':>9}")
    for name, r in results.items():
        print(f"{name:40} {r:10.0f} {1e6 / r:9.1f}")
    print("ratios (cost relative to the reference, lower is better):")
    ratios = {
        "vrf prove / libsodium sign": results["libsodium ed25519 sign"] / results["vrf prove"],
        "vrf verify / libsodium verify": results["libsodium ed25519 verify"] / results["vrf verify"],
        "vrf prove / openssl sign": results["openssl ed25519 sign"] / results["vrf prove"],
        "vrf verify / openssl verify": results["openssl ed25519 verify"] / results["vrf verify"],
        "2-thread prove speed-up": results["vrf prove, 2 threads"] / results["vrf prove"],
    }
    for name, r in ratios.items():
        print(f"  {name:38} {r:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
