"""A node's identity: an Ed25519 signing key and an X25519 static key, and its PeerID.

PeerID (Betanet 1.1 §6.1): the multihash ``0x12 0x20 || SHA-256(pubkey)`` of the node's
Ed25519 public key: 34 bytes; its text form is base58btc of those bytes (as libp2p writes
multihashes, so it starts with ``Qm``). The X25519 key is the node's HTX static key and
the key messages are sealed to (docs/node.md "Identity").

The key file holds ``ed25519 seed (32) || x25519 private (32)`` as 128 hex characters and
a newline, created with mode 0600 (``O_EXCL|O_NOFOLLOW``); loading refuses a file that
group or others can read.
"""
from __future__ import annotations

import functools
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from betanet.errors import AuthenticationError, InvalidArgumentError, MalformedError
from betanet.htx.keys import write_new_file

__all__ = ["Identity", "peer_id_of", "peer_id_text", "parse_peer_id", "verify", "PEER_ID_BYTES"]

MULTIHASH_SHA2_256 = b"\x12\x20"
PEER_ID_BYTES = 34
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _raw(key) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def peer_id_of(signing_public: bytes) -> bytes:
    """The 34-byte PeerID of an Ed25519 public key."""
    if len(signing_public) != 32:
        raise InvalidArgumentError(f"an Ed25519 public key is 32 bytes, got {len(signing_public)}")
    return MULTIHASH_SHA2_256 + hashlib.sha256(signing_public).digest()


@functools.lru_cache(maxsize=4096)
def peer_id_text(peer_id: bytes) -> str:
    """base58btc text of a PeerID (leading zero bytes become '1')."""
    n = int.from_bytes(peer_id, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(peer_id) - len(peer_id.lstrip(b"\0"))) + out


def parse_peer_id(text: str) -> bytes:
    """The PeerID bytes of its text form; anything else is a MalformedError."""
    if not isinstance(text, str) or not text or len(text) > 64:
        raise MalformedError(f"not a PeerID: {text!r:.80}")
    n = 0
    for ch in text:
        i = _B58.find(ch)
        if i < 0:
            raise MalformedError(f"not a PeerID (character {ch!r} is not base58): {text!r:.80}")
        n = n * 58 + i
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    raw = b"\0" * zeros + body
    if len(raw) != PEER_ID_BYTES or raw[:2] != MULTIHASH_SHA2_256:
        raise MalformedError(f"not a PeerID (want a 34-byte sha2-256 multihash): {text!r:.80}")
    return raw


def verify(signing_public: bytes, signature: bytes, message: bytes, what: str) -> None:
    """Raise AuthenticationError unless ``signature`` is ``signing_public``'s over ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(signing_public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise AuthenticationError(f"{what}: bad signature") from None


@dataclass(frozen=True, repr=False)
class Identity:
    signing_seed: bytes
    exchange_private: bytes

    def __repr__(self) -> str:          # never print secrets
        return f"Identity({self.peer_id_text})"

    def __reduce__(self):               # copies and pickles carry the two secrets, not key objects
        return (type(self), (self.signing_seed, self.exchange_private))

    @classmethod
    def generate(cls) -> "Identity":
        return cls(secrets.token_bytes(32), secrets.token_bytes(32))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Identity":
        if len(raw) != 64:
            raise MalformedError(f"an identity is 64 bytes, got {len(raw)}")
        return cls(bytes(raw[:32]), bytes(raw[32:]))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        try:
            write_new_file(path, ((self.signing_seed + self.exchange_private).hex() + "\n").encode(),
                           0o600, overwrite=overwrite)
        except FileExistsError:
            raise InvalidArgumentError(f"{os.fspath(path)} exists (refusing to replace an identity)") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Identity":
        p = Path(path)
        if p.stat().st_mode & 0o077:
            raise InvalidArgumentError(f"{p}: identity file must not be accessible by group/others (chmod 600)")
        text = p.read_bytes().strip()
        try:
            raw = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise MalformedError(f"{p}: not an identity file (want 128 hex characters)") from None
        return cls.from_bytes(raw)

    # The key objects are built once, on first use: building one derives the public key, as
    # much work as a signature or an X25519. They hold the secrets exactly as long as this
    # Identity holds them (as ``signing_seed`` / ``exchange_private``), and OpenSSL clears
    # the copies when they are freed with it; nothing outlives the Identity.
    @functools.cached_property
    def _signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed)

    @functools.cached_property
    def _exchange_key(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self.exchange_private)

    @functools.cached_property
    def signing_public(self) -> bytes:
        return _raw(self._signing_key.public_key())

    @functools.cached_property
    def exchange_public(self) -> bytes:
        return _raw(self._exchange_key.public_key())

    @functools.cached_property
    def peer_id(self) -> bytes:
        return peer_id_of(self.signing_public)

    @functools.cached_property
    def peer_id_text(self) -> str:
        return peer_id_text(self.peer_id)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message)

    def exchange(self, public: bytes) -> bytes:
        """X25519 with our static key (raises CryptoError-free InvalidArgumentError on a
        low-order point, whose shared secret is all zeros)."""
        try:
            shared = self._exchange_key.exchange(X25519PublicKey.from_public_bytes(public))
        except ValueError:
            raise AuthenticationError("X25519 with a low-order public key") from None
        return shared
