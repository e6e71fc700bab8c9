"""An application endpoint registered with ``custody_on_delivery`` may refuse a bundle: the
custodian hears a custody refusal (with the reason) and keeps the bundle, offering it again
after its bounded back-off; custody is accepted only once the application took it. Sans-IO
with injected time (the Net of test_dtn_agent), plus the asyncio Node and its store."""
from __future__ import annotations

import asyncio

from betanet.dtn import BundleFlags, ReasonCode, StatusFlags
from betanet.dtn.agent import Agent, AgentConfig, Deliver
from betanet.dtn.node import DeliveryRefused, Node
from betanet.dtn.routing import StaticRoutes

from test_dtn_agent import ALL_UP, T0, Net


class RefusingNet(Net):
    """Deliveries go through ``verdict(name, deliver)``: "take", "refuse" or "hold" (pending)."""

    def __init__(self, verdict, **agents) -> None:
        super().__init__(**agents)
        self.verdict = verdict
        self.pending: list[tuple[str, Deliver]] = []

    def run(self, name, actions, now):
        rest = []
        for act in actions:
            if not isinstance(act, Deliver):
                rest.append(act)
                continue
            super().run(name, rest, now)
            rest = []
            v = self.verdict(name, act)
            if v == "take":
                super().run(name, [act], now)
            elif v == "refuse":
                self.stores[name].pop(act.bundle_id, None)      # the adapter removes it
                super().run(name, self.agents[name].refuse_delivery(act, ReasonCode.TRAFFIC_PARED,
                                                                    now_ms=now), now)
            else:
                self.pending.append((name, act))
        super().run(name, rest, now)


def chain(verdict, **cfg) -> RefusingNet:
    config = AgentConfig(**cfg)
    a = Agent("ipn:1.0", strategy=StaticRoutes([("ipn:3.*", "ipn:2.0")]), config=config)
    b = Agent("ipn:2.0", strategy=StaticRoutes([("ipn:1.*", "ipn:1.0"), ("*", "ipn:3.0")]), config=config)
    c = Agent("ipn:3.0", strategy=StaticRoutes([("*", "ipn:2.0")]), config=config)
    c.register("ipn:3.1", custody_on_delivery=True)
    return RefusingNet(verdict, a=a, b=b, c=c)


def test_refused_delivery_goes_back_to_the_custodian_which_keeps_it_and_offers_it_again():
    answers = ["refuse", "take"]
    net = chain(lambda name, d: answers.pop(0), custody_timeout_ms=500, max_backoff_ms=4000)
    a, b, c = (net.agents[n] for n in "abc")
    bid, acts = a.send("ipn:3.1", b"later", now_ms=T0, custody=True, report_to="ipn:1.0",
                       flags=BundleFlags.REPORT_DELETION)
    net.run("a", acts, T0)
    net.settle(T0, ALL_UP)
    # b took custody from a; c refused it: b holds it still, told why; a heard the deletion
    assert bid not in a.held and bid in b.held and b.held[bid].custody
    assert b.counters["custody_refused"] == 1 and b.counters["custody_released"] == 0
    assert c.counters["delivery_refused"] == 1 and c.counters["custody_accepted"] == 0
    assert net.delivered["c"] == []
    rep = [r.report for r in net.reports["a"]]
    assert rep and rep[0].asserted == StatusFlags.DELETED and rep[0].reason == ReasonCode.TRAFFIC_PARED
    # b offers it again after its back-off (bounded by max_backoff_ms); now c takes it
    net.settle(T0 + 4000, ALL_UP)
    assert [d.bundle_id for d in net.delivered["c"]] == [bid]
    assert bid not in b.held and b.counters["custody_released"] == 1
    assert c.counters["custody_accepted"] == 1


def test_custody_waits_for_the_delivery_and_a_copy_meanwhile_does_not_release_it():
    net = chain(lambda name, d: "hold", custody_timeout_ms=500)
    a, b, c = (net.agents[n] for n in "abc")
    bid, acts = a.send("ipn:3.1", b"slow app", now_ms=T0, custody=True)
    net.run("a", acts, T0)
    net.settle(T0, ALL_UP)
    assert len(net.pending) == 1 and bid in b.held            # no signal yet: b keeps custody
    net.settle(T0 + 2000, ALL_UP)                              # b's timer: the same bundle again
    assert b.counters["custody_retransmit"] >= 1 and c.counters["duplicate"] >= 1
    assert bid in b.held and b.counters["custody_released"] == 0
    name, d = net.pending.pop()
    Net.run(net, name, [d], T0 + 2000)                          # the application takes it now
    net.settle(T0 + 2000, ALL_UP)
    assert bid not in b.held and b.counters["custody_released"] == 1


def test_fragments_and_plain_registrations_accept_custody_on_arrival():
    net = chain(lambda name, d: "hold", custody_timeout_ms=500)
    a, b, c = (net.agents[n] for n in "abc")
    c.register("ipn:3.2")                                      # no custody_on_delivery
    bid, acts = a.send("ipn:3.2", b"plain", now_ms=T0, custody=True)
    net.run("a", acts, T0)
    net.settle(T0, ALL_UP)
    assert len(net.pending) == 1 and bid not in b.held and c.counters["custody_accepted"] == 1


def test_node_callback_refusal_removes_the_bundle_and_a_copy_is_delivered(tmp_path):
    """The asyncio Node: DeliveryRefused from the callback removes the bundle (id too), so
    the same bundle offered again is new and delivered; taking it marks it delivered."""
    async def go():
        n = Node("ipn:5.0", str(tmp_path / "n.db"), strategy=StaticRoutes([("*", "ipn:6.0")]))
        await n.start()
        try:
            seen = []

            def app(d):
                seen.append(d.payload)
                if len(seen) == 1:
                    raise DeliveryRefused(ReasonCode.TRAFFIC_PARED)
            n.register("ipn:5.1", app, custody_on_delivery=True)
            other = Agent("ipn:6.0")
            _, acts = other.send("ipn:5.1", b"again", now_ms=n.now_ms(), custody=True)
            data = acts[0].held.data
            await n.receive_bundle(data)
            for _ in range(200):
                if n.agent.counters["delivery_refused"]:
                    break
                await asyncio.sleep(0.01)
            assert n.agent.counters["delivery_refused"] == 1
            assert await n.store.get(acts[0].held.id) is None          # forgotten, id too
            await n.receive_bundle(data)                               # offered again
            for _ in range(200):
                if n.agent.counters["delivered"]:
                    break
                await asyncio.sleep(0.01)
            assert seen == [b"again", b"again"] and n.agent.counters["delivered"] == 1
            assert (await n.store.get(acts[0].held.id)).data is None   # delivered: id kept
        finally:
            await n.close()
    asyncio.run(asyncio.wait_for(go(), 30))
