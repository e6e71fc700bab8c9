"""ffi-examples/c/htx_client.c: a C host (no Python in its process) runs the core Noise XK
handshake and an HTX session over TCP against the Python ``betanet.htx.serve`` server, and
exits clearly when the peer misbehaves during the handshake."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

import betanet.htx as htx
from conftest import ROOT, run
from htx_helpers import aio

EXAMPLES = ROOT / "ffi-examples" / "c"


@pytest.fixture(scope="module")
def client(c_prefix, tool_env, tmp_path_factory) -> Path:
    """htx_client built with CMake find_package(betanet) against the installed library."""
    build = tmp_path_factory.mktemp("htx_client")
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=tool_env["PATH"]) else []
    run(["cmake", "-S", str(EXAMPLES), "-B", str(build), *gen, f"-DCMAKE_PREFIX_PATH={c_prefix}"],
        env=tool_env)
    run(["cmake", "--build", str(build), "--target", "htx_client"], env=tool_env)
    exe = build / "htx_client"
    needed = run(["readelf", "-d", str(exe)]).stdout
    assert "libbetanet" in needed and "libpython" not in needed
    return exe


async def run_client(exe: Path, port: int, key: bytes, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(str(exe), "127.0.0.1", str(port), key.hex(), *args,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def echo_handler(conn: htx.Connection) -> None:
    st = await conn.accept_stream()
    data = bytearray()
    while chunk := await st.read():
        data += chunk
    st.write(bytes(data))
    await st.drain()
    st.write_eof()


@aio(120)
async def test_c_client_against_python_server(client):
    priv = htx.generate_private_key()
    peers = []

    async def handler(conn):
        peers.append(conn.remote_static_public)
        await echo_handler(conn)

    server = await htx.serve(handler, "127.0.0.1", 0, priv, transport="plain")
    try:
        for message in ("hello over HTX", "é" * 20000, "x" * 65535):
            rc, out, err = await run_client(client, server.port, htx.public_key(priv), message)
            assert rc == 0, err
            assert out == f"echo: {message}\n"
        rc, out, err = await run_client(client, server.port, htx.public_key(priv))
        assert rc == 0 and out == "echo: hello from a C host\n", err
    finally:
        server.close()
    assert len(peers) == 4 and len(set(peers)) == 4          # a fresh client key per run


@aio(60)
async def test_c_client_wrong_server_key(client):
    priv = htx.generate_private_key()
    errors = []
    server = await htx.serve(echo_handler, "127.0.0.1", 0, priv, transport="plain",
                             on_handshake_error=errors.append)
    try:
        rc, out, err = await run_client(client, server.port, htx.public_key(htx.generate_private_key()))
    finally:
        server.close()
    assert rc == 2 and out == ""
    assert "closed the connection during the handshake" in err


async def raw_server(behaviour) -> tuple[asyncio.AbstractServer, int]:
    async def on_conn(reader, writer):
        try:
            await behaviour(reader, writer)
        finally:
            writer.close()
    srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


async def _close_at_once(reader, writer):
    pass


async def _close_after_message1(reader, writer):
    await reader.readexactly(50)


async def _half_message2(reader, writer):
    await reader.readexactly(50)
    writer.write(b"\x00\x30" + bytes(20))          # a length prefix and part of message 2
    await writer.drain()


async def _oversized_message2(reader, writer):
    await reader.readexactly(50)
    writer.write(b"\xff\xff" + bytes(64))
    await writer.drain()
    await asyncio.sleep(0.2)


async def _garbage_message2(reader, writer):
    await reader.readexactly(50)
    writer.write(b"\x00\x30" + bytes(range(48)))
    await writer.drain()
    await asyncio.sleep(0.2)


@pytest.mark.parametrize("behaviour, text", [
    (_close_at_once, "closed the connection during the handshake"),
    (_close_after_message1, "closed the connection during the handshake"),
    (_half_message2, "closed the connection during the handshake"),
    (_oversized_message2, "handshake failed: limit exceeded"),
    (_garbage_message2, "handshake failed: authentication failed"),
], ids=["at-once", "after-message-1", "mid-message-2", "oversized", "garbage"])
@aio(60)
async def test_c_client_peer_fails_mid_handshake(client, behaviour, text):
    srv, port = await raw_server(behaviour)
    try:
        rc, out, err = await run_client(client, port, htx.public_key(htx.generate_private_key()))
    finally:
        srv.close()
    assert rc == 2 and out == "", err
    assert err.startswith("htx_client: ") and text in err, err


def test_c_client_usage(client):
    proc = subprocess.run([str(client), "127.0.0.1", "1", "nothex"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1 and "usage: htx_client" in proc.stderr
