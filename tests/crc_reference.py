"""Bit-at-a-time reference CRCs of RFC 9171 §4.2.1, written from the polynomials (reflected
CRC-16/X-25 and CRC-32C): the tests check libbetanet's table and SSE4.2 CRCs against them,
and the cbor2 second implementation uses them."""
from __future__ import annotations


def crc16_x25(data: bytes) -> int:
    c = 0xFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x8408 if c & 1 else 0)
    return c ^ 0xFFFF


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF
