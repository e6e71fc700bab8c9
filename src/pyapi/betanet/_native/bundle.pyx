# betanet._native.bundle — the bundle section of betanet.h (BPv7, RFC 9171).
# Inputs are read in place from any C-contiguous byte buffer; a View keeps its buffer alive
# and describes it with offsets (zero-copy). The GIL is released around CRCs, encoding,
# fragmentation and reassembly of large buffers.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBuffer_FillInfo, PyBUF_SIMPLE
cimport cython
from betanet._native._common cimport *
from betanet_bundle cimport *

cdef extern from "betanet.h" nogil:
    int betanet_bundle_limits_default(betanet_bundle_limits_t *out)
    const char *betanet_bundle_error_string(int error)
    int betanet_bundle_parse(const uint8_t *buf, size_t len, const betanet_bundle_limits_t *limits,
                             betanet_bundle_block_t *blocks, size_t blocks_cap, betanet_bundle_view_t *view)
    int betanet_bundle_policy(betanet_bundle_view_t *view, const uint64_t *known_types, size_t n_known,
                              uint32_t *verdict, uint32_t *reason)
    size_t betanet_bundle_rewrite_bytes(const betanet_bundle_view_t *view)
    int betanet_bundle_rewrite(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                               uint8_t *out, size_t out_cap, size_t *out_len)
    int betanet_bundle_crc(uint32_t crc_type, const uint8_t *data, size_t len, uint32_t *out)
    size_t betanet_bundle_encoded_bytes(const betanet_bundle_primary_spec_t *primary,
                                        const betanet_bundle_block_spec_t *blocks, size_t nblocks)
    int betanet_bundle_encode(const betanet_bundle_primary_spec_t *primary,
                              const betanet_bundle_block_spec_t *blocks, size_t nblocks,
                              uint8_t *out, size_t out_cap, size_t *out_len)
    size_t betanet_bundle_eid_encoded_bytes(const betanet_bundle_eid_spec_t *eid)
    int betanet_bundle_eid_encode(const betanet_bundle_eid_spec_t *eid, uint8_t *out, size_t out_cap,
                                  size_t *out_len)
    int betanet_bundle_id(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                          uint8_t *id, size_t id_len)
    size_t betanet_bundle_fragment_bytes(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                                         uint64_t offset, uint64_t frag_len)
    int betanet_bundle_fragment(const uint8_t *buf, size_t len, const betanet_bundle_view_t *view,
                                uint64_t offset, uint64_t frag_len, uint8_t *out, size_t out_cap,
                                size_t *out_len)
    int betanet_bundle_reasm_new(uint64_t total_adu_length, size_t max_adu_bytes, size_t max_ranges,
                                 betanet_bundle_reasm_t **out)
    void betanet_bundle_reasm_free(betanet_bundle_reasm_t *r)
    int betanet_bundle_reasm_add(betanet_bundle_reasm_t *r, const uint8_t *buf, size_t len,
                                 const betanet_bundle_view_t *view)
    size_t betanet_bundle_reasm_bytes(const betanet_bundle_reasm_t *r)
    int betanet_bundle_reasm_finish(const betanet_bundle_reasm_t *r, uint8_t *out, size_t out_cap,
                                    size_t *out_len)
    int betanet_bundle_status_decode(const uint8_t *rec, size_t len, size_t max_eid_bytes,
                                     betanet_bundle_status_report_t *out)
    size_t betanet_bundle_status_bytes(const betanet_bundle_status_report_t *report,
                                       const betanet_bundle_eid_spec_t *source)
    int betanet_bundle_status_encode(const betanet_bundle_status_report_t *report,
                                     const betanet_bundle_eid_spec_t *source,
                                     uint8_t *out, size_t out_cap, size_t *out_len)

DEFAULT_MAX_BYTES = BETANET_BUNDLE_DEFAULT_MAX_BYTES
DEFAULT_MAX_BLOCKS = BETANET_BUNDLE_DEFAULT_MAX_BLOCKS
DEFAULT_MAX_EID = BETANET_BUNDLE_DEFAULT_MAX_EID
ID_BYTES = BETANET_BUNDLE_ID_BYTES
ADU_ID_BYTES = BETANET_BUNDLE_ADU_ID_BYTES

cdef size_t GIL_FREE_BYTES = 16384       # release the GIL for buffers at least this large
cdef uint8_t EMPTY[1]


cdef inline const uint8_t *ptr(const uint8_t[::1] view) noexcept:
    return &view[0] if view.shape[0] else EMPTY


def error_string(int error) -> str:
    return betanet_bundle_error_string(error).decode()


def crc(uint32_t crc_type, data) -> int:
    cdef const uint8_t[::1] dv = data
    cdef const uint8_t *p = ptr(dv)
    cdef size_t n = dv.shape[0]
    cdef uint32_t out = 0
    cdef int rc
    with nogil:
        rc = betanet_bundle_crc(crc_type, p, n, &out)
    check(rc, "betanet_bundle_crc")
    return out


cdef tuple eid_tuple(const betanet_bundle_eid_t *e):
    return (e.scheme, e.is_none, e.node, e.service, e.ssp_off, e.ssp_len, e.off, e.len)


cdef class View:
    """A parsed bundle: offsets into `buffer` (kept alive and pinned, never copied)."""
    cdef readonly object buffer
    cdef Py_buffer pybuf
    cdef bint has_pybuf
    cdef const uint8_t *p
    cdef size_t n
    cdef betanet_bundle_view_t v
    cdef betanet_bundle_block_t *blocks
    cdef betanet_bundle_block_t inline_blocks[8]   # most bundles: no allocation at all

    def __cinit__(self):
        self.blocks = NULL
        self.has_pybuf = False

    def __dealloc__(self):
        if self.blocks != NULL and self.blocks != self.inline_blocks:
            free(self.blocks)
        if self.has_pybuf:
            PyBuffer_Release(&self.pybuf)
            self.has_pybuf = False

    @property
    def length(self) -> int:
        return self.v.len

    @property
    def primary(self) -> tuple:
        cdef betanet_bundle_primary_t *p = &self.v.primary
        return (p.flags, p.crc_type, eid_tuple(&p.destination), eid_tuple(&p.source),
                eid_tuple(&p.report_to), p.creation_ms, p.sequence, p.lifetime_ms,
                p.fragment_offset, p.total_adu_length, p.off, p.len)

    @property
    def nblocks(self) -> int:
        return self.v.nblocks

    @property
    def payload_index(self) -> int:
        return self.v.payload

    def block(self, size_t i) -> tuple:
        cdef betanet_bundle_block_t *b
        if i >= self.v.nblocks:
            raise IndexError(i)
        b = &self.blocks[i]
        return (b.type, b.number, b.flags, b.crc_type, b.status, b.action, b.data_off, b.data_len,
                b.off, b.len)

    @property
    def payload_span(self) -> tuple:
        cdef betanet_bundle_block_t *b = &self.blocks[self.v.payload]
        return (b.data_off, b.data_len)

    def payload(self):
        """The payload as a memoryview of the buffer (no copy)."""
        cdef betanet_bundle_block_t *b = &self.blocks[self.v.payload]
        return memoryview(self.buffer)[b.data_off:b.data_off + b.data_len]

    @property
    def extensions(self) -> tuple:
        """(previous node EID tuple or None, age ms or None, (limit, count) or None)."""
        return (eid_tuple(&self.v.previous_node) if self.v.has_previous_node else None,
                self.v.age_ms if self.v.has_age else None,
                (self.v.hop_limit, self.v.hop_count) if self.v.has_hop_count else None)

    def policy(self, known_types=None) -> tuple:
        """RFC 9171 §4.2.4: (verdict bits, reason); sets each block's action."""
        cdef uint64_t *kt = NULL
        cdef size_t n = 0, i
        cdef uint32_t verdict = 0, reason = 0
        cdef int rc
        if known_types is not None:
            types = list(known_types)
            n = len(types)
            kt = <uint64_t *>malloc(max(n, 1) * sizeof(uint64_t))
            if kt == NULL:
                raise MemoryError()
            for i in range(n):
                kt[i] = types[i]
        try:
            rc = betanet_bundle_policy(&self.v, kt if known_types is not None else NULL, n,
                                       &verdict, &reason)
        finally:
            free(kt)
        check(rc, "betanet_bundle_policy")
        return verdict, reason

    def rewrite(self) -> bytes:
        cdef size_t n = betanet_bundle_rewrite_bytes(&self.v), w = 0
        out = PyBytes_FromStringAndSize(NULL, n)
        check(betanet_bundle_rewrite(self.p, self.n, &self.v, <uint8_t *>PyBytes_AS_STRING(out), n, &w),
              "betanet_bundle_rewrite")
        return out

    def bundle_id(self) -> bytes:
        cdef uint8_t out[64]
        check(betanet_bundle_id(self.p, self.n, &self.v, out, 64), "betanet_bundle_id")
        return out[:64]

    def fragment(self, uint64_t offset, uint64_t length) -> bytes:
        cdef size_t need, w = 0
        cdef int rc
        need = betanet_bundle_fragment_bytes(self.p, self.n, &self.v, offset, length)
        if need == 0:
            from betanet.errors import InvalidArgumentError
            if self.v.primary.flags & BETANET_BUNDLE_F_MUST_NOT_FRAGMENT:
                raise InvalidArgumentError("the bundle is flagged must-not-fragment")
            raise InvalidArgumentError(f"fragment range [{offset}, {offset}+{length}) is empty or "
                                       f"beyond the payload")
        out = PyBytes_FromStringAndSize(NULL, need)
        cdef uint8_t *o = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            rc = betanet_bundle_fragment(self.p, self.n, &self.v, offset, length, o, need, &w)
        check(rc, "betanet_bundle_fragment")
        return out

    def fragment_size(self, uint64_t offset, uint64_t length) -> int:
        return betanet_bundle_fragment_bytes(self.p, self.n, &self.v, offset, length)


def parse(data, size_t max_bytes=BETANET_BUNDLE_DEFAULT_MAX_BYTES,
          size_t max_blocks=BETANET_BUNDLE_DEFAULT_MAX_BLOCKS,
          size_t max_eid_bytes=BETANET_BUNDLE_DEFAULT_MAX_EID, bint strict=False,
          bint prefix=False) -> View:
    """Parse one bundle; raises MalformedError / LimitExceededError with the detail."""
    cdef View view = View.__new__(View)
    cdef betanet_bundle_limits_t lim
    cdef size_t cap
    cdef int rc
    view.buffer = data
    if PyBytes_CheckExact(data):
        view.p = <const uint8_t *>PyBytes_AS_STRING(data)
        view.n = <size_t>PyBytes_GET_SIZE(data)
    else:
        PyObject_GetBuffer(data, &view.pybuf, PyBUF_SIMPLE)
        view.has_pybuf = True
        view.p = <const uint8_t *>view.pybuf.buf
        view.n = <size_t>view.pybuf.len
    lim.max_bytes = max_bytes
    lim.max_blocks = max_blocks
    lim.max_eid_bytes = max_eid_bytes
    lim.flags = (BETANET_BUNDLE_PARSE_STRICT if strict else 0) | (BETANET_BUNDLE_PARSE_PREFIX if prefix else 0)
    view.blocks = view.inline_blocks
    cap = 8 if max_blocks > 8 else max_blocks
    if view.n >= GIL_FREE_BYTES:
        with nogil:
            rc = betanet_bundle_parse(view.p, view.n, &lim, view.blocks, cap, &view.v)
    else:
        rc = betanet_bundle_parse(view.p, view.n, &lim, view.blocks, cap, &view.v)
    if rc == BETANET_E_LIMIT and view.v.error == BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS and max_blocks > 8:
        # more blocks than the inline array: the heap, bounded by the input (a block >= 6 bytes)
        cap = view.n // 6 + 1
        if cap > max_blocks:
            cap = max_blocks
        view.blocks = <betanet_bundle_block_t *>malloc(cap * sizeof(betanet_bundle_block_t))
        if view.blocks == NULL:
            raise MemoryError()
        with nogil:
            rc = betanet_bundle_parse(view.p, view.n, &lim, view.blocks, cap, &view.v)
    if rc < 0:
        from betanet.errors import error_for
        err = error_for(rc, f"bundle: {betanet_bundle_error_string(view.v.error).decode()} "
                            f"(at byte {view.v.error_offset})")
        err.detail = view.v.error
        err.offset = view.v.error_offset
        raise err
    return view


DEF BATCH_INLINE = 8   # blocks per bundle in the batch's shared array (more: the heap)


@cython.final
@cython.freelist(256)
cdef class Payload:
    """A payload inside its bundle's buffer: a read-only bytes-like object (buffer protocol,
    len, bytes(), ==, hash) that keeps the buffer alive and copies nothing. One small object
    (from a free list) instead of a memoryview and its slice: what makes batches cheap."""
    cdef object owner
    cdef const uint8_t *p
    cdef Py_ssize_t n

    def __getbuffer__(self, Py_buffer *buf, int flags):
        PyBuffer_FillInfo(buf, self, <void *>self.p, self.n, 1, flags)  # read-only

    def __releasebuffer__(self, Py_buffer *buf):
        pass

    def __len__(self) -> int:
        return self.n

    def __bytes__(self) -> bytes:
        return PyBytes_FromStringAndSize(<const char *>self.p, self.n)

    def tobytes(self) -> bytes:
        return PyBytes_FromStringAndSize(<const char *>self.p, self.n)

    def __eq__(self, other):
        try:
            return memoryview(self) == memoryview(other).cast("B")
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.tobytes())

    def __repr__(self) -> str:
        return f"<bundle payload, {self.n} bytes>"


cdef inline Payload make_payload(object owner, const uint8_t *base, betanet_bundle_view_t *v):
    cdef betanet_bundle_block_t *b = &v.blocks[v.payload]
    cdef Payload out = Payload.__new__(Payload)
    out.owner = owner
    out.p = base + b.data_off
    out.n = <Py_ssize_t>b.data_len
    return out


cdef class Batch:
    """Many bundles parsed in one call: one C array of views over the callers' buffers (kept
    alive, never copied). Nothing per bundle is built in Python until asked for: a failed
    bundle is only a status code, a payload a memoryview made on access."""
    cdef readonly list buffers
    cdef Py_ssize_t n
    cdef const uint8_t **ptrs
    cdef size_t *lens
    cdef betanet_bundle_view_t *views
    cdef betanet_bundle_block_t *blocks
    cdef betanet_bundle_block_t **extra
    cdef int *rcs
    cdef readonly Py_ssize_t failed

    def __cinit__(self):
        self.ptrs = NULL
        self.lens = NULL
        self.views = NULL
        self.blocks = NULL
        self.extra = NULL
        self.rcs = NULL

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.extra != NULL:
            for i in range(self.n):
                free(self.extra[i])
            free(self.extra)
        free(self.ptrs)
        free(self.lens)
        free(self.views)
        free(self.blocks)
        free(self.rcs)

    def __len__(self) -> int:
        return self.n

    cdef inline Py_ssize_t _index(self, Py_ssize_t i) except -1:
        if i < 0:
            i += self.n
        if i < 0 or i >= self.n:
            raise IndexError(i)
        return i

    def status(self, Py_ssize_t i) -> tuple:
        """(return code, BETANET_BUNDLE_ERR_* detail, error offset); (0, 0, 0) when parsed."""
        i = self._index(i)
        if self.rcs[i] >= 0:
            return (0, 0, 0)
        return (self.rcs[i], self.views[i].error, self.views[i].error_offset)

    def error(self, Py_ssize_t i):
        """The exception parse() would have raised for bundle i, or None."""
        i = self._index(i)
        if self.rcs[i] >= 0:
            return None
        from betanet.errors import error_for
        err = error_for(self.rcs[i], f"bundle {i}: "
                        f"{betanet_bundle_error_string(self.views[i].error).decode()} "
                        f"(at byte {self.views[i].error_offset})")
        err.detail = self.views[i].error
        err.offset = self.views[i].error_offset
        return err

    cdef inline betanet_bundle_view_t *_ok(self, Py_ssize_t i) except NULL:
        i = self._index(i)
        if self.rcs[i] < 0:
            raise self.error(i)
        return &self.views[i]

    def payload(self, Py_ssize_t i) -> Payload:
        """Bundle i's payload (a Payload over its buffer); raises its parse error."""
        cdef betanet_bundle_view_t *v = self._ok(i)
        i = self._index(i)
        return make_payload(self.buffers[i], self.ptrs[i], v)

    def payloads(self) -> list:
        """Every payload (a Payload), None where the bundle failed to parse."""
        cdef Py_ssize_t i
        cdef list bufs = self.buffers
        cdef list out = [None] * self.n
        for i in range(self.n):
            if self.rcs[i] >= 0:
                out[i] = make_payload(bufs[i], self.ptrs[i], &self.views[i])
        return out

    def primary(self, Py_ssize_t i) -> tuple:
        """Bundle i's primary block, as View.primary."""
        cdef betanet_bundle_primary_t *p = &self._ok(i).primary
        return (p.flags, p.crc_type, eid_tuple(&p.destination), eid_tuple(&p.source),
                eid_tuple(&p.report_to), p.creation_ms, p.sequence, p.lifetime_ms,
                p.fragment_offset, p.total_adu_length, p.off, p.len)

    def destination(self, Py_ssize_t i) -> tuple:
        return eid_tuple(&self._ok(i).primary.destination)

    def source(self, Py_ssize_t i) -> tuple:
        return eid_tuple(&self._ok(i).primary.source)

    def view(self, Py_ssize_t i) -> View:
        """Bundle i as a stand-alone View (its own copy of the few bytes of description)."""
        cdef betanet_bundle_view_t *v = self._ok(i)
        cdef View out = View.__new__(View)
        cdef size_t k
        i = self._index(i)
        out.buffer = self.buffers[i]
        out.p = self.ptrs[i]
        out.n = self.lens[i]
        out.v = v[0]
        if v.nblocks <= 8:
            out.blocks = out.inline_blocks
        else:
            out.blocks = <betanet_bundle_block_t *>malloc(v.nblocks * sizeof(betanet_bundle_block_t))
            if out.blocks == NULL:
                raise MemoryError()
        for k in range(v.nblocks):
            out.blocks[k] = v.blocks[k]
        out.v.blocks = out.blocks
        return out


def parse_many(buffers, size_t max_bytes=BETANET_BUNDLE_DEFAULT_MAX_BYTES,
               size_t max_blocks=BETANET_BUNDLE_DEFAULT_MAX_BLOCKS,
               size_t max_eid_bytes=BETANET_BUNDLE_DEFAULT_MAX_EID, bint strict=False) -> Batch:
    """Parse every buffer of `buffers` (bytes read in place; other buffer types are copied
    to bytes once) in one call with the GIL released; a bundle that fails is recorded, not
    raised (Batch.error(i))."""
    cdef Batch b = Batch.__new__(Batch)
    cdef betanet_bundle_limits_t lim
    cdef Py_ssize_t i, n
    cdef size_t cap, total = 0
    cdef int rc
    cdef list bufs = [x if PyBytes_CheckExact(x) else bytes(x) for x in buffers]
    n = len(bufs)
    b.buffers = bufs
    b.n = n
    b.failed = 0
    if n == 0:
        return b
    b.ptrs = <const uint8_t **>malloc(n * sizeof(uint8_t *))
    b.lens = <size_t *>malloc(n * sizeof(size_t))
    b.views = <betanet_bundle_view_t *>malloc(n * sizeof(betanet_bundle_view_t))
    b.blocks = <betanet_bundle_block_t *>malloc(n * BATCH_INLINE * sizeof(betanet_bundle_block_t))
    b.rcs = <int *>malloc(n * sizeof(int))
    if b.ptrs == NULL or b.lens == NULL or b.views == NULL or b.blocks == NULL or b.rcs == NULL:
        raise MemoryError()
    for i in range(n):
        b.ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(bufs[i])
        b.lens[i] = <size_t>PyBytes_GET_SIZE(bufs[i])
        total += b.lens[i]
    lim.max_bytes = max_bytes
    lim.max_blocks = max_blocks
    lim.max_eid_bytes = max_eid_bytes
    lim.flags = BETANET_BUNDLE_PARSE_STRICT if strict else 0
    cap = BATCH_INLINE if max_blocks > BATCH_INLINE else max_blocks
    with nogil:
        for i in range(n):
            b.rcs[i] = betanet_bundle_parse(b.ptrs[i], b.lens[i], &lim, &b.blocks[i * BATCH_INLINE],
                                            cap, &b.views[i])
    for i in range(n):
        rc = b.rcs[i]
        if rc == BETANET_E_LIMIT and b.views[i].error == BETANET_BUNDLE_ERR_TOO_MANY_BLOCKS \
                and max_blocks > BATCH_INLINE:
            # more blocks than the shared array holds: this one gets its own, bounded by its
            # size (a block is at least 6 bytes) and the limit
            if b.extra == NULL:
                b.extra = <betanet_bundle_block_t **>calloc(n, sizeof(betanet_bundle_block_t *))
                if b.extra == NULL:
                    raise MemoryError()
            cap = b.lens[i] // 6 + 1
            if cap > max_blocks:
                cap = max_blocks
            b.extra[i] = <betanet_bundle_block_t *>malloc(cap * sizeof(betanet_bundle_block_t))
            if b.extra[i] == NULL:
                raise MemoryError()
            rc = b.rcs[i] = betanet_bundle_parse(b.ptrs[i], b.lens[i], &lim, b.extra[i], cap,
                                                 &b.views[i])
        if rc < 0:
            b.failed += 1
    return b


cdef const uint8_t *bytes_of(obj, size_t *n, list keep) except? NULL:
    # Read a buffer in place: bytes directly, anything else through a memoryview kept alive
    # by `keep` for the duration of the call.
    cdef const uint8_t[::1] mv
    if PyBytes_CheckExact(obj):
        n[0] = <size_t>PyBytes_GET_SIZE(obj)
        return <const uint8_t *>PyBytes_AS_STRING(obj)
    mv = obj
    keep.append(mv)
    n[0] = mv.shape[0]
    return ptr(mv)


cdef int fill_eid(betanet_bundle_eid_spec_t *s, tuple eid, list keep) except -1:
    # eid = (scheme, node, service, ssp bytes)
    s.scheme = eid[0]
    s.node = eid[1]
    s.service = eid[2]
    s.ssp = bytes_of(eid[3], &s.ssp_len, keep)
    return 0


def encode(tuple primary, list blocks) -> bytes:
    """primary = (flags, crc_type, dest, source, report_to, creation_ms, sequence, lifetime_ms,
    fragment_offset, total_adu_length), each EID (scheme, node, service, ssp bytes);
    blocks = [(type, number, flags, crc_type, data buffer), ...] with the payload last."""
    cdef betanet_bundle_primary_spec_t p
    cdef betanet_bundle_block_spec_t *bs
    cdef size_t nb = len(blocks), i, need, w = 0, total = 0
    cdef const uint8_t[::1] dv
    cdef int rc
    cdef list keep = []
    if nb == 0:
        from betanet.errors import InvalidArgumentError
        raise InvalidArgumentError("a bundle needs a payload block")
    p.flags = primary[0]
    p.crc_type = primary[1]
    fill_eid(&p.destination, primary[2], keep)
    fill_eid(&p.source, primary[3], keep)
    fill_eid(&p.report_to, primary[4], keep)
    p.creation_ms = primary[5]
    p.sequence = primary[6]
    p.lifetime_ms = primary[7]
    p.fragment_offset = primary[8]
    p.total_adu_length = primary[9]
    bs = <betanet_bundle_block_spec_t *>malloc(nb * sizeof(betanet_bundle_block_spec_t))
    if bs == NULL:
        raise MemoryError()
    try:
        for i in range(nb):
            t = blocks[i]
            bs[i].type = t[0]
            bs[i].number = t[1]
            bs[i].flags = t[2]
            bs[i].crc_type = t[3]
            bs[i].data = bytes_of(t[4], &bs[i].data_len, keep)
            total += bs[i].data_len
        need = betanet_bundle_encoded_bytes(&p, bs, nb)
        if need == 0:
            from betanet.errors import InvalidArgumentError
            raise InvalidArgumentError(
                "invalid bundle: check the EIDs (dtn SSP '//node/...', printable ASCII), CRC "
                "types (0-2), block numbers (unique, non-zero) and that exactly one payload block "
                "(type 1, number 1) comes last and fits its fragment's ADU")
        out = PyBytes_FromStringAndSize(NULL, need)
        o = <uint8_t *>PyBytes_AS_STRING(out)
        if total >= GIL_FREE_BYTES:
            with nogil:
                rc = betanet_bundle_encode(&p, bs, nb, o, need, &w)
        else:
            rc = betanet_bundle_encode(&p, bs, nb, o, need, &w)
        check(rc, "betanet_bundle_encode")
        return out
    finally:
        free(bs)


def eid_encode(tuple eid) -> bytes:
    cdef betanet_bundle_eid_spec_t s
    cdef list keep = []
    cdef size_t n, w = 0
    fill_eid(&s, eid, keep)
    n = betanet_bundle_eid_encoded_bytes(&s)
    if n == 0:
        from betanet.errors import InvalidArgumentError
        raise InvalidArgumentError(f"invalid endpoint ID {eid!r}")
    out = PyBytes_FromStringAndSize(NULL, n)
    check(betanet_bundle_eid_encode(&s, <uint8_t *>PyBytes_AS_STRING(out), n, &w), "betanet_bundle_eid_encode")
    return out


cdef class Reassembler:
    """Collects the fragments of one ADU (betanet_bundle_reasm_*)."""
    cdef betanet_bundle_reasm_t *r

    def __cinit__(self, uint64_t total_adu_length, size_t max_adu_bytes, size_t max_ranges=256):
        self.r = NULL
        check(betanet_bundle_reasm_new(total_adu_length, max_adu_bytes, max_ranges, &self.r),
              "betanet_bundle_reasm_new")

    def __dealloc__(self):
        betanet_bundle_reasm_free(self.r)
        self.r = NULL

    def add(self, View view) -> bool:
        cdef int rc
        cdef const uint8_t *p = view.p
        cdef size_t n = view.n
        with nogil:
            rc = betanet_bundle_reasm_add(self.r, p, n, &view.v)
        check(rc, "betanet_bundle_reasm_add")
        return rc == 1

    @property
    def complete(self) -> bool:
        return betanet_bundle_reasm_bytes(self.r) != 0

    def finish(self) -> bytes:
        cdef size_t n = betanet_bundle_reasm_bytes(self.r), w = 0
        cdef int rc
        if n == 0:
            check(BETANET_E_STATE, "betanet_bundle_reasm_finish: the ADU is not complete")
        out = PyBytes_FromStringAndSize(NULL, n)
        cdef uint8_t *o = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            rc = betanet_bundle_reasm_finish(self.r, o, n, &w)
        check(rc, "betanet_bundle_reasm_finish")
        return out


def status_decode(data, size_t max_eid_bytes=BETANET_BUNDLE_DEFAULT_MAX_EID) -> tuple:
    """(asserted, timed, times[4], reason, source EID tuple, creation_ms, sequence,
    is_fragment, fragment_offset, payload_length); EID offsets are into data."""
    cdef const uint8_t[::1] dv = data
    cdef betanet_bundle_status_report_t s
    check(betanet_bundle_status_decode(ptr(dv), dv.shape[0], max_eid_bytes, &s),
          "betanet_bundle_status_decode")
    return (s.asserted, s.timed, (s.times[0], s.times[1], s.times[2], s.times[3]), s.reason,
            eid_tuple(&s.source), s.creation_ms, s.sequence, s.is_fragment, s.fragment_offset,
            s.payload_length)


def status_encode(uint32_t asserted, uint32_t timed, times, uint64_t reason, tuple source,
                  uint64_t creation_ms, uint64_t sequence, fragment=None) -> bytes:
    cdef betanet_bundle_status_report_t s
    cdef betanet_bundle_eid_spec_t src
    cdef list keep = []
    cdef size_t n, w = 0
    cdef int i
    memset(&s, 0, sizeof(s))
    s.asserted = asserted
    s.timed = timed
    for i in range(4):
        s.times[i] = times[i]
    s.reason = reason
    s.creation_ms = creation_ms
    s.sequence = sequence
    if fragment is not None:
        s.is_fragment = 1
        s.fragment_offset = fragment[0]
        s.payload_length = fragment[1]
    fill_eid(&src, source, keep)
    n = betanet_bundle_status_bytes(&s, &src)
    if n == 0:
        from betanet.errors import InvalidArgumentError
        raise InvalidArgumentError("invalid status report (a time for an unasserted status, or a bad EID)")
    out = PyBytes_FromStringAndSize(NULL, n)
    check(betanet_bundle_status_encode(&s, &src, <uint8_t *>PyBytes_AS_STRING(out), n, &w),
          "betanet_bundle_status_encode")
    return out
