"""`betanet mesh chat`: a small BitChat-compatible chat on a MeshService.

Public messages are what BitChat sends: a signed type 0x02 packet to everyone whose
payload is the UTF-8 text. `/msg NICK text` sends a private message over a Noise XX
session (BitChat's framing, noise.py). Nicknames come from announces. `Chat` holds the
logic (lines in, lines out) so it runs the same on the air and on real BLE.
"""
from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable

from betanet.mesh.packet import MESSAGE
from betanet.mesh.service import Delivered, MeshService, NeighbourChanged, PeerAnnounced, PrivateMessage

HELP = "type a line to send it to everyone; /msg NICK text, /who, /quit"


class Chat:
    def __init__(self, service: MeshService, out: Callable[[str], None]) -> None:
        self.service, self.out = service, out

    def nick(self, peer: bytes) -> str:
        p = self.service.peers.get(peer)
        return p.announce.nickname if p is not None else peer.hex()

    def peer_by_nick(self, nick: str) -> bytes | None:
        for pid, p in self.service.peers.items():
            if p.announce.nickname == nick or pid.hex() == nick:
                return pid
        return None

    def command(self, line: str) -> bool:
        """Act on one input line; False when the user quits."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        if line == "/quit":
            return False
        if line == "/who":
            names = sorted(f"{p.announce.nickname} ({pid.hex()})" for pid, p in self.service.peers.items())
            self.out("* here: " + (", ".join(names) if names else "nobody yet"))
        elif line.startswith("/msg "):
            _, _, rest = line.partition(" ")
            nick, _, text = rest.partition(" ")
            peer = self.peer_by_nick(nick)
            if peer is None or not text:
                self.out(f"* no peer named {nick!r}" if peer is None else "* usage: /msg NICK text")
            else:
                try:
                    self.service.send_private(peer, text)
                except ValueError as exc:
                    self.out(f"* not sent: {exc}")
        elif line.startswith("/"):
            self.out("* " + HELP)
        else:
            self.service.broadcast(line.encode())
        return True

    def on_event(self, ev: object) -> None:
        if isinstance(ev, PeerAnnounced):
            self.out(f"* {ev.announce.nickname} ({ev.peer_id.hex()}) is here")
        elif isinstance(ev, Delivered) and ev.packet.type == MESSAGE and ev.packet.is_broadcast:
            text = ev.packet.payload.decode("utf-8", "replace")
            mark = "" if ev.verified else " (unverified)"
            self.out(f"<{self.nick(ev.packet.sender)}>{mark} {text}")
        elif isinstance(ev, PrivateMessage):
            self.out(f"[private] <{self.nick(ev.peer_id)}> {ev.content}")
        elif isinstance(ev, NeighbourChanged) and not ev.up:
            self.out(f"* link to {self.nick(ev.peer_id)} lost")

    async def run(self, lines: AsyncIterator[str]) -> None:
        events = self.service.events()

        async def show() -> None:
            async for ev in events:
                self.on_event(ev)

        shower = asyncio.get_running_loop().create_task(show())
        try:
            async for line in lines:
                if not self.command(line):
                    break
        finally:
            shower.cancel()


async def stdin_lines() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line
