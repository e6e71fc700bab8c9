"""SecAgg+ neighbourhoods and their parameters (Bell et al. 2020; docs/fl.md).

The communication graph is a Harary graph H(k, n) -- participants on a ring, each joined
to the k/2 nearest on either side -- under a fresh uniformly random relabelling per round,
the construction Bell et al. and Flower use. ``choose_parameters`` picks the smallest even
degree k and a Shamir threshold t such that, when a fraction ``dropout`` of the n
participants drops out and a fraction ``corruption`` is controlled by the adversary (both
chosen independently of the round's random relabelling), three failure events have small
probability (union bounds, exact hypergeometric tails):

* privacy: the honest survivors' graph stays connected, so the server learns only their
  total. H(k, n) loses connectivity only where k/2 consecutive ring positions are all
  dropped or corrupt: P <= n * prod_{i<k/2} (m - i)/(n - i), m = dropped + corrupt,
  required <= 2^-sigma;
* secrecy of each participant's two secrets: a server that lies about who dropped can ask
  different honest neighbours for different secrets, so it must not gather t shares of
  both: k + c < 2t for the c corrupt neighbours; P[c >= 2t - k] * n <= 2^-sigma;
* correctness: every needed secret has t surviving neighbours:
  P[survivors among k < t] * n <= 2^-eta.

When no k < n - 1 satisfies them (small n), the graph is complete (plain SecAgg) and the
same conditions choose t; if even that fails the parameters are refused.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from betanet.errors import InvalidArgumentError

__all__ = ["SecAggParams", "choose_parameters", "harary_neighbours"]


@dataclass(frozen=True)
class SecAggParams:
    """What a round needs: neighbours per participant (``degree``; >= n - 1 means all),
    the Shamir ``threshold``, the fewest masked inputs the round accepts
    (``min_survivors``) and the vector length ``dim``."""

    degree: int
    threshold: int
    min_survivors: int
    dim: int

    def __post_init__(self) -> None:
        if self.degree < 1 or self.threshold < 1 or self.threshold > self.degree:
            raise InvalidArgumentError(f"need 1 <= threshold <= degree: {self}")
        if self.min_survivors < 2:
            raise InvalidArgumentError("min_survivors must be >= 2 (one input is no aggregate)")
        if self.dim < 0:
            raise InvalidArgumentError("dim must be >= 0")


def _log_hypergeom_pmf(population: int, marked: int, draws: int, k: int) -> float:
    return (math.lgamma(marked + 1) - math.lgamma(k + 1) - math.lgamma(marked - k + 1)
            + math.lgamma(population - marked + 1) - math.lgamma(draws - k + 1)
            - math.lgamma(population - marked - draws + k + 1)
            - (math.lgamma(population + 1) - math.lgamma(draws + 1)
               - math.lgamma(population - draws + 1)))


def _hypergeom_sf(population: int, marked: int, draws: int, at_least: int) -> float:
    """P[X >= at_least], X ~ Hypergeometric(population, marked, draws)."""
    lo = max(at_least, 0, draws - (population - marked))
    hi = min(draws, marked)
    return sum(math.exp(_log_hypergeom_pmf(population, marked, draws, k)) for k in range(lo, hi + 1))


def _run_probability(n: int, bad: int, run: int) -> float:
    """Union bound on `run` consecutive ring positions all bad (bad of n, random)."""
    if run > bad:
        return 0.0
    p = float(n)
    for i in range(run):
        p *= (bad - i) / (n - i)
    return p


def choose_parameters(n: int, dropout: float, corruption: float, dim: int,
                      sigma: int = 40, eta: int = 20) -> SecAggParams:
    """Degree and threshold for n participants (module docstring). ``min_survivors`` is
    n minus the tolerated dropouts."""
    if n < 3:
        raise InvalidArgumentError("secure aggregation needs at least 3 participants")
    if not (0 <= dropout < 1 and 0 <= corruption < 1 and dropout + corruption < 1):
        raise InvalidArgumentError("dropout and corruption rates must be in [0, 1) with sum < 1")
    dropped, corrupt = math.floor(dropout * n), math.floor(corruption * n)
    min_survivors = max(2, n - dropped)
    for k in list(range(2, n - 1, 2)) + [n - 1]:
        if k < n - 1 and _run_probability(n, dropped + corrupt, k // 2) > 2.0**-sigma:
            continue
        for t in range(k // 2 + 1, k + 1):
            if n * _hypergeom_sf(n - 1, corrupt, k, 2 * t - k) > 2.0**-sigma:
                continue        # t too small for secrecy: larger t only helps it
            # correctness: dropped neighbours > k - t leaves fewer than t alive
            if n * _hypergeom_sf(n - 1, dropped, k, k - t + 1) <= 2.0**-eta:
                return SecAggParams(degree=k, threshold=t, min_survivors=min_survivors, dim=dim)
            break               # larger t only hurts correctness
    raise InvalidArgumentError(
        f"no SecAgg+ parameters for n={n}, dropout={dropout}, corruption={corruption} "
        f"at sigma={sigma}, eta={eta}: too few participants for these rates")


def harary_neighbours(ids: list[int], degree: int, rng: random.Random) -> dict[int, list[int]]:
    """Neighbour lists of H(degree, len(ids)) over a random relabelling of `ids`
    (the complete graph when degree >= len(ids) - 1)."""
    n = len(ids)
    if degree >= n - 1:
        return {u: [v for v in ids if v != u] for u in ids}
    ring = list(ids)
    rng.shuffle(ring)
    half = degree // 2
    out: dict[int, set[int]] = {u: set() for u in ids}
    for pos, u in enumerate(ring):
        for d in range(1, half + 1):
            v = ring[(pos + d) % n]
            out[u].add(v)
            out[v].add(u)
    return {u: sorted(vs) for u, vs in out.items()}
