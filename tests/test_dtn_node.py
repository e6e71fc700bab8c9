"""The asyncio DTN node on real sockets: a chain of three nodes over TCPCLv4, contacts that
come and go, restarts, and kill -9 of a custodian holding bundles (real processes)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from betanet.dtn import BundleFlags, StatusFlags
from betanet.dtn.cla import TcpclLink
from betanet.dtn.node import Node
from betanet.dtn.routing import StaticRoutes
from betanet.dtn.store import StoreLimits

pytestmark = pytest.mark.timeout(120)


async def _chain(tmp_path, **kw):
    a = await Node("ipn:1.0", str(tmp_path / "a.db"), strategy=StaticRoutes([("*", "ipn:2.0")]),
                   synchronous="NORMAL").start()
    b = await Node("ipn:2.0", str(tmp_path / "b.db"),
                   strategy=StaticRoutes([("ipn:1.*", "ipn:1.0"), ("*", "ipn:3.0")]),
                   synchronous="NORMAL", **kw).start()
    c = await Node("ipn:3.0", str(tmp_path / "c.db"), strategy=StaticRoutes([("*", "ipn:2.0")]),
                   synchronous="NORMAL").start()
    ports = {n.agent.name: await n.listen_tcpcl("127.0.0.1", 0) for n in (a, b, c)}
    a.add_link("ipn:2.0", TcpclLink("127.0.0.1", ports["ipn:2.0"]))
    b.add_link("ipn:1.0", TcpclLink("127.0.0.1", ports["ipn:1.0"]))
    b.add_link("ipn:3.0", TcpclLink("127.0.0.1", ports["ipn:3.0"]), up=False)
    c.add_link("ipn:2.0", TcpclLink("127.0.0.1", ports["ipn:2.0"]))
    return a, b, c, ports


async def _until(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_chain_stores_while_the_middle_contact_is_down_then_delivers_and_reports(tmp_path):
    async def main():
        a, b, c, _ = await _chain(tmp_path)
        reg = c.register("ipn:3.1")
        try:
            for i in range(30):
                await a.send("ipn:3.1", b"m%d" % i, custody=True, flags=BundleFlags.REPORT_DELIVERY)
            await _until(lambda: len(b.agent.held) == 30 and not a.agent.held)
            st = await b.status()
            assert st["store"]["by_state"].get("custody") == 30
            b.set_contact("ipn:3.0", True)
            got = [(await reg.get(10)).payload for _ in range(30)]
            await reg.ack()
            assert sorted(got) == sorted(b"m%d" % i for i in range(30))
            await _until(lambda: len(a.reports) == 30)
            assert {r.report.asserted for r in a.reports} == {StatusFlags.DELIVERED}
            await _until(lambda: not b.agent.held)
            # the contact goes away again; new bundles wait
            b.set_contact("ipn:3.0", False)
            await _until(lambda: not b.contacts["ipn:3.0"])
            await a.send("ipn:3.1", b"later")
            await _until(lambda: len(b.agent.held) == 1)
            b.set_contact("ipn:3.0", True)
            assert (await reg.get(10)).payload == b"later"
            rtts = await a.ping("ipn:3.0", count=2)
            assert all(r is not None for r in rtts)
            assert c.agent.counters["duplicate"] == 0
        finally:
            for n in (a, b, c):
                await n.close()
    asyncio.run(main())


def test_delivery_is_exactly_once_across_a_restart_of_the_destination(tmp_path):
    async def main():
        c = await Node("ipn:3.0", str(tmp_path / "c.db"), synchronous="NORMAL").start()
        port = await c.listen_tcpcl("127.0.0.1", 0)
        a = await Node("ipn:1.0", str(tmp_path / "a.db"), synchronous="NORMAL").start()
        a.add_link("ipn:3.0", TcpclLink("127.0.0.1", port))
        for i in range(5):
            await a.send("ipn:3.1", b"r%d" % i)
        # no registration yet: bundles for an unregistered endpoint are refused on arrival
        await _until(lambda: c.agent.counters["no_endpoint"] == 5)
        reg = c.register("ipn:3.1")
        for i in range(5):
            await a.send("ipn:3.1", b"s%d" % i)
        first = [(await reg.get(10)).payload for _ in range(3)]   # the third is taken, not acked
        await c.close()
        c2 = await Node("ipn:3.0", str(tmp_path / "c.db"), synchronous="NORMAL").start()
        reg2 = c2.register("ipn:3.1")
        rest = [(await reg2.get(10)).payload for _ in range(3)]
        await reg2.ack()
        assert first[:2] + rest == [b"s%d" % i for i in range(5)]
        with pytest.raises(asyncio.TimeoutError):
            await reg2.get(0.3)
        await a.close()
        await c2.close()
    asyncio.run(main())


def test_store_at_quota_refuses_with_a_report_and_keeps_what_it_accepted(tmp_path):
    async def main():
        a, b, c, _ = await _chain(tmp_path, store_limits=StoreLimits(max_count=5))
        try:
            for i in range(8):
                await a.send("ipn:3.1", b"q%d" % i, custody=True, flags=BundleFlags.REPORT_DELETION)
            await _until(lambda: len(b.agent.held) == 5)
            await _until(lambda: b.agent.counters["refused"] >= 3)
            await _until(lambda: any(r.report.asserted == StatusFlags.DELETED for r in a.reports))
            assert len(a.agent.held) == 3          # a keeps custody of what b refused
            reg = c.register("ipn:3.1")
            b.set_contact("ipn:3.0", True)
            got = {(await reg.get(20)).payload for _ in range(8)}
            await reg.ack()
            assert got == {b"q%d" % i for i in range(8)}
        finally:
            for n in (a, b, c):
                await n.close()
    asyncio.run(main())


@pytest.mark.hostile
def test_flood_from_one_source_is_bounded_and_others_are_served(tmp_path):
    async def main():
        c = await Node("ipn:3.0", str(tmp_path / "c.db"), synchronous="NORMAL",
                       store_limits=StoreLimits(max_source_count=50)).start()
        port = await c.listen_tcpcl("127.0.0.1", 0)
        reg = c.register("ipn:3.1")
        flood = await Node("ipn:6.0", str(tmp_path / "f.db"), synchronous="NORMAL").start()
        flood.add_link("ipn:3.0", TcpclLink("127.0.0.1", port))
        good = await Node("ipn:7.0", str(tmp_path / "g.db"), synchronous="NORMAL").start()
        good.add_link("ipn:3.0", TcpclLink("127.0.0.1", port))
        try:
            # the flooding app never reads its deliveries: the store's per-source quota holds
            for i in range(300):
                await flood.send("ipn:3.1", b"f" * 200)
            await good.send("ipn:3.1", b"legit")
            await _until(lambda: c.agent.counters["refused"] > 0)
            seen = set()
            end = time.monotonic() + 20
            while b"legit" not in seen and time.monotonic() < end:
                seen.add((await reg.get(20)).payload)
            assert b"legit" in seen
            st = await c.status()
            assert st["store"]["count"] <= 51
        finally:
            for n in (flood, good, c):
                await n.close()
    asyncio.run(main())


CUSTODIAN = textwrap.dedent("""
    import asyncio, sys
    from betanet.dtn.cla import TcpclLink
    from betanet.dtn.node import Node
    from betanet.dtn.routing import StaticRoutes
    async def main():
        db, port_in, port_c, up = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "up"
        b = await Node("ipn:2.0", db, strategy=StaticRoutes([("ipn:1.*", "ipn:1.0"), ("*", "ipn:3.0")])).start()
        await b.listen_tcpcl("127.0.0.1", port_in)
        b.add_link("ipn:3.0", TcpclLink("127.0.0.1", port_c), up=up)
        b.add_link("ipn:1.0", TcpclLink("127.0.0.1", int(sys.argv[5])))
        print("ready", flush=True)
        while True:
            await asyncio.sleep(0.05)
            print("held", len(b.agent.held), flush=True)
    asyncio.run(main())
""")


def _free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _start(script, *args):
    p = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert p.stdout.readline().strip() == "ready"
    return p


def _wait_held(p, n, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stdout.readline()
        if line.startswith("held") and int(line.split()[1]) >= n:
            return
    raise AssertionError(f"custodian never held {n}")


def test_kill_9_of_a_custodian_holding_bundles_loses_nothing_and_delivers_once(tmp_path):
    port_b, n = _free_port(), 40

    async def main():
        c = await Node("ipn:3.0", str(tmp_path / "c.db"), synchronous="NORMAL").start()
        port_c = await c.listen_tcpcl("127.0.0.1", 0)
        reg = c.register("ipn:3.1")
        a = await Node("ipn:1.0", str(tmp_path / "a.db"), strategy=StaticRoutes([("*", "ipn:2.0")]),
                       synchronous="NORMAL").start()
        port_a = await a.listen_tcpcl("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        b = await loop.run_in_executor(None, _start, CUSTODIAN, tmp_path / "b.db", port_b, port_c, "down", port_a)
        try:
            a.add_link("ipn:2.0", TcpclLink("127.0.0.1", port_b))
            for i in range(n):
                await a.send("ipn:3.1", b"k%d" % i, custody=True)
            await loop.run_in_executor(None, _wait_held, b, n)
            # b acknowledged custody of everything: a let go
            await _until(lambda: not a.agent.held)
            b.send_signal(signal.SIGKILL)
            b.wait()
            b2 = await loop.run_in_executor(None, _start, CUSTODIAN, tmp_path / "b.db", port_b, port_c, "up", port_a)
            try:
                got = [(await reg.get(30)).payload for _ in range(n)]
                await reg.ack()
                assert sorted(got) == sorted(b"k%d" % i for i in range(n))
                with pytest.raises(asyncio.TimeoutError):
                    await reg.get(1.0)
            finally:
                b2.kill()
                b2.wait()
        finally:
            if b.poll() is None:
                b.kill()
            await a.close()
            await c.close()
    asyncio.run(main())


def test_mtcp_listener_and_link_carry_bundles_both_ways(tmp_path):
    from betanet.dtn.cla import MtcpLink

    async def main():
        a = await Node("ipn:1.0", str(tmp_path / "a.db"), synchronous="NORMAL").start()
        c = await Node("ipn:3.0", str(tmp_path / "c.db"), synchronous="NORMAL").start()
        pa, pc = await a.listen_mtcp("127.0.0.1", 0), await c.listen_mtcp("127.0.0.1", 0)
        a.add_link("ipn:3.0", MtcpLink("127.0.0.1", pc))
        c.add_link("ipn:1.0", MtcpLink("127.0.0.1", pa))
        reg_c, reg_a = c.register("ipn:3.1"), a.register("ipn:1.1")
        try:
            await a.send("ipn:3.1", b"over mtcp")
            assert (await reg_c.get(10)).payload == b"over mtcp"
            await c.send("ipn:1.1", b"and back")
            assert (await reg_a.get(10)).payload == b"and back"
            assert (await c.ping("ipn:1.0"))[0] is not None
        finally:
            await a.close()
            await c.close()
    asyncio.run(main())


def test_epidemic_spreads_over_real_sockets_when_contacts_appear(tmp_path):
    from betanet.dtn.routing import Epidemic

    async def main():
        nodes = [await Node(f"ipn:{i}.0", str(tmp_path / f"{i}.db"), strategy=Epidemic(),
                            synchronous="NORMAL").start() for i in (1, 2, 3)]
        ports = [await n.listen_tcpcl("127.0.0.1", 0) for n in nodes]
        a, b, c = nodes
        reg = c.register("ipn:3.1")
        try:
            await a.send("ipn:3.1", b"epidemic")
            a.connect_tcpcl("ipn:2.0", "127.0.0.1", ports[1])       # a meets b
            await _until(lambda: b.agent.held)
            await a.remove_link("ipn:2.0")
            b.connect_tcpcl("ipn:3.0", "127.0.0.1", ports[2])       # later b meets c
            assert (await reg.get(10)).payload == b"epidemic"
            assert a.agent.held                                    # a still carries its copy
            await _until(lambda: not b.agent.held)                 # b handed it to its destination
        finally:
            for n in nodes:
                await n.close()
    asyncio.run(main())
