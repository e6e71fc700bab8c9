"""BPSec (RFC 9172) with the default security contexts of RFC 9173 and an Ed25519 context.

- BIB-HMAC-SHA2 (context 1): :func:`sign_hmac` / :func:`verify_hmac`, HMAC-SHA-256/384/512.
- BCB-AES-GCM (context 2): :func:`encrypt_aes_gcm` / :func:`decrypt_aes_gcm`, AES-128/256-GCM,
  optionally with the content key wrapped (AES key wrap, RFC 3394) under a key-encryption key.
- BIB-Ed25519 (context -8, ours): :func:`sign_ed25519` / :func:`verify_ed25519`, end-to-end
  source authentication that survives store-and-forward (docs/dtn.md pins the layout).

Every function takes and returns :class:`~betanet.dtn.bundle.Bundle` objects and never changes
its input. Crypto comes from ``cryptography``; MACs are compared in constant time. Abstract
security blocks (ASB, RFC 9172 §3.6) are decoded with hard bounds: malformed input raises
MalformedError, a failed check AuthenticationError, an unknown context UnsupportedError.
"""
from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, Union

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from betanet.dtn.bundle import BlockFlags, BlockType, Bundle, CanonicalBlock
from betanet.dtn.eid import EID, SCHEME_DTN, SCHEME_IPN
from betanet.errors import (AuthenticationError, InvalidArgumentError, MalformedError,
                            UnsupportedError)

__all__ = [
    "BIB_HMAC_SHA2", "BCB_AES_GCM", "BIB_ED25519", "ShaVariant", "AesVariant", "Scope",
    "SecurityBlock", "ippt", "aad", "sign_hmac", "verify_hmac", "encrypt_aes_gcm",
    "decrypt_aes_gcm", "sign_ed25519", "verify_ed25519", "security_blocks",
]

BIB_HMAC_SHA2 = 1          # RFC 9173 §3
BCB_AES_GCM = 2            # RFC 9173 §4
BIB_ED25519 = -8           # ours: negative ids are local (RFC 9172, docs/dtn.md "Numbers"); -8 as COSE EdDSA

# parameter / result ids
_P_SHA, _P_WRAPPED, _P_SCOPE = 1, 2, 3                   # BIB-HMAC-SHA2
_P_IV, _P_AES, _P_KEY, _P_AAD_SCOPE = 1, 2, 3, 4         # BCB-AES-GCM
_P_ED_PUBKEY, _P_ED_SCOPE = 1, 3                         # BIB-Ed25519
_R_RESULT = 1

MAX_ASB_ITEMS = 1024       # targets, parameters or results in one block
MAX_DEPTH = 8


class ShaVariant(IntEnum):
    HMAC256 = 5
    HMAC384 = 6            # the default
    HMAC512 = 7


class AesVariant(IntEnum):
    A128GCM = 1
    A256GCM = 3            # the default


class Scope(IntFlag):
    """Integrity scope / AAD scope flags (RFC 9173 §3.3.3, §4.3.4)."""
    NONE = 0
    PRIMARY = 1
    TARGET_HEADER = 2
    SECURITY_HEADER = 4
    ALL = 7                # the default


_HASH = {ShaVariant.HMAC256: hashes.SHA256, ShaVariant.HMAC384: hashes.SHA384,
         ShaVariant.HMAC512: hashes.SHA512}
_KEY_LEN = {AesVariant.A128GCM: 16, AesVariant.A256GCM: 32}

# ---- a minimal deterministic CBOR codec for ASBs --------------------------------------------


def _head(major: int, v: int) -> bytes:
    if v < 24:
        return bytes([major << 5 | v])
    for ai, n in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if v < 1 << (8 * n):
            return bytes([major << 5 | ai]) + v.to_bytes(n, "big")
    raise InvalidArgumentError("CBOR integer beyond 64 bits")


def _enc(x: Any) -> bytes:
    if isinstance(x, bool):
        return b"\xf5" if x else b"\xf4"
    if isinstance(x, int):
        return _head(0, x) if x >= 0 else _head(1, -1 - x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        x = bytes(x)
        return _head(2, len(x)) + x
    if isinstance(x, str):
        b = x.encode()
        return _head(3, len(b)) + b
    if isinstance(x, (list, tuple)):
        return _head(4, len(x)) + b"".join(_enc(i) for i in x)
    if isinstance(x, EID):
        return x.encode()
    raise InvalidArgumentError(f"cannot CBOR-encode {type(x).__name__}")


class _Reader:
    __slots__ = ("d", "i")

    def __init__(self, d: bytes) -> None:
        self.d = d
        self.i = 0

    def head(self) -> tuple[int, int]:
        d, i = self.d, self.i
        if i >= len(d):
            raise MalformedError("BPSec block: truncated")
        b = d[i]
        major, ai = b >> 5, b & 31
        if ai < 24:
            self.i = i + 1
            return major, ai
        if ai > 27:
            raise MalformedError("BPSec block: indefinite or reserved CBOR item")
        n = 1 << (ai - 24)
        if i + 1 + n > len(d):
            raise MalformedError("BPSec block: truncated")
        v = int.from_bytes(d[i + 1:i + 1 + n], "big")
        if v < (24 if n == 1 else 1 << (4 * n)):
            raise MalformedError("BPSec block: CBOR integer not in its shortest form")
        self.i = i + 1 + n
        return major, v

    def item(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise MalformedError("BPSec block: nesting too deep")
        major, v = self.head()
        if major == 0:
            return v
        if major == 1:
            return -1 - v
        if major in (2, 3):
            if v > len(self.d) - self.i:
                raise MalformedError("BPSec block: truncated string")
            s = self.d[self.i:self.i + v]
            self.i += v
            if major == 3:
                try:
                    return s.decode()
                except UnicodeDecodeError:
                    raise MalformedError("BPSec block: text is not UTF-8") from None
            return s
        if major == 4:
            if v > MAX_ASB_ITEMS or v > len(self.d) - self.i:
                raise MalformedError("BPSec block: array too long")
            return [self.item(depth + 1) for _ in range(v)]
        if major == 7 and v in (20, 21):
            return v == 21
        raise MalformedError("BPSec block: unexpected CBOR item")


def _uint(x: Any, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise MalformedError(f"BPSec block: {what} must be an unsigned integer")
    return x


def _eid_from(x: Any) -> EID:
    try:
        if isinstance(x, list) and len(x) == 2:
            if x[0] == SCHEME_IPN and isinstance(x[1], list) and len(x[1]) == 2:
                return EID.ipn(_uint(x[1][0], "ipn node"), _uint(x[1][1], "ipn service"))
            if x[0] == SCHEME_DTN:
                return EID.NONE if x[1] == 0 else EID.dtn(x[1])
    except (InvalidArgumentError, TypeError) as e:
        raise MalformedError(f"BPSec block: bad security source: {e}") from None
    raise MalformedError("BPSec block: bad security source")


Param = tuple[int, Any]


@dataclass(frozen=True)
class SecurityBlock:
    """An abstract security block (RFC 9172 §3.6): the data of a BIB or a BCB."""

    targets: tuple[int, ...]
    context_id: int
    source: EID
    parameters: tuple[Param, ...] | None      # None: the "parameters present" flag is clear
    results: tuple[tuple[Param, ...], ...]    # one tuple of results per target, in order

    def encode(self) -> bytes:
        out = [_enc(list(self.targets)), _enc(self.context_id),
               _enc(0 if self.parameters is None else 1), self.source.encode()]
        if self.parameters is not None:
            out.append(_enc([[i, v] for i, v in self.parameters]))
        out.append(_enc([[[i, v] for i, v in r] for r in self.results]))
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes | memoryview) -> SecurityBlock:
        r = _Reader(bytes(data))
        targets = r.item()
        ctx = r.item()
        flags = r.item()
        src = _eid_from(r.item())
        if not isinstance(targets, list) or not targets:
            raise MalformedError("BPSec block: security targets must be a non-empty array")
        targets = tuple(_uint(t, "target") for t in targets)
        if len(set(targets)) != len(targets):
            raise MalformedError("BPSec block: duplicate security target")
        if not isinstance(ctx, int) or isinstance(ctx, bool):
            raise MalformedError("BPSec block: security context id must be an integer")
        flags = _uint(flags, "context flags")
        params = None
        if flags & 1:
            raw = r.item()
            if not isinstance(raw, list):
                raise MalformedError("BPSec block: parameters must be an array")
            params = tuple(_pair(p) for p in raw)
        results = r.item()
        if r.i != len(r.d):
            raise MalformedError("BPSec block: bytes after the results")
        if not isinstance(results, list) or len(results) != len(targets):
            raise MalformedError("BPSec block: one result set per target is required")
        res = []
        for rs in results:
            if not isinstance(rs, list):
                raise MalformedError("BPSec block: a target's results must be an array")
            res.append(tuple(_pair(p) for p in rs))
        return cls(targets, ctx, src, params, tuple(res))

    def param(self, pid: int, default: Any = None) -> Any:
        for i, v in self.parameters or ():
            if i == pid:
                return v
        return default


def _pair(p: Any) -> Param:
    if not isinstance(p, list) or len(p) != 2:
        raise MalformedError("BPSec block: a parameter or result must be [id, value]")
    return _uint(p[0], "parameter/result id"), p[1]

# ---- IPPT and AAD (RFC 9173 §3.7, §4.7) --------------------------------------------------------


def _block_by_number(bundle: Bundle, number: int) -> CanonicalBlock:
    for b in bundle.blocks:
        if b.number == number:
            return b
    raise InvalidArgumentError(f"the bundle has no block number {number}")


def _header(b: CanonicalBlock) -> bytes:
    return _enc(int(b.type)) + _enc(b.number) + _enc(int(b.flags))


def ippt(bundle: Bundle, target: int, scope: int, sec_type: int, sec_number: int, sec_flags: int) -> bytes:
    """Integrity-protected plaintext of one target (RFC 9173 §3.7). For target 0 (the primary
    block) the target header is empty and the target data is the primary block."""
    primary = bundle.primary_bytes()
    out = [_enc(int(scope))]
    if scope & Scope.PRIMARY:
        out.append(primary)
    if target == 0:
        data = primary
    else:
        blk = _block_by_number(bundle, target)
        if scope & Scope.TARGET_HEADER:
            out.append(_header(blk))
        data = bytes(blk.data)
    if scope & Scope.SECURITY_HEADER:
        out.append(_enc(sec_type) + _enc(sec_number) + _enc(sec_flags))
    out.append(_enc(data))
    return b"".join(out)


def aad(bundle: Bundle, target: CanonicalBlock, scope: int, bcb_number: int, bcb_flags: int) -> bytes:
    """Additional authenticated data of one BCB target (RFC 9173 §4.7.2)."""
    out = [_enc(int(scope))]
    if scope & Scope.PRIMARY:
        out.append(bundle.primary_bytes())
    if scope & Scope.TARGET_HEADER:
        out.append(_header(target))
    if scope & Scope.SECURITY_HEADER:
        out.append(_enc(int(BlockType.BCB)) + _enc(bcb_number) + _enc(bcb_flags))
    return b"".join(out)

# ---- helpers -----------------------------------------------------------------------------------


def _copy(bundle: Bundle) -> Bundle:
    return Bundle.parse(bundle.to_bytes())


def _new_number(bundle: Bundle, number: int | None) -> int:
    used = {b.number for b in bundle.blocks}
    if number is None:
        return max(used) + 1
    if number in used or number < 2:
        raise InvalidArgumentError(f"block number {number} is taken or reserved")
    return number


def _insert(bundle: Bundle, block: CanonicalBlock, position: int) -> Bundle:
    blocks = [CanonicalBlock(b.type, b.number, bytes(b.data), b.flags, b.crc_type) for b in bundle.blocks]
    if not 0 <= position < len(blocks):
        raise InvalidArgumentError("a security block goes before the payload block")
    blocks.insert(position, block)
    return Bundle(bundle.primary, blocks)


def security_blocks(bundle: Bundle, block_type: int | None = None) -> list[tuple[CanonicalBlock, SecurityBlock]]:
    """The bundle's BIBs and BCBs (or one type of them), decoded."""
    out = []
    for b in bundle.blocks:
        if b.type in (BlockType.BIB, BlockType.BCB) and (block_type is None or b.type == block_type):
            out.append((b, SecurityBlock.decode(b.data)))
    return out


def _check_targets(bundle: Bundle, targets: Sequence[int], allow_primary: bool) -> tuple[int, ...]:
    t = tuple(int(x) for x in targets)
    if not t or len(set(t)) != len(t):
        raise InvalidArgumentError("security targets must be distinct and at least one")
    for x in t:
        if x == 0 and allow_primary:
            continue
        blk = _block_by_number(bundle, x)
        if blk.type == BlockType.BCB or (not allow_primary and x == 0):
            raise InvalidArgumentError(f"block {x} cannot be a target here")
    return t


KeyLookup = Union[bytes, Callable[[EID], bytes]]


def _key(keys: KeyLookup, source: EID) -> bytes:
    k = keys(source) if callable(keys) else keys
    if not isinstance(k, (bytes, bytearray)):
        raise AuthenticationError(f"no key for security source {source}")
    return bytes(k)


def _acceptor_key(keys: KeyLookup, asb: SecurityBlock, kek: bool, wrapped_param: int, where: str) -> bytes:
    """The key for ``asb``'s security source; with ``kek`` that is a key-encryption key, and
    the key is the one the block carries wrapped under it (parameter ``wrapped_param``)."""
    key = _key(keys, asb.source)
    if not kek:
        return key
    wrapped = asb.param(wrapped_param)
    if not isinstance(wrapped, bytes):
        raise AuthenticationError(f"{where}: no wrapped key")
    try:
        return aes_key_unwrap(key, wrapped)
    except (InvalidUnwrap, ValueError):
        raise AuthenticationError(f"{where}: key unwrap failed") from None

# ---- BIB-HMAC-SHA2 -----------------------------------------------------------------------------


def sign_hmac(bundle: Bundle, targets: Sequence[int], key: bytes, source: EID, *,
              variant: ShaVariant = ShaVariant.HMAC384, scope: Scope = Scope.ALL,
              kek: bytes | None = None, number: int | None = None, position: int = 0,
              flags: BlockFlags = BlockFlags.NONE) -> Bundle:
    """A copy of bundle with a BIB (BIB-HMAC-SHA2) over targets. With kek, key is wrapped
    under it (AES key wrap) and carried as parameter 2."""
    b = _copy(bundle)
    t = _check_targets(b, targets, allow_primary=True)
    num = _new_number(b, number)
    macs = []
    for x in t:
        h = crypto_hmac.HMAC(key, _HASH[ShaVariant(variant)]())
        h.update(ippt(b, x, scope, BlockType.BIB, num, int(flags)))
        macs.append(((_R_RESULT, h.finalize()),))
    params: list[Param] = [(_P_SHA, int(variant))]
    if kek is not None:
        params.append((_P_WRAPPED, aes_key_wrap(kek, key)))
    params.append((_P_SCOPE, int(scope)))
    asb = SecurityBlock(t, BIB_HMAC_SHA2, source, tuple(params), tuple(macs))
    return _insert(b, CanonicalBlock(BlockType.BIB, num, asb.encode(), flags), position)


def verify_hmac(bundle: Bundle, keys: KeyLookup, *, kek: bool = False) -> list[int]:
    """Check every BIB-HMAC-SHA2 target; returns the target numbers verified. keys is the
    key (or a function of the security source giving it); with kek=True it is the
    key-encryption key and each BIB must carry its wrapped key. AuthenticationError on any
    mismatch, UnsupportedError for a BIB of an unknown context."""
    done = []
    for blk, asb in security_blocks(bundle, BlockType.BIB):
        if asb.context_id not in (BIB_HMAC_SHA2, BIB_ED25519):
            raise UnsupportedError(f"BIB {blk.number}: unknown security context {asb.context_id}")
        if asb.context_id != BIB_HMAC_SHA2:
            continue
        variant = asb.param(_P_SHA, ShaVariant.HMAC384)
        scope = asb.param(_P_SCOPE, Scope.ALL)
        if variant not in _HASH or not isinstance(scope, int):
            raise MalformedError(f"BIB {blk.number}: bad SHA variant or scope")
        key = _acceptor_key(keys, asb, kek, _P_WRAPPED, f"BIB {blk.number}")
        for x, res in zip(asb.targets, asb.results):
            got = dict(res).get(_R_RESULT)
            h = crypto_hmac.HMAC(key, _HASH[ShaVariant(variant)]())
            try:
                h.update(ippt(bundle, x, scope, BlockType.BIB, blk.number, int(blk.flags)))
            except InvalidArgumentError:
                raise MalformedError(f"BIB {blk.number}: target {x} is not in the bundle") from None
            if not isinstance(got, bytes) or not hmac.compare_digest(h.finalize(), got):
                raise AuthenticationError(f"BIB {blk.number}: integrity check of block {x} failed")
            done.append(x)
    return done

# ---- BCB-AES-GCM ---------------------------------------------------------------------------------


def encrypt_aes_gcm(bundle: Bundle, targets: Sequence[int], key: bytes, source: EID, *,
                    variant: AesVariant = AesVariant.A256GCM, scope: Scope = Scope.ALL,
                    iv: bytes | None = None, kek: bytes | None = None, number: int | None = None,
                    position: int = 0, flags: BlockFlags = BlockFlags.REPLICATE) -> Bundle:
    """A copy of bundle with targets encrypted in place and a BCB (BCB-AES-GCM) carrying the
    IV, the variant, the scope and (with kek) the content key wrapped under kek. The IV is
    random unless given (tests only: never reuse an IV with a key). RFC 9172 §3.9: a BIB
    over an encrypted target must be encrypted too (listed in targets)."""
    b = _copy(bundle)
    t = _check_targets(b, targets, allow_primary=False)
    if len(key) != _KEY_LEN[AesVariant(variant)]:
        raise InvalidArgumentError(f"{AesVariant(variant).name} needs a {_KEY_LEN[AesVariant(variant)]}-byte key")
    for blk, asb in security_blocks(b, BlockType.BIB):
        if set(asb.targets) & set(t) and blk.number not in t:
            raise InvalidArgumentError(f"BIB {blk.number} covers an encrypted target: encrypt it too")
    num = _new_number(b, number)
    iv = os.urandom(12) if iv is None else iv
    gcm = AESGCM(key)
    tags, blocks = [], {bl.number: bl for bl in b.blocks}
    new_data = {}
    for x in t:
        tgt = blocks[x]
        ct = gcm.encrypt(iv, bytes(tgt.data), aad(b, tgt, scope, num, int(flags)))
        new_data[x] = ct[:-16]
        tags.append(((_R_RESULT, ct[-16:]),))
    params: list[Param] = [(_P_IV, iv), (_P_AES, int(variant))]
    if kek is not None:
        params.append((_P_KEY, aes_key_wrap(kek, key)))
    params.append((_P_AAD_SCOPE, int(scope)))
    asb = SecurityBlock(t, BCB_AES_GCM, source, tuple(params), tuple(tags))
    out = _insert(b, CanonicalBlock(BlockType.BCB, num, asb.encode(), flags), position)
    for blk in out.blocks:
        if blk.number in new_data:
            blk.data = new_data[blk.number]
    return out


def decrypt_aes_gcm(bundle: Bundle, keys: KeyLookup, *, kek: bool = False) -> Bundle:
    """A copy of bundle with every BCB-AES-GCM target decrypted and those BCBs removed.
    keys: the content key, or with kek=True the key-encryption key of the wrapped keys.
    AuthenticationError when a tag does not verify (nothing is returned half-decrypted)."""
    b = _copy(bundle)
    plain: dict[int, bytes] = {}
    drop = set()
    for blk, asb in security_blocks(b, BlockType.BCB):
        if asb.context_id != BCB_AES_GCM:
            raise UnsupportedError(f"BCB {blk.number}: unknown security context {asb.context_id}")
        iv = asb.param(_P_IV)
        variant = asb.param(_P_AES, AesVariant.A256GCM)
        scope = asb.param(_P_AAD_SCOPE, Scope.ALL)
        if not isinstance(iv, bytes) or variant not in (1, 3) or not isinstance(scope, int):
            raise MalformedError(f"BCB {blk.number}: bad IV, AES variant or scope")
        key = _acceptor_key(keys, asb, kek, _P_KEY, f"BCB {blk.number}")
        if len(key) != _KEY_LEN[AesVariant(variant)]:
            raise AuthenticationError(f"BCB {blk.number}: key of the wrong size for {AesVariant(variant).name}")
        gcm = AESGCM(key)
        for x, res in zip(asb.targets, asb.results):
            tag = dict(res).get(_R_RESULT)
            try:
                tgt = _block_by_number(b, x)
            except InvalidArgumentError:
                raise MalformedError(f"BCB {blk.number}: target {x} is not in the bundle") from None
            if not isinstance(tag, bytes) or len(tag) != 16:
                raise MalformedError(f"BCB {blk.number}: missing authentication tag")
            try:
                plain[x] = gcm.decrypt(iv, bytes(tgt.data) + tag, aad(b, tgt, scope, blk.number, int(blk.flags)))
            except InvalidTag:
                raise AuthenticationError(f"BCB {blk.number}: decryption of block {x} failed") from None
        drop.add(blk.number)
    blocks = [CanonicalBlock(bl.type, bl.number, plain.get(bl.number, bytes(bl.data)), bl.flags, bl.crc_type)
              for bl in b.blocks if bl.number not in drop]
    return Bundle(b.primary, blocks)

# ---- BIB-Ed25519 ---------------------------------------------------------------------------------


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_ed25519(bundle: Bundle, targets: Sequence[int], private_key: Ed25519PrivateKey, source: EID, *,
                 scope: Scope = Scope.ALL, include_public_key: bool = True, number: int | None = None,
                 position: int = 0, flags: BlockFlags = BlockFlags.NONE) -> Bundle:
    """A copy of bundle with a BIB of context BIB_ED25519: an Ed25519 signature over the
    IPPT of each target (the RFC 9173 §3.7 construction, security header type 11)."""
    b = _copy(bundle)
    t = _check_targets(b, targets, allow_primary=True)
    num = _new_number(b, number)
    sigs = tuple(((_R_RESULT, private_key.sign(ippt(b, x, scope, BlockType.BIB, num, int(flags)))),) for x in t)
    params: list[Param] = []
    if include_public_key:
        params.append((_P_ED_PUBKEY, _raw_public(private_key.public_key())))
    params.append((_P_ED_SCOPE, int(scope)))
    asb = SecurityBlock(t, BIB_ED25519, source, tuple(params), sigs)
    return _insert(b, CanonicalBlock(BlockType.BIB, num, asb.encode(), flags), position)


def verify_ed25519(bundle: Bundle, trusted: Callable[[EID], Iterable[Ed25519PublicKey]] | Ed25519PublicKey) -> list[int]:
    """Check every BIB-Ed25519 signature against the keys trusted for its security source
    (a public key carried in the block is only a hint: it must be one of them). Returns the
    verified targets; AuthenticationError on any failure or untrusted key."""
    done = []
    for blk, asb in security_blocks(bundle, BlockType.BIB):
        if asb.context_id != BIB_ED25519:
            continue
        scope = asb.param(_P_ED_SCOPE, Scope.ALL)
        if not isinstance(scope, int):
            raise MalformedError(f"BIB {blk.number}: bad scope")
        keys = list(trusted(asb.source)) if callable(trusted) else [trusted]
        hint = asb.param(_P_ED_PUBKEY)
        if hint is not None:
            keys = [k for k in keys if _raw_public(k) == hint]
        if not keys:
            raise AuthenticationError(f"BIB {blk.number}: no trusted key for {asb.source}")
        for x, res in zip(asb.targets, asb.results):
            sig = dict(res).get(_R_RESULT)
            try:
                msg = ippt(bundle, x, scope, BlockType.BIB, blk.number, int(blk.flags))
            except InvalidArgumentError:
                raise MalformedError(f"BIB {blk.number}: target {x} is not in the bundle") from None
            ok = False
            for k in keys:
                try:
                    k.verify(sig if isinstance(sig, bytes) else b"", msg)
                    ok = True
                    break
                except InvalidSignature:
                    pass
            if not ok:
                raise AuthenticationError(f"BIB {blk.number}: signature over block {x} does not verify")
            done.append(x)
    return done
