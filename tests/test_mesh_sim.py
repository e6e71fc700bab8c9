"""The simulated medium's neighbour index (grid + per-radio cache) against the scan of every
pair it replaced: same neighbours in the same order after every kind of change, and the
same seeded simulation bit for bit."""
from __future__ import annotations

import math
import random

import pytest

from betanet.errors import InvalidArgumentError
from betanet.mesh.radio import Scheduler, SimMedium
from betanet.mesh.sim import SimMesh


def _all_pairs(medium: SimMedium, radio) -> list:
    """What neighbours_of must return: the in-range radios in `radios` order."""
    return [r for r in medium.radios.values() if medium.in_range(radio, r)]


def _check(medium: SimMedium) -> None:
    for r in medium.radios.values():
        assert medium.neighbours_of(r) == _all_pairs(medium, r), r


def _run(loss: float, index: bool, size: int):
    mesh = SimMesh(120, area_m=200, range_m=30, loss=loss, seed=9, neighbour_index=index, fec_parity=2)
    mesh.announce_all()
    res = mesh.broadcast_round(3, size=size)
    deliveries = [(n.router.me, ev.packet.payload, t) for n in mesh.nodes for ev, t in n.delivered]
    energy = [(n.radio.energy.frames_sent, n.radio.energy.frames_received, n.radio.energy.tx, n.radio.energy.rx)
              for n in mesh.nodes]
    medium = (mesh.medium.link_writes, mesh.medium.link_losses, mesh.medium.link_overflows, mesh.scheduler.now)
    return res.summary(), res.delivered, res.reachable, res.hops, res.latency_s, res.counters, deliveries, \
        energy, medium


@pytest.mark.parametrize("loss,size", [(0.0, 64), (0.2, 1400)])
def test_seeded_simulation_is_the_same_with_the_index(loss, size):
    """Link writes draw the loss and the delay in neighbour order: any difference in the set
    or the order of neighbours changes what is delivered, when, and what it cost."""
    with_index, all_pairs = _run(loss, True, size), _run(loss, False, size)
    assert with_index[1] > 100                   # the run delivered something to compare
    assert with_index == all_pairs


def test_neighbours_follow_every_change():
    """Radios moved through SimMedium.move and by setting x / y directly (as the interop
    test does), joining, leaving, replaced by `add`, partitions and range changes; positions
    on cell borders, exactly one range apart, negative and far away."""
    rng = random.Random(4)
    sched = Scheduler()
    medium = SimMedium(sched, range_m=10.0, rng=random.Random(1))
    ids = [bytes([i]) * 8 for i in range(60)]

    def spot():
        kind = rng.random()
        if kind < 0.3:                                        # on a grid line (multiples of the range)
            return float(rng.randint(-4, 4) * 10), float(rng.randint(-4, 4) * 10)
        if kind < 0.35:
            return rng.uniform(-1e15, 1e15), rng.uniform(-1e15, 1e15)
        return rng.uniform(-40, 40), rng.uniform(-40, 40)

    for pid in ids[:40]:
        medium.add(pid, *spot())
    _check(medium)
    for step in range(600):
        op = rng.randrange(9)
        on = list(medium.radios)
        r = medium.radios[rng.choice(on)]
        d = medium.range_m if math.isfinite(medium.range_m) else 10.0
        if op == 0:
            r.x, r.y = spot()
        elif op == 1:
            r.x = rng.choice([r.x + d, r.x - 10.0, rng.uniform(-40, 40)])
        elif op == 2:
            medium.move(r.peer_id, *spot())
        elif op == 3:
            other = medium.radios[rng.choice(on)]                  # exactly one range away
            r.x, r.y = other.x + d, other.y
        elif op == 4 and len(on) > 2:
            medium.leave(r.peer_id)
        elif op == 5:
            off = [p for p in ids if p not in medium.radios]
            if off:
                medium.join(rng.choice(off), *spot())
        elif op == 6:
            medium.add(r.peer_id, *spot())                         # replaced, keeps its place
        elif op == 7:
            medium.set_blocked(r.peer_id, rng.choice(on), rng.random() < 0.7)
        elif op == 8 and step % 50 == 0:
            medium.range_m = rng.choice([5.0, 10.0, 17.5, 0.0, math.inf])
        _check(medium)
    gone = medium.radios[next(iter(medium.radios))]
    medium.leave(gone.peer_id)                                     # off the medium: still answers
    assert medium.neighbours_of(gone) == _all_pairs(medium, gone)


def test_interop_style_grid_placement():
    """Radios added at the origin, then placed by setting x and y (tests/test_mesh_interop.py)."""
    medium = SimMedium(Scheduler(), range_m=25, rng=random.Random(2))
    radios = [medium.add(bytes([i]) * 8, 0, 0) for i in range(24)]
    assert len(medium.neighbours_of(radios[0])) == 23              # all at one spot
    for i, r in enumerate(radios):
        r.x, r.y = (i % 6) * 15.0, (i // 6) * 15.0
    assert {n.peer_id for n in medium.neighbours_of(radios[0])} == {bytes([i]) * 8 for i in (1, 6, 7)}
    _check(medium)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1", None, True])
def test_positions_and_range_must_be_finite_numbers(bad):
    medium = SimMedium(Scheduler())
    r = medium.add(b"\x01" * 8, 0.0, 0.0)
    with pytest.raises(InvalidArgumentError):
        r.x = bad
    with pytest.raises(InvalidArgumentError):
        medium.add(b"\x02" * 8, 0.0, bad)
    assert (r.x, r.y) == (0.0, 0.0) and list(medium.radios) == [b"\x01" * 8]
    if bad is not math.inf:
        with pytest.raises(InvalidArgumentError):
            medium.range_m = bad
    with pytest.raises(InvalidArgumentError):
        SimMedium(Scheduler(), range_m=-1.0)
