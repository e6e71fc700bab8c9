"""An independent Python model of docs/sphinx.md (pyca/cryptography + hashlib + hmac).

It shares no code with libbetanet: if the C core and this model agree byte for byte on the
test vectors, the document describes what the library does.
"""
from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

E = 53
SALT = b"betanet/sphinx/v1"
INFO = {k: f"betanet/sphinx/v1 {v}".encode() for k, v in
        (("rho", "header-stream"), ("mu", "header-mac"), ("pi", "payload"), ("b", "blinding"))}


def chacha20(key: bytes, nonce8: bytes, n: int) -> bytes:
    """Original ChaCha20 (64-bit nonce, 64-bit counter from 0), as crypto_stream_chacha20."""
    enc = Cipher(algorithms.ChaCha20(key, b"\0" * 8 + nonce8), mode=None).encryptor()
    return enc.update(b"\0" * n)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def clamp(k: bytes) -> bytes:
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def x25519(k: bytes, u: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(u))


def hop_keys(s: bytes, alpha: bytes) -> dict[str, bytes]:
    prk = hmac.new(SALT, s + alpha, hashlib.sha256).digest()
    keys = {name: hmac.new(prk, info + b"\x01", hashlib.sha256).digest() for name, info in INFO.items()}
    keys["b"] = clamp(keys["b"])
    return keys


def lioness(key: bytes, data: bytes, encrypt: bool) -> bytes:
    ks = chacha20(key, b"lioness\0", 128)
    k1, k2, k3, k4 = ks[:32], ks[32:64], ks[64:96], ks[96:]
    left, right = data[:32], data[32:]

    def s_round(left, right, k):
        return xor(right, chacha20(xor(left, k), b"\0" * 8, len(right)))

    def h_round(left, right, k):
        return xor(left, hashlib.blake2b(right, digest_size=32, key=k).digest())

    if encrypt:
        right = s_round(left, right, k1)
        left = h_round(left, right, k2)
        right = s_round(left, right, k3)
        left = h_round(left, right, k4)
    else:
        left = h_round(left, right, k4)
        right = s_round(left, right, k3)
        left = h_round(left, right, k2)
        right = s_round(left, right, k1)
    return left + right


def public_key(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def keypair_from_seed(seed: bytes) -> tuple[bytes, bytes]:
    sk = clamp(hashlib.blake2b(seed, digest_size=32, key=b"betanet/sphx/key").digest())
    return public_key(sk), sk


def process(packet: bytes, secret: bytes, max_hops: int, payload_bytes: int) -> dict:
    """One hop, as docs/sphinx.md says. Returns the hop's keys and what it outputs."""
    beta_len = max_hops * E
    epoch, alpha = packet[:4], packet[4:36]
    beta, gamma = packet[36:36 + beta_len], packet[36 + beta_len:52 + beta_len]
    payload = packet[52 + beta_len:]
    assert len(payload) == payload_bytes
    s = x25519(secret, alpha)
    k = hop_keys(s, alpha)
    mac = hashlib.blake2b(beta, digest_size=16, key=k["mu"]).digest()
    out = {"shared_secret": s, "keys": k, "mac_ok": hmac.compare_digest(mac, gamma)}
    plain = xor(beta + b"\0" * E, chacha20(k["rho"], b"\0" * 8, beta_len + E))
    flags, delay, node_id, tail = plain[0], int.from_bytes(plain[1:5], "big"), plain[5:37], plain[37:53]
    out.update(flags=flags, delay_ms=delay, node_id=node_id)
    p = lioness(k["pi"], payload, encrypt=False)
    if flags == 1:
        out["output"] = epoch + x25519(k["b"], alpha) + plain[E:] + tail + p
    elif flags == 2:
        out["zero_ok"] = p[:16] == b"\0" * 16
        out["output"] = p[16:]
    else:
        out["surb_id"] = tail
        out["output"] = p
    return out


ELL = 2**252 + 27742317777372353535851937790883648493


def lift(r: int) -> bytes:
    """A clamp-invariant scalar k ≡ ±r (mod ℓ) (docs: "The group math")."""
    inv8 = pow(8, -1, ELL)
    for v in (r, -r):
        t = (v - 2**254) * inv8 % ELL
        if t < 2**251:
            return (2**254 + 8 * t).to_bytes(32, "little")
    raise ValueError("no lift (probability ~2^-125)")


def create(max_hops: int, payload_bytes: int, epoch: int, route: list[tuple[bytes, bytes, int]],
           dest: bytes, body: bytes, seed: bytes, final_flags: int = 2) -> tuple[bytes, list[bytes], bytes]:
    """docs "Creating a packet", step by step: (packet, payload keys, rng)."""
    r_, n = max_hops, len(route)
    rng = chacha20(seed, b"sphx-rng", 80 + E * r_)
    x = clamp(rng[:32])
    r = int.from_bytes(x, "little") % ELL
    keys = []
    for i, (_, pk, _) in enumerate(route):
        k = x if i == 0 else lift(r)
        alpha = x25519(k, (9).to_bytes(32, "little"))
        if i == 0:
            alpha0 = alpha
        keys.append(hop_keys(x25519(k, pk), alpha))
        r = r * int.from_bytes(keys[-1]["b"], "little") % ELL
    total = (r_ + 1) * E
    phi = b""
    for i in range(1, n):
        phi = xor(phi + bytes(E), chacha20(keys[i - 1]["rho"], bytes(8), total)[total - i * E:])
    surb_id = rng[64:80] if final_flags == 3 else bytes(16)
    final = bytes([final_flags]) + route[-1][2].to_bytes(4, "big") + dest + surb_id
    pad = (r_ - n + 1) * E
    q = final + rng[80 + E:80 + pad]
    beta = xor(q, chacha20(keys[-1]["rho"], bytes(8), pad)) + phi
    gamma = hashlib.blake2b(beta, digest_size=16, key=keys[-1]["mu"]).digest()
    for i in range(n - 1, 0, -1):
        entry = b"\x01" + route[i - 1][2].to_bytes(4, "big") + route[i][0] + gamma
        beta = xor(entry + beta[:(r_ - 1) * E], chacha20(keys[i - 1]["rho"], bytes(8), r_ * E))
        gamma = hashlib.blake2b(beta, digest_size=16, key=keys[i - 1]["mu"]).digest()
    p = bytes(16) + body + bytes(payload_bytes - 16 - len(body))
    for i in range(n - 1, -1, -1):
        p = lioness(keys[i]["pi"], p, encrypt=True)
    header = epoch.to_bytes(4, "big") + alpha0 + beta + gamma
    return header + p, [k["pi"] for k in keys], rng
