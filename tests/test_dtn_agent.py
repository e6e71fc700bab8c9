"""The sans-IO bundle protocol agent, driven with injected time and an in-memory "store"."""
from __future__ import annotations

import pytest

from betanet.cgr import ContactPlan
from betanet.dtn import Bundle, BundleFlags, EID, ReasonCode, StatusFlags
from betanet.dtn.agent import (Agent, AgentConfig, Deliver, Forget, Persist, ReportReceived,
                               Transmit)
from betanet.dtn.bundle import CanonicalBlock
from betanet.dtn.extensions import (BLOCK_CUSTODY, BLOCK_SPRAY, RECORD_SUMMARY_VECTOR, CustodySignal,
                                    decode_summary, decode_uint, encode_summary, record_type,
                                    summary_digest)
from betanet.dtn.routing import ContactGraphRouting, Epidemic, SprayAndWait, StaticRoutes
from betanet.errors import InvalidArgumentError, MalformedError

T0 = 800_000_000_000   # DTN ms


class Net:
    """Agents, a dict per agent as the durable store, and a wire between them."""

    def __init__(self, **agents: Agent) -> None:
        self.agents = agents
        self.stores: dict[str, dict[str, str]] = {n: {} for n in agents}
        self.delivered: dict[str, list[Deliver]] = {n: [] for n in agents}
        self.reports: dict[str, list[ReportReceived]] = {n: [] for n in agents}
        self.wire: list[tuple[str, str, Transmit]] = []   # (from, to, tx)
        self.forgotten: dict[str, list[str]] = {n: [] for n in agents}

    def by_id(self, node_id: str) -> str:
        return next(n for n, a in self.agents.items() if a.name == node_id)

    def run(self, name: str, actions: list, now: int) -> None:
        a = self.agents[name]
        for act in actions:
            if isinstance(act, Persist):
                new = act.held.id not in self.stores[name]
                self.stores[name][act.held.id] = "held"
                self.run(name, a.persisted(act.held.id, new, now_ms=now), now)
            elif isinstance(act, Transmit):
                self.wire.append((name, act.peer, act))
            elif isinstance(act, Deliver):
                self.delivered[name].append(act)
                self.stores[name][act.bundle_id] = "delivered"
                self.run(name, a.delivered(act, now_ms=now), now)
            elif isinstance(act, Forget):
                self.forgotten[name].append(act.bundle_id)
                self.stores[name][act.bundle_id] = "gone"
            elif isinstance(act, ReportReceived):
                self.reports[name].append(act)

    def step(self, now: int, up: dict[str, list[str]], *, drop: bool = False) -> int:
        """Every agent polls with its contacts; the wire carries what they send (acknowledged)."""
        for name, a in self.agents.items():
            self.run(name, a.poll(now, up.get(name, [])), now)
        moved = 0
        wire, self.wire = self.wire, []
        for src, peer, tx in wire:
            dst = self.by_id(peer)
            if not drop:
                self.run(dst, self.agents[dst].receive(tx.data, now_ms=now), now)
            self.run(src, self.agents[src].sent(tx.bundle_id, peer, not drop, now_ms=now), now)
            moved += 1
        return moved

    def settle(self, now: int, up: dict[str, list[str]], rounds: int = 20) -> None:
        for _ in range(rounds):
            if not self.step(now, up):
                return


def chain(strategy_b=None, **cfg) -> Net:
    config = AgentConfig(**cfg)
    a = Agent("ipn:1.0", strategy=StaticRoutes([("ipn:3.*", "ipn:2.0")]), config=config)
    b = Agent("ipn:2.0", strategy=strategy_b or StaticRoutes([("ipn:1.*", "ipn:1.0"), ("*", "ipn:3.0")]),
              config=config)
    c = Agent("ipn:3.0", strategy=StaticRoutes([("*", "ipn:2.0")]), config=config)
    c.register("ipn:3.1")
    return Net(a=a, b=b, c=c)


ALL_UP = {"a": ["ipn:2.0"], "b": ["ipn:1.0", "ipn:3.0"], "c": ["ipn:2.0"]}
MIDDLE_DOWN = {"a": ["ipn:2.0"], "b": ["ipn:1.0"], "c": ["ipn:2.0"]}


def test_chain_delivers_once_and_reports_delivery_to_the_source():
    net = chain()
    bid, acts = net.agents["a"].send("ipn:3.1", b"hello", now_ms=T0, flags=BundleFlags.REPORT_DELIVERY)
    net.run("a", acts, T0)
    net.settle(T0, ALL_UP)
    assert [bytes(d.bundle.payload) for d in net.delivered["c"]] == [b"hello"]
    assert net.delivered["c"][0].bundle_id == bid
    rep = net.reports["a"]
    assert len(rep) == 1 and rep[0].report.asserted == StatusFlags.DELIVERED
    assert rep[0].sender == EID.parse("ipn:3.0")
    # previous node block and hop-by-hop forgetting
    assert net.delivered["c"][0].bundle.previous_node == EID.parse("ipn:2.0")
    assert bid in net.forgotten["a"] and bid in net.forgotten["b"]


def test_bundle_waits_until_the_contact_opens():
    net = chain()
    bid, acts = net.agents["a"].send("ipn:3.1", b"wait", now_ms=T0)
    net.run("a", acts, T0)
    net.settle(T0, MIDDLE_DOWN)
    assert not net.delivered["c"] and bid in net.agents["b"].held
    net.settle(T0 + 60_000, MIDDLE_DOWN)
    assert bid in net.agents["b"].held
    net.settle(T0 + 120_000, ALL_UP)
    assert len(net.delivered["c"]) == 1 and not net.agents["b"].held


def test_bundle_that_outlives_its_lifetime_while_waiting_is_deleted_and_reported():
    net = chain()
    bid, acts = net.agents["a"].send("ipn:3.1", b"late", now_ms=T0, lifetime_ms=10_000,
                                     flags=BundleFlags.REPORT_DELETION)
    net.run("a", acts, T0)
    net.settle(T0, MIDDLE_DOWN)
    net.settle(T0 + 11_000, ALL_UP)
    assert not net.delivered["c"]
    assert net.agents["b"].counters["expired"] == 1
    rep = [r.report for r in net.reports["a"]]
    assert rep and rep[0].asserted == StatusFlags.DELETED and rep[0].reason == ReasonCode.LIFETIME_EXPIRED


def test_expired_bundle_on_arrival_is_dropped_counted_and_reported():
    b_agent = Agent("ipn:2.0")
    old = Bundle.build("ipn:3.1", "ipn:1.1", b"x", creation_ms=T0 - 20_000, lifetime_ms=10_000,
                       report_to="ipn:2.5", flags=BundleFlags.REPORT_DELETION)
    out = b_agent.receive(old.to_bytes(), now_ms=T0)
    assert b_agent.counters["expired"] == 1 and not b_agent.held
    # the report goes to ipn:2.5, an endpoint of this same node: it comes straight back
    assert b_agent.counters["reports_sent"] == 1
    assert [(type(a).__name__, a.report.reason) for a in out] == [("ReportReceived", ReasonCode.LIFETIME_EXPIRED)]


def test_hop_limit_exceeded_is_dropped_and_reported():
    net = chain()
    bid, acts = net.agents["a"].send("ipn:3.1", b"hops", now_ms=T0, hop_limit=1,
                                     flags=BundleFlags.REPORT_DELETION)
    net.run("a", acts, T0)
    net.settle(T0, ALL_UP)
    # a -> b is hop 1; b would make it 2 > 1
    assert not net.delivered["c"]
    assert net.agents["b"].counters["hop_limit"] == 1
    rep = [r.report for r in net.reports["a"]]
    assert rep and rep[0].reason == ReasonCode.HOP_LIMIT_EXCEEDED
    # a received bundle already over its limit is refused on arrival
    over = Bundle.build("ipn:3.1", "ipn:1.1", b"x", creation_ms=T0, hop_limit=1)
    blocks = [CanonicalBlock(blk.type, blk.number, b"\x82\x01\x02" if blk.type == 10 else bytes(blk.data))
              for blk in over.blocks]
    raw = Bundle(over.primary, blocks).to_bytes()
    c = Agent("ipn:3.0")
    c.register("ipn:3.1")
    assert c.receive(raw, now_ms=T0) == [] and c.counters["hop_limit"] == 1


def test_bundle_for_an_unknown_endpoint_is_dropped_and_reported():
    c = Agent("ipn:3.0")
    b = Bundle.build("ipn:3.9", "ipn:1.1", b"nobody", creation_ms=T0, report_to="ipn:1.0",
                     flags=BundleFlags.REPORT_DELETION)
    c.poll(T0, [])
    assert c.receive(b.to_bytes(), now_ms=T0) == []
    assert c.counters["no_endpoint"] == 1
    # the deletion report waits for a contact to ipn:1.0 (memory only)
    out = c.poll(T0, ["ipn:1.0"])
    assert len(out) == 1 and out[0].peer == "ipn:1.0"
    rec = Bundle.parse(out[0].data)
    from betanet.dtn import StatusReport
    r = StatusReport.decode(rec.payload)
    assert r.reason == ReasonCode.DESTINATION_UNINTELLIGIBLE and r.asserted == StatusFlags.DELETED


def test_duplicates_are_counted_not_delivered_twice():
    c = Agent("ipn:3.0")
    c.register("ipn:3.1")
    raw = Bundle.build("ipn:3.1", "ipn:1.1", b"once", creation_ms=T0).to_bytes()
    net = Net(c=c)
    net.run("c", c.receive(raw, now_ms=T0), T0)
    net.run("c", c.receive(raw, now_ms=T0), T0)
    assert len(net.delivered["c"]) == 1 and c.counters["duplicate"] == 1
    # after a restart the in-memory agent is new: the store says "not new" and that decides
    c2 = Agent("ipn:3.0")
    c2.register("ipn:3.1")
    acts = c2.receive(raw, now_ms=T0)
    assert isinstance(acts[0], Persist)
    assert c2.persisted(acts[0].held.id, False, now_ms=T0) == []
    assert c2.counters["duplicate"] == 1


def test_malformed_bytes_raise_and_are_counted():
    c = Agent("ipn:3.0")
    with pytest.raises(MalformedError):
        c.receive(b"\x9f\x00\xff", now_ms=T0)
    with pytest.raises(MalformedError):
        c.receive(Bundle.build("ipn:3.1", "ipn:1.1", b"x" * 20).to_bytes()[:-5], now_ms=T0)
    assert c.counters["malformed"] == 2


def test_unknown_block_with_delete_flag_drops_the_bundle():
    c = Agent("ipn:3.0")
    c.register("ipn:3.1")
    b = Bundle.build("ipn:3.1", "ipn:1.1", b"x", creation_ms=T0, report_to="ipn:1.0",
                     flags=BundleFlags.REPORT_DELETION,
                     extra_blocks=[CanonicalBlock(250, 5, b"\x00", flags=0x04)])
    assert c.receive(b.to_bytes(), now_ms=T0) == []
    assert c.counters["unprocessable"] == 1


def test_echo_endpoint_answers_with_the_same_payload():
    net = chain()
    a = net.agents["a"]
    a_ep = "ipn:1.77"
    a.register(a_ep)
    _bid, acts = a.send("ipn:3.7", b"ping!", now_ms=T0, source=a_ep)
    net.run("a", acts, T0)
    net.settle(T0, ALL_UP)
    assert net.agents["c"].counters["echo"] == 1
    assert [bytes(d.bundle.payload) for d in net.delivered["a"]] == [b"ping!"]


def test_custody_passes_hop_by_hop_and_each_custodian_forgets_after_the_signal():
    net = chain()
    bid, acts = net.agents["a"].send("ipn:3.1", b"custody", now_ms=T0, custody=True)
    net.run("a", acts, T0)
    net.settle(T0, MIDDLE_DOWN)
    a, b = net.agents["a"], net.agents["b"]
    assert bid not in a.held and a.counters["custody_released"] == 1
    assert b.held[bid].custody and b.counters["custody_accepted"] == 1
    net.settle(T0 + 1000, ALL_UP)
    assert len(net.delivered["c"]) == 1
    assert bid not in b.held and b.counters["custody_released"] == 1
    # the copy C got names B as its custodian
    blk = net.delivered["c"][0].bundle.block(BLOCK_CUSTODY)
    assert blk is not None


def test_custodian_retransmits_with_backoff_until_a_signal_arrives():
    net = chain(custody_timeout_ms=1000)
    bid, acts = net.agents["a"].send("ipn:3.1", b"lost signals", now_ms=T0, custody=True)
    net.run("a", acts, T0)
    a = net.agents["a"]
    # the link acknowledges but b never gets it (and so never signals)
    sent_at = []
    for t in range(0, 8000, 100):
        for tx in a.poll(T0 + t, ["ipn:2.0"]):
            if isinstance(tx, Transmit) and tx.bundle_id == bid:
                sent_at.append(t)
                a.sent(bid, "ipn:2.0", True, now_ms=T0 + t)
    assert sent_at[:3] == [0, 1000, 3000]         # backoff 1 s, 2 s, 4 s ...
    assert a.counters["custody_retransmit"] >= 2 and bid in a.held


def test_forged_custody_signal_does_not_release_custody():
    a = Agent("ipn:1.0", strategy=StaticRoutes([("*", "ipn:2.0")]))
    bid, acts = a.send("ipn:3.1", b"x", now_ms=T0, custody=True)
    a.persisted(bid, True, now_ms=T0)
    tx = a.poll(T0, ["ipn:2.0"])
    a.sent(bid, "ipn:2.0", True, now_ms=T0)
    rec = CustodySignal(0, (bytes.fromhex(bid),)).encode()
    forged = Bundle.build("ipn:1.0", "ipn:66.0", rec, creation_ms=T0, flags=BundleFlags.ADMIN_RECORD,
                          report_to="dtn:none")
    assert a.receive(forged.to_bytes(), now_ms=T0) == []
    assert bid in a.held and a.counters["custody_forged"] == 1
    assert tx


def test_custody_refused_when_the_store_is_full_is_signalled_and_retried():
    net = chain(custody_timeout_ms=500)
    a, b = net.agents["a"], net.agents["b"]
    bid, acts = a.send("ipn:3.1", b"full", now_ms=T0, custody=True, report_to="ipn:1.0",
                       flags=BundleFlags.REPORT_DELETION)
    net.run("a", acts, T0)
    tx = a.poll(T0, ["ipn:2.0"])[0]
    acts = b.receive(tx.data, now_ms=T0)
    out = b.refused(acts[0].held.id, ReasonCode.DEPLETED_STORAGE, now_ms=T0)
    net.run("b", out, T0)
    net.run("a", a.sent(bid, "ipn:2.0", True, now_ms=T0), T0)
    net.step(T0, {"b": ["ipn:1.0"]})
    assert a.counters["custody_refused"] == 1 and bid in a.held
    rep = [r.report for r in net.reports["a"]]
    assert rep and rep[0].reason == ReasonCode.DEPLETED_STORAGE
    # the refusal signal carries the reason
    assert b.counters["refused"] == 1
    # a tries again after its backoff, b has room now
    net.settle(T0 + 10_000, ALL_UP)
    assert len(net.delivered["c"]) == 1 and bid not in a.held


def test_fragments_are_reassembled_before_delivery():
    c = Agent("ipn:3.0")
    c.register("ipn:3.1")
    net = Net(c=c)
    whole = Bundle.build("ipn:3.1", "ipn:1.1", bytes(range(256)) * 20, creation_ms=T0)
    frags = whole.fragment(1500)
    assert len(frags) > 3
    for f in reversed(frags):
        net.run("c", c.receive(f, now_ms=T0), T0)
    assert len(net.delivered["c"]) == 1
    d = net.delivered["c"][0]
    assert bytes(d.bundle.payload) == bytes(range(256)) * 20
    assert len(d.parts) == len(frags) and set(d.parts) <= set(net.forgotten["c"])
    assert d.bundle_id == whole.adu_id.hex()


def test_reassembly_is_bounded():
    c = Agent("ipn:3.0", config=AgentConfig(max_reassembly=2))
    c.register("ipn:3.1")
    net = Net(c=c)
    for seq in range(5):
        frag = Bundle.build("ipn:3.1", "ipn:1.1", b"y" * 3000, creation_ms=T0, sequence=seq).fragment(1200)[0]
        net.run("c", c.receive(frag, now_ms=T0), T0)
    assert len(c._reasm) == 2 and c.counters["refused"] == 3


def test_flood_of_reports_is_bounded_in_memory():
    c = Agent("ipn:3.0", config=AgentConfig(max_volatile=100))
    for seq in range(500):
        b = Bundle.build("ipn:3.9", "ipn:1.1", b"z", creation_ms=T0, sequence=seq, report_to="ipn:1.0",
                         flags=BundleFlags.REPORT_DELETION)
        c.receive(b.to_bytes(), now_ms=T0)
    assert len(c.held) == 100 and c.counters["volatile_dropped"] == 400
    assert c.counters["no_endpoint"] == 500


def test_restore_takes_back_custody_and_undelivered_bundles():
    a = Agent("ipn:1.0", strategy=StaticRoutes([("*", "ipn:2.0")]))
    bid, acts = a.send("ipn:3.1", b"kept", now_ms=T0, custody=True)
    data = acts[0].held.data
    a2 = Agent("ipn:1.0", strategy=StaticRoutes([("*", "ipn:2.0")]))
    assert a2.restore(bid, data, custody=True, received_ms=T0, now_ms=T0 + 5) == []
    assert a2.held[bid].custody
    assert [t.peer for t in a2.poll(T0 + 5, ["ipn:2.0"])] == ["ipn:2.0"]
    c = Agent("ipn:3.0")
    raw = Bundle.build("ipn:3.1", "ipn:1.1", b"undelivered", creation_ms=T0).to_bytes()
    bid2 = Bundle.parse(raw).bundle_id.hex()
    assert c.restore(bid2, raw, custody=False, received_ms=T0, now_ms=T0) == []
    _name, pending = c.register("ipn:3.1")
    assert [bytes(d.bundle.payload) for d in pending] == [b"undelivered"]


def test_send_refuses_bad_arguments():
    a = Agent("ipn:1.0")
    with pytest.raises(InvalidArgumentError):
        a.send("dtn:none", b"x", now_ms=T0)
    with pytest.raises(InvalidArgumentError):
        a.send("ipn:3.1", b"x", now_ms=T0, source="ipn:9.1")
    with pytest.raises(InvalidArgumentError):
        a.send("ipn:3.1", b"x", now_ms=T0, priority=7)
    with pytest.raises(InvalidArgumentError):
        a.register("ipn:2.1")
    with pytest.raises(InvalidArgumentError):
        a.register("ipn:1.7")    # the echo endpoint


def test_priority_orders_sending():
    a = Agent("ipn:1.0", strategy=StaticRoutes([("*", "ipn:2.0")]))
    ids = {}
    for prio in (0, 1, 2):
        bid, _ = a.send("ipn:3.1", b"p%d" % prio, now_ms=T0 + prio, priority=prio)
        a.persisted(bid, True, now_ms=T0)
        ids[bid] = prio
    out = a.poll(T0 + 10, ["ipn:2.0"])
    assert [ids[t.bundle_id] for t in out] == [2, 1, 0]


# ---- strategies ----------------------------------------------------------------------------

def test_static_routes_match_patterns_in_order():
    s = StaticRoutes([("ipn:3.*", "ipn:2.0"), ("dtn://far/*", "dtn://gw/"), ("*", "ipn:9.0")])
    assert s.next_hop("ipn:3.1") == "ipn:2.0"
    assert s.next_hop("dtn://far/inbox") == "dtn://gw/"
    assert s.next_hop("ipn:4.1") == "ipn:9.0"


def test_cgr_waits_for_the_planned_contact_and_books_volume():
    plan = ContactPlan()
    plan.add_contact(1, 2, 0, 100, 1000, owlt=0.01)
    plan.add_contact(2, 3, 50, 100, 1000, owlt=0.01)
    plan.add_contact(1, 4, 0, 100, 1000, owlt=0.01)    # a contact that leads nowhere
    cgr = ContactGraphRouting(plan, 2, epoch_ms=T0)
    b = Agent("ipn:2.0", strategy=cgr)
    raw = Bundle.build("ipn:3.1", "ipn:1.1", b"c" * 100, creation_ms=T0).to_bytes()
    acts = b.receive(raw, now_ms=T0 + 10_000)
    b.persisted(acts[0].held.id, True, now_ms=T0 + 10_000)
    # the planned contact 2->3 opens at t=50 s; before it the bundle waits even if ipn:4.0 is up
    assert b.poll(T0 + 20_000, ["ipn:4.0"]) == []
    out = b.poll(T0 + 60_000, ["ipn:3.0", "ipn:4.0"])
    assert [t.peer for t in out] == ["ipn:3.0"]


def test_cgr_sends_only_inside_the_first_contacts_planned_window():
    plan = ContactPlan()
    plan.add_contact(1, 2, 30, 60, 10_000, owlt=0.01)
    plan.add_contact(2, 3, 0, 1000, 10_000, owlt=0.01)
    cgr = ContactGraphRouting(plan, 1, epoch_ms=T0)
    a = Agent("ipn:1.0", strategy=cgr)
    bid, _ = a.send("ipn:3.1", b"w", now_ms=T0)
    a.persisted(bid, True, now_ms=T0)
    # a session to ipn:2.0 is up at 10 s, but the planned contact 1->2 opens at 30 s
    assert a.poll(T0 + 10_000, ["ipn:2.0"]) == [] and cgr.booked == 0
    assert [t.peer for t in a.poll(T0 + 31_000, ["ipn:2.0"])] == ["ipn:2.0"]
    assert cgr.booked == 1


def test_cgr_routes_through_a_relay_and_replans_when_a_contact_is_missed():
    plan = ContactPlan()
    plan.add_contact(1, 2, 0, 10, 10_000, owlt=0.01)
    plan.add_contact(2, 3, 0, 1000, 10_000, owlt=0.01)
    plan.add_contact(1, 5, 20, 30, 10_000, owlt=0.01)
    plan.add_contact(5, 3, 20, 1000, 10_000, owlt=0.01)
    cgr = ContactGraphRouting(plan, 1, epoch_ms=T0)
    a = Agent("ipn:1.0", strategy=cgr)
    bid, _ = a.send("ipn:3.1", b"r", now_ms=T0)
    a.persisted(bid, True, now_ms=T0)
    assert [t.peer for t in a.poll(T0 + 1000, ["ipn:2.0", "ipn:5.0"])] == ["ipn:2.0"]
    a.sent(bid, "ipn:2.0", False, now_ms=T0 + 1000)       # that contact failed
    # the 1->2 contact ends at 10 s: at 25 s the plan goes through 5
    assert [t.peer for t in a.poll(T0 + 25_000, ["ipn:2.0", "ipn:5.0"])] == ["ipn:5.0"]
    assert cgr.booked == 2


def test_epidemic_skips_peers_whose_summary_vector_has_the_bundle():
    a = Agent("ipn:1.0", strategy=Epidemic())
    b = Agent("ipn:2.0", strategy=Epidemic())
    bid, _ = a.send("ipn:9.1", b"e", now_ms=T0)
    a.persisted(bid, True, now_ms=T0)
    out = a.poll(T0, ["ipn:2.0", "ipn:4.0"])
    assert sorted(t.peer for t in out) == ["ipn:2.0", "ipn:4.0"]
    for t in out:
        a.sent(bid, t.peer, True, now_ms=T0)
    assert bid in a.held                              # epidemic keeps its copy
    acts = b.receive([t for t in out if t.peer == "ipn:2.0"][0].data, now_ms=T0)
    b.persisted(acts[0].held.id, True, now_ms=T0)
    # b meets c: b's summary vector goes out first
    sv = b.contact_up("ipn:5.0", now_ms=T0)
    c = Agent("ipn:5.0", strategy=Epidemic())
    c.receive(sv[0].data, now_ms=T0)
    assert record_type(Bundle.parse(sv[0].data).payload)[0] == RECORD_SUMMARY_VECTOR
    # c holds the same bundle, and b's vector lists it: c does not send it to b
    acts = c.receive(out[0].data, now_ms=T0)
    c.persisted(acts[0].held.id, True, now_ms=T0)
    assert c.poll(T0, ["ipn:2.0"]) == []
    assert [t.peer for t in c.poll(T0 + 1000, ["ipn:2.0", "ipn:6.0"])] == ["ipn:6.0"]


def test_spray_and_wait_halves_copies_then_waits_for_the_destination():
    a = Agent("ipn:1.0", strategy=SprayAndWait(4))
    bid, _ = a.send("ipn:9.1", b"s", now_ms=T0)
    a.persisted(bid, True, now_ms=T0)
    given = []
    for peer in ("ipn:2.0", "ipn:3.0", "ipn:4.0"):
        out = a.poll(T0, [peer])
        if not out:
            continue
        given.append((peer, decode_uint(Bundle.parse(out[0].data).block(BLOCK_SPRAY).data)))
        a.sent(bid, peer, True, now_ms=T0)
    assert given == [("ipn:2.0", 2), ("ipn:3.0", 1)]   # 4 -> keeps 2 -> keeps 1: wait
    out = a.poll(T0 + 1, ["ipn:9.0"])
    assert [t.peer for t in out] == ["ipn:9.0"]
    a.sent(bid, "ipn:9.0", True, now_ms=T0 + 1)
    assert bid not in a.held                           # the destination has it


def test_unknown_strategy_name_is_refused():
    from betanet.dtn.routing import make_strategy
    with pytest.raises(InvalidArgumentError):
        make_strategy("flooding")
    with pytest.raises(InvalidArgumentError):
        make_strategy("cgr")


def test_custody_signal_record_round_trip_and_hostile_forms():
    ids = (bytes(range(64)),)
    sig = CustodySignal(0, ids)
    raw = sig.encode()
    # pinned in docs/dtn.md: record type 64516 (private use, RFC 9713) = 19 fc04
    assert raw.hex() == "8219fc04820081" + "5840" + bytes(range(64)).hex()
    assert CustodySignal.decode(raw) == sig
    assert CustodySignal.refused(ReasonCode.DEPLETED_STORAGE, ids).encode().hex().startswith("8219fc04820481")
    t = b"\x82\x19\xfc\x04"
    old_type_4 = b"\x82\x04" + raw[4:]           # the first, colliding number is not a custody signal
    for bad in (t + b"\x82\x00\x80", t + b"\x82\x00\x81\x41\x00", t + b"\x80", b"\x83", b"", old_type_4):
        with pytest.raises(MalformedError):
            CustodySignal.decode(bad)


def test_summary_vector_record_bytes():
    digest = summary_digest(bytes(range(64)))
    raw = encode_summary([digest])
    # pinned in docs/dtn.md: record type 64762 (private use, RFC 9713) = 19 fcfa
    assert raw.hex() == "8219fcfa81" + "50" + digest.hex()
    assert record_type(raw) == (RECORD_SUMMARY_VECTOR, [digest])
    assert decode_summary(record_type(raw)[1]) == frozenset([digest])
