"""Noise XK benchmark: the core handshake against noiseprotocol and against its X25519 cost.

One run, side by side, with ratios:
  1. full Noise_XK_25519_ChaChaPoly_SHA256 handshakes (both sides in this process, three
     messages, split) per second: the core through cffi ABI mode, the core through
     betanet._native.noise (the path betanet.htx takes), and noiseprotocol (its default
     `cryptography` backend). Target: the core faster than noiseprotocol.
  2. the core's cost per side against the four X25519 operations a side of XK needs
     (one fixed-base for its ephemeral key, three variable-base DHs: es, ee, se), timed as
     libsodium's crypto_scalarmult_base + 3 x crypto_scalarmult through the same cffi
     path. Target: <= 1.3x. (The core also derives its static public key, one more
     fixed-base operation, at set-up.)

usage: python bench/noise_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import ctypes.util
import time

import cffi
from noise.connection import Keypair, NoiseConnection

import betanet
import betanet.htx as htx
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


def best_interleaved(fns, rounds: int) -> list[float]:
    """Best time of each callable over rounds that alternate them (noise hits all alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny run (the test suite uses it)")
    args = ap.parse_args()
    n = 20 if args.quick else 400
    rounds = 2 if args.quick else 7

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    lib = ffi.dlopen(betanet.get_library())
    sodium = ffi.dlopen(ctypes.util.find_library("sodium") or "libsodium.so.23")

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
        for _ in range(n):
            i, r = NoiseConnection.from_name(NAME), NoiseConnection.from_name(NAME)
            i.set_as_initiator()
            r.set_as_responder()
            i.set_keypair_from_private_bytes(Keypair.STATIC, ipriv)
            i.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, rpub)
            r.set_keypair_from_private_bytes(Keypair.STATIC, rpriv)
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

    t_cffi, t_native, t_noise, t_four = best_interleaved([core_cffi, core_native, noiseprotocol, four_x25519],
                                                         rounds)
    per = lambda t: t / n * 1e6      # noqa: E731  (µs per handshake / per side)
    print(f"noise xk full handshake (both sides), {n} per round, best of {rounds}:")
    print(f"  core via cffi            {per(t_cffi):8.1f} us  {n / t_cffi:8.0f} handshakes/s")
    print(f"  core via _native.noise   {per(t_native):8.1f} us  {n / t_native:8.0f} handshakes/s")
    print(f"  noiseprotocol            {per(t_noise):8.1f} us  {n / t_noise:8.0f} handshakes/s")
    print(f"noise xk core / noiseprotocol speed: {t_noise / t_cffi:.2f}x (cffi), "
          f"{t_noise / t_native:.2f}x (_native)  (target > 1)")
    print(f"  4 x X25519 (libsodium)   {per(t_four):8.1f} us per side")
    print(f"noise xk core per side / its 4 x X25519: {t_cffi / 2 / t_four:.2f}x  (target <= 1.3)")


if __name__ == "__main__":
    main()
