"""``betanet htx``: operator commands for HTX static keys."""
from __future__ import annotations

import argparse
import sys

from betanet.htx import keys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("htx", help="HTX static keys (X25519): generate, show the public key")
    cmds = p.add_subparsers(dest="htx_command", metavar="ACTION")
    g = cmds.add_parser("keygen", help="write a new private key (mode 0600) and KEY.pub")
    g.add_argument("path", help="private key file to create")
    g.add_argument("--hex", action="store_true", help="write hex text instead of 32 raw bytes")
    g.add_argument("--force", action="store_true", help="overwrite an existing file")
    k = cmds.add_parser("pubkey", help="print the public key (hex) of a private key file")
    k.add_argument("path")
    p.set_defaults(func=_main, _parser=p)


def _main(args: argparse.Namespace) -> int:
    import os

    if args.htx_command == "keygen":
        if os.path.exists(args.path) and not args.force:
            print(f"betanet htx keygen: {args.path} exists (use --force)", file=sys.stderr)
            return 2
        priv = keys.generate_private_key()
        keys.save_private_key(args.path, priv, hex=args.hex)
        pub = keys.public_key(priv)
        keys.save_public_key(args.path + ".pub", pub, hex=args.hex)
        print(pub.hex())
        return 0
    if args.htx_command == "pubkey":
        print(keys.public_key(keys.load_private_key(args.path)).hex())
        return 0
    args._parser.print_help()
    return 2
