"""Update compression: top-k with error feedback, and its SecAgg-compatible variant.

* ``TopK``: send the k largest-magnitude coordinates (indices + values) and keep the rest
  as a residual added to the next round's update (error feedback, Stich et al. 2018), so
  nothing is lost, only delayed. For rounds without SecAgg: the indices depend on the data.
* ``SharedTopK`` (SecAgg-compatible): every participant sends the same k coordinates,
  chosen by a per-round seed all of them share (PRG purpose SELECT), so the masked vectors
  line up and the coordinator learns nothing from the choice; error feedback keeps the
  other coordinates for later rounds.

``wire_bytes`` counts what goes on the wire for each (4-byte values, 4-byte indices).
"""
from __future__ import annotations

import numpy as np

from betanet._native import secagg as native
from betanet.errors import InvalidArgumentError

__all__ = ["TopK", "SharedTopK", "shared_coordinates"]


def shared_coordinates(seed: bytes, round_id: int, dim: int, k: int) -> np.ndarray:
    """k distinct coordinates of 0..dim-1, sorted, from the SELECT stream of (seed, round):
    the k smallest of dim PRG words (ties broken by index), i.e. a uniform k-subset."""
    if not 0 < k <= dim:
        raise InvalidArgumentError(f"need 0 < k <= dim, got k={k}, dim={dim}")
    words = native.mask_expand(dim, seed, native.PURPOSE_SELECT, round_id)
    return np.sort(np.argpartition(words, k - 1)[:k]) if k < dim else np.arange(dim)


class TopK:
    """Top-k sparsification with error feedback for one participant."""

    def __init__(self, dim: int, k: int) -> None:
        if not 0 < k <= dim:
            raise InvalidArgumentError(f"need 0 < k <= dim, got k={k}, dim={dim}")
        self.k = k
        self.residual = np.zeros(dim)

    def compress(self, update: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices, values) to send; the rest is kept for the next call."""
        acc = self.residual + np.asarray(update, dtype=np.float64)
        idx = np.sort(np.argpartition(np.abs(acc), acc.size - self.k)[acc.size - self.k:])
        values = acc[idx].copy()
        acc[idx] = 0.0
        self.residual = acc
        return idx.astype(np.uint32), values

    @staticmethod
    def decompress(dim: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.zeros(dim)
        out[idx] = values
        return out

    def wire_bytes(self) -> int:
        return 8 * self.k


class SharedTopK:
    """The SecAgg-compatible variant: coordinates from a shared per-round seed."""

    def __init__(self, dim: int, k: int) -> None:
        if not 0 < k <= dim:
            raise InvalidArgumentError(f"need 0 < k <= dim, got k={k}, dim={dim}")
        self.dim, self.k = dim, k
        self.residual = np.zeros(dim)

    def compress(self, update: np.ndarray, seed: bytes, round_id: int) -> np.ndarray:
        """The k values at this round's shared coordinates (mask and sum these)."""
        acc = self.residual + np.asarray(update, dtype=np.float64)
        idx = shared_coordinates(seed, round_id, self.dim, self.k)
        values = acc[idx].copy()
        acc[idx] = 0.0
        self.residual = acc
        return values

    def decompress(self, values: np.ndarray, seed: bytes, round_id: int) -> np.ndarray:
        out = np.zeros(self.dim)
        out[shared_coordinates(seed, round_id, self.dim, self.k)] = values
        return out

    def wire_bytes(self) -> int:
        return 4 * self.k         # indices are implied by the seed
