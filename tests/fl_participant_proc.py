"""One FL participant as its own process (tests/test_fl_orchestrator.py): connects to the
coordinator over HTX and serves tasks; with a `die_before` SecAgg message type it kills
itself (SIGKILL, no goodbye) just before sending that message."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet.fl.orchestrator import ParticipantClient
from betanet.fl.transport import HtxParticipantTransport


class KillingChannel:
    def __init__(self, inner, die_before: int) -> None:
        self._inner, self._die, self.peer = inner, die_before, inner.peer

    async def send(self, data: bytes) -> None:
        if data[0] == 1 and len(data) > 4 and data[4] == self._die:
            os.kill(os.getpid(), signal.SIGKILL)
        await self._inner.send(data)

    async def recv(self) -> bytes:
        return await self._inner.recv()

    async def close(self) -> None:
        await self._inner.close()


class KillingTransport:
    def __init__(self, inner, die_before: int) -> None:
        self._inner, self._die = inner, die_before

    async def connect(self):
        return KillingChannel(await self._inner.connect(), self._die)


def main() -> None:
    cfg = json.loads(open(sys.argv[1]).read())
    me = int(sys.argv[2])
    die_before = int(sys.argv[3])
    directory = {int(i): bytes.fromhex(pk) for i, pk in cfg["directory"].items()}
    t = HtxParticipantTransport("127.0.0.1", cfg["port"], bytes.fromhex(cfg["server_pk"]),
                                bytes.fromhex(cfg["htx_keys"][str(me)]), cafile=cfg["cert"])
    if die_before:
        t = KillingTransport(t, die_before)
    update = np.random.default_rng(me).normal(0, 0.1, cfg["dim"])
    client = ParticipantClient(me, t, lambda model, rid: (update, 10), directory=directory,
                               identity=Ed25519PrivateKey.from_private_bytes(
                                   bytes.fromhex(cfg["identities"][str(me)])),
                               stage_timeout=cfg["stage_timeout"] * 4)
    asyncio.run(client.run(rounds=1))


if __name__ == "__main__":
    main()
