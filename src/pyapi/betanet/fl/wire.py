"""Frames between an FL coordinator service and its participants (docs/fl.md, "Orchestrator").

Every frame: one kind byte, then the body. ``KIND_SECAGG`` carries a SecAgg+ round message
(``betanet.fl.messages``) unchanged; the others are the orchestrator's own. Integers are
little-endian; decoding is strict (MalformedError on any length mismatch).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from betanet.errors import MalformedError

__all__ = ["Task", "Outcome", "Update", "KIND_SECAGG", "KIND_TASK", "KIND_RECEIPT", "KIND_OUTCOME",
           "KIND_UPDATE", "frame", "unframe", "encode_task", "decode_task", "encode_outcome",
           "decode_outcome", "encode_update", "decode_update"]

KIND_SECAGG = 1       # a betanet.fl.messages message
KIND_TASK = 2         # coordinator -> participant: train on this model for this round
KIND_RECEIPT = 3      # participant -> coordinator: its signed ParticipationReceipt
KIND_OUTCOME = 4      # coordinator -> participant: the round's aggregate receipt (or failure)
KIND_UPDATE = 5       # participant -> coordinator: a plain (clipped) update, rounds without SecAgg
_KINDS = (KIND_SECAGG, KIND_TASK, KIND_RECEIPT, KIND_OUTCOME, KIND_UPDATE)

_TASK = struct.Struct("<QdddIBI32sQ")
_UPDATE = struct.Struct("<QQI")


@dataclass(frozen=True)
class Task:
    """What a sampled participant needs to build its input: the global model (float64
    parameters), the L2 ``clip`` of its update, the standard deviation of its share of the
    aggregate noise, the quantisation range [-qrange, qrange] and ``levels``; ``secure``:
    SecAgg+ (else a plain ``Update``); ``topk`` > 0: send only k coordinates -- with SecAgg
    the k chosen by ``select_seed`` (shared by all), without it the k largest."""
    round_id: int
    model: np.ndarray
    clip: float
    noise_std: float
    qrange: float
    levels: int
    secure: bool = True
    topk: int = 0
    select_seed: bytes = bytes(32)


@dataclass(frozen=True)
class Update:
    """A plain update: ``values`` at ``indices`` (all coordinates when ``indices`` is None)."""
    round_id: int
    dim: int
    values: np.ndarray
    indices: np.ndarray | None = None

    def dense(self) -> np.ndarray:
        if self.indices is None:
            return self.values.astype(np.float64)
        out = np.zeros(self.dim)
        out[self.indices] = self.values
        return out


@dataclass(frozen=True)
class Outcome:
    round_id: int
    ok: bool
    detail: bytes        # the AggregateReceipt's bytes when ok, else a UTF-8 reason


def frame(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + body


def unframe(data: bytes) -> tuple[int, bytes]:
    if not data:
        raise MalformedError("empty FL frame")
    if data[0] not in _KINDS:
        raise MalformedError(f"unknown FL frame kind {data[0]}")
    return data[0], bytes(data[1:])


def encode_task(t: Task) -> bytes:
    model = np.ascontiguousarray(t.model, dtype="<f8")
    if len(t.select_seed) != 32:
        raise MalformedError("select seed must be 32 bytes")
    return _TASK.pack(t.round_id, t.clip, t.noise_std, t.qrange, t.levels, 1 if t.secure else 0,
                      t.topk, t.select_seed, model.size) + model.tobytes()


def decode_task(body: bytes) -> Task:
    if len(body) < _TASK.size:
        raise MalformedError("truncated task")
    rid, clip, noise, qrange, levels, secure, topk, seed, n = _TASK.unpack_from(body)
    if len(body) != _TASK.size + 8 * n:
        raise MalformedError("task length does not match its parameter count")
    if not (clip > 0 and noise >= 0 and qrange > 0 and levels >= 1) or secure > 1 or topk > n:
        raise MalformedError("task has invalid clip, noise, range, levels, mode or top-k")
    model = np.frombuffer(body, dtype="<f8", offset=_TASK.size).astype(np.float64)
    if not np.all(np.isfinite(model)):
        raise MalformedError("task model has NaN or infinite parameters")
    return Task(rid, model, clip, noise, qrange, levels, secure == 1, topk, seed)


def encode_update(u: Update) -> bytes:
    """round u64, dim u64, count u32 (0xFFFFFFFF: dense), then count x (index u32) and the
    values as f32 -- what a phone would send."""
    values = np.ascontiguousarray(u.values, dtype="<f4")
    if u.indices is None:
        return _UPDATE.pack(u.round_id, u.dim, 0xFFFFFFFF) + values.tobytes()
    idx = np.ascontiguousarray(u.indices, dtype="<u4")
    return _UPDATE.pack(u.round_id, u.dim, idx.size) + idx.tobytes() + values.tobytes()


def decode_update(body: bytes) -> Update:
    if len(body) < _UPDATE.size:
        raise MalformedError("truncated update")
    rid, dim, count = _UPDATE.unpack_from(body)
    rest = len(body) - _UPDATE.size
    if count == 0xFFFFFFFF:
        if rest != 4 * dim:
            raise MalformedError("dense update length does not match its dimension")
        values = np.frombuffer(body, dtype="<f4", offset=_UPDATE.size).astype(np.float64)
        idx = None
    else:
        if rest != 8 * count or count > dim:
            raise MalformedError("sparse update length does not match its count")
        idx = np.frombuffer(body, dtype="<u4", count=count, offset=_UPDATE.size).astype(np.int64)
        values = np.frombuffer(body, dtype="<f4", offset=_UPDATE.size + 4 * count).astype(np.float64)
        if np.any(idx >= dim) or np.unique(idx).size != count:
            raise MalformedError("sparse update indices out of range or repeated")
    if not np.all(np.isfinite(values)):
        raise MalformedError("update has NaN or infinite values")
    return Update(rid, dim, values, idx)


def encode_outcome(o: Outcome) -> bytes:
    return struct.pack("<QB", o.round_id, 1 if o.ok else 0) + o.detail


def decode_outcome(body: bytes) -> Outcome:
    if len(body) < 9 or body[8] > 1:
        raise MalformedError("bad outcome")
    (rid,) = struct.unpack_from("<Q", body)
    return Outcome(rid, body[8] == 1, body[9:])
