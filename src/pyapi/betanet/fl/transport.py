"""How the FL orchestrator reaches its peers: one framed, ordered, authenticated channel per
participant. ``Channel`` is the interface (the node will implement it over its sessions);
``HtxCoordinatorTransport``/``HtxParticipantTransport`` implement it over HTX directly (TLS
1.3 + Noise XK, one stream per participant). A participant is known by the HTX static key
its Noise handshake proved: the coordinator maps that key to the participant id, so a
peer cannot claim another's id.
"""
from __future__ import annotations

import asyncio
import logging
import os
import struct
from typing import Awaitable, Callable, Mapping, Protocol

from betanet.errors import LimitExceededError
from betanet import htx

log = logging.getLogger(__name__)

__all__ = ["Channel", "HtxChannel", "HtxCoordinatorTransport", "HtxParticipantTransport",
           "DEFAULT_MAX_MESSAGE"]

DEFAULT_MAX_MESSAGE = 64 << 20       # largest FL frame accepted (a 16 M-parameter vector)
_LEN = struct.Struct("<I")
PREAMBLE = b"BNFL\x01"                # a participant's first bytes: the peer sees a stream only once it carries data


class Channel(Protocol):
    """An ordered message channel to one authenticated peer."""
    peer: int                         # the participant id (on the coordinator side)

    async def send(self, data: bytes) -> None: ...
    async def recv(self) -> bytes: ...    # ConnectionError at end of channel
    async def close(self) -> None: ...


class HtxChannel:
    """Messages over one HTX stream, each prefixed by its u32 length."""

    def __init__(self, stream: htx.Stream, peer: int, conn: htx.Connection,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.peer = peer
        self._stream = stream
        self._conn = conn
        self._max = max_message

    async def send(self, data: bytes) -> None:
        if len(data) > self._max:
            raise LimitExceededError(f"FL message of {len(data)} bytes > {self._max}")
        self._stream.write(_LEN.pack(len(data)) + data)
        await self._stream.drain()

    async def recv(self) -> bytes:
        try:
            (n,) = _LEN.unpack(await self._stream.readexactly(_LEN.size))
            if n > self._max:
                raise LimitExceededError(f"peer announced a {n}-byte FL message > {self._max}")
            return await self._stream.readexactly(n)
        except asyncio.IncompleteReadError:
            raise ConnectionError("FL channel ended") from None

    async def close(self) -> None:
        await self._conn.close()


class HtxCoordinatorTransport:
    """The coordinator's listener. ``peers`` maps each participant's HTX static public key
    to its id; other keys are refused after the handshake."""

    def __init__(self, host: str, port: int, static_private_key: bytes,
                 peers: Mapping[bytes, int], *, transport: str = "tcp",
                 certfile: str | os.PathLike | None = None, keyfile: str | os.PathLike | None = None,
                 max_message: int = DEFAULT_MAX_MESSAGE, **serve_options) -> None:
        self._args = (host, port, static_private_key)
        self._peers = dict(peers)
        # serve_options: htx.serve's limits (e.g. max_handshakes_per_host for a simulation
        # whose participants all connect from 127.0.0.1 at once)
        self._kw = dict(transport=transport, certfile=certfile, keyfile=keyfile, **serve_options)
        self._max = max_message
        self.server: htx.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def start(self, on_channel: Callable[[Channel], Awaitable[None]]) -> None:
        async def handler(conn: htx.Connection) -> None:
            peer = self._peers.get(conn.remote_static_public or b"")
            if peer is None:
                log.warning("FL: refusing an HTX peer with an unknown static key")
                return
            stream = await conn.accept_stream()
            if await stream.readexactly(len(PREAMBLE)) != PREAMBLE:
                log.warning("FL: peer %d sent no FL preamble", peer)
                return
            await on_channel(HtxChannel(stream, peer, conn, self._max))

        host, port, key = self._args
        self.server = await htx.serve(handler, host, port, key, idle_timeout=None, **self._kw)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class HtxParticipantTransport:
    """A participant's way to its coordinator."""

    def __init__(self, host: str, port: int, server_public_key: bytes, static_private_key: bytes,
                 *, transport: str = "tcp", cafile: str | os.PathLike | None = None,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._args = (host, port, server_public_key)
        self._kw = dict(transport=transport, static_private_key=static_private_key, cafile=cafile)
        self._max = max_message

    async def connect(self) -> HtxChannel:
        host, port, server_pk = self._args
        conn = await htx.connect(host, port, server_pk, idle_timeout=None, **self._kw)
        stream = await conn.open_stream()
        stream.write(PREAMBLE)
        return HtxChannel(stream, 0, conn, self._max)
