"""Demo: a Sphinx mixnet on loopback — VRF-selected 3-hop routes, Poisson delays, Loopix
cover traffic, a reply through a SURB, and the counters every node keeps."""
from __future__ import annotations

import asyncio
import secrets
import time

TITLE = "Mixnet: Sphinx packets through 4 local mixnodes, cover traffic, a SURB reply"

MEAN_DELAY_MS = 30.0
COVER_RATE = 8.0          # loop and drop messages per second, per client and per mixnode


async def run(report) -> None:
    from betanet import mix, sphinx, vrf

    received: list[tuple[str, bytes]] = []

    def on_message(node: mix.Mixnode, m: mix.Message) -> None:
        received.append((node.node_id.hex()[:8], m.data))
        asyncio.ensure_future(node.reply(m, b"got it: " + m.data))

    g = sphinx.Geometry()
    report.line(f"geometry: up to {g.max_hops} hops, {g.payload_bytes}-byte payload, "
                f"every packet {g.packet_bytes} bytes on every link")
    async with mix.LocalMixnet(4, mean_delay_ms=MEAN_DELAY_MS, loop_rate=COVER_RATE,
                               on_message=on_message) as net:
        names = {n.node_id: f"mix{i}" for i, n in enumerate(net.nodes)}
        selector = vrf.RouteSelector(net.vrf_descriptors(), vrf.VRFKeyPair.from_seed(b"\x42" * 32),
                                     vrf.LocalBeacon(b"betanet demo beacon"))
        client = mix.MixClient(secrets.token_bytes(32), net.directory, hops=3, selector=selector,
                               mean_delay_ms=MEAN_DELAY_MS, loop_rate=COVER_RATE,
                               drop_rate=COVER_RATE, as_group=1)
        async with client:
            net.directory.add(client.descriptor())
            names[client.client_id] = "client"
            report.line("4 mixnodes on 127.0.0.1 (" + ", ".join(
                f"{names[n.node_id]}:{n.address[1]} AS{n.sender.as_group}" for n in net.nodes) + ")")
            started = time.perf_counter()
            dest = net.nodes[3].node_id
            futs = [await client.send(dest, f"hello mixnet #{i}".encode()) for i in range(3)]
            for i, route in enumerate(client.routes):
                report.line(f"message #{i}: VRF route " + " -> ".join(
                    f"{names[h.node_id]} ({d} ms)" for h, d in zip(route.hops, route.delays_ms))
                    + f" -> app at {names[dest]}")
            try:
                replies = await asyncio.wait_for(asyncio.gather(*futs), 10)
            except asyncio.TimeoutError:
                replies = []
            elapsed = time.perf_counter() - started
            report.result(len(received) == 3, f"{len(received)} of 3 messages delivered to the "
                          f"application at {names[dest]}")
            report.result(len(replies) == 3 and all(r.startswith(b"got it") for r in replies),
                          f"{len(replies)} replies came back through SURBs in {elapsed:.2f} s; "
                          f"only the client could open them: {replies[:1]!r}")
            await asyncio.sleep(1.0)      # let cover traffic flow a little
            c = client.counters
            report.result(c.loops_returned > 0,
                          f"client cover: {c.loops_sent} loops sent / {c.loops_returned} returned, "
                          f"{c.drops_sent} drop messages")
        for n in net.nodes:
            report.line(f"{names[n.node_id]}: {n.counters.summary()}")
        loops = sum(n.counters.loops_returned for n in net.nodes)
        drops = sum(sum(n.counters.dropped.values()) for n in net.nodes)
        report.result(loops > 0 and drops == 0,
                      f"mixnode loops returned: {loops}; packets dropped for any reason: {drops}")
