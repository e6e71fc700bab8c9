"""Navigator: contact graph routing, the ION contact-plan parser, drift-plus-penalty."""
from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from betanet import errors
from betanet.navigator import Contact, ContactPlan, Scheduler

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("no_leaks")   # conftest.py: libbetanet leak check


# ------------------------------------------------------------------ hand-checked plans

def booking_plan() -> ContactPlan:
    return ContactPlan([
        Contact(1, 2, 0, 1000, 1000, owlt=1),      # c0: volume 1e6
        Contact(2, 3, 0, 1000, 10, owlt=1),        # c1: volume 10 000
        Contact(2, 3, 2000, 3000, 10, owlt=1),     # c2: later, same pair
    ])


def test_earliest_arrival_and_ended_contacts():
    plan = booking_plan()
    # 6000 B: c0 0..6 s, +1 s owlt -> at 2 at 7; c1 7..607, +1 -> 608
    (r,) = plan.routes(1, 3, now=0, size=6000)
    assert r.contacts == [0, 1] and r.arrival == pytest.approx(608) and r.next_hop == 2
    # ready at 995: c0 ends at 1000 so 6000 B no longer fit (995 + 6 > 1000): no route
    assert plan.routes(1, 3, now=995, size=6000) == []
    # ready at 500 with 10 B: c1 still open at arrival (501.01), c2 not needed
    (r,) = plan.routes(1, 3, now=500, size=10)
    assert r.contacts == [0, 1]
    # c1 ends at 1000: a bundle reaching node 2 after that takes c2
    (r,) = plan.routes(1, 3, now=990, size=1000)
    assert r.contacts == [0, 2] and r.arrival == pytest.approx(2000 + 100 + 1)


def test_volume_is_booked():
    plan = booking_plan()
    (r,) = plan.routes(1, 3, size=6000)
    assert r.volume == 10_000
    plan.book(r, 6000)
    assert plan.contact(1)[1] == 4000 and plan.contact(0)[1] == 1_000_000 - 6000
    # c1 has 4000 B left: the next 6000 B bundle must wait for c2
    (r2,) = plan.routes(1, 3, size=6000)
    assert r2.contacts == [0, 2] and r2.arrival == pytest.approx(2601)
    with pytest.raises(errors.StateError):
        plan.book(r, 1)                                  # stale route
    with pytest.raises(errors.LimitExceededError):
        plan.book(r2, 2e6)                               # more than c0 holds: nothing booked
    assert plan.contact(2)[1] == 10_000


YEN = """
# three ways from 1 to 4
a contact +0 +100 1 2 1000
a contact +10 +100 2 4 1000
a contact +0 +100 1 3 1000
a contact +20 +100 3 4 1000
a contact +50 +100 1 4 1000
a range +0 +10000 1 2 1
a range +0 +10000 2 4 1
a range +0 +10000 1 3 1
a range +0 +10000 4 3 1
a range +0 +10000 1 4 1
"""


def test_yen_k_routes_are_distinct_and_ordered():
    plan = ContactPlan.from_ion(YEN)
    assert len(plan) == 5
    routes = plan.routes(1, 4, k=5)
    assert [r.contacts for r in routes] == [[0, 1], [2, 3], [4]]
    assert [r.arrival for r in routes] == pytest.approx([11, 21, 51])   # 3->4 uses the 4->3 range
    assert [r.next_hop for r in routes] == [2, 3, 4]
    assert len({tuple(r.contacts) for r in routes}) == 3
    assert [r.contacts for r in plan.routes(1, 4, k=2)] == [[0, 1], [2, 3]]


def test_forwarding_filters():
    plan = ContactPlan.from_ion(YEN)
    assert [r.contacts for r in plan.routes(1, 4, k=5, deadline=30)] == [[0, 1], [2, 3]]
    assert [r.contacts for r in plan.routes(1, 4, k=5, exclude=[2])] == [[2, 3], [4]]
    assert [r.contacts for r in plan.routes(1, 4, k=5, exclude=[3], deadline=20)] == [[0, 1]]
    assert plan.routes(1, 4, k=5, deadline=5) == []
    # bundle larger than any contact's volume (1000 B/s * 90 s)
    assert plan.routes(1, 4, k=5, size=1e6) == []


def test_no_node_revisits():
    plan = ContactPlan([Contact(1, 2, 0, 100, 1e3, owlt=0), Contact(2, 1, 0, 100, 1e3, owlt=0),
                        Contact(1, 3, 50, 100, 1e3, owlt=0), Contact(2, 3, 80, 100, 1e3, owlt=0)])
    for r in plan.routes(1, 3, k=10):
        nodes = [1] + [plan.contact(c)[0].dst for c in r.contacts]
        assert len(nodes) == len(set(nodes))
    assert sorted(r.contacts for r in plan.routes(1, 3, k=10)) == [[0, 3], [2]]


def test_owlt_resolution_confidence_and_unusable_contacts():
    plan = ContactPlan()
    plan.add_contact(1, 2, 0, 100, 100, confidence=0.5)     # owlt from the 2->1 range
    plan.add_range(2, 1, 0, 1000, 3)
    plan.add_contact(2, 5, 0, 100, 100)                     # no range: unusable
    (r,) = plan.routes(1, 2)
    assert r.arrival == pytest.approx(3) and r.confidence == 0.5
    assert plan.contact(0)[0].owlt == 3 and plan.contact(1)[0].owlt is None
    assert plan.routes(1, 5) == []


@pytest.mark.parametrize("args", [
    (1, 1, 0, 10, 1),          # from == to
    (1, 2, 10, 10, 1),         # empty interval
    (1, 2, 0, 10, 0),          # no rate
    (1, 2, 0, math.nan, 1),
])
def test_invalid_contacts(args):
    with pytest.raises(errors.InvalidArgumentError):
        ContactPlan().add_contact(*args)


def test_inconsistent_plans_are_rejected():
    plan = ContactPlan([Contact(1, 2, 0, 100, 10)])
    with pytest.raises(errors.InvalidArgumentError):
        plan.add_contact(1, 2, 50, 150, 10)                 # overlaps the 1->2 contact
    plan.add_contact(2, 1, 50, 150, 10)                     # other direction: fine
    with pytest.raises(errors.InvalidArgumentError):
        plan.add_contact(1, 3, 0, 10, 10, confidence=1.5)
    with pytest.raises(errors.InvalidArgumentError):
        plan.add_contact(1, 3, 0, 10, 10, owlt=-1)
    plan.add_range(1, 2, 0, 100, 1)
    with pytest.raises(errors.InvalidArgumentError):
        plan.add_range(1, 2, 50, 200, 2)                    # overlapping, different owlt
    with pytest.raises(errors.NotFoundError):
        plan.routes(1, 99)                                  # node 99 is in no contact
    with pytest.raises(errors.NotFoundError):
        plan.routes(99, 1)
    with pytest.raises(errors.InvalidArgumentError):
        plan.routes(1, 2, k=0)
    with pytest.raises(errors.InvalidArgumentError):
        plan.routes(1, 2, size=-1)


# ------------------------------------------------------------------ ION parser

def test_ion_parser_accepts_ionadmin_files():
    text = ("## ionadmin\n1 1 ''\ns\n@ +0\nm horizon +0\n\n"
            "a contact +0 +3600 1 2 100000\r\n"
            "a contact\t+3600 +7200 2 1 100000 0.9\n"
            "a range +0 +7200 1 2 1\n"
            "a contact 10 20 1 3 500\n")
    plan = ContactPlan.from_ion(text)
    assert len(plan) == 3
    c, residual = plan.contact(1)
    assert c == Contact(2, 1, 3600, 7200, 100000, 1.0, 0.9) and residual == 100000 * 3600
    assert plan.contact(2)[0].owlt is None


@pytest.mark.parametrize("bad, line, exc", [
    ("a contact +0 +100 1 2\n", 1, errors.MalformedError),               # missing rate
    ("a contact +0 +100 1 2 10\nb 1 2\n", 2, errors.MalformedError),     # unknown command
    ("\n\na contact +0 +100 1 x 10\n", 3, errors.MalformedError),        # bad node
    ("a contact 2026/01/01-00:00:00 +100 1 2 10\n", 1, errors.MalformedError),
    ("a range +0 +100 1 2 1 7\n", 1, errors.MalformedError),             # extra field
    ("a contact +0 +100 1 2 nan\n", 1, errors.MalformedError),
    ("a contact +0 +100 1 2 10 1 2 3\n", 1, errors.MalformedError),
    ("a contact +0 +100 1 2 1e999\n", 1, errors.MalformedError),           # overflows
    ("a contact +0 +100 1 2 10\na contact +50 +60 1 2 10\n", 2, errors.InvalidArgumentError),
    ("a contact +100 +0 1 2 10\n", 1, errors.InvalidArgumentError),
    ("a contact +0 +100 1 2 10 1.5\n", 1, errors.InvalidArgumentError),
    ("a contact +0 +100 1 2 10\0\n", 1, errors.MalformedError),
    ("a contact +0 +100 18446744073709551616 2 10\n", 1, errors.MalformedError),
    ("a contact +0 +100 1 2 " + "1" * 80 + "\n", 1, errors.MalformedError),
])
def test_ion_parser_rejects_bad_lines_with_line_numbers(bad, line, exc):
    plan = ContactPlan.from_ion("a contact +0 +10 7 8 1\n")
    with pytest.raises(exc) as e:
        plan.load_ion(bad)
    assert e.value.line == line
    assert f"line {line}" in str(e.value)
    assert len(plan) == 1                                     # all or nothing


def test_ion_parser_random_mutations():
    """Bounded mutation fuzz at the Python level (the C harness is tests/fuzz/fuzz_cgr_ion.c)."""
    rng = random.Random(1234)
    seed = (YEN + "a contact +0 +5 9 10 1 0.5\n").encode()
    alphabet = b"+-.0123456789 \t\nacontrgex#e"
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            i = rng.randrange(len(data) + 1)
            if op < 0.4 and data:
                data[min(i, len(data) - 1)] = rng.choice(alphabet)
            elif op < 0.7:
                data[i:i] = bytes([rng.choice(alphabet)])
            else:
                del data[i:i + rng.randint(1, 5)]
        plan = ContactPlan()
        try:
            plan.load_ion(bytes(data))
        except (errors.MalformedError, errors.InvalidArgumentError) as e:
            assert e.line >= 1 and len(plan) == 0
            continue
        for s, d in ((1, 4), (9, 10)):
            try:
                found = plan.routes(s, d, k=3)
            except errors.NotFoundError:
                continue
            for r in found:
                assert r.contacts and r.arrival >= 0


def test_fuzz_harness_exists_for_the_c_parser():
    src = (ROOT / "tests" / "fuzz" / "fuzz_cgr_ion.c").read_text()
    assert "LLVMFuzzerTestOneInput" in src and "betanet_cgr_plan_load_ion" in src


# ------------------------------------------------------------------ drift-plus-penalty

def simulate(v: float, slots: int = 20000, seed: int = 3):
    rng = np.random.default_rng(seed)
    # two queues; BLE serves 1 unit of either at 1 mJ, LTE serves 3 of queue 0 or both at 4.5 mJ
    s = Scheduler(2, {"ble0": (1.0, [1, 0]), "ble1": (1.0, [0, 1]), "lte": (4.5, [3, 3])}, v)
    arrivals = rng.binomial(1, [0.35, 0.35], size=(slots, 2)).astype(float)
    energy = backlog = 0.0
    for a in arrivals:
        _, e = s.step(a)
        energy += e
        backlog += float(s.backlog.sum())
    return energy / slots, backlog / slots


def test_larger_v_trades_backlog_for_energy():
    results = [simulate(v) for v in (0.1, 2.0, 20.0)]
    energies = [e for e, _ in results]
    backlogs = [b for _, b in results]
    assert energies[0] > energies[1] > energies[2]
    assert backlogs[0] < backlogs[1] < backlogs[2]
    # stable: the backlog stays bounded (O(V)), far below the number of slots
    assert backlogs[2] < 200


def test_scheduler_rule_and_availability():
    s = Scheduler(1, {"ble": (1.0, [1]), "lte": (4.0, [3])}, v=1.0)
    assert s.step([5]) == (None, 0.0)                  # Q = 0: serving gains nothing
    # Q = 5: ble scores 1 - 5 = -4, lte 4 - 15 = -11 -> lte
    assert s.step([0]) == ("lte", 4.0)
    assert s.backlog.tolist() == [2.0]
    assert s.step([0], available=["ble"]) == ("ble", 1.0)
    s.v = 100.0
    assert s.step([0])[0] is None                      # large V: not worth the energy
    with pytest.raises(errors.InvalidArgumentError):
        s.step([-1])
    with pytest.raises(errors.InvalidArgumentError):
        s.step([math.nan])
    with pytest.raises(errors.InvalidArgumentError):
        s.v = -1
    with pytest.raises(errors.InvalidArgumentError):
        Scheduler(1, {"x": (-1.0, [1])}, 1.0)
    with pytest.raises(ValueError):
        s.step([1, 2])


# ------------------------------------------------------------------ benchmark does not rot

def test_benchmark_quick():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "navigator_bench.py"), "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "frontier" in out.stdout and "CGR" in out.stdout


# ------------------------------------------------------------------ operator command

def test_cgr_command(tmp_path):
    plan = tmp_path / "plan.ionrc"
    plan.write_text(YEN)
    run = lambda *a: subprocess.run([sys.executable, "-m", "betanet", "cgr", *a], capture_output=True,
                                    text=True, timeout=120)
    out = run(str(plan), "-s", "1", "-d", "4", "-k", "5")
    assert out.returncode == 0, out.stderr
    assert "3 route(s) 1 -> 4" in out.stdout and "via 1 -> 2 -> 4" in out.stdout
    bad = tmp_path / "bad.ionrc"
    bad.write_text("a contact +0 +10 1 2 5\na contact +0 +10 1\n")
    out = run(str(bad), "-s", "1", "-d", "2")
    assert out.returncode == 2 and f"{bad}:2:" in out.stderr
    out = run(str(plan), "-s", "1", "-d", "4", "--deadline", "5")
    assert out.returncode == 1 and "0 route(s)" in out.stdout
    out = run(str(plan))
    assert out.returncode == 2 and "-s SOURCE" in out.stderr


# ------------------------------------------------------------------ plan size bound (issue 9, defect 11)

def _contacts_text(n: int) -> str:
    # n contacts on 64 pairs, each pair's contacts back to back in time
    return "\n".join(f"a contact +{(i // 64) * 10} +{(i // 64) * 10 + 5} {1 + i % 64} {100 + i % 64} 1000"
                     for i in range(n))


def test_plan_over_the_default_limit_is_refused():
    """An untrusted plan cannot grow without bound: one entry over the default limit
    fails on its line and leaves the plan unchanged (the old parser had no bound and
    took quadratic time on such a plan)."""
    from betanet import cgr
    n = cgr.DEFAULT_MAX_ENTRIES
    text = _contacts_text(n - 1) + "\na range +0 +10 1 100 1\na contact +0 +1 7 8 1\n"
    plan = ContactPlan()
    with pytest.raises(errors.LimitExceededError) as e:
        plan.load_ion(text)
    assert e.value.line == n + 1 and len(plan) == 0
    plan.load_ion(text.rsplit("\n", 2)[0])             # exactly at the limit: accepted
    assert len(plan) == n - 1
    with pytest.raises(errors.LimitExceededError):
        plan.add_contact(7, 8, 0, 1, 1)
    assert len(plan) == n - 1


def test_plan_limit_is_configurable():
    with pytest.raises(errors.LimitExceededError) as e:
        ContactPlan.from_ion(_contacts_text(11), max_entries=10)
    assert e.value.line == 11
    plan = ContactPlan.from_ion(_contacts_text(10), max_entries=10)
    with pytest.raises(errors.LimitExceededError):
        plan.add_range(1, 2, 0, 10, 1)
    with pytest.raises(errors.LimitExceededError):
        plan.set_limit(9)                                # below the plan's size
    plan.set_limit(11)
    plan.add_range(1, 2, 0, 10, 1)
    for bad in (0, -1, 1.5, 2**40):
        with pytest.raises(errors.InvalidArgumentError):
            ContactPlan(max_entries=bad)


def test_large_plan_keeps_consistency_checks():
    """The indexed checks still find an overlap or an owlt conflict anywhere in a big plan,
    with the right line."""
    good = _contacts_text(20_000)
    bad = good + "\na contact +7 +12 5 104 1000\n"        # overlaps the 2nd contact of 5 -> 104
    with pytest.raises(errors.InvalidArgumentError) as e:
        ContactPlan.from_ion(bad)
    assert e.value.line == 20_001
    ranges = "\n".join(f"a range +{i * 10} +{i * 10 + 5} 1 2 1" for i in range(5000))
    with pytest.raises(errors.InvalidArgumentError) as e:
        ContactPlan.from_ion(ranges + "\na range +0 +1000000 3 4 2\na range +49990 +49992 1 2 2\n")
    assert e.value.line == 5002
    plan = ContactPlan.from_ion(ranges + "\na range +0 +1000000 1 2 1\na contact +49990 +49999 2 1 10\n")
    assert plan.contact(0)[0].owlt == 1.0 and len(plan) == 1      # resolved from the reverse range
    assert plan.routes(2, 1)[0].arrival == 49991.0


# ------------------------------------------------------------------ bad arguments (issue 9, defect 13)

@pytest.mark.parametrize("kw", [
    {"k": -1}, {"k": 0}, {"k": 65}, {"k": 1.5}, {"k": True}, {"size": -1}, {"size": math.nan},
    {"now": math.inf}, {"deadline": math.nan}, {"exclude": [-1]}, {"exclude": ["x"]},
])
def test_routes_rejects_bad_arguments_and_leaves_no_trace(kw):
    plan = booking_plan()
    routes = plan.routes(1, 3, size=10)
    with pytest.raises(errors.InvalidArgumentError) as e:
        plan.routes(1, 3, **kw)
    assert isinstance(e.value, ValueError)
    plan.book(routes[0], 10)                            # the earlier query is still current


@pytest.mark.parametrize("args", [(-1, 3), (1, 2**64), (1.0, 3), ("1", 3)])
def test_routes_rejects_bad_node_ids(args):
    with pytest.raises(errors.InvalidArgumentError):
        booking_plan().routes(*args)


@pytest.mark.parametrize("args", [(-1, 2, 0, 1, 1), (1, 2.5, 0, 1, 1), (1, 2, 0, 1, -1), (1, 2, "0", 1, 1)])
def test_add_contact_rejects_bad_types(args):
    plan = ContactPlan()
    with pytest.raises(errors.InvalidArgumentError):
        plan.add_contact(*args)
    assert len(plan) == 0


def test_plan_inputs_of_wrong_type():
    with pytest.raises(errors.InvalidArgumentError):
        ContactPlan.from_ion(12)
    with pytest.raises(errors.InvalidArgumentError):
        booking_plan().book("route", 1)
    with pytest.raises(errors.InvalidArgumentError):
        booking_plan().contact(-1)


@pytest.mark.parametrize("n_queues, options, v", [
    (-1, {"a": (1.0, [1])}, 1.0), (1.5, {"a": (1.0, [1])}, 1.0), (1, {}, 1.0), (1, {"a": (1.0, [1])}, -1),
    (1, {"a": (1.0, [1])}, math.nan), (1, {"a": (-1.0, [1])}, 1.0), (1, {"a": (1.0, [1, 2])}, 1.0),
    (1, {"a": 1.0}, 1.0), (1, [("a", (1.0, [1]))], 1.0),
])
def test_scheduler_rejects_bad_arguments(n_queues, options, v):
    with pytest.raises(errors.InvalidArgumentError):
        Scheduler(n_queues, options, v)


def test_scheduler_step_and_v_reject_bad_values():
    s = Scheduler(2, {"a": (1.0, [1, 1])}, v=1)
    for arrivals in ([1], [1, -1], [1, math.nan], "ab"):
        with pytest.raises(errors.InvalidArgumentError):
            s.step(arrivals)
    with pytest.raises(errors.InvalidArgumentError):
        s.v = -1
    assert s.v == 1 and list(s.backlog) == [0, 0]


def test_modules_and_reexports():
    from betanet import cgr, dpp, navigator
    assert navigator.ContactPlan is cgr.ContactPlan and navigator.Scheduler is dpp.Scheduler
    assert navigator.Contact is cgr.Contact and navigator.CgrRoute is cgr.CgrRoute


def test_header_sections_follow_the_abi_convention():
    """One prefix per section, every struct named, constructors initialise the library."""
    import re
    for cap, prefix in (("navigator", "betanet_nav_"), ("cgr", "betanet_cgr_"), ("dpp", "betanet_dpp_")):
        text = (ROOT / "include" / "betanet" / f"{cap}.h").read_text()
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        names = set(re.findall(r"\b(betanet_[a-z0-9_]+)\s*\(", code)) | set(re.findall(r"\b(betanet_[a-z0-9_]+_t)\b", code))
        assert names and all(n.startswith(prefix) for n in names), (cap, sorted(names))
        assert "typedef struct {" not in code and "struct {" not in code
        assert all(t.endswith("_t") for t in re.findall(r"typedef struct \w+ (\w+)", code))
        assert "betanet_init() itself on first use" in text or "calls betanet_init() on first use" in text


def test_scheduler_matrix_over_the_cell_bound_is_refused_before_allocating():
    # 65 536 queues x 65 536 options would be a 32 GiB service matrix: refused, not allocated.
    from betanet._native import dpp as _dpp
    from betanet.errors import LimitExceededError
    with pytest.raises(LimitExceededError):
        _dpp.Scheduler(_dpp.MAX_QUEUES, _dpp.MAX_OPTIONS, 1.0)
