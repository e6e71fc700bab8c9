"""HTX static keys: generate, save (0600), load raw or hex; the `betanet htx` command."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import betanet.htx as htx
from betanet.errors import InvalidArgumentError


def test_save_and_load_raw_and_hex(tmp_path):
    priv = htx.generate_private_key()
    assert len(priv) == 32 and len(htx.public_key(priv)) == 32
    for as_hex in (False, True):
        p = tmp_path / f"k{as_hex}"
        htx.save_private_key(p, priv, hex=as_hex)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        assert htx.load_private_key(p) == priv
        assert (len(p.read_bytes()) == 32) != as_hex
    htx.save_public_key(tmp_path / "pub", htx.public_key(priv), hex=True)
    assert htx.load_public_key(tmp_path / "pub") == htx.public_key(priv)
    assert htx.public_key(priv.hex()) == htx.public_key(priv)


def test_refuses_loose_permissions_and_bad_keys(tmp_path):
    p = tmp_path / "k"
    htx.save_private_key(p, htx.generate_private_key())
    os.chmod(p, 0o644)
    with pytest.raises(InvalidArgumentError):
        htx.load_private_key(p)
    assert len(htx.load_private_key(p, check_mode=False)) == 32
    with pytest.raises(InvalidArgumentError):
        htx.public_key(b"short")
    with pytest.raises(InvalidArgumentError):
        htx.public_key("zz" * 32)


def test_cli_keygen_and_pubkey(tmp_path):
    path = str(tmp_path / "node.key")
    out = subprocess.run([sys.executable, "-m", "betanet", "htx", "keygen", path], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = subprocess.run([sys.executable, "-m", "betanet", "htx", "pubkey", path], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert out == again == htx.load_public_key(path + ".pub").hex()
    refused = subprocess.run([sys.executable, "-m", "betanet", "htx", "keygen", path], capture_output=True, text=True)
    assert refused.returncode == 2 and "exists" in refused.stderr


def betanet_cli(*args):
    return subprocess.run([sys.executable, "-m", "betanet", *map(str, args)], capture_output=True, text=True)


def test_keygen_force_replaces_a_symlink_not_its_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.chmod(victim, 0o644)
    link = tmp_path / "node.key"
    link.symlink_to(victim)
    proc = betanet_cli("htx", "keygen", link, "--force")
    assert proc.returncode == 0, proc.stderr
    assert victim.read_bytes() == b"precious" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not link.is_symlink() and stat.S_IMODE(os.lstat(link).st_mode) == 0o600
    assert htx.public_key(htx.load_private_key(link)).hex() == proc.stdout.strip()


def test_keygen_without_force_keeps_an_existing_pub(tmp_path):
    path = tmp_path / "node.key"
    (tmp_path / "node.key.pub").write_bytes(b"someone else's key")
    proc = betanet_cli("htx", "keygen", path)
    assert proc.returncode == 2 and "node.key.pub exists" in proc.stderr
    assert (tmp_path / "node.key.pub").read_bytes() == b"someone else's key"
    assert not path.exists()                          # no private key without its .pub


def test_save_refuses_existing_and_symlinks_without_overwrite(tmp_path):
    priv = htx.generate_private_key()
    target = tmp_path / "t"
    (tmp_path / "link").symlink_to(target)             # dangling: O_CREAT would create t
    with pytest.raises(InvalidArgumentError):
        htx.save_private_key(tmp_path / "link", priv)
    assert not target.exists()
    htx.save_private_key(tmp_path / "k", priv)
    with pytest.raises(InvalidArgumentError, match="exists"):
        htx.save_private_key(tmp_path / "k", htx.generate_private_key())
    assert htx.load_private_key(tmp_path / "k") == priv
    os.chmod(tmp_path / "k", 0o644)
    htx.save_private_key(tmp_path / "k", priv, overwrite=True)       # a new file, a new mode
    assert stat.S_IMODE(os.stat(tmp_path / "k").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "link"]   # no temp file left


def test_write_self_signed_resets_an_existing_loose_key(tmp_path):
    from betanet.htx import tls
    (tmp_path / "key.pem").write_bytes(b"old")
    os.chmod(tmp_path / "key.pem", 0o644)
    cert, key = tls.write_self_signed(tmp_path)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert stat.S_IMODE(os.stat(cert).st_mode) == 0o644


def test_cli_pubkey_errors_are_messages_not_tracebacks(tmp_path):
    p = tmp_path / "k"
    htx.save_private_key(p, htx.generate_private_key())
    os.chmod(p, 0o644)
    for path in (p, tmp_path / "missing"):
        proc = betanet_cli("htx", "pubkey", path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("betanet htx pubkey: ")
