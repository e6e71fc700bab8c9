"""A whole federated training run on one machine: a coordinator service and every
participant as asyncio clients in one process, each participant on its own HTX connection
(TLS 1.3 + Noise XK over loopback) -- or, with ``transport="node"``, every party a
``betanet.node.Node`` and FL frames node messages (``node_channel``) -- training on its non-IID share of the digits
(``betanet.fl.digits``) with client-level DP and SecAgg+; a fraction of the sampled
participants drops out mid-round (``DropoutChannel``). Used by ``betanet fl run`` and the
demo; docs/fl.md ("Training results") has the numbers."""
from __future__ import annotations

import asyncio
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet import htx
from betanet.errors import InvalidArgumentError
from betanet.fl import digits, wire
from betanet.fl import messages as m
from betanet.fl.accountant import noise_multiplier_for
from betanet.fl.budget import BudgetExceededError, PrivacyBudgetManager
from betanet.fl.node_channel import NodeCoordinatorTransport, NodeParticipantTransport, fl_identity
from betanet.fl.coordinator import CoordinatorService
from betanet.fl.participant import ParticipantClient
from betanet.fl.rounds import RoundPlan
from betanet.fl.transport import HtxCoordinatorTransport, HtxParticipantTransport
from betanet.htx.tls import write_self_signed

__all__ = ["RunConfig", "RoundRecord", "DropoutChannel", "run", "plot"]

# where a participant can be cut off: before the SecAgg message of each stage
DROP_POINTS = {"advertise": m.Advertise.TYPE, "share": m.Shares.TYPE, "masked": m.Masked.TYPE,
               "check": m.CheckSig.TYPE, "unmask": m.Unmask.TYPE}


@dataclass(frozen=True)
class RunConfig:
    participants: int = 200
    rounds: int = 15
    sample_rate: float = 0.25
    epsilon: float = 8.0             # total budget over the run; math.inf: no noise, no claim
    delta: float = 1e-5
    clip: float = 2.0
    noise_multiplier: float | None = None   # None: the least that fits `epsilon` over `rounds`
    dropout: float = 0.3             # fraction of sampled participants that drop mid-round
    # the stages they drop at (random among these); "masked": after sharing their keys,
    # before their masked input -- the case that costs the coordinator most to recover
    drop_at: tuple[str, ...] = ("masked",)
    secure: bool = True              # SecAgg+ (False: clipped updates in the clear, central noise)
    topk: int = 0                    # > 0: compress updates to k coordinates (RoundPlan.topk)
    hidden: int = 0                  # 0: softmax regression; >0: MLP hidden units
    local_epochs: int = 5
    lr: float = 0.5
    stage_timeout: float = 5.0       # all participants share this machine's CPU: be generous
    seed: int = 0
    transport: str = "htx"           # "node": every participant and the coordinator a Node (node_channel)

    def __post_init__(self) -> None:
        if self.participants < 3 or self.rounds < 1:
            raise InvalidArgumentError("need >= 3 participants and >= 1 round")
        if not 0 <= self.dropout < 1:
            raise InvalidArgumentError("dropout must be in [0, 1)")
        if not self.epsilon > 0:
            raise InvalidArgumentError("epsilon must be > 0 (math.inf: no differential privacy)")
        if not self.drop_at or any(s not in DROP_POINTS for s in self.drop_at):
            raise InvalidArgumentError(f"drop_at: stages among {sorted(DROP_POINTS)}")
        if self.transport not in ("htx", "node"):
            raise InvalidArgumentError(f"transport must be 'htx' or 'node', got {self.transport!r}")

    def noise(self) -> float:
        if self.noise_multiplier is not None:
            return self.noise_multiplier
        if math.isinf(self.epsilon):
            return 0.0
        return noise_multiplier_for(self.epsilon, self.sample_rate, self.rounds, self.delta)


@dataclass
class RoundRecord:
    round: int
    accuracy: float
    epsilon: float
    sampled: int
    survivors: int
    seconds: float
    error: str = ""
    receipts: int = 0        # participant receipts under the aggregate receipt (verified)
    uplink_bytes: int = 0    # everything the participants sent the coordinator this round


class DropoutChannel:
    """Simulates a phone losing the network mid-round: for each task, with probability
    ``rate`` it goes silent from a random stage of the round on (nothing more is sent until
    the next task). The coordinator sees exactly what a real dropout looks like."""

    def __init__(self, inner, rate: float, rng: np.random.Generator,
                 points: tuple[int, ...] = tuple(DROP_POINTS.values())) -> None:
        self._inner, self._rate, self._rng, self._points = inner, rate, rng, points
        self.peer = inner.peer
        self._cut: int | None = None
        self._silent = False

    async def recv(self) -> bytes:
        data = await self._inner.recv()
        if data[:1] == bytes([wire.KIND_TASK]):
            self._silent = False
            self._cut = (int(self._rng.choice(self._points)) if self._rng.random() < self._rate
                         else None)
        return data

    async def send(self, data: bytes) -> None:
        if self._cut is not None and (data[0] == wire.KIND_UPDATE       # plain rounds
                                      or data[0] == wire.KIND_SECAGG and data[4] == self._cut):
            self._silent = True
        if not self._silent:
            await self._inner.send(data)

    async def close(self) -> None:
        await self._inner.close()


class _DropoutTransport:
    def __init__(self, inner, rate: float, rng: np.random.Generator, points: tuple[int, ...]) -> None:
        self._inner, self._rate, self._rng, self._points = inner, rate, rng, points

    async def connect(self) -> DropoutChannel:
        return DropoutChannel(await self._inner.connect(), self._rate, self._rng, self._points)


async def run(cfg: RunConfig, on_round: Callable[[RoundRecord], None] | None = None,
              workdir: str | Path | None = None) -> list[RoundRecord]:
    """Train for ``cfg.rounds`` rounds (fewer if the budget refuses one); one record per round."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        return await _run(cfg, on_round, work)


async def _run(cfg: RunConfig, on_round, work: Path) -> list[RoundRecord]:
    data = digits.load(cfg.seed)
    model = digits.Model(cfg.hidden)
    shards = digits.split_non_iid(data.y_train, cfg.participants, 2, cfg.seed)
    noise = cfg.noise()
    # SecAgg+ must tolerate more than the mean dropout rate: a round samples a random
    # number of participants and a random number of them drops
    plan = RoundPlan(sample_rate=cfg.sample_rate, noise_multiplier=noise, clip=cfg.clip,
                     dropout=min(0.6, cfg.dropout + 0.15), stage_timeout=cfg.stage_timeout,
                     secure=cfg.secure, topk=cfg.topk)
    ids = range(1, cfg.participants + 1)
    nodes = await _start_nodes(work, cfg.participants) if cfg.transport == "node" else None
    if nodes is not None:           # a participant is its node: its key signs the round too
        identities = {i: fl_identity(nodes[i].identity) for i in ids}
        coord_identity = fl_identity(nodes[0].identity)
    else:
        cert, key = write_self_signed(work / "tls")
        server_key = htx.generate_private_key()
        htx_keys = {i: htx.generate_private_key() for i in ids}
        identities = {i: Ed25519PrivateKey.generate() for i in ids}
        coord_identity = Ed25519PrivateKey.generate()
    directory = {i: k.public_key().public_bytes_raw() for i, k in identities.items()}
    budget = None
    if noise > 0:
        (work / "budget.sqlite").unlink(missing_ok=True)
        budget = PrivacyBudgetManager(work / "budget.sqlite", cfg.epsilon, cfg.delta)
    if nodes is not None:
        transport = NodeCoordinatorTransport(nodes[0], directory)
    else:
        transport = HtxCoordinatorTransport("127.0.0.1", 0, server_key,
                                            {htx.public_key(k): i for i, k in htx_keys.items()},
                                            certfile=cert, keyfile=key,
                                            max_handshakes=cfg.participants + 1,
                                            max_handshakes_per_host=cfg.participants + 1)
    service = CoordinatorService(transport, plan, model.init(cfg.seed), directory=directory,
                                 budget=budget, identity=coord_identity,
                                 rng=np.random.default_rng(cfg.seed + 1))
    await service.start()
    rng = np.random.default_rng(cfg.seed + 2)
    tasks = []
    for i in ids:
        idx = shards[i - 1]

        def trainer(params, round_id, idx=idx, i=i):
            upd = digits.local_update(model, params, data.x_train[idx], data.y_train[idx],
                                      epochs=cfg.local_epochs, lr=cfg.lr, seed=round_id * 100003 + i)
            return upd, len(idx)

        if nodes is not None:
            t = NodeParticipantTransport(nodes[i], nodes[0].me)
        else:
            t = HtxParticipantTransport("127.0.0.1", service.transport.port, htx.public_key(server_key),
                                        htx_keys[i], cafile=cert)
        drops = _DropoutTransport(t, cfg.dropout, rng, tuple(DROP_POINTS[s] for s in cfg.drop_at))
        client = ParticipantClient(i, drops, trainer,
                                   identity=identities[i], directory=directory,
                                   stage_timeout=cfg.stage_timeout * 6,
                                   rng=np.random.default_rng(cfg.seed * 7919 + i))
        tasks.append(asyncio.create_task(client.run()))
    records: list[RoundRecord] = []
    try:
        await service.wait_connected(cfg.participants, 60)
        for _ in range(cfg.rounds):
            t0 = time.perf_counter()
            try:
                r = await service.run_round()
            except BudgetExceededError:
                break
            if r.receipt is not None:
                r.receipt.verify(r.receipts)      # anyone holding them can check this
            rec = RoundRecord(r.round_id, digits.accuracy(model, service.model, data.x_test, data.y_test),
                              r.epsilon, len(r.sampled), len(r.survivors), time.perf_counter() - t0,
                              r.error, len(r.receipts), r.uplink_bytes)
            records.append(rec)
            if on_round is not None:
                on_round(rec)
    finally:
        await service.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if budget is not None:
            budget.close()
        for n in nodes or []:
            await n.stop()
    return records


async def _start_nodes(work: Path, participants: int) -> list:
    """Node 0 (the coordinator) and one node per participant, each with an HTX link on
    loopback; every participant knows the coordinator's record, which learns theirs from
    their HELLOs."""
    from betanet.node.identity import Identity
    from betanet.node.link_htx import HtxLink
    from betanet.node.node import Node

    nodes = []
    for i in range(participants + 1):
        d = work / "nodes" / str(i)
        d.mkdir(parents=True, exist_ok=True)
        ident = Identity.generate()
        node = Node(ident, d / "store.db")
        node.links.append(HtxLink(ident, node.peers, listen="127.0.0.1:0", cert_dir=str(d)))
        await node.start()
        nodes.append(node)
    rec = nodes[0].record()
    for node in nodes[1:]:
        node.add_peer(rec.raw)
    return nodes


def plot(records: list[RoundRecord], path: str | Path, title: str = "") -> None:
    """Accuracy and epsilon spent per round, one PNG (needs matplotlib: the ``fl`` extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidArgumentError("plots need matplotlib: pip install 'betanet[fl]'") from None
    rounds = [r.round for r in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rounds, [r.accuracy for r in records], "o-", color="tab:blue", label="test accuracy")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax.set_ylim(0, 1)
    ax2 = ax.twinx()
    eps = [r.epsilon for r in records]
    if all(math.isfinite(e) for e in eps):
        ax2.plot(rounds, eps, "s--", color="tab:red", label="epsilon spent")
    ax2.set_ylabel("epsilon spent", color="tab:red")
    ax.set_title(title or "federated digits: accuracy and privacy per round")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
