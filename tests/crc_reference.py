"""Bit-at-a-time reference CRCs of RFC 9171 §4.2.1, written from the polynomials (reflected
CRC-16/X-25 and CRC-32C): the tests check libbetanet's table and SSE4.2 CRCs against them,
and the cbor2 second implementation uses them."""
from __future__ import annotations


def _reflected(data: bytes, poly: int, ones: int) -> int:
    """A reflected CRC starting from and finally xored with all ones (``ones``)."""
    c = ones
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (poly if c & 1 else 0)
    return c ^ ones


def crc16_x25(data: bytes) -> int:
    return _reflected(data, 0x8408, 0xFFFF)


def crc32c(data: bytes) -> int:
    return _reflected(data, 0x82F63B78, 0xFFFFFFFF)
