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

__all__ = ["Task", "Outcome", "KIND_SECAGG", "KIND_TASK", "KIND_RECEIPT", "KIND_OUTCOME",
           "frame", "unframe", "encode_task", "decode_task", "encode_outcome", "decode_outcome"]

KIND_SECAGG = 1       # a betanet.fl.messages message
KIND_TASK = 2         # coordinator -> participant: train on this model for this round
KIND_RECEIPT = 3      # participant -> coordinator: its signed ParticipationReceipt
KIND_OUTCOME = 4      # coordinator -> participant: the round's aggregate receipt (or failure)

_TASK = struct.Struct("<QdddIQ")


@dataclass(frozen=True)
class Task:
    """What a sampled participant needs to build its input: the global model (float64
    parameters), the L2 ``clip`` of its update, the standard deviation of its share of the
    aggregate noise, the quantisation range [-qrange, qrange] and ``levels``."""
    round_id: int
    model: np.ndarray
    clip: float
    noise_std: float
    qrange: float
    levels: int


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
    if data[0] not in (KIND_SECAGG, KIND_TASK, KIND_RECEIPT, KIND_OUTCOME):
        raise MalformedError(f"unknown FL frame kind {data[0]}")
    return data[0], bytes(data[1:])


def encode_task(t: Task) -> bytes:
    model = np.ascontiguousarray(t.model, dtype="<f8")
    return _TASK.pack(t.round_id, t.clip, t.noise_std, t.qrange, t.levels, model.size) + model.tobytes()


def decode_task(body: bytes) -> Task:
    if len(body) < _TASK.size:
        raise MalformedError("truncated task")
    rid, clip, noise, qrange, levels, n = _TASK.unpack_from(body)
    if len(body) != _TASK.size + 8 * n:
        raise MalformedError("task length does not match its parameter count")
    if not (clip > 0 and noise >= 0 and qrange > 0 and levels >= 1):
        raise MalformedError("task has invalid clip, noise, range or levels")
    model = np.frombuffer(body, dtype="<f8", offset=_TASK.size).astype(np.float64)
    if not np.all(np.isfinite(model)):
        raise MalformedError("task model has NaN or infinite parameters")
    return Task(rid, model, clip, noise, qrange, levels)


def encode_outcome(o: Outcome) -> bytes:
    return struct.pack("<QB", o.round_id, 1 if o.ok else 0) + o.detail


def decode_outcome(body: bytes) -> Outcome:
    if len(body) < 9 or body[8] > 1:
        raise MalformedError("bad outcome")
    (rid,) = struct.unpack_from("<Q", body)
    return Outcome(rid, body[8] == 1, body[9:])
