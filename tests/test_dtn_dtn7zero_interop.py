"""Interop with dtn7zero (PyPI), a running pure-Python bundle protocol agent, over MTCP in
both directions. dtn7zero (0.0.8) refuses bundles that carry CRCs ("bundles with CRC and
fragments are not implemented yet"), so bundles for it are built with CRC type none; what
it sends carries none either. Its node runs in its own process (it binds its MTCP port and
polls in a loop)."""
from __future__ import annotations

import asyncio
import socket
import sys
import textwrap

import pytest

from betanet.dtn.bundle import Bundle, BlockType, CRCType
from betanet.dtn.mtcp import open_mtcp, serve_mtcp

pytest.importorskip("dtn7zero", reason="dtn7zero is in the test extras: pip install '.[test]'")

NODE = textwrap.dedent("""
    import sys, time
    from dtn7zero.configuration import CONFIGURATION
    CONFIGURATION.IPND.ENABLED = False           # no discovery beacons: the peer is configured
    CONFIGURATION.PORT.MTCP = int(sys.argv[1])
    from dtn7zero.bundle_protocol_agent import BundleProtocolAgent
    from dtn7zero.convergence_layer_adapters.mtcp import MTcpCLA
    from dtn7zero.data import Node
    from dtn7zero.endpoints import LocalEndpoint
    from dtn7zero.routers.simple_epidemic_router import SimpleEpidemicRouter
    from dtn7zero.storage.simple_in_memory_storage import SimpleInMemoryStorage

    storage = SimpleInMemoryStorage()
    router = SimpleEpidemicRouter({"mtcp": MTcpCLA()}, storage)
    bpa = BundleProtocolAgent("dtn://zero/", storage, router)
    storage.add_node(Node("127.0.0.1", (1, "//betanet/"), {"mtcp": int(sys.argv[2])}, 0))

    def got(bundle):
        print("got", bundle.payload_block.data.hex(), bundle.primary_block.full_source_uri,
              flush=True)

    ep = bpa.register_endpoint(LocalEndpoint("inbox", got))
    print("ready", flush=True)
    ep.start_transmission(b"hello from dtn7zero", "dtn://betanet/in")
    end = time.time() + float(sys.argv[3])
    while time.time() < end:
        bpa.update()
        time.sleep(0.001)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bundles_both_ways_with_a_running_dtn7zero_node():
    async def main():
        got: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_bundle(b: bytes) -> None:
            await got.put(b)

        srv = await serve_mtcp("127.0.0.1", 0, on_bundle=on_bundle)
        zport = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", NODE, str(zport), str(srv.port), "30",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
            # dtn7zero -> us: its agent forwards the bundle to our MTCP listener
            b = Bundle.parse(await asyncio.wait_for(got.get(), 20))
            assert bytes(b.payload) == b"hello from dtn7zero"
            assert str(b.primary.source) == "dtn://zero/inbox"
            assert str(b.primary.destination) == "dtn://betanet/in"
            assert b.primary.crc_type == CRCType.NONE
            assert b.hop_count == (32, 1)  # its agent counted its own hop when forwarding
            assert str(b.previous_node) == "dtn://zero/"
            assert b.block(BlockType.PREVIOUS_NODE) is not None
            # us -> dtn7zero: CRC none is delivered to its endpoint; with CRCs it refuses
            for crc in (CRCType.CRC16, CRCType.CRC32C, CRCType.NONE):
                out = Bundle.build("dtn://zero/inbox", "dtn://betanet/app", b"to zero, crc %d" % crc,
                                   crc_type=crc, hop_limit=16).to_bytes()
                conn = await open_mtcp("127.0.0.1", zport)
                await conn.send_bundle(out)
                await conn.close()
            lines = []
            while not any(line.startswith(b"got") for line in lines):
                lines.append(await asyncio.wait_for(proc.stdout.readline(), 20))
            delivered = [line.split() for line in lines if line.startswith(b"got")]
            assert delivered == [[b"got", (b"to zero, crc %d" % CRCType.NONE).hex().encode(),
                                  b"dtn://betanet/app"]]
            refused = [line for line in lines if b"CRC" in line]
            assert len(refused) == 2  # its own words: CRC bundles are not implemented
        finally:
            proc.kill()
            await proc.wait()
            await srv.close()
    asyncio.run(asyncio.wait_for(main(), 90))
