"""`betanet fl run`: a federated training run on the digits (SecAgg+ over HTX on loopback,
client-level DP within a budget, participants dropping mid-round), progress per round and
a PNG of accuracy and epsilon spent per round."""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    fl = sub.add_parser("fl", help="federated learning (SecAgg+, differential privacy)")
    fsub = fl.add_subparsers(dest="fl_command", metavar="SUBCOMMAND")

    def usage(args: argparse.Namespace) -> int:
        fl.print_help(sys.stderr)
        return 2

    fl.set_defaults(func=usage)
    run = fsub.add_parser("run", help="train on the digits across simulated phones")
    run.add_argument("--participants", type=int, default=200)
    run.add_argument("--rounds", type=int, default=15)
    run.add_argument("--sample-rate", type=float, default=0.25, help="Poisson rate per round")
    run.add_argument("--epsilon", type=float, default=8.0, help="total budget (inf: no DP)")
    run.add_argument("--delta", type=float, default=1e-5)
    run.add_argument("--clip", type=float, default=2.0, help="L2 bound of an update")
    run.add_argument("--noise", type=float, default=None,
                     help="noise multiplier (default: the least that fits --epsilon over --rounds)")
    run.add_argument("--dropout", type=float, default=0.3, help="fraction dropping mid-round")
    run.add_argument("--drop-at", default="masked",
                     help="comma-separated stages participants drop at: advertise,share,masked,check,unmask")
    run.add_argument("--no-secagg", action="store_true",
                     help="send clipped updates in the clear; the coordinator adds the noise")
    run.add_argument("--topk", type=int, default=0,
                     help="send k coordinates per update (SecAgg: shared random ones; else the largest)")
    run.add_argument("--hidden", type=int, default=0, help="MLP hidden units (0: softmax regression)")
    run.add_argument("--stage-timeout", type=float, default=5.0, help="seconds per SecAgg+ stage")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--transport", choices=("htx", "node"), default="htx",
                     help="htx: one HTX connection per participant; node: every party a Node, "
                          "FL frames as node messages")
    run.add_argument("--plot", default="fl_run.png", help="PNG to write ('' for none)")
    run.add_argument("--json", action="store_true", help="print the records as JSON")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from betanet.errors import BetanetError
    from betanet.fl import simulation

    try:
        cfg = simulation.RunConfig(
            participants=args.participants, rounds=args.rounds, sample_rate=args.sample_rate,
            epsilon=args.epsilon, delta=args.delta, clip=args.clip, noise_multiplier=args.noise,
            dropout=args.dropout, drop_at=tuple(s for s in args.drop_at.split(",") if s),
            secure=not args.no_secagg, topk=args.topk, hidden=args.hidden, stage_timeout=args.stage_timeout, seed=args.seed,
            transport=args.transport)
        noise = cfg.noise()
    except BetanetError as exc:
        print(f"betanet fl run: {exc}", file=sys.stderr)
        return 2
    print(f"{cfg.participants} participants, q={cfg.sample_rate}, {cfg.rounds} rounds, "
          f"budget epsilon={cfg.epsilon:g} delta={cfg.delta:g}, noise multiplier {noise:.3f}, "
          f"clip {cfg.clip:g}, {cfg.dropout:.0%} dropping mid-round, "
          f"{'SecAgg+' if cfg.secure else 'no SecAgg (central noise)'} over "
          f"{'node messages (HTX links)' if cfg.transport == 'node' else 'HTX'}"
          f"{f', top-{cfg.topk}' if cfg.topk else ''}",
          file=sys.stderr)

    def progress(r: simulation.RoundRecord) -> None:
        status = f"aborted: {r.error}" if r.error else f"{r.survivors}/{r.sampled} survived"
        print(f"round {r.round:3d}  accuracy {r.accuracy:.3f}  epsilon {r.epsilon:.3f}  "
              f"{status}  uplink {r.uplink_bytes / 1024:.0f} KiB  ({r.seconds:.1f} s)",
              file=sys.stderr, flush=True)

    try:
        records = asyncio.run(simulation.run(cfg, progress))
        if args.plot and records:
            simulation.plot(records, args.plot,
                            f"digits, {cfg.participants} participants, epsilon budget {cfg.epsilon:g}")
            print(f"plot: {args.plot}", file=sys.stderr)
    except BetanetError as exc:
        print(f"betanet fl run: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{**r.__dict__, "epsilon": r.epsilon if math.isfinite(r.epsilon) else None}
                          for r in records]))
    elif records:
        last = records[-1]
        print(f"final accuracy {last.accuracy:.3f} at epsilon {last.epsilon:.3f} "
              f"(delta {cfg.delta:g}) after {len(records)} rounds")
    return 0
