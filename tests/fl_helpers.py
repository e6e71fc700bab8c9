"""Test helpers for the FL orchestrator tests: a participant transport whose channel does
something else at one stage of a round (drops its connection, has its node stopped, is
killed) instead of sending that stage's SecAgg message -- how each failure test drops a
participant at an exact point."""
from __future__ import annotations

from typing import Awaitable, Callable

from betanet.fl import wire

# (the participant's inner channel) -> awaited instead of sending; it raises, or never returns
Action = Callable[[object], Awaitable[None]]


class StageChannel:
    """Runs ``action(inner)`` instead of sending the SecAgg message of type ``stage``."""

    def __init__(self, inner, stage: int, action: Action) -> None:
        self._inner, self._stage, self._action = inner, stage, action
        self.peer = inner.peer

    async def send(self, data: bytes) -> None:
        if data[0] == wire.KIND_SECAGG and len(data) > 4 and data[4] == self._stage:
            await self._action(self._inner)
        await self._inner.send(data)

    async def recv(self) -> bytes:
        return await self._inner.recv()

    async def close(self) -> None:
        await self._inner.close()


class StageTransport:
    """A participant transport whose channels are ``StageChannel``s."""

    def __init__(self, inner, stage: int, action: Action) -> None:
        self._inner, self._stage, self._action = inner, stage, action

    async def connect(self) -> StageChannel:
        return StageChannel(await self._inner.connect(), self._stage, self._action)
