#!/usr/bin/env python3
"""Federated-learning benchmarks: SecAgg masking, one full SecAgg+ round, the accountant.

1. Masking throughput, GB/s of uint32 parameters (4 bytes each), of libbetanet's
   betanet_secagg_mask_add (ChaCha20 PRG + modular add, through the C API) next to the
   NumPy generators: legacy RandomState.randint (the PRG Flower's SecAgg+ expands masks
   with) and PCG64 Generator.integers, each followed by the same modular add. Reported as
   wall-clock and per-CPU-second rates (the machine is shared: CPU time is the fairer
   "per core" figure).
2. One SecAgg+ round, all in this process: n participants x dim parameters, parameters
   from graph.choose_parameters(n, dropout=0.3); client time (sum and mean over clients)
   and server time measured separately, with 0 % dropouts and with 30 % of participants
   dropping after sharing keys (the costly case: their pairwise masks are rebuilt).
3. Compression: bytes on the wire of top-k with error feedback and of the shared-seed
   variant, next to the dense vector.
4. Accountant: epsilon over T steps and the inverse (noise multiplier for a target
   epsilon), betanet.fl.accountant next to dp_accounting's RdpAccountant.

Timers and the optional peer (dp_accounting) through bench/harness.py.

Usage: bench/fl_bench.py [--smoke|--quick]    (--smoke: 10 x 20 000 round, tiny sizes)
"""
from __future__ import annotations

import random
import sys
import time

import harness
import numpy as np

from betanet._native import secagg as native
from betanet.fl import accountant
from betanet.fl.graph import choose_parameters
from betanet.fl.secagg import Coordinator, Participant, Stage

TARGET_MASK_GBPS = 1.0          # per core
TARGET_SERVER_S = 2.0           # 100 x 1M, unmasking


def bench_masking(words: int, repeat: int) -> None:
    print(f"\n## Masking {words:,} uint32 words ({words * 4 / 1e6:.0f} MB), best of {repeat}")
    vec = np.zeros(words, dtype=np.uint32)
    seed = bytes(range(32))
    legacy = np.random.RandomState(1)
    pcg = np.random.Generator(np.random.PCG64(1))

    def flower_style():       # RandomState.randint then add, as Flower's pseudo_rand_gen
        vec.__iadd__(legacy.randint(0, 2**32, size=words, dtype=np.uint32))

    def pcg64():
        vec.__iadd__(pcg.integers(0, 2**32, size=words, dtype=np.uint32))

    rows = [("betanet mask_add (ChaCha20, C API)",
             harness.best_wall_cpu(lambda: native.mask_add(vec, seed, native.PURPOSE_PAIRWISE, 1), repeat)),
            ("numpy RandomState.randint + add (Flower)", harness.best_wall_cpu(flower_style, repeat)),
            ("numpy PCG64 integers + add", harness.best_wall_cpu(pcg64, repeat)),
            # libsodium's ChaCha20 alone (mask_expand never takes the AVX-512 kernel): what
            # mask_add would cost without it, before the add
            ("betanet mask_expand (libsodium, keystream)",
             harness.best_wall_cpu(lambda: native.mask_expand(words, seed, native.PURPOSE_PAIRWISE, 1,
                                                              out=vec), repeat))]
    gb = words * 4 / 1e9
    print(f"{'':44s} {'GB/s wall':>10s} {'GB/s per CPU-s':>15s}")
    for name, (w, c) in rows:
        print(f"{name:44s} {gb / w:10.2f} {gb / c:15.2f}")
    ours = gb / rows[0][1][1]
    print(f"betanet / RandomState: {rows[1][1][1] / rows[0][1][1]:.1f}x, "
          f"betanet / PCG64: {rows[2][1][1] / rows[0][1][1]:.1f}x (CPU time)")
    print(f"target >= {TARGET_MASK_GBPS} GB/s per core: {'met' if ours >= TARGET_MASK_GBPS else 'MISSED'}")


def bench_round(n: int, dim: int, dropout_frac: float) -> dict[str, float]:
    params = choose_parameters(n, dropout=0.3, corruption=0.0, dim=dim)
    rng = np.random.default_rng(0)
    xs = {i: rng.integers(0, 2**20, dim, dtype=np.uint32) for i in range(1, n + 1)}
    dropped = set(random.Random(1).sample(sorted(xs), int(dropout_frac * n)))
    client_cpu = {i: 0.0 for i in xs}
    server_cpu = 0.0
    server_unmask = 0.0
    server_unmask_wall = 0.0
    coord = Coordinator(7, xs, params)
    parts = {i: Participant(i, 7, x) for i, x in xs.items()}
    del xs
    now = 0.0
    gone: set[int] = set()
    while not coord.finished:
        t = time.process_time()
        outgoing = coord.data_to_send()
        server_cpu += time.process_time() - t
        if not outgoing:
            now += 61.0
            t = time.process_time()
            coord.tick(now)
            server_cpu += time.process_time() - t
            continue
        if coord.stage is Stage.MASKED:
            gone |= dropped              # drop after sharing keys, before the masked input
        for to, data in outgoing:
            if to in gone:
                continue
            t = time.process_time()
            parts[to].receive(data, now)
            replies = parts[to].data_to_send()
            client_cpu[to] += time.process_time() - t
            for reply in replies:
                unmask = coord.stage is Stage.UNMASK
                t, w = time.process_time(), time.perf_counter()
                coord.receive(to, reply, now)
                dt = time.process_time() - t
                server_cpu += dt
                if unmask:
                    server_unmask += dt
                    server_unmask_wall += time.perf_counter() - w
    assert coord.stage is Stage.DONE, coord.abort_reason
    active = [c for i, c in client_cpu.items() if i not in dropped]
    return {"k": params.degree, "t": params.threshold, "client_total": sum(client_cpu.values()),
            "client_mean": sum(active) / len(active), "client_max": max(active),
            "server": server_cpu, "server_unmask": server_unmask,
            "server_unmask_wall": server_unmask_wall, "workers": coord._workers}


def bench_rounds(n: int, dim: int) -> None:
    print(f"\n## One SecAgg+ round: {n} participants x {dim:,} parameters (CPU seconds)")
    print(f"{'dropouts':>9s} {'k':>4s} {'t':>4s} {'client mean':>12s} {'client max':>11s} "
          f"{'clients total':>14s} {'server total':>13s} {'server unmask':>14s} {'(wall)':>7s}")
    for frac in (0.0, 0.3):
        r = bench_round(n, dim, frac)
        print(f"{frac:9.0%} {r['k']:4d} {r['t']:4d} {r['client_mean']:12.3f} {r['client_max']:11.3f} "
              f"{r['client_total']:14.2f} {r['server']:13.2f} {r['server_unmask']:14.2f} "
              f"{r['server_unmask_wall']:7.2f}")
    print(f"(server unmask: handling the Unmask messages and rebuilding the sum, {r['workers']} "
          f"threads; target < {TARGET_SERVER_S} s for 100 x 1M)")


def bench_compression(dim: int) -> None:
    from betanet.fl.compression import SharedTopK, TopK
    print(f"\n## Compression of a {dim:,}-parameter update (bytes on the wire per participant)")
    u = np.random.default_rng(3).normal(size=dim)
    seed = bytes(32)
    print(f"{'':34s} {'bytes':>10s} {'ratio':>7s} {'ms/compress':>12s}")
    print(f"{'dense uint32 (SecAgg, no compression)':34s} {4 * dim:10,d} {1.0:7.1f} {'-':>12s}")
    for frac in (0.1, 0.01):
        k = int(dim * frac)
        t, st = TopK(dim, k), SharedTopK(dim, k)
        w_t, _ = harness.best_wall_cpu(lambda: t.compress(u), 3)
        w_s, _ = harness.best_wall_cpu(lambda: st.compress(u, seed, 1), 3)
        print(f"{f'top-k {frac:.0%} + error feedback':34s} {t.wire_bytes():10,d} "
              f"{4 * dim / t.wire_bytes():7.1f} {w_t * 1e3:12.1f}")
        print(f"{f'shared-seed {frac:.0%} (SecAgg-compatible)':34s} {st.wire_bytes():10,d} "
              f"{4 * dim / st.wire_bytes():7.1f} {w_s * 1e3:12.1f}")


def _dp_accounting():
    import logging

    import dp_accounting
    logging.getLogger("absl").setLevel(logging.ERROR)  # its per-order convergence warnings drown the table
    from dp_accounting.rdp import RdpAccountant
    return dp_accounting, RdpAccountant


def bench_accountant(peers: harness.Peers) -> None:
    print("\n## Accountant: epsilon after T steps, and the inverse (seconds per call)")
    dp_accounting, RdpAccountant = peers["dp_accounting"] if "dp_accounting" in peers else (None, None)
    cases = [(0.01, 1.1, 1000, 1e-5), (0.1, 0.8, 100, 1e-5), (0.001, 4.0, 10000, 1e-7)]
    for q, sigma, steps, delta in cases:
        w_ours, _ = harness.best_wall_cpu(lambda: accountant.epsilon(q, sigma, steps, delta), 3)
        eps = accountant.epsilon(q, sigma, steps, delta)
        line = f"q={q:<6} sigma={sigma:<4} T={steps:<6} eps={eps:.6f}  betanet {w_ours * 1e3:8.1f} ms"
        if dp_accounting is not None:
            def google():
                a = RdpAccountant()
                a.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
                return a.get_epsilon(delta)
            w_g, _ = harness.best_wall_cpu(google, 3)
            line += f"   dp_accounting {w_g * 1e3:8.1f} ms  |diff| {abs(google() - eps):.1e}"
        print(line)
    w, _ = harness.best_wall_cpu(lambda: accountant.noise_multiplier_for(1.0, 0.01, 1000, 1e-5), 1)
    print(f"noise_multiplier_for(eps=1, q=0.01, T=1000, delta=1e-5) = "
          f"{accountant.noise_multiplier_for(1.0, 0.01, 1000, 1e-5):.6f} in {w:.2f} s")


def main() -> int:
    args = harness.parser(__doc__).parse_args()
    harness.header("Federated learning (bench/fl_bench.py)", args.smoke)
    peers = harness.Peers()
    peers.load("dp_accounting", _dp_accounting)
    peers.report()
    bench_masking(2_000_000 if args.smoke else 16_000_000, 3 if args.smoke else 5)
    if args.smoke:
        bench_rounds(10, 20_000)
    else:
        bench_rounds(100, 1_000_000)
    bench_compression(100_000 if args.smoke else 1_000_000)
    bench_accountant(peers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
