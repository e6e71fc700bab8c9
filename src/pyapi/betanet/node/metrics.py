"""Prometheus metrics of a running node (text format over HTTP on ``network.metrics_listen``).

Collected at scrape time from the node (docs/node.md "Metrics"):

- ``betanet_node_events_total{event}``: the node's counters (messages accepted, acked,
  received, expired, fallbacks, retransmissions, drops by reason, relay custody ...);
- ``betanet_node_sent_total{transport}`` / ``betanet_node_send_failed_total{transport}``;
- ``betanet_node_link_latency_ms{transport,peer}``, ``..._link_energy_mj``, ``..._link_failure``:
  the measurements fed to the Navigator, for every peer a link reaches now;
- ``betanet_node_link_reachable_peers{transport}``;
- ``betanet_node_store{queue}``: outbox pending/acked/failed, inbox held/ready/delivered,
  bundles and bundle bytes (refreshed every second).
"""
from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["NodeCollector", "serve_metrics"]


class NodeCollector:
    def __init__(self, node) -> None:
        self.node = node
        self.store_counts: dict[str, int] = {}

    async def refresh(self) -> None:
        while True:
            try:
                self.store_counts = await self.node.store.counts()
            except Exception:
                pass
            await asyncio.sleep(1.0)

    def collect(self):
        n = self.node
        ev = CounterMetricFamily("betanet_node_events", "node events by kind", labels=["event"])
        sent = CounterMetricFamily("betanet_node_sent", "messages sent per transport", labels=["transport"])
        failed = CounterMetricFamily("betanet_node_send_failed", "failed sends per transport",
                                     labels=["transport"])
        for k, v in sorted(n.counters.items()):
            if k.startswith("sent_"):
                sent.add_metric([k[5:]], v)
            elif k.startswith("send_failed_"):
                failed.add_metric([k[12:]], v)
            else:
                ev.add_metric([k], v)
        yield ev
        yield sent
        yield failed
        lat = GaugeMetricFamily("betanet_node_link_latency_ms", "link latency (EWMA)", labels=["transport", "peer"])
        en = GaugeMetricFamily("betanet_node_link_energy_mj", "modelled energy per 1 KiB message",
                               labels=["transport", "peer"])
        fail = GaugeMetricFamily("betanet_node_link_failure", "link failure estimate", labels=["transport", "peer"])
        reach = GaugeMetricFamily("betanet_node_link_reachable_peers", "peers reachable now", labels=["transport"])
        for link in n.links:
            r = link.reaches()
            reach.add_metric([link.transport], len(r))
            for p in sorted(r):
                m = link.measure(p)
                lat.add_metric([link.transport, p], m["latency_ms"])
                en.add_metric([link.transport, p], m["energy_mj"])
                fail.add_metric([link.transport, p], m["failure"])
        yield from (lat, en, fail, reach)
        st = GaugeMetricFamily("betanet_node_store", "outbox, inbox and bundle store sizes", labels=["queue"])
        for k, v in sorted(self.store_counts.items()):
            st.add_metric([k], v)
        yield st


def serve_metrics(node, host: str, port: int):
    """Start the HTTP exporter; returns (collector, server, thread) — the caller runs
    ``collector.refresh()`` as a task."""
    reg = CollectorRegistry()
    col = NodeCollector(node)
    reg.register(col)
    server, thread = start_http_server(port, host, registry=reg)
    return col, server, thread
