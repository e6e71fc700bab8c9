"""Peer discovery on the local network with mDNS / DNS-SD (``zeroconf``).

Each node registers ``<PeerID>._betanet._udp.local.`` whose TXT record carries its signed
peer record itself, split into binary chunks (``v=1``, ``n=<chunks>``, ``r0``..``r<n-1>``;
each TXT string stays under DNS's 255-byte limit, the whole record under ``MAX_MDNS_RECORD``
so the answer fits one multicast packet). A node that browses the service type reassembles
the record and imports it through the node, which verifies the owner's signature and the
sequence number exactly as for a record file: mDNS only carries bytes, it is never trusted.
The SRV port is the node's HTX port (informational: the endpoints are in the record).
"""
from __future__ import annotations

import asyncio
import logging

from betanet.errors import BetanetError, InvalidArgumentError
from betanet.node.peers import PeerRecord

__all__ = ["SERVICE_TYPE", "MAX_MDNS_RECORD", "MdnsDiscovery", "txt_from_record", "record_from_txt"]

log = logging.getLogger(__name__)

SERVICE_TYPE = "_betanet._udp.local."
CHUNK = 240                 # "rN=" + 240 bytes < 255, the limit of one TXT string
MAX_MDNS_RECORD = 5 * CHUNK  # with the DNS headers, one answer in a 1500-byte packet


def txt_from_record(raw: bytes) -> dict[bytes, bytes]:
    if not raw or len(raw) > MAX_MDNS_RECORD:
        raise InvalidArgumentError(f"a peer record of {len(raw)} bytes does not fit mDNS "
                                   f"(at most {MAX_MDNS_RECORD})")
    chunks = [raw[i:i + CHUNK] for i in range(0, len(raw), CHUNK)]
    return {b"v": b"1", b"n": str(len(chunks)).encode(),
            **{f"r{i}".encode(): c for i, c in enumerate(chunks)}}


def record_from_txt(props: dict) -> bytes:
    """The record bytes from a TXT dict (as zeroconf decodes it); MalformedError-like
    InvalidArgumentError for anything else."""
    if props.get(b"v") != b"1":
        raise InvalidArgumentError("not a version-1 betanet TXT record")
    try:
        n = int(props.get(b"n") or b"")
    except ValueError:
        raise InvalidArgumentError("TXT n is not a number") from None
    if not 1 <= n <= MAX_MDNS_RECORD // CHUNK:
        raise InvalidArgumentError(f"TXT n={n} out of range")
    parts = [props.get(f"r{i}".encode()) for i in range(n)]
    if any(not p for p in parts):
        raise InvalidArgumentError("TXT record chunk missing")
    return b"".join(parts)


def _host_addresses() -> list[str]:
    import ifaddr
    return sorted({ip.ip for a in ifaddr.get_adapters() for ip in a.ips
                   if isinstance(ip.ip, str) and not ip.ip.startswith("127.")})


class MdnsDiscovery:
    """Announce ``record`` and import every record other nodes announce into ``node``."""

    def __init__(self, node, record: PeerRecord, port: int, *, interfaces=None) -> None:
        self.node, self.record, self.port = node, record, port
        self.interfaces = interfaces
        self._zc = None
        self._browser = None
        self._info = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        from zeroconf import InterfaceChoice, ServiceInfo
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf
        txt = txt_from_record(self.record.raw)      # refuse before touching the network
        self._zc = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All)
        # a resolver completes only with the host's addresses (A records), so give them
        self._info = ServiceInfo(SERVICE_TYPE, f"{self.record.peer}.{SERVICE_TYPE}", port=self.port,
                                 properties=txt, server=f"{self.record.peer.lower()}.local.",
                                 parsed_addresses=_host_addresses())
        await self._zc.async_register_service(self._info, allow_name_change=False)
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()

    def _on_change(self, zeroconf, service_type: str, name: str, state_change) -> None:
        from zeroconf import ServiceStateChange
        if state_change not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        if name == self._info.name or len(self._tasks) >= 64:
            return
        t = asyncio.ensure_future(self._fetch(name))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _fetch(self, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        try:
            raw = record_from_txt(info.properties or {})
            rec = PeerRecord.decode(raw)
            if f"{rec.peer}.{SERVICE_TYPE}" != name:
                raise InvalidArgumentError(f"record of {rec.peer} announced as {name}")
            held = self.node.peers.find(rec.peer)
            if held is not None and held.seq >= rec.seq:
                return
            self.node.add_peer(raw)                  # verifies the owner's signature
        except BetanetError as e:
            self.node.count("mdns_refused")
            log.warning("mDNS record %s refused: %s", name, e)
            return
        self.node.count("mdns_imported")
        log.info("peer %s found by mDNS", rec.peer)
