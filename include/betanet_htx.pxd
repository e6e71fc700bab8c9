# Cython declarations of the types and constants of include/betanet/htx.h — the one copy,
# cimported by the core (src/core/htx.pyx) and the wrapper (betanet._native.htx).
# Functions are declared by each side itself: the core defines them, the wrapper calls them.

from libc.stdint cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_HTX_KEY_BYTES, BETANET_HTX_NS_BYTES, BETANET_HTX_HASH_BYTES, BETANET_HTX_TAG_BYTES
        BETANET_HTX_MAX_HEADER_BYTES, BETANET_HTX_OVERHEAD_BYTES, BETANET_HTX_KEY_UPDATE_BYTES
        BETANET_HTX_DEFAULT_MAX_FRAME_BYTES, BETANET_HTX_MAX_FRAME_LIMIT_BYTES
        BETANET_HTX_STREAM, BETANET_HTX_PING, BETANET_HTX_CLOSE, BETANET_HTX_KEY_UPDATE
        BETANET_HTX_WINDOW_UPDATE, BETANET_HTX_INITIATOR, BETANET_HTX_RESPONDER
    ctypedef struct betanet_htx_config_t:
        uint32_t max_frame
        uint64_t rekey_bytes
        uint64_t rekey_frames
        uint64_t rekey_ms
    ctypedef struct betanet_htx_stats_t:
        uint64_t send_counter, recv_counter, send_bytes, recv_bytes
        uint64_t send_epoch, recv_epoch, frames_sent, frames_received
    ctypedef struct betanet_htx_frame_t:
        int type
        uint64_t stream_id
        size_t length
    ctypedef struct betanet_htx_session_t
