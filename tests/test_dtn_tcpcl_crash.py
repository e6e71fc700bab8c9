"""kill -9 of a TCPCLv4 receiver while transfers are half done: after it restarts on the same
store, the sender's retries complete every bundle, none is lost and none is stored twice."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import textwrap

import pytest

from betanet.dtn.store import BundleStore
from betanet.dtn.tcpcl.aio import TcpclClient
from betanet.dtn.tcpcl.protocol import SessionConfig

RECEIVER = textwrap.dedent("""
    import asyncio, sys
    from betanet.dtn.store import BundleStore
    from betanet.dtn.tcpcl.aio import serve
    from betanet.dtn.tcpcl.protocol import SessionConfig

    async def main(path, port):
        store = BundleStore(path)

        async def on_bundle(data):
            bid = data[:12].decode()
            if await store.put(bid, data, destination="ipn:2.0", source="ipn:1.0",
                               expires_at=1e12):
                print("new", bid, flush=True)

        srv = await serve("127.0.0.1", int(port), on_bundle=on_bundle,
                          config=SessionConfig(node_id="ipn:2.0", segment_mru=4096))
        print("ready", srv.port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


async def start_receiver(path, port):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", RECEIVER, str(path), str(port),
                                                stdout=asyncio.subprocess.PIPE)
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
    assert line[0] == "ready"
    return proc, int(line[1])


async def collect(proc, into: list[str]) -> None:
    async for line in proc.stdout:
        parts = line.decode().split()
        if len(parts) == 2 and parts[0] == "new":
            into.append(parts[1])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_receiver_killed_mid_transfer_nothing_lost_nothing_twice(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "rx.db"
    ids = [f"bundle{i:06d}" for i in range(120)]
    bundles = {i: i.encode() + os.urandom(rng.randrange(1, 20_000)) for i in ids}

    async def main():
        proc, port = await start_receiver(path, 0)
        printed: list[str] = []
        readers = [asyncio.create_task(collect(proc, printed))]
        client = TcpclClient("127.0.0.1", port, attempts=60, backoff=0.05, max_backoff=0.5,
                             config=SessionConfig(node_id="ipn:1.0"), timeout=5)
        acked: list[str] = []
        kill_after = rng.randrange(10, 80)

        async def sender(part: list[str]) -> None:
            for i in part:
                await client.send_bundle(bundles[i])
                acked.append(i)

        senders = [asyncio.create_task(sender(ids[k::3])) for k in range(3)]
        while len(acked) < kill_after:
            await asyncio.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)  # transfers in flight, some stored but not acked
        await proc.wait()
        acked_before = list(acked)
        proc, _ = await start_receiver(path, port)
        readers.append(asyncio.create_task(collect(proc, printed)))
        await asyncio.wait_for(asyncio.gather(*senders), 120)
        await client.close()
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        await asyncio.gather(*readers)
        assert client.retried >= 1 and client.sessions_opened >= 2
        assert sorted(acked) == sorted(ids)
        # every bundle is stored once; none was handed up twice across the crash
        assert len(printed) == len(set(printed))
        async with BundleStore(path) as store:
            assert sorted(await store.ids()) == sorted(ids)
            for i in acked_before:
                assert (await store.get(i)).data == bundles[i]
        return acked_before

    acked_before = asyncio.run(asyncio.wait_for(main(), 180))
    assert acked_before
