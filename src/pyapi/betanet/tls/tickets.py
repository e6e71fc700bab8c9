"""Betanet 1.1 §5.2 access tickets, sans-IO: key publication, the client's hourly ticket and
its padded payload, the carrier choice, and the server's verification (hour window,
replay set, per-prefix token buckets). Time and randomness are injected.

Pinned choices (docs/stealth.md "Tickets byte by byte"; vectors in tests/vectors/tickets.json):
HKDF-SHA256 with IKM = sharedSecret, salt = SHA256("betanet-ticket-v1" ‖ ticketKeyID ‖
uint64_be(hour)), info = "" and L = 32; Base64URL without '=' padding; the cookie is
``__Host-<site>`` (default ``__Host-bnsid``), the query and body field ``bn1``; padding is
random bytes, 24..64 long (the policy's ``len``); the nonce is carried but not derived from.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from betanet.errors import InvalidArgumentError, MalformedError

__all__ = ["CarrierPolicy", "TicketPublication", "TicketKey", "ClientTicket", "TicketVerifier",
           "VerifyResult", "derive_ticket", "ticket_salt", "make_ticket", "choose_carrier",
           "b64url_encode", "b64url_decode", "CARRIERS", "FIELD", "VERSION"]

VERSION = 1
FIELD = "bn1"                                  # query parameter and form field name
DEFAULT_COOKIE = "__Host-bnsid"
CARRIERS = ("cookie", "query", "body")
_LABEL = b"betanet-ticket-v1"
_FIXED = 1 + 32 + 8 + 32 + 32                  # version, cliPub, keyID, nonce, accessTicket
PAD_MIN, PAD_MAX = 24, 64
MAX_PAYLOAD = _FIXED + PAD_MAX
MAX_ENCODED = (MAX_PAYLOAD * 4 + 2) // 3       # Base64URL without padding
HOUR = 3600
REPLAY_WINDOW = 2 * HOUR
_B64URL = re.compile(rb"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes, limit: int = MAX_ENCODED) -> bytes:
    """Strict Base64URL without padding: alphabet checked, length bounded before decoding."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if len(raw) > limit:
        raise MalformedError(f"ticket: encoded payload longer than {limit} characters")
    if not _B64URL.match(raw) or len(raw) % 4 == 1:
        raise MalformedError("ticket: not unpadded Base64URL")
    try:
        out = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("ticket: not Base64URL") from exc
    if b64url_encode(out).encode() != raw:          # non-canonical trailing bits
        raise MalformedError("ticket: non-canonical Base64URL")
    return out


def ticket_salt(key_id: bytes, hour: int) -> bytes:
    return hashlib.sha256(_LABEL + key_id + hour.to_bytes(8, "big")).digest()


def derive_ticket(shared_secret: bytes, key_id: bytes, hour: int) -> bytes:
    """accessTicket = HKDF-SHA256(IKM=sharedSecret, salt, info="", L=32) (RFC 5869)."""
    prk = hmac.new(ticket_salt(key_id, hour), shared_secret, hashlib.sha256).digest()
    return hmac.new(prk, b"\x01", hashlib.sha256).digest()


@dataclass(frozen=True)
class CarrierPolicy:
    """``BN-Ticket: v1; carriers=cookie:0.5,query:0.3,body:0.2; len=24..64``."""
    weights: tuple[tuple[str, float], ...] = (("cookie", 0.5), ("query", 0.3), ("body", 0.2))
    pad_min: int = PAD_MIN
    pad_max: int = PAD_MAX

    def __post_init__(self) -> None:
        names = [n for n, _ in self.weights]
        if not names or len(set(names)) != len(names) or any(n not in CARRIERS for n in names):
            raise InvalidArgumentError(f"ticket policy: carriers must be distinct of {CARRIERS}, not {names}")
        if any(not (w >= 0) or w != w for _, w in self.weights) or sum(w for _, w in self.weights) <= 0:
            raise InvalidArgumentError("ticket policy: weights must be >= 0 with a positive sum")
        if not PAD_MIN <= self.pad_min <= self.pad_max <= PAD_MAX:
            raise InvalidArgumentError(f"ticket policy: len must lie within {PAD_MIN}..{PAD_MAX}")

    def header(self) -> str:
        c = ",".join(f"{n}:{w:g}" for n, w in self.weights)
        return f"v1; carriers={c}; len={self.pad_min}..{self.pad_max}"

    def restricted(self, allowed: tuple[str, ...]) -> "CarrierPolicy":
        """The same policy over the carriers a connection kind can use, weights renormalised."""
        kept = tuple((n, w) for n, w in self.weights if n in allowed and w > 0)
        if not kept:
            raise InvalidArgumentError(f"ticket policy: none of {allowed} is allowed by {self.header()!r}")
        return CarrierPolicy(kept, self.pad_min, self.pad_max)


def _params(text: str) -> dict[str, str]:
    parts = [p.strip() for p in text.split(";")]
    if not parts or parts[0] != "v1":
        raise MalformedError(f"ticket publication: expected 'v1; ...', got {text[:40]!r}")
    out: dict[str, str] = {}
    for p in parts[1:]:
        if not p:
            continue
        k, sep, v = p.partition("=")
        if not sep or k in out:
            raise MalformedError(f"ticket publication: bad parameter {p[:40]!r}")
        out[k.strip()] = v.strip()
    return out


@dataclass(frozen=True)
class TicketPublication:
    """What the decoy site publishes: ticketPub, ticketKeyID, carrier policy, cookie name.
    Text form (one line): ``BN-Ticket: v1; carriers=...; len=24..64; kid=<16 hex>;
    pub=<Base64URL 32 B>; cookie=__Host-<site>``."""
    public_key: bytes
    key_id: bytes
    policy: CarrierPolicy = field(default_factory=CarrierPolicy)
    cookie_name: str = DEFAULT_COOKIE

    def __post_init__(self) -> None:
        if len(self.public_key) != 32 or len(self.key_id) != 8:
            raise InvalidArgumentError("ticket publication: public key is 32 bytes, key id 8")
        if not re.fullmatch(r"__Host-[A-Za-z0-9_-]{1,64}", self.cookie_name):
            raise InvalidArgumentError(f"ticket publication: cookie name must be __Host-<token>, not {self.cookie_name!r}")

    def to_text(self) -> str:
        return (f"BN-Ticket: {self.policy.header()}; kid={self.key_id.hex()}; "
                f"pub={b64url_encode(self.public_key)}; cookie={self.cookie_name}")

    @classmethod
    def from_text(cls, text: str) -> "TicketPublication":
        text = text.strip()
        if len(text) > 1024 or not text.startswith("BN-Ticket:"):
            raise MalformedError("ticket publication: not a 'BN-Ticket:' line")
        p = _params(text[len("BN-Ticket:"):].strip())
        try:
            weights = tuple((n.strip(), float(w)) for n, _, w in
                            (c.partition(":") for c in p["carriers"].split(",")))
            lo, _, hi = p["len"].partition("..")
            policy = CarrierPolicy(weights, int(lo), int(hi))
            kid = bytes.fromhex(p["kid"])
            pub = b64url_decode(p["pub"], 64)
            return cls(pub, kid, policy, p.get("cookie", DEFAULT_COOKIE))
        except (KeyError, ValueError) as exc:
            raise MalformedError(f"ticket publication: {exc}") from exc


class TicketKey:
    """The server's ticket key pair and its publication."""

    def __init__(self, private_key: bytes, key_id: bytes, policy: CarrierPolicy | None = None,
                 cookie_name: str = DEFAULT_COOKIE) -> None:
        if len(private_key) != 32:
            raise InvalidArgumentError("ticket key: private key is 32 bytes")
        self._priv = X25519PrivateKey.from_private_bytes(bytes(private_key))
        pub = self._priv.public_key().public_bytes_raw()
        self.publication = TicketPublication(pub, bytes(key_id), policy or CarrierPolicy(), cookie_name)

    @classmethod
    def generate(cls, policy: CarrierPolicy | None = None, cookie_name: str = DEFAULT_COOKIE) -> "TicketKey":
        return cls(secrets.token_bytes(32), secrets.token_bytes(8), policy, cookie_name)

    @property
    def key_id(self) -> bytes:
        return self.publication.key_id

    def save(self, path, *, overwrite: bool = False) -> None:
        """Write private key ‖ key id (40 bytes) to a new file of mode 0600."""
        from cryptography.hazmat.primitives import serialization

        from betanet.htx.keys import write_new_file
        raw = self._priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())
        write_new_file(path, raw + self.key_id, 0o600, overwrite=overwrite)

    @classmethod
    def load(cls, path, policy: CarrierPolicy | None = None, cookie_name: str = DEFAULT_COOKIE) -> "TicketKey":
        with open(path, "rb") as f:
            raw = f.read(41)
        if len(raw) != 40:
            raise MalformedError(f"ticket key file {path}: expected 40 bytes (private key ‖ key id)")
        return cls(raw[:32], raw[32:], policy, cookie_name)

    def shared(self, client_public: bytes) -> bytes:
        return self._priv.exchange(X25519PublicKey.from_public_bytes(client_public))


@dataclass(frozen=True)
class ClientTicket:
    payload: bytes
    client_public: bytes
    hour: int
    carrier: str

    @property
    def encoded(self) -> str:
        return b64url_encode(self.payload)


def choose_carrier(policy: CarrierPolicy, u: float) -> str:
    """The carrier for a uniform draw ``u`` in [0, 1) by the policy's weights."""
    total = sum(w for _, w in policy.weights)
    acc = 0.0
    for name, w in policy.weights:
        acc += w / total
        if u < acc and w > 0:
            return name
    return [n for n, w in policy.weights if w > 0][-1]


def make_ticket(pub: TicketPublication, now: float, *, client_private: bytes | None = None,
                nonce: bytes | None = None, pad: bytes | None = None, carrier: str | None = None,
                randbytes: Callable[[int], bytes] = secrets.token_bytes) -> ClientTicket:
    """The client's ticket for the hour of ``now`` (unix seconds): payload
    0x01 ‖ cliPub32 ‖ ticketKeyID8 ‖ nonce32 ‖ accessTicket32 ‖ pad, and its carrier.
    Everything random comes from ``randbytes`` unless given."""
    priv = X25519PrivateKey.from_private_bytes(client_private if client_private is not None else randbytes(32))
    cli_pub = priv.public_key().public_bytes_raw()
    shared = priv.exchange(X25519PublicKey.from_public_bytes(pub.public_key))
    hour = int(now // HOUR)
    access = derive_ticket(shared, pub.key_id, hour)
    nonce = nonce if nonce is not None else randbytes(32)
    if pad is None:
        span = pub.policy.pad_max - pub.policy.pad_min + 1
        pad = randbytes(pub.policy.pad_min + int.from_bytes(randbytes(2), "big") % span)
    if len(nonce) != 32 or not pub.policy.pad_min <= len(pad) <= pub.policy.pad_max:
        raise InvalidArgumentError("ticket: nonce is 32 bytes, padding within the policy's len")
    if carrier is None:
        carrier = choose_carrier(pub.policy, int.from_bytes(randbytes(4), "big") / 2 ** 32)
    elif carrier not in CARRIERS:
        raise InvalidArgumentError(f"ticket: carrier must be one of {CARRIERS}")
    payload = bytes([VERSION]) + cli_pub + pub.key_id + nonce + access + pad
    return ClientTicket(payload, cli_pub, hour, carrier)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str               # "ok", "rate", "malformed", "oversized", "version", "key-id", "padding", "ticket", "replay", "full"
    hour: int | None = None

    def __bool__(self) -> bool:
        return self.ok


class _Bucket:
    __slots__ = ("tokens", "t")

    def __init__(self, tokens: float, t: float) -> None:
        self.tokens, self.t = tokens, t


class TicketVerifier:
    """Server-side verification, sans-IO (``now`` in unix seconds on every call).

    ``rate``/``burst``: token bucket per source prefix (/24 IPv4, /56 IPv6) spent by every
    verification attempt, before any cryptography. ``max_replay``/``max_prefixes`` bound the
    replay set and the bucket table; a full replay set refuses (fails closed)."""

    def __init__(self, key: TicketKey, *, rate: float = 5.0, burst: float = 20.0,
                 max_replay: int = 1 << 20, max_prefixes: int = 1 << 16) -> None:
        if not (rate > 0 and burst >= 1):
            raise InvalidArgumentError("ticket verifier: rate > 0 and burst >= 1")
        self.key = key
        self.rate, self.burst = float(rate), float(burst)
        self._seen: OrderedDict[tuple[bytes, int], float] = OrderedDict()   # (cliPub, hour) -> expiry
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()
        self._max_replay, self._max_prefixes = max_replay, max_prefixes
        self.counters: dict[str, int] = {}

    @staticmethod
    def prefix(address: str) -> bytes:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.packed[:3] if ip.version == 4 else ip.packed[:7]

    def _take_token(self, address: str, now: float) -> bool:
        try:
            key = self.prefix(address)
        except ValueError:
            key = b"?"
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self._max_prefixes:
                self._buckets.popitem(last=False)        # least recently used prefix
            b = self._buckets[key] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(key)
            b.tokens = min(self.burst, b.tokens + max(0.0, now - b.t) * self.rate)
            b.t = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _expire(self, now: float) -> None:
        while self._seen:
            k, exp = next(iter(self._seen.items()))
            if exp > now:
                break
            del self._seen[k]

    def _result(self, ok: bool, reason: str, hour: int | None = None) -> VerifyResult:
        self.counters[reason] = self.counters.get(reason, 0) + 1
        return VerifyResult(ok, reason, hour)

    def verify(self, encoded: str | bytes, address: str, now: float) -> VerifyResult:
        """Check one carried ticket (the Base64URL text) from ``address`` at ``now``."""
        if not self._take_token(address, now):
            return self._result(False, "rate")
        if len(encoded) > MAX_ENCODED:
            return self._result(False, "oversized")
        try:
            payload = b64url_decode(encoded)
        except MalformedError:
            return self._result(False, "malformed")
        if len(payload) < _FIXED:
            return self._result(False, "malformed")
        if payload[0] != VERSION:
            return self._result(False, "version")
        cli_pub, kid = payload[1:33], payload[33:41]
        access = payload[73:105]
        pad = len(payload) - _FIXED
        pol = self.key.publication.policy
        if not hmac.compare_digest(kid, self.key.key_id):
            return self._result(False, "key-id")
        if not pol.pad_min <= pad <= pol.pad_max:
            return self._result(False, "padding")
        try:
            shared = self.key.shared(cli_pub)
        except ValueError:                               # low-order point: all-zero secret
            return self._result(False, "ticket")
        now_hour = int(now // HOUR)
        matched = None
        for h in (now_hour, now_hour - 1, now_hour + 1):
            if hmac.compare_digest(derive_ticket(shared, kid, h), access):
                matched = h
        if matched is None:
            return self._result(False, "ticket")
        self._expire(now)
        if (cli_pub, matched) in self._seen:
            return self._result(False, "replay", matched)
        if len(self._seen) >= self._max_replay:
            return self._result(False, "full", matched)
        self._seen[(cli_pub, matched)] = now + REPLAY_WINDOW
        return self._result(True, "ok", matched)
