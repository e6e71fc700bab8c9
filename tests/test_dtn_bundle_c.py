"""The bundle C API from a plain C host (no Python in the loop): a program built here against
the installed libbetanet encodes a bundle, parses the committed vectors and prints what it
sees; the output must match the vectors and the Python encoding of the same fields."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import betanet
from betanet.dtn import Bundle, CanonicalBlock, CRCType
from betanet.dtn.bundle import hop_count_data

VECTORS = json.loads((Path(__file__).parent / "vectors" / "bundle.json").read_text())["vectors"]

HOST = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "betanet.h"

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

int main(int argc, char **argv) {
    static const uint8_t payload[] = "from a C host";
    static const uint8_t hop[] = {0x82, 0x10, 0x00};
    static const uint8_t ssp[] = "//c-host/app";
    betanet_bundle_primary_spec_t p;
    betanet_bundle_block_spec_t b[2];
    uint8_t out[256];
    size_t len = 0;
    memset(&p, 0, sizeof p);
    memset(b, 0, sizeof b);
    p.crc_type = BETANET_BUNDLE_CRC_16;
    p.destination.scheme = BETANET_BUNDLE_EID_IPN; p.destination.node = 1; p.destination.service = 2;
    p.source.scheme = BETANET_BUNDLE_EID_DTN; p.source.ssp = ssp; p.source.ssp_len = sizeof ssp - 1;
    p.report_to = p.source;
    p.creation_ms = 757382400000ull; p.sequence = 9; p.lifetime_ms = 3600000;
    b[0].type = BETANET_BUNDLE_BLOCK_HOP_COUNT; b[0].number = 2; b[0].data = hop; b[0].data_len = sizeof hop;
    b[1].type = BETANET_BUNDLE_BLOCK_PAYLOAD; b[1].number = 1; b[1].data = payload; b[1].data_len = sizeof payload - 1;
    b[1].crc_type = BETANET_BUNDLE_CRC_32C;
    if (betanet_bundle_encoded_bytes(&p, b, 2) > sizeof out) return 2;
    if (betanet_bundle_encode(&p, b, 2, out, sizeof out, &len) != 0) return 3;
    printf("encoded ");
    for (size_t i = 0; i < len; i++) printf("%02x", out[i]);
    printf("\n");
    for (int a = 1; a < argc; a++) {
        uint8_t *buf = malloc(strlen(argv[a]) / 2 + 1);
        betanet_bundle_block_t blocks[8];
        betanet_bundle_view_t v;
        size_t n = unhex(argv[a], buf);
        int rc = betanet_bundle_parse(buf, n, NULL, blocks, 8, &v);
        if (rc != 0) { printf("error %d %s\n", rc, betanet_bundle_error_string(v.error)); free(buf); continue; }
        const betanet_bundle_block_t *pl = &blocks[v.payload];
        printf("ok crc=%u ms=%llu seq=%llu life=%llu blocks=%zu payload=", v.primary.crc_type,
               (unsigned long long)v.primary.creation_ms, (unsigned long long)v.primary.sequence,
               (unsigned long long)v.primary.lifetime_ms, v.nblocks);
        for (size_t i = 0; i < pl->data_len; i++) printf("%02x", buf[pl->data_off + i]);
        printf(" hop=%d/%llu/%llu\n", v.has_hop_count, (unsigned long long)v.hop_limit,
               (unsigned long long)v.hop_count);
        free(buf);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("dtn_c")
    (d / "host.c").write_text(HOST)
    lib = Path(betanet.get_library())
    subprocess.run(["cc", "-O1", "-Wall", "-Werror", "-I", betanet.get_include(), str(d / "host.c"), "-o",
                    str(d / "host"), str(lib), f"-Wl,-rpath,{lib.parent}"], check=True)
    return d / "host"


def test_c_host_encodes_like_python(host):
    out = subprocess.run([str(host)], check=True, capture_output=True, text=True).stdout.split()
    py = Bundle.build("ipn:1.2", "dtn://c-host/app", b"from a C host", creation_ms=757382400000, sequence=9,
                      lifetime_ms=3600000, crc_type=CRCType.CRC16, payload_crc=CRCType.CRC32C,
                      extra_blocks=[CanonicalBlock(10, 2, hop_count_data(16, 0))])
    assert out[0] == "encoded" and out[1] == py.to_bytes().hex()


def test_c_host_parses_vectors(host):
    vecs = [v for v in VECTORS if "hex" in v]
    corrupt = bytearray.fromhex(vecs[2]["hex"])
    corrupt[-2] ^= 1                                   # a byte of the payload's CRC-16 field
    lines = subprocess.run([str(host), *(v["hex"] for v in vecs), corrupt.hex(), vecs[0]["hex"][:-2]],
                           check=True, capture_output=True, text=True).stdout.splitlines()[1:]
    for v, line in zip(vecs, lines):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        assert line.startswith("ok") and f["payload"] == v["payload"]
        assert (int(f["crc"]), int(f["ms"]), int(f["seq"]), int(f["life"]), int(f["blocks"])) == \
               (v["crc_type"], v["creation_ms"], v["sequence"], v["lifetime_ms"], len(v["blocks"]))
        if "hop_count" in v:
            assert f["hop"] == f"1/{v['hop_count'][0]}/{v['hop_count'][1]}"
    assert lines[-2] == "error -3 CRC mismatch: corrupted block"
    assert lines[-1] == "error -3 truncated bundle"
