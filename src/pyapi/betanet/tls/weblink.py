"""htx-web for a link that both listens and dials (the node's HTX link): what the listener
serves (decoy site, ticket key, per-prefix ticket limits), what it advertises (the ticket
publication line and the certificate's SPKI pin), and how a peer that advertises them is
dialled (Chrome's ClientHello, a fresh ticket, the pin).

The dial side follows the peer: a peer whose record carries a ticket line is reached over
htx-web whatever this node listens with; the others over plain HTX TLS.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from betanet.errors import InvalidArgumentError, MalformedError
from betanet.tls.tickets import TicketKey, TicketPublication

__all__ = ["WebLink", "check_advertised", "load_or_create_ticket_key"]

_PIN = re.compile(r"sha256//[A-Za-z0-9+/]{43}=")
MAX_TICKET_LINE = 512


def check_advertised(ticket: str | None, pin: str | None) -> None:
    """MalformedError unless both are absent, or a ticket publication line and an SPKI pin."""
    if ticket is None and pin is None:
        return
    if not isinstance(ticket, str) or not isinstance(pin, str) or len(ticket) > MAX_TICKET_LINE:
        raise MalformedError("htx-web: a peer advertises a ticket line and an SPKI pin together")
    if not _PIN.fullmatch(pin):
        raise MalformedError("htx-web: the SPKI pin is not sha256//<base64 of 32 bytes>")
    TicketPublication.from_text(ticket)              # MalformedError on a bad line


def load_or_create_ticket_key(path: str | os.PathLike) -> TicketKey:
    """The ticket key in ``path`` (created, mode 0600, when missing)."""
    if not os.path.exists(path):
        key = TicketKey.generate()
        key.save(path)
        return key
    return TicketKey.load(path)


@dataclass
class WebLink:
    """``site_root``/``ticket_key``: listen as htx-web (None: this side only dials).
    ``impersonate``: the Chrome version dialling htx-web peers (None: the newest target).
    ``rate``/``burst``: ticket attempts per second and bucket size per source /24 (IPv4) or
    /56 (IPv6); peers behind one prefix share them (docs/stealth.md, "Rate limits")."""
    site_root: str | os.PathLike | None = None
    ticket_key: TicketKey | None = None
    impersonate: str | None = None
    rate: float = 5.0
    burst: float = 20.0

    def __post_init__(self) -> None:
        from betanet.tls.htxweb import CHROME_TARGETS
        if self.impersonate is not None and self.impersonate not in CHROME_TARGETS:
            raise InvalidArgumentError(f"htx-web: impersonate must be one of {CHROME_TARGETS}")
        if (self.site_root is None) != (self.ticket_key is None):
            raise InvalidArgumentError("htx-web: a listener needs both site_root and ticket_key")
        if self.site_root is not None and not os.path.isdir(self.site_root):
            raise InvalidArgumentError(f"htx-web: decoy site {str(self.site_root)!r} is not a folder")
        if not (self.rate > 0 and self.burst >= 1):
            raise InvalidArgumentError("htx-web: ticket rate > 0 and burst >= 1")
        self.pin: str | None = None
        self.server = None                   # the WebServer once listening (its verifier counts tickets)

    @property
    def listens(self) -> bool:
        return self.site_root is not None

    def serve_options(self, certfile: str, keyfile: str) -> dict:
        """``betanet.htx.serve`` keyword arguments for the htx-web listener."""
        from betanet.tls.htxweb import WebServer, server_context, spki_pin
        self.pin = spki_pin(certfile)
        self.server = WebServer(self.site_root, self.ticket_key, rate=self.rate, burst=self.burst)
        return {"transport": "htx-web", "ssl_context": server_context(certfile, keyfile), "web": self.server}

    def advertised(self) -> dict:
        """What a peer record carries for dialers (empty unless listening)."""
        if not self.listens or self.pin is None:
            return {}
        return {"htx_ticket": self.ticket_key.publication.to_text(), "htx_pin": self.pin}

    def dial_options(self, ticket: str, pin: str) -> dict:
        """``betanet.htx.connect`` keyword arguments for a peer advertising ``ticket``/``pin``."""
        from betanet.tls.htxweb import WebClient
        kw = {"impersonate": self.impersonate} if self.impersonate else {}
        return {"transport": "htx-web", "web": WebClient(ticket, pin_sha256=pin, **kw)}
