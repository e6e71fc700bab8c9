"""DTN bundle codec benchmark: BPv7 decode and encode of 1 KiB and 64 KiB payload bundles
through the C API (a tight C loop compiled here against the installed libbetanet), through
Python (betanet.dtn.Bundle), next to pyd3tn and a decoder written directly on cbor2. One
run, ratios printed, because the machine is noisy; timers, interleaved rounds and optional
peers from bench/harness.py (a missing peer is named and its ratios are left blank).

Decode means: parse and check the whole bundle (structure, CRCs) and reach the payload.
The batch rows decode BATCH bundles per call with Bundle.parse_many (one C loop, then a
memoryview per payload) and report bundles/s.
Encode means: produce the bundle bytes from its fields (CRC-32C on the primary block).

Targets (issue 10): decode >= 1 000 000 small bundles/s per core through the C API,
>= 50x pyd3tn through Python.

    .venv/bin/python bench/dtn_bench.py [--smoke|--quick] [--seconds S]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

import betanet
from betanet.dtn import Bundle, CRCType

C_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "betanet.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    size_t plen = strtoul(argv[1], NULL, 10);
    double secs = atof(argv[2]);
    int payload_crc = atoi(argv[3]);
    uint8_t *payload = calloc(1, plen), *buf = malloc(plen + 256);
    static const uint8_t ssp[] = "//dst/inbox";
    betanet_bundle_primary_spec_t p; betanet_bundle_block_spec_t b;
    betanet_bundle_block_t blocks[8]; betanet_bundle_view_t v;
    size_t len = 0, sink = 0; unsigned long n; double t0, dt;
    betanet_init();
    memset(&p, 0, sizeof p); memset(&b, 0, sizeof b);
    p.crc_type = BETANET_BUNDLE_CRC_32C;
    p.destination.scheme = BETANET_BUNDLE_EID_DTN; p.destination.ssp = ssp; p.destination.ssp_len = sizeof ssp - 1;
    p.source.scheme = p.report_to.scheme = BETANET_BUNDLE_EID_IPN; p.source.node = p.report_to.node = 2; p.source.service = 1;
    p.creation_ms = 757382400000ull; p.sequence = 1; p.lifetime_ms = 86400000;
    b.type = 1; b.number = 1; b.data = payload; b.data_len = plen; b.crc_type = payload_crc;
    for (int pass = 0; pass < 2; pass++) {
        n = 0; t0 = now();
        do {
            for (int k = 0; k < 256; k++, n++) {
                if (pass == 0) { if (betanet_bundle_encode(&p, &b, 1, buf, plen + 256, &len)) return 1; sink += len; }
                else { if (betanet_bundle_parse(buf, len, NULL, blocks, 8, &v)) return 1; sink += blocks[v.payload].data_len; }
            }
            dt = now() - t0;
        } while (dt < secs);
        printf("%s %.1f\n", pass == 0 ? "encode" : "decode", n / dt);
    }
    return sink == 0;
}
"""


def rates(ops: dict, seconds: float, rounds: int) -> dict[str, float]:
    """Best rate of each op over interleaved rounds (all ops see the same conditions)."""
    for fn in ops.values():
        fn()
    per_round = harness.interleaved(ops, rounds, lambda fn: harness.window_rate(fn, seconds / rounds, 3))
    return {name: max(values) for name, values in per_round.items()}


def c_rates(cc: str, plen: int, seconds: float, tmp: Path, payload_crc: int = 0) -> dict[str, float]:
    exe = tmp / "dtn_c_loop"
    if not exe.exists():
        src = tmp / "dtn_c_loop.c"
        src.write_text(C_LOOP)
        lib = Path(betanet.get_library())
        subprocess.run([cc, "-O2", "-I", betanet.get_include(), str(src), "-o", str(exe), str(lib),
                        f"-Wl,-rpath,{lib.parent}"], check=True)
    out = subprocess.run([str(exe), str(plen), str(seconds), str(payload_crc)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines()}


def cbor2_decode(cbor2, data: bytes) -> bytes:
    """A direct decoder: cbor2 for the structure, the fields a router needs, the payload."""
    items = cbor2.loads(data)
    prim = items[0]
    if prim[0] != 7:
        raise ValueError("version")
    _dst, _src, _ts = prim[3], prim[4], prim[6]
    return items[-1][4]


def _fields(b: Bundle) -> tuple:
    return b.primary.destination, b.payload


BATCH = 1024


def _batch_fields(batch) -> list:
    return [(batch.destination(i), batch.payload(i)) for i in range(len(batch))]


def _pyd3tn():
    import pyd3tn.bundle7 as p7
    return p7


def _cbor2():
    import cbor2
    return cbor2


def main() -> int:
    ap = harness.parser(__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="time per operation (all rounds)")
    args = ap.parse_args()
    harness.header("DTN bundle codec (bench/dtn_bench.py)", args.smoke)
    seconds, rounds = (0.05, 1) if args.smoke else (args.seconds, 3)
    peers = harness.Peers()
    p7 = peers.load("pyd3tn", _pyd3tn)
    cbor2 = peers.load("cbor2", _cbor2)
    cc = peers.load("C API loop (needs a C compiler)", harness.c_compiler)
    peers.report()
    print(f"{'op':<44}{'bundles/s':>14}{'MB/s':>10}{'ratio':>10}")
    with tempfile.TemporaryDirectory() as td:
        for plen in (1024, 65536):
            payload = os.urandom(plen)
            ours = Bundle.build("dtn://dst/inbox", "ipn:2.1", payload, creation_ms=757382400000, sequence=1,
                                crc_type=CRCType.CRC32C)
            data = ours.to_bytes()
            batch = [bytes(data) for _ in range(BATCH)]  # distinct buffers, as a CLA delivers
            ops = {
                "py_decode": lambda: Bundle.parse(data).payload,
                "py_batch": lambda: Bundle.parse_many(batch).payloads(),
                "py_batch_fields": lambda: _batch_fields(Bundle.parse_many(batch)),
                "py_decode_fields": lambda: _fields(Bundle.parse(data)),
                "py_encode": lambda: Bundle.build("dtn://dst/inbox", "ipn:2.1", payload, creation_ms=757382400000,
                                                  sequence=1).to_bytes(),
            }
            if p7 is not None:
                def pyd3tn_bundle():
                    return p7.Bundle([p7.PrimaryBlock(
                        destination="dtn://dst/inbox", source="ipn:2.1", report_to="ipn:2.1",
                        creation_time=p7.CreationTimestamp(1_700_000_000, 1), crc_type=p7.CRCType.CRC32),
                        p7.PayloadBlock(payload)])
                tdata = bytes(pyd3tn_bundle())
                assert bytes(Bundle.parse(tdata).payload) == payload and p7.Bundle.parse(data).payload_block.data == payload
                ops["pyd3tn_decode"] = lambda: p7.Bundle.parse(tdata).payload_block.data
                ops["pyd3tn_encode"] = lambda: bytes(pyd3tn_bundle())
            if cbor2 is not None:
                ops["cbor2_decode"] = lambda: cbor2_decode(cbor2, data)
            c = c_rates(cc, plen, seconds / 2, Path(td)) if cc else {}
            c32 = c_rates(cc, plen, seconds / 2, Path(td), payload_crc=2) if cc else {}
            r = rates(ops, seconds, rounds)
            r["py_batch"] *= BATCH
            r["py_batch_fields"] *= BATCH
            size = len(data)
            kib = plen // 1024

            def row(name: str, v: float | None, ref: float | None) -> None:
                if v is None:
                    print(f"{name:<44}{'n/a':>14}")
                    return
                ratio = f"{harness.ratio(v / ref):>10}" if ref else ""
                print(f"{name:<44}{v:>14,.0f}{v * size / 1e6:>10.0f}{ratio}")
            dec, enc = r.get("pyd3tn_decode"), r.get("pyd3tn_encode")
            print(f"-- {kib} KiB payload ({size} bytes per bundle)")
            row("decode, C API (tight loop)", c.get("decode"), dec)
            row("decode, C API, payload CRC-32C checked", c32.get("decode"), dec)
            row("decode, Python Bundle.parse + payload", r["py_decode"], dec)
            row("decode, Python + destination + payload", r["py_decode_fields"], dec)
            row(f"decode, Python parse_many ({BATCH}) + payloads", r["py_batch"], dec)
            row(f"decode, Python parse_many + dest + payload", r["py_batch_fields"], dec)
            row("decode, cbor2 direct", r.get("cbor2_decode"), dec)
            row("decode, pyd3tn (reference 1.0x)", dec, dec)
            row("encode, C API (tight loop)", c.get("encode"), enc)
            row("encode, C API, payload CRC-32C", c32.get("encode"), enc)
            row("encode, Python Bundle.build + to_bytes", r["py_encode"], enc)
            row("encode, pyd3tn (reference 1.0x)", enc, enc)
            if plen == 1024:
                dec_c = c.get("decode")
                print(f"target: C API decode >= 1 000 000 bundles/s per core: "
                      f"{'n/a' if dec_c is None else 'met' if dec_c >= 1e6 else 'MISSED'}; "
                      f"Python decode >= 50x pyd3tn: "
                      f"{'n/a' if dec is None else 'met' if r['py_decode'] / dec >= 50 else 'MISSED'}"
                      f" one call per bundle, "
                      f"{'n/a' if dec is None else 'met' if r['py_batch'] / dec >= 50 else 'MISSED'}"
                      f" batched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
