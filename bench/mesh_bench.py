#!/usr/bin/env python3
"""BLE mesh: codec speed next to bitchat-cli's, simulation speed, relay policy cost.

1. Codec: encode + decode of a signed 64-byte public message (a typical BitChat packet,
   padded to 256 bytes), packets/s, through
     - the C API in a C loop (a small program compiled against the installed libbetanet),
     - Python over the native codec (betanet._native.mesh.encode/decode),
     - bitchat-cli's pure-Python codec (the peer; skipped when not installed),
   with the ratios to bitchat-cli (target >= 50x for the C API).
2. Simulation speed: a 1 000-node mesh, simulated seconds per wall second.
3. Relay policy: transmissions and energy per delivered broadcast, adaptive against
   flooding, at three densities.

A self-contained timer (best of several rounds); no shared harness. Usage:
bench/mesh_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import betanet
from betanet._native import mesh as m

SENDER = bytes(range(1, 9))
PAYLOAD = bytes(range(64))
SIG = bytes(64)
TS = 1_764_633_600_000

C_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "betanet.h"
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    uint8_t sender[8] = {1,2,3,4,5,6,7,8}, payload[64], sig[64] = {0}, buf[512];
    betanet_mesh_packet_t p = {0};
    betanet_mesh_view_t v;
    struct timespec a, b;
    size_t len;
    long i, ok = 0;
    for (i = 0; i < 64; i++) payload[i] = (uint8_t)i;
    p.version = 1; p.type = 2; p.ttl = 7; p.timestamp = 1764633600000ull;
    p.sender = sender; p.payload = payload; p.payload_len = 64; p.signature = sig;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (i = 0; i < n; i++) {
        p.ttl = (uint8_t)(i & 7);
        if (betanet_mesh_encode(&p, 1, buf, sizeof buf, &len) != 0) return 1;
        if (betanet_mesh_decode(buf, len, &v) == 0) ok += v.payload_len;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.9f %ld\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, ok);
    return 0;
}
"""


def best_rate(fn, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t)
    return n / best


def c_api_rate(n: int, rounds: int) -> float | None:
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "loop.c"), os.path.join(d, "loop")
        with open(src, "w") as f:
            f.write(C_LOOP)
        lib = betanet.get_library()
        try:
            subprocess.run(["cc", "-O2", "-I", betanet.get_include(), src, "-o", exe, lib,
                            f"-Wl,-rpath,{os.path.dirname(lib)}"], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"  (C loop not built: {exc})")
            return None
        best = float("inf")
        for _ in range(rounds):
            out = subprocess.run([exe, str(n)], check=True, capture_output=True, text=True).stdout.split()
            best = min(best, float(out[0]))
        return n / best


def native_loop(n: int) -> None:
    enc, dec = m.encode, m.decode
    for i in range(n):
        dec(enc(1, 2, i & 7, TS, SENDER, PAYLOAD, signature=SIG))


def bitchat_cli_loop(n: int) -> None:
    from bitchat_cli.protocol import BitchatPacket
    for i in range(n):
        BitchatPacket.decode(BitchatPacket(type=2, sender_id=SENDER, timestamp=TS, payload=PAYLOAD,
                                           signature=SIG, ttl=i & 7).encode())


def codec(quick: bool) -> None:
    rounds = 3 if quick else 5
    print("codec: encode + decode, signed 64-byte message padded to 256 bytes (packets/s)")
    c = c_api_rate(200_000 if quick else 2_000_000, rounds)
    py = best_rate(native_loop, 20_000 if quick else 100_000, rounds)
    try:
        import bitchat_cli.protocol  # noqa: F401
        peer = best_rate(bitchat_cli_loop, 5_000 if quick else 30_000, rounds)
    except ImportError:
        peer = None
    rows = [("betanet C API (C loop)", c), ("betanet Python (_native)", py), ("bitchat-cli (pure Python)", peer)]
    for name, rate in rows:
        if rate is None:
            print(f"  {name:28s} n/a")
        else:
            ratio = f"{rate / peer:8.1f}x bitchat-cli" if peer else ""
            print(f"  {name:28s} {rate:14,.0f}  {ratio}")


def sim_speed(quick: bool) -> None:
    from betanet.mesh.sim import SimMesh
    n = 300 if quick else 1000
    side = 100.0 * (n / 50) ** 0.5                  # the density of the 50-node test mesh
    t = time.perf_counter()
    mesh = SimMesh(n, area_m=side, seed=3)
    mesh.announce_all()
    res = mesh.broadcast_round(3 if quick else 5, size=64)
    wall = time.perf_counter() - t
    print(f"simulation: {n} nodes, {mesh.scheduler.now:.1f} simulated s in {wall:.2f} wall s "
          f"= {mesh.scheduler.now / wall:.1f} simulated s per wall s "
          f"(delivery {res.delivery_ratio:.2%} of nodes within TTL 7)")


def policy(quick: bool) -> None:
    from betanet.mesh.sim import SimMesh
    print("relay policy: frames and energy per delivered broadcast (60 nodes, TTL 7, no loss)")
    print(f"  {'density':26s} {'policy':9s} {'delivery':>9s} {'frames/deliv':>13s} {'mJ/deliv':>9s}")
    for label, side in (("sparse (150 m, ~4 nbrs)", 150.0), ("medium (100 m, ~9 nbrs)", 100.0),
                        ("dense (50 m, ~30 nbrs)", 50.0)):
        for pol in ("flood", "adaptive"):
            mesh = SimMesh(60, area_m=side, seed=4, policy=pol)
            mesh.announce_all()
            s = mesh.broadcast_round(3 if quick else 10, size=64).summary()
            print(f"  {label:26s} {pol:9s} {s['delivery_ratio']:9.2%} {s['tx_per_delivered']:13.3f} "
                  f"{s['energy_mj_per_delivered']:9.4f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"betanet {betanet.__version__}, cpu: {', '.join(betanet.cpu_features()) or 'scalar'}")
    codec(args.quick)
    sim_speed(args.quick)
    policy(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
