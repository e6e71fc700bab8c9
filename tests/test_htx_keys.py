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
