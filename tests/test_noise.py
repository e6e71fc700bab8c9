"""Noise XK in the core (include/betanet/noise.h): published test vectors, interop with
noiseprotocol in both roles, HTX's wire form, and bad input (clear status, no leak)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from noise.connection import Keypair, NoiseConnection

from betanet._native import htx as nhtx
from betanet._native import noise as n
from betanet.errors import (AuthenticationError, CryptoError, InvalidArgumentError, LimitExceededError,
                            MalformedError, StateError)

pytestmark = pytest.mark.usefixtures("no_leaks")

VECTORS = json.loads((Path(__file__).parent / "vectors" / "noise_xk.json").read_text())["vectors"]
NAME = b"Noise_XK_25519_ChaChaPoly_SHA256"

# X25519 points of small order (and non-canonical encodings of them): libsodium refuses them.
LOW_ORDER = [bytes.fromhex(h) for h in (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
)]


def keypair() -> tuple[bytes, bytes]:
    k = X25519PrivateKey.generate()
    return (k.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def pub(priv: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def transport_nonce(counter: int) -> bytes:
    return bytes(4) + counter.to_bytes(8, "little")


# ---- published vectors ----------------------------------------------------------------------

@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v["source"]["repository"])
def test_published_vectors(vec):
    h = bytes.fromhex
    init = n.Handshake(True, h(vec["init_static"]), h(vec["init_remote_static"]), h(vec["init_prologue"]),
                       ephemeral_private=h(vec["init_ephemeral"]))
    resp = n.Handshake(False, h(vec["resp_static"]), None, h(vec["resp_prologue"]),
                       ephemeral_private=h(vec["resp_ephemeral"]))
    msgs = vec["messages"]
    for i, m in enumerate(msgs[:3]):
        writer, reader = (init, resp) if i % 2 == 0 else (resp, init)
        ct = writer.write_message(h(m["payload"]))
        assert ct.hex() == m["ciphertext"], f"handshake message {i + 1}"
        assert reader.read_message(ct) == h(m["payload"])
    assert init.action == resp.action == n.ACTION_SPLIT
    if "handshake_hash" in vec:
        assert init.handshake_hash.hex() == resp.handshake_hash.hex() == vec["handshake_hash"]
    assert resp.remote_static == pub(h(vec["init_static"]))
    k1, k2, hh = init.split()
    assert resp.split() == (k1, k2, hh)
    # Transport messages alternate from the initiator on; each direction counts its own nonce.
    counters = [0, 0]
    for i, m in enumerate(msgs[3:], start=3):
        d = i % 2                              # 0: initiator sends with k1, 1: responder with k2
        key = ChaCha20Poly1305(k1 if d == 0 else k2)
        assert key.encrypt(transport_nonce(counters[d]), h(m["payload"]), b"").hex() == m["ciphertext"]
        counters[d] += 1
    assert init.action == resp.action == n.ACTION_DONE
    with pytest.raises(StateError):
        init.split()


def test_vectors_cover_three_sources():
    assert {v["source"]["repository"] for v in VECTORS} == {
        "mcginty/snow", "haskell-cryptography/cacophony", "rweather/noise-c"}


# ---- interop with noiseprotocol -------------------------------------------------------------

def noise_peer(initiator: bool, static: bytes, remote: bytes | None, prologue: bytes) -> NoiseConnection:
    nc = NoiseConnection.from_name(NAME)
    nc.set_as_initiator() if initiator else nc.set_as_responder()
    nc.set_keypair_from_private_bytes(Keypair.STATIC, static)
    if remote is not None:
        nc.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote)
    nc.set_prologue(prologue)
    nc.start_handshake()
    return nc


@pytest.mark.parametrize("core_initiates", [True, False])
def test_interop_with_noiseprotocol(core_initiates):
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    payloads = [os.urandom(n_) for n_ in (0, 17, 300)]
    if core_initiates:
        core = n.Handshake(True, ipriv, rpub)
        peer = noise_peer(False, rpriv, None, n.HTX_PROLOGUE)
    else:
        core = n.Handshake(False, rpriv)
        peer = noise_peer(True, ipriv, rpub, n.HTX_PROLOGUE)
    for i, p in enumerate(payloads):
        core_writes = (i % 2 == 0) == core_initiates
        if core_writes:
            assert peer.read_message(core.write_message(p)) == p
        else:
            assert core.read_message(peer.write_message(p)) == p
    assert peer.handshake_finished
    assert core.handshake_hash == peer.get_handshake_hash()
    assert core.remote_static == (rpub if core_initiates else pub(ipriv))
    k1, k2, _ = core.split()
    proto = peer.noise_protocol
    enc, dec = proto.cipher_state_encrypt.k, proto.cipher_state_decrypt.k
    assert (k1, k2) == ((dec, enc) if core_initiates else (enc, dec))
    # And the transport works with the keys: noiseprotocol encrypts, the split key opens.
    msg = peer.encrypt(b"after the handshake")
    mine = k2 if core_initiates else k1
    assert ChaCha20Poly1305(mine).decrypt(transport_nonce(0), msg, b"") == b"after the handshake"


def test_htx_session_from_handshake_talks_to_itself():
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    r.read_message(i.write_message())
    si, sr = i.htx_session(now_ms=5), r.htx_session(now_ms=5)
    frame = si.seal_stream(1, b"hello", True)
    frames, err = sr.receive(frame)
    assert err == 0 and frames[0][0] == nhtx.STREAM and frames[0][3] == b"hello"
    assert i.action == n.ACTION_DONE
    with pytest.raises(StateError):
        i.htx_session()
    si.close(), sr.close()


# ---- HTX wire form ----------------------------------------------------------------------------

def test_wire_form_any_split_and_trailing_bytes():
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
    m1 = i.write_frame()
    assert len(m1) == 50 and m1[:2] == b"\x00\x30"
    for b in m1[:-1]:                               # one byte at a time
        assert r.read_frame(bytes([b])) == (False, 1)
    assert r.pending == 49
    assert r.read_frame(m1[-1:]) == (True, 1) and r.pending == 0
    m2 = r.write_frame()
    assert i.read_frame(m2) == (True, 50)
    m3 = i.write_frame()
    assert len(m3) == 66
    tail = b"frames follow"
    assert r.read_frame(m3 + tail) == (True, 66)      # the rest is left for the HTX session
    assert i.handshake_hash == r.handshake_hash


def test_wire_form_payload_is_authenticated_and_ignored():
    """A peer may put bytes in a payload (room for extensions): read and ignored."""
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    peer = noise_peer(True, ipriv, rpub, n.HTX_PROLOGUE)
    r = n.Handshake(False, rpriv)
    m = peer.write_message(b"extension")
    assert r.read_frame(len(m).to_bytes(2, "big") + m) == (True, len(m) + 2)
    peer.read_message(r.write_frame()[2:])
    m = peer.write_message(b"more")
    assert r.read_frame(len(m).to_bytes(2, "big") + m)[0]
    assert r.remote_static == pub(ipriv)


def test_wire_length_above_1024_refused_before_buffering():
    rpriv, _ = keypair()
    r = n.Handshake(False, rpriv)
    with pytest.raises(LimitExceededError):
        r.read_frame(b"\x04\x01")                      # 1025, nothing more sent
    with pytest.raises(LimitExceededError):            # sticky
        r.read_frame(b"\x00")
    assert r.action == LimitExceededError.code
    r2 = n.Handshake(False, rpriv)
    assert r2.read_frame(b"\x04\x00") == (False, 2)    # 1024 is allowed


# ---- bad input ------------------------------------------------------------------------------

def run_to(i: n.Handshake, r: n.Handshake, upto: int) -> None:
    for step in range(upto):
        if step % 2 == 0:
            r.read_message(i.write_message())
        else:
            i.read_message(r.write_message())


def test_wrong_responder_key():
    ipriv, _ = keypair()
    rpriv, _ = keypair()
    _, other = keypair()
    i, r = n.Handshake(True, ipriv, other), n.Handshake(False, rpriv)
    with pytest.raises(AuthenticationError):
        r.read_message(i.write_message())
    assert r.action == AuthenticationError.code
    for call in (r.write_message, r.write_frame, r.split, lambda: r.read_message(b"x" * 48),
                 lambda: r.handshake_hash):
        with pytest.raises(AuthenticationError):        # sticky: every later call says so
            call()


@pytest.mark.parametrize("step", [0, 1, 2])
def test_truncated_and_corrupted_messages(step):
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    fixed = 64 if step == 2 else 48
    for cut, exc in ((1, AuthenticationError), (20, AuthenticationError), (21, MalformedError),
                     (fixed + 20, MalformedError)):
        i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
        run_to(i, r, step)
        writer, reader = (i, r) if step % 2 == 0 else (r, i)
        msg = writer.write_message(bytes(20))
        with pytest.raises(exc):
            reader.read_message(msg[:-cut])
        assert reader.action == exc.code
    for pos in (0, 31, 32, fixed - 1):
        i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
        run_to(i, r, step)
        writer, reader = (i, r) if step % 2 == 0 else (r, i)
        msg = bytearray(writer.write_message())
        msg[pos] ^= 0x40
        with pytest.raises((AuthenticationError, CryptoError)):
            reader.read_message(msg)


def test_oversized_messages():
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
    with pytest.raises(LimitExceededError):
        i.write_message(bytes(65535 - 47))
    assert i.action == n.ACTION_WRITE                   # nothing changed
    with pytest.raises(LimitExceededError):
        r.read_message(bytes(65536))
    assert r.action == LimitExceededError.code


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda p: p.hex()[:8])
def test_low_order_public_keys(point):
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    # as the responder's static key: the initiator's es fails at message 1
    i = n.Handshake(True, ipriv, point)
    with pytest.raises(CryptoError):
        i.write_message()
    assert i.action == CryptoError.code
    # as the ephemeral in message 1 (the responder's es) and message 2 (the initiator's ee)
    i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
    with pytest.raises(CryptoError):
        r.read_message(point + i.write_message()[32:])
    i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
    run_to(i, r, 1)
    with pytest.raises(CryptoError):
        i.read_message(point + r.write_message()[32:])


@pytest.mark.parametrize("point", LOW_ORDER[:3], ids=lambda p: p.hex()[:8])
def test_low_order_initiator_static_in_message3(point):
    """A message 3 that encrypts a low-order static key correctly: only the responder's se
    DH can refuse it. Written by a minimal XK initiator from the Noise spec."""
    rpriv, rpub = keypair()
    ref = ReferenceInitiator(rpub, n.HTX_PROLOGUE)
    r = n.Handshake(False, rpriv)
    r.read_message(ref.message1())
    ref.read_message2(r.write_message())
    with pytest.raises(CryptoError):
        r.read_message(ref.message3(point))
    assert r.action == CryptoError.code


def test_reference_initiator_agrees_with_core():
    rpriv, rpub = keypair()
    spriv, spub = keypair()
    ref = ReferenceInitiator(rpub, n.HTX_PROLOGUE, spriv)
    r = n.Handshake(False, rpriv)
    r.read_message(ref.message1())
    ref.read_message2(r.write_message())
    r.read_message(ref.message3(spub))
    assert r.handshake_hash == ref.h and r.remote_static == spub


def test_out_of_order_calls():
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    i, r = n.Handshake(True, ipriv, rpub), n.Handshake(False, rpriv)
    for call in (r.write_message, r.write_frame, lambda: i.read_message(bytes(48)),
                 lambda: i.read_frame(b"\x00"), i.split, r.split, lambda: i.handshake_hash,
                 lambda: r.remote_static, i.htx_session):
        with pytest.raises(StateError):
            call()
    assert i.action == n.ACTION_WRITE and r.action == n.ACTION_READ    # nothing changed
    run_to(i, r, 3)
    for call in (i.write_message, lambda: r.read_message(bytes(64))):
        with pytest.raises(StateError):
            call()
    assert i.split() == r.split()


def test_invalid_arguments():
    priv, public = keypair()
    with pytest.raises(InvalidArgumentError):
        n.Handshake(True, priv)                           # initiator without the responder key
    with pytest.raises(InvalidArgumentError):
        n.Handshake(False, priv, public)                  # responder given a remote key
    with pytest.raises(ValueError):
        n.Handshake(True, priv[:31], public)
    with pytest.raises(ValueError):
        n.Handshake(True, priv, public, ephemeral_private=b"short")


def test_closed_handshake_and_random_ephemerals():
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    a, b = n.Handshake(True, ipriv, rpub), n.Handshake(True, ipriv, rpub)
    assert a.write_message()[:32] != b.write_message()[:32]       # fresh e each time
    a.close()
    with pytest.raises(StateError):
        a.write_message()


# ---- a minimal XK initiator from the Noise specification (rev. 34), for crafted messages ----

class ReferenceInitiator:
    def __init__(self, rs: bytes, prologue: bytes, s_priv: bytes | None = None):
        self.rs, self.s_priv = rs, s_priv
        self.h = NAME
        self.ck = self.h
        self.k = None
        self.n = 0
        self.mix_hash(prologue)
        self.mix_hash(rs)
        self.e = X25519PrivateKey.generate()

    def mix_hash(self, data: bytes) -> None:
        d = hashes.Hash(hashes.SHA256())
        d.update(self.h + data)
        self.h = d.finalize()

    @staticmethod
    def _hmac(key: bytes, data: bytes) -> bytes:
        m = hmac.HMAC(key, hashes.SHA256())
        m.update(data)
        return m.finalize()

    def mix_key(self, ikm: bytes) -> None:
        t = self._hmac(self.ck, ikm)
        self.ck = self._hmac(t, b"\x01")
        self.k = self._hmac(t, self.ck + b"\x02")
        self.n = 0

    def enc(self, pt: bytes) -> bytes:
        ct = ChaCha20Poly1305(self.k).encrypt(transport_nonce(self.n), pt, self.h)
        self.n += 1
        self.mix_hash(ct)
        return ct

    def dec(self, ct: bytes) -> bytes:
        pt = ChaCha20Poly1305(self.k).decrypt(transport_nonce(self.n), ct, self.h)
        self.n += 1
        self.mix_hash(ct)
        return pt

    def message1(self) -> bytes:
        e = self.e.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.mix_hash(e)
        self.mix_key(self.e.exchange(X25519PublicKey.from_public_bytes(self.rs)))
        return e + self.enc(b"")

    def read_message2(self, msg: bytes) -> None:
        self.re = msg[:32]
        self.mix_hash(self.re)
        self.mix_key(self.e.exchange(X25519PublicKey.from_public_bytes(self.re)))
        self.dec(msg[32:])

    def message3(self, s_pub: bytes) -> bytes:
        out = self.enc(s_pub)
        if self.s_priv is not None:
            dh = X25519PrivateKey.from_private_bytes(self.s_priv).exchange(X25519PublicKey.from_public_bytes(self.re))
        else:
            dh = bytes(32)        # no private key behind a low-order point; the responder stops first
        self.mix_key(dh)
        return out + self.enc(b"")


def test_fixed_base_public_keys_match_x25519():
    """The core derives public keys by the Edwards fixed-base route: same bytes as X25519."""
    _, rpub = keypair()
    for _ in range(64):
        e, s = os.urandom(32), os.urandom(32)
        i = n.Handshake(True, s, rpub, ephemeral_private=e)
        assert i.write_message()[:32] == pub(e)
        r = n.Handshake(False, s)
        ref = ReferenceInitiator(pub(s), b"")
        r2 = n.Handshake(False, s, None, b"")
        r2.read_message(ref.message1())          # only works if the responder's s_pub is right
        del r, r2, i


# ---- the C contract, through cffi (what a C host sees) -------------------------------------

def test_c_api_buffers_and_null_arguments():
    cffi = pytest.importorskip("cffi")
    import betanet
    ffi = cffi.FFI()
    ffi.cdef("""
    typedef struct betanet_noise_xk betanet_noise_xk_t;
    int betanet_noise_xk_new(int, const uint8_t *, const uint8_t *, const uint8_t *, size_t,
                             betanet_noise_xk_t **);
    void betanet_noise_xk_free(betanet_noise_xk_t *);
    int betanet_noise_xk_action(const betanet_noise_xk_t *);
    int betanet_noise_xk_write_message(betanet_noise_xk_t *, const uint8_t *, size_t, uint8_t *,
                                       size_t, size_t *);
    int betanet_noise_xk_read_message(betanet_noise_xk_t *, const uint8_t *, size_t, uint8_t *,
                                      size_t, size_t *);
    int betanet_noise_xk_write_frame(betanet_noise_xk_t *, uint8_t *, size_t, size_t *);
    int betanet_noise_xk_read_frame(betanet_noise_xk_t *, const uint8_t *, size_t, size_t *);
    int betanet_noise_xk_split(betanet_noise_xk_t *, uint8_t *, uint8_t *, uint8_t *);
    """)
    lib = ffi.dlopen(betanet.get_library())
    E_INVALID, E_BUFFER, E_STATE = -1, -2, -10
    ipriv, _ = keypair()
    rpriv, rpub = keypair()
    out = ffi.new("betanet_noise_xk_t **")
    i_p, r_p = ffi.new("betanet_noise_xk_t **"), ffi.new("betanet_noise_xk_t **")
    ln = ffi.new("size_t *")
    buf, pay = ffi.new("uint8_t[200]"), ffi.new("uint8_t[64]")
    # constructor arguments
    assert lib.betanet_noise_xk_new(0, ipriv, rpub, ffi.NULL, 0, ffi.NULL) == E_INVALID
    assert lib.betanet_noise_xk_new(0, ffi.NULL, rpub, ffi.NULL, 0, out) == E_INVALID and out[0] == ffi.NULL
    assert lib.betanet_noise_xk_new(2, ipriv, rpub, ffi.NULL, 0, out) == E_INVALID
    assert lib.betanet_noise_xk_new(0, ipriv, rpub, ffi.NULL, 5, out) == E_INVALID
    assert lib.betanet_noise_xk_action(ffi.NULL) == E_INVALID
    lib.betanet_noise_xk_free(ffi.NULL)
    assert lib.betanet_noise_xk_new(0, ipriv, rpub, ffi.NULL, 0, i_p) == 0
    assert lib.betanet_noise_xk_new(1, rpriv, ffi.NULL, ffi.NULL, 0, r_p) == 0
    hi, hr = i_p[0], r_p[0]
    try:
        # small buffers change nothing: the same call then succeeds
        assert lib.betanet_noise_xk_write_message(hi, b"abcdef", 6, buf, 53, ln) == E_BUFFER
        assert lib.betanet_noise_xk_write_frame(hi, buf, 1, ln) == E_BUFFER
        assert lib.betanet_noise_xk_write_message(hi, ffi.NULL, 6, buf, 200, ln) == E_INVALID
        assert lib.betanet_noise_xk_write_message(hi, b"abcdef", 6, buf, 54, ln) == 0 and ln[0] == 54
        msg = bytes(ffi.buffer(buf, 54))
        assert lib.betanet_noise_xk_read_message(hr, msg, 54, pay, 5, ln) == E_BUFFER
        assert lib.betanet_noise_xk_read_message(hr, msg, 54, ffi.NULL, 0, ln) == E_BUFFER
        assert lib.betanet_noise_xk_read_message(hr, msg, 54, ffi.NULL, 6, ln) == E_INVALID
        assert lib.betanet_noise_xk_action(hr) == n.ACTION_READ
        assert lib.betanet_noise_xk_read_message(hr, msg, 54, pay, 6, ln) == 0
        assert bytes(ffi.buffer(pay, ln[0])) == b"abcdef"
        # a frame read with no bytes needs more; out-of-turn reads are refused
        assert lib.betanet_noise_xk_read_frame(hi, ffi.NULL, 0, ln) == 0 and ln[0] == 0
        assert lib.betanet_noise_xk_read_frame(hr, b"\x00", 1, ln) == E_STATE
        k = ffi.new("uint8_t[32]")
        assert lib.betanet_noise_xk_split(hi, k, ffi.NULL, k) == E_INVALID
        assert lib.betanet_noise_xk_split(hi, k, k, k) == E_STATE
    finally:
        lib.betanet_noise_xk_free(hi)
        lib.betanet_noise_xk_free(hr)
