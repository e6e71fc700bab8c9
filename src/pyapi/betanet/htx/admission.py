"""Server admission: a cap on concurrent connections and on handshakes in progress, in
total and per source address. Sans-IO: the transport adapters call ``admit`` at accept,
``established`` when the HTX handshake completes and ``release`` when the connection is
gone; shedding a connection is the ``shed`` callable they pass in.

A pending handshake is the expensive, unauthenticated state (a TLS handshake holds ~300 KB
until its timeout), so at any cap the oldest pending handshake gives way first (of the same
source address for the per-address cap); a new connection is refused only when every slot
holds an established connection.
"""
from __future__ import annotations

import collections
from typing import Callable, Hashable

from betanet.errors import InvalidArgumentError

__all__ = ["Admission"]


class Admission:
    def __init__(self, max_connections: int, max_handshakes: int, max_handshakes_per_host: int) -> None:
        for name, v in (("max_connections", max_connections), ("max_handshakes", max_handshakes),
                        ("max_handshakes_per_host", max_handshakes_per_host)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidArgumentError(f"htx serve: {name} must be a positive integer, not {v!r}")
        self.max_connections = max_connections
        self.max_handshakes = max_handshakes
        self.max_handshakes_per_host = max_handshakes_per_host
        self._live: dict[Hashable, str] = {}     # admitted and not released -> source address
        # Pending handshakes, oldest first: key -> shed callable; and per source address.
        self._pending: collections.OrderedDict[Hashable, Callable[[], None]] = collections.OrderedDict()
        self._by_host: dict[str, collections.OrderedDict[Hashable, None]] = {}
        self.counters = {"admitted": 0, "refused": 0, "shed": 0}

    @property
    def connections(self) -> int:
        return len(self._live)

    @property
    def handshakes(self) -> int:
        return len(self._pending)

    def handshakes_from(self, host: str) -> int:
        return len(self._by_host.get(host, ()))

    def admit(self, key: Hashable, host: str, shed: Callable[[], None]) -> bool:
        """A new connection from ``host``: True if admitted (as a pending handshake),
        False if refused (every slot holds an established connection). May shed older
        pending handshakes (their ``shed`` is called, and they count as released)."""
        while self.handshakes_from(host) >= self.max_handshakes_per_host:
            self._shed(next(iter(self._by_host[host])))
        while len(self._pending) >= self.max_handshakes:
            self._shed(next(iter(self._pending)))
        if len(self._live) >= self.max_connections:
            if not self._pending:
                self.counters["refused"] += 1
                return False
            self._shed(next(iter(self._pending)))
        self._live[key] = host
        self._pending[key] = shed
        self._by_host.setdefault(host, collections.OrderedDict())[key] = None
        self.counters["admitted"] += 1
        return True

    def established(self, key: Hashable) -> None:
        """The handshake completed: the connection no longer counts as pending."""
        self._unpend(key)

    def release(self, key: Hashable) -> None:
        """The connection is gone (idempotent)."""
        self._unpend(key)
        self._live.pop(key, None)

    def _unpend(self, key: Hashable) -> None:
        if self._pending.pop(key, None) is None:
            return
        host = self._live.get(key)
        hosts = self._by_host.get(host)
        if hosts is not None:
            hosts.pop(key, None)
            if not hosts:
                del self._by_host[host]

    def _shed(self, key: Hashable) -> None:
        shed = self._pending.get(key)
        self.release(key)
        self.counters["shed"] += 1
        if shed is not None:
            shed()
