"""`betanet mesh sim` (a simulated mesh and what delivery costs), `betanet mesh chat` (a
BitChat-compatible chat on an air socket or real BLE) and `betanet mesh air` (the medium)."""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    mesh = sub.add_parser("mesh", help="BitChat-compatible BLE mesh (simulated, air, or BLE radio)")
    msub = mesh.add_subparsers(dest="mesh_command", metavar="SUBCOMMAND")

    def usage(args: argparse.Namespace) -> int:
        mesh.print_help(sys.stderr)
        return 2

    mesh.set_defaults(func=usage)
    sim = msub.add_parser("sim", help="simulate N phones exchanging broadcasts")
    sim.add_argument("--nodes", type=int, default=50)
    sim.add_argument("--area", type=float, default=100.0, help="side of the square, metres")
    sim.add_argument("--range", dest="range_m", type=float, default=30.0, help="radio range, metres")
    sim.add_argument("--loss", type=float, default=0.0, help="frame loss per link write (0-1)")
    sim.add_argument("--messages", type=int, default=20)
    sim.add_argument("--size", type=int, default=64, help="payload bytes per message")
    sim.add_argument("--ttl", type=int, default=7)
    sim.add_argument("--fec", type=int, default=0, help="parity fragments per fragmented message")
    sim.add_argument("--policy", choices=["adaptive", "flood"], default="adaptive")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.set_defaults(func=_sim)
    chat = msub.add_parser("chat", help="a BitChat-compatible chat on the simulated air or real BLE")
    where = chat.add_mutually_exclusive_group(required=True)
    where.add_argument("--air", metavar="SOCKET", help="an air server's Unix socket (betanet mesh air)")
    where.add_argument("--ble", action="store_true", help="a real Bluetooth LE adapter (--role: central, peripheral or both)")
    chat.add_argument("--nick", required=True, help="your nickname (announced)")
    chat.add_argument("--pos", default="0,0", help="position on the air, metres: X,Y")
    chat.add_argument("--mtu", type=int, default=517, help="ATT_MTU this radio offers")
    chat.add_argument("--adapter", default=None, help="BLE adapter (e.g. hci0)")
    chat.add_argument("--role", choices=("central", "peripheral", "both"), default="both",
                      help="with --ble: scan and connect, advertise and accept, or both (phones do both)")
    chat.set_defaults(func=_chat)
    air = msub.add_parser("air", help="serve a real-time simulated BLE medium on a Unix socket")
    air.add_argument("--socket", required=True)
    air.add_argument("--loss", default="0")
    air.add_argument("--range", dest="range_m", default="30")
    air.set_defaults(func=lambda a: __import__("betanet.mesh.air", fromlist=["main"]).main(
        ["--socket", a.socket, "--loss", a.loss, "--range", a.range_m]))


def _check(args: argparse.Namespace) -> str | None:
    if args.nodes < 2 or args.nodes > 5000:
        return "--nodes must be 2..5000"
    if not 0.0 <= args.loss < 1.0:
        return "--loss must be in [0, 1)"
    if not 1 <= args.ttl <= 255 or args.messages < 1 or args.size < 0 or not 0 <= args.fec <= 32:
        return "--ttl 1..255, --messages >= 1, --size >= 0, --fec 0..32"
    return None


def _sim(args: argparse.Namespace) -> int:
    from betanet.mesh.sim import SimMesh

    err = _check(args)
    if err:
        print(f"betanet mesh sim: {err}", file=sys.stderr)
        return 2
    mesh = SimMesh(args.nodes, area_m=args.area, range_m=args.range_m, loss=args.loss, seed=args.seed,
                   policy=args.policy, fec_parity=args.fec)
    mesh.announce_all()
    tty = sys.stderr.isatty()

    def progress(done: int, total: int, res) -> None:
        if tty:
            print(f"\r  message {done}/{total}  delivered {res.delivered}/{res.reachable}",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)

    res = mesh.broadcast_round(args.messages, size=args.size, ttl=args.ttl, progress=progress)
    summary = res.summary()
    summary.update(policy=args.policy, loss=args.loss, fec_parity=args.fec,
                   simulated_seconds=round(mesh.scheduler.now, 1))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"mesh sim: {args.nodes} nodes, {args.area:g} m square, range {args.range_m:g} m, "
          f"loss {args.loss:.0%}, policy {args.policy}, FEC parity {args.fec}")
    print(f"  delivery ratio        {summary['delivery_ratio']:.2%}  ({res.delivered}/{res.reachable} reachable)")
    print(f"  hops                  mean {summary['mean_hops']}, max {summary['max_hops']}")
    print(f"  latency               mean {summary['mean_latency_ms']} ms")
    print(f"  transmissions         {res.frames_sent} frames, {summary['tx_per_delivered']} per delivery")
    print(f"  energy                {summary['energy_mj_per_delivered']} mJ per delivery (all radios)")
    return 0


def _chat(args: argparse.Namespace) -> int:
    import asyncio

    from betanet.errors import BetanetError
    from betanet.mesh.chat import HELP, Chat, stdin_lines
    from betanet.mesh.router import Identity, MeshRouter
    from betanet.mesh.service import MeshService

    try:
        x, y = (float(v) for v in args.pos.split(","))
        nick_ok = 0 < len(args.nick.encode()) <= 255
    except ValueError:
        nick_ok = False
    if not nick_ok:
        print("betanet mesh chat: --pos X,Y (metres) and a nickname of 1-255 bytes", file=sys.stderr)
        return 2

    def out(line: str) -> None:
        print(line, flush=True)

    async def run() -> int:
        ident = Identity.generate(args.nick)
        if args.ble:
            from betanet.mesh.ble_peripheral import BleRadio
            radio = BleRadio(ident.peer_id, role=args.role, adapter=args.adapter, att_mtu=args.mtu)
            await radio.start()
        else:
            from betanet.mesh.air import AirRadio
            radio = await AirRadio.connect(args.air, ident.peer_id, x, y, att_mtu=args.mtu)
        svc = MeshService(MeshRouter(ident), radio)
        await svc.start()
        out(f"* you are {args.nick} ({ident.peer_id.hex()}); {HELP}")
        try:
            await Chat(svc, out).run(stdin_lines())
        finally:
            await svc.stop()
            if hasattr(radio, "close"):
                await radio.close()
            else:
                await radio.stop()
        return 0

    try:
        return asyncio.run(run())
    except BetanetError as exc:
        print(f"betanet mesh chat: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
