"""Access tickets (Betanet 1.1 §5.2): pinned vectors re-derived independently, the hour
window, replay, key id, malformed/oversized payloads, carriers, token buckets."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from betanet.errors import InvalidArgumentError, MalformedError
from betanet.tls.tickets import (FIELD, MAX_ENCODED, CarrierPolicy, TicketKey, TicketPublication,
                                 TicketVerifier, b64url_decode, b64url_encode, choose_carrier,
                                 make_ticket)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "tickets.json").read_text())["vectors"]
T0 = 1767225600.0          # 2026-01-01T00:00:00Z, an hour boundary


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["carrier"])
def test_vectors_independent(v):
    """Recompute every vector with cryptography's HKDF and X25519, not the module's code."""
    spriv, cpriv = bytes.fromhex(v["server_private"]), bytes.fromhex(v["client_private"])
    spub = X25519PrivateKey.from_private_bytes(spriv).public_key().public_bytes_raw()
    cpub = X25519PrivateKey.from_private_bytes(cpriv).public_key().public_bytes_raw()
    assert spub.hex() == v["ticket_pub"] and cpub.hex() == v["client_public"]
    shared = X25519PrivateKey.from_private_bytes(cpriv).exchange(X25519PublicKey.from_public_bytes(spub))
    assert shared == X25519PrivateKey.from_private_bytes(spriv).exchange(X25519PublicKey.from_public_bytes(cpub))
    assert shared.hex() == v["shared_secret"]
    hour = int(v["unix_time"] // 3600)
    assert hour == v["hour"]
    kid = bytes.fromhex(v["key_id"])
    salt = hashlib.sha256(b"betanet-ticket-v1" + kid + hour.to_bytes(8, "big")).digest()
    assert salt.hex() == v["salt"]
    access = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"").derive(shared)
    assert access.hex() == v["access_ticket"]
    payload = b"\x01" + cpub + kid + bytes.fromhex(v["nonce"]) + access + bytes.fromhex(v["pad"])
    assert payload.hex() == v["payload"]
    assert base64.urlsafe_b64encode(payload).rstrip(b"=").decode() == v["base64url"]
    assert "=" not in v["base64url"]
    # and the module produces the same bytes
    key = TicketKey(spriv, kid)
    t = make_ticket(key.publication, v["unix_time"], client_private=cpriv, nonce=bytes.fromhex(v["nonce"]),
                    pad=bytes.fromhex(v["pad"]), carrier=v["carrier"])
    assert t.payload.hex() == v["payload"]
    assert key.publication.to_text() == v["publication"]
    assert TicketVerifier(key).verify(v["base64url"], "192.0.2.1", v["unix_time"]).ok


def _fresh():
    key = TicketKey.generate()
    return key, TicketVerifier(key, rate=1000, burst=1000)


def test_hour_window_and_replay():
    key, ver = _fresh()
    for dh, ok in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        t = make_ticket(key.publication, T0 + dh * 3600 + 5)
        r = ver.verify(t.encoded, "192.0.2.1", T0 + 100)
        assert r.ok is ok and r.reason == ("ok" if ok else "ticket"), dh
    t = make_ticket(key.publication, T0)
    assert ver.verify(t.encoded, "192.0.2.1", T0).ok
    assert ver.verify(t.encoded, "192.0.2.9", T0 + 10).reason == "replay"            # other address too
    assert ver.verify(t.encoded, "198.51.100.1", T0 + 3599).reason == "replay"
    # the same client key in a new hour is a new ticket
    cpriv = bytes(range(32))
    a = make_ticket(key.publication, T0, client_private=cpriv)
    b = make_ticket(key.publication, T0 + 3600, client_private=cpriv)
    assert ver.verify(a.encoded, "192.0.2.1", T0 + 3600).ok and ver.verify(b.encoded, "192.0.2.1", T0 + 3600).ok
    # a replay set entry expires after two hours (the ticket itself is by then out of its window)
    assert ver.verify(a.encoded, "192.0.2.1", T0 + 3 * 3600).reason == "ticket"


def test_wrong_key_id_wrong_key_malformed_oversized():
    key, ver = _fresh()
    other = TicketKey.generate()
    assert ver.verify(make_ticket(other.publication, T0).encoded, "192.0.2.1", T0).reason == "key-id"
    # right key id, wrong server key
    forged = TicketPublication(other.publication.public_key, key.key_id)
    assert ver.verify(make_ticket(forged, T0).encoded, "192.0.2.1", T0).reason == "ticket"
    good = make_ticket(key.publication, T0)
    p = bytearray(good.payload)
    p[0] = 2
    assert ver.verify(b64url_encode(bytes(p)), "192.0.2.1", T0).reason == "version"
    p = bytearray(good.payload)
    p[80] ^= 1
    assert ver.verify(b64url_encode(bytes(p)), "192.0.2.1", T0).reason == "ticket"
    for bad in ("", "!!!!", good.encoded + "=", good.encoded[:-1] + "*", good.encoded[:50]):
        # a ticket of the longest padding plus one character is refused for its size first
        expected = "oversized" if len(bad) > MAX_ENCODED else "malformed"
        assert ver.verify(bad, "192.0.2.1", T0).reason == expected, bad
    assert ver.verify(b64url_encode(good.payload[:105 + 23]), "192.0.2.1", T0).reason == "padding"
    assert ver.verify(b64url_encode(good.payload[:105] + bytes(64)), "192.0.2.1", T0).reason == "ok"
    assert ver.verify("A" * (MAX_ENCODED + 1), "192.0.2.1", T0).reason == "oversized"
    assert ver.verify(b64url_encode(good.payload[:105] + bytes(65)), "192.0.2.1", T0).reason in ("oversized", "padding")
    # low-order client point: X25519 gives all zeros, refused
    lo = bytes([1]) + bytes(32) + key.key_id + bytes(32) + bytes(32) + bytes(30)
    assert ver.verify(b64url_encode(lo), "192.0.2.1", T0).reason == "ticket"
    with pytest.raises(MalformedError):
        b64url_decode("A")


def test_publication_and_carriers():
    key = TicketKey.generate(CarrierPolicy((("cookie", 0.5), ("query", 0.3), ("body", 0.2)), 30, 40), "__Host-shop")
    text = key.publication.to_text()
    assert text.startswith("BN-Ticket: v1; carriers=cookie:0.5,query:0.3,body:0.2; len=30..40; kid=")
    pub = TicketPublication.from_text(text)
    assert pub == key.publication
    for bad in ("BN-Ticket: v2; x=1", "nope", text.replace("len=30..40", "len=10..40"),
                text.replace("kid=", "kid=zz"), text + "; kid=00"):
        with pytest.raises((MalformedError, InvalidArgumentError)):
            TicketPublication.from_text(bad)
    pol = key.publication.policy
    assert [choose_carrier(pol, u) for u in (0.0, 0.49, 0.5, 0.79, 0.8, 0.999999)] == \
        ["cookie", "cookie", "query", "query", "body", "body"]
    assert pol.restricted(("cookie", "query")).weights == (("cookie", 0.5), ("query", 0.3))
    # padding lengths stay within the policy; carriers follow the weights roughly
    # (a seeded source of randomness: the weights are checked, not the luck of one run)
    import random
    rng = random.Random(20261202)
    counts = {"cookie": 0, "query": 0, "body": 0}
    for _ in range(400):
        t = make_ticket(pub, T0, randbytes=rng.randbytes)
        assert 105 + 30 <= len(t.payload) <= 105 + 40
        counts[t.carrier] += 1
    assert counts["cookie"] > counts["query"] > counts["body"] > 0
    with pytest.raises(InvalidArgumentError):
        CarrierPolicy((("smoke", 1.0),))
    assert FIELD == "bn1"


def test_token_bucket_per_prefix():
    key = TicketKey.generate()
    ver = TicketVerifier(key, rate=1.0, burst=5)
    t = make_ticket(key.publication, T0)
    # five attempts from 10.1.2.0/24 pass the bucket (and fail as replays after the first)
    reasons = [ver.verify(t.encoded, f"10.1.2.{i}", T0).reason for i in range(8)]
    assert reasons[0] == "ok" and reasons[1:5] == ["replay"] * 4 and reasons[5:] == ["rate"] * 3
    # another /24 is unaffected; the bucket refills at `rate`
    assert ver.verify(make_ticket(key.publication, T0).encoded, "10.1.3.1", T0).ok
    assert ver.verify(make_ticket(key.publication, T0).encoded, "10.1.2.200", T0 + 1.0).ok
    # IPv6: one /56 shares a bucket, the next /56 does not; v4-mapped counts as IPv4
    ver6 = TicketVerifier(key, rate=1.0, burst=2)
    for i in range(2):
        ver6.verify("x", f"2001:db8:0:ff{i:02x}::1", T0)
    assert ver6.verify("x", "2001:db8:0:ffaa::1", T0).reason == "rate"
    assert ver6.verify("x", "2001:db8:0:100::1", T0).reason == "malformed"
    assert TicketVerifier.prefix("::ffff:10.1.2.3") == TicketVerifier.prefix("10.1.2.99")


def test_key_file_and_cli(tmp_path):
    import os
    import subprocess
    import sys
    path = tmp_path / "ticket.key"
    out = subprocess.run([sys.executable, "-m", "betanet", "tls", "ticket-key", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert os.stat(path).st_mode & 0o777 == 0o600 and path.stat().st_size == 40
    pub = TicketPublication.from_text(out.stdout)
    key = TicketKey.load(path)
    assert key.publication == pub
    again = subprocess.run([sys.executable, "-m", "betanet", "tls", "ticket-pub", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert again.stdout == out.stdout
    before = path.read_bytes()
    refused = subprocess.run([sys.executable, "-m", "betanet", "tls", "ticket-key", str(path)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and path.read_bytes() == before
    (tmp_path / "short").write_bytes(b"x")
    with pytest.raises(MalformedError):
        TicketKey.load(tmp_path / "short")
