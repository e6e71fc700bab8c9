"""TLS 1.3 contexts for HTX over TCP, and a self-signed certificate helper (tests, demo)."""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from betanet.htx.keys import write_new_file
from betanet.htx.protocol import ALPN

__all__ = ["self_signed_certificate", "write_self_signed", "client_context", "server_context"]


def self_signed_certificate(hostnames: list[str] | None = None, days: int = 30) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for ``hostnames`` (default localhost, 127.0.0.1, ::1),
    an ECDSA P-256 key. For tests and local demos, not for production trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names = hostnames or ["localhost", "127.0.0.1", "::1"]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def write_self_signed(directory: str | os.PathLike, hostnames: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``cert.pem`` (0644) and ``key.pem`` (0600) into ``directory``; returns their paths.
    Both are new files created with their mode (existing ones, symlinks included, are
    replaced, never written through)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(hostnames)
    cp, kp = d / "cert.pem", d / "key.pem"
    write_new_file(kp, key, 0o600, overwrite=True)
    write_new_file(cp, cert, 0o644, overwrite=True)
    return cp, kp


def client_context(cafile: str | os.PathLike | None = None, verify: bool = True) -> ssl.SSLContext:
    """TLS 1.3 only, ALPN betanet-htx/1.1. Verification on unless ``verify=False``."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([ALPN])
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context(certfile: str | os.PathLike, keyfile: str | os.PathLike) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([ALPN])
    ctx.load_cert_chain(str(certfile), str(keyfile))
    return ctx
