"""NODE-IDs in a TCPCL peer's certificate (RFC 9174 §4.4.1, §4.4.4.3).

RFC 9174 carries a Node ID in the certificate as a subjectAltName ``otherName`` of type
``id-on-bundleEID`` (1.3.6.1.5.5.7.8.11) whose value is an IA5String. Certificates made for
draft-ietf-dtn-tcpclv4-26 and earlier (still issued by some tools) carry it as a
``uniformResourceIdentifier`` SAN in the ``dtn`` or ``ipn`` scheme; both forms count.
"""
from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from betanet.errors import MalformedError

__all__ = ["ID_ON_BUNDLE_EID", "certificate_node_ids", "node_id_other_name"]

ID_ON_BUNDLE_EID = ObjectIdentifier("1.3.6.1.5.5.7.8.11")
_IA5STRING = 0x16


def _der_ia5(value: bytes) -> str:
    """The text of one DER IA5String (tag 0x16, definite length, 7-bit ASCII)."""
    if len(value) < 2 or value[0] != _IA5STRING:
        raise MalformedError("id-on-bundleEID value is not an IA5String")
    n, p = value[1], 2
    if n & 0x80:  # long form: the low bits count the length bytes
        k = n & 0x7F
        if k == 0 or k > 4 or len(value) < 2 + k:
            raise MalformedError("bad IA5String length")
        n = int.from_bytes(value[2:2 + k], "big")
        p = 2 + k
    if len(value) != p + n:
        raise MalformedError("IA5String length disagrees with its value")
    raw = value[p:]
    if any(b > 0x7F for b in raw):
        raise MalformedError("IA5String holds a non-ASCII byte")
    return raw.decode("ascii")


def node_id_other_name(node_id: str) -> x509.OtherName:
    """The RFC 9174 NODE-ID SAN for ``node_id`` (for making certificates)."""
    raw = node_id.encode("ascii")
    if len(raw) < 0x80:
        head = bytes([_IA5STRING, len(raw)])
    else:
        k = (len(raw).bit_length() + 7) // 8
        head = bytes([_IA5STRING, 0x80 | k]) + len(raw).to_bytes(k, "big")
    return x509.OtherName(ID_ON_BUNDLE_EID, head + raw)


def certificate_node_ids(der: bytes) -> tuple[str, ...]:
    """Every NODE-ID in a DER certificate, in SAN order; () if it has none. A malformed
    id-on-bundleEID value raises :class:`MalformedError` (the session then fails)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    except ValueError as e:
        raise MalformedError(f"peer certificate does not parse: {e}") from None
    out: list[str] = []
    for name in san:
        if isinstance(name, x509.OtherName) and name.type_id == ID_ON_BUNDLE_EID:
            out.append(_der_ia5(name.value))
        elif isinstance(name, x509.UniformResourceIdentifier) and \
                name.value.split(":", 1)[0].lower() in ("dtn", "ipn"):
            out.append(name.value)
    return tuple(out)
