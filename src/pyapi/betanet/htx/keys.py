"""X25519 static keys for HTX: generate, save and load (raw 32-byte files, mode 0600, or hex)."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, PrivateFormat, NoEncryption

from betanet.errors import InvalidArgumentError

__all__ = ["generate_private_key", "public_key", "save_private_key", "load_private_key",
           "save_public_key", "load_public_key", "key_from"]

KEY_BYTES = 32


def generate_private_key() -> bytes:
    """A fresh X25519 private key (32 raw bytes, from the OS CSPRNG)."""
    return X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_key(private_key: bytes) -> bytes:
    """The 32-byte X25519 public key of a private key."""
    priv = X25519PrivateKey.from_private_bytes(key_from(private_key))
    return priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_from(value: bytes | bytearray | memoryview | str) -> bytes:
    """Accept a key as 32 raw bytes or 64 hex characters (str or bytes)."""
    if isinstance(value, str):
        value = value.strip().encode()
    raw = bytes(value)
    if len(raw) == KEY_BYTES:
        return raw
    if len(raw.strip()) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(raw.strip().decode("ascii"))
        except ValueError:
            pass
    raise InvalidArgumentError(f"an X25519 key is 32 raw bytes or 64 hex characters, got {len(raw)} bytes")


def _write(path: str | os.PathLike, data: bytes, mode: int) -> None:
    # Create with the final mode from the start so a secret never sits world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


def save_private_key(path: str | os.PathLike, private_key: bytes, *, hex: bool = False) -> None:
    """Write a private key (raw 32 bytes, or hex text with ``hex=True``) with mode 0600."""
    key = key_from(private_key)
    _write(path, (key.hex() + "\n").encode() if hex else key, 0o600)


def save_public_key(path: str | os.PathLike, public: bytes, *, hex: bool = False) -> None:
    """Write a public key (raw or hex) with mode 0644."""
    key = key_from(public)
    _write(path, (key.hex() + "\n").encode() if hex else key, 0o644)


def load_private_key(path: str | os.PathLike, *, check_mode: bool = True) -> bytes:
    """Read a private key file (raw or hex). Refuses files readable by group or others
    unless ``check_mode=False``."""
    p = Path(path)
    if check_mode and p.stat().st_mode & 0o077:
        raise InvalidArgumentError(f"{p}: private key file must not be accessible by group/others (chmod 600)")
    return key_from(p.read_bytes())


def load_public_key(path: str | os.PathLike) -> bytes:
    """Read a public key file (raw or hex)."""
    return key_from(Path(path).read_bytes())
