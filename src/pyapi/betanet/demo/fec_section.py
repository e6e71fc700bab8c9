"""Demo section: Reed-Solomon FEC — a message survives lost and silently corrupted shards."""
from __future__ import annotations

import secrets

from betanet.errors import UncorrectableError
from betanet.fec import ReedSolomon, kernel

TITLE = "FEC: Reed-Solomon shards survive loss and silent corruption"

MESSAGE = (b"Betanet carries messages privately and reliably across the internet and "
           b"across phones with no internet at all. " * 8)


def run(report) -> None:
    k, m = 8, 4
    rs = ReedSolomon(k, m)
    shards = rs.split(MESSAGE)
    report.line(f"message of {len(MESSAGE)} bytes -> {k} data + {m} parity shards of "
                f"{len(shards[0])} bytes (kernel: {kernel()})")

    # 1. lose m shards: any k of the k + m are enough
    lost = sorted(secrets.SystemRandom().sample(range(k + m), m))
    received = [None if i in lost else s for i, s in enumerate(shards)]
    report.line(f"lost shards {lost} ({m} of {k + m})")
    report.result(rs.join(received) == MESSAGE, "message recovered from the remaining shards")

    # 2. silent corruption: correct() finds which shards are wrong (2 x corrupted + lost <= m)
    for bad, missing in (([2, 9], []), ([6], [0, 11])):
        damaged = [None if i in missing else s for i, s in enumerate(shards)]
        for i in bad:
            damaged[i] = bytes(b ^ 0x5A for b in damaged[i])
        fixed = rs.correct(damaged)
        what = f"shards {bad} silently corrupted" + (f", shards {missing} lost" if missing else "")
        report.result(fixed.corrupted == bad and rs.join(fixed.shards) == MESSAGE,
                      f"{what}: located {fixed.corrupted}, message recovered byte for byte")

    # 3. past the bound the library says so instead of returning wrong data
    worse = list(shards)
    for i in (0, 3, 7):
        worse[i] = bytes(b ^ 0xFF for b in worse[i])
    try:
        rs.correct(worse)
        report.result(False, "3 corrupted shards (> m/2) were not detected")
    except UncorrectableError:
        report.result(True, "3 corrupted shards (more than m/2 = 2): reported uncorrectable, no wrong data")
