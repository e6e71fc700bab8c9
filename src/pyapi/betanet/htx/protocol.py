"""HTX constants: frame types, flags, CLOSE codes, defaults (docs/htx.md pins them)."""
from __future__ import annotations

import enum

from betanet._native import htx as _n
from betanet._native import noise as _noise

PROLOGUE = _noise.HTX_PROLOGUE          # b"betanet/htx/1.1.0"
NOISE_NAME = b"Noise_XK_25519_ChaChaPoly_SHA256"
ALPN = "betanet-htx/1.1"             # TLS and QUIC application protocol name
MAX_HANDSHAKE_MESSAGE = _noise.HTX_MAX_MESSAGE_BYTES  # 1024; larger prefixes refused before buffering
INITIAL_WINDOW = 65_535             # per stream and per connection, both directions
DEFAULT_MAX_FRAME = _n.DEFAULT_MAX_FRAME
DEFAULT_STREAM_WINDOW = 1 << 20     # receive windows we grant by WINDOW_UPDATE right away
DEFAULT_CONNECTION_WINDOW = 4 << 20
DEFAULT_MAX_STREAMS = 1024          # concurrent streams the peer may have open towards us
MAX_WINDOW = (1 << 62) - 1
DEFAULT_HANDSHAKE_TIMEOUT = 10.0    # seconds
DEFAULT_IDLE_TIMEOUT = 60.0         # seconds without any frame from the peer
# Hostile-peer bounds of the asyncio layer (docs/limits.md).
DEFAULT_CLOSE_GRACE = 5.0           # seconds an ended connection may take to flush, then abort
DEFAULT_CONTROL_BACKLOG = 256 * 1024  # bytes of replies queued while the peer does not read
DEFAULT_MAX_CONNECTIONS = 1024      # per server, handshaking or established
DEFAULT_MAX_HANDSHAKES = 128        # per server, transport + Noise handshakes in progress
DEFAULT_MAX_HANDSHAKES_PER_HOST = 16  # of those, from one source address


class FrameType(enum.IntEnum):
    STREAM = _n.STREAM
    PING = _n.PING
    CLOSE = _n.CLOSE
    KEY_UPDATE = _n.KEY_UPDATE
    WINDOW_UPDATE = _n.WINDOW_UPDATE


FLAG_FIN = 0x01
FLAG_RESET = 0x02
FLAG_REPLY = 0x01


class CloseCode(enum.IntEnum):
    """The code of a CLOSE frame (and of a stream RESET)."""
    NO_ERROR = 0x0000            # graceful close / stream cancelled
    PROTOCOL_ERROR = 0x0001      # malformed plaintext, bad flags, stream id parity, ...
    INTERNAL_ERROR = 0x0002      # the sender failed on its own
    FLOW_CONTROL_ERROR = 0x0003  # a window was overrun
    FRAME_SIZE_ERROR = 0x0004    # a length above the receiver's max frame
    DECRYPT_ERROR = 0x0005       # a frame failed authentication (corrupt, replayed, reordered)
    STREAM_STATE_ERROR = 0x0006  # data after FIN, frames on a stream we never opened
    IDLE_TIMEOUT = 0x0007        # nothing heard from the peer for the idle timeout
    UNKNOWN_FRAME_TYPE = 0x0008  # a type byte above 4
    REFUSED_STREAM = 0x0009      # (RESET code) the peer opened more streams than we allow


def code_name(code: int) -> str:
    try:
        return CloseCode(code).name
    except ValueError:
        return f"0x{code:04x}"
