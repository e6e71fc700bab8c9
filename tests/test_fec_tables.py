"""The GF(2^8) tables compiled into the FEC core are exactly what tools/gen_gf_tables.py
computes, and that computation is GF(2^8) arithmetic mod 0x11d."""
from __future__ import annotations

import importlib.util

from conftest import ROOT

HEADER = ROOT / "src" / "core" / "bnt_gf_tables.h"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_gf_tables", ROOT / "tools" / "gen_gf_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_header_is_the_generator_output():
    assert HEADER.read_text() == _generator().render(), (
        "src/core/bnt_gf_tables.h is stale: python3 tools/gen_gf_tables.py > src/core/bnt_gf_tables.h")


def _mul(a: int, b: int) -> int:
    # schoolbook polynomial product, then reduction: a second, independent definition
    p = 0
    for i in range(8):
        if (b >> i) & 1:
            p ^= a << i
    for bit in range(14, 7, -1):
        if (p >> bit) & 1:
            p ^= 0x11D << (bit - 8)
    return p


def test_tables_are_gf256_arithmetic():
    t = _generator().tables()
    exp, log = t["exp"], t["log"]
    assert exp[0] == 1 and len(set(exp[:255])) == 255           # 2 generates the group
    for i in range(511):
        assert exp[i + 1] == _mul(exp[i], 2)
    for a in range(1, 256):
        assert exp[log[a]] == a
    for a in range(1, 256):
        for b in range(1, 256, 7):
            assert exp[log[a] + log[b]] == _mul(a, b)
    for c in range(256):
        m = t["affine"][c]
        for y in (1, 2, 0x53, 0x80, 0xFF):
            # vgf2p8affineqb: bit i of the result = parity(byte 7-i of the matrix & y)
            r = sum((bin((m >> (8 * (7 - i))) & 0xFF & y).count("1") & 1) << i for i in range(8))
            assert r == _mul(c, y)
