"""The ``betanet`` command: ``betanet demo``, ``betanet version`` and, as capabilities land,
the operator commands (nodes, mixnodes). Each subcommand lives in the module it drives and
registers itself in ``COMMANDS`` below with a function ``add_parser(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> module providing `add_parser(subparsers)`; the parser sets `func(args) -> int`.
COMMANDS: dict[str, str] = {
    "demo": "betanet.demo",
    "htx": "betanet.htx.cli",
    "relay": "betanet.tools.relay",
    "mixnode": "betanet.mix",
    "cgr": "betanet.navigator",
    "mesh": "betanet.mesh.cli",
    "tls": "betanet.tls.cli",
    "dtn": "betanet.dtn.cli",
    "fl": "betanet.fl.cli",
    "node": "betanet.node.cli",
}


def _version(args: argparse.Namespace) -> int:
    import betanet

    print(f"betanet {betanet.__version__}")
    print(f"library  {betanet.get_library()}")
    print(f"cpu      {', '.join(betanet.cpu_features()) or 'portable scalar paths only'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="betanet", description="Betanet overlay network")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    v = sub.add_parser("version", help="show library version and CPU features")
    v.set_defaults(func=_version)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
