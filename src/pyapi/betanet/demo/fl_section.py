"""Demo: a few federated rounds on the digits -- SecAgg+ over HTX with a participant
dropping mid-round, client-level DP charged to a budget, signed receipts."""
from __future__ import annotations

TITLE = "Federated learning: SecAgg+ over HTX, differential privacy, receipts"


async def run(report) -> None:
    from betanet.fl import digits, simulation

    if not digits.available():             # the digits ship with scikit-learn
        report.line("skipped: the digits task needs scikit-learn (pip install 'betanet[fl]')")
        return

    cfg = simulation.RunConfig(participants=10, rounds=3, sample_rate=1.0, epsilon=30.0, clip=2.0,
                               dropout=0.2, local_epochs=10, stage_timeout=0.4, seed=5)
    report.line(f"{cfg.participants} phones on HTX (TLS 1.3 + Noise XK), softmax regression on "
                f"their non-IID digits, epsilon budget {cfg.epsilon:g} (delta {cfg.delta:g}), "
                f"~{cfg.dropout:.0%} drop before sending their masked input")
    records = await simulation.run(cfg)
    for r in records:
        status = f"aborted ({r.error})" if r.error else f"{r.survivors}/{r.sampled} survived"
        report.line(f"round {r.round}: {status}, test accuracy {r.accuracy:.2f}, epsilon {r.epsilon:.2f}, "
                    f"{r.receipts} signed receipts under the aggregate receipt")
    done = [r for r in records if not r.error]
    report.result(bool(done) and all(r.receipts == r.survivors for r in done),
                  "every completed round: the masked inputs' sum unmasked, receipts verify")
    report.result(len(records) == cfg.rounds and records[-1].epsilon <= cfg.epsilon,
                  f"privacy spent {records[-1].epsilon:.2f} <= budget {cfg.epsilon:g}")
    report.result(bool(done) and done[-1].accuracy > 0.3,
                  f"the model learned: accuracy {records[-1].accuracy:.2f} (10 classes: chance is 0.10)")
