"""The digits task, the whole-run simulation over HTX and `betanet fl run`."""
from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from betanet.cli import main
from betanet.fl import digits, simulation


def test_digits_read_from_the_file_equal_load_digits():
    from sklearn.datasets import load_digits
    pixels, labels = digits._read_digits()
    d = load_digits()
    assert np.array_equal(pixels, d.data) and np.array_equal(labels, d.target)
    assert pixels.shape == (1797, digits.FEATURES)


def test_non_iid_split_covers_every_sample_once_and_is_skewed():
    ds = digits.load(0)
    parts = digits.split_non_iid(ds.y_train, 20, 2, seed=1)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(ds.y_train)))
    labels = [len(set(ds.y_train[p].tolist())) for p in parts]
    assert max(labels) <= 4 and np.mean(labels) < 3.5      # most see two or three digits


@pytest.mark.parametrize("hidden", [0, 8])
def test_gradient_matches_finite_differences(hidden):
    model = digits.Model(hidden)
    ds = digits.load(0)
    w = model.init(3)
    x, y = ds.x_train[:20], ds.y_train[:20]

    def loss(p):
        z = model.logits(p, x)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    g = model.gradient(w, x, y)
    rng = np.random.default_rng(0)
    for i in rng.choice(model.size, 15, replace=False):
        e = np.zeros(model.size)
        e[i] = 1e-6
        assert g[i] == pytest.approx((loss(w + e) - loss(w - e)) / 2e-6, abs=1e-6)


def test_centralised_training_learns_the_digits():
    ds = digits.load(0)
    model = digits.Model(0)
    w = model.init(0)
    w = w + digits.local_update(model, w, ds.x_train, ds.y_train, epochs=10, lr=0.5)
    assert digits.accuracy(model, w, ds.x_test, ds.y_test) > 0.9


def test_federated_run_with_dp_secagg_and_dropouts(tmp_path):
    cfg = simulation.RunConfig(participants=12, rounds=3, sample_rate=1.0, epsilon=40.0,
                               clip=2.0, dropout=0.25, stage_timeout=1.0, seed=4)
    seen = []
    records = asyncio.run(asyncio.wait_for(simulation.run(cfg, seen.append, tmp_path), 120))
    assert records == seen and [r.round for r in records] == [1, 2, 3]
    eps = [r.epsilon for r in records]
    assert eps == sorted(eps) and eps[-1] <= 40.0
    done = [r for r in records if not r.error]
    assert done and all(r.survivors <= r.sampled == 12 for r in done)
    assert done[-1].accuracy > 0.2
    simulation.plot(records, tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fl_run_cli(tmp_path, capsys):
    png = tmp_path / "cli.png"
    rc = main(["fl", "run", "--participants", "10", "--rounds", "2", "--sample-rate", "1.0",
               "--epsilon", "inf", "--stage-timeout", "1.0", "--dropout", "0",
               "--plot", str(png), "--json"])
    assert rc == 0
    out = capsys.readouterr()
    records = json.loads(out.out)
    assert [r["round"] for r in records] == [1, 2] and all(r["epsilon"] is None for r in records)
    assert "round   1" in out.err and png.exists()


def test_fl_run_cli_without_secagg_with_top_k(tmp_path, capsys):
    rc = main(["fl", "run", "--participants", "10", "--rounds", "2", "--sample-rate", "1.0",
               "--epsilon", "50", "--stage-timeout", "1.0", "--dropout", "0.2", "--no-secagg",
               "--topk", "100", "--plot", "", "--json"])
    assert rc == 0
    out = capsys.readouterr()
    records = json.loads(out.out)
    assert len(records) == 2 and all(not r["error"] for r in records)
    assert "no SecAgg" in out.err and "top-100" in out.err
    # 100 of 650 coordinates (f32 value + u32 index) and a receipt per participant
    assert all(r["uplink_bytes"] < 10 * (100 * 8 + 400) for r in records)


def test_fl_run_cli_refuses_bad_config(capsys):
    assert main(["fl", "run", "--participants", "2"]) == 2
    assert "participants" in capsys.readouterr().err
    assert main(["fl", "run", "--drop-at", "nowhere"]) == 2


def test_demo_fl_section():
    import io

    from betanet import demo
    out = io.StringIO()
    assert demo.run(["fl"], out=out) == 0, out.getvalue()
    assert "receipts verify" in out.getvalue()
