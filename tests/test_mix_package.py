"""The shape of ``betanet.mix``: every module imports alone, and the package's import graph
has no cycle (a module may only import modules below it)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import betanet.mix

PACKAGE = Path(betanet.mix.__file__).resolve().parent
MODULES = sorted(f"betanet.mix.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _imports(path: Path) -> set[str]:
    """Every ``betanet.mix`` module a file imports, anywhere in it (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom):          # relative: resolve against the package
            base = "betanet.mix" + (f".{node.module}" if node.module else "")
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n == "betanet.mix" or n in MODULES}
    return found


def graph() -> dict[str, set[str]]:
    g = {m: _imports(PACKAGE / f"{m.rsplit('.', 1)[1]}.py") for m in MODULES}
    g["betanet.mix"] = _imports(PACKAGE / "__init__.py")
    return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``g`` as a path, or None (depth-first search with colours)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        colour[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if colour.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in colour and (c := visit(n)):
                return c
        stack.pop()
        colour[m] = 2
        return None
    for m in sorted(g):
        if m not in colour and (c := visit(m)):
            return c
    return None


def test_the_package_has_the_expected_modules():
    assert set(MODULES) >= {f"betanet.mix.{m}" for m in (
        "types", "events", "protocol", "transport", "htx_transport", "node", "client", "cli")}


def test_import_graph_is_acyclic():
    g = graph()
    assert find_cycle(g) is None, " -> ".join(find_cycle(g))
    # no submodule reaches back into the package's __init__ (that is a cycle through it)
    assert all("betanet.mix" not in deps for m, deps in g.items() if m != "betanet.mix")
    # the sans-IO layers never import the asyncio layers
    for low in ("betanet.mix.types", "betanet.mix.events", "betanet.mix.protocol",
                "betanet.mix.held", "betanet.mix.routes"):
        assert not g[low] & {"betanet.mix.node", "betanet.mix.client", "betanet.mix.transport",
                             "betanet.mix.htx_transport", "betanet.mix.sendq"}, low


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_sans_io_protocol_does_not_use_asyncio():
    tree = ast.parse((PACKAGE / "protocol.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "asyncio" not in imported


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_failing_frame_handler_ends_only_its_link_and_is_logged(caplog):
    # A bug in the handler must not become an unhandled task exception or a dead listener.
    import asyncio
    import logging

    from betanet.mix import Descriptor, TcpTransport

    async def main():
        got: list[bytes] = []

        def handler(kind: int, data: bytes, link) -> None:
            if data == b"boom":
                raise RuntimeError("handler bug")
            got.append(data)

        sink = TcpTransport()
        address = await sink.start(handler)
        peer = Descriptor(b"\x01" * 32, address, b"\x02" * 32, 1)
        first = TcpTransport()
        await first.send_to(peer, 1, b"boom")
        for _ in range(100):
            if "frame handler raised" in caplog.text:
                break
            await asyncio.sleep(0.01)
        second = TcpTransport()
        await second.send_to(peer, 1, b"after")
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        for t in (first, second, sink):
            await t.close()
        return got

    with caplog.at_level(logging.ERROR, logger="betanet.mix.transport"):
        assert asyncio.run(main()) == [b"after"]
    assert "frame handler raised" in caplog.text
