"""JA3, JA3N and JA4 fingerprints of a parsed ClientHello.

JA3 (Salesforce): ``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats``
in decimal, values joined by ``-``, GREASE removed; the fingerprint is its MD5. JA3N is JA3
with the extension list sorted numerically (stable under Chrome's extension permutation).

JA4 (FoxIO, technical_details/JA4.md): ``a_b_c`` where ``a`` = protocol (t), TLS version,
SNI (d/i), cipher count, extension count, first/last character of the first ALPN; ``b`` =
SHA-256 (12 hex) of the sorted cipher list; ``c`` = SHA-256 (12 hex) of the sorted extension
list without SNI and ALPN, then ``_`` and the signature algorithms in wire order. GREASE is
ignored everywhere (ciphers, extensions, signature algorithms, versions).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from betanet.tls.clienthello import EXT_ALPN, EXT_SERVER_NAME, ClientHello, is_grease

__all__ = ["Fingerprints", "fingerprints", "ja3", "ja3_string", "ja3n", "ja3n_string", "ja4",
           "ja4_r", "ja4_o", "ja4_ro", "ja4_from_raw"]

_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
             0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}
_EMPTY = "000000000000"


def _md5(s: str) -> str:
    return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()


def _sha12(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:12] if s else _EMPTY


def _ja3(ch: ClientHello, sort_ext: bool) -> str:
    ext = [t for t in ch.extension_types if not is_grease(t)]
    if sort_ext:
        ext.sort()
    parts = [str(ch.legacy_version),
             "-".join(str(c) for c in ch.cipher_suites if not is_grease(c)),
             "-".join(map(str, ext)),
             "-".join(str(g) for g in ch.supported_groups if not is_grease(g)),
             "-".join(map(str, ch.ec_point_formats))]
    return ",".join(parts)


def ja3_string(ch: ClientHello) -> str:
    return _ja3(ch, False)


def ja3n_string(ch: ClientHello) -> str:
    return _ja3(ch, True)


def ja3(ch: ClientHello) -> str:
    return _md5(ja3_string(ch))


def ja3n(ch: ClientHello) -> str:
    return _md5(ja3n_string(ch))


def _alnum(b: int) -> bool:
    return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def _alpn_chars(ch: ClientHello) -> str:
    if not ch.alpn:
        return "00"
    p = ch.alpn[0]
    if _alnum(p[0]) and _alnum(p[-1]):
        return chr(p[0]) + chr(p[-1])
    h = p.hex()                       # non-alphanumeric: first and last hex digit of the value
    return h[0] + h[-1]


def _header(ch: ClientHello) -> str:
    versions = [v for v in ch.supported_versions if not is_grease(v)]
    version = max(versions) if versions else ch.legacy_version
    ciphers = [c for c in ch.cipher_suites if not is_grease(c)]
    exts = [t for t in ch.extension_types if not is_grease(t)]
    sni = "d" if EXT_SERVER_NAME in exts else "i"
    return (f"t{_VERSIONS.get(version, '00')}{sni}{min(len(ciphers), 99):02d}"
            f"{min(len(exts), 99):02d}{_alpn_chars(ch)}")


def _lists(ch: ClientHello, original: bool) -> tuple[str, str, str]:
    ciphers = [c for c in ch.cipher_suites if not is_grease(c)]
    exts = [t for t in ch.extension_types if not is_grease(t)]
    if not original:
        ciphers = sorted(ciphers)
        exts = sorted(t for t in exts if t not in (EXT_SERVER_NAME, EXT_ALPN))
    sigs = [s for s in ch.signature_algorithms if not is_grease(s)]
    return (",".join(f"{c:04x}" for c in ciphers), ",".join(f"{t:04x}" for t in exts),
            ",".join(f"{s:04x}" for s in sigs))


def _raw(ch: ClientHello, original: bool) -> str:
    c, e, s = _lists(ch, original)
    return f"{_header(ch)}_{c}_{e}" + (f"_{s}" if s else "")


def ja4_from_raw(raw: str) -> str:
    """Hash a JA4_r / JA4_ro string (``a_ciphers_exts[_sigs]``) into its JA4 / JA4_o."""
    head, ciphers, rest = raw.split("_", 2)
    return f"{head}_{_sha12(ciphers)}_{_sha12(rest)}"


def ja4_r(ch: ClientHello) -> str:
    return _raw(ch, False)


def ja4_ro(ch: ClientHello) -> str:
    return _raw(ch, True)


def ja4(ch: ClientHello) -> str:
    return ja4_from_raw(ja4_r(ch))


def ja4_o(ch: ClientHello) -> str:
    return ja4_from_raw(ja4_ro(ch))


@dataclass(frozen=True)
class Fingerprints:
    ja3: str
    ja3_string: str
    ja3n: str
    ja3n_string: str
    ja4: str
    ja4_r: str
    ja4_o: str
    ja4_ro: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def fingerprints(ch: ClientHello) -> Fingerprints:
    return Fingerprints(ja3(ch), ja3_string(ch), ja3n(ch), ja3n_string(ch), ja4(ch), ja4_r(ch),
                        ja4_o(ch), ja4_ro(ch))
