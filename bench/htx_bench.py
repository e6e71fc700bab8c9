"""HTX benchmark: codec vs raw libsodium AEAD, and loopback throughput vs named peers.

One run, side by side, with ratios:
  1. seal+open of the core codec (betanet_htx_frame_seal/open) against libsodium's
     crypto_aead_chacha20poly1305_ietf_encrypt/decrypt on the same buffers (1 KiB, 16 KiB),
     both called through cffi ABI mode (same call path), and the same comparison in a
     small C program (pure C-level ratio; needs a C compiler).
  2. single-stream loopback throughput: HTX over plain TCP / TCP+TLS 1.3 / QUIC next to
     plain asyncio TCP, asyncio with TLS 1.3, and raw aioquic streams.
Targets: codec >= 0.9x raw AEAD; HTX/plain >= 0.8x asyncio+TLS; HTX/QUIC >= 0.8x aioquic.

usage: python bench/htx_bench.py [--smoke]
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time

import cffi

import betanet
import betanet.htx as htx
import harness
from betanet.htx import tls

CDEF = """
int betanet_init(void);
int betanet_htx_frame_seal(const uint8_t *key, const uint8_t *ns, uint64_t counter, int type,
    uint64_t stream_id, const uint8_t *pt, size_t pt_len, uint8_t *out, size_t cap, size_t *out_len);
int betanet_htx_frame_open(const uint8_t *key, const uint8_t *ns, uint64_t counter,
    const uint8_t *in, size_t len, uint32_t max_frame, int *type, uint64_t *stream_id,
    uint8_t *out, size_t cap, size_t *pt_len, size_t *consumed);
int crypto_aead_chacha20poly1305_ietf_encrypt(uint8_t *c, unsigned long long *clen,
    const uint8_t *m, unsigned long long mlen, const uint8_t *ad,
    unsigned long long adlen, const uint8_t *nsec, const uint8_t *npub,
    const uint8_t *k);
int crypto_aead_chacha20poly1305_ietf_decrypt(uint8_t *m, unsigned long long *mlen,
    uint8_t *nsec, const uint8_t *c, unsigned long long clen,
    const uint8_t *ad, unsigned long long adlen, const uint8_t *npub,
    const uint8_t *k);
"""


def best_interleaved(a, b, rounds: int = 7) -> tuple[float, float]:
    """Best time of a() and of b() over rounds that alternate them (noise hits both alike)."""
    times = harness.interleaved({"a": a, "b": b}, rounds, harness.timed)
    return min(times["a"]), min(times["b"])


def codec_cffi(size: int, reps: int) -> tuple[float, float]:
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    bn = ffi.dlopen(betanet.get_library())
    so = ffi.dlopen(harness.libsodium_path())
    bn.betanet_init()
    key, ns = ffi.new("uint8_t[32]", os.urandom(32)), ffi.new("uint8_t[12]", os.urandom(12))
    pt = ffi.new("uint8_t[]", os.urandom(size))
    frame = ffi.new("uint8_t[]", size + 28)
    back = ffi.new("uint8_t[]", size)
    n, t, sid, plen, used = (ffi.new("size_t *"), ffi.new("int *"), ffi.new("uint64_t *"),
                             ffi.new("size_t *"), ffi.new("size_t *"))
    cl = ffi.new("unsigned long long *")
    ad = ffi.new("uint8_t[5]", b"\x00\x40\x00\x00\x01")
    seal, opn = bn.betanet_htx_frame_seal, bn.betanet_htx_frame_open
    enc, dec = so.crypto_aead_chacha20poly1305_ietf_encrypt, so.crypto_aead_chacha20poly1305_ietf_decrypt
    nonce = ns

    def htx_loop():
        for i in range(reps):
            seal(key, ns, i, 0, 1, pt, size, frame, size + 28, n)
            if opn(key, ns, i, frame, n[0], 16384, t, sid, back, size, plen, used) != 0:
                raise SystemExit("htx open failed")

    def raw_loop():
        for i in range(reps):
            enc(frame + 5, cl, pt, size, ad, 5, ffi.NULL, nonce, key)
            if dec(back, cl, ffi.NULL, frame + 5, cl[0], ad, 5, nonce, key) != 0:
                raise SystemExit("raw open failed")

    h, r = best_interleaved(htx_loop, raw_loop)
    return size * reps / h / 1e6, size * reps / r / 1e6


C_BENCH = r"""
#include <betanet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    size_t size = atoi(argv[1]); int reps = atoi(argv[2]);
    unsigned char key[32], ns[12], *pt = malloc(size), *fr = malloc(size + 28), *back = malloc(size);
    size_t n, pl, used; int t; uint64_t sid; unsigned long long cl; unsigned char ad[5] = {0, 0x40, 0, 0, 1};
    double bh = 1e9, br = 1e9;
    betanet_init(); randombytes_buf(key, 32); randombytes_buf(ns, 12); randombytes_buf(pt, size);
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) {
            betanet_htx_frame_seal(key, ns, i, 0, 1, pt, size, fr, size + 28, &n);
            if (betanet_htx_frame_open(key, ns, i, fr, n, 16384, &t, &sid, back, size, &pl, &used)) return 1;
        }
        double t1 = now();
        for (int i = 0; i < reps; i++) {
            crypto_aead_chacha20poly1305_ietf_encrypt(fr + 5, &cl, pt, size, ad, 5, NULL, ns, key);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(back, &cl, NULL, fr + 5, cl, ad, 5, ns, key)) return 1;
        }
        double t2 = now();
        if (t1 - t0 < bh) bh = t1 - t0;
        if (t2 - t1 < br) br = t2 - t1;
    }
    printf("%f %f\n", size * (double)reps / bh / 1e6, size * (double)reps / br / 1e6);
    return 0;
}
"""


def codec_c(size: int, reps: int) -> tuple[float, float] | None:
    cc = harness.c_compiler()
    if not cc:
        print("C codec comparison skipped: no C compiler")
        return None
    d = tempfile.mkdtemp()
    src, exe = os.path.join(d, "b.c"), os.path.join(d, "b")
    with open(src, "w") as f:
        f.write(C_BENCH)
    lib = betanet.get_library()
    r = subprocess.run([cc, "-O2", src, "-o", exe, "-I", betanet.get_include(), lib, "-lsodium",
                        f"-Wl,-rpath,{os.path.dirname(lib)}"], capture_output=True, text=True)
    if r.returncode:
        print(f"C codec comparison skipped: the helper did not build: {r.stderr[-500:]}")
        return None
    out = subprocess.run([exe, str(size), str(reps)], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


# ---- throughput -------------------------------------------------------------------------

async def htx_throughput(transport: str, size: int, certs) -> float:
    done = asyncio.get_running_loop().create_future()

    async def sink(conn):
        st = await conn.accept_stream()
        n = 0
        while data := await st.read(1 << 20):
            n += len(data)
        done.set_result(time.perf_counter())
        await st.close()

    priv = htx.generate_private_key()
    server = await htx.serve(sink, "127.0.0.1", 0, priv, transport=transport, certfile=certs[0], keyfile=certs[1])
    conn = await htx.connect("127.0.0.1", server.port, htx.public_key(priv), transport=transport, cafile=certs[0])
    st = await conn.open_stream()
    block = os.urandom(1 << 20)
    t = time.perf_counter()
    for _ in range(size >> 20):
        st.write(block)
        await st.drain()
    st.write_eof()
    end = await done
    await conn.close()
    server.close()
    await server.wait_closed()
    return size / (end - t) / 1e6


async def asyncio_throughput(use_tls: bool, size: int, certs) -> float:
    done = asyncio.get_running_loop().create_future()

    async def sink(r, w):
        n = 0
        while data := await r.read(1 << 20):
            n += len(data)
        done.set_result(time.perf_counter())
        w.close()

    sctx = tls.server_context(*certs) if use_tls else None
    cctx = tls.client_context(certs[0]) if use_tls else None
    srv = await asyncio.start_server(sink, "127.0.0.1", 0, ssl=sctx)
    port = srv.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="localhost" if use_tls else None)
    block = os.urandom(1 << 20)
    t = time.perf_counter()
    for _ in range(size >> 20):
        w.write(block)
        await w.drain()
    w.write_eof() if not use_tls else w.close()
    end = await done
    w.close()
    srv.close()
    return size / (end - t) / 1e6


async def aioquic_throughput(size: int, certs) -> float:
    from aioquic.asyncio import QuicConnectionProtocol, connect, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    done = asyncio.get_running_loop().create_future()

    class Sink(QuicConnectionProtocol):
        n = 0

        def quic_event_received(self, ev):
            if isinstance(ev, StreamDataReceived):
                Sink.n += len(ev.data)
                if ev.end_stream and not done.done():
                    done.set_result(time.perf_counter())

    sc = QuicConfiguration(is_client=False, alpn_protocols=["bench"])
    sc.load_cert_chain(str(certs[0]), str(certs[1]))
    server = await serve("127.0.0.1", 0, configuration=sc, create_protocol=Sink)
    port = server._transport.get_extra_info("sockname")[1]
    cc = QuicConfiguration(is_client=True, alpn_protocols=["bench"], server_name="localhost")
    cc.load_verify_locations(str(certs[0]))
    async with connect("127.0.0.1", port, configuration=cc) as client:
        sid = client._quic.get_next_available_stream_id()
        block = os.urandom(1 << 20)
        t = time.perf_counter()
        for i in range(size >> 20):
            client._quic.send_stream_data(sid, block, end_stream=(i == (size >> 20) - 1))
            client.transmit()
            await asyncio.sleep(0)
        end = await done
    server.close()
    return size / (end - t) / 1e6


def main() -> int:
    args = harness.parser(__doc__.splitlines()[0]).parse_args()
    work = (1 if args.smoke else 128) << 20        # plaintext bytes per codec measurement
    tcp_size = (4 if args.smoke else 256) << 20
    quic_size = (1 if args.smoke else 16) << 20
    harness.header("HTX (bench/htx_bench.py)", args.smoke)
    ok = True
    print("== codec: seal+open, MB/s of plaintext ==")
    print(f"{'frame':>8} {'path':>6} {'htx codec':>10} {'raw AEAD':>10} {'ratio':>6}  target >= 0.90")
    for size in (1024, 16384):
        reps = work // size
        h, r = codec_cffi(size, reps)
        print(f"{size:>8} {'cffi':>6} {h:>10.0f} {r:>10.0f} {h / r:>6.2f}")
        c = codec_c(size, reps)
        if c:
            print(f"{size:>8} {'C':>6} {c[0]:>10.0f} {c[1]:>10.0f} {c[0] / c[1]:>6.2f}")
    certs = tls.write_self_signed(tempfile.mkdtemp())
    print(f"\n== loopback, one stream, client and server in one process (MB/s, best of 5 interleaved rounds) ==")
    peers = {
        "asyncio tcp": lambda: asyncio_throughput(False, tcp_size, certs),
        "asyncio tls1.3": lambda: asyncio_throughput(True, tcp_size, certs),
        "htx plain tcp": lambda: htx_throughput("plain", tcp_size, certs),
        "htx tcp+tls": lambda: htx_throughput("tcp", tcp_size, certs),
        "raw aioquic": lambda: aioquic_throughput(quic_size, certs),
        "htx quic": lambda: htx_throughput("quic", quic_size, certs),
    }
    rounds = harness.interleaved(peers, 1 if args.smoke else 5, lambda run: asyncio.run(run()))
    res = {name: max(values) for name, values in rounds.items()}    # best of each

    def ratio(a: str, b: str) -> float:
        return harness.median_ratio(rounds[a], rounds[b])
    for k, v in res.items():
        print(f"{k:>16} {v:>8.0f}")
    r1 = ratio("htx plain tcp", "asyncio tls1.3")
    r2 = ratio("htx tcp+tls", "asyncio tls1.3")
    r3 = ratio("htx quic", "raw aioquic")
    print("\nratios: median over rounds of the within-round ratio")
    print(f"\nhtx plain / asyncio tls1.3 = {r1:.2f}  (target >= 0.80)")
    print(f"htx tcp+tls / asyncio tls1.3 = {r2:.2f}")
    print(f"htx quic / raw aioquic = {r3:.2f}  (target >= 0.80)")
    print(f"sizes: tcp {tcp_size >> 20} MiB, quic {quic_size >> 20} MiB, codec {work >> 20} MiB per measurement")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
