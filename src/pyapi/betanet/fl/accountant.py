"""Rényi-DP accountant of the Poisson-sampled Gaussian mechanism (docs/fl.md).

One step samples each record (or participant) independently with probability ``q`` and
adds Gaussian noise of standard deviation ``sigma * C`` to a sum of contributions clipped
to L2 norm ``C`` (add/remove-one neighbours). Its RDP at order ``a`` is
``log(A_a) / (a - 1)`` with ``A_a`` computed exactly as in Mironov, Talwar and Zhang,
"Rényi Differential Privacy of the Sampled Gaussian Mechanism" (2019): the finite binomial
sum for integer orders, the two erfc-weighted series of their section 3.3 for fractional
ones (summing term magnitudes, an upper bound). Steps compose by adding RDP; the
conversion to (epsilon, delta) is the improved bound of Balle et al. 2020 / Canonne,
Kamath and Steinke 2020 (Prop. 12 of arXiv:2004.00010) together with the KL bound
``delta >= sqrt(1 - exp(-rdp))``, minimised over the same default orders Google's
``dp_accounting`` uses, so the two agree (tests/test_fl_accountant.py).

Pure Python + NumPy; no SciPy at run time.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from betanet.errors import InvalidArgumentError

__all__ = ["DEFAULT_ORDERS", "rdp_sampled_gaussian", "epsilon_from_rdp", "epsilon",
           "noise_multiplier_for", "RdpAccountant"]

DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024])

_FRAC_MAX_TERMS = 1000
_LOG_HALF = math.log(0.5)


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def _log_binom(n: float, k: float) -> float:
    """log |binomial(n, k)| for real n (generalised binomial coefficient)."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_erfc(x: float) -> float:
    """log(erfc(x)), accurate where erfc underflows (asymptotic series beyond x = 26)."""
    if x < 26.0:
        return math.log(math.erfc(x))
    inv = 1.0 / (x * x)
    # erfc(x) = exp(-x^2) / (x sqrt(pi)) * (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6) + 105/(16x^8) ...)
    series = 1.0 - 0.5 * inv + 0.75 * inv**2 - 1.875 * inv**3 + 6.5625 * inv**4 - 29.53125 * inv**5
    return -x * x - math.log(x) - 0.5 * math.log(math.pi) + math.log(series)


def _log_a_int(q: float, sigma: float, alpha: int) -> float:
    # A_a = sum_i C(a, i) q^i (1-q)^(a-i) exp((i^2 - i) / (2 sigma^2))
    i = np.arange(alpha + 1, dtype=np.float64)
    lg = np.vectorize(math.lgamma)
    terms = (math.lgamma(alpha + 1) - lg(i + 1) - lg(alpha - i + 1)
             + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * sigma * sigma))
    top = float(terms.max())
    return top + math.log(float(np.exp(terms - top).sum()))


def _log_a_frac(q: float, sigma: float, alpha: float) -> float:
    # Mironov et al. 2019, section 3.3: A_a = A0 + A1, the integrals below and above z0.
    z0 = sigma * sigma * math.log(1.0 / q - 1.0) + 0.5
    log_q, log_1mq = math.log(q), math.log1p(-q)
    two_s2 = 2.0 * sigma * sigma
    root2s = math.sqrt(2.0) * sigma
    a0 = a1 = -math.inf
    prev0 = prev1 = -math.inf
    for i in range(_FRAC_MAX_TERMS):
        c = _log_binom(alpha, i)
        j = alpha - i
        t0 = c + i * log_q + j * log_1mq + (i * i - i) / two_s2 + _LOG_HALF + _log_erfc((i - z0) / root2s)
        t1 = c + j * log_q + i * log_1mq + (j * j - j) / two_s2 + _LOG_HALF + _log_erfc((z0 - j) / root2s)
        a0 = _logsumexp(a0, t0)
        a1 = _logsumexp(a1, t1)
        total = _logsumexp(a0, a1)
        # stop once both series decrease with terms below e^-30 of the sum; the same rule
        # (and term cap) as dp_accounting, so the orders that fail to converge are the same
        if t0 < prev0 and t1 < prev1 and max(t0, t1) < total - 30.0:
            return total
        prev0, prev1 = t0, t1
    return math.inf     # did not converge: this order is excluded (its RDP bound is infinite)


def _rdp_one(q: float, sigma: float, alpha: float) -> float:
    if q == 0.0:
        return 0.0
    if sigma == 0.0 or math.isinf(alpha):
        return math.inf
    if q == 1.0:
        return alpha / (2.0 * sigma * sigma)
    if float(alpha).is_integer():
        log_a = _log_a_int(q, sigma, int(alpha))
    else:
        log_a = _log_a_frac(q, sigma, alpha)
    return log_a / (alpha - 1.0)


def _check_step(q: float, sigma: float) -> None:
    if not (0.0 <= q <= 1.0):
        raise InvalidArgumentError(f"sample rate must be in [0, 1], got {q}")
    if not (sigma >= 0.0) or math.isinf(sigma):
        raise InvalidArgumentError(f"noise multiplier must be finite and >= 0, got {sigma}")


def rdp_sampled_gaussian(q: float, sigma: float,
                         orders: Sequence[float] = DEFAULT_ORDERS) -> np.ndarray:
    """RDP of one step of the Poisson-sampled Gaussian mechanism at each order (> 1)."""
    _check_step(q, sigma)
    if any(not a > 1 for a in orders):
        raise InvalidArgumentError("RDP orders must be > 1")
    return np.array([_rdp_one(float(q), float(sigma), float(a)) for a in orders])


def epsilon_from_rdp(orders: Sequence[float], rdp: Sequence[float],
                     delta: float) -> tuple[float, float]:
    """(epsilon, best order) for a composed RDP curve at the given delta."""
    if not (0.0 <= delta <= 1.0):
        raise InvalidArgumentError(f"delta must be in [0, 1], got {delta}")
    if len(orders) != len(rdp):
        raise InvalidArgumentError("orders and rdp differ in length")
    if delta == 0.0:
        return (0.0, 0.0) if all(r == 0 for r in rdp) else (math.inf, 0.0)
    best, best_order = math.inf, 0.0
    for a, r in zip(orders, rdp):
        a, r = float(a), float(r)
        if r < 0:                                   # numerically impossible curve: no loss
            eps = 0.0
        elif delta * delta + math.expm1(-r) > 0:    # KL bound already gives delta
            eps = 0.0
        elif a > 1.01:                              # Prop. 12 (unstable as a -> 1)
            eps = r + math.log1p(-1.0 / a) - math.log(delta * a) / (a - 1.0)
        else:
            eps = math.inf
        if eps < best:
            best, best_order = eps, a
    return max(0.0, best), best_order


def epsilon(q: float, sigma: float, steps: int, delta: float,
            orders: Sequence[float] = DEFAULT_ORDERS) -> float:
    """Epsilon after `steps` compositions of the sampled Gaussian mechanism."""
    if steps < 0:
        raise InvalidArgumentError("steps must be >= 0")
    return epsilon_from_rdp(orders, steps * rdp_sampled_gaussian(q, sigma, orders), delta)[0]


def noise_multiplier_for(target_epsilon: float, q: float, steps: int, delta: float,
                         orders: Sequence[float] = DEFAULT_ORDERS, rtol: float = 1e-6) -> float:
    """Smallest noise multiplier (within relative `rtol`) whose epsilon over `steps` steps at
    `delta` is at most `target_epsilon`. The result always satisfies the target."""
    if not target_epsilon > 0:
        raise InvalidArgumentError("target epsilon must be > 0")
    if steps < 1 or q <= 0:
        raise InvalidArgumentError("need steps >= 1 and q > 0")
    curve = lambda s: epsilon(q, s, steps, delta, orders)   # noqa: E731  (decreasing in s)
    hi = 1.0
    while curve(hi) > target_epsilon:
        hi *= 2.0
        if hi > 1e6:
            raise InvalidArgumentError("target epsilon is unreachable for this delta")
    lo = 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if mid > 0 and curve(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass
class RdpAccountant:
    """Composes sampled-Gaussian steps; ``epsilon(delta)`` reports the spend so far.

    ``peek`` answers "what if" without composing, so a budget can refuse a round first."""

    orders: tuple[float, ...] = DEFAULT_ORDERS
    rdp: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rdp is None:
            self.rdp = np.zeros(len(self.orders))
        self._cache: dict[tuple[float, float], np.ndarray] = {}

    def _step(self, q: float, sigma: float) -> np.ndarray:
        key = (float(q), float(sigma))
        if key not in self._cache:
            self._cache[key] = rdp_sampled_gaussian(q, sigma, self.orders)
        return self._cache[key]

    def compose(self, q: float, sigma: float, steps: int = 1) -> None:
        if steps < 0:
            raise InvalidArgumentError("steps must be >= 0")
        self.rdp = self.rdp + steps * self._step(q, sigma)

    def peek(self, q: float, sigma: float, steps: int, delta: float) -> float:
        """Epsilon if `steps` more steps of (q, sigma) were composed (nothing changes)."""
        return epsilon_from_rdp(self.orders, self.rdp + steps * self._step(q, sigma), delta)[0]

    def epsilon(self, delta: float) -> float:
        return epsilon_from_rdp(self.orders, self.rdp, delta)[0]
