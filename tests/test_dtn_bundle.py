"""BPv7 codec in libbetanet (betanet_bundle_*) through betanet.dtn: CRCs, parse/encode round
trips, strictness, faults (each a clear error), policy, fragmentation and reassembly, ids,
status reports. Interop with independent decoders is in test_dtn_bundle_interop.py."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betanet._native import bundle as nb
from betanet._native import core
from betanet.dtn import (EID, BlockFlags, BlockStatus, Bundle, BundleFlags, CanonicalBlock, CRCType,
                         Limits, PrimaryBlock, ReasonCode, Reassembler, StatusFlags, StatusReport, crc,
                         status_report_bundle)
from betanet.dtn.bundle import bundle_age_data, hop_count_data, previous_node_data
from betanet.errors import (InvalidArgumentError, LimitExceededError, MalformedError, ProtocolError,
                            StateError, UnsupportedError)
import crc_reference

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT_SRC = Path(__file__).resolve().parent.parent / "src" / "core"
SSE42 = core.CPU_FLAGS["sse4.2"]
RFC9173_A1 = bytes.fromhex(
    "9f88070000820282010282028202018202820201820018281a000f424085010100005823526561647920746f2067"
    "656e657261746520612033322d62797465207061796c6f6164ff")

# ---- CRC ---------------------------------------------------------------------------------


@pytest.fixture(params=["fast", "portable"])
def crc_path(request):
    if request.param == "fast" and not core.cpu_features() & SSE42:
        pytest.skip("no SSE4.2 on this CPU")
    full = core.cpu_features()
    core.cpu_restrict(0xFFFFFFFF if request.param == "fast" else full & ~SSE42)
    yield request.param
    core.cpu_restrict(0xFFFFFFFF)


def test_crc_check_values(crc_path):
    assert crc(CRCType.CRC16, b"123456789") == 0x906E
    assert crc(CRCType.CRC32C, b"123456789") == 0xE3069283
    assert crc(CRCType.CRC32C, b"") == 0 and crc(CRCType.CRC16, b"") == 0


def test_crc_paths_agree_with_reference(crc_path):
    rnd = os.urandom(4096)
    for n in list(range(0, 40)) + [63, 64, 65, 1000, 4096]:
        for off in (0, 1, 3):
            d = rnd[off:off + n]
            assert crc(2, d) == crc_reference.crc32c(d), (n, off)
            assert crc(1, d) == crc_reference.crc16_x25(d), (n, off)


def test_crc_fast_equals_portable_on_many_buffers():
    full = core.cpu_features()
    if not full & SSE42:
        pytest.skip("no SSE4.2 on this CPU")
    bufs = [os.urandom(n) for n in range(0, 3000, 7)]
    fast = [crc(2, b) for b in bufs]
    core.cpu_restrict(full & ~SSE42)
    try:
        assert [crc(2, b) for b in bufs] == fast
    finally:
        core.cpu_restrict(0xFFFFFFFF)


def test_crc32c_table_constants():
    # bundle_crc.h builds its table from the CRC steps of the single-bit bytes
    text = (ROOT_SRC / "bundle_crc.h").read_text()
    for i in range(8):
        c = 1 << i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        assert f"#define BNT_C32_K{i} {c:#010x}u" in text


def test_crc_bad_type():
    with pytest.raises(InvalidArgumentError):
        crc(0, b"x")
    with pytest.raises(InvalidArgumentError):
        crc(3, b"x")

# ---- parse / build -----------------------------------------------------------------------


def test_rfc9173_example_bundle_parses_and_reencodes():
    b = Bundle.parse(RFC9173_A1)
    p = b.primary
    assert (str(p.destination), str(p.source), str(p.report_to)) == ("ipn:1.2", "ipn:2.1", "ipn:2.1")
    assert (p.creation_ms, p.sequence, p.lifetime_ms, p.crc_type) == (0, 40, 1_000_000, CRCType.NONE)
    assert bytes(b.payload) == b"Ready to generate a 32-byte payload"
    assert b.to_bytes() == RFC9173_A1
    b.blocks  # materialise, then re-encode from the objects
    assert b.to_bytes() == RFC9173_A1


def test_payload_is_zero_copy():
    data = bytearray(Bundle.build("ipn:1.2", "ipn:2.1", b"abcdef", creation_ms=5).to_bytes())
    b = Bundle.parse(data)
    view = b.payload
    assert isinstance(view, memoryview) and bytes(view) == b"abcdef"
    data[-2] = ord("Z")                       # the view reads the caller's buffer
    assert bytes(view) == b"abcdeZ"


@pytest.mark.parametrize("crc_type", list(CRCType))
def test_build_parse_round_trip(crc_type):
    b = Bundle.build("dtn://dst/svc", EID.ipn(3, 4), os.urandom(2000), creation_ms=123456, sequence=9,
                     crc_type=crc_type, payload_crc=crc_type, hop_limit=5,
                     extra_blocks=[CanonicalBlock(6, 7, previous_node_data(EID.parse("dtn://prev/")))])
    data = b.to_bytes()
    c = Bundle.parse(data)
    assert c.to_bytes() == data and c == b
    assert c.hop_count == (5, 0) and str(c.previous_node) == "dtn://prev/" and c.age_ms is None
    assert c.primary.crc_type == crc_type and c.blocks[-1].crc_type == crc_type


def test_no_clock_adds_bundle_age():
    b = Bundle.parse(Bundle.build("ipn:1.1", "ipn:2.1", b"x", creation_ms=0).to_bytes())
    assert b.age_ms == 0
    assert Bundle.parse(b.to_bytes(), strict=True).age_ms == 0


def test_any_buffer_accepted():
    data = Bundle.build("ipn:1.2", "ipn:2.1", b"payload", creation_ms=1).to_bytes()
    for buf in (data, bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        assert bytes(Bundle.parse(buf).payload) == b"payload"


def eids():
    ipn = st.builds(EID.ipn, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
    name = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
    dtn = name.map(lambda s: EID.dtn("//" + s))
    return st.one_of(ipn, dtn, st.just(EID.NONE))


u64 = st.integers(0, 2**64 - 1)


@settings(max_examples=300, deadline=None)
@given(dst=eids(), src=eids(), rpt=eids(), ms=u64, seq=u64, life=u64, flags=st.integers(0, 2**20 - 1),
       crc_p=st.sampled_from(list(CRCType)), payload=st.binary(max_size=600),
       exts=st.lists(st.tuples(st.integers(13, 2**64 - 1), st.integers(0, 0x1F), st.sampled_from(list(CRCType)),
                               st.binary(max_size=40)), max_size=5))
def test_property_round_trip(dst, src, rpt, ms, seq, life, flags, crc_p, payload, exts):
    flags &= ~BundleFlags.IS_FRAGMENT
    blocks = [CanonicalBlock(t, i + 2, d, BlockFlags(f), c) for i, (t, f, c, d) in enumerate(exts)]
    blocks.append(CanonicalBlock(1, 1, payload, crc_type=crc_p))
    b = Bundle(PrimaryBlock(dst, src, rpt, ms, seq, life, BundleFlags(flags), crc_p), blocks)
    data = b.to_bytes()
    c = Bundle.parse(data)
    assert c.primary == b.primary
    assert [(x.type, x.number, x.flags, x.crc_type, bytes(x.data)) for x in c.blocks] == \
           [(x.type, x.number, x.flags, x.crc_type, bytes(x.data)) for x in blocks]
    assert all(x.status == BlockStatus.UNKNOWN for x in c.blocks[:-1])
    assert c.to_bytes() == data


def test_encode_rejects_invalid_bundles():
    def bad(*blocks):
        return Bundle(Bundle.build("ipn:1.1", "ipn:2.2", b"", creation_ms=1).primary, list(blocks))
    pay = CanonicalBlock(1, 1, b"p")
    for b in (bad(), bad(CanonicalBlock(7, 2, b"\x00")), bad(pay, CanonicalBlock(7, 2, b"\x00")),
              bad(CanonicalBlock(1, 2, b"p")), bad(CanonicalBlock(7, 1, b"\x00"), pay),
              bad(CanonicalBlock(7, 0, b"\x00"), pay), bad(CanonicalBlock(0, 3, b""), pay),
              bad(CanonicalBlock(7, 3, b"", crc_type=3), pay), bad(pay, pay)):
        with pytest.raises(InvalidArgumentError):
            b.to_bytes()
    with pytest.raises(InvalidArgumentError):
        EID.parse("dtn:noslash")
    with pytest.raises(InvalidArgumentError):
        EID.parse("http://x")
    with pytest.raises(InvalidArgumentError):
        EID.parse("ipn:1")

# ---- faults: each a clear error -----------------------------------------------------------


def detail_of(exc) -> str:
    return nb.error_string(exc.value.detail)


def test_corrupted_crc_is_reported():
    data = bytearray(Bundle.build("ipn:1.2", "ipn:2.1", b"A" * 50, creation_ms=1, crc_type=CRCType.CRC32C,
                                  payload_crc=CRCType.CRC16).to_bytes())
    life = data.index(bytes.fromhex("1a05265c00"))   # the lifetime (one day) in the primary
    for pos in (life + 2, len(data) - 20):    # a value in the primary block, a payload byte
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises(MalformedError) as e:
            Bundle.parse(bytes(bad))
        assert e.value.detail == 7 and nb.error_string(7).startswith("CRC mismatch")
        assert "CRC mismatch" in str(e.value)
    bad = bytearray(data)
    bad[-3] ^= 0xFF                            # the CRC field itself
    with pytest.raises(MalformedError, match="CRC mismatch"):
        Bundle.parse(bytes(bad))


def test_truncated_bundle_every_prefix():
    data = Bundle.build("dtn://a/b", "ipn:2.1", b"xyz" * 30, creation_ms=99, hop_limit=3).to_bytes()
    for n in range(len(data)):
        with pytest.raises(MalformedError) as e:
            Bundle.parse(data[:n])
        assert "truncated" in str(e.value), (n, str(e.value))


def test_trailing_bytes_rejected():
    data = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1).to_bytes()
    with pytest.raises(MalformedError, match="after the end"):
        Bundle.parse(data + b"\x00")
    v = nb.parse(data + b"\x00junk", prefix=True)
    assert v.length == len(data)


def test_unknown_critical_block_deletes_bundle():
    crit = CanonicalBlock(193, 2, b"\x01\x02", BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE | BlockFlags.REPORT_IF_UNPROCESSABLE)
    b = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1, extra_blocks=[crit]).to_bytes())
    assert b.blocks[0].status == BlockStatus.UNKNOWN
    v = b.policy()
    assert v.delete and v.report and v.reason == ReasonCode.BLOCK_UNSUPPORTED and v.unprocessable == (2,)
    with pytest.raises(ProtocolError, match="delete-bundle"):
        v.raise_if_deleted()
    # a host that knows type 193 keeps it
    assert not b.policy(known_types=[193, 6, 7, 10]).delete


def test_unknown_block_discard_and_keep():
    disc = CanonicalBlock(200, 2, b"gone", BlockFlags.DISCARD_IF_UNPROCESSABLE)
    keep = CanonicalBlock(201, 3, b"kept", crc_type=CRCType.CRC32C)
    src = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1, extra_blocks=[disc, keep])
    b = Bundle.parse(src.to_bytes())
    v = b.policy()
    assert not v.delete and v.discard == (2,) and not v.report
    out = Bundle.parse(b.without_discarded())
    assert [(x.type, bytes(x.data)) for x in out.blocks] == [(201, b"kept"), (1, b"x")]
    # a host without BPSec treats BIB/BCB as unprocessable too
    bib = CanonicalBlock(11, 4, b"\x81\x01", BlockFlags.DELETE_BUNDLE_IF_UNPROCESSABLE)
    c = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1, extra_blocks=[bib]).to_bytes())
    assert not c.policy().delete and c.policy(known_types=[6, 7, 10]).delete


def test_unintelligible_known_block():
    bad_hop = CanonicalBlock(10, 2, b"\x83\x01\x02\x03", BlockFlags.REPORT_IF_UNPROCESSABLE)
    b = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1, extra_blocks=[bad_hop]).to_bytes())
    assert b.blocks[0].status == BlockStatus.UNINTELLIGIBLE and b.hop_count is None
    v = b.policy()
    assert v.report and v.reason == ReasonCode.BLOCK_UNINTELLIGIBLE and not v.delete


def test_fragment_overrunning_its_adu():
    full = Bundle.build("ipn:1.2", "ipn:2.1", bytes(100), creation_ms=1)
    frag = Bundle.parse(full.fragment_at(90, 10))
    p = frag.primary
    assert (p.fragment_offset, p.total_adu_length) == (90, 100)
    p.total_adu_length = 95                    # the fragment now ends beyond its ADU
    with pytest.raises(InvalidArgumentError):
        frag.to_bytes()                        # the encoder refuses to write it
    bad = Bundle.build("ipn:1.2", "ipn:2.1", bytes(100), creation_ms=1, crc_type=CRCType.NONE)
    raw = bytearray(bad.fragment_at(90, 10))
    i = raw.index(bytes([0x18, 90, 0x18, 100]))
    raw[i + 3] = 95                            # hand-made (CRC none on this primary)
    with pytest.raises(MalformedError, match="overruns its ADU"):
        Bundle.parse(bytes(raw))


def test_fragment_overlap_with_different_bytes():
    a = Bundle.build("ipn:1.2", "ipn:2.1", b"A" * 100, creation_ms=1, sequence=1)
    r = Reassembler(100)
    assert not r.add(a.fragment_at(0, 60))
    r.add(a.fragment_at(50, 20))                # overlap with the same bytes: fine
    forged = bytearray(a.fragment_at(40, 30))
    forged[-5] = ord("B")                       # same bundle id, other bytes (payload CRC none)
    with pytest.raises(MalformedError):
        r.add(bytes(forged))
    other = Bundle.build("ipn:1.2", "ipn:2.1", b"A" * 100, creation_ms=1, sequence=2)
    with pytest.raises(MalformedError):
        r.add(other.fragment_at(60, 40))        # another bundle's fragment
    with pytest.raises(MalformedError):
        r.add(Bundle.build("ipn:1.2", "ipn:2.1", b"A" * 100, creation_ms=1, sequence=1).to_bytes())
    with pytest.raises(StateError):
        r.finish()
    assert r.add(a.fragment_at(70, 30)) and r.finish() == a.to_bytes()


def test_reassembler_bounds():
    with pytest.raises(LimitExceededError):
        Reassembler(10**12, max_adu_bytes=1 << 20)
    a = Bundle.build("ipn:1.2", "ipn:2.1", bytes(range(100)), creation_ms=1)
    r = Reassembler(100, max_ranges=2)
    r.add(a.fragment_at(0, 10))
    r.add(a.fragment_at(20, 10))
    with pytest.raises(LimitExceededError):
        r.add(a.fragment_at(40, 10))            # a third gap
    r.add(a.fragment_at(10, 10))                # merging is always possible
    r.add(a.fragment_at(40, 10))
    assert not r.complete


def test_hostile_lengths():
    # a byte string claiming 2^63 bytes: refused as truncated before anything is read
    head = Bundle.build("ipn:1.2", "ipn:2.1", b"", creation_ms=1).to_bytes()[:-7]
    hostile = head + bytes([0x85, 0x01, 0x01, 0x00, 0x00, 0x5B]) + (1 << 63).to_bytes(8, "big") + b"\xff"
    with pytest.raises(MalformedError, match="truncated"):
        Bundle.parse(hostile)
    # the array count of a block beyond any limit
    with pytest.raises(MalformedError):
        Bundle.parse(b"\x9f\x9b" + b"\xff" * 8 + b"\xff")
    big = Bundle.build("ipn:1.2", "ipn:2.1", bytes(5000), creation_ms=1).to_bytes()
    with pytest.raises(LimitExceededError, match="size limit"):
        Bundle.parse(big, limits=Limits(max_bytes=4096))
    many = Bundle.build("ipn:1.2", "ipn:2.1", b"", creation_ms=1,
                        extra_blocks=[CanonicalBlock(300 + i, 2 + i, b"") for i in range(10)]).to_bytes()
    with pytest.raises(LimitExceededError, match="more blocks"):
        Bundle.parse(many, limits=Limits(max_blocks=5))
    assert len(Bundle.parse(many).blocks) == 11
    long_eid = Bundle.build("dtn://" + "n" * 2000 + "/x", "ipn:2.1", b"", creation_ms=1).to_bytes()
    with pytest.raises(LimitExceededError, match="endpoint ID longer"):
        Bundle.parse(long_eid)
    assert len(Bundle.parse(long_eid, limits=Limits(max_eid_bytes=4096)).primary.destination.ssp) == 2004


@pytest.mark.parametrize("hexdata,what", [
    ("9f88060000820282010282028202018202820201820018281a000f424085010100004161ff", "version"),
    ("9f880700008202820102820282020182028202018200181818281a000f424085010100004161ff", "deterministic"),
    ("9f8807000082028201028202820201820282020182001828" "1a000f4240" "85010200004161ff", "payload"),
    ("9f88070000820282010282028202018202820201820018281a000f4240"
     "850701000041008501010000 4161ff".replace(" ", ""), "not unique"),
    ("9f88070000820282010282028202018202820201820018281a000f4240ff", "payload"),
    ("9f88070000820282010282028202018202820201820018281a000f4240850101000041618507020000 4100ff"
     .replace(" ", ""), "payload"),
    ("9f88070000820382010282028202018202820201820018281a000f424085010100004161ff", "endpoint ID"),
    ("9f8807000082018000820282020182028202018200182 81a000f424085010100004161ff".replace(" ", ""), "wrong type"),
    ("9f88070003820282010282028202018202820201820018281a000f424085010100004161ff", "CRC type"),
    ("9f88070000820282010282028202018202820201820018281a000f42408601010000416141 00ff".replace(" ", ""), "canonical block"),
    ("9f88070000820282010282028202018202820201820018281a000f42408601010001416141 00ff".replace(" ", ""), "CRC type"),
    ("9f8807000082028201028202820201820282020182001828" "1a000f4240" "8501010000 7f6161ff ff".replace(" ", ""), "CBOR"),
])
def test_malformed_structures(hexdata, what):
    with pytest.raises(MalformedError, match=what):
        Bundle.parse(bytes.fromhex(hexdata))


def test_strict_mode_sender_rules():
    assert Bundle.parse(RFC9173_A1).primary.crc_type == CRCType.NONE      # lenient default
    with pytest.raises(MalformedError, match="strict"):
        Bundle.parse(RFC9173_A1, strict=True)                             # no CRC, no age block
    ok = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=5).to_bytes()
    assert Bundle.parse(ok, strict=True)
    admin = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=5,
                         flags=BundleFlags.ADMIN_RECORD | BundleFlags.REPORT_DELIVERY).to_bytes()
    with pytest.raises(MalformedError, match="strict"):
        Bundle.parse(admin, strict=True)


def test_duplicate_extension_block():
    data = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1, extra_blocks=[
        CanonicalBlock(10, 2, hop_count_data(5, 1)), CanonicalBlock(10, 3, hop_count_data(5, 1))]).to_bytes()
    with pytest.raises(MalformedError, match="repeated"):
        Bundle.parse(data)

# ---- fragmentation -------------------------------------------------------------------------


@pytest.mark.parametrize("crc_type", list(CRCType))
def test_fragment_and_reassemble(crc_type):
    payload = os.urandom(3000)
    b = Bundle.build("ipn:1.2", "ipn:2.1", payload, creation_ms=77, crc_type=crc_type, payload_crc=crc_type,
                     extra_blocks=[CanonicalBlock(6, 2, previous_node_data(EID.ipn(4, 0)), BlockFlags.REPLICATE),
                                   CanonicalBlock(7, 3, bundle_age_data(10))])
    frags = b.fragment(500)
    assert len(frags) > 6 and all(len(f) <= 500 for f in frags)
    parsed = [Bundle.parse(f) for f in frags]
    assert sum(len(p.payload) for p in parsed) == 3000
    # the replicate-flagged block is in every fragment, the age block only in the first
    assert all(p.block(6) is not None for p in parsed)
    assert parsed[0].block(7) is not None and all(p.block(7) is None for p in parsed[1:])
    assert len({p.adu_id for p in parsed}) == 1 and len({p.bundle_id for p in parsed}) == len(parsed)
    r = Reassembler.for_fragment(parsed[0])
    order = list(range(len(parsed)))[::-1]
    for k, i in enumerate(order):
        assert r.add(parsed[i]) == (k == len(order) - 1)
    assert r.finish() == b.to_bytes()


def test_refragmenting_a_fragment():
    b = Bundle.build("ipn:1.2", "ipn:2.1", bytes(range(200)), creation_ms=3)
    f = Bundle.parse(b.fragment_at(50, 100))
    g = Bundle.parse(f.fragment_at(25, 50))
    assert (g.primary.fragment_offset, g.primary.total_adu_length, bytes(g.payload)) == (75, 200, bytes(range(75, 125)))
    r = Reassembler(200)
    for part in (b.fragment_at(0, 60), g.to_bytes(), f.to_bytes(), b.fragment_at(140, 60)):
        r.add(part)
    assert r.finish() == b.to_bytes()


def test_must_not_fragment():
    b = Bundle.build("ipn:1.2", "ipn:2.1", bytes(1000), creation_ms=3, flags=BundleFlags.MUST_NOT_FRAGMENT)
    with pytest.raises(InvalidArgumentError, match="must-not-fragment"):
        b.fragment(200)
    with pytest.raises(InvalidArgumentError):
        Bundle.build("ipn:1.2", "ipn:2.1", bytes(10), creation_ms=3).fragment_at(5, 10)


def test_bundle_id_layout():
    b = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=0x0102, sequence=7).to_bytes())
    bid = b.bundle_id
    assert len(bid) == 64
    assert bid[:32] == hashlib.blake2b(EID.ipn(2, 1).encode(), digest_size=32).digest()
    assert bid[32:48] == (0x0102).to_bytes(8, "big") + (7).to_bytes(8, "big")
    assert bid[48:] == b"\xff" * 16

# ---- status reports ---------------------------------------------------------------------------


def test_status_report_round_trip():
    subject = Bundle.parse(Bundle.build("ipn:1.2", "dtn://src/app", b"x", creation_ms=1000, sequence=3,
                                        flags=BundleFlags.STATUS_TIME | BundleFlags.REPORT_DELIVERY).to_bytes())
    rep = StatusReport.about(subject, StatusFlags.DELIVERED, ReasonCode.NO_INFO, at_ms=5000)
    dec = StatusReport.decode(rep.encode())
    assert dec == rep and dec.times == ((StatusFlags.DELIVERED, 5000),) and str(dec.source) == "dtn://src/app"
    frag = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", bytes(100), creation_ms=1).fragment_at(10, 20))
    r2 = StatusReport.about(frag, StatusFlags.DELETED | StatusFlags.RECEIVED, ReasonCode.HOP_LIMIT_EXCEEDED)
    assert StatusReport.decode(r2.encode()).fragment == (10, 20)
    sb = status_report_bundle(rep, subject.primary.report_to, EID.ipn(9, 0), creation_ms=2)
    parsed = Bundle.parse(sb.to_bytes(), strict=True)
    assert parsed.primary.flags & BundleFlags.ADMIN_RECORD
    assert StatusReport.decode(parsed.payload) == rep


def test_status_report_faults():
    with pytest.raises(UnsupportedError):
        StatusReport.decode(bytes.fromhex("820380"))        # record type 3
    good = StatusReport(StatusFlags.RECEIVED, ReasonCode.NO_INFO, EID.ipn(1, 1), 1, 1).encode()
    for n in range(len(good)):
        with pytest.raises(MalformedError):
            StatusReport.decode(good[:n])
    with pytest.raises(MalformedError):
        StatusReport.decode(good + b"\x00")
    with pytest.raises(InvalidArgumentError):
        StatusReport(StatusFlags.RECEIVED, ReasonCode.NO_INFO, EID.ipn(1, 1), 1, 1,
                     times=((StatusFlags.DELETED, 5),)).encode()

# ---- forwarding ---------------------------------------------------------------------------------


def test_forwarding_updates_hop_count_previous_node_and_age():
    b = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=0, hop_limit=2,
                                  extra_blocks=[CanonicalBlock(250, 9, b"keep", crc_type=CRCType.CRC16)]).to_bytes())
    f1 = Bundle.parse(b.for_forwarding(EID.ipn(5, 0), held_ms=120).to_bytes())
    assert f1.hop_count == (2, 1) and str(f1.previous_node) == "ipn:5.0" and f1.age_ms == 120
    assert bytes(f1.block(250).data) == b"keep"
    f2 = Bundle.parse(f1.for_forwarding(EID.ipn(6, 0), held_ms=30).to_bytes())
    assert f2.hop_count == (2, 2) and str(f2.previous_node) == "ipn:6.0" and f2.age_ms == 150
    assert len([x for x in f2.blocks if x.type == 6]) == 1
    with pytest.raises(LimitExceededError, match="hop limit 2 exceeded") as e:
        f2.for_forwarding(EID.ipn(7, 0))
    assert e.value.reason == ReasonCode.HOP_LIMIT_EXCEEDED


def test_expiry():
    b = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1_000, lifetime_ms=500)
    assert not b.expired(1_499) and b.expired(1_500)
    nc = Bundle.parse(Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=0, lifetime_ms=100).to_bytes())
    assert not nc.expired(10**12)
    assert Bundle.parse(nc.for_forwarding(EID.ipn(3, 0), held_ms=100).to_bytes()).expired(0)


def test_non_contiguous_buffer_is_a_clear_error():
    data = Bundle.build("ipn:1.2", "ipn:2.1", b"x", creation_ms=1).to_bytes()
    with pytest.raises(InvalidArgumentError, match="C-contiguous"):
        Bundle.parse(memoryview(data * 2)[::2])
    with pytest.raises(InvalidArgumentError):
        Bundle.parse("not bytes")


_SEEDS = [RFC9173_A1] + [Bundle.build("dtn://a/b", "ipn:2.1", b"p" * 40, creation_ms=c, crc_type=c % 3,
                                      payload_crc=(c + 1) % 3, hop_limit=5).fragment_at(3, 20) for c in range(3)]


@settings(max_examples=500, deadline=None)
@given(seed=st.sampled_from(_SEEDS), edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 400), junk=st.binary(max_size=64))
def test_property_hostile_bytes_only_clear_errors(seed, edits, cut, junk):
    data = bytearray(seed)
    for pos, val in edits:
        if data:
            data[pos % len(data)] = val
    for blob in (bytes(data[:cut]), bytes(data) + junk, junk):
        try:
            b = Bundle.parse(blob)
        except (MalformedError, LimitExceededError):
            continue
        # whatever parses re-encodes to itself and survives the policy and the id
        assert b.to_bytes() == blob
        b.policy()
        assert len(b.bundle_id) == 64
