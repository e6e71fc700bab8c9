"""An independent, slow, pure-Python ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381) for the tests.

Written from the RFC text (sections 5.1-5.5) and RFC 8032 section 5.1 with nothing but
hashlib and integer arithmetic: it shares no code with libbetanet (which works through
libsodium's point functions), so agreement between the two is real interop evidence.
Not constant time; never use it outside the tests.
"""
from __future__ import annotations

import hashlib

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493  # prime order of the base point
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
SUITE = b"\x03"
C_LEN = 16

Point = tuple  # extended coordinates (X, Y, Z, T)
IDENTITY: Point = (0, 1, 1, 0)


def _add(a: Point, b: Point) -> Point:
    # RFC 8032 section 5.1.4, complete addition formulas.
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _neg(a: Point) -> Point:
    x, y, z, t = a
    return (-x % P, y, z, -t % P)


def mul(n: int, a: Point) -> Point:
    r = IDENTITY
    while n > 0:
        if n & 1:
            r = _add(r, a)
        a = _add(a, a)
        n >>= 1
    return r


def encode(a: Point) -> bytes:
    x, y, z, _ = a
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(s: bytes) -> Point | None:
    """RFC 8032 section 5.1.3: None for y >= p, non-squares and x = 0 with the sign bit."""
    if len(s) != 32:
        return None
    v = int.from_bytes(s, "little")
    sign, y = v >> 255, v & ((1 << 255) - 1)
    if y >= P:
        return None
    u, w = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(w, 3, P) * pow(u * pow(w, 7, P), (P - 5) // 8, P) % P
    if (w * x * x - u) % P != 0:
        if (w * x * x + u) % P != 0:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


B = decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def _secret(sk: bytes) -> tuple[int, bytes]:
    h = hashlib.sha512(sk).digest()
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return int.from_bytes(a, "little"), h[32:]


def public_key(sk: bytes) -> bytes:
    return encode(mul(_secret(sk)[0], B))


def encode_to_curve(salt: bytes, alpha: bytes) -> Point:
    for ctr in range(256):
        h = hashlib.sha512(SUITE + b"\x01" + salt + alpha + bytes([ctr]) + b"\x00").digest()
        pt = decode(h[:32])
        if pt is not None:
            return mul(8, pt)
    raise ValueError("encode_to_curve failed")


def challenge(*points: Point) -> int:
    data = SUITE + b"\x02" + b"".join(encode(p) for p in points) + b"\x00"
    return int.from_bytes(hashlib.sha512(data).digest()[:C_LEN], "little")


def prove(sk: bytes, alpha: bytes) -> bytes:
    x, prefix = _secret(sk)
    y = mul(x, B)
    h = encode_to_curve(encode(y), alpha)
    gamma = mul(x, h)
    k = int.from_bytes(hashlib.sha512(prefix + encode(h)).digest(), "little") % Q
    c = challenge(y, h, gamma, mul(k, B), mul(k, h))
    s = (k + c * x) % Q
    return encode(gamma) + c.to_bytes(C_LEN, "little") + s.to_bytes(32, "little")


def decode_proof(pi: bytes) -> tuple[Point, int, int] | None:
    if len(pi) != 32 + C_LEN + 32:
        return None
    gamma = decode(pi[:32])
    c = int.from_bytes(pi[32:48], "little")
    s = int.from_bytes(pi[48:], "little")
    if gamma is None or s >= Q:
        return None
    return gamma, c, s


def proof_to_hash(pi: bytes) -> bytes | None:
    d = decode_proof(pi)
    if d is None:
        return None
    return hashlib.sha512(SUITE + b"\x03" + encode(mul(8, d[0])) + b"\x00").digest()


def _is_identity(a: Point) -> bool:
    return encode(a) == encode(IDENTITY)


def verify(pk: bytes, pi: bytes, alpha: bytes) -> bytes | None:
    """The VRF output for a valid proof, else None (validate_key = TRUE)."""
    y = decode(pk)
    if y is None or _is_identity(mul(8, y)):
        return None
    d = decode_proof(pi)
    if d is None:
        return None
    gamma, c, s = d
    h = encode_to_curve(pk, alpha)
    u = _add(mul(s, B), _neg(mul(c, y)))
    v = _add(mul(s, h), _neg(mul(c, gamma)))
    if challenge(y, h, gamma, u, v) != c:
        return None
    return proof_to_hash(pi)
