"""Typing stub for betanet._native.noise (the Noise XK handshake of libbetanet)."""
from typing import Any, Union

from betanet._native.htx import Session

Buffer = Union[bytes, bytearray, memoryview, Any]   # any object with the buffer protocol

KEY_BYTES: int
HASH_BYTES: int
TAG_BYTES: int
MAX_MESSAGE_BYTES: int
MAX_FRAME_BYTES: int
HTX_PROLOGUE: bytes
HTX_MAX_MESSAGE_BYTES: int
INITIATOR: int
RESPONDER: int
ACTION_WRITE: int
ACTION_READ: int
ACTION_SPLIT: int
ACTION_DONE: int

class Handshake:
    initiator: bool
    def __init__(self, initiator: bool, static_private_key: Buffer,
                 remote_static_public: Buffer | None = None, prologue: Buffer = ..., *,
                 ephemeral_private: Buffer | None = None) -> None: ...
    def close(self) -> None: ...
    @property
    def action(self) -> int: ...
    @property
    def pending(self) -> int: ...
    def write_message(self, payload: Buffer = b"") -> bytes: ...
    def read_message(self, message: Buffer) -> bytes: ...
    def write_frame(self) -> bytes: ...
    def read_frame(self, data: Buffer) -> tuple[bool, int]: ...
    @property
    def handshake_hash(self) -> bytes: ...
    @property
    def remote_static(self) -> bytes: ...
    def split(self) -> tuple[bytes, bytes, bytes]: ...
    def htx_session(self, *, max_frame: int = 0, rekey_bytes: int = 0, rekey_frames: int = 0,
                    rekey_ms: int = 0, now_ms: int = 0) -> Session: ...
