"""The asyncio FL coordinator service: runs SecAgg+ rounds (``betanet.fl.secagg``) with the
participant clients (``betanet.fl.participant``) over ``betanet.fl.transport`` channels
(docs/fl.md, "Orchestrator").

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
from typing import Callable, Mapping

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet._log import escape
from betanet._native import secagg as native
from betanet.errors import BetanetError, ExpiredError, InvalidArgumentError
from betanet.fl import dp
from betanet.fl import wire
from betanet.fl.budget import PrivacyBudgetManager
from betanet.fl.compression import shared_coordinates
from betanet.fl.graph import choose_parameters
from betanet.fl.receipts import AggregateReceipt, ParticipationReceipt, digest
from betanet.fl.rounds import TICK, RoundPlan, RoundResult, masked_hash, quantisation_levels
from betanet.fl.secagg import Coordinator, Stage
from betanet.fl.transport import Channel

log = logging.getLogger(__name__)

__all__ = ["CoordinatorService"]


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
                peer, data = await asyncio.wait_for(self._inbox.get(), TICK)
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
                peer, data = await asyncio.wait_for(self._inbox.get(), min(left, TICK * 4))
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
                h = masked_hash(body)
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
