# betanet._native.fec — the FEC section of betanet.h (include/betanet/fec.h).
#
# Shards arrive either as a list of buffers (bytes, bytearray, memoryview, NumPy...) or
# as one C-contiguous 2-D uint8 array; either way C reads and writes them in place
# through their buffer protocol, with the GIL released. The friendly API is betanet.fec.
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE, PyBUF_C_CONTIGUOUS
from libc.stdint cimport uint8_t
from libc.string cimport memset
from betanet._native._common cimport *

cdef extern from "betanet.h" nogil:
    ctypedef struct betanet_fec_t:
        pass
    int BETANET_FEC_MAX_SHARDS
    int betanet_fec_new(unsigned int k, unsigned int m, betanet_fec_t **out)
    void betanet_fec_free(betanet_fec_t *fec)
    int betanet_fec_encode(betanet_fec_t *fec, const uint8_t *const *data,
                           uint8_t *const *parity, size_t len)
    int betanet_fec_reconstruct(betanet_fec_t *fec, uint8_t *const *shards,
                                const uint8_t *present, size_t len)
    int betanet_fec_correct(betanet_fec_t *fec, uint8_t *const *shards, const uint8_t *present,
                            size_t len, uint8_t *corrupted, size_t *n_corrupted)
    const char *betanet_fec_kernel()

MAX_SHARDS = BETANET_FEC_MAX_SHARDS
cdef uint8_t _empty[1]


def kernel() -> str:
    return betanet_fec_kernel().decode()


cdef class _Views:
    # Buffer views over a list of shards (released on dealloc) and their pointer array.
    cdef Py_buffer views[255]
    cdef uint8_t *ptrs[255]
    cdef int count
    cdef Py_ssize_t length

    def __cinit__(self):
        self.count = 0
        self.length = -1

    cdef int add(self, object obj, bint writable, int index) except -1:
        cdef int flags = PyBUF_C_CONTIGUOUS | (PyBUF_WRITABLE if writable else 0)
        try:
            PyObject_GetBuffer(obj, &self.views[self.count], flags)
        except (TypeError, BufferError) as exc:
            from betanet.errors import InvalidArgumentError
            need = "a writable, contiguous buffer" if writable else "a contiguous bytes-like buffer"
            raise InvalidArgumentError(
                f"shard {index}: expected {need}, got {type(obj).__name__}", BETANET_E_INVALID) from exc
        self.ptrs[self.count] = <uint8_t *>self.views[self.count].buf
        if self.ptrs[self.count] == NULL:          # empty buffers may have no storage
            self.ptrs[self.count] = _empty
        self.count += 1
        cdef Py_ssize_t n = self.views[self.count - 1].len
        if self.length < 0:
            self.length = n
        elif n != self.length:
            from betanet.errors import InvalidArgumentError
            raise InvalidArgumentError(
                f"shard {index} has {n} bytes, the others {self.length}: shards must be equal length",
                BETANET_E_INVALID)
        return 0

    def __dealloc__(self):
        cdef int i
        for i in range(self.count):
            PyBuffer_Release(&self.views[i])


cdef class Codec:
    """Handle over betanet_fec_t (k data + m parity shards)."""
    cdef betanet_fec_t *h
    cdef readonly int k, m, n

    def __cinit__(self, int k, int m):
        self.h = NULL
        if k < 1 or m < 1 or k + m > BETANET_FEC_MAX_SHARDS:
            from betanet.errors import InvalidArgumentError
            raise InvalidArgumentError(
                f"need 1 <= k, 1 <= m and k + m <= {BETANET_FEC_MAX_SHARDS}; got k={k}, m={m}",
                BETANET_E_INVALID)
        check(betanet_fec_new(k, m, &self.h), "betanet_fec_new")
        self.k, self.m, self.n = k, m, k + m

    def __dealloc__(self):
        if self.h != NULL:
            betanet_fec_free(self.h)
            self.h = NULL

    def encode(self, list data, list parity) -> None:
        """C encode: data (k buffers) -> parity (m writable buffers), equal lengths."""
        cdef _Views v = _Views()
        cdef int i, rc
        if len(data) != self.k or len(parity) != self.m:
            _count_error(len(data), self.k, "data") if len(data) != self.k else _count_error(len(parity), self.m, "parity")
        for i in range(self.k):
            v.add(data[i], False, i)
        for i in range(self.m):
            v.add(parity[i], True, self.k + i)
        with nogil:
            rc = betanet_fec_encode(self.h, <const uint8_t *const *>v.ptrs, v.ptrs + self.k, <size_t>v.length)
        check(rc, "betanet_fec_encode")

    def reconstruct(self, list shards, bytes present) -> None:
        """C reconstruct: n buffers; present[i] == 0 marks missing ones (written)."""
        cdef _Views v = self._shards(shards, present, False)
        cdef const uint8_t *p = present
        cdef int rc
        with nogil:
            rc = betanet_fec_reconstruct(self.h, v.ptrs, p, <size_t>v.length)
        check(rc, "betanet_fec_reconstruct")

    def correct(self, list shards, bytes present) -> list:
        """C correct: n writable buffers repaired in place; returns corrupted indices."""
        cdef _Views v = self._shards(shards, present, True)
        cdef const uint8_t *p = present
        cdef uint8_t bad[255]
        cdef size_t nbad = 0
        cdef int rc
        with nogil:
            rc = betanet_fec_correct(self.h, v.ptrs, p, <size_t>v.length, bad, &nbad)
        check(rc, "betanet_fec_correct")
        return [bad[i] for i in range(nbad)]

    def encode_array(self, const uint8_t[:, ::1] data, uint8_t[:, ::1] parity) -> None:
        """C encode over 2-D arrays: data (k, L) -> parity (m, L)."""
        cdef const uint8_t *dp[255]
        cdef uint8_t *pp[255]
        cdef int i, rc
        cdef size_t L = data.shape[1]
        if data.shape[0] != self.k or parity.shape[0] != self.m or parity.shape[1] != data.shape[1]:
            from betanet.errors import InvalidArgumentError
            raise InvalidArgumentError(
                f"expected data ({self.k}, L) and parity ({self.m}, L); got ({data.shape[0]}, {data.shape[1]}) "
                f"and ({parity.shape[0]}, {parity.shape[1]})", BETANET_E_INVALID)
        if L == 0:
            return
        for i in range(self.k):
            dp[i] = &data[i, 0]
        for i in range(self.m):
            pp[i] = &parity[i, 0]
        with nogil:
            rc = betanet_fec_encode(self.h, dp, pp, L)
        check(rc, "betanet_fec_encode")

    def repair_array(self, uint8_t[:, ::1] shards, bytes present, bint correct) -> list:
        """C reconstruct (correct=False) or correct over an (n, L) array, in place."""
        cdef uint8_t *sp[255]
        cdef const uint8_t *p = present
        cdef uint8_t bad[255]
        cdef size_t nbad = 0
        cdef int i, rc
        cdef size_t L = shards.shape[1]
        if shards.shape[0] != self.n or len(present) != self.n:
            from betanet.errors import InvalidArgumentError
            raise InvalidArgumentError(
                f"expected an ({self.n}, L) array and {self.n} presence flags; got "
                f"({shards.shape[0]}, {shards.shape[1]}) and {len(present)}", BETANET_E_INVALID)
        if L == 0:
            if sum(1 for b in present if b) < self.k:
                check(BETANET_E_UNCORRECTABLE, "fewer than k shards present")
            return []
        for i in range(self.n):
            sp[i] = &shards[i, 0]
        with nogil:
            if correct:
                rc = betanet_fec_correct(self.h, sp, p, L, bad, &nbad)
            else:
                rc = betanet_fec_reconstruct(self.h, sp, p, L)
        check(rc, "betanet_fec_correct" if correct else "betanet_fec_reconstruct")
        return [bad[i] for i in range(nbad)]

    cdef _Views _shards(self, list shards, bytes present, bint all_writable):
        cdef _Views v = _Views()
        cdef int i
        if len(shards) != self.n or len(present) != self.n:
            _count_error(len(shards), self.n, "shards")
        for i in range(self.n):
            v.add(shards[i], all_writable or not present[i], i)
        if v.length < 0:
            v.length = 0
        return v


def _count_error(got, want, what):
    from betanet.errors import InvalidArgumentError
    raise InvalidArgumentError(f"expected {want} {what} buffers, got {got}", BETANET_E_INVALID)
