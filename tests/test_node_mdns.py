"""The mDNS TXT encoding of peer records (betanet.node.mdns); discovery between node
processes is scenario 7 of tests/test_netns_node.py."""
from __future__ import annotations

import pytest

from betanet.errors import InvalidArgumentError
from betanet.node.identity import Identity
from betanet.node.mdns import CHUNK, MAX_MDNS_RECORD, record_from_txt, txt_from_record
from betanet.node.peers import PeerRecord


def _record(n_endpoints: int = 1) -> bytes:
    return PeerRecord.create(Identity.generate(), 3,
                             htx_tcp=[f"10.0.0.{i}:7443" for i in range(n_endpoints)]).raw


def test_record_round_trips_through_txt_chunks_each_under_255_bytes():
    raw = _record(4)
    txt = txt_from_record(raw)
    assert int(txt[b"n"]) == -(-len(raw) // CHUNK) >= 2
    assert all(len(k) + 1 + len(v) <= 255 for k, v in txt.items())
    assert record_from_txt(txt) == raw
    assert PeerRecord.decode(record_from_txt(txt)).seq == 3


def test_a_record_too_big_for_one_mdns_answer_is_refused():
    with pytest.raises(InvalidArgumentError, match="does not fit mDNS"):
        txt_from_record(b"x" * (MAX_MDNS_RECORD + 1))
    with pytest.raises(InvalidArgumentError):
        txt_from_record(b"")


@pytest.mark.parametrize("mutate, why", [
    (lambda t: t.pop(b"v"), "version"),
    (lambda t: t.update({b"v": b"2"}), "version"),
    (lambda t: t.update({b"n": b"x"}), "not a number"),
    (lambda t: t.update({b"n": b"0"}), "out of range"),
    (lambda t: t.update({b"n": b"99"}), "out of range"),
    (lambda t: t.pop(b"r1"), "missing"),
    (lambda t: t.update({b"r0": None}), "missing"),
])
def test_malformed_txt_gets_a_clear_error(mutate, why):
    txt = txt_from_record(_record(4))
    mutate(txt)
    with pytest.raises(InvalidArgumentError, match=why):
        record_from_txt(txt)
