"""`betanet mesh sim` prints the simulation's figures and refuses bad settings."""
from __future__ import annotations

import json

from betanet.cli import main


def test_mesh_sim_json(capsys):
    assert main(["mesh", "sim", "--nodes", "20", "--messages", "3", "--seed", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nodes"] == 20 and out["messages"] == 3 and 0.99 <= out["delivery_ratio"] <= 1.0
    assert out["tx_per_delivered"] > 0 and out["energy_mj_per_delivered"] > 0 and out["max_hops"] <= 7


def test_mesh_sim_text_with_fec(capsys):
    assert main(["mesh", "sim", "--nodes", "15", "--messages", "2", "--size", "1200", "--fec", "2",
                 "--loss", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "delivery ratio" in out and "FEC parity 2" in out and "mJ per delivery" in out


def test_mesh_sim_rejects_bad_loss(capsys):
    assert main(["mesh", "sim", "--loss", "1.5"]) == 2
    assert "--loss" in capsys.readouterr().err


def test_mesh_without_subcommand_prints_usage(capsys):
    assert main(["mesh"]) == 2
    assert "sim" in capsys.readouterr().err
