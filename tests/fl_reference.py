"""A second implementation of the SecAgg PRG and pairwise seed, from docs/fl.md alone.

Built on `cryptography` (OpenSSL's ChaCha20 and X25519) and hashlib's BLAKE2b, so it shares
no code with libbetanet; tests compare the two and the committed vectors.
"""
from __future__ import annotations

import hashlib
import struct

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

PRG_LABEL = b"betanet/secagg/v1/prg"
PAIR_LABEL = b"betanet/secagg/v1/pair"


def derive_key(seed: bytes, purpose: int, round_id: int) -> bytes:
    msg = PRG_LABEL + bytes([purpose]) + struct.pack("<Q", round_id)
    return hashlib.blake2b(msg, digest_size=32, key=seed).digest()


def expand(seed: bytes, purpose: int, round_id: int, n: int, offset: int = 0) -> np.ndarray:
    """Words offset..offset+n-1: ChaCha20 (RFC 8439, zero nonce) keystream as LE uint32."""
    block, skip = divmod(offset, 16)
    # OpenSSL's 16-byte ChaCha20 IV is the 32-bit block counter (LE) then the 96-bit nonce
    iv = struct.pack("<I", block) + bytes(12)
    enc = Cipher(algorithms.ChaCha20(derive_key(seed, purpose, round_id), iv), None).encryptor()
    ks = enc.update(bytes(4 * (skip + n)))
    return np.frombuffer(ks, dtype="<u4")[skip:].astype(np.uint32)


def pair_seed(sk: bytes, peer_pk: bytes) -> bytes:
    priv = X25519PrivateKey.from_private_bytes(sk)
    own = priv.public_key().public_bytes_raw()
    shared = priv.exchange(X25519PublicKey.from_public_bytes(peer_pk))
    lo, hi = sorted([own, peer_pk])
    return hashlib.blake2b(PAIR_LABEL + lo + hi, digest_size=32, key=shared).digest()


def quantize(x: np.ndarray, clip: float, levels: int, seed: bytes, round_id: int,
             offset: int = 0) -> np.ndarray:
    r = expand(seed, 3, round_id, len(x), offset).astype(np.float64)
    y = (np.clip(x.astype(np.float64), -clip, clip) + clip) * (levels / (2.0 * clip))
    f = np.floor(y)
    q = f + (r < (y - f) * 2.0**32)
    return np.minimum(q, levels).astype(np.uint32)
