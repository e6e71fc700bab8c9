"""X25519 static keys for HTX: generate, save and load (raw 32-byte files, mode 0600, or hex)."""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, PrivateFormat, NoEncryption

from betanet.errors import InvalidArgumentError

__all__ = ["generate_private_key", "public_key", "save_private_key", "load_private_key",
           "save_public_key", "load_public_key", "key_from", "write_new_file"]

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


def write_new_file(path: str | os.PathLike, data: bytes, mode: int = 0o600, *,
                   overwrite: bool = False) -> None:
    """Write ``data`` to a file created with ``mode`` from the start (never a moment
    world-readable). The file is created with ``O_CREAT|O_EXCL|O_NOFOLLOW``: an existing file
    or symlink at ``path`` raises FileExistsError. With ``overwrite=True`` the data goes to a
    new file beside it that then replaces ``path`` by rename, so a symlink at ``path`` is
    replaced itself, its target never written or chmod-ed."""
    path = os.fspath(path)
    target = path
    if overwrite:
        d, base = os.path.split(path)
        target = os.path.join(d, f".{base}.{secrets.token_hex(6)}.tmp")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                 mode)
    try:
        try:
            os.fchmod(fd, mode)          # the umask may have narrowed the mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if overwrite:
            os.replace(target, path)
    except BaseException:
        if overwrite:
            with contextlib.suppress(OSError):
                os.unlink(target)
        raise


def _write(path: str | os.PathLike, data: bytes, mode: int, overwrite: bool) -> None:
    try:
        write_new_file(path, data, mode, overwrite=overwrite)
    except FileExistsError:
        raise InvalidArgumentError(f"{os.fspath(path)} exists (pass overwrite=True to replace it)") from None


def save_private_key(path: str | os.PathLike, private_key: bytes, *, hex: bool = False,
                     overwrite: bool = False) -> None:
    """Write a private key (raw 32 bytes, or hex text with ``hex=True``) into a new file of
    mode 0600. An existing file (or symlink) is an InvalidArgumentError unless ``overwrite``,
    which replaces it (a symlink itself, not its target)."""
    key = key_from(private_key)
    _write(path, (key.hex() + "\n").encode() if hex else key, 0o600, overwrite)


def save_public_key(path: str | os.PathLike, public: bytes, *, hex: bool = False,
                    overwrite: bool = False) -> None:
    """Write a public key (raw or hex) into a new file of mode 0644 (``overwrite`` as for
    ``save_private_key``)."""
    key = key_from(public)
    _write(path, (key.hex() + "\n").encode() if hex else key, 0o644, overwrite)


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
