"""`betanet mesh chat`: the chat logic on the in-process air, and two chat processes
talking through an air server process (public and private messages)."""
from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile

from betanet.mesh.air import local_medium
from betanet.mesh.chat import Chat
from betanet.mesh.router import Identity, MeshRouter
from betanet.mesh.service import MeshService

WAIT = 30.0


async def _lines_until(lines, pattern, timeout=WAIT):
    while not any(pattern in line for line in lines):
        await asyncio.sleep(0.02)
        timeout -= 0.02
        assert timeout > 0, f"never saw {pattern!r} in {lines}"


def test_chat_public_private_who():
    async def run():
        medium = local_medium(rng=random.Random(1))
        rng = random.Random(2)
        outs = {"alice": [], "bob": []}
        chats = {}
        for i, nick in enumerate(outs):
            ident = Identity.generate(nick, rng)
            svc = MeshService(MeshRouter(ident, rng=random.Random(i)), medium.join(ident.peer_id, i * 10.0, 0))
            chats[nick] = Chat(svc, outs[nick].append)
            svc_events = svc.events()
            asyncio.get_running_loop().create_task(_show(chats[nick], svc_events))
            await svc.start()
        await _lines_until(outs["alice"], "bob (")
        await _lines_until(outs["bob"], "alice (")
        alice, bob = chats["alice"], chats["bob"]
        assert alice.command("hello everyone")
        await _lines_until(outs["bob"], "<alice> hello everyone")
        assert alice.command("/msg bob meet at noon")
        await _lines_until(outs["bob"], "[private] <alice> meet at noon")
        alice.command("/msg carol hi")
        alice.command("/who")
        alice.command("/nonsense")
        assert any("no peer named 'carol'" in line for line in outs["alice"])
        assert any(line.startswith("* here: bob") for line in outs["alice"])
        assert any("/msg NICK text" in line for line in outs["alice"])
        assert not alice.command("/quit")
        for c in chats.values():
            await c.service.stop()
    asyncio.run(run())


async def _show(chat, events):
    async for ev in events:
        chat.on_event(ev)


def test_two_chat_processes_over_an_air_process():
    async def run(tmp):
        path = os.path.join(tmp, "air.sock")
        cli = [sys.executable, "-m", "betanet", "mesh"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        air = await asyncio.create_subprocess_exec(*cli, "air", "--socket", path,
                                                   stdout=asyncio.subprocess.PIPE, env=env)
        procs, lines = {}, {"alice": [], "bob": []}
        readers = []
        try:
            assert b"listening" in await asyncio.wait_for(air.stdout.readline(), WAIT)
            for nick, pos in (("alice", "0,0"), ("bob", "10,0")):
                p = await asyncio.create_subprocess_exec(
                    *cli, "chat", "--air", path, "--nick", nick, "--pos", pos, "--mtu", "185",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
                procs[nick] = p
                readers.append(asyncio.ensure_future(_collect(p.stdout, lines[nick])))
            await _lines_until(lines["alice"], "bob (")
            await _lines_until(lines["bob"], "alice (")
            procs["alice"].stdin.write(b"hi from alice " + b"x" * 300 + b"\n")   # cut for MTU 185
            await _lines_until(lines["bob"], "<alice> hi from alice xxx")
            procs["bob"].stdin.write(b"/msg alice secret handshake\n")
            await _lines_until(lines["alice"], "[private] <bob> secret handshake")
            for p in procs.values():
                p.stdin.write(b"/quit\n")
                await asyncio.wait_for(p.wait(), WAIT)
                assert p.returncode == 0
        finally:
            for p in (*procs.values(), air):
                if p.returncode is None:
                    p.kill()
                    await p.wait()
            for r in readers:
                r.cancel()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(tmp))


async def _collect(stream, into):
    while line := await stream.readline():
        into.append(line.decode())
