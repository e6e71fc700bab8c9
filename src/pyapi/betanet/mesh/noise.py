"""Private messages: Noise_XX_25519_ChaChaPoly_SHA256 sessions with BitChat's framing.

The handshake runs through `noiseprotocol` (empty prologue); its three messages travel
as type 0x10 packets directed to the peer. After it, BitChat frames each transport
message as a 4-byte big-endian nonce followed by ChaCha20-Poly1305 ciphertext and tag,
the nonce in the Noise layout (4 zero bytes, 8-byte little-endian counter), so frames
may arrive out of order; a 1 024-nonce sliding window refuses replays (BitChat's
NoiseCipherState). The plaintext is a NoisePayloadType byte (0x01 private message) then,
for a private message, the PrivateMessagePacket TLVs: 0x00 message id, 0x01 content.
"""
from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from noise.connection import Keypair, NoiseConnection

from betanet.errors import AuthenticationError, MalformedError, ReplayError, StateError

PROTOCOL = b"Noise_XX_25519_ChaChaPoly_SHA256"
NOISE_HANDSHAKE = 0x10
NOISE_ENCRYPTED = 0x11
PRIVATE_MESSAGE = 0x01
WINDOW = 1024
NONCE_LIMIT = 2**32 - 1


class ReplayWindow:
    """Sliding window over received nonces (highest seen and a 1 024-bit map below it)."""

    def __init__(self, size: int = WINDOW) -> None:
        self.size, self.highest, self.bits, self.any = size, 0, 0, False

    def check_and_mark(self, n: int) -> bool:
        if not self.any:
            self.any, self.highest, self.bits = True, n, 1
            return True
        if n > self.highest:
            shift = n - self.highest
            self.bits = ((self.bits << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.highest = n
            return True
        off = self.highest - n
        if off >= self.size or (self.bits >> off) & 1:
            return False
        self.bits |= 1 << off
        return True


def _nonce(n: int) -> bytes:
    return b"\0\0\0\0" + n.to_bytes(8, "little")


class NoiseSession:
    """One XX session with one peer (sans-IO: bytes in, bytes out)."""

    def __init__(self, static_private: bytes, initiator: bool) -> None:
        self._conn = NoiseConnection.from_name(PROTOCOL)
        (self._conn.set_as_initiator if initiator else self._conn.set_as_responder)()
        self._conn.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
        self._conn.start_handshake()
        self.initiator = initiator
        self._send: ChaCha20Poly1305 | None = None
        self._recv: ChaCha20Poly1305 | None = None
        self._n = 0
        self._window = ReplayWindow()
        self._remote: bytes | None = None

    @property
    def established(self) -> bool:
        return self._send is not None

    @property
    def remote_static(self) -> bytes | None:
        """The peer's Noise static key once the handshake is done."""
        return self._remote

    def start(self) -> bytes:
        """Initiator: the first handshake message (e)."""
        return self._conn.write_message()

    def receive_handshake(self, message: bytes) -> bytes | None:
        """Feed a handshake message; returns the reply to send, if any."""
        hs = self._conn.noise_protocol.handshake_state   # noiseprotocol drops it when done
        try:
            self._conn.read_message(message)
        except Exception as exc:                          # noiseprotocol raises several types
            raise AuthenticationError(f"Noise handshake failed: {exc}") from None
        rs = getattr(hs, "rs", None)
        if rs is not None and hasattr(rs, "public_bytes"):   # noiseprotocol's Empty until learnt
            self._remote = bytes(rs.public_bytes)
        reply = None
        if not self._conn.handshake_finished:
            reply = self._conn.write_message()
        if self._conn.handshake_finished:
            self._finish()
        return reply

    def _finish(self) -> None:
        proto = self._conn.noise_protocol
        self._send = ChaCha20Poly1305(proto.cipher_state_encrypt.k)
        self._recv = ChaCha20Poly1305(proto.cipher_state_decrypt.k)

    def encrypt(self, plaintext: bytes) -> bytes:
        if self._send is None:
            raise StateError("Noise session not established")
        if self._n >= NONCE_LIMIT:
            raise StateError("Noise nonce space exhausted; a new handshake is needed")
        n, self._n = self._n, self._n + 1
        return n.to_bytes(4, "big") + self._send.encrypt(_nonce(n), plaintext, b"")

    def decrypt(self, frame: bytes) -> bytes:
        if self._recv is None:
            raise StateError("Noise session not established")
        if len(frame) < 4 + 16:
            raise MalformedError("Noise transport frame shorter than nonce + tag")
        n = int.from_bytes(frame[:4], "big")
        # Authenticate first, then mark the nonce: a forged frame must not move the window.
        if n <= self._window.highest and self._window.any:
            off = self._window.highest - n
            if off >= self._window.size or (self._window.bits >> off) & 1:
                raise ReplayError(f"Noise nonce {n} replayed or too old")
        try:
            out = self._recv.decrypt(_nonce(n), bytes(frame[4:]), b"")
        except InvalidTag:
            raise AuthenticationError("Noise transport frame failed authentication") from None
        if not self._window.check_and_mark(n):
            raise ReplayError(f"Noise nonce {n} replayed")
        return out


def private_message(message_id: str, content: str) -> bytes:
    """NoisePayload for a private message: 0x01, then TLVs 0x00 id, 0x01 content."""
    mid, body = message_id.encode(), content.encode()
    if len(mid) > 255 or len(body) > 255:
        raise ValueError("message id and content are limited to 255 bytes each by the TLV")
    return bytes([PRIVATE_MESSAGE, 0, len(mid)]) + mid + bytes([1, len(body)]) + body


def parse_private_message(payload: bytes) -> tuple[str, str]:
    if not payload or payload[0] != PRIVATE_MESSAGE:
        raise MalformedError("not a private-message NoisePayload")
    fields: dict[int, bytes] = {}
    o = 1
    while o + 2 <= len(payload):
        t, n = payload[o], payload[o + 1]
        if o + 2 + n > len(payload):
            raise MalformedError("private message TLV runs past the end")
        fields[t] = payload[o + 2:o + 2 + n]
        o += 2 + n
    if 0 not in fields or 1 not in fields:
        raise MalformedError("private message lacks id or content")
    return fields[0].decode("utf-8", "replace"), fields[1].decode("utf-8", "replace")
