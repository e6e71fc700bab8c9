"""The `betanet` command as an operator runs it."""
from __future__ import annotations

import subprocess
import sys

import betanet
from betanet import cli


def betanet_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "betanet", *args], capture_output=True,
                          text=True, timeout=300)


def test_version_command():
    proc = betanet_cmd("version")
    assert proc.returncode == 0
    assert f"betanet {betanet.__version__}" in proc.stdout
    assert betanet.get_library() in proc.stdout


def test_unknown_demo_section_is_a_clear_error():
    proc = betanet_cmd("demo", "no-such-section")
    assert proc.returncode == 2
    assert "unknown section" in proc.stderr


def test_every_registered_command_builds_a_parser():
    parser = cli.build_parser()
    for name in list(cli.COMMANDS) + ["version"]:
        assert parser.parse_known_args([name])[0].command == name
