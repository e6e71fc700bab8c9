"""Bundles against independent implementations: pyd3tn (PyPI) both ways with CRC none,
CRC-16 and CRC-32C; a second decoder written here on cbor2 from RFC 9171 alone; the
committed vectors (tests/vectors/bundle.json, reproduced in docs/dtn.md)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betanet.dtn import EID, Bundle, BundleFlags, CanonicalBlock, CRCType, StatusFlags, StatusReport
from betanet.dtn.bundle import bundle_age_data, hop_count_data, previous_node_data
from crc_reference import crc16_x25, crc32c

pyd3tn = pytest.importorskip("pyd3tn.bundle7")

VECTORS = json.loads((Path(__file__).parent / "vectors" / "bundle.json").read_text())["vectors"]

# ---- the second implementation: RFC 9171 on cbor2 ------------------------------------------


def check_crc(block: list) -> None:
    """§4.2.1: the CRC is over the block's CBOR with the CRC field's bytes zeroed."""
    crc_type = block[2] if len(block) >= 8 else block[3]
    if crc_type == 0:
        return
    field = block[-1]
    n = {1: 2, 2: 4}[crc_type]
    assert isinstance(field, bytes) and len(field) == n
    zeroed = cbor2.dumps(block[:-1] + [bytes(n)])
    want = crc16_x25(zeroed) if crc_type == 1 else crc32c(zeroed)
    assert int.from_bytes(field, "big") == want, "CRC mismatch"


def eid_text(e: list) -> str:
    scheme, ssp = e
    if scheme == 1:
        return "dtn:none" if ssp == 0 else "dtn:" + ssp
    assert scheme == 2 and len(ssp) == 2
    return f"ipn:{ssp[0]}.{ssp[1]}"


def ref_decode(data: bytes) -> dict:
    """Decode a bundle with cbor2 and RFC 9171 §4.3; CRCs recomputed independently."""
    assert data[0] == 0x9F and data[-1] == 0xFF, "a bundle is an indefinite-length array"
    items = cbor2.loads(data)
    primary, blocks = items[0], items[1:]
    assert primary[0] == 7 and len(primary) in (8, 9, 10, 11)
    check_crc(primary)
    flags = primary[1]
    out = {"flags": flags, "crc_type": primary[2], "destination": eid_text(primary[3]),
           "source": eid_text(primary[4]), "report_to": eid_text(primary[5]),
           "creation_ms": primary[6][0], "sequence": primary[6][1], "lifetime_ms": primary[7]}
    if flags & 1:
        out["fragment_offset"], out["total_adu_length"] = primary[8], primary[9]
    out["blocks"] = []
    for b in blocks:
        assert len(b) in (5, 6)
        check_crc(b)
        out["blocks"].append([b[0], b[1], b[2], b[3]])
        if b[0] == 1:
            out["payload"] = b[4].hex()
        elif b[0] == 6:
            out["previous_node"] = eid_text(cbor2.loads(b[4]))
        elif b[0] == 7:
            out["age_ms"] = cbor2.loads(b[4])
        elif b[0] == 10:
            out["hop_count"] = cbor2.loads(b[4])
    assert blocks[-1][0] == 1 and blocks[-1][1] == 1
    return out


def ref_encode_eid(text: str) -> list:
    if text == "dtn:none":
        return [1, 0]
    if text.startswith("dtn:"):
        return [1, text[4:]]
    node, svc = text[4:].split(".")
    return [2, [int(node), int(svc)]]

# ---- vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [v for v in VECTORS if "hex" in v], ids=lambda v: v["name"])
def test_vectors_reference_decoder_and_ours(v):
    data = bytes.fromhex(v["hex"])
    ref = ref_decode(data)
    for key in ("destination", "source", "report_to", "creation_ms", "sequence", "lifetime_ms",
                "crc_type", "payload", "blocks", "fragment_offset", "total_adu_length", "previous_node",
                "age_ms", "hop_count"):
        if key in v:
            assert ref[key] == v[key], key
    b = Bundle.parse(data)
    p = b.primary
    assert (str(p.destination), str(p.source), str(p.report_to)) == (v["destination"], v["source"], v["report_to"])
    assert (p.creation_ms, p.sequence, p.lifetime_ms, int(p.crc_type)) == \
           (v["creation_ms"], v["sequence"], v["lifetime_ms"], v["crc_type"])
    assert bytes(b.payload).hex() == v["payload"]
    assert [[x.type, x.number, int(x.flags), int(x.crc_type)] for x in b.blocks] == v["blocks"]
    if "fragment_offset" in v:
        assert (p.fragment_offset, p.total_adu_length) == (v["fragment_offset"], v["total_adu_length"])
    if "hop_count" in v:
        assert list(b.hop_count) == v["hop_count"] and b.age_ms == v["age_ms"]
        assert str(b.previous_node) == v["previous_node"]
    assert b.to_bytes() == data
    b.blocks
    assert b.to_bytes() == data


def test_status_report_vector():
    v = next(v for v in VECTORS if v["name"] == "status-report")
    rec = bytes.fromhex(v["record"])
    ref = cbor2.loads(rec)
    assert ref[0] == 1
    info, reason, src, ts = ref[1][:4]
    assert info == [[True, v["received_time"]], [False], [False], [True]]
    assert reason == v["reason"] and eid_text(src) == v["subject_source"]
    assert ts == [v["subject_creation_ms"], v["subject_sequence"]]
    d = StatusReport.decode(rec)
    assert int(d.asserted) == v["asserted"] and d.encode() == rec


@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=300), crc_type=st.sampled_from(list(CRCType)),
       ms=st.integers(0, 2**64 - 1), seq=st.integers(0, 2**64 - 1), life=st.integers(0, 2**64 - 1),
       hop=st.tuples(st.integers(0, 255), st.integers(0, 255)), frag=st.booleans())
def test_property_ours_equals_reference(payload, crc_type, ms, seq, life, hop, frag):
    b = Bundle.build("dtn://n/s", "ipn:7.1", payload, creation_ms=ms, sequence=seq, lifetime_ms=life,
                     crc_type=crc_type, payload_crc=crc_type, hop_limit=hop[0])
    data = b.to_bytes()
    if frag and len(payload) > 1:
        data = b.fragment_at(1, len(payload) - 1)
    ref = ref_decode(data)
    ours = Bundle.parse(data)
    assert ref["creation_ms"] == ours.primary.creation_ms and ref["lifetime_ms"] == ours.primary.lifetime_ms
    assert bytes.fromhex(ref["payload"]) == bytes(ours.payload)
    # the reference encoder (cbor2, definite arrays inside) produces the very same bytes
    p = ours.primary
    prim = [7, int(p.flags), int(p.crc_type), ref_encode_eid(str(p.destination)),
            ref_encode_eid(str(p.source)), ref_encode_eid(str(p.report_to)), [p.creation_ms, p.sequence],
            p.lifetime_ms] + ([p.fragment_offset, p.total_adu_length] if p.is_fragment else [])
    enc = [prim] + [[int(x.type), x.number, int(x.flags), int(x.crc_type), bytes(x.data)] for x in ours.blocks]
    out = b"\x9f"
    for blk in enc:
        n = {0: 0, 1: 2, 2: 4}[blk[2] if blk is prim else blk[3]]
        if n:
            zero = cbor2.dumps(blk + [bytes(n)])
            c = crc16_x25(zero) if n == 2 else crc32c(zero)
            out += cbor2.dumps(blk + [c.to_bytes(n, "big")])
        else:
            out += cbor2.dumps(blk)
    assert out + b"\xff" == data

# ---- pyd3tn --------------------------------------------------------------------------------

P7_CRC = {CRCType.NONE: pyd3tn.CRCType.NONE, CRCType.CRC16: pyd3tn.CRCType.CRC16,
          CRCType.CRC32C: pyd3tn.CRCType.CRC32}


@pytest.mark.parametrize("crc_type", list(CRCType), ids=lambda c: c.name)
def test_pyd3tn_parses_ours(crc_type):
    payload = os.urandom(777)
    b = Bundle.build("dtn://peer/inbox", "ipn:2.1", payload, creation_ms=757382400000, sequence=5,
                     lifetime_ms=3_600_000, crc_type=crc_type, payload_crc=crc_type,
                     flags=BundleFlags.REPORT_DELIVERY, report_to="ipn:2.0",
                     extra_blocks=[CanonicalBlock(6, 2, previous_node_data(EID.ipn(9, 0)), crc_type=crc_type),
                                   CanonicalBlock(7, 3, bundle_age_data(1500), crc_type=crc_type),
                                   CanonicalBlock(10, 4, hop_count_data(32, 3), crc_type=crc_type)])
    data = b.to_bytes()
    theirs = pyd3tn.Bundle.parse(data)
    pb = theirs.primary_block
    assert pb.crc_type == P7_CRC[crc_type]
    assert str(pb.destination) == "dtn://peer/inbox" and str(pb.source) == "ipn:2.1" and str(pb.report_to) == "ipn:2.0"
    assert pb.lifetime == 3_600_000 and pb.creation_time.sequence_number == 5
    assert pb.bundle_proc_flags == pyd3tn.BundleProcFlag.REPORT_DELIVERY
    assert theirs.payload_block.data == payload
    kinds = {blk.block_type: blk for blk in theirs.blocks}
    assert kinds[pyd3tn.BlockType.PREVIOUS_NODE].data == previous_node_data(EID.ipn(9, 0))
    assert kinds[pyd3tn.BlockType.BUNDLE_AGE].data == bundle_age_data(1500)
    assert kinds[pyd3tn.BlockType.HOP_COUNT].data == hop_count_data(32, 3)
    assert bytes(theirs) == data              # pyd3tn re-encodes our bundle to the same bytes


@pytest.mark.parametrize("crc_type", list(CRCType), ids=lambda c: c.name)
def test_we_parse_pyd3tn(crc_type):
    c = P7_CRC[crc_type]
    prim = pyd3tn.PrimaryBlock(
        bundle_proc_flags=pyd3tn.BundleProcFlag.MUST_NOT_BE_FRAGMENTED, crc_type=c,
        destination="ipn:1.2", source="dtn://sender/app", report_to="dtn:none",
        creation_time=pyd3tn.CreationTimestamp(1_700_000_000, 12), lifetime=86_400_000)
    theirs = pyd3tn.Bundle([prim, pyd3tn.PreviousNodeBlock("dtn://relay/", crc_type=c),
                            pyd3tn.HopCountBlock(64, 2, crc_type=c), pyd3tn.BundleAgeBlock(42, crc_type=c),  # seconds
                            pyd3tn.PayloadBlock(b"from pyd3tn" * 20, crc_type=c)])
    data = bytes(theirs)
    ours = Bundle.parse(data, strict=crc_type != CRCType.NONE)
    p = ours.primary
    assert p.crc_type == crc_type and all(blk.crc_type == crc_type for blk in ours.blocks)
    assert (str(p.destination), str(p.source), str(p.report_to)) == ("ipn:1.2", "dtn://sender/app", "dtn:none")
    assert p.creation_ms == (1_700_000_000 - 946_684_800) * 1000 and p.sequence == 12
    assert p.flags == BundleFlags.MUST_NOT_FRAGMENT
    assert bytes(ours.payload) == b"from pyd3tn" * 20
    assert ours.hop_count == (64, 2) and ours.age_ms == 42_000 and str(ours.previous_node) == "dtn://relay/"
    assert ours.to_bytes() == data
    ours.blocks
    assert ours.to_bytes() == data


def test_pyd3tn_fragments_and_status_reports():
    b = Bundle.build("ipn:1.2", "ipn:2.1", bytes(range(256)) * 4, creation_ms=757382400000, crc_type=CRCType.CRC16)
    for frag in b.fragment(300):
        theirs = pyd3tn.Bundle.parse(frag)
        assert theirs.is_fragmented
        ours = Bundle.parse(frag)
        assert theirs.primary_block.fragment_offset == ours.primary.fragment_offset
        assert theirs.primary_block.total_payload_length == 1024
        assert bytes(theirs) == frag
    # a status report from pyd3tn decodes with ours, and ours with theirs
    subject = pyd3tn.Bundle.parse(b.to_bytes())
    rep = pyd3tn.BundleStatusReport.from_bundle(
        pyd3tn.StatusCode.RECEIVED_BUNDLE | pyd3tn.StatusCode.DELIVERED_BUNDLE,
        pyd3tn.ReasonCode.NO_INFO, subject)
    mine = StatusReport.decode(rep.data)
    assert mine.asserted == StatusFlags.RECEIVED | StatusFlags.DELIVERED
    assert str(mine.source) == "ipn:2.1" and mine.creation_ms == 757382400000
    back = pyd3tn.BundleStatusReport.from_cbor(cbor2.loads(mine.encode()))
    assert back.is_received and back.is_delivered and not back.is_deleted


def test_vectors_are_reproduced_in_docs():
    doc = (Path(__file__).parent.parent / "docs" / "dtn.md").read_text()
    flat = "".join(doc.split())
    bpsec = json.loads((Path(__file__).parent / "vectors" / "bundle_bpsec.json").read_text())
    hexes = [v.get("hex") or v["record"] for v in VECTORS] + [v["result"] for v in bpsec["vectors"]]
    hexes += [bpsec["ed25519"]["original"], bpsec["ed25519"]["result"]]
    for h in hexes:
        assert h in flat, h[:40]
