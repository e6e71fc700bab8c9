"""Demo section: delay-tolerant networking — bundles wait for a contact, custody moves hop by
hop, the relay restarts and nothing is lost."""
from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

TITLE = "DTN: store-and-forward over a contact that comes and goes (BPv7, TCPCLv4, custody)"

N = 5


async def _until(pred, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def run(report) -> None:
    from betanet.dtn import BundleFlags
    from betanet.dtn.node import Node
    from betanet.dtn.routing import StaticRoutes

    with tempfile.TemporaryDirectory(prefix="betanet-demo-dtn-") as tmp:
        d = Path(tmp)

        def relay() -> Node:
            return Node("ipn:2.0", str(d / "relay.db"), synchronous="NORMAL",
                        strategy=StaticRoutes([("ipn:1.*", "ipn:1.0"), ("*", "ipn:3.0")]))
        village = await Node("ipn:1.0", str(d / "village.db"), synchronous="NORMAL",
                             strategy=StaticRoutes([("*", "ipn:2.0")])).start()
        bus = await relay().start()
        city = await Node("ipn:3.0", str(d / "city.db"), synchronous="NORMAL",
                          strategy=StaticRoutes([("*", "ipn:2.0")])).start()
        port_v, port_b, port_c = [await n.listen_tcpcl("127.0.0.1", 0) for n in (village, bus, city)]
        village.connect_tcpcl("ipn:2.0", "127.0.0.1", port_b)
        bus.connect_tcpcl("ipn:1.0", "127.0.0.1", port_v)
        city.connect_tcpcl("ipn:2.0", "127.0.0.1", port_b, up=False)
        inbox = city.register("ipn:3.1")
        try:
            report.line("village ipn:1.0 --TCPCLv4--> bus ipn:2.0 --(contact window)--> city ipn:3.0")
            for i in range(N):
                await village.send("ipn:3.1", f"letter {i}".encode(), custody=True,
                                   flags=BundleFlags.REPORT_DELIVERY)
            await _until(lambda: len(bus.agent.held) == N and not village.agent.held)
            report.result(len(bus.agent.held) == N and not village.agent.held,
                          f"{N} bundles sent with custody; the bus accepted custody of {len(bus.agent.held)}, "
                          f"the village let go ({village.agent.counters['custody_released']} custody signals)")
            st = await bus.status()
            report.line(f"bus store while the city is out of reach: {st['store']['by_state']}")

            # the bus (its process) stops and starts again: custody comes back from its store
            await bus.close()
            bus = await relay().start()
            port_b2 = await bus.listen_tcpcl("127.0.0.1", port_b)
            report.result(len(bus.agent.held) == N and port_b2 == port_b,
                          f"bus restarted: {len(bus.agent.held)} bundles in custody taken back from its store")
            bus.connect_tcpcl("ipn:1.0", "127.0.0.1", port_v)
            bus.connect_tcpcl("ipn:3.0", "127.0.0.1", port_c, up=False)

            t0 = time.perf_counter()
            bus.set_contact("ipn:3.0", True)
            city.set_contact("ipn:2.0", True)
            report.line("contact window bus -> city opens")
            got = []
            for _ in range(N):
                got.append((await inbox.get(10)).payload.decode())
            await inbox.ack()
            dt = time.perf_counter() - t0
            report.result(sorted(got) == [f"letter {i}" for i in range(N)],
                          f"city received {len(got)} letters exactly once in {dt * 1000:.0f} ms: {', '.join(got)}")
            ok = await _until(lambda: len(village.reports) >= N and not bus.agent.held)
            bus.set_contact("ipn:3.0", False)
            city.set_contact("ipn:2.0", False)
            report.result(ok, f"{len(village.reports)} delivery status reports came back to the village; "
                              f"the bus holds {len(bus.agent.held)} bundles")
            for r in list(village.reports)[:2]:
                report.line(f"  report from {r.sender}: {r.report.asserted.name} "
                            f"(bundle {r.report.source} t={r.report.creation_ms}.{r.report.sequence})")
            rtt = (await village.ping("ipn:2.0", count=1))[0]
            report.result(rtt is not None, f"dtn ping village -> bus echo endpoint ipn:2.7: "
                                           f"{'%.1f ms' % (rtt * 1000) if rtt is not None else 'timeout'}")
        finally:
            for n in (village, bus, city):
                await n.close()
