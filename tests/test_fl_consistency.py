"""The consistency-check round of malicious-model SecAgg+: participants sign the survivor
list and reveal shares only when enough members signed the very list they did, so a
coordinator that tells participants different survivor sets is caught before any share
is revealed."""
from __future__ import annotations

import random

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet.errors import AuthenticationError, ProtocolError
from betanet.fl import messages as m
from betanet.fl.graph import SecAggParams
from betanet.fl.secagg import Coordinator, Participant, Stage

ROUND, DIM, N = 5, 500, 8
PARAMS = SecAggParams(degree=6, threshold=4, min_survivors=5, dim=DIM)


def det_bytes(seed):
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


def make(with_check=True):
    keys = {i: Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in range(1, N + 1)}
    directory = {i: k.public_key().public_bytes_raw() for i, k in keys.items()}
    rng = np.random.default_rng(0)
    xs = {i: rng.integers(0, 2**20, DIM, dtype=np.uint32) for i in range(1, N + 1)}
    coord = Coordinator(ROUND, xs, PARAMS, random_bytes=det_bytes(1), directory=directory)
    parts = {i: Participant(i, ROUND, x, random_bytes=det_bytes(50 + i), identity=keys[i],
                            directory=directory) for i, x in xs.items()}
    return coord, parts, xs


def deliver(coord, parts, out, gone=()):
    for to, data in out:
        if to in gone:
            continue
        parts[to].receive(data, 0)
        for reply in parts[to].data_to_send():
            coord.receive(to, reply, 0)


def until(coord, parts, stage, gone=()):
    while coord.stage is not stage:
        out = coord.data_to_send()
        if not out:
            coord.tick(1e9)
            continue
        deliver(coord, parts, out, gone)


def plain_sum(xs, ids):
    total = np.zeros(DIM, dtype=np.uint64)
    for i in ids:
        total += xs[i]
    return (total % 2**32).astype(np.uint32)


def test_honest_round_passes_the_check_with_dropouts_at_it():
    coord, parts, xs = make()
    until(coord, parts, Stage.CHECK, gone={7})            # 7 drops before its masked input
    assert {to for to, _ in coord._out} == set(range(1, N + 1)) - {7}
    until(coord, parts, Stage.UNMASK, gone={7, 2})         # 2 drops before signing the list
    while not coord.finished:
        out = coord.data_to_send()
        if not out:
            coord.tick(1e9)
            continue
        deliver(coord, parts, out, gone={7, 2})
    assert coord.stage is Stage.DONE, coord.abort_reason
    # 2 sent its masked input: it is in the sum though it left before the check
    assert coord.survivors == [1, 2, 3, 4, 5, 6, 8]
    assert np.array_equal(coord.result, plain_sum(xs, coord.survivors))


def test_equivocating_coordinator_is_caught_before_any_share_is_revealed():
    """The coordinator tells 1 and 2 that 3 dropped (so they would reveal shares of 3's
    mask key) and everyone else that 3 survived (shares of 3's self-mask seed): with both,
    3's input would be unmasked. 1 and 2 find too few signatures on their list and abort."""
    coord, parts, xs = make()
    until(coord, parts, Stage.CHECK)
    full = tuple(range(1, N + 1))
    lie = tuple(i for i in full if i != 3)
    coord.data_to_send()
    sigs = {}
    for v in full:                               # the malicious coordinator's own relaying
        parts[v].receive(m.encode(m.CheckList(ROUND, lie if v in (1, 2) else full)), 0)
        (reply,) = parts[v].data_to_send()
        sigs[v] = m.decode(reply).signature
    everything = m.encode(m.CheckSigs(ROUND, tuple(sorted(sigs.items()))))
    revealed = {}
    for v in full:
        if v in (1, 2):
            with pytest.raises(AuthenticationError, match="consistency check failed"):
                parts[v].receive(everything, 0)
            assert parts[v].stage is Stage.ABORTED and parts[v].data_to_send() == []
        else:
            parts[v].receive(everything, 0)
            (reply,) = parts[v].data_to_send()
            revealed[v] = m.decode(reply)
    # the others agree with each other: 3 survived, so they reveal only its self-mask seed
    for msg in revealed.values():
        assert all(kind == m.KIND_SELF_SEED for u, kind, _ in msg.shares if u == 3)


def test_signatures_from_outside_the_list_or_repeated_do_not_count():
    coord, parts, xs = make()
    until(coord, parts, Stage.CHECK)
    full = tuple(range(1, N + 1))
    short = (1, 2, 3, 4, 5)
    coord.data_to_send()
    sigs = []
    for v in full:
        parts[v].receive(m.encode(m.CheckList(ROUND, short if v == 1 else full)), 0)
        (reply,) = parts[v].data_to_send()
        sigs.append((v, m.decode(reply).signature))
    # 1's own signature four times and the others' (valid, but over another list)
    forged = m.encode(m.CheckSigs(ROUND, tuple([sigs[0]] * 4 + sigs[1:])))
    with pytest.raises(AuthenticationError):
        parts[1].receive(forged, 0)


def test_coordinator_refuses_a_signature_over_another_list():
    coord, parts, xs = make()
    until(coord, parts, Stage.CHECK)
    coord.data_to_send()
    parts[4].receive(m.encode(m.CheckList(ROUND, (1, 2, 4, 5, 6, 7, 8))), 0)
    (reply,) = parts[4].data_to_send()
    with pytest.raises(AuthenticationError):
        coord.receive(4, reply, 0)


def test_participant_refuses_to_skip_the_check():
    coord, parts, xs = make()
    until(coord, parts, Stage.CHECK)
    coord.data_to_send()
    with pytest.raises(ProtocolError, match="skipped the consistency check"):
        parts[1].receive(m.encode(m.Survivors(ROUND, N, tuple(parts[1]._neighbours))), 0)
    assert parts[1].data_to_send() == []


def test_too_few_signers_abort_the_round():
    coord, parts, xs = make()
    until(coord, parts, Stage.CHECK)
    out = coord.data_to_send()
    deliver(coord, parts, out, gone={1, 2, 3, 4})     # only 4 sign; 5 are needed
    coord.tick(1e9)
    assert coord.stage is Stage.ABORTED and "consistency signatures" in coord.abort_reason


def test_check_messages_round_trip_and_reject_bad_lengths():
    from betanet.errors import MalformedError
    for msg in (m.CheckList(1, (1, 5, 9)), m.CheckSig(1, bytes(range(64))),
                m.CheckSigs(1, ((3, bytes(64)), (4, bytes([1]) * 64)))):
        assert m.decode(m.encode(msg)) == msg
        with pytest.raises(MalformedError):
            m.decode(m.encode(msg)[:-1])
