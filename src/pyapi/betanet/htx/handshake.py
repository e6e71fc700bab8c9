"""Noise XK handshake for HTX (sans-IO), run by libbetanet's core (include/betanet/noise.h).

Each handshake message travels as ``length:uint16 BE | message``; payloads are empty.
Initiator: ``-> e, es``; responder: ``<- e, ee``; initiator: ``-> s, se``. The split keys
go from the core straight into the native HTX session (``session()``): they never exist
as Python objects.
"""
from __future__ import annotations

from dataclasses import dataclass

from betanet._native import noise as _noise
from betanet._native.htx import Session
from betanet.errors import (AuthenticationError, BetanetError, CryptoError, LimitExceededError,
                            MalformedError, StateError)
from betanet.htx.keys import key_from, generate_private_key
from betanet.htx.protocol import MAX_HANDSHAKE_MESSAGE, PROLOGUE


@dataclass
class HandshakeResult:
    """What the handshake established besides the keys (which stay in the core): the
    handshake hash and the peer's static public key."""
    handshake_hash: bytes
    remote_static_public: bytes


class NoiseXKHandshake:
    """Drive one side of the handshake: feed received bytes, collect bytes to send."""

    def __init__(self, *, initiator: bool, static_private_key: bytes | None,
                 remote_static_public: bytes | None = None) -> None:
        self.initiator = initiator
        if initiator:
            if remote_static_public is None:
                raise ValueError("the initiator must know the responder's static public key (XK)")
            remote = key_from(remote_static_public)
        else:
            if static_private_key is None:
                raise ValueError("the responder needs its static private key")
            remote = None
        static = key_from(static_private_key) if static_private_key else generate_private_key()
        self._hs = _noise.Handshake(initiator, static, remote, PROLOGUE)
        self._out = bytearray()
        self.result: HandshakeResult | None = None
        if initiator:
            self._out += self._hs.write_frame()

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        """Consume handshake bytes; returns what follows the handshake (frames) once done."""
        if self.result is not None:
            raise StateError("handshake already complete")
        view = memoryview(data).cast("B")
        while self.result is None:
            try:
                done, used = self._hs.read_frame(view)
            except LimitExceededError as exc:
                raise MalformedError(f"htx handshake: message length above {MAX_HANDSHAKE_MESSAGE}") from exc
            except AuthenticationError as exc:
                raise AuthenticationError("htx handshake failed: a message did not authenticate "
                                          "(wrong server key or corrupted message)", exc.code) from exc
            except CryptoError as exc:
                raise CryptoError("htx handshake failed: the peer sent a low-order public key",
                                  exc.code) from exc
            except BetanetError as exc:
                raise MalformedError(f"htx handshake failed: {exc}") from exc
            view = view[used:]
            if not done:
                return b""
            action = self._hs.action
            if action == _noise.ACTION_WRITE:
                self._out += self._hs.write_frame()
                action = self._hs.action
            if action == _noise.ACTION_SPLIT:
                self.result = HandshakeResult(self._hs.handshake_hash, self._hs.remote_static)
        return bytes(view)

    def session(self, **config: int) -> Session:
        """The HTX session for this side (``max_frame``, ``rekey_*``, ``now_ms`` as for
        ``betanet._native.htx.Session``); the handshake's secrets are wiped."""
        if self.result is None:
            raise StateError("htx handshake not complete")
        try:
            return self._hs.htx_session(**config)
        finally:
            self._hs.close()
