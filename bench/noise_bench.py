"""Noise XK benchmark: the core handshake against noiseprotocol and against its X25519 cost.

One run, side by side, with ratios:
  1. full Noise_XK_25519_ChaChaPoly_SHA256 handshakes (both sides in this process, three
     messages, split) per second: the core through cffi ABI mode, the core through
     betanet._native.noise (the path betanet.htx takes), and the peer noiseprotocol (its
     default `cryptography` backend; optional: named as missing when not installed).
     Target: the core faster than noiseprotocol.
  2. the core's cost per side against the four X25519 operations a side of XK needs
     (one fixed-base for its ephemeral key, three variable-base DHs: es, ee, se), timed as
     libsodium's crypto_scalarmult_base + 3 x crypto_scalarmult through the same cffi
     path. Target: <= 1.3x. (The core also derives its static public key, one more
     fixed-base operation, at set-up.)
Every side runs once per round, the sides alternating within each round; times are the best
round, ratios the median over rounds of the within-round ratio.

usage: python bench/noise_bench.py [--smoke]
"""
from __future__ import annotations

import sys

import cffi

import betanet
import betanet.htx as htx
import harness
from betanet._native import noise as native

CDEF = """
typedef struct betanet_noise_xk betanet_noise_xk_t;
int betanet_noise_xk_new(int role, const uint8_t *static_private, const uint8_t *remote_static_public,
                         const uint8_t *prologue, size_t prologue_len, betanet_noise_xk_t **out);
void betanet_noise_xk_free(betanet_noise_xk_t *hs);
int betanet_noise_xk_write_message(betanet_noise_xk_t *hs, const uint8_t *payload, size_t payload_len,
                                   uint8_t *out, size_t cap, size_t *out_len);
int betanet_noise_xk_read_message(betanet_noise_xk_t *hs, const uint8_t *msg, size_t len,
                                  uint8_t *payload, size_t cap, size_t *payload_len);
int betanet_noise_xk_split(betanet_noise_xk_t *hs, uint8_t *k1, uint8_t *k2, uint8_t *handshake_hash);
int crypto_scalarmult(uint8_t *q, const uint8_t *n, const uint8_t *p);
int crypto_scalarmult_base(uint8_t *q, const uint8_t *n);
"""
PROLOGUE = native.HTX_PROLOGUE
NAME = b"Noise_XK_25519_ChaChaPoly_SHA256"


def _noiseprotocol():
    from noise.connection import Keypair, NoiseConnection
    return Keypair, NoiseConnection


def main() -> int:
    args = harness.parser(__doc__.splitlines()[0]).parse_args()
    n = 20 if args.smoke else 400          # handshakes per round
    rounds = 2 if args.smoke else 7
    harness.header("Noise XK handshake (bench/noise_bench.py)", args.smoke)
    peers = harness.Peers()
    peers.load("noiseprotocol", _noiseprotocol)
    peers.report()
    print()

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    lib = ffi.dlopen(betanet.get_library())
    sodium = ffi.dlopen(harness.libsodium_path())

    ipriv, rpriv = htx.generate_private_key(), htx.generate_private_key()
    rpub = htx.public_key(rpriv)
    c_i, c_r, c_rpub = ffi.new("uint8_t[32]", ipriv), ffi.new("uint8_t[32]", rpriv), ffi.new("uint8_t[32]", rpub)
    c_pro = ffi.new("uint8_t[]", PROLOGUE)
    hs_i, hs_r = ffi.new("betanet_noise_xk_t **"), ffi.new("betanet_noise_xk_t **")
    buf, pay = ffi.new("uint8_t[128]"), ffi.new("uint8_t[16]")
    ln, pl = ffi.new("size_t *"), ffi.new("size_t *")
    k1, k2, hh = ffi.new("uint8_t[32]"), ffi.new("uint8_t[32]"), ffi.new("uint8_t[32]")

    def core_cffi():
        for _ in range(n):
            assert lib.betanet_noise_xk_new(0, c_i, c_rpub, c_pro, len(PROLOGUE), hs_i) == 0
            assert lib.betanet_noise_xk_new(1, c_r, ffi.NULL, c_pro, len(PROLOGUE), hs_r) == 0
            i, r = hs_i[0], hs_r[0]
            for w, rd in ((i, r), (r, i), (i, r)):
                assert lib.betanet_noise_xk_write_message(w, ffi.NULL, 0, buf, 128, ln) == 0
                assert lib.betanet_noise_xk_read_message(rd, buf, ln[0], pay, 16, pl) == 0
            assert lib.betanet_noise_xk_split(i, k1, k2, hh) == 0
            assert lib.betanet_noise_xk_split(r, k1, k2, hh) == 0
            lib.betanet_noise_xk_free(i)
            lib.betanet_noise_xk_free(r)

    def core_native():
        for _ in range(n):
            i, r = native.Handshake(True, ipriv, rpub, PROLOGUE), native.Handshake(False, rpriv, None, PROLOGUE)
            r.read_message(i.write_message())
            i.read_message(r.write_message())
            r.read_message(i.write_message())
            i.split(), r.split()

    def noiseprotocol():
        keypair, connection = peers["noiseprotocol"]
        for _ in range(n):
            i, r = connection.from_name(NAME), connection.from_name(NAME)
            i.set_as_initiator()
            r.set_as_responder()
            i.set_keypair_from_private_bytes(keypair.STATIC, ipriv)
            i.set_keypair_from_public_bytes(keypair.REMOTE_STATIC, rpub)
            r.set_keypair_from_private_bytes(keypair.STATIC, rpriv)
            for c in (i, r):
                c.set_prologue(PROLOGUE)
                c.start_handshake()
            r.read_message(i.write_message())
            i.read_message(r.write_message())
            r.read_message(i.write_message())
            assert i.handshake_finished and r.handshake_finished

    q, point = ffi.new("uint8_t[32]"), ffi.new("uint8_t[32]", rpub)

    def four_x25519():       # what one side of XK needs: 1 fixed-base + 3 variable-base
        for _ in range(n):
            sodium.crypto_scalarmult_base(q, c_i)
            sodium.crypto_scalarmult(q, c_i, point)
            sodium.crypto_scalarmult(q, c_r, point)
            sodium.crypto_scalarmult(q, c_i, point)

    sides = {"cffi": core_cffi, "native": core_native, "four": four_x25519}
    if "noiseprotocol" in peers:
        sides["noiseprotocol"] = noiseprotocol
    t = harness.interleaved(sides, rounds, harness.timed)
    best = {k: min(v) for k, v in t.items()}
    per = lambda s: best[s] / n * 1e6      # noqa: E731  (µs per handshake / per side)
    print(f"noise xk full handshake (both sides), {n} per round, best of {rounds} interleaved rounds:")
    print(f"  core via cffi            {per('cffi'):8.1f} us  {n / best['cffi']:8.0f} handshakes/s")
    print(f"  core via _native.noise   {per('native'):8.1f} us  {n / best['native']:8.0f} handshakes/s")
    if "noiseprotocol" in peers:
        fast_cffi = harness.median_ratio(t["noiseprotocol"], t["cffi"])
        fast_native = harness.median_ratio(t["noiseprotocol"], t["native"])
        print(f"  noiseprotocol            {per('noiseprotocol'):8.1f} us  "
              f"{n / best['noiseprotocol']:8.0f} handshakes/s")
        print(f"noise xk core / noiseprotocol speed: {fast_cffi:.2f}x (cffi), {fast_native:.2f}x (_native)  "
              f"(target > 1: {'met' if min(fast_cffi, fast_native) > 1 else 'MISSED'})")
    else:
        print("noise xk core / noiseprotocol speed: n/a (peer missing)")
    per_side = harness.median_ratio([c / 2 for c in t["cffi"]], t["four"])
    print(f"  4 x X25519 (libsodium)   {per('four'):8.1f} us per side")
    print(f"noise xk core per side / its 4 x X25519: {per_side:.2f}x  "
          f"(target <= 1.3: {'met' if per_side <= 1.3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
