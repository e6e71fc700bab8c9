"""``betanet htx``: operator commands for HTX static keys."""
from __future__ import annotations

import argparse
import os
import sys

from betanet.errors import BetanetError
from betanet.htx import keys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("htx", help="HTX static keys (X25519): generate, show the public key")
    cmds = p.add_subparsers(dest="htx_command", metavar="ACTION")
    g = cmds.add_parser("keygen", help="write a new private key (mode 0600) and KEY.pub")
    g.add_argument("path", help="private key file to create")
    g.add_argument("--hex", action="store_true", help="write hex text instead of 32 raw bytes")
    g.add_argument("--force", action="store_true",
                   help="replace existing files (a symlink is replaced, not written through)")
    k = cmds.add_parser("pubkey", help="print the public key (hex) of a private key file")
    k.add_argument("path")
    p.set_defaults(func=_main, _parser=p)


def _fail(command: str, message: object) -> int:
    print(f"betanet htx {command}: {message}", file=sys.stderr)
    return 2


def _main(args: argparse.Namespace) -> int:
    if args.htx_command == "keygen":
        pub_path = args.path + ".pub"
        if not args.force:
            # Both files are created exclusively; checking both first avoids leaving a new
            # private key beside someone else's .pub.
            for p in (args.path, pub_path):
                if os.path.lexists(p):
                    return _fail("keygen", f"{p} exists (use --force to replace it)")
        priv = keys.generate_private_key()
        pub = keys.public_key(priv)
        try:
            keys.save_private_key(args.path, priv, hex=args.hex, overwrite=args.force)
        except (BetanetError, OSError) as exc:
            return _fail("keygen", exc)
        try:
            keys.save_public_key(pub_path, pub, hex=args.hex, overwrite=args.force)
        except (BetanetError, OSError) as exc:
            if not args.force:        # no half-made pair: the private key is ours, just created
                os.unlink(args.path)
            return _fail("keygen", exc)
        print(pub.hex())
        return 0
    if args.htx_command == "pubkey":
        try:
            print(keys.public_key(keys.load_private_key(args.path)).hex())
        except (BetanetError, OSError) as exc:
            return _fail("pubkey", exc)
        return 0
    args._parser.print_help()
    return 2
