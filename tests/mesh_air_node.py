"""A mesh node in its own process for test_mesh_service: joins an air server and answers
every broadcast "ping:<x>" with a broadcast "pong:<x>" and every private message with a
private "re:<text>". Prints its peer id (hex) on the first line once it is on the air."""
from __future__ import annotations

import asyncio
import sys

from betanet.mesh.air import AirRadio
from betanet.mesh.router import Delivered, Identity, MeshRouter, PrivateMessage
from betanet.mesh.service import MeshService


async def main(path: str, x: float, y: float) -> None:
    ident = Identity.generate("echo")
    radio = await AirRadio.connect(path, ident.peer_id, x, y)
    svc = MeshService(MeshRouter(ident), radio, announce_interval_s=1.0)
    events = svc.events()
    await svc.start()
    print(ident.peer_id.hex(), flush=True)
    async for ev in events:
        if isinstance(ev, Delivered) and ev.packet.payload.startswith(b"ping:"):
            svc.broadcast(b"pong:" + ev.packet.payload[5:])
        elif isinstance(ev, PrivateMessage):
            svc.send_private(ev.peer_id, "re:" + ev.content)
        if not radio.connected:
            break


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
