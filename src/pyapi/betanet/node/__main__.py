"""``python -m betanet.node run --config FILE`` (same as ``betanet node ...``)."""
import argparse
import logging
import sys

from betanet.node.cli import add_parser


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m betanet.node")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_parser(sub)
    args = parser.parse_args(["node"] + list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
