"""``betanet tls fingerprint``: JA3 / JA3N / JA4 of a ClientHello from hex, a pcap file, or
a live connection to a local listener."""
from __future__ import annotations

import argparse
import json
import socket
import sys

from betanet.errors import BetanetError, MalformedError
from betanet.tls.clienthello import ClientHello, hello_bytes_needed, parse_client_hello
from betanet.tls.fingerprint import fingerprints

_LISTEN_TIMEOUT = 60.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tls", help="TLS ClientHello fingerprints (JA3, JA3N, JA4)")
    cmds = p.add_subparsers(dest="tls_command", metavar="ACTION")
    f = cmds.add_parser("fingerprint", help="print JA3/JA3N/JA4 of a ClientHello")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--hex", help="the ClientHello as hex: TLS record(s), or a bare handshake message")
    src.add_argument("--pcap", help="a classic pcap file: every ClientHello that starts a TCP flow")
    src.add_argument("--listen", metavar="[HOST:]PORT",
                     help="listen locally, take one connection, fingerprint its ClientHello, close")
    f.add_argument("--timeout", type=float, default=_LISTEN_TIMEOUT, help="--listen: seconds to wait")
    f.add_argument("--json", action="store_true", help="one JSON object per ClientHello")
    k = cmds.add_parser("ticket-key", help="create an access-ticket key file (0600) and print its publication")
    k.add_argument("path", help="key file to create (private key ‖ key id, 40 bytes)")
    k.add_argument("--cookie", default="__Host-bnsid", help="cookie name to publish (__Host-...)")
    k.add_argument("--force", action="store_true", help="replace an existing file")
    pb = cmds.add_parser("ticket-pub", help="print the publication line of a ticket key file")
    pb.add_argument("path")
    pb.add_argument("--cookie", default="__Host-bnsid")
    p.set_defaults(func=_main, _parser=p)


def _print(ch: ClientHello, as_json: bool, label: str | None = None) -> None:
    fp = fingerprints(ch).as_dict()
    if as_json:
        if label:
            fp = {"flow": label, **fp}
        print(json.dumps(fp))
        return
    if label:
        print(f"# {label}")
    for k, v in fp.items():
        print(f"{k:12} {v}")


def _from_hex(text: str) -> ClientHello:
    try:
        raw = bytes.fromhex("".join(text.split()))
    except ValueError as exc:
        raise MalformedError(f"not hex: {exc}") from exc
    return parse_client_hello(raw, record=bool(raw) and raw[0] == 22)


def _listen(spec: str, timeout: float) -> tuple[str, ClientHello]:
    host, _, port = spec.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    with socket.create_server((host, int(port))) as srv:
        srv.settimeout(timeout)
        print(f"listening on {host}:{srv.getsockname()[1]}", file=sys.stderr, flush=True)
        conn, peer = srv.accept()
        with conn:
            conn.settimeout(timeout)
            buf = bytearray()
            while not (n := hello_bytes_needed(buf)):
                chunk = conn.recv(65536)
                if not chunk:
                    raise MalformedError("connection closed before a complete ClientHello")
                buf += chunk
            return f"{peer[0]}:{peer[1]}", parse_client_hello(bytes(buf[:n]))


def _main(args: argparse.Namespace) -> int:
    if args.tls_command in ("ticket-key", "ticket-pub"):
        from betanet.tls.tickets import TicketKey
        try:
            if args.tls_command == "ticket-key":
                key = TicketKey.generate(cookie_name=args.cookie)
                key.save(args.path, overwrite=args.force)
            else:
                key = TicketKey.load(args.path, cookie_name=args.cookie)
        except (BetanetError, OSError) as exc:
            print(f"betanet tls {args.tls_command}: {exc}", file=sys.stderr)
            return 2
        print(key.publication.to_text())
        return 0
    if args.tls_command != "fingerprint":
        args._parser.print_help()
        return 2
    try:
        if args.hex is not None:
            _print(_from_hex(args.hex), args.json)
        elif args.pcap is not None:
            from betanet.tls.pcap import client_hellos
            found = client_hellos(args.pcap)
            if not found:
                print("betanet tls fingerprint: no ClientHello in the capture", file=sys.stderr)
                return 1
            for (src, sport, dst, dport), ch in found:
                label = (f"{socket.inet_ntop(socket.AF_INET if len(src) == 4 else socket.AF_INET6, src)}:{sport}"
                         f" -> {socket.inet_ntop(socket.AF_INET if len(dst) == 4 else socket.AF_INET6, dst)}:{dport}")
                _print(ch, args.json, label)
        else:
            peer, ch = _listen(args.listen, args.timeout)
            _print(ch, args.json, peer)
    except (BetanetError, OSError, ValueError) as exc:
        print(f"betanet tls fingerprint: {exc}", file=sys.stderr)
        return 2
    return 0
