"""The node's store-and-forward transport: node frames as bundles through the bundle protocol
agent (:class:`betanet.dtn.node.Node`), in the node's own SQLite store file.

When no route reaches a destination now (and no custodian takes it), the node hands each
frame of the sealed message to this link: one bundle per frame, with custody, to the
destination's node endpoint (``<its DTN node id>`` + ``node``: ``dtn://<PeerID>/node``, or
``ipn:N.16`` for an ``ipn`` node), alive until the message's deadline. The agent keeps it in
the ``bundles`` table beside the node's outbox and inbox, and forwards it over its
convergence layers (TCPCL, MTCP, UDP, HTX listeners and links) with the configured
strategy (static routes, CGR over a contact plan, epidemic, spray-and-wait) whenever a
contact is up. At the destination the registration hands the frame to the node like any
link (``on_frame``), which commits it to the inbox before the bundle is marked delivered
and custody accepted; a frame the node refuses goes back to the custodian as a custody
refusal (it keeps the bundle and offers it again after its bounded back-off). The
end-to-end acknowledgment travels back the same way when nothing else reaches the sender.

Configuration: ``transport.dtn_config`` names a ``betanet dtn`` YAML file (docs/dtn.md
"Configuration file": ``routing``, ``listen``, ``peers``, ``store.max_*``,
``node.custody``). Its ``node.id`` is optional (default ``dtn://<PeerID>/``; set
``ipn:N.0`` to route with CGR, which needs ipn node numbers); ``store.path``,
``node.register`` and ``node.duration`` belong to the node and are refused there.

This link is not a Navigator route (``reaches()`` is empty): it is the fallback the node
takes after the routes of the frontier and the custodians.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from betanet.configschema import ConfigError, load_yaml
from betanet.dtn.eid import SCHEME_IPN, EID
from betanet.dtn.store import BundleState, BundleStore
from betanet.errors import BetanetError, InvalidArgumentError
from betanet.node.links import LinkError, Taken

__all__ = ["DtnLink", "load_dtn_config", "node_endpoint", "NODE_SERVICE"]

log = logging.getLogger(__name__)

FRAME_BYTES = 16_384       # chunk size of migrated relay rows (transport.chunk_size default)
NODE_SERVICE = 16          # ipn service number of the node endpoint ("node" demux for dtn)
HOLD_SERVICE = 17          # ... of the link's own holding endpoint ("relay-hold" for dtn)
RECORD_WAIT_S = 60.0       # a migrated relay row waits this long for its destination's record
_NODE_OWNS = [("node", "register"), ("node", "duration"), ("store", "path")]


def load_dtn_config(path: str, peer_id: str) -> dict:
    """The ``betanet dtn`` config a node runs its agent with; the keys the node owns refused."""
    from betanet.dtn import config as dconfig
    raw = load_yaml(path) or {}
    for section, key in _NODE_OWNS:
        if isinstance(raw, dict) and isinstance(raw.get(section), dict) and key in raw[section]:
            raise ConfigError(f"{path}: {section}.{key} is set by the node (transport.dtn_config); "
                              "remove it")
    cfg = dconfig.load(path)
    if not cfg["node"]["id"]:
        cfg["node"]["id"] = f"dtn://{peer_id}/"
    nid = EID.parse(cfg["node"]["id"])
    if nid.scheme != SCHEME_IPN and cfg["routing"]["strategy"] == "cgr":
        raise ConfigError(f"{path}: routing.strategy cgr needs an ipn node id (node.id: ipn:N.0)")
    if str(nid) != str(nid.node_id):
        raise ConfigError(f"{path}: node.id must be a node id (ipn:N.0 or dtn://name/), got {nid}")
    return cfg


def node_endpoint(node_id: EID | str) -> EID:
    n = (EID.parse(node_id) if isinstance(node_id, str) else node_id).node_id
    if n.scheme == SCHEME_IPN:
        return EID.ipn(n.node, NODE_SERVICE)
    return EID.parse(f"{n}node")


class DtnLink:
    """Node frames as custody bundles over the agent's convergence layers."""

    transport = "dtn"
    reliable = True            # custody bundles over TCPCL
    max_frame = None

    def __init__(self, me: str, store_path: str, peers: Any, dtn_cfg: dict, *,
                 resend_s: float = 600.0) -> None:
        from betanet.dtn.build import Endpoints, build_node
        self.me, self.peers, self.cfg = me, peers, dtn_cfg
        self.resend_s = resend_s
        self.node_id = EID.parse(dtn_cfg["node"]["id"]).node_id
        self.store_path = store_path
        self.dtn = build_node(dtn_cfg, store_path)
        self.endpoints = Endpoints()
        self.on_frame = None
        self.on_change = None
        self.counters = {"frames_bundled": 0, "frames_in": 0, "frames_refused": 0,
                         "frames_dropped": 0, "migrated": 0, "rehomed": 0}

    @property
    def ports(self) -> dict[str, list[int]]:
        return self.endpoints.ports

    # ---- life cycle ---------------------------------------------------------------------
    async def open(self) -> None:
        await self._migrate_relay_rows()
        await self.dtn.start()
        self.dtn.register(node_endpoint(self.node_id), self._deliver, custody_on_delivery=True)
        self.dtn.register(self._hold_endpoint(), self._rehome)
        await self.endpoints.open(self.dtn, self.cfg)
        log.info("dtn link %s: %s, listening %s", self.node_id, self.cfg["routing"]["strategy"],
                 {k: v for k, v in self.ports.items() if v})

    async def close(self) -> None:
        await self.endpoints.close()
        await self.dtn.close()

    def _hold_endpoint(self) -> EID:
        if self.node_id.scheme == SCHEME_IPN:
            return EID.ipn(self.node_id.node, HOLD_SERVICE)
        return EID.parse(f"{self.node_id}relay-hold")

    async def _migrate_relay_rows(self) -> None:
        """Frames an older node kept for others as raw rows (source "relay") become bundles
        before the agent starts (it would drop them as unreadable). The destination's peer
        record, which says its DTN node id, is not loaded yet at this point, so each row first
        goes to this node's own holding endpoint (``_rehome`` sends it on once the record is
        known). Bundle committed first, raw row retired after: a crash between leaves a
        duplicate, never a loss."""
        if not os.path.exists(self.store_path):
            return
        from betanet.dtn.agent import Persist, unix_to_dtn_ms
        store = BundleStore(self.store_path)
        try:
            for bid in await store.ids(BundleState.STORED, BundleState.IN_TRANSFER, BundleState.CUSTODY):
                rec = await store.get(bid)
                if rec is None or rec.source != "relay" or rec.data is None:
                    continue
                lifetime_ms = int((rec.expires_at - time.time()) * 1000)
                if lifetime_ms > 0:
                    # PeerIDs are base58 text: no NUL, so the first one ends the name
                    payload = rec.destination.encode() + b"\0" + rec.data
                    _, actions = self.dtn.agent.send(self._hold_endpoint(), payload,
                                                     now_ms=unix_to_dtn_ms(time.time()),
                                                     lifetime_ms=lifetime_ms)
                    for a in actions:
                        if isinstance(a, Persist):
                            h = a.held
                            await store.put(h.id, h.data, destination=str(h.destination),
                                            source=h.source, expires_at=rec.expires_at,
                                            priority=h.priority)
                    self.counters["migrated"] += 1
                await store.forwarded(bid)
        finally:
            await store.close()
        if self.counters["migrated"]:
            log.info("dtn link: %d relayed frames moved into the bundle agent", self.counters["migrated"])

    async def _rehome(self, d: Any) -> None:
        """A migrated relay row, once its destination's record is known (or after
        RECORD_WAIT_S: then the default ``dtn://<PeerID>/node``): its frames as custody
        bundles to the right endpoint. Marked delivered only after they are committed."""
        from betanet.dtn.agent import dtn_ms_to_unix
        from betanet.node.envelope import frames_for
        peer, sep, sealed = d.payload.partition(b"\0")
        if not sep:
            log.info("dtn link: dropped an unreadable held relay row")
            return
        name = peer.decode("ascii", "replace")
        end = time.monotonic() + RECORD_WAIT_S
        while name not in self.peers and time.monotonic() < end:
            await asyncio.sleep(0.2)      # (closing the agent cancels this: not marked, kept)
        p = d.bundle.primary
        expires = dtn_ms_to_unix(p.creation_ms + p.lifetime_ms)
        try:
            for frame in frames_for(sealed, FRAME_BYTES, 0):      # the row is a sealed message
                await self.bundle(name, frame, expires)
        except LinkError as e:
            log.info("dtn link: held relay row for %s dropped: %s", name, e)
            return
        self.counters["rehomed"] += 1

    # ---- the link interface -------------------------------------------------------------
    def _endpoint_of(self, peer: str) -> EID:
        rec = self.peers.get(peer) if peer in self.peers else None
        for e in (rec.dtn_eids if rec is not None else []):
            try:
                return node_endpoint(e)
            except BetanetError:
                continue
        return node_endpoint(f"dtn://{peer}/")

    async def bundle(self, peer: str, frame: bytes, expires: float) -> str:
        """One frame as a custody bundle to ``peer``'s node endpoint, alive until ``expires``
        (Unix seconds); returns once the bundle is committed in the store."""
        lifetime_ms = int((expires - time.time()) * 1000)
        if lifetime_ms <= 0:
            raise LinkError(f"deadline for {peer} already passed")
        try:
            bid = await self.dtn.send(self._endpoint_of(peer), frame, lifetime_ms=lifetime_ms, custody=True)
        except (InvalidArgumentError, BetanetError) as e:
            raise LinkError(f"bundle agent refused the frame for {peer}: {e}") from None
        self.counters["frames_bundled"] += 1
        return bid

    async def send(self, peer: str, frame: bytes, timeout: float) -> float:
        t0 = time.monotonic()
        await self.bundle(peer, frame, time.time() + 24 * 3600)
        return time.monotonic() - t0

    async def _deliver(self, d: Any) -> None:
        # Returning marks the bundle delivered and accepts custody: the node committed the
        # frame first. A frame the node refuses for now (inbox full, a flooding sender, ...)
        # is refused back to the custodian, which keeps it and offers it again after its
        # bounded back-off (dtn/agent.py AgentConfig custody_timeout_ms .. max_backoff_ms).
        # A frame that can never be taken (malformed, not opening, a bad signature) is
        # accepted and dropped: offering it again until its lifetime ends would only cost.
        from betanet.dtn.bundle import ReasonCode
        from betanet.dtn.node import DeliveryRefused
        outcome = await self.on_frame(d.payload) if self.on_frame is not None else Taken.REFUSED
        if not isinstance(outcome, Taken):           # a handler that only says yes or no
            outcome = Taken.TAKEN if outcome else Taken.REFUSED
        self.counters[{Taken.TAKEN: "frames_in", Taken.REFUSED: "frames_refused",
                       Taken.DROPPED: "frames_dropped"}[outcome]] += 1
        if outcome is Taken.REFUSED:
            raise DeliveryRefused(ReasonCode.TRAFFIC_PARED, "the node refused the frame")

    def reaches(self) -> set[str]:
        return set()

    def measure(self, peer: str) -> dict:
        return {}

    def stats(self) -> dict:
        out: dict[str, Any] = dict(self.counters)
        out["node_id"] = str(self.node_id)
        out["contacts"] = self.dtn.contacts
        out["held"] = len(self.dtn.agent.held)
        out["agent"] = dict(self.dtn.agent.counters)
        out["ports"] = {k: v for k, v in self.ports.items() if v}
        return out
