#!/usr/bin/env python3
"""Reed-Solomon FEC through libbetanet's C ABI from Python, with cffi in ABI mode.

Loads the very shared library the betanet package ships (``betanet.get_library()``),
declares the few functions it needs, encodes 4 data shards into 2 parity shards, drops
two shards, rebuilds them, and checks every byte. Exit status 0 on success.
"""
import sys

import cffi

import betanet

ffi = cffi.FFI()
ffi.cdef("""
    typedef struct betanet_fec betanet_fec_t;
    int betanet_init(void);
    const char *betanet_strerror(int code);
    const char *betanet_version_string(void);
    int betanet_fec_new(unsigned int k, unsigned int m, betanet_fec_t **out);
    void betanet_fec_free(betanet_fec_t *fec);
    int betanet_fec_encode(betanet_fec_t *fec, const uint8_t *const *data,
                           uint8_t *const *parity, size_t len);
    int betanet_fec_reconstruct(betanet_fec_t *fec, uint8_t *const *shards,
                                const uint8_t *present, size_t len);
""")
lib = ffi.dlopen(betanet.get_library())


def check(rc: int, what: str) -> None:
    if rc != 0:
        sys.exit(f"{what}: {ffi.string(lib.betanet_strerror(rc)).decode()}")


def main() -> int:
    k, m, length = 4, 2, 1000
    check(lib.betanet_init(), "betanet_init")
    out = ffi.new("betanet_fec_t **")
    check(lib.betanet_fec_new(k, m, out), "betanet_fec_new")
    fec = ffi.gc(out[0], lib.betanet_fec_free)

    buffers = [ffi.new("uint8_t[]", length) for _ in range(k + m)]
    for i in range(k):
        buffers[i][0:length] = bytes((i * 37 + x * 11) % 256 for x in range(length))
    shards = ffi.new("uint8_t *[]", buffers)
    check(lib.betanet_fec_encode(fec, shards, shards + k, length), "betanet_fec_encode")
    original = [bytes(ffi.buffer(b)) for b in buffers]

    lost = [0, k]                       # one data and one parity shard
    present = bytearray(b"\x01" * (k + m))
    for i in lost:
        present[i] = 0
        ffi.memmove(buffers[i], bytes(length), length)
    check(lib.betanet_fec_reconstruct(fec, shards, bytes(present), length), "betanet_fec_reconstruct")
    if [bytes(ffi.buffer(b)) for b in buffers] != original:
        sys.exit("reconstruct: shards differ")
    version = ffi.string(lib.betanet_version_string()).decode()
    print(f"ok: rebuilt shards {lost} with libbetanet {version} through cffi ABI mode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
