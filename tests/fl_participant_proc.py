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
from fl_helpers import StageTransport


async def kill_myself(channel) -> None:
    os.kill(os.getpid(), signal.SIGKILL)       # no goodbye


def main() -> None:
    cfg = json.loads(open(sys.argv[1]).read())
    me = int(sys.argv[2])
    die_before = int(sys.argv[3])
    directory = {int(i): bytes.fromhex(pk) for i, pk in cfg["directory"].items()}
    t = HtxParticipantTransport("127.0.0.1", cfg["port"], bytes.fromhex(cfg["server_pk"]),
                                bytes.fromhex(cfg["htx_keys"][str(me)]), cafile=cfg["cert"])
    if die_before:
        t = StageTransport(t, die_before, kill_myself)
    update = np.random.default_rng(me).normal(0, 0.1, cfg["dim"])
    client = ParticipantClient(me, t, lambda model, rid: (update, 10), directory=directory,
                               identity=Ed25519PrivateKey.from_private_bytes(
                                   bytes.fromhex(cfg["identities"][str(me)])),
                               stage_timeout=cfg["stage_timeout"] * 4)
    asyncio.run(client.run(rounds=1))


if __name__ == "__main__":
    main()
