"""Minimal reader of classic pcap files (not pcapng): the client→server byte stream of each
TCP flow, enough to find the ClientHellos in a capture. Link types Ethernet (1), raw IP
(101, 228, 229) and BSD/Linux loopback (0, 113 SLL); IPv4 and IPv6 without extension
headers; segments reassembled by sequence number, retransmissions dropped."""
from __future__ import annotations

import struct
from pathlib import Path

from betanet.errors import MalformedError, UnsupportedError
from betanet.tls.clienthello import ClientHello, hello_bytes_needed, parse_client_hello

__all__ = ["client_hellos"]

MAX_FILE = 256 << 20
_MAX_FLOW = 1 << 17          # bytes kept per flow: a hello fits well inside


def _ip_payload(link: int, frame: bytes) -> bytes | None:
    if link == 1:                                   # Ethernet, skipping 802.1Q tags
        off, etype = 14, struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
        while etype == 0x8100 and len(frame) >= off + 4:
            etype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        return frame[off:] if etype in (0x0800, 0x86DD) else None
    if link == 113:                                 # Linux cooked capture
        return frame[16:] if len(frame) >= 16 and struct.unpack_from("!H", frame, 14)[0] in (0x0800, 0x86DD) else None
    if link == 0:                                   # BSD loopback: 4-byte family
        return frame[4:]
    if link in (101, 228, 229):
        return frame
    raise UnsupportedError(f"pcap: link type {link} not supported")


def _tcp(ip: bytes):
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6 or len(ip) < ihl:
            return None
        total = struct.unpack_from("!H", ip, 2)[0]
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl:max(ihl, min(total, len(ip)))]
    elif v == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        plen = struct.unpack_from("!H", ip, 4)[0]
        src, dst, seg = ip[8:24], ip[24:40], ip[40:40 + plen]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", seg, 0)
    doff = (seg[12] >> 4) * 4
    if doff < 20 or doff > len(seg):
        return None
    return (src, sport, dst, dport), seq, seg[doff:]


def client_hellos(path: str | Path) -> list[tuple[tuple, ClientHello]]:
    """Every ClientHello found at the start of a TCP flow in the capture: [(flow, hello)].
    Flows whose first bytes are not a well-formed hello are skipped."""
    data = Path(path).read_bytes()
    if len(data) > MAX_FILE:
        raise MalformedError(f"pcap: file larger than {MAX_FILE} bytes")
    if len(data) < 24:
        raise MalformedError("pcap: truncated global header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        raise UnsupportedError("pcap: pcapng files are not supported; convert with `editcap -F pcap`")
    else:
        raise MalformedError("pcap: not a pcap file")
    link = struct.unpack_from(e + "I", data, 20)[0] & 0x0FFFFFFF
    flows: dict[tuple, dict[int, bytes]] = {}
    order: list[tuple] = []
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(e + "I", data, pos + 8)[0]
        frame = data[pos + 16:pos + 16 + incl]
        if len(frame) < incl:
            raise MalformedError("pcap: truncated packet record")
        pos += 16 + incl
        ip = _ip_payload(link, frame)
        t = _tcp(ip) if ip is not None else None
        if t is None or not t[2]:
            continue
        flow, seq, payload = t
        segs = flows.get(flow)
        if segs is None:
            segs = flows[flow] = {}
            order.append(flow)
        if sum(map(len, segs.values())) < _MAX_FLOW:
            segs.setdefault(seq, payload)
    out = []
    for flow in order:
        segs = flows[flow]
        start = min(segs)
        stream = bytearray()
        for seq in sorted(segs):
            off = (seq - start) & 0xFFFFFFFF
            if off > len(stream):
                break                           # a gap: stop at what is contiguous
            stream += segs[seq][len(stream) - off:]
        if not stream or stream[0] != 22:
            continue
        try:
            n = hello_bytes_needed(stream)
            if n:
                out.append((flow, parse_client_hello(bytes(stream[:n]))))
        except MalformedError:
            continue
    return out
