"""Endpoint IDs of the Bundle Protocol (RFC 9171 §4.2.5.1): the ``dtn`` and ``ipn`` schemes.

``EID.parse("ipn:2.1")``, ``EID.parse("dtn://node/inbox")``, ``EID.NONE`` (``dtn:none``).
The CBOR encoding is the core's (``betanet_bundle_eid_encode``): ``[1, "//node/svc"]``,
``[1, 0]`` for dtn:none, ``[2, [node, service]]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

from betanet._native import bundle as _nb
from betanet.errors import InvalidArgumentError

__all__ = ["EID", "SCHEME_DTN", "SCHEME_IPN"]

SCHEME_DTN = 1
SCHEME_IPN = 2
_U64 = (1 << 64) - 1


def _check_ssp(ssp: str) -> None:
    # printable ASCII without space: 0x21-0x7E, as the core checks
    if len(ssp) < 3 or not ssp.startswith("//") or not (ssp.isascii() and ssp.isprintable()) or " " in ssp:
        raise InvalidArgumentError(
            f"dtn EID {ssp!r}: the part after 'dtn:' must be '//node/demux' in printable ASCII")


@dataclass(frozen=True, slots=True)
class EID:
    """An endpoint ID. ``ssp`` is the dtn scheme-specific part after ``dtn:`` ("" for none)."""

    scheme: int
    node: int = 0
    service: int = 0
    ssp: str = ""
    _spec: tuple = field(default=(), init=False, repr=False, compare=False, hash=False)

    NONE: ClassVar[EID]

    def __post_init__(self) -> None:
        if self.scheme == SCHEME_DTN:
            if self.ssp:
                _check_ssp(self.ssp)
        elif self.scheme == SCHEME_IPN:
            if not (0 <= self.node <= _U64 and 0 <= self.service <= _U64):
                raise InvalidArgumentError("ipn node and service numbers are unsigned 64-bit")
        else:
            raise InvalidArgumentError(f"unsupported EID scheme {self.scheme}")
        object.__setattr__(self, "_spec", (self.scheme, self.node, self.service, self.ssp.encode()))

    @classmethod
    def ipn(cls, node: int, service: int) -> EID:
        return cls(SCHEME_IPN, node, service)

    @classmethod
    def dtn(cls, ssp: str) -> EID:
        """``EID.dtn("//node/svc")``; ``EID.dtn("none")`` is dtn:none."""
        return cls.NONE if ssp in ("", "none") else cls(SCHEME_DTN, ssp=ssp)

    @classmethod
    def parse(cls, text: str) -> EID:
        """Parse the URI form: ``dtn:none``, ``dtn://node/svc``, ``ipn:N.S``."""
        return _parse_text(text) if cls is EID else cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> EID:
        if not isinstance(text, str):
            raise InvalidArgumentError(f"EID must be text, not {type(text).__name__}")
        if text.startswith("dtn:"):
            return cls.dtn(text[4:])
        if text.startswith("ipn:"):
            parts = text[4:].split(".")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise InvalidArgumentError(f"ipn EID {text!r} must be ipn:<node>.<service>")
            return cls.ipn(int(parts[0]), int(parts[1]))
        raise InvalidArgumentError(f"EID {text!r}: scheme must be dtn or ipn")

    @property
    def is_none(self) -> bool:
        return self.scheme == SCHEME_DTN and not self.ssp

    @property
    def node_id(self) -> EID:
        """The node's administrative endpoint: ipn:N.0, or dtn://node/ ."""
        if self.scheme == SCHEME_IPN:
            return EID.ipn(self.node, 0)
        if self.is_none:
            return self
        return EID.dtn("//" + self.ssp[2:].split("/", 1)[0] + "/")

    def __str__(self) -> str:
        if self.scheme == SCHEME_IPN:
            return f"ipn:{self.node}.{self.service}"
        return "dtn:" + (self.ssp or "none")

    def spec(self) -> tuple[int, int, int, bytes]:
        """The tuple the native encoder takes."""
        return self._spec

    def encode(self) -> bytes:
        """The CBOR encoding (as inside a previous node block)."""
        return _nb.eid_encode(self.spec())

    @classmethod
    def from_view(cls, buf: memoryview | bytes, t: tuple) -> EID:
        """From a native view tuple (scheme, is_none, node, service, ssp_off, ssp_len, off, len)
        of an EID the core has validated. Memoised by the EID's encoding: routers see the same
        few endpoints over and over."""
        off, n = t[6], t[7]
        return _from_encoding(bytes(buf[off:off + n]), t[0], t[1], t[2], t[3], t[5])


EID.NONE = EID(SCHEME_DTN)


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> EID:
    return EID._parse(text)


@lru_cache(maxsize=4096)
def _from_encoding(raw: bytes, scheme: int, is_none: int, node: int, service: int, ssp_len: int) -> EID:
    if scheme == SCHEME_IPN:
        return EID(SCHEME_IPN, node, service)
    if is_none:
        return EID.NONE
    return EID(SCHEME_DTN, ssp=raw[len(raw) - ssp_len:].decode("ascii"))
