"""The asyncio FL orchestrator: a coordinator service and participant clients that run
SecAgg+ rounds (``betanet.fl.secagg``) over ``betanet.fl.transport`` channels (docs/fl.md,
"Orchestrator").

One round, as the coordinator runs it:

1. charge the privacy budget *before* anything runs (BudgetExceededError: no round);
2. Poisson-sample participants from the whole registered population at ``plan.sample_rate``
   -- the same number the charge used (``RoundPlan`` is the one place for it), so the
   accountant's sampled-Gaussian assumption is what actually happens; a sampled participant
   that is not connected simply drops out;
3. send each sampled participant a ``Task`` (model, clip, its share of the noise,
   quantisation); it trains, clips, adds its noise share, quantises and takes part in the
   SecAgg+ round; every stage closes after ``plan.stage_timeout`` seconds, and whoever has
   not answered by then has dropped out;
4. on success, dequantise the sum, check each survivor's signed receipt against the masked
   input it sent, sign the aggregate receipt and send it to the participants; the model
   moves by ``server_lr * sum / (sample_rate * population)`` (the expected, not the
   realised, count: dividing by the realised count would leak it).
"""
from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet._log import escape
from betanet._native import secagg as native
from betanet.errors import BetanetError, ExpiredError, InvalidArgumentError
from betanet.fl import dp
from betanet.fl import messages as m
from betanet.fl.compression import SharedTopK, TopK, shared_coordinates
from betanet.fl import wire
from betanet.fl.budget import PrivacyBudgetManager
from betanet.fl.graph import choose_parameters
from betanet.fl.receipts import AggregateReceipt, ParticipationReceipt, digest
from betanet.fl.secagg import Coordinator, Participant, Stage
from betanet.fl.transport import Channel

log = logging.getLogger(__name__)

__all__ = ["RoundPlan", "RoundResult", "CoordinatorService", "ParticipantClient", "Trainer",
           "quantisation_levels"]

_MASKED_TYPE = m.Masked.TYPE
_TICK = 0.05                      # how often deadlines are checked while waiting (seconds)


class Trainer(Protocol):
    def __call__(self, model: np.ndarray, round_id: int) -> tuple[np.ndarray, int]:
        """The participant's model update (same shape as ``model``) and its sample count."""
        ...


@dataclass(frozen=True)
class RoundPlan:
    """Everything a round's privacy depends on, in one place: the participant sample rate
    (used both to sample and to charge the budget), the noise multiplier, the L2 clip of an
    update; plus the tolerated dropout/corruption rates (they choose the SecAgg+ degree,
    threshold and minimum survivors) and the per-stage timeout. ``secure`` = False runs
    rounds without SecAgg (participants send clipped updates in the clear; the coordinator,
    then trusted, adds the noise: central DP); ``topk`` > 0 sends k coordinates per update
    (with SecAgg: k chosen by a shared per-round seed; without: the k largest, with error
    feedback)."""
    sample_rate: float
    noise_multiplier: float
    clip: float
    dropout: float = 0.3
    corruption: float = 0.0
    stage_timeout: float = 30.0
    server_lr: float = 1.0
    qrange_sigmas: float = 6.0     # quantisation range: clip + this many noise-share deviations
    secure: bool = True
    topk: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise InvalidArgumentError(f"sample rate must be in (0, 1], got {self.sample_rate}")
        if not (self.clip > 0 and math.isfinite(self.clip)):
            raise InvalidArgumentError("clip must be finite and > 0")
        if not (self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)):
            raise InvalidArgumentError("noise multiplier must be finite and >= 0")
        if not self.stage_timeout > 0:
            raise InvalidArgumentError("stage timeout must be > 0")


@dataclass
class RoundResult:
    round_id: int
    sampled: list[int]
    survivors: list[int] = field(default_factory=list)
    aggregate: np.ndarray | None = None          # dequantised noisy sum of the survivors' updates
    receipt: AggregateReceipt | None = None
    receipts: list[ParticipationReceipt] = field(default_factory=list)
    epsilon: float = 0.0                         # spent after this round (budget's delta)
    error: str = ""                              # why the round aborted ("" when it completed)
    uplink_bytes: int = 0                        # frames received from participants this round

    @property
    def ok(self) -> bool:
        return not self.error


def quantisation_levels(n: int) -> int:
    """Levels per coordinate so that n quantised inputs sum without wrapping mod 2^32
    (a power of two, as docs/fl.md states)."""
    return 1 << ((2**32 // (n + 1)).bit_length() - 1)


def _masked_hash(secagg_message: bytes) -> bytes | None:
    """The digest a receipt names for a Masked message (None for other messages)."""
    if len(secagg_message) > 3 and secagg_message[3] == _MASKED_TYPE:
        return digest(secagg_message)
    return None


class CoordinatorService:
    """Runs rounds over the participants that connect through ``transport``.

    ``directory``: participant id -> Ed25519 identity public key (signs round keys,
    consistency lists and receipts); ``budget``: the persistent privacy budget (None: no
    differential-privacy claim at all, rounds report epsilon = inf); ``identity``: the coordinator's Ed25519 key for aggregate receipts."""

    def __init__(self, transport, plan: RoundPlan, model: np.ndarray, *,
                 directory: Mapping[int, bytes], budget: PrivacyBudgetManager | None,
                 identity: Ed25519PrivateKey, rng: np.random.Generator | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if len(directory) < 3:
            raise InvalidArgumentError("an FL population needs at least 3 participants")
        self.transport = transport
        self.plan = plan
        self.model = np.array(model, dtype=np.float64)
        self.directory = dict(directory)
        self.budget = budget
        self._identity = identity
        self._rng = rng or np.random.default_rng(secrets.randbits(128))
        self._clock = clock
        self.channels: dict[int, Channel] = {}
        self._inbox: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._joined = asyncio.Event()
        self._rounds = 0

    # -- connections --
    async def start(self) -> None:
        await self.transport.start(self._serve_channel)

    async def close(self) -> None:
        for ch in list(self.channels.values()):
            try:
                await ch.close()
            except Exception:       # already gone
                pass
        await self.transport.close()

    async def _serve_channel(self, ch: Channel) -> None:
        self.channels[ch.peer] = ch
        self._joined.set()
        try:
            while True:
                self._inbox.put_nowait((ch.peer, await ch.recv()))
        except (ConnectionError, BetanetError) as exc:
            log.info("FL: participant %d left: %s", ch.peer, escape(exc))
        finally:
            if self.channels.get(ch.peer) is ch:
                del self.channels[ch.peer]

    async def wait_connected(self, count: int, timeout: float) -> None:
        """Until ``count`` participants are connected (ExpiredError after ``timeout``)."""
        async def wait() -> None:
            while len(self.channels) < count:
                self._joined.clear()
                await self._joined.wait()
        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise ExpiredError(f"{len(self.channels)} of {count} participants connected "
                               f"within {timeout:g} s") from None

    async def _send(self, peer: int, data: bytes) -> None:
        ch = self.channels.get(peer)
        if ch is None:
            return                  # not connected: it drops out at the stage deadline
        try:
            await ch.send(data)
        except (ConnectionError, BetanetError) as exc:
            log.info("FL: cannot send to %d: %s", peer, escape(exc))

    # -- rounds --
    def _next_round_id(self) -> int:
        # from the budget's own record, so a restarted service never reuses a round id
        return len(self.budget.rounds()) + 1 if self.budget is not None else self._rounds + 1

    def expected_participants(self) -> float:
        return self.plan.sample_rate * len(self.directory)

    async def run_round(self) -> RoundResult:
        """One round (module docstring). BudgetExceededError if the budget refuses it."""
        plan = self.plan
        if plan.topk > self.model.size:      # before the charge: a bad plan spends nothing
            raise InvalidArgumentError(f"top-k {plan.topk} > model size {self.model.size}")
        rid = self._next_round_id()
        eps = math.inf
        if self.budget is not None:
            eps = self.budget.charge(f"round-{rid}", plan.sample_rate, plan.noise_multiplier).epsilon_after
        self._rounds += 1
        sampled = dp.poisson_sample(sorted(self.directory), plan.sample_rate, self._rng)
        result = RoundResult(rid, sampled, epsilon=eps)
        if not plan.secure:
            return await self._plain_round(result)
        dim = plan.topk or self.model.size
        try:
            params = choose_parameters(len(sampled), plan.dropout, plan.corruption, dim)
        except InvalidArgumentError as exc:
            result.error = f"{len(sampled)} sampled: {exc}"
            return result
        noise_std = dp.client_noise_std(plan.clip, plan.noise_multiplier, params.min_survivors)
        task = wire.Task(rid, self.model, plan.clip, noise_std,
                         plan.clip + plan.qrange_sigmas * noise_std, quantisation_levels(len(sampled)),
                         True, plan.topk, secrets.token_bytes(32))
        model_hash = digest(self.model.tobytes())
        coord = Coordinator(rid, sampled, params, stage_timeout=plan.stage_timeout,
                            now=self._clock(), directory=self.directory)
        task_frame = wire.frame(wire.KIND_TASK, wire.encode_task(task))
        await asyncio.gather(*(self._send(p, task_frame) for p in sampled))
        masked_hashes: dict[int, bytes] = {}
        receipts: dict[int, ParticipationReceipt] = {}
        while not coord.finished:
            await self._flush(coord)
            try:
                peer, data = await asyncio.wait_for(self._inbox.get(), _TICK)
            except asyncio.TimeoutError:
                coord.tick(self._clock())
                continue
            if peer in coord.invited:
                result.uplink_bytes += len(data)
            self._on_frame(coord, peer, data, model_hash, masked_hashes, receipts)
            coord.tick(self._clock())
        await self._flush(coord)
        if coord.stage is not Stage.DONE:
            result.error = coord.abort_reason
            await self._outcome(sampled, wire.Outcome(rid, False, coord.abort_reason.encode()))
            return result
        assert coord.result is not None
        result.survivors = coord.survivors
        total = native.dequantize(coord.result, task.qrange, task.levels, len(coord.survivors))
        if plan.topk:
            result.aggregate = np.zeros(self.model.size)
            result.aggregate[shared_coordinates(task.select_seed, rid, self.model.size, plan.topk)] = total
        else:
            result.aggregate = total
        result.receipts = [r for p, r in sorted(receipts.items())
                           if p in coord.survivors and masked_hashes.get(p) == r.update_hash]
        result.receipt = AggregateReceipt.sign(self._identity, rid, model_hash,
                                               digest(coord.result.tobytes()), result.receipts)
        self.model += plan.server_lr * result.aggregate / self.expected_participants()
        await self._outcome(sampled, wire.Outcome(rid, True, result.receipt.to_bytes()))
        return result

    async def _plain_round(self, result: RoundResult) -> RoundResult:
        """A round without SecAgg: clipped updates in the clear (re-clipped here, so no one
        exceeds the sensitivity), central Gaussian noise on their sum."""
        plan, rid, sampled = self.plan, result.round_id, result.sampled
        task = wire.Task(rid, self.model, plan.clip, 0.0, 1.0, 1, False, plan.topk)
        model_hash = digest(self.model.tobytes())
        data = wire.frame(wire.KIND_TASK, wire.encode_task(task))
        await asyncio.gather(*(self._send(p, data) for p in sampled))
        updates: dict[int, np.ndarray] = {}
        hashes: dict[int, bytes] = {}
        receipts: dict[int, ParticipationReceipt] = {}
        deadline = self._clock() + plan.stage_timeout
        while not set(sampled) <= set(updates).intersection(receipts):
            left = deadline - self._clock()
            if left <= 0:
                break
            try:
                peer, data = await asyncio.wait_for(self._inbox.get(), min(left, _TICK * 4))
            except asyncio.TimeoutError:
                continue
            if peer not in sampled:
                continue
            result.uplink_bytes += len(data)
            try:
                kind, body = wire.unframe(data)
                if kind == wire.KIND_UPDATE:
                    if peer in updates:
                        raise InvalidArgumentError("second update in one round")
                    u = wire.decode_update(body)
                    if u.round_id != rid or u.dim != self.model.size:
                        raise InvalidArgumentError("update for another round or model")
                    updates[peer] = dp.clip_l2(u.dense(), plan.clip)
                    hashes[peer] = digest(body)
                elif kind == wire.KIND_RECEIPT:
                    receipts[peer] = self._receipt(peer, body, rid, model_hash)
                else:
                    raise InvalidArgumentError(f"frame kind {kind} in a plain round")
            except BetanetError as exc:
                log.info("FL: frame from %d refused: %s", peer, escape(exc))
        if not updates:
            result.error = "no update arrived before the deadline"
            await self._outcome(sampled, wire.Outcome(rid, False, result.error.encode()))
            return result
        total = sum(updates.values())
        if plan.noise_multiplier > 0:
            total = dp.noise_aggregate(total, plan.clip, plan.noise_multiplier, self._rng)
        result.survivors = sorted(updates)
        result.aggregate = total
        result.receipts = [r for p, r in sorted(receipts.items()) if hashes.get(p) == r.update_hash]
        result.receipt = AggregateReceipt.sign(self._identity, rid, model_hash,
                                               digest(np.asarray(total, dtype="<f8").tobytes()),
                                               result.receipts)
        self.model += plan.server_lr * total / self.expected_participants()
        await self._outcome(sampled, wire.Outcome(rid, True, result.receipt.to_bytes()))
        return result

    def _receipt(self, peer: int, body: bytes, rid: int, model_hash: bytes) -> ParticipationReceipt:
        r = ParticipationReceipt.from_bytes(body)
        r.verify()
        if r.round_id != rid or r.model_hash != model_hash or r.participant_pk != self.directory.get(peer):
            raise InvalidArgumentError("receipt for another round, model or participant")
        return r

    async def _flush(self, coord: Coordinator) -> None:
        out = coord.data_to_send()
        if out:
            await asyncio.gather(*(self._send(p, wire.frame(wire.KIND_SECAGG, d)) for p, d in out))

    async def _outcome(self, sampled: list[int], outcome: wire.Outcome) -> None:
        data = wire.frame(wire.KIND_OUTCOME, wire.encode_outcome(outcome))
        await asyncio.gather(*(self._send(p, data) for p in sampled))

    def _on_frame(self, coord: Coordinator, peer: int, data: bytes, model_hash: bytes,
                  masked_hashes: dict[int, bytes], receipts: dict[int, ParticipationReceipt]) -> None:
        try:
            kind, body = wire.unframe(data)
            if kind == wire.KIND_SECAGG:
                h = _masked_hash(body)
                coord.receive(peer, body, self._clock())
                if h is not None:
                    masked_hashes[peer] = h
            elif kind == wire.KIND_RECEIPT:
                receipts[peer] = self._receipt(peer, body, coord.round_id, model_hash)
            else:
                raise InvalidArgumentError(f"a participant does not send frame kind {kind}")
        except BetanetError as exc:
            # stale, replayed or malformed frames cost the sender, never the round
            log.info("FL: frame from %d refused: %s", peer, escape(exc))


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
                        data = await asyncio.wait_for(ch.recv(), _TICK * 4)
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
            h = _masked_hash(out)
            if h is not None and self._pending is not None:
                rid, model_hash, samples, dim = self._pending
                # estimate: forward + backward pass ~ 6 FLOPs per parameter per sample
                r = ParticipationReceipt.sign(self._identity, rid, model_hash, h, samples,
                                              flops=6 * samples * dim)
                self.receipts[rid] = r
                await ch.send(wire.frame(wire.KIND_RECEIPT, r.to_bytes()))
