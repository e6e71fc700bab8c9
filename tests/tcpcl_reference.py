"""A second, independent minimal TCPCLv4 peer, written from RFC 9174 alone for interop tests.

It shares no code with ``betanet.dtn.tcpcl``: plain ``struct`` and asyncio streams, one
message read at a time (``readexactly``), lock-step. Enough of the protocol to exchange
bundles both ways: contact header, optional TLS (active = client), SESS_INIT, segmented
XFER_SEGMENT with the Transfer Length extension, cumulative XFER_ACK, KEEPALIVE, SESS_TERM.
"""
from __future__ import annotations

import asyncio
import ssl
import struct

T_SEGMENT, T_ACK, T_REFUSE, T_KEEPALIVE, T_TERM, T_REJECT, T_INIT = 1, 2, 3, 4, 5, 6, 7
F_END, F_START = 0x01, 0x02


class RefPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, active: bool,
                 node_id: str, segment_mru: int, transfer_mru: int, keepalive: int) -> None:
        self.r, self.w = reader, writer
        self.active = active
        self.node_id = node_id
        self.segment_mru, self.transfer_mru, self.keepalive = segment_mru, transfer_mru, keepalive
        self.peer = {}
        self.next_id = 0
        self.seen = []  # every message read: (type, fields)

    # -- negotiation (RFC 9174 §4.2-4.7) --
    async def negotiate(self, tls: ssl.SSLContext | None, server_hostname: str | None = None) -> None:
        flags = 1 if tls is not None else 0
        if self.active:
            self.w.write(b"dtn!" + bytes([4, flags]))
        head = await self.r.readexactly(6)
        if head[:4] != b"dtn!" or head[4] != 4:
            self.w.close()
            raise ConnectionError(f"bad contact header {head!r}")
        if not self.active:
            self.w.write(b"dtn!" + bytes([4, flags]))
        await self.w.drain()
        if tls is not None and head[5] & 1:
            await self.w.start_tls(tls, server_hostname=server_hostname if self.active else None)
        if self.active:
            self._send_init()
            await self._read_init()
        else:
            await self._read_init()
            self._send_init()
        await self.w.drain()

    def _send_init(self) -> None:
        nid = self.node_id.encode("utf-8")
        self.w.write(struct.pack(">BHQQH", T_INIT, self.keepalive, self.segment_mru,
                                 self.transfer_mru, len(nid)) + nid + struct.pack(">I", 0))

    async def _read_init(self) -> None:
        t = (await self.r.readexactly(1))[0]
        if t != T_INIT:
            raise ConnectionError(f"expected SESS_INIT, got type {t}")
        ka, smru, tmru, nlen = struct.unpack(">HQQH", await self.r.readexactly(20))
        nid = (await self.r.readexactly(nlen)).decode("utf-8")
        (elen,) = struct.unpack(">I", await self.r.readexactly(4))
        await self.r.readexactly(elen)
        self.peer = {"keepalive": min(ka, self.keepalive), "segment_mru": smru,
                     "transfer_mru": tmru, "node_id": nid}

    # -- messages (RFC 9174 §5) --
    async def read_message(self) -> tuple[int, dict]:
        while True:
            t = (await self.r.readexactly(1))[0]
            if t == T_KEEPALIVE:
                self.seen.append((t, {}))
                continue
            if t == T_SEGMENT:
                flags, tid = struct.unpack(">BQ", await self.r.readexactly(9))
                total = None
                if flags & F_START:
                    (elen,) = struct.unpack(">I", await self.r.readexactly(4))
                    ext = await self.r.readexactly(elen)
                    i = 0
                    while i < elen:
                        _iflags, itype, ilen = struct.unpack(">BHH", ext[i:i + 5])
                        if itype == 1:
                            (total,) = struct.unpack(">Q", ext[i + 5:i + 5 + ilen])
                        i += 5 + ilen
                (dlen,) = struct.unpack(">Q", await self.r.readexactly(8))
                if dlen > self.segment_mru:
                    raise ConnectionError("segment over our MRU")
                msg = {"flags": flags, "id": tid, "total": total,
                       "data": await self.r.readexactly(dlen)}
            elif t == T_ACK:
                flags, tid, length = struct.unpack(">BQQ", await self.r.readexactly(17))
                msg = {"flags": flags, "id": tid, "length": length}
            elif t == T_REFUSE:
                reason, tid = struct.unpack(">BQ", await self.r.readexactly(9))
                msg = {"reason": reason, "id": tid}
            elif t == T_TERM:
                flags, reason = await self.r.readexactly(2)
                msg = {"flags": flags, "reason": reason}
            elif t == T_REJECT:
                reason, header = await self.r.readexactly(2)
                msg = {"reason": reason, "header": header}
            else:
                raise ConnectionError(f"unexpected message type {t}")
            self.seen.append((t, msg))
            return t, msg

    async def send_bundle(self, data: bytes, segment: int | None = None) -> list[int]:
        """Send one bundle as a transfer; returns the acknowledged lengths seen."""
        seg = min(segment or self.peer["segment_mru"], self.peer["segment_mru"])
        tid = self.next_id
        self.next_id += 1
        chunks = [data[i:i + seg] for i in range(0, len(data), seg)] or [b""]
        for n, chunk in enumerate(chunks):
            flags = (F_START if n == 0 else 0) | (F_END if n == len(chunks) - 1 else 0)
            msg = struct.pack(">BBQ", T_SEGMENT, flags, tid)
            if flags & F_START:
                ext = b""
                if len(chunks) > 1:  # Transfer Length extension, type 1, not critical
                    ext = struct.pack(">BHHQ", 0, 1, 8, len(data))
                msg += struct.pack(">I", len(ext)) + ext
            self.w.write(msg + struct.pack(">Q", len(chunk)) + chunk)
        await self.w.drain()
        acks = []
        while True:
            t, m = await self.read_message()
            if t == T_ACK and m["id"] == tid:
                acks.append(m["length"])
                if m["flags"] & F_END:
                    assert m["length"] == len(data)
                    return acks
            elif t == T_REFUSE and m["id"] == tid:
                raise ConnectionRefusedError(f"refused, reason {m['reason']}")
            elif t == T_TERM:
                raise ConnectionError("peer terminated")

    async def recv_bundle(self) -> bytes:
        """Receive one transfer, acknowledging every segment cumulatively."""
        buf = b""
        total = None
        while True:
            t, m = await self.read_message()
            if t != T_SEGMENT:
                raise ConnectionError(f"expected XFER_SEGMENT, got {t}: {m}")
            if m["flags"] & F_START:
                buf, total = b"", m["total"]
            buf += m["data"]
            self.w.write(struct.pack(">BBQQ", T_ACK, m["flags"], m["id"], len(buf)))
            await self.w.drain()
            if m["flags"] & F_END:
                assert total is None or total == len(buf)
                return buf

    async def terminate(self, reason: int = 0) -> dict:
        self.w.write(bytes([T_TERM, 0, reason]))
        await self.w.drain()
        while True:
            t, m = await self.read_message()
            if t == T_TERM:
                assert m["flags"] & 1, "SESS_TERM reply must carry the REPLY flag"
                self.w.close()
                return m

    async def expect_termination(self) -> dict:
        t, m = await self.read_message()
        assert t == T_TERM and not m["flags"] & 1
        self.w.write(bytes([T_TERM, 1, m["reason"]]))
        await self.w.drain()
        self.w.close()
        return m


async def connect(host: str, port: int, *, node_id: str = "dtn://ref/", tls: ssl.SSLContext | None = None,
                  server_hostname: str | None = None, segment_mru: int = 1 << 20,
                  transfer_mru: int = 1 << 24, keepalive: int = 60) -> RefPeer:
    r, w = await asyncio.open_connection(host, port)
    p = RefPeer(r, w, True, node_id, segment_mru, transfer_mru, keepalive)
    await p.negotiate(tls, server_hostname or host)
    return p


async def listen(handler, *, node_id: str = "dtn://ref/", tls: ssl.SSLContext | None = None,
                 segment_mru: int = 1 << 20, transfer_mru: int = 1 << 24, keepalive: int = 60):
    """Start a reference passive entity on 127.0.0.1:0; ``handler(peer)`` runs per session."""
    async def on_conn(r, w):
        p = RefPeer(r, w, False, node_id, segment_mru, transfer_mru, keepalive)
        try:
            await p.negotiate(tls)
            await handler(p)
        finally:
            w.close()
    return await asyncio.start_server(on_conn, "127.0.0.1", 0)
