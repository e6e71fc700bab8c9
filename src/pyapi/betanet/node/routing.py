"""Routing mixin of :class:`~betanet.node.node.Node`: links' measurements into the Navigator,
the QoS policy (battery/thermal), and carrying one sealed envelope to a destination — the
frontier best first with fallback, frames with FEC on lossy links, a configured custodian,
or the bundle agent (docs/node.md "Fallback policy").

Shared by the three senders of sealed envelopes: the outbox (sending.py), end-to-end
acknowledgments and relayed frames (receiving.py). A mixin, not a helper object, because
it reads and writes the node's own state (links, peers, counters, events, the handed-to-DTN
table that acknowledgments clear); that state is created in one place, ``Node.__init__``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from betanet.errors import BetanetError, LimitExceededError, NoPathError, NotFoundError
from betanet.navigator import QoS
from betanet.node import envelope as env
from betanet.node.handles import Attempt, DeliveryHandle
from betanet.node.links import LinkError
from betanet.node.power import constrained

__all__ = ["Routing"]

log = logging.getLogger(__name__)


class Routing:
    def _link(self, transport: str):
        for link in self.links:
            if link.transport == transport:
                return link
        return None

    def _sync_navigator(self) -> None:
        """Links' current reach and measurements into the Navigator."""
        for link in self.links:
            reach = link.reaches()
            for rec in self.peers:
                if rec.peer == self.me:
                    continue
                if rec.peer in reach:
                    self.nav.observe(self.me, rec.peer, link.transport, **link.measure(rec.peer))
                else:
                    with contextlib.suppress(BetanetError):
                        self.nav.remove_link(self.me, rec.peer, link.transport)

    def _effective_qos(self, qos) -> tuple[QoS | str, str]:
        p = self.config["platform"]
        why = constrained(self.power.read(), p["battery_threshold"], p["thermal_limit"])
        policy = "normal" if why is None else f"energy ({why})"
        if policy != self._policy:
            self.events.append((time.time(), f"policy {self._policy} -> {policy}"))
            del self.events[:-100]
            log.info("routing policy: %s", policy)
            self._policy = policy
        if why is not None:
            return self.config["routing"]["energy_qos"], policy
        return (self.config["routing"]["qos"] if qos is None else qos), policy

    def routes(self, dest: str, qos=None, deadline_ms: float | None = None,
               privacy_budget: float | None = None) -> list:
        self._sync_navigator()
        try:
            self.nav.node_id(dest)
            return self.nav.frontier(dest, qos, deadline_ms=deadline_ms, privacy_budget=privacy_budget)
        except (NoPathError, NotFoundError):
            return []

    def _frames(self, sealed: bytes, transport: str, dest: str) -> list[bytes]:
        t = self.config["transport"]
        link = self._link(transport)
        loss = link.measure(dest).get("failure", 0.0) if link else 0.0
        parity = t["fec_parity"] if loss > t["fec_loss_threshold"] else 0
        chunk = t["chunk_size"]
        if link is not None and getattr(link, "max_frame", None):
            chunk = min(chunk, link.max_frame - 16)      # room for the chunk header
        rec = self.peers.find(dest)
        m0_ok = (getattr(link, "reliable", False) and rec is not None
                 and env.FEATURE_CHUNKS_M0 in rec.features)
        return env.frames_for(sealed, chunk, parity, m0_ok=m0_ok)

    async def _to_custodian(self, dest: str, sealed: bytes, handles: list[DeliveryHandle]) -> bool:
        """No route to ``dest``: hand the message to a reachable DTN custodian (config
        ``network.custodians``), which stores it and forwards it on its own contact."""
        for c in self.config["network"].get("custodians", []):
            if c in (dest, self.me) or c not in self.peers:
                continue
            rs = self.routes(c)
            if not rs:
                continue
            if await self._route_and_send(c, sealed, None, None, None, []):
                self.count("custody_handoffs")
                a = Attempt([self.me, c, dest], [rs[0].transport, "dtn"], "custody", time.time())
                for h in handles:
                    h.attempts.append(a)
                return True
        return False

    async def _to_dtn(self, dest: str, sealed: bytes, expires: float, key: bytes,
                      handle: DeliveryHandle | None = None) -> str | None:
        """No route and no custodian: the frames as custody bundles through the bundle agent
        (link_dtn.py), once per ``transport.dtn_resend_ms`` for one message. "new", "held"
        (handed earlier) or None (no DTN link, or it refused)."""
        link = self._link("dtn")
        if link is None:
            return None
        last = self._bundled.get(key)
        if last is not None and time.monotonic() - last < link.resend_s:
            return "held"
        try:
            frames = self._frames(sealed, "dtn", dest)
            for i, f in enumerate(frames):
                await link.bundle(dest, f, expires)
                if handle is not None:
                    handle._chunk(i + 1, len(frames))
        except LinkError as e:
            self.count("send_failed_dtn")
            log.info("bundle agent: %s", e)
            return None
        self._bundled[key] = time.monotonic()
        self._bundled.move_to_end(key)
        while len(self._bundled) > 100_000:
            self._bundled.popitem(last=False)
        self.count("sent_dtn")
        return "new"

    async def _route_and_send(self, dest: str, sealed: bytes, qos, deadline_ms, privacy_budget,
                              handles: list[DeliveryHandle]) -> bool:
        hop_timeout = self.config["routing"]["hop_timeout_ms"] / 1000
        tried = 0
        for r in self.routes(dest, qos, deadline_ms, privacy_budget):
            link = self._link(r.transport)
            if link is None:
                continue
            if tried:
                self.count("fallbacks")
                self.events.append((time.time(), f"fallback to {r.transport} for {dest}"))
                del self.events[:-100]
            tried += 1
            try:
                frames = self._frames(sealed, r.transport, dest)
                n = len(frames)
                for h in handles:
                    h._chunk(0, n)
                sent = 0

                async def one(f: bytes) -> None:
                    nonlocal sent
                    await link.send(r.next_hop, f, hop_timeout)
                    sent += 1
                    for h in handles:
                        h._chunk(sent, n)
                if n > 1 and getattr(link, "pipelined", False):
                    # chunks of one message in flight together, not one hop round trip each
                    errs = [e for e in await asyncio.gather(*(one(f) for f in frames),
                                                            return_exceptions=True)
                            if isinstance(e, BaseException)]
                    if errs:
                        raise errs[0]
                else:
                    for f in frames:
                        await one(f)
            except (LinkError, LimitExceededError) as e:
                self.count(f"send_failed_{r.transport}")
                a = Attempt(r.path, r.transports, f"failed: {e}", time.time())
                for h in handles:
                    h.attempts.append(a)
                continue
            self.count(f"sent_{r.transport}")
            a = Attempt([str(p) for p in r.path], r.transports, "ok", time.time())
            for h in handles:
                h.attempts.append(a)
            return True
        return False
