"""``betanet demo``: the main job, a guided tour of the layers, one section per capability.

A section is a module in this package with ``TITLE`` and ``run(report) -> None`` (or an
``async def run``). ``SECTIONS`` fixes the order; ``betanet demo fec`` runs one section.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
import time

SECTIONS: dict[str, str] = {
    "fec": "betanet.demo.fec_section",
    "htx": "betanet.demo.htx_section",
    "mixnet": "betanet.demo.mixnet_section",
    "routing": "betanet.demo.routing_section",
    "stealth": "betanet.demo.stealth_section",
    "mesh": "betanet.demo.mesh_section",
    "dtn": "betanet.demo.dtn_section",
    "fl": "betanet.demo.fl_section",
    "node": "betanet.demo.node_section",
}


class Report:
    """Plain, readable output for a section (one place decides how the demo looks)."""

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.failures = 0

    def heading(self, text: str) -> None:
        print(f"\n== {text} ==", file=self.out)

    def line(self, text: str = "") -> None:
        print(f"  {text}", file=self.out)

    def result(self, ok: bool, text: str) -> None:
        if not ok:
            self.failures += 1
        print(f"  [{'ok' if ok else 'FAIL'}] {text}", file=self.out)


def run(names: list[str] | None = None, out=None) -> int:
    report = Report(out)
    chosen = names or list(SECTIONS)
    for name in chosen:
        module = importlib.import_module(SECTIONS[name])
        report.heading(module.TITLE)
        started = time.perf_counter()
        result = module.run(report)
        if inspect.iscoroutine(result):
            asyncio.run(result)
        report.line(f"({name} section took {time.perf_counter() - started:.2f} s)")
    print(f"\ndemo finished: {len(chosen)} section(s), {report.failures} failure(s)", file=report.out)
    return 1 if report.failures else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the Betanet demo (all sections, or the ones named)")
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help=f"one or more of: {', '.join(SECTIONS)} (default: all)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        print(f"betanet demo: unknown section(s) {', '.join(unknown)}; "
              f"choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    return run(args.sections or None)
