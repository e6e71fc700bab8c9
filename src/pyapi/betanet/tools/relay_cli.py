"""``betanet relay`` on the command line: start a relay (``betanet.tools.relay.Relay``) from
``--tcp``/``--udp`` forwards and link settings, or talk to a running one with
``betanet relay ctl SOCKET set NAME=VALUE... | stats``. Also ``python -m betanet.tools.relay``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from betanet.errors import BetanetError
from betanet.tools import relay as _relay
from betanet.tools.relay import Relay, control, parse_forward
from betanet.tools.shaper import CUT_MODES, LinkSettings

__all__ = ["add_parser", "main"]


def _settings_arg(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, (value if name == "cut" else float(value))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("relay", help="TCP/UDP relay with loss, delay, bandwidth cap and cut (fault injection)")
    _add_run_args(p)
    p.set_defaults(func=_cli_main, _parser=p)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tcp", action="append", default=[], metavar="LISTEN=TARGET",
                   help="forward TCP from LISTEN_HOST:PORT to TARGET_HOST:PORT (repeatable)")
    p.add_argument("--udp", action="append", default=[], metavar="LISTEN=TARGET",
                   help="forward UDP datagrams likewise (repeatable)")
    p.add_argument("--loss", type=float, default=0.0, help="datagram loss probability 0..1")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay")
    p.add_argument("--rate-bps", type=float, default=0.0, help="bandwidth cap, bits/s per direction (0: none)")
    p.add_argument("--queue-ms", type=float, default=1000.0, help="datagram queue limit behind the cap")
    p.add_argument("--cut", default="", choices=CUT_MODES, help="start cut (drop or reset)")
    p.add_argument("--seed", type=int, default=None, help="seed of the loss decisions")
    p.add_argument("--control", metavar="SOCKET", help="Unix socket for run-time control")
    p.add_argument("--capture", metavar="DIR", help="append every byte received to DIR/up.bin, DIR/down.bin")
    p.add_argument("ctl", nargs="*", metavar="ctl SOCKET (set NAME=VALUE...|stats)",
                   help="talk to a running relay instead of starting one")


def _cli_main(args: argparse.Namespace) -> int:
    if args.ctl:
        if args.ctl[0] != "ctl" or len(args.ctl) < 3 or args.ctl[2] not in ("set", "stats"):
            print("betanet relay: usage: betanet relay ctl SOCKET set NAME=VALUE... | stats", file=sys.stderr)
            return 2
        try:
            changes = dict(_settings_arg(a) for a in args.ctl[3:])
            print(json.dumps(control(args.ctl[1], args.ctl[2], **changes)))
        except (argparse.ArgumentTypeError, ValueError, OSError, BetanetError) as exc:
            print(f"betanet relay ctl: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        relay = Relay([parse_forward(s) for s in args.tcp], [parse_forward(s) for s in args.udp],
                      LinkSettings(loss=args.loss, delay_ms=args.delay_ms, rate_bps=args.rate_bps,
                                   queue_ms=args.queue_ms, cut=args.cut), seed=args.seed,
                      capture=args.capture)
    except BetanetError as exc:
        print(f"betanet relay: {exc}", file=sys.stderr)
        return 2
    if not relay.tcp_specs and not relay.udp_specs:
        print("betanet relay: give at least one --tcp or --udp forward", file=sys.stderr)
        return 2
    return asyncio.run(_run(relay, args.control))


async def _run(relay: Relay, control_path: str | None) -> int:
    try:
        await relay.start()
        if control_path:
            await relay.serve_control(control_path)
    except OSError as exc:
        print(f"betanet relay: {exc}", file=sys.stderr)
        await relay.close()
        return 1
    # one machine-readable line: scripts and tests wait for it
    print(json.dumps({"ready": relay.ports, "control": control_path}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await relay.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m betanet.tools.relay", description=_relay.__doc__.split("\n")[0])
    _add_run_args(p)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return _cli_main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
