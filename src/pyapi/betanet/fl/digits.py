"""A real federated task: scikit-learn's bundled handwritten digits (8x8 images, 10 classes,
1 797 samples, no download) split non-IID across participants, and a NumPy model held as
one float64 parameter vector -- multinomial logistic regression, or a one-hidden-layer MLP
with ``hidden`` > 0. Needs the ``fl`` extra (scikit-learn)."""
from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from betanet.errors import InvalidArgumentError

__all__ = ["Dataset", "available", "load", "split_non_iid", "Model", "local_update", "accuracy"]

FEATURES, CLASSES = 64, 10


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def available() -> bool:
    """True when scikit-learn (which ships the digits) is installed; does not import it."""
    return importlib.util.find_spec("sklearn") is not None


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(pixels, labels) of the digits scikit-learn ships. Its CSV file is read directly, as
    ``load_digits`` reads it (a test checks they agree): importing scikit-learn pulls in
    SciPy, ~1 s, longer than the demo's whole training run."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise InvalidArgumentError("the digits task needs scikit-learn: pip install 'betanet[fl]'")
    for where in spec.submodule_search_locations or ():
        path = Path(where, "datasets", "data", "digits.csv.gz")
        if path.is_file():
            with gzip.open(path, "rt") as f:
                table = np.loadtxt(f, delimiter=",")
            return table[:, :-1], table[:, -1]
    from sklearn.datasets import load_digits       # a release that keeps the file elsewhere
    d = load_digits()
    return d.data, d.target


def load(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The digits, pixels scaled to [0, 1], a stratified-by-chance random test split."""
    pixels, labels = _read_digits()
    x, y = pixels.astype(np.float64) / 16.0, labels.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - test_fraction))
    tr, te = order[:cut], order[cut:]
    return Dataset(x[tr], y[tr], x[te], y[te])


def split_non_iid(y: np.ndarray, participants: int, classes_each: int = 2,
                  seed: int = 0) -> list[np.ndarray]:
    """Indices per participant: the samples sorted by label, cut into
    ``participants * classes_each`` shards, each participant given ``classes_each`` random
    shards -- so most participants see only a couple of digits (the usual non-IID split)."""
    if participants < 1 or classes_each < 1 or participants * classes_each > len(y):
        raise InvalidArgumentError("too many participants or shards for the data")
    rng = np.random.default_rng(seed)
    by_label = np.argsort(y, kind="stable")
    shards = np.array_split(by_label, participants * classes_each)
    order = rng.permutation(len(shards))
    return [np.concatenate([shards[j] for j in order[i * classes_each:(i + 1) * classes_each]])
            for i in range(participants)]


class Model:
    """Softmax regression (``hidden`` = 0) or a ReLU MLP with one hidden layer."""

    def __init__(self, hidden: int = 0) -> None:
        if hidden < 0:
            raise InvalidArgumentError("hidden units must be >= 0")
        self.hidden = hidden
        if hidden:
            self.shapes = [(FEATURES, hidden), (hidden,), (hidden, CLASSES), (CLASSES,)]
        else:
            self.shapes = [(FEATURES, CLASSES), (CLASSES,)]
        self.size = sum(int(np.prod(s)) for s in self.shapes)

    def init(self, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        parts = []
        for s in self.shapes:
            parts.append(rng.normal(0, 1 / np.sqrt(s[0]), s).ravel() if len(s) == 2 else np.zeros(s))
        return np.concatenate(parts)

    def _unpack(self, params: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for s in self.shapes:
            n = int(np.prod(s))
            out.append(params[i:i + n].reshape(s))
            i += n
        return out

    def logits(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        p = self._unpack(params)
        if self.hidden:
            return np.maximum(x @ p[0] + p[1], 0) @ p[2] + p[3]
        return x @ p[0] + p[1]

    def gradient(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Mean cross-entropy gradient over the batch, flat like ``params``."""
        p = self._unpack(params)
        onehot = np.eye(CLASSES)[y]
        if self.hidden:
            h_pre = x @ p[0] + p[1]
            h = np.maximum(h_pre, 0)
            z = h @ p[2] + p[3]
        else:
            h, z = x, x @ p[0] + p[1]
        z = z - z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        dz = (prob - onehot) / len(y)
        if not self.hidden:
            return np.concatenate([(x.T @ dz).ravel(), dz.sum(axis=0)])
        dh = (dz @ p[2].T) * (h_pre > 0)
        return np.concatenate([(x.T @ dh).ravel(), dh.sum(axis=0), (h.T @ dz).ravel(), dz.sum(axis=0)])


def local_update(model: Model, params: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 epochs: int = 5, lr: float = 0.5, batch: int = 16, seed: int = 0) -> np.ndarray:
    """Plain local SGD from ``params``; returns the update (new - old). Privacy comes from
    clipping this update and the aggregate's noise (client-level DP), not from here."""
    rng = np.random.default_rng(seed)
    w = params.copy()
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y), batch):
            b = order[i:i + batch]
            w -= lr * model.gradient(w, x[b], y[b])
    return w - params


def accuracy(model: Model, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.logits(params, x).argmax(axis=1) == y))
