"""Demo section: routing — one message, several ways to go, chosen by what matters now."""
from __future__ import annotations

from betanet.errors import NoPathError
from betanet.navigator import PRESETS, ContactPlan, Navigator, Scheduler

TITLE = "Routing: Pareto paths over internet, BLE mesh and a scheduled contact"

ALICE, BUS, BOB = 1, 7, 2          # DTN node numbers for the contact plan


def topology(dtn_latency_ms: float, dtn_failure: float) -> Navigator:
    nav = Navigator("alice")
    # internet over HTX through a relay that sees metadata (epsilon 0.5 per hop)
    nav.update_link("alice", "relay", "htx", latency_ms=35, energy_mj=30, failure=0.001, privacy_eps=0.5)
    nav.update_link("relay", "bob", "htx", latency_ms=35, energy_mj=30, failure=0.001, privacy_eps=0.5)
    # three mixnodes: slower, no exposure
    for a, b in (("alice", "mix1"), ("mix1", "mix2"), ("mix2", "mix3"), ("mix3", "bob")):
        nav.update_link(a, b, "htx", latency_ms=120, energy_mj=30, failure=0.002, privacy_eps=0.0)
    # BLE mesh through two phones: frugal, slower, lossier
    for a, b in (("alice", "m1"), ("m1", "m2"), ("m2", "bob")):
        nav.update_link(a, b, "ble", latency_ms=80, energy_mj=2, failure=0.01, privacy_eps=0.1)
    # the scheduled contact (a bus), costed from its CGR route
    nav.update_link("alice", "bob", "dtn", latency_ms=dtn_latency_ms, energy_mj=5, failure=dtn_failure,
                    privacy_eps=0.0)
    return nav


def show(report, label: str, route) -> None:
    c = route.cost
    report.line(f"{label:<17} {' -> '.join(map(str, route.path)):<38} via {'/'.join(sorted(set(route.transports))):<4}"
                f" {c.latency_ms:>9.0f} ms {c.energy_mj:>5.0f} mJ  fail {c.failure:.3f}  eps {c.privacy_eps:.1f}")


def run(report) -> None:
    # 1. the bus: alice meets it at 10 min, it meets bob at 30 min
    plan = ContactPlan.from_ion(f"""
        a contact +600 +900 {ALICE} {BUS} 100000 0.95
        a contact +1800 +2100 {BUS} {BOB} 100000 0.9
        a range +0 +86400 {ALICE} {BUS} 0
        a range +0 +86400 {BUS} {BOB} 0
    """)
    (bus,) = plan.routes(ALICE, BOB, now=0, size=50_000)
    report.line(f"contact plan: bus route arrives at t = {bus.arrival:.1f} s, confidence {bus.confidence:.3f}")
    plan.book(bus, 50_000)
    report.result(plan.contact(bus.contacts[0])[1] == 300 * 100_000 - 50_000, "50 kB booked on the bus contacts")

    nav = topology(bus.arrival * 1000, 1 - bus.confidence)
    report.line("")
    report.line(f"{'preset':<17} {'path':<38} {'':8} {'latency':>12} {'energy':>8}")
    chosen = {}
    for name in ("real_time", "energy_efficient", "privacy_first", "balanced"):
        chosen[name] = nav.select("bob", name)
        show(report, name, chosen[name])
    report.result(chosen["real_time"].path == ["alice", "relay", "bob"], "real_time takes the internet relay")
    report.result(chosen["energy_efficient"].transports == ["ble"] * 3, "energy_efficient takes the BLE mesh")
    report.result(chosen["privacy_first"].cost.privacy_eps == 0 and chosen["privacy_first"].next_hop == "mix1",
                  "privacy_first takes the mixnodes (epsilon 0)")
    r = nav.select("bob", "energy_efficient", deadline_ms=100)
    show(report, "energy, <=100 ms", r)
    report.result(r.cost.latency_ms <= 100, "a 100 ms deadline overrides the frugal mesh")
    report.line(f"Pareto frontier to bob: {len(nav.frontier('bob'))} non-dominated routes "
                f"(K = {PRESETS['balanced'].k})")

    # 2. outage: internet uplink and first BLE hop gone -> only the bus is left
    nav.remove_link("alice", "relay", "htx")
    nav.remove_link("alice", "mix1", "htx")
    nav.remove_link("alice", "m1", "ble")
    r = nav.select("bob", "real_time")
    show(report, "outage, real_time", r)
    report.result(r.transport == "dtn", "with the uplinks down the message waits for the bus")
    try:
        nav.select("bob", "real_time", deadline_ms=1000)
        report.result(False, "a 1 s deadline cannot be met")
    except NoPathError as e:
        report.result(e.reason == "deadline", f"a 1 s deadline cannot be met (reason: {e.reason})")

    # 3. drift-plus-penalty on the link: V trades backlog for energy
    import numpy as np
    rng = np.random.default_rng(5)
    arrivals = rng.binomial(1, 0.6, size=(3000, 1)).astype(float)
    rows = []
    for v in (0.1, 5.0, 50.0):
        s = Scheduler(1, {"ble": (1.0, [1]), "htx": (4.5, [6])}, v)
        energy = backlog = 0.0
        for a in arrivals:
            energy += s.step(a)[1]
            backlog += float(s.backlog[0])
        rows.append((v, energy / len(arrivals), backlog / len(arrivals)))
        report.line(f"scheduler V = {v:>4}: {energy / len(arrivals):.3f} mJ/slot, mean backlog {backlog / len(arrivals):.1f}")
    report.result(rows[0][1] > rows[-1][1] and rows[0][2] < rows[-1][2],
                  "larger V: less energy, more backlog (drift-plus-penalty)")
