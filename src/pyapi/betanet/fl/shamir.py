"""t-of-n Shamir secret sharing of 32-byte secrets (docs/fl.md).

The field is GF(p) with p = 2^256 + 297, the smallest prime above 2^256, so every 32-byte
string is a field element as it is (no reduction, no bias). A share is (x, y): x is the
holder's nonzero index, y = f(x) for a random polynomial f of degree t - 1 with
f(0) = secret, encoded as 33 bytes big-endian. Shares carry no authentication of their
own: the SecAgg protocol sends them under AEAD between the two parties.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping

from betanet.errors import InvalidArgumentError, MalformedError, UncorrectableError

__all__ = ["PRIME", "SECRET_BYTES", "SHARE_BYTES", "split", "combine"]

PRIME = 2**256 + 297
SECRET_BYTES = 32
SHARE_BYTES = 33


def _random_element(random_bytes: Callable[[int], bytes]) -> int:
    # 64 bytes reduced mod p: statistically uniform (bias below 2^-250)
    return int.from_bytes(random_bytes(64), "big") % PRIME


def split(secret: bytes, threshold: int, xs: Iterable[int],
          random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> dict[int, bytes]:
    """Shares {x: y} of `secret` for each index in xs; any `threshold` of them rebuild it,
    fewer reveal nothing about it."""
    xs = list(xs)
    if len(secret) != SECRET_BYTES:
        raise InvalidArgumentError(f"secret must be {SECRET_BYTES} bytes")
    if not 1 <= threshold <= len(xs):
        raise InvalidArgumentError(f"threshold {threshold} not in 1..{len(xs)} (the number of shares)")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise InvalidArgumentError("share indices must be distinct and nonzero")
    coeffs = [int.from_bytes(secret, "big")] + [_random_element(random_bytes)
                                                for _ in range(threshold - 1)]
    out = {}
    for x in xs:
        y = 0
        for c in reversed(coeffs):        # Horner
            y = (y * x + c) % PRIME
        out[x] = y.to_bytes(SHARE_BYTES, "big")
    coeffs.clear()
    return out


def _batch_inverse(values: list[int]) -> list[int]:
    """Inverses of nonzero field elements with one modular inversion (Montgomery's trick)."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inv = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % PRIME
        inv = inv * values[i] % PRIME
    return out


class _Interpolant:
    """The polynomial of degree < t through t points, evaluated in barycentric form:
    f(x) = l(x) * sum_i w_i y_i / (x - x_i), l(x) = prod_i (x - x_i),
    w_i = 1 / prod_{j != i} (x_i - x_j). O(t^2) set-up, O(t) per evaluation."""

    def __init__(self, points: list[tuple[int, int]]) -> None:
        self.xs = [x for x, _ in points]
        dens = []
        for i, xi in enumerate(self.xs):
            d = 1
            for j, xj in enumerate(self.xs):
                if i != j:
                    d = d * (xi - xj) % PRIME
            dens.append(d)
        self.wy = [w * y % PRIME for w, (_, y) in zip(_batch_inverse(dens), points)]

    def __call__(self, at: int) -> int:
        diffs = [(at - x) % PRIME for x in self.xs]
        ell = 1
        for d in diffs:
            ell = ell * d % PRIME
        total = 0
        for wy, inv in zip(self.wy, _batch_inverse(diffs)):
            total += wy * inv
        return ell * total % PRIME


def combine(shares: Mapping[int, bytes], threshold: int) -> bytes:
    """The secret from at least `threshold` shares. Shares beyond the threshold are checked
    against the others: an inconsistent set raises MalformedError."""
    if threshold < 1:
        raise InvalidArgumentError("threshold must be >= 1")
    if len(shares) < threshold:
        raise UncorrectableError(f"{len(shares)} shares, {threshold} needed")
    points = []
    for x, y in shares.items():
        if not 0 < x < PRIME or len(y) != SHARE_BYTES:
            raise MalformedError("malformed share")
        yv = int.from_bytes(y, "big")
        if yv >= PRIME:
            raise MalformedError("share value out of the field")
        points.append((x, yv))
    if len({x for x, _ in points}) != len(points):
        raise MalformedError("two shares with one index")
    f = _Interpolant(points[:threshold])
    for x, y in points[threshold:]:
        if f(x) != y:
            raise MalformedError("shares are inconsistent")
    secret = f(0)
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise MalformedError("shares do not encode a 32-byte secret")
    return secret.to_bytes(SECRET_BYTES, "big")
