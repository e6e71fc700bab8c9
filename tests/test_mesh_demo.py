"""The mesh demo section runs, passes its own checks, and prints its figures."""
from __future__ import annotations

import io

from betanet import demo


def test_demo_mesh_section():
    out = io.StringIO()
    assert demo.run(["mesh"], out=out) == 0, out.getvalue()
    text = out.getvalue()
    for phrase in ("broadcast delivered to every reachable phone", "only the recipient read",
                   "the sleeping phone missed nothing", "FEC recovers", "0 failure(s)"):
        assert phrase in text, text
