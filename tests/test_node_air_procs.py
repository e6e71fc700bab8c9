"""Standalone node processes on the BLE mesh through the cross-process air server: A and D
have no internet link and are out of each other's range; B and C relay."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from node_procs import Proc, make, peer_id, wait_peer

pytestmark = pytest.mark.timeout(300)


def test_processes_talk_over_the_air_through_two_relays(tmp_path):
    base = str(tmp_path)
    sock = os.path.join(base, "air.sock")
    air = subprocess.Popen([sys.executable, "-m", "betanet.mesh.air", "--socket", sock, "--range", "30"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert "air listening" in air.stdout.readline()
    names = "abcd"
    recs = [os.path.join(base, n, "peer.record") for n in names]
    cfgs = [make(base, n, [r for r in recs if f"/{n}/" not in r],
                 {"transport": {"htx_listen": "", "mesh": True, "mesh_air": sock, "mesh_x": 25.0 * i},
                  "application": {"name": n}})
            for i, n in enumerate(names)]
    procs = []
    try:
        procs = [Proc(c) for c in cfgs]
        a, d = procs[0], procs[-1]
        wait_peer(a, peer_id(cfgs[-1]))
        wait_peer(d, peer_id(cfgs[0]))
        end = time.monotonic() + 30
        while time.monotonic() < end:
            st = a.control({"cmd": "status"})
            if peer_id(cfgs[-1]) in st["links"][0]["reaches"]:
                break
            time.sleep(0.2)
        r = a.send(peer_id(cfgs[-1]), b"over the air, two relays", wait=True, timeout=60)
        assert r["acked"] and r["transports"] == ["ble"]
        d.wait_event("received", 20)
        assert bytes.fromhex(d.received()[0]["data"]) == b"over the air, two relays"
        assert len(d.received()) == 1
    finally:
        for p in procs:
            p.stop()
        air.terminate()
        air.wait(10)
