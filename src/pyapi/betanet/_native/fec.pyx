# betanet._native.fec — the FEC section of betanet.h (include/betanet/fec.h).
#
# Shards arrive either as a list of buffers (bytes, bytearray, memoryview, NumPy...) or
# as one C-contiguous 2-D uint8 array; either way C reads and writes them in place
# through their buffer protocol, with the GIL released. The friendly API is betanet.fec.
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE,
                             PyBUF_C_CONTIGUOUS, PyBUF_FORMAT)
from libc.stdint cimport uint8_t
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK)
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.string cimport memset
from betanet._native._common cimport *
cimport numpy as cnp

cnp.import_array()

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

from betanet.errors import ArgumentTypeError, InvalidArgumentError


class ShardTypeError(ArgumentTypeError):
    """A shard or shard container of the wrong type (e.g. not uint8, not 2-D)."""


cdef int _rows(object obj, Py_buffer *view, int rows, bint writable, str what,
               uint8_t **base, size_t *length) except -1:
    # A C-contiguous 2-D uint8 array with `rows` rows (one shard per row): its first byte
    # and row length. Returns 1 when a buffer view was taken (release it), 0 when a plain
    # ndarray was read directly (the common case; no buffer export needed).
    cdef cnp.ndarray arr
    if type(obj) is cnp.ndarray:
        arr = <cnp.ndarray>obj
        if (cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_TYPE(arr) == cnp.NPY_UINT8
                and cnp.PyArray_IS_C_CONTIGUOUS(arr) and (not writable or cnp.PyArray_ISWRITEABLE(arr))):
            if cnp.PyArray_DIMS(arr)[0] != rows:
                raise InvalidArgumentError(
                    f"{what}: expected {rows} rows (shards), got {cnp.PyArray_DIMS(arr)[0]}", BETANET_E_INVALID)
            base[0] = <uint8_t *>cnp.PyArray_DATA(arr)
            length[0] = <size_t>cnp.PyArray_DIMS(arr)[1]
            return 0
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    try:
        PyObject_GetBuffer(obj, view, flags)
    except (TypeError, BufferError, ValueError) as exc:
        raise ShardTypeError(
            f"{what}: expected a C-contiguous{' writable' if writable else ''} 2-D uint8 array, "
            f"got {type(obj).__name__} ({exc})", BETANET_E_INVALID) from None
    if view.ndim != 2 or view.itemsize != 1 or (view.format != NULL and view.format[0] != b'B'):
        fmt = view.format.decode() if view.format != NULL else "B"
        nd = view.ndim
        PyBuffer_Release(view)
        raise ShardTypeError(f"{what}: expected a 2-D uint8 array, got {nd}-D of format {fmt!r}",
                             BETANET_E_INVALID)
    if view.shape[0] != rows:
        got = view.shape[0]
        PyBuffer_Release(view)
        raise InvalidArgumentError(f"{what}: expected {rows} rows (shards), got {got}", BETANET_E_INVALID)
    base[0] = <uint8_t *>view.buf
    length[0] = <size_t>view.shape[1]
    return 1


cdef bytes _flags(object present, int n):
    # Presence flags as n bytes (non-zero = present): from None (all present), bytes, or
    # any sequence of truth values (list of bools, NumPy bool array, ...).
    cdef bytes flags
    cdef char *buf
    cdef Py_ssize_t i = 0
    if present is None:
        return b"\x01" * n
    if type(present) is bytes:
        flags = <bytes>present
    else:
        if len(present) != n:
            raise InvalidArgumentError(f"present must have {n} entries, got {len(present)}", BETANET_E_INVALID)
        flags = PyBytes_FromStringAndSize(NULL, n)
        buf = PyBytes_AS_STRING(flags)
        for item in present:
            if i >= n:
                break
            buf[i] = 1 if item else 0
            i += 1
    if len(flags) != n:
        raise InvalidArgumentError(f"present must have {n} entries, got {len(flags)}", BETANET_E_INVALID)
    return flags


def kernel() -> str:
    """Name of the GF(2^8) kernel libbetanet uses now (betanet_fec_kernel)."""
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
            need = "a writable, contiguous buffer" if writable else "a contiguous bytes-like buffer"
            raise ShardTypeError(
                f"shard {index}: expected {need}, got {type(obj).__name__}", BETANET_E_INVALID) from None
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
    """Handle over betanet_fec_t (k data + m parity shards).

    The C handle serves one thread at a time (its decoding-matrix cache and scratch are
    state); the calls run without the GIL, so a per-object lock serialises them."""
    cdef betanet_fec_t *h
    cdef PyThread_type_lock lock
    cdef readonly int k, m, n

    def __cinit__(self, int k, int m):
        self.h = NULL
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError("cannot allocate a lock")
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
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

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
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
            rc = betanet_fec_encode(self.h, <const uint8_t *const *>v.ptrs, v.ptrs + self.k, <size_t>v.length)
            PyThread_release_lock(self.lock)
        check(rc, "betanet_fec_encode")

    def reconstruct(self, list shards, present) -> None:
        """C reconstruct: n buffers; present[i] == 0 marks missing ones (written)."""
        cdef bytes flags = _flags(present, self.n)
        cdef _Views v = self._shards(shards, flags, False)
        cdef const uint8_t *p = flags
        cdef int rc
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
            rc = betanet_fec_reconstruct(self.h, v.ptrs, p, <size_t>v.length)
            PyThread_release_lock(self.lock)
        check(rc, "betanet_fec_reconstruct")

    def correct(self, list shards, present) -> list:
        """C correct: n writable buffers repaired in place; returns corrupted indices."""
        cdef bytes flags = _flags(present, self.n)
        cdef _Views v = self._shards(shards, flags, True)
        cdef const uint8_t *p = flags
        cdef uint8_t bad[255]
        cdef size_t nbad = 0
        cdef int rc
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
            rc = betanet_fec_correct(self.h, v.ptrs, p, <size_t>v.length, bad, &nbad)
            PyThread_release_lock(self.lock)
        check(rc, "betanet_fec_correct")
        return [bad[i] for i in range(nbad)]

    def encode_array(self, data, out=None):
        """C encode over 2-D arrays: data (k, L) -> out (m, L), allocated when None."""
        cdef Py_buffer dv, pv
        cdef const uint8_t *dp[255]
        cdef uint8_t *pp[255]
        cdef uint8_t *dbase
        cdef uint8_t *pbase
        cdef int i, rc
        cdef size_t L, PL
        cdef int dheld = _rows(data, &dv, self.k, False, "data", &dbase, &L)
        cdef int pheld = 0
        try:
            if out is None:
                out = cnp.PyArray_EMPTY(2, [self.m, <cnp.npy_intp>L], cnp.NPY_UINT8, 0)
            pheld = _rows(out, &pv, self.m, True, "out", &pbase, &PL)
            if PL != L:
                raise InvalidArgumentError(f"out has shards of {PL} bytes, data of {L}", BETANET_E_INVALID)
            if L == 0:
                return out
            for i in range(self.k):
                dp[i] = dbase + i * L
            for i in range(self.m):
                pp[i] = pbase + i * L
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
                rc = betanet_fec_encode(self.h, dp, pp, L)
                PyThread_release_lock(self.lock)
            check(rc, "betanet_fec_encode")
        finally:
            if pheld:
                PyBuffer_Release(&pv)
            if dheld:
                PyBuffer_Release(&dv)
        return out

    def repair_array(self, shards, present, bint correct) -> list:
        """C reconstruct (correct=False) or correct over an (n, L) array, in place.
        present: None (all present), bytes-like flags, or a sequence of booleans."""
        cdef Py_buffer sv
        cdef uint8_t *sp[255]
        cdef bytes flags = _flags(present, self.n)
        cdef const uint8_t *p = flags
        cdef uint8_t bad[255]
        cdef uint8_t *base
        cdef size_t nbad = 0
        cdef int i, rc
        cdef size_t L
        cdef int held = _rows(shards, &sv, self.n, True, "shards", &base, &L)
        try:
            for i in range(self.n):
                sp[i] = base + i * L if L else _empty
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
                if correct:
                    rc = betanet_fec_correct(self.h, sp, p, L, bad, &nbad)
                else:
                    rc = betanet_fec_reconstruct(self.h, sp, p, L)
                PyThread_release_lock(self.lock)
            check(rc, "betanet_fec_correct" if correct else "betanet_fec_reconstruct")
        finally:
            if held:
                PyBuffer_Release(&sv)
        if nbad == 0:
            return []
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
