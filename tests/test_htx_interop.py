"""Interop: a peer written from docs/htx.md alone with noiseprotocol and cryptography
(no betanet classes) against betanet.htx clients and servers over real loopback TCP."""
from __future__ import annotations

import asyncio
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption
from noise.connection import Keypair, NoiseConnection

import betanet.htx as htx
from htx_helpers import aio


def hkdf(ikm, salt, info, n):
    return HKDF(hashes.SHA256(), n, salt, info).derive(ikm)


def varint(v: int) -> bytes:
    for n, tag in ((1, 0), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if v < 1 << (8 * n - 2):
            b = bytearray(v.to_bytes(n, "big"))
            b[0] |= tag
            return bytes(b)


class Direction:
    """Key state of one direction, per docs/htx.md."""

    def __init__(self, key: bytes, hh: bytes):
        self.key, self.hh, self.counter = key, hh, 0
        self.ns = hkdf(key, None, b"ns", 12)

    def nonce(self):
        return bytes(a ^ b for a, b in zip(self.ns, self.counter.to_bytes(8, "little") + bytes(4)))

    def ratchet(self):
        self.key = hkdf(self.key, self.hh, b"next", 32)
        self.ns = hkdf(self.key, None, b"ns", 12)
        self.counter = 0


class Peer:
    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    async def handshake(self, initiator: bool, static: bytes, remote: bytes | None):
        nc = NoiseConnection.from_name(b"Noise_XK_25519_ChaChaPoly_SHA256")
        nc.set_as_initiator() if initiator else nc.set_as_responder()
        nc.set_keypair_from_private_bytes(Keypair.STATIC, static)
        if remote:
            nc.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote)
        nc.set_prologue(b"betanet/htx/1.1.0")
        nc.start_handshake()

        async def send():
            m = nc.write_message()
            self.w.write(len(m).to_bytes(2, "big") + m)

        async def recv():
            ln = int.from_bytes(await self.r.readexactly(2), "big")
            nc.read_message(await self.r.readexactly(ln))

        for step in ((send, recv, send) if initiator else (recv, send, recv)):
            await step()
        p = nc.noise_protocol
        enc, dec, hh = p.cipher_state_encrypt.k, p.cipher_state_decrypt.k, nc.get_handshake_hash()
        self.tx, self.rx = Direction(enc, hh), Direction(dec, hh)

    def send(self, ftype: int, payload: bytes, sid: int | None = None):
        header = len(payload).to_bytes(3, "big") + bytes([ftype]) + (varint(sid) if sid is not None else b"")
        ct = ChaCha20Poly1305(self.tx.key).encrypt(self.tx.nonce(), payload, header)
        self.tx.counter += 1
        self.w.write(header + ct)
        if ftype == 3:
            self.tx.ratchet()

    async def recv(self):
        h = await self.r.readexactly(4)
        length, ftype = int.from_bytes(h[:3], "big"), h[3]
        sid = None
        if ftype in (0, 4):
            first = await self.r.readexactly(1)
            rest = await self.r.readexactly((1 << (first[0] >> 6)) - 1)
            h += first + rest
            sid = int.from_bytes(bytes([first[0] & 0x3F]) + rest, "big")
        body = await self.r.readexactly(length + 16)
        pt = ChaCha20Poly1305(self.rx.key).decrypt(self.rx.nonce(), body, h)
        self.rx.counter += 1
        if ftype == 3:
            self.rx.ratchet()
        return ftype, sid, pt

    async def recv_stream(self):
        """Next STREAM frame, skipping WINDOW_UPDATE / KEY_UPDATE."""
        while True:
            t, sid, pt = await self.recv()
            if t == 0:
                return sid, pt[0], pt[1:]


def keypair():
    k = X25519PrivateKey.generate()
    return (k.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@aio(60)
async def test_independent_client_against_betanet_server():
    priv, pub = keypair()
    got = {}

    async def handler(conn):
        st = await conn.accept_stream()
        got["data"] = await st.read(100)
        st.write(b"pong:" + got["data"])
        await st.close()
        await conn.update_key()
        st2 = await conn.open_stream()
        st2.write(b"server-stream")
        await st2.close()
        await conn.wait_closed()

    server = await htx.serve(handler, "127.0.0.1", 0, priv, transport="plain")
    try:
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        peer = Peer(r, w)
        cpriv, cpub = keypair()
        await peer.handshake(True, cpriv, pub)
        peer.send(0, b"\x00ping", sid=1)
        sid, flags, data = await peer.recv_stream()
        assert (sid, data) == (1, b"pong:ping")
        sid, flags, data = await peer.recv_stream()
        assert sid == 1 and flags == 1 and data == b""           # FIN
        sid, flags, data = await peer.recv_stream()
        assert (sid, data) == (2, b"server-stream")               # after the server's KEY_UPDATE
        assert peer.rx.key != peer.rx.hh and peer.rx.counter >= 1
        peer.send(1, b"\x00" + b"12345678")
        while (m := await peer.recv())[0] != 1:
            pass
        assert m[2] == b"\x0112345678"                            # PING reply, same token
        peer.send(3, b"")                                          # our KEY_UPDATE
        peer.send(2, b"\x00\x00bye")
        w.close()
        assert got["data"] == b"ping"
        conn = next(iter(server.connections), None)
        assert conn is None or conn.remote_static_public == cpub
    finally:
        server.close()
        await server.wait_closed()


@aio(60)
async def test_betanet_client_against_independent_server():
    priv, pub = keypair()
    result = {}
    done = asyncio.Event()

    async def serve_one(r, w):
        try:
            peer = Peer(r, w)
            await peer.handshake(False, priv, None)
            sid, flags, data = await peer.recv_stream()
            result["first"] = (sid, data)
            peer.send(0, b"\x00echo:" + data, sid=sid)
            peer.send(0, b"\x01", sid=sid)
            while (m := await peer.recv())[0] != 2:
                result.setdefault("types", []).append(m[0])
            result["close"] = m[2]
        finally:
            done.set()
            w.close()

    srv = await asyncio.start_server(serve_one, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        conn = await htx.connect("127.0.0.1", port, pub, transport="plain")
        st = await conn.open_stream()
        st.write(b"hi there")
        assert await st.read() == b"echo:hi there"
        assert await st.read() == b""
        await conn.update_key()
        await conn.close()
        await asyncio.wait_for(done.wait(), 10)
        assert result["first"] == (1, b"hi there")
        assert 3 in result["types"]                     # the KEY_UPDATE arrived and opened
        assert result["close"][:2] == b"\x00\x00"
    finally:
        srv.close()
