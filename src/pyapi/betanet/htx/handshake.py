"""Noise XK handshake for HTX (sans-IO), through the noiseprotocol package.

Each handshake message travels as ``length:uint16 BE | message``; payloads are empty.
Initiator: ``-> e, es``; responder: ``<- e, ee``; initiator: ``-> s, se``.
"""
from __future__ import annotations

from dataclasses import dataclass

from noise.connection import NoiseConnection, Keypair

from betanet.errors import AuthenticationError, MalformedError, StateError
from betanet.htx.keys import key_from, generate_private_key
from betanet.htx.protocol import NOISE_NAME, PROLOGUE, MAX_HANDSHAKE_MESSAGE


@dataclass
class HandshakeResult:
    """What the session needs: k1 (initiator->responder), k2, the handshake hash, and
    the peer's static public key."""
    k1: bytes
    k2: bytes
    handshake_hash: bytes
    remote_static_public: bytes


class NoiseXKHandshake:
    """Drive one side of the handshake: feed received bytes, collect bytes to send."""

    def __init__(self, *, initiator: bool, static_private_key: bytes | None,
                 remote_static_public: bytes | None = None) -> None:
        self.initiator = initiator
        self._noise = NoiseConnection.from_name(NOISE_NAME)
        if initiator:
            if remote_static_public is None:
                raise ValueError("the initiator must know the responder's static public key (XK)")
            self._noise.set_as_initiator()
            self._noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, key_from(remote_static_public))
        else:
            if static_private_key is None:
                raise ValueError("the responder needs its static private key")
            self._noise.set_as_responder()
        self._noise.set_keypair_from_private_bytes(
            Keypair.STATIC, key_from(static_private_key) if static_private_key else generate_private_key())
        self._noise.set_prologue(PROLOGUE)
        self._noise.start_handshake()
        self._buf = bytearray()
        self._out = bytearray()
        self._step = 0          # messages processed (sent or received), 0..3
        self.result: HandshakeResult | None = None
        if initiator:
            self._send()

    def _send(self) -> None:
        msg = self._noise.write_message(b"")
        self._out += len(msg).to_bytes(2, "big") + msg
        self._step += 1

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def receive_data(self, data: bytes) -> bytes:
        """Consume handshake bytes; returns what follows the handshake (frames) once done."""
        if self.result is not None:
            raise StateError("handshake already complete")
        self._buf += data
        while self.result is None and len(self._buf) >= 2:
            n = int.from_bytes(self._buf[:2], "big")
            if n > MAX_HANDSHAKE_MESSAGE:
                raise MalformedError(f"htx handshake: message length {n} above {MAX_HANDSHAKE_MESSAGE}")
            if len(self._buf) < 2 + n:
                break
            msg = bytes(self._buf[2:2 + n])
            del self._buf[:2 + n]
            state = self._noise.noise_protocol.handshake_state   # dropped by noise when done
            try:
                self._noise.read_message(msg)
            except Exception as exc:   # noiseprotocol raises its own classes and InvalidTag
                raise AuthenticationError(f"htx handshake failed: {exc.__class__.__name__} "
                                          "(wrong server key or corrupted message)") from exc
            self._step += 1
            if self.initiator and self._step == 2:
                self._send()
            elif not self.initiator and self._step == 1:
                self._send()
            if self._noise.handshake_finished:
                self._finish(state)
        if self.result is not None:
            rest, self._buf = bytes(self._buf), bytearray()
            return rest
        return b""

    def _finish(self, state) -> None:
        proto = self._noise.noise_protocol
        enc, dec = proto.cipher_state_encrypt.k, proto.cipher_state_decrypt.k
        k1, k2 = (enc, dec) if self.initiator else (dec, enc)
        remote = state.rs.public_bytes
        self.result = HandshakeResult(bytes(k1), bytes(k2), bytes(proto.handshake_hash), bytes(remote))
        # Drop noiseprotocol's copies of the keys: the session owns them from here.
        proto.cipher_state_encrypt = proto.cipher_state_decrypt = None
