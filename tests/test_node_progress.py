"""Progress of long transfers: ``DeliveryHandle`` counts the chunks of the latest attempt
taken by the next hop and the end-to-end acknowledgment; ``betanet node send --wait`` shows it
on stderr (one line rewritten in place on a terminal, plain lines otherwise), stdout keeps
the JSON reply."""
from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys

import pytest

from node_helpers import started_pair
from node_procs import Proc, make, peer_id, wait_peer

pytestmark = pytest.mark.timeout(300)


def test_handle_reports_chunks_sent_then_acked(tmp_path):
    async def go():
        a, d = await started_pair(tmp_path, transport={"chunk_size": 1024})
        h = await a.send(d.me, os.urandom(20_000))
        seen = [p async for p in h.progress_updates()]
        assert seen[-1]["acked"] and seen[-1]["chunks_sent"] == seen[-1]["chunks_total"] >= 20
        sent = [p["chunks_sent"] for p in seen]
        assert sent == sorted(sent) and len(set(sent)) > 2     # it moved in steps, never back
        assert not any(p["acked"] for p in seen[:-1])
        assert h.progress == seen[-1]
        await a.stop()
        await d.stop()
    asyncio.run(asyncio.wait_for(go(), 60))


def _pair(tmp_path):
    base = str(tmp_path)
    rec = lambda n: os.path.join(base, n, "peer.record")        # noqa: E731
    extra = {"transport": {"chunk_size": 1024}}
    d_cfg, a_cfg = make(base, "d", [rec("a")], extra), make(base, "a", [rec("d")], extra)
    d, a = Proc(d_cfg), Proc(a_cfg)
    wait_peer(a, peer_id(d_cfg))
    wait_peer(d, peer_id(a_cfg))
    data = tmp_path / "big.bin"
    data.write_bytes(os.urandom(30_000))
    argv = [sys.executable, "-m", "betanet.cli", "node", "send", "--config", a_cfg, peer_id(d_cfg),
            f"@{data}", "--wait"]
    return a, d, argv


def test_cli_send_plain_progress_lines_when_not_a_terminal(tmp_path):
    a, d, argv = _pair(tmp_path)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        reply = json.loads(r.stdout)
        assert r.returncode == 0 and reply["acked"]
        lines = r.stderr.strip().splitlines()
        assert lines[-1].endswith("chunks acknowledged (30000 bytes)"), r.stderr
        total = reply["progress"]["chunks_total"]
        assert total >= 30 and lines[-1].startswith(f"{total}/{total} ")
        assert "\r" not in r.stderr and len(lines) >= 2
        q = subprocess.run(argv + ["--quiet"], capture_output=True, text=True, timeout=120)
        assert q.returncode == 0 and q.stderr == ""
    finally:
        a.stop()
        d.stop()


def test_cli_send_one_rewritten_line_on_a_terminal(tmp_path):
    a, d, argv = _pair(tmp_path)
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        out, _ = p.communicate(timeout=120)
        err = b""
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        assert p.returncode == 0 and json.loads(out)["acked"]
        text = err.decode()
        assert "\r\x1b[K" in text and text.rstrip().endswith("chunks acknowledged (30000 bytes)")
        assert text.count("\n") == 1 or text.count("\r\n") == 1      # one line, ended once
    finally:
        os.close(master)
        a.stop()
        d.stop()
