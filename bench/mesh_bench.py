#!/usr/bin/env python3
"""BLE mesh: codec speed next to bitchat-cli's, simulation speed, relay policy cost.

1. Codec: encode + decode of a signed 64-byte public message (a typical BitChat packet,
   padded to 256 bytes), packets/s, through
     - the C API in a C loop (a small program compiled against the installed libbetanet),
     - Python, per packet, over the native codec (betanet._native.mesh.encode/decode: one
       call and one bytes object per packet),
     - Python, flat (betanet.mesh.PacketArray: batches of 1 024 packets from columns into
       one buffer and back into NumPy records, one core call per batch per direction),
     - bitchat-cli's pure-Python codec (the peer; skipped when not installed),
   with the ratios to bitchat-cli (target >= 50x through Python; which side meets it is
   printed).
2. Simulation speed: a 1 000-node mesh, simulated seconds per wall second, with the
   medium's neighbour index and with the all-pairs scan it replaced (same run, same results).
3. Relay policy: transmissions and energy per delivered broadcast, adaptive against
   flooding, at three densities.

Timers, interleaved rounds (the codec sides alternate; rates are the best round, ratios the
median within-round ratio) and the optional peer through bench/harness.py. Usage:
bench/mesh_bench.py [--smoke|--quick]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import harness

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


def c_api_loop(exe: str):
    """fn(n): n encode + decode pairs in the compiled C loop (its own clock, so process
    start-up is not counted); returns the seconds they took."""
    def run(n: int) -> float:
        return float(subprocess.run([exe, str(n)], check=True, capture_output=True, text=True).stdout.split()[0])
    return run


def build_c_loop(d: str) -> str | None:
    cc = harness.c_compiler()
    if cc is None:
        return None
    src, exe = os.path.join(d, "loop.c"), os.path.join(d, "loop")
    with open(src, "w") as f:
        f.write(C_LOOP)
    lib = betanet.get_library()
    subprocess.run([cc, "-O2", "-I", betanet.get_include(), src, "-o", exe, lib,
                    f"-Wl,-rpath,{os.path.dirname(lib)}"], check=True, capture_output=True)
    return exe


def native_loop(n: int) -> None:
    enc, dec = m.encode, m.decode
    for i in range(n):
        dec(enc(1, 2, i & 7, TS, SENDER, PAYLOAD, signature=SIG))


FLAT_BATCH = 1024


def flat_loop():
    """fn(n): n packets encoded and decoded through PacketArray in batches of FLAT_BATCH
    (the same packet as the other sides, TTL varying per packet)."""
    import numpy as np
    from betanet.mesh import PacketArray
    payload = PAYLOAD * FLAT_BATCH
    offsets = np.arange(FLAT_BATCH + 1, dtype=np.uintp) * len(PAYLOAD)
    ttl = (np.arange(FLAT_BATCH) & 7).astype(np.uint8)

    def run(n: int) -> None:
        for _ in range(max(1, n // FLAT_BATCH)):
            arr = PacketArray.encode(sender=SENDER, payload=payload, payload_offsets=offsets, type=2,
                                     timestamp=TS, ttl=ttl, signature=SIG)
            arr = PacketArray.decode(arr.buffer, arr.offsets)
            if arr.decoded != FLAT_BATCH:
                raise RuntimeError("flat decode lost packets")
    return run


def _bitchat_cli():
    from bitchat_cli.protocol import BitchatPacket
    return BitchatPacket


def bitchat_cli_loop(n: int) -> None:
    BitchatPacket = _bitchat_cli()
    for i in range(n):
        BitchatPacket.decode(BitchatPacket(type=2, sender_id=SENDER, timestamp=TS, payload=PAYLOAD,
                                           signature=SIG, ttl=i & 7).encode())


def codec(smoke: bool) -> None:
    rounds = 1 if smoke else 5
    print("codec: encode + decode, signed 64-byte message padded to 256 bytes (packets/s)")
    peers = harness.Peers()
    peers.load("bitchat-cli", _bitchat_cli)
    with tempfile.TemporaryDirectory() as d:
        exe = peers.load("C API loop (needs a C compiler)", lambda: build_c_loop(d))
        peers.report()
        # name: (fn(n) -> None, or the seconds by its own clock; n), None when missing
        sides = {"betanet C API (C loop)": (c_api_loop(exe), 20_000 if smoke else 2_000_000) if exe else None,
                 "betanet Python (_native)": (native_loop, 2_000 if smoke else 100_000),
                 "betanet Python flat (PacketArray)": (flat_loop(), 8 * FLAT_BATCH if smoke else 1_000 * FLAT_BATCH),
                 "bitchat-cli (pure Python)": (bitchat_cli_loop, 500 if smoke else 30_000)
                 if "bitchat-cli" in peers else None}

        def seconds_per_call(fn, n: int) -> float:
            t = time.perf_counter()
            own = fn(n)
            return (own if own is not None else time.perf_counter() - t) / n

        per_call = harness.interleaved({name: (lambda fn=side[0], n=side[1]: seconds_per_call(fn, n))
                                        for name, side in sides.items() if side is not None}, rounds)
    peer = per_call.get("bitchat-cli (pure Python)")
    for name in sides:
        if name not in per_call:
            print(f"  {name:34s} n/a")
            continue
        rate = 1 / min(per_call[name])
        ratio = f"{harness.ratio(harness.median_ratio(peer, per_call[name])):>9} bitchat-cli" if peer else ""
        print(f"  {name:34s} {rate:14,.0f}  {ratio}")
    if peer:
        for name in ("betanet Python (_native)", "betanet Python flat (PacketArray)"):
            if name in per_call:
                r = harness.median_ratio(peer, per_call[name])
                print(f"target: Python >= 50x bitchat-cli: {name}: {r:.1f}x {'met' if r >= 50 else 'MISSED'}")


def sim_speed(smoke: bool) -> None:
    """The same seeded run with the medium's neighbour index and with its reference, the scan
    of every pair (identical results: the row says so), one after the other."""
    from betanet.mesh.sim import SimMesh
    n = 100 if smoke else 1000
    side = 100.0 * (n / 50) ** 0.5                  # the density of the 50-node test mesh
    rates, outcome = {}, {}
    for index in (True, False):
        t = time.perf_counter()
        mesh = SimMesh(n, area_m=side, seed=3, neighbour_index=index)
        mesh.announce_all()
        res = mesh.broadcast_round(2 if smoke else 5, size=64)
        wall = time.perf_counter() - t
        rates[index] = mesh.scheduler.now / wall
        outcome[index] = (res.delivered, res.frames_sent, mesh.medium.link_writes)
        label = "neighbour index" if index else "all-pairs scan (reference)"
        print(f"simulation: {n} nodes, {label:26s} {mesh.scheduler.now:.1f} simulated s in {wall:.2f} wall s "
              f"= {rates[index]:.1f} simulated s per wall s (delivery {res.delivery_ratio:.2%} of nodes "
              f"within TTL 7)")
    print(f"  index / scan: {rates[True] / rates[False]:.1f}x; same deliveries, frames and link writes: "
          f"{'yes' if outcome[True] == outcome[False] else 'NO'}")


def policy(smoke: bool) -> None:
    from betanet.mesh.sim import SimMesh
    print("relay policy: frames and energy per delivered broadcast (60 nodes, TTL 7, no loss)")
    print(f"  {'density':26s} {'policy':9s} {'delivery':>9s} {'frames/deliv':>13s} {'mJ/deliv':>9s}")
    for label, side in (("sparse (150 m, ~4 nbrs)", 150.0), ("medium (100 m, ~9 nbrs)", 100.0),
                        ("dense (50 m, ~30 nbrs)", 50.0)):
        for pol in ("flood", "adaptive"):
            mesh = SimMesh(60, area_m=side, seed=4, policy=pol)
            mesh.announce_all()
            s = mesh.broadcast_round(2 if smoke else 10, size=64).summary()
            print(f"  {label:26s} {pol:9s} {s['delivery_ratio']:9.2%} {s['tx_per_delivered']:13.3f} "
                  f"{s['energy_mj_per_delivered']:9.4f}")


def main() -> int:
    args = harness.parser(__doc__.splitlines()[0]).parse_args()
    harness.header("BLE mesh (bench/mesh_bench.py)", args.smoke)
    codec(args.smoke)
    sim_speed(args.smoke)
    policy(args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
