"""BPSec (RFC 9172) with the RFC 9173 contexts and the BIB-Ed25519 context: every example
bundle of RFC 9173 Appendix A reproduced byte for byte and verified/decrypted back;
tampering, wrong keys and malformed security blocks each a clear error."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from betanet.dtn import EID, BlockType, Bundle, CanonicalBlock
from betanet.dtn.bpsec import (BCB_AES_GCM, BIB_ED25519, BIB_HMAC_SHA2, AesVariant, Scope,
                               SecurityBlock, ShaVariant, aad, decrypt_aes_gcm, encrypt_aes_gcm,
                               ippt, security_blocks, sign_ed25519, sign_hmac, verify_ed25519,
                               verify_hmac)
from betanet.errors import (AuthenticationError, InvalidArgumentError, MalformedError,
                            UnsupportedError)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "bundle_bpsec.json").read_text())["vectors"]
ED25519_VECTOR = json.loads((Path(__file__).parent / "vectors" / "bundle_bpsec.json").read_text()).get("ed25519")


def apply(bundle: Bundle, step: dict) -> Bundle:
    src = EID.parse(step["source"])
    key = bytes.fromhex(step["key"])
    if step["op"] == "bib-hmac-sha2":
        return sign_hmac(bundle, step["targets"], key, src, variant=ShaVariant(step["sha_variant"]),
                         scope=Scope(step["scope"]), number=step["number"], position=step["position"])
    return encrypt_aes_gcm(bundle, step["targets"], key, src, variant=AesVariant(step["aes_variant"]),
                           scope=Scope(step["scope"]), iv=bytes.fromhex(step["iv"]),
                           kek=bytes.fromhex(step["kek"]) if "kek" in step else None,
                           number=step["number"], position=step["position"])


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"].split()[0])
def test_rfc9173_appendix_a_reproduced(v):
    b = Bundle.parse(bytes.fromhex(v["original"]))
    for step in v["steps"]:
        b = apply(b, step)
    assert b.to_bytes().hex() == v["result"]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"].split()[0])
def test_rfc9173_appendix_a_verified_and_decrypted(v):
    final = Bundle.parse(bytes.fromhex(v["result"]))
    bcb = [s for s in v["steps"] if s["op"] == "bcb-aes-gcm"]
    bib = [s for s in v["steps"] if s["op"] == "bib-hmac-sha2"]
    if bcb:
        s = bcb[0]
        kek = "kek" in s
        plain = decrypt_aes_gcm(final, bytes.fromhex(s["kek"] if kek else s["key"]), kek=kek)
        assert not security_blocks(plain, BlockType.BCB)
        assert bytes(plain.payload) == b"Ready to generate a 32-byte payload"
        final = plain
    if bib:
        assert sorted(verify_hmac(final, bytes.fromhex(bib[0]["key"]))) == sorted(bib[0]["targets"])
    if not bcb:
        # removing a BIB gives back the original bundle
        stripped = Bundle(final.primary, [b for b in final.blocks if b.type != BlockType.BIB])
        assert stripped.to_bytes().hex() == v["original"]


def test_rfc9173_intermediate_values():
    a1, a2, a3 = VECTORS[0], VECTORS[1], VECTORS[2]
    orig = Bundle.parse(bytes.fromhex(a1["original"]))
    s = a1["steps"][0]
    assert ippt(orig, 1, 0, 11, 2, 0).hex() == s["ippt"]
    blk = SecurityBlock.decode(Bundle.parse(bytes.fromhex(a1["result"])).blocks[0].data)
    assert (blk.targets, blk.context_id, str(blk.source)) == ((1,), BIB_HMAC_SHA2, "ipn:2.1")
    assert blk.parameters == ((1, 7), (3, 0)) and blk.results[0][0][1].hex() == s["signature"]
    s = a2["steps"][0]
    assert aad(orig, orig.blocks[0], 0, 2, 1).hex() == s["aad"]
    b2 = Bundle.parse(bytes.fromhex(a2["result"]))
    blk = SecurityBlock.decode(b2.blocks[0].data)
    assert blk.context_id == BCB_AES_GCM and blk.param(3).hex() == s["wrapped_key"]
    assert blk.results[0][0][1].hex() == s["tag"] and bytes(b2.payload).hex() == s["ciphertext"]
    o3 = Bundle.parse(bytes.fromhex(a3["original"]))
    s = a3["steps"][0]
    assert ippt(o3, 0, 0, 11, 3, 0).hex() == s["ippt_primary"] and ippt(o3, 2, 0, 11, 3, 0).hex() == s["ippt_age"]


def base_bundle(payload: bytes = b"store and forward") -> Bundle:
    return Bundle.build("ipn:1.2", "ipn:2.1", payload, creation_ms=757382400000, sequence=3, hop_limit=8)


@pytest.mark.parametrize("variant", list(ShaVariant))
@pytest.mark.parametrize("scope", [Scope.NONE, Scope.PRIMARY, Scope.ALL])
def test_hmac_round_trip_and_tamper(variant, scope):
    key = os.urandom(32)
    b = sign_hmac(base_bundle(), [0, 1, 2], key, EID.ipn(2, 1), variant=variant, scope=scope)
    data = b.to_bytes()
    assert sorted(verify_hmac(Bundle.parse(data), key)) == [0, 1, 2]
    with pytest.raises(AuthenticationError):
        verify_hmac(Bundle.parse(data), os.urandom(32))
    bad = bytearray(data)
    bad[-3] ^= 1                                       # a payload byte (payload CRC none)
    with pytest.raises(AuthenticationError, match="block 1"):
        verify_hmac(Bundle.parse(bytes(bad)), key)


def test_hmac_with_wrapped_key():
    kek, key = os.urandom(16), os.urandom(32)
    b = Bundle.parse(sign_hmac(base_bundle(), [1], key, EID.ipn(2, 1), kek=kek).to_bytes())
    assert verify_hmac(b, kek, kek=True) == [1]
    with pytest.raises(AuthenticationError, match="unwrap"):
        verify_hmac(b, os.urandom(16), kek=True)


@pytest.mark.parametrize("variant", list(AesVariant))
def test_aes_gcm_round_trip_and_tamper(variant):
    key = os.urandom(16 if variant == AesVariant.A128GCM else 32)
    plain = base_bundle(os.urandom(500))
    enc = encrypt_aes_gcm(plain, [1, 2], key, EID.ipn(2, 1), variant=variant)
    data = enc.to_bytes()
    parsed = Bundle.parse(data)
    assert bytes(parsed.payload) != bytes(plain.payload)
    assert decrypt_aes_gcm(parsed, key).to_bytes() == plain.to_bytes()
    with pytest.raises(AuthenticationError):
        decrypt_aes_gcm(parsed, os.urandom(len(key)))
    bad = bytearray(data)
    bad[-10] ^= 0x80
    with pytest.raises(AuthenticationError, match="block 1"):
        decrypt_aes_gcm(Bundle.parse(bytes(bad)), key)
    # the AAD binds the primary block: another destination fails
    moved = Bundle.parse(data)
    moved.primary.destination = EID.ipn(9, 9)
    with pytest.raises(AuthenticationError):
        decrypt_aes_gcm(Bundle.parse(moved.to_bytes()), key)


def test_bcb_must_cover_bib_of_its_target():
    key = os.urandom(32)
    signed = sign_hmac(base_bundle(), [1], key, EID.ipn(2, 1), number=5)
    with pytest.raises(InvalidArgumentError, match="encrypt it too"):
        encrypt_aes_gcm(signed, [1], key, EID.ipn(2, 1))
    enc = encrypt_aes_gcm(signed, [5, 1], key, EID.ipn(2, 1))
    assert verify_hmac(decrypt_aes_gcm(Bundle.parse(enc.to_bytes()), key), key) == [1]
    with pytest.raises(InvalidArgumentError):
        encrypt_aes_gcm(signed, [0], key, EID.ipn(2, 1))     # the primary block is never encrypted
    with pytest.raises(InvalidArgumentError):
        encrypt_aes_gcm(signed, [1], os.urandom(20), EID.ipn(2, 1))


def test_ed25519_context_survives_forwarding():
    sk = Ed25519PrivateKey.generate()
    signed = sign_ed25519(base_bundle(), [0, 1], sk, EID.ipn(2, 1))
    data = signed.to_bytes()
    b = Bundle.parse(data)
    (blk, asb), = security_blocks(b, BlockType.BIB)
    assert asb.context_id == BIB_ED25519 == -8 and len(asb.results[0][0][1]) == 64
    assert sorted(verify_ed25519(b, sk.public_key())) == [0, 1]
    # a forwarding node updates hop count and adds a previous node block: still valid
    fwd = Bundle.parse(data)
    for x in fwd.blocks:
        if x.type == BlockType.HOP_COUNT:
            x.data = bytes.fromhex("820801")
    fwd.blocks.insert(0, CanonicalBlock(6, 9, EID.ipn(7, 0).encode()))
    assert sorted(verify_ed25519(Bundle.parse(fwd.to_bytes()), lambda src: [sk.public_key()])) == [0, 1]
    # but not a changed payload or primary block, nor another key
    other = Ed25519PrivateKey.generate()
    with pytest.raises(AuthenticationError, match="no trusted key"):
        verify_ed25519(b, other.public_key())
    moved = Bundle.parse(data)
    moved.primary.lifetime_ms += 1
    with pytest.raises(AuthenticationError, match="block 0"):
        verify_ed25519(Bundle.parse(moved.to_bytes()), sk.public_key())
    bad = bytearray(data)
    bad[-3] ^= 1
    with pytest.raises(AuthenticationError, match="block 1"):
        verify_ed25519(Bundle.parse(bytes(bad)), sk.public_key())


def test_ed25519_vector():
    v = ED25519_VECTOR
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["seed"]))
    b = Bundle.parse(bytes.fromhex(v["original"]))
    out = sign_ed25519(b, v["targets"], sk, EID.parse(v["source"]), number=v["number"])
    assert out.to_bytes().hex() == v["result"]
    assert verify_ed25519(Bundle.parse(bytes.fromhex(v["result"])), sk.public_key()) == v["targets"]


@pytest.mark.parametrize("blob", [
    b"", b"\x81", b"\x80\x01\x00\x82\x02\x82\x01\x01\x80",        # no targets
    b"\x81\x01\x01\x00\x82\x02\x82\x01\x01\x80",                    # results for 0 of 1 targets
    b"\x82\x01\x01\x01\x00\x82\x02\x82\x01\x01\x80\x80",            # duplicate target
    b"\x81\x01\x01\x00\x82\x02\x82\x01\x01\x81\x81\x82\x01\x41",    # truncated result
    b"\x81\x01\x01\x00\x82\x02\x82\x01\x01\x81\x81\x82\x01\x40\x00",  # trailing byte
    b"\x81\x01\x01\x00\x82\x02\x82\x01\x01\x81\x9b" + b"\xff" * 8,  # hostile array length
    b"\x81\x01\x01\x00\x82\x07\x82\x01\x01\x81\x80",                # unknown EID scheme
    b"\x81\x18\x01\x01\x00\x82\x02\x82\x01\x01\x81\x80",            # non-shortest integer
])
def test_malformed_security_blocks(blob):
    with pytest.raises(MalformedError):
        SecurityBlock.decode(blob)


def test_unknown_context_and_missing_target():
    asb = SecurityBlock((1,), 99, EID.ipn(2, 1), None, (((1, b"x"),),))
    b = Bundle.build("ipn:1.2", "ipn:2.1", b"p", creation_ms=1,
                     extra_blocks=[CanonicalBlock(BlockType.BIB, 2, asb.encode())])
    with pytest.raises(UnsupportedError):
        verify_hmac(Bundle.parse(b.to_bytes()), b"k" * 16)
    asb = SecurityBlock((7,), BIB_HMAC_SHA2, EID.ipn(2, 1), ((1, 6), (3, 7)), (((1, b"x"),),))
    b = Bundle.build("ipn:1.2", "ipn:2.1", b"p", creation_ms=1,
                     extra_blocks=[CanonicalBlock(BlockType.BIB, 2, asb.encode())])
    with pytest.raises(MalformedError, match="not in the bundle"):
        verify_hmac(Bundle.parse(b.to_bytes()), b"k" * 16)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ASB_SEEDS = [bytes(Bundle.parse(bytes.fromhex(v["result"])).blocks[0].data) for v in VECTORS]


@settings(max_examples=400, deadline=None)
@given(seed=st.sampled_from(_ASB_SEEDS), edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=3),
       cut=st.integers(0, 300))
def test_property_security_block_decoder_only_malformed(seed, edits, cut):
    data = bytearray(seed)
    for pos, val in edits:
        data[pos % len(data)] = val
    try:
        asb = SecurityBlock.decode(bytes(data[:cut]))
    except MalformedError:
        return
    assert SecurityBlock.decode(asb.encode()) == asb
