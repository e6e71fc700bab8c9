"""A C host is a SecAgg participant without Python: it builds its masked vector through
include/betanet/secagg.h alone, and the result equals the Python participant's path."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import betanet
from conftest import run
from betanet._native import secagg as sa

C_HOST = r"""
#include <stdio.h>
#include <stdlib.h>
#include "betanet.h"

/* argv: dim. Input x[i] = sin-like ramp; secrets fixed for the test. Prints the words. */
int main(int argc, char **argv) {
    if (argc != 3) return 1;
    size_t n = (size_t)strtoul(argv[1], NULL, 10);
    uint8_t sk[32], peer_pk[32], self_seed[32], round_seed[32], pair[32];
    for (int i = 0; i < 32; i++) { sk[i] = (uint8_t)(i + 1); self_seed[i] = (uint8_t)(3 * i);
                                   round_seed[i] = (uint8_t)(200 - i); }
    /* the peer's public key is passed in hex on argv[2] */
    for (int i = 0; i < 32; i++) { unsigned v; sscanf(argv[2] + 2 * i, "%2x", &v); peer_pk[i] = (uint8_t)v; }
    float *x = malloc(n * sizeof *x);
    uint32_t *y = malloc(n * sizeof *y);
    if (!x || !y) return 2;
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(i % 97) / 40.0 - 1.2);
    if (betanet_secagg_quantize_f32(y, x, n, 1.0, 1u << 22, round_seed, 32, 5, 0) != 0) return 3;
    if (betanet_secagg_mask_add(y, n, self_seed, 32, BETANET_SECAGG_PURPOSE_SELF, 5, 0, 1) != 0) return 4;
    if (betanet_secagg_pair_seed(pair, sizeof pair, sk, 32, peer_pk, 32) != 0) return 5;
    /* mask in two pieces, as a phone short of memory would */
    if (betanet_secagg_mask_add(y, n / 2, pair, 32, BETANET_SECAGG_PURPOSE_PAIRWISE, 5, 0, -1) != 0) return 6;
    if (betanet_secagg_mask_add(y + n / 2, n - n / 2, pair, 32, BETANET_SECAGG_PURPOSE_PAIRWISE, 5,
                                n / 2, -1) != 0) return 7;
    for (size_t i = 0; i < n; i++) printf("%u\n", (unsigned)y[i]);
    free(x); free(y);
    return 0;
}
"""


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_c_participant_matches_python(tmp_path):
    src, exe = tmp_path / "host.c", tmp_path / "host"
    src.write_text(C_HOST)
    lib = betanet.get_library()
    run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", str(src), "-o", str(exe),
         "-I", betanet.get_include(), lib, "-lsodium", f"-Wl,-rpath,{os.path.dirname(lib)}"])
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    peer_sk = bytes(range(50, 82))
    peer_pk = X25519PrivateKey.from_private_bytes(peer_sk).public_key().public_bytes_raw()
    n = 10_001
    out = run([str(exe), str(n), peer_pk.hex()])
    c_words = np.array(out.stdout.split(), dtype=np.uint64).astype(np.uint32)

    x = np.array([(i % 97) / 40.0 - 1.2 for i in range(n)], dtype=np.float32)
    y = sa.quantize(x, 1.0, 1 << 22, bytes(200 - i for i in range(32)), 5)
    sa.mask_add(y, bytes(3 * i for i in range(32)), sa.PURPOSE_SELF, 5)
    # the peer derives the same pairwise seed from its side
    pair = sa.pair_seed(peer_sk, X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
                        .public_key().public_bytes_raw())
    sa.mask_add(y, pair, sa.PURPOSE_PAIRWISE, 5, sign=-1)
    assert np.array_equal(c_words, y)
