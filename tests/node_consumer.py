"""A node process whose application records each message in its own table (``app_seen``) of
the node's SQLite store: ``python tests/node_consumer.py CONFIG MODE HOLD_AT``.

MODE ``ack``: the insert is the effect of ``m.ack(effect)`` (one transaction with the inbox
mark). MODE ``naive``: the insert commits first, then ``m.ack()`` marks (two transactions).
HOLD_AT n > 0: the n-th message of this run is announced (``{"event": "took"}``) and then the
process waits forever *before* marking it — the point where a test kills it with -9."""
from __future__ import annotations

import asyncio
import logging
import sys

from betanet.node import config as nconfig
from betanet.node.service import Service


class Consumer(Service):
    def __init__(self, cfg: dict, mode: str, hold_at: int) -> None:
        super().__init__(cfg)
        self.mode, self.hold_at = mode, hold_at

    async def _consume(self) -> None:
        await self.node.transaction(
            lambda c: c.execute("CREATE TABLE IF NOT EXISTS app_seen(id BLOB NOT NULL, body BLOB)"))
        n = 0
        async for m in self.node.messages(manual_ack=True):
            n += 1
            self.emit({"event": "took", "id": m.message_id.hex(), "n": n})

            def record(c, m=m):
                c.execute("INSERT INTO app_seen VALUES(?, ?)", (m.message_id, m.body))
            if self.mode == "naive":
                await self.node.transaction(record)
                if n == self.hold_at:
                    await asyncio.Event().wait()
                await m.ack()
            else:
                if n == self.hold_at:
                    await asyncio.Event().wait()
                await m.ack(record)
            self.emit({"event": "received", "from": m.sender, "id": m.message_id.hex(),
                       "data": m.body.hex()})


def main() -> None:
    cfg_path, mode, hold_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = nconfig.load(cfg_path)
    asyncio.run(Consumer(cfg, mode, hold_at).run())


if __name__ == "__main__":
    main()
