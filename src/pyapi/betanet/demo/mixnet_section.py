"""Demo: a Sphinx mixnet on loopback, its links HTX over TCP+TLS 1.3 — VRF-selected 3-hop
routes, Poisson delays, Loopix cover traffic, a reply through a SURB, and the counters
every node keeps."""
from __future__ import annotations

import asyncio
import secrets
import time

TITLE = "Mixnet: Sphinx packets through 4 local mixnodes linked by HTX, cover traffic, a SURB reply"
TRANSPORT = "htx-tcp"     # HTX (Noise XK) inside TLS 1.3 over TCP

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
                               on_message=on_message, transport=TRANSPORT) as net:
        names = {n.node_id: f"mix{i}" for i, n in enumerate(net.nodes)}
        selector = vrf.RouteSelector(net.vrf_descriptors(), vrf.VRFKeyPair.from_seed(b"\x42" * 32),
                                     vrf.LocalBeacon(b"betanet demo beacon"))
        client = mix.MixClient(secrets.token_bytes(32), net.directory, hops=3, selector=selector,
                               mean_delay_ms=MEAN_DELAY_MS, loop_rate=COVER_RATE,
                               drop_rate=COVER_RATE, as_group=1,
                               transport=mix.make_transport(TRANSPORT))
        async with client:
            net.directory.add(client.descriptor())
            names[client.client_id] = "client"
            report.line("4 mixnodes on 127.0.0.1 (" + ", ".join(
                f"{names[n.node_id]}:{n.address[1]} AS{n.sender.as_group}" for n in net.nodes) + ")")
            report.line("links: HTX (Noise XK, ChaCha20-Poly1305 frames) inside TLS 1.3 over TCP; each "
                        "node's descriptor pins its X25519 HTX key, e.g. mix0 "
                        f"{net.nodes[0].transport.public_key.hex()[:16]}...; TLS certificates are "
                        "self-signed and not verified (the HTX key authenticates the peer)")
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
            links = {names[n.node_id]: (n.counters.links_opened, n.transport.open_links) for n in net.nodes}
            links["client"] = (client.counters.links_opened, client.transport.open_links)
            report.result(all(o == k and o <= 5 for o, k in links.values())
                          and not any(n.counters.link_errors for n in net.nodes),
                          "HTX connections opened per endpoint (one per neighbour, all reused, none "
                          "failed): " + ", ".join(f"{k} {o}" for k, (o, _) in links.items()))
        for n in net.nodes:
            report.line(f"{names[n.node_id]}: {n.counters.summary()}")
        loops = sum(n.counters.loops_returned for n in net.nodes)
        drops = sum(sum(n.counters.dropped.values()) for n in net.nodes)
        report.result(loops > 0 and drops == 0,
                      f"mixnode loops returned: {loops}; packets dropped for any reason: {drops}")
