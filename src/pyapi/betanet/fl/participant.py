"""The asyncio FL participant client: for each Task of the coordinator service
(``betanet.fl.coordinator``) it trains, clips, adds its noise share, quantises and runs the
SecAgg+ round (``betanet.fl.secagg``) over a ``betanet.fl.transport`` channel, and signs a
receipt for what it sent (docs/fl.md, "Orchestrator").
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Callable, Mapping, Protocol

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet._log import escape
from betanet._native import secagg as native
from betanet.errors import BetanetError, InvalidArgumentError
from betanet.fl import dp
from betanet.fl import wire
from betanet.fl.compression import SharedTopK, TopK
from betanet.fl.receipts import ParticipationReceipt, digest
from betanet.fl.rounds import TICK, masked_hash
from betanet.fl.secagg import Participant, Stage
from betanet.fl.transport import Channel

log = logging.getLogger(__name__)

__all__ = ["ParticipantClient", "Trainer"]


class Trainer(Protocol):
    def __call__(self, model: np.ndarray, round_id: int) -> tuple[np.ndarray, int]:
        """The participant's model update (same shape as ``model``) and its sample count."""
        ...


class ParticipantClient:
    """A participant: connects, then for each Task trains (``trainer`` in a worker thread),
    clips, adds its noise share, quantises and runs the SecAgg+ round; signs a receipt for
    the masked input it sent. ``outcomes``: round id -> Outcome received."""

    def __init__(self, my_id: int, transport, trainer: Trainer, *, identity: Ed25519PrivateKey,
                 directory: Mapping[int, bytes], stage_timeout: float = 30.0,
                 rng: np.random.Generator | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.id = my_id
        self.transport = transport
        self.trainer = trainer
        self._identity = identity
        self._directory = dict(directory)
        self._timeout = stage_timeout
        self._rng = rng or np.random.default_rng(secrets.randbits(128))
        self._clock = clock
        self.outcomes: dict[int, wire.Outcome] = {}
        self.receipts: dict[int, ParticipationReceipt] = {}
        self.errors: list[str] = []
        self._round: Participant | None = None
        self._topk: TopK | SharedTopK | None = None       # error feedback across rounds
        self._pending: tuple[int, bytes, int, int] | None = None  # round, model hash, samples, dim

    async def run(self, rounds: int | None = None) -> None:
        """Serve tasks until the coordinator closes the channel (or ``rounds`` outcomes)."""
        ch = await self.transport.connect()
        try:
            while rounds is None or len(self.outcomes) < rounds:
                try:
                    if self._round is None or self._round.stage in (Stage.DONE, Stage.ABORTED):
                        data = await ch.recv()        # idle: no deadline to watch
                    else:
                        data = await asyncio.wait_for(ch.recv(), TICK * 4)
                except asyncio.TimeoutError:
                    if self._round is not None:
                        self._round.tick(self._clock())
                    continue
                except ConnectionError:
                    return
                await self._on_frame(ch, data)
        finally:
            await ch.close()

    async def _on_frame(self, ch: Channel, data: bytes) -> None:
        try:
            kind, body = wire.unframe(data)
            if kind == wire.KIND_TASK:
                await self._on_task(ch, wire.decode_task(body))
            elif kind == wire.KIND_SECAGG:
                await self._on_secagg(ch, body)
            elif kind == wire.KIND_OUTCOME:
                o = wire.decode_outcome(body)
                self.outcomes[o.round_id] = o
                self._round = None
            else:
                raise InvalidArgumentError(f"a coordinator does not send frame kind {kind}")
        except BetanetError as exc:
            self.errors.append(str(exc))
            log.info("FL participant %d: %s", self.id, escape(exc))

    def _compressor(self, cls, dim: int, k: int):
        if not (isinstance(self._topk, cls) and self._topk.k == k and self._topk.residual.size == dim):
            self._topk = cls(dim, k)
        return self._topk

    async def _on_task(self, ch: Channel, task: wire.Task) -> None:
        update, samples = await asyncio.to_thread(self.trainer, task.model.copy(), task.round_id)
        update = np.asarray(update, dtype=np.float64)
        if update.shape != task.model.shape:
            raise InvalidArgumentError(f"trainer returned shape {update.shape}, model is {task.model.shape}")
        model_hash = digest(task.model.tobytes())
        if not task.secure:
            if task.topk:
                idx, values = self._compressor(TopK, update.size, task.topk).compress(update)
                u = wire.Update(task.round_id, update.size, dp.clip_l2(values, task.clip), idx)
            else:
                u = wire.Update(task.round_id, update.size, dp.clip_l2(update, task.clip))
            body = wire.encode_update(u)
            await ch.send(wire.frame(wire.KIND_UPDATE, body))
            r = ParticipationReceipt.sign(self._identity, task.round_id, model_hash, digest(body),
                                          int(samples), flops=6 * int(samples) * update.size)
            self.receipts[task.round_id] = r
            await ch.send(wire.frame(wire.KIND_RECEIPT, r.to_bytes()))
            return
        if task.topk:
            update = self._compressor(SharedTopK, update.size, task.topk).compress(
                update, task.select_seed, task.round_id)
        # clip to the L2 bound, add this participant's share of the aggregate noise
        noisy = dp.clip_l2(update, task.clip) + self._rng.normal(0.0, task.noise_std, update.shape)
        vector = native.quantize(noisy, task.qrange, task.levels, secrets.token_bytes(32), task.round_id)
        self._round = Participant(self.id, task.round_id, vector, timeout=self._timeout,
                                  now=self._clock(), identity=self._identity, directory=self._directory)
        self._pending = (task.round_id, model_hash, int(samples), task.model.size)

    async def _on_secagg(self, ch: Channel, body: bytes) -> None:
        p = self._round
        if p is None:
            raise InvalidArgumentError("SecAgg message outside a round")
        p.receive(body, self._clock())
        for out in p.data_to_send():
            await ch.send(wire.frame(wire.KIND_SECAGG, out))
            h = masked_hash(out)
            if h is not None and self._pending is not None:
                rid, model_hash, samples, dim = self._pending
                # estimate: forward + backward pass ~ 6 FLOPs per parameter per sample
                r = ParticipationReceipt.sign(self._identity, rid, model_hash, h, samples,
                                              flops=6 * samples * dim)
                self.receipts[rid] = r
                await ch.send(wire.frame(wire.KIND_RECEIPT, r.to_bytes()))
