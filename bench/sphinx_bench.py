"""Sphinx benchmark: libbetanet vs the libsodium X25519 cost it needs vs sphinxmix, one run.

Measures, interleaved round by round so that machine noise hits every column alike:
  * X25519 scalar multiplication (crypto_scalarmult of the very libsodium libbetanet links,
    through ctypes; the ctypes call overhead is measured and subtracted),
  * per-hop processing of a 5-hop / 2 KiB packet (relay hop: 2 scalar mults),
  * 5-hop packet creation (2 scalar mults per hop: 10),
  * mixnode throughput: one shared node, process_many in 1 and 2 threads (GIL released),
    with the multi-buffer X25519 fast path (AVX-512 IFMA, src/core/x25519_mb.h) on and
    off (betanet_cpu_restrict),
  * the multi-buffer kernel itself: 8 scalar mults per call, amortised per scalar mult
    (the header compiled into a tiny helper here, called through ctypes),
  * the mixnode service end to end on loopback: packets/s through a running
    betanet.mix.Mixnode (asyncio: links, queue, worker threads, hold, forward) over the
    plain framing and over HTX (plain TCP and TCP+TLS 1.3), next to process_many alone,
    so the cost of the asyncio layer shows; and the links alone (no node),
  * sphinxmix 0.0.7 with its Curve25519 group (PyNaCl) and with its default P-224 group.

Usage: python bench/sphinx_bench.py [--smoke] [--rounds N]
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import threading

import harness
from betanet import mix, sphinx
from betanet._native import core as _core
from betanet.sphinx import Geometry, KeyPair, NodeInfo, Route, SphinxNode

G = Geometry(5, 2048)
DEST = b"\xdd" * 32
per_op = harness.per_call


IFMA = _core.CPU_FLAGS["avx512ifma"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FastPath:
    """Switch the IFMA fast path on / off for the library (betanet_cpu_restrict)."""

    def __init__(self) -> None:
        self.full = _core.cpu_restrict(0xFFFFFFFF)
        self.available = bool(self.full & IFMA)

    def set(self, on: bool) -> None:
        _core.cpu_restrict(self.full if on else self.full & ~IFMA)


class MultiBuffer:
    """bnt_x25519_mb8 from src/core/x25519_mb.h, compiled into a helper .so for ctypes."""

    SRC = '#include "x25519_mb.h"\nvoid mb8(uint8_t *o, const uint8_t *s, const uint8_t *p, int *st)' \
          ' { bnt_x25519_mb8(o, s, p, st); }\nint noop(void) { return 0; }\n'

    def __init__(self) -> None:
        cc = harness.c_compiler()
        if cc is None:
            raise RuntimeError("no C compiler")
        self.dir = tempfile.TemporaryDirectory()
        src, so = os.path.join(self.dir.name, "mb.c"), os.path.join(self.dir.name, "mb.so")
        with open(src, "w") as f:
            f.write(self.SRC)
        subprocess.run([cc, "-O3", "-shared", "-fPIC", "-I", os.path.join(ROOT, "src", "core"), "-o", so, src],
                       check=True)
        self.lib = ctypes.CDLL(so)
        self.lib.mb8.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_void_p]

    def bench(self, n_calls: int) -> float:
        """Seconds per scalar multiplication (per lane), ctypes overhead subtracted."""
        out = ctypes.create_string_buffer(256)
        st = (ctypes.c_int * 8)()
        sc, pt = os.urandom(256), b"".join(KeyPair.generate().public_key for _ in range(8))

        def run(k):
            for _ in range(k):
                self.lib.mb8(out, sc, pt, st)

        def overhead(k):
            for _ in range(k):
                self.lib.noop()
        return (per_op(run, n_calls) - per_op(overhead, n_calls)) / 8


class Setup:
    def __init__(self, n_packets: int) -> None:
        self.keys = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(5)]
        self.route = Route([NodeInfo(bytes([0xA0 + i]) * 32, k.public_key)
                            for i, k in enumerate(self.keys)], [0] * 5)
        self.packets = [sphinx.create_packet(G, 1, self.route, DEST, b"bench") for _ in range(n_packets)]

    def node(self, capacity: int) -> SphinxNode:
        node = SphinxNode(G, capacity)
        node.add_key(1, self.keys[0].secret_key)
        return node


def bench_x25519(lib, n: int) -> float:
    q = ctypes.create_string_buffer(32)
    sk = os.urandom(32)
    pk = KeyPair.generate().public_key

    def run(k):
        for _ in range(k):
            lib.crypto_scalarmult(q, sk, pk)

    def overhead(k):
        for _ in range(k):
            lib.crypto_scalarmult_bytes()
    return per_op(run, n) - per_op(overhead, n)


def bench_hop(s: Setup, n: int) -> float:
    node = s.node(2 * n)
    packets = s.packets[:n]
    with harness.Stopwatch() as sw:
        out = node.process_many(packets)
    dt = sw.wall / n
    assert all(isinstance(r, sphinx.Relay) for r in out)
    node.close()
    return dt


class CoreBatch:
    """betanet_sphinx_node_process_many through ctypes: the C API cost, no Python objects."""

    def __init__(self, s: Setup) -> None:
        import betanet
        self.lib = lib = ctypes.CDLL(betanet.get_library())
        lib.betanet_sphinx_node_new.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_size_t,
                                                ctypes.POINTER(ctypes.c_void_p)]
        lib.betanet_sphinx_node_add_key.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p]
        lib.betanet_sphinx_node_free.argtypes = [ctypes.c_void_p]
        lib.betanet_sphinx_node_process_many.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                         ctypes.c_void_p, ctypes.c_void_p]
        self.s = s

    def node(self, capacity: int) -> ctypes.c_void_p:
        node = ctypes.c_void_p()
        assert self.lib.betanet_sphinx_node_new(G.max_hops, G.payload_bytes, capacity,
                                                ctypes.byref(node)) == 0
        assert self.lib.betanet_sphinx_node_add_key(node, 1, self.s.keys[0].secret_key) == 0
        return node

    def run(self, node: ctypes.c_void_p, packets: list[bytes]) -> float:
        """Total seconds for one C batch call over `packets`."""
        n = len(packets)
        data = b"".join(packets)
        outs = ctypes.create_string_buffer(len(data))
        results = ctypes.create_string_buffer(80 * n)
        with harness.Stopwatch() as sw:
            ok = self.lib.betanet_sphinx_node_process_many(node, data, n, results, outs)
        assert ok == n, ok
        return sw.wall


def bench_hops(lib, s: Setup, core: CoreBatch, n: int, n_x: int, slices: int = 20):
    """Per-op times of X25519, the Python per-hop path and the C per-hop path, measured in
    alternating slices of a few milliseconds each, so that each slice's ratio compares
    neighbours in time. Returns three lists (one entry per slice)."""
    node = s.node(2 * n)
    cnode = core.node(2 * n)
    xs, ps, cs = [], [], []
    step = max(1, n // slices)
    kx = max(1, n_x // slices)
    for i in range(0, n, step):
        chunk = s.packets[i:i + step]
        x_before = bench_x25519(lib, kx // 2 or 1)
        if (i // step) % 2:               # alternate the order: no column always runs second
            cs.append(core.run(cnode, chunk) / len(chunk))
        with harness.Stopwatch() as sw:
            out = node.process_many(chunk)
        ps.append(sw.wall / len(chunk))
        assert all(isinstance(r, sphinx.Relay) for r in out)
        if not (i // step) % 2:
            cs.append(core.run(cnode, chunk) / len(chunk))
        xs.append((x_before + bench_x25519(lib, kx // 2 or 1)) / 2)   # X25519 around the slice
    node.close()
    core.lib.betanet_sphinx_node_free(cnode)
    return xs, ps, cs


def bench_create(s: Setup, n: int) -> float:
    def run(k):
        for _ in range(k):
            sphinx.create_packet(G, 1, s.route, DEST, b"bench")
    return per_op(run, n)


def bench_throughput(s: Setup, threads: int) -> tuple[float, float]:
    """(packets/s, cores used = process CPU time / wall time)."""
    node = s.node(len(s.packets) + 1)
    share = [s.packets[i::threads] for i in range(threads)]
    chunk = 64
    start = threading.Barrier(threads + 1)

    def work(mine):
        start.wait()
        for i in range(0, len(mine), chunk):
            node.process_many(mine[i:i + chunk])
    ts = [threading.Thread(target=work, args=(m,)) for m in share]
    for t in ts:
        t.start()
    start.wait()
    with harness.Stopwatch() as sw:
        for t in ts:
            t.join()
    assert node.replay_count(1) == len(s.packets)
    node.close()
    return len(s.packets) / sw.wall, sw.cores


# ---- the mixnode service, end to end on loopback ------------------------------------------

# The mix frame type of a Sphinx packet on a link (docs/sphinx.md, "Links").
FRAME_PACKET = mix.FRAME_PACKET
SERVICE_KINDS = ("tcp-framing", "htx-plain", "htx-tcp")


class Service:
    """Packets/s through a running ``betanet.mix.Mixnode`` on loopback: a sender pushes
    pre-made packets over a link to the node, which processes them (``process_many`` in its
    worker threads), holds each for its 0 ms delay and forwards it over a link of the same
    kind to a sink; the rate counts packets arriving at the sink. At most `window` packets
    are in flight, so no queue overflows. Sender and sink share the node's process and
    event loop; the 'links alone' measurement (sender straight to sink, no node) shows
    their part of the cost."""

    WARM_UP = 16              # packets through first, untimed: link set-up, handshakes
    STALL = 30.0              # seconds without progress that fail the run

    def __init__(self, n_packets: int, window: int) -> None:
        self.window = window
        self.node_id, self.sink_id = b"\xa1" * 32, b"\xa2" * 32
        self.node_key = KeyPair.from_seed(b"\x51" * 32)
        route = Route([NodeInfo(self.node_id, self.node_key.public_key),
                       NodeInfo(self.sink_id, KeyPair.from_seed(b"\x52" * 32).public_key)], [0, 0])
        self.packets = [sphinx.create_packet(G, 1, route, DEST, b"service")
                        for _ in range(n_packets + self.WARM_UP)]

    def measure(self, kind: str, through_node: bool) -> tuple[float, float]:
        """(packets/s, cores used = process CPU time / wall time) for one run."""
        return asyncio.run(self._run(kind, through_node))

    async def _run(self, kind: str, through_node: bool) -> tuple[float, float]:
        received = 0
        arrived = asyncio.Event()

        def on_sink(frame_type: int, data: bytes, link: object = None) -> None:
            nonlocal received
            received += 1
            arrived.set()

        sink = mix.make_transport(kind)
        sink_address = await sink.start(on_sink)
        directory = mix.Directory([mix.Descriptor(self.sink_id, sink_address,
                                                  htx_public_key=sink.public_key, transport=sink.kind)])
        node = None
        if through_node:
            node = mix.Mixnode(self.node_id, self.node_key, directory, geometry=G,
                               transport=mix.make_transport(kind), mean_delay_ms=0)
            await node.start()
            target = node.descriptor()
        else:
            target = directory.get(self.sink_id)
        sender = mix.make_transport(kind)
        lost = (lambda: sum(node.counters.dropped.values())) if node else (lambda: 0)

        async def pump(packets: list[bytes], sent: int) -> int:
            for packet in packets:
                while sent - received - lost() >= self.window:
                    await wait()
                await sender.send_to(target, FRAME_PACKET, packet)
                sent += 1
            while received + lost() < sent:
                await wait()
            return sent

        async def wait() -> None:
            arrived.clear()
            before = received
            try:
                await asyncio.wait_for(arrived.wait(), self.STALL)
            except asyncio.TimeoutError:
                raise RuntimeError(f"{kind}: no packet arrived for {self.STALL} s ({received} "
                                   f"received; node counters: {node and node.counters.summary()})") from None
            assert received > before
        try:
            sent = await pump(self.packets[:self.WARM_UP], 0)
            with harness.Stopwatch() as sw:
                await pump(self.packets[self.WARM_UP:], sent)
            if lost():
                raise RuntimeError(f"{kind}: the node dropped packets: {node.counters.summary()}")
        finally:
            await sender.close()
            if node is not None:
                await node.close()
            await sink.close()
        return (len(self.packets) - self.WARM_UP) / sw.wall, sw.cores


class SphinxMix:
    """sphinxmix with the Curve25519 group (its X25519 configuration) or its default group."""

    def __init__(self, c25519: bool) -> None:
        from sphinxmix.SphinxClient import Nenc, create_forward_message
        from sphinxmix.SphinxNode import sphinx_process
        from sphinxmix.SphinxParams import SphinxParams
        if c25519:
            from nacl.bindings import crypto_scalarmult_base
            from sphinxmix.SphinxParamsC25519 import Group_C25519
            self.p = SphinxParams(group=Group_C25519(), body_len=G.payload_bytes)
            self.keys = [(x, crypto_scalarmult_base(x)) for x in (os.urandom(32) for _ in range(5))]
        else:
            self.p = SphinxParams(body_len=G.payload_bytes)
            self.keys = []
            for _ in range(5):
                x = self.p.group.gensecret()
                self.keys.append((x, self.p.group.expon(self.p.group.g, [x])))
        self.nodes = [Nenc(i) for i in range(5)]
        self.create_fn, self.process_fn = create_forward_message, sphinx_process

    def create(self):
        return self.create_fn(self.p, self.nodes, [k[1] for k in self.keys], b"dest", b"bench")

    def bench_create(self, n: int) -> float:
        return per_op(lambda k: [self.create() for _ in range(k)], n)

    def bench_hop(self, n: int) -> float:
        msgs = [self.create() for _ in range(n)]
        with harness.Stopwatch() as sw:
            for h, d in msgs:
                self.process_fn(self.p, self.keys[0][0], h, d)
        return sw.wall / n


def main(argv=None) -> int:
    ap = harness.parser(__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=0)
    args = ap.parse_args(argv)
    quick = args.smoke
    rounds = args.rounds or (1 if quick else 7)
    n_hop, n_create, n_x = (8, 4, 20) if quick else (400, 100, 1000)
    n_tp = 64 if quick else 12000
    n_service, window = (64, 32) if quick else (6000, 200)

    harness.header("Sphinx (bench/sphinx_bench.py)", quick)
    print(f"geometry: {G.max_hops} hops, {G.payload_bytes} B payload, packet {G.packet_bytes} B")
    lib = harness.libsodium()
    s = Setup(max(n_tp, n_hop))
    service = Service(n_service, window)
    peers = harness.Peers()
    for name, c in (("sphinxmix (X25519/PyNaCl)", True), ("sphinxmix (P-224/petlib)", False)):
        peers.load(name, lambda c=c: SphinxMix(c))
    peers.report()
    core = CoreBatch(s)
    fast = FastPath()
    mb = None
    if fast.available:
        try:
            mb = MultiBuffer()
        except Exception as exc:
            print(f"multi-buffer kernel helper: unavailable: {exc!r}")
    else:
        print("CPU without AVX-512 IFMA: the fast path is off; 'off' rows repeat the others")
    cols = {k: [] for k in ("x25519", "hop", "core_hop", "create", "tp1", "tp2", "cores2", "mb",
                            "hop_off", "tp1_off", "tp2_off", "cores2_off")}
    services = {(kind, through): ([], []) for kind in SERVICE_KINDS for through in (True, False)}
    slice_ratios: dict[str, list[float]] = {"hop": [], "core_hop": []}
    peer_cols = {name: {"hop": [], "create": []} for name in peers.found}
    warm = s.node(4)                      # first-call costs (imports, page faults) out of the way
    warm.process_many(s.packets[-2:])
    warm.close()
    for r in range(rounds):
        xs, ps, cs = bench_hops(lib, s, core, n_hop, n_x)
        cols["x25519"].append(statistics.median(xs))
        cols["hop"].append(statistics.median(ps))
        cols["core_hop"].append(statistics.median(cs))
        slice_ratios["hop"] += [p / (2 * x) for p, x in zip(ps, xs)]
        slice_ratios["core_hop"] += [c / (2 * x) for c, x in zip(cs, xs)]
        cols["create"].append(bench_create(s, n_create))
        if mb is not None:
            cols["mb"].append(mb.bench(max(2, n_x // 8)))
        for on, sfx in ((True, ""), (False, "_off")):
            fast.set(on)
            if not on:
                cols["hop_off"].append(bench_hop(s, n_hop))
            cols["tp1" + sfx].append(bench_throughput(s, 1)[0])
            rate, cores = bench_throughput(s, 2)
            cols["tp2" + sfx].append(rate)
            cols["cores2" + sfx].append(cores)
        fast.set(True)
        for (kind, through), (rates, cores) in services.items():
            rate, used = service.measure(kind, through)
            rates.append(rate)
            cores.append(used)
        for name, peer in peers.found.items():
            peer_cols[name]["hop"].append(peer.bench_hop(max(2, n_hop // 20)))
            peer_cols[name]["create"].append(peer.bench_create(max(2, n_create // 10)))
    med = {k: statistics.median(v) if v else float("nan") for k, v in cols.items()}
    # ratios per round, then the median: noise that hits a whole round cancels
    hop_ratio = statistics.median(h / (2 * x) for h, x in zip(cols["hop"], cols["x25519"]))
    core_ratio = statistics.median(h / (2 * x) for h, x in zip(cols["core_hop"], cols["x25519"]))
    create_ratio_2n = statistics.median(c / (10 * x) for c, x in zip(cols["create"], cols["x25519"]))
    create_ratio_n1 = statistics.median(c / (6 * x) for c, x in zip(cols["create"], cols["x25519"]))
    us = lambda v: f"{v * 1e6:9.1f} µs"
    print(f"\n{'operation':44} {'time':>12} {'reference':>26} {'ratio':>7}")
    print(f"{'X25519 (libsodium crypto_scalarmult)':44} {us(med['x25519'])}")
    mb_ratio = statistics.median(m / x for m, x in zip(cols["mb"], cols["x25519"])) if cols["mb"] else float("nan")
    print(f"{'X25519 multi-buffer, 8 lanes (IFMA), per mult':44} {us(med['mb'])} "
          f"{'libsodium X25519':>26} {mb_ratio:6.3f}×")
    print(f"{'per-hop processing (relay, process_many)':44} {us(med['hop'])} "
          f"{'2 × X25519 = ' + us(2 * med['x25519']).strip():>26} {hop_ratio:6.3f}×   target ≤ 1.15×")
    print(f"{'per-hop processing (C API batch, ctypes)':44} {us(med['core_hop'])} "
          f"{'2 × X25519 = ' + us(2 * med['x25519']).strip():>26} {core_ratio:6.3f}×")
    q = harness.quantile
    for key, label in (("hop", "per hop, Python"), ("core_hop", "per hop, C API")):
        v = slice_ratios[key]
        print(f"{'  ' + label + ', per-slice ratios':44} {'':12} {'median [p25, p75]':>26} "
              f"{statistics.median(v):6.3f}×  [{q(v, 0.25):.3f}, {q(v, 0.75):.3f}]")
    print(f"{'5-hop creation':44} {us(med['create'])} "
          f"{'10 × X25519 = ' + us(10 * med['x25519']).strip():>26} {create_ratio_2n:6.3f}×   (textbook 2 per hop)")
    print(f"{'':44} {'':12} {'n+1 = 6 × X25519 = ' + us(6 * med['x25519']).strip():>26} "
          f"{create_ratio_n1:6.3f}×   (issue's cost model)")
    hop_off_ratio = statistics.median(h / (2 * x) for h, x in zip(cols["hop_off"], cols["x25519"]))
    print(f"{'per-hop processing, fast path off':44} {us(med['hop_off'])} "
          f"{'2 × X25519 = ' + us(2 * med['x25519']).strip():>26} {hop_off_ratio:6.3f}×")
    on_off = lambda k: statistics.median(a / b for a, b in zip(cols[k], cols[k + "_off"]))
    print(f"{'throughput, 1 thread, fast path on':44} {med['tp1']:9.0f} /s "
          f"{'vs off':>26} {on_off('tp1'):6.2f}×")
    print(f"{'throughput, 1 thread, fast path off':44} {med['tp1_off']:9.0f} /s")
    print(f"{'throughput, 2 threads, fast path on':44} {med['tp2']:9.0f} /s "
          f"{'vs off':>26} {on_off('tp2'):6.2f}×   target ≥ 30000/s")
    print(f"{'throughput, 2 threads, fast path off':44} {med['tp2_off']:9.0f} /s "
          f"{'':26} {med['tp2_off'] / med['tp1_off']:6.2f}× (vs 1 thread)")
    print(f"{'  cores this process used (2 threads, on/off)':44} {med['cores2']:9.2f} / {med['cores2_off']:.2f}")
    per_core = statistics.median(r / c for r, c in zip(cols["tp2"], cols["cores2"]))
    per_core_off = statistics.median(r / c for r, c in zip(cols["tp2_off"], cols["cores2_off"]))
    print(f"{'  2 threads, packets/s per core used, on/off':44} {per_core:9.0f} / {per_core_off:.0f}"
          f"   (× 2 = {2 * per_core:.0f} / {2 * per_core_off:.0f} with 2 whole cores)")
    print(f"{'  ceiling, 2 idle cores, libsodium X25519 only':44} {1 / med['x25519']:9.0f} /s")
    if cols["mb"]:
        print(f"{'  ceiling, 2 idle cores, multi-buffer only':44} {1 / med['mb']:9.0f} /s")
    # CPU time per packet (cores used / rate) holds still when other work takes cores away:
    # the node's asyncio layer is what the service costs beyond process_many and the links.
    cpu_us = lambda rates, cores: statistics.median(1e6 * c / r for r, c in zip(rates, cores))
    kernel_us = cpu_us(cols["tp2"], cols["cores2"])
    for kind in SERVICE_KINDS:
        rates, cores = services[kind, True]
        alone, alone_cores = services[kind, False]
        node_us, links_us = cpu_us(rates, cores), cpu_us(alone, alone_cores)
        print(f"{'mixnode service, ' + kind:44} {statistics.median(rates):9.0f} /s "
              f"{'vs process_many, 2 threads':>26} {harness.median_ratio(rates, cols['tp2']):6.3f}×"
              f"   cores used {statistics.median(cores):.2f}")
        print(f"{'  links alone (no mixnode), ' + kind:44} {statistics.median(alone):9.0f} /s "
              f"{'':26} {'':7}   cores used {statistics.median(alone_cores):.2f}")
        print(f"{'  CPU/packet: service, links, process_many':44} {node_us:6.1f} µs  {links_us:.1f} µs  "
              f"{kernel_us:.1f} µs   asyncio layer ≈ {node_us - links_us - kernel_us:.1f} µs")
    for name, pc in peer_cols.items():
        hop = statistics.median(pc["hop"])
        create = statistics.median(pc["create"])
        print(f"{name + ' per hop':44} {us(hop)} {'betanet is':>26} {hop / med['hop']:6.1f}× faster")
        print(f"{name + ' 5-hop creation':44} {us(create)} {'betanet is':>26} "
              f"{create / med['create']:6.1f}× faster")
    if any(peer_cols):
        print("note: sphinxmix's X25519 group blinds with a 16-byte factor that PyNaCl passes to "
              "crypto_scalarmult unchecked (it reads 32 bytes); hops after the first fail its MAC "
              "check, so its per-hop time is measured at hop 1 (the same work).")
    print(f"rounds: {rounds}; medians; x25519 samples per round {n_x}, hops {n_hop}, creations "
          f"{n_create}, throughput packets {len(s.packets)}, service packets {n_service} "
          f"(window {window}, 2-hop route: node, sink)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
