# fec.pyx — systematic Reed-Solomon FEC over GF(2^8) (include/betanet/fec.h, docs/fec.md).
#
# Every byte column of the k data + m parity shards is a codeword of the narrow-sense RS
# code (poly 0x11d, alpha = 2, fcr = 0); shard j is the coefficient of x^(n-1-j).
# Encoding and erasure decoding are matrix products over GF(2^8) applied to whole shards
# ("regions"); mat_apply() runs them with the widest kernel the CPU allows (fec_simd.h)
# and finishes tails with the scalar code here. Silent corruption is located once per
# call from the syndromes (Berlekamp-Massey on a failing column), verified on every
# column, then repaired as erasures.
#
# Module-level code never runs in libbetanet (DESIGN.md): the GF tables are C constants.

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memset, memcpy
from bnt cimport *
from bnt_internal cimport bnt_alloc, bnt_free, bnt_cpu

cdef extern from "betanet.h" nogil:
    ctypedef struct betanet_fec_t:
        pass
    int betanet_init()

cdef extern from *:
    """
    #define bswap64(x) __builtin_bswap64(x)
    """
    uint64_t bswap64(uint64_t x) nogil

cdef extern from "fec_simd.h" nogil:
    ctypedef size_t (*bnt_gf_kernel)(int nin, const uint8_t *nib, const uint64_t *gfni,
                                     const uint8_t *const *inp, uint8_t *const *outp,
                                     size_t off, size_t length)
    bnt_gf_kernel bnt_gf_kernel_for(int isa, int g)
    int BNT_GF_MAX_GROUP

# GF(2^8) with polynomial 0x11d: exp[i] = 2^i (doubled so exp[log a + log b] needs no
# reduction), log[2^i] = i (log[0] unused).
cdef extern from *:
    """
    static const uint8_t bnt_gf_exp[512] = {
        1, 2, 4, 8, 16, 32, 64, 128, 29, 58, 116, 232, 205, 135, 19, 38,
        76, 152, 45, 90, 180, 117, 234, 201, 143, 3, 6, 12, 24, 48, 96, 192,
        157, 39, 78, 156, 37, 74, 148, 53, 106, 212, 181, 119, 238, 193, 159, 35,
        70, 140, 5, 10, 20, 40, 80, 160, 93, 186, 105, 210, 185, 111, 222, 161,
        95, 190, 97, 194, 153, 47, 94, 188, 101, 202, 137, 15, 30, 60, 120, 240,
        253, 231, 211, 187, 107, 214, 177, 127, 254, 225, 223, 163, 91, 182, 113, 226,
        217, 175, 67, 134, 17, 34, 68, 136, 13, 26, 52, 104, 208, 189, 103, 206,
        129, 31, 62, 124, 248, 237, 199, 147, 59, 118, 236, 197, 151, 51, 102, 204,
        133, 23, 46, 92, 184, 109, 218, 169, 79, 158, 33, 66, 132, 21, 42, 84,
        168, 77, 154, 41, 82, 164, 85, 170, 73, 146, 57, 114, 228, 213, 183, 115,
        230, 209, 191, 99, 198, 145, 63, 126, 252, 229, 215, 179, 123, 246, 241, 255,
        227, 219, 171, 75, 150, 49, 98, 196, 149, 55, 110, 220, 165, 87, 174, 65,
        130, 25, 50, 100, 200, 141, 7, 14, 28, 56, 112, 224, 221, 167, 83, 166,
        81, 162, 89, 178, 121, 242, 249, 239, 195, 155, 43, 86, 172, 69, 138, 9,
        18, 36, 72, 144, 61, 122, 244, 245, 247, 243, 251, 235, 203, 139, 11, 22,
        44, 88, 176, 125, 250, 233, 207, 131, 27, 54, 108, 216, 173, 71, 142, 1,
        2, 4, 8, 16, 32, 64, 128, 29, 58, 116, 232, 205, 135, 19, 38, 76,
        152, 45, 90, 180, 117, 234, 201, 143, 3, 6, 12, 24, 48, 96, 192, 157,
        39, 78, 156, 37, 74, 148, 53, 106, 212, 181, 119, 238, 193, 159, 35, 70,
        140, 5, 10, 20, 40, 80, 160, 93, 186, 105, 210, 185, 111, 222, 161, 95,
        190, 97, 194, 153, 47, 94, 188, 101, 202, 137, 15, 30, 60, 120, 240, 253,
        231, 211, 187, 107, 214, 177, 127, 254, 225, 223, 163, 91, 182, 113, 226, 217,
        175, 67, 134, 17, 34, 68, 136, 13, 26, 52, 104, 208, 189, 103, 206, 129,
        31, 62, 124, 248, 237, 199, 147, 59, 118, 236, 197, 151, 51, 102, 204, 133,
        23, 46, 92, 184, 109, 218, 169, 79, 158, 33, 66, 132, 21, 42, 84, 168,
        77, 154, 41, 82, 164, 85, 170, 73, 146, 57, 114, 228, 213, 183, 115, 230,
        209, 191, 99, 198, 145, 63, 126, 252, 229, 215, 179, 123, 246, 241, 255, 227,
        219, 171, 75, 150, 49, 98, 196, 149, 55, 110, 220, 165, 87, 174, 65, 130,
        25, 50, 100, 200, 141, 7, 14, 28, 56, 112, 224, 221, 167, 83, 166, 81,
        162, 89, 178, 121, 242, 249, 239, 195, 155, 43, 86, 172, 69, 138, 9, 18,
        36, 72, 144, 61, 122, 244, 245, 247, 243, 251, 235, 203, 139, 11, 22, 44,
        88, 176, 125, 250, 233, 207, 131, 27, 54, 108, 216, 173, 71, 142, 1, 2,
    };
    static const uint8_t bnt_gf_log[256] = {
        0, 0, 1, 25, 2, 50, 26, 198, 3, 223, 51, 238, 27, 104, 199, 75,
        4, 100, 224, 14, 52, 141, 239, 129, 28, 193, 105, 248, 200, 8, 76, 113,
        5, 138, 101, 47, 225, 36, 15, 33, 53, 147, 142, 218, 240, 18, 130, 69,
        29, 181, 194, 125, 106, 39, 249, 185, 201, 154, 9, 120, 77, 228, 114, 166,
        6, 191, 139, 98, 102, 221, 48, 253, 226, 152, 37, 179, 16, 145, 34, 136,
        54, 208, 148, 206, 143, 150, 219, 189, 241, 210, 19, 92, 131, 56, 70, 64,
        30, 66, 182, 163, 195, 72, 126, 110, 107, 58, 40, 84, 250, 133, 186, 61,
        202, 94, 155, 159, 10, 21, 121, 43, 78, 212, 229, 172, 115, 243, 167, 87,
        7, 112, 192, 247, 140, 128, 99, 13, 103, 74, 222, 237, 49, 197, 254, 24,
        227, 165, 153, 119, 38, 184, 180, 124, 17, 68, 146, 217, 35, 32, 137, 46,
        55, 63, 209, 91, 149, 188, 207, 205, 144, 135, 151, 178, 220, 252, 190, 97,
        242, 86, 211, 171, 20, 42, 93, 158, 132, 60, 57, 83, 71, 109, 65, 162,
        31, 45, 67, 216, 183, 123, 164, 118, 196, 23, 73, 236, 127, 12, 111, 246,
        108, 161, 59, 82, 41, 157, 85, 170, 251, 96, 134, 177, 187, 204, 62, 90,
        203, 89, 95, 176, 156, 169, 160, 81, 11, 245, 22, 235, 122, 117, 44, 215,
        79, 174, 213, 233, 230, 231, 173, 232, 116, 214, 244, 234, 168, 80, 88, 175,
    };
    """
    const uint8_t bnt_gf_exp[512]
    const uint8_t bnt_gf_log[256]

cdef enum:
    TABLES_NIB = 1
    TABLES_GFNI = 2

cdef enum:
    MAXN = 255
    CACHE_SLOTS = 16
    CORRECT_BLOCK = 2048     # columns per syndrome block in correct()
    COLUMN_BLOCK = 16384     # bytes of each input per pass in mat_apply()

# A matrix over GF(2^8) applied to regions, with the tables every kernel needs.
ctypedef struct gf_mat:
    int nout
    int nin
    int built            # TABLES_* bits: which kernel tables are filled (built lazily)
    uint8_t *coef        # nout * nin
    uint8_t *nib         # nout * nin * 32: split-nibble product tables (PSHUFB)
    uint64_t *gfni       # nout * nin: bit matrices for vgf2p8affineqb
    uint8_t *in_idx      # nin shard indices the inputs are (decoding matrices)
    uint8_t *out_idx     # nout shard indices the outputs are

ctypedef struct cache_slot:
    uint64_t key[4]      # bit j set: shard j present
    uint64_t used        # LRU tick; 0 = empty
    gf_mat *mat

ctypedef struct fec_state:
    int k
    int m
    int n
    uint64_t tick
    gf_mat *enc          # m x k: parity = enc * data
    gf_mat *syn          # m x n: syndromes S_i = sum_j c_j X_j^i (lazy, for correct)
    gf_mat *forney       # up to m x m: Forney check rows for the current errata (lazy)
    uint8_t *scratch     # correct(): S and R blocks and a zero row (lazy)
    cache_slot cache[CACHE_SLOTS]


# ---- GF(2^8) arithmetic ------------------------------------------------------------

cdef inline uint8_t gf_mul(uint8_t a, uint8_t b) noexcept nogil:
    if a == 0 or b == 0:
        return 0
    return bnt_gf_exp[<int>bnt_gf_log[a] + <int>bnt_gf_log[b]]

cdef inline uint8_t gf_inv(uint8_t a) noexcept nogil:
    return bnt_gf_exp[255 - <int>bnt_gf_log[a]]      # a != 0

cdef inline uint8_t gf_pow2(long e) noexcept nogil:
    # alpha^e for any integer e
    e %= 255
    if e < 0:
        e += 255
    return bnt_gf_exp[e]


# ---- matrices ------------------------------------------------------------------------

cdef inline size_t align64(size_t x) noexcept nogil:
    return (x + 63) & ~(<size_t>63)

cdef gf_mat *mat_new(int nout, int nin) noexcept nogil:
    cdef size_t cells = <size_t>nout * nin
    cdef size_t head = align64(sizeof(gf_mat))
    cdef size_t o_nib = head
    cdef size_t o_gfni = o_nib + align64(cells * 32)
    cdef size_t o_coef = o_gfni + align64(cells * 8)
    cdef size_t o_idx = o_coef + align64(cells)
    cdef uint8_t *raw = <uint8_t *>bnt_alloc(o_idx + align64(<size_t>nin + nout) + 64)
    if raw == NULL:
        return NULL
    # bnt_alloc guarantees 16-byte alignment; the kernels use unaligned loads anyway.
    cdef gf_mat *mt = <gf_mat *>raw
    mt.nout = nout
    mt.nin = nin
    mt.nib = raw + o_nib
    mt.gfni = <uint64_t *>(raw + o_gfni)
    mt.coef = raw + o_coef
    mt.in_idx = raw + o_idx
    mt.out_idx = mt.in_idx + nin
    return mt

cdef inline uint8_t gf_xtime(uint8_t a) noexcept nogil:
    # a * 2 (= a * alpha)
    return <uint8_t>((a << 1) ^ (0x1d if a & 0x80 else 0))

cdef void mat_tables(gf_mat *mt, int which) noexcept nogil:
    # Fill the kernel tables (TABLES_* bits) from the coefficients; mat_apply asks only
    # for those of the kernel it runs. Multiplying by c is GF(2)-linear, so
    # everything follows from p[j] = c * 2^j: nibble tables by XOR of those, and the
    # vgf2p8affineqb matrix as the transposed bit matrix (byte 7-i holds, as bit j, bit i
    # of p[j]). Cheap enough for a fresh decoding matrix on every erasure pattern.
    cdef size_t t, cells = <size_t>mt.nout * mt.nin
    cdef int x, j
    cdef uint8_t p[8]
    cdef uint8_t *lo
    cdef uint8_t *hi
    cdef uint64_t a, d
    for t in range(cells):
        p[0] = mt.coef[t]
        for j in range(1, 8):
            p[j] = gf_xtime(p[j - 1])
        if which & TABLES_NIB:
            lo = mt.nib + 32 * t
            hi = lo + 16
            lo[0] = 0
            hi[0] = 0
            for j in range(4):
                for x in range(1 << j):
                    lo[(1 << j) + x] = lo[x] ^ p[j]
                    hi[(1 << j) + x] = hi[x] ^ p[j + 4]
        if not (which & TABLES_GFNI):
            continue
        a = 0
        for j in range(8):
            a |= (<uint64_t>p[j]) << (8 * j)           # bit 8j+i = bit i of p[j]
        # 8x8 bit transpose (Hacker's Delight): bit 8j+i <-> bit 8i+j
        d = (a ^ (a >> 7)) & 0x00AA00AA00AA00AAULL
        a = a ^ d ^ (d << 7)
        d = (a ^ (a >> 14)) & 0x0000CCCC0000CCCCULL
        a = a ^ d ^ (d << 14)
        d = (a ^ (a >> 28)) & 0x00000000F0F0F0F0ULL
        a = a ^ d ^ (d << 28)
        mt.gfni[t] = bswap64(a)                        # row i goes to byte 7-i
    mt.built |= which


cdef int current_isa() noexcept nogil:
    cdef unsigned int f = bnt_cpu()
    if (f & BETANET_CPU_AVX512) and (f & BETANET_CPU_GFNI) and bnt_gf_kernel_for(3, 1) != NULL:
        return 3
    if (f & BETANET_CPU_AVX2) and bnt_gf_kernel_for(2, 1) != NULL:
        return 2
    if (f & BETANET_CPU_SSSE3) and bnt_gf_kernel_for(1, 1) != NULL:
        return 1
    return 0


cdef void scalar_dot(const gf_mat *mt, int o0, int g, const uint8_t *const *inp,
                     uint8_t *const *outp, size_t off, size_t length) noexcept nogil:
    # The portable path (and the SIMD kernels' tails): outputs o0 .. o0+g-1.
    cdef int o, i
    cdef size_t x
    cdef uint8_t c, b
    cdef int lc
    cdef uint8_t *dst
    cdef const uint8_t *src
    if length == 0:
        return
    for o in range(o0, o0 + g):
        dst = outp[o] + off
        memset(dst, 0, length)
        for i in range(mt.nin):
            c = mt.coef[o * mt.nin + i]
            if c == 0:
                continue
            src = inp[i] + off
            if c == 1:
                for x in range(length):
                    dst[x] ^= src[x]
            else:
                lc = bnt_gf_log[c]
                for x in range(length):
                    b = src[x]
                    if b != 0:
                        dst[x] ^= bnt_gf_exp[<int>bnt_gf_log[b] + lc]


cdef void mat_apply(gf_mat *mt, const uint8_t *const *inp, uint8_t *const *outp,
                    size_t off, size_t length) noexcept nogil:
    # outp[o][off + x] = sum_i coef[o][i] * inp[i][off + x]. Column blocks keep the
    # inputs cache-resident while each group of up to 8 outputs is accumulated.
    cdef int isa = current_isa()
    cdef int o, g
    cdef size_t c0, cl, done
    cdef size_t block = COLUMN_BLOCK
    cdef bnt_gf_kernel kern
    cdef int need = TABLES_GFNI if isa == 3 else (TABLES_NIB if isa != 0 else 0)
    if need & ~mt.built:
        mat_tables(mt, need)
    if mt.nout > BNT_GF_MAX_GROUP and mt.nin > 16:
        block = (256 * 1024) // <size_t>mt.nin
        block = (block + 63) & ~(<size_t>63)
    c0 = off
    while c0 < off + length:
        cl = off + length - c0
        if cl > block:
            cl = block
        o = 0
        while o < mt.nout:
            g = mt.nout - o
            if g > BNT_GF_MAX_GROUP:
                g = BNT_GF_MAX_GROUP if g >= 2 * BNT_GF_MAX_GROUP else (g + 1) // 2
            done = 0
            if isa != 0:
                kern = bnt_gf_kernel_for(isa, g)
                done = kern(mt.nin, mt.nib + <size_t>32 * o * mt.nin, mt.gfni + <size_t>o * mt.nin,
                            inp, outp + o, c0, cl)
            if done < cl:
                scalar_dot(mt, o, g, inp, outp, c0 + done, cl - done)
            o += g
        c0 += cl


cdef int invert(uint8_t *a, uint8_t *inv, int k) noexcept nogil:
    # Gauss-Jordan: inv = a^-1 (k x k, row-major); a is destroyed. 0 ok, -1 singular.
    cdef int r, c, p, j
    cdef uint8_t t, f
    memset(inv, 0, <size_t>k * k)
    for r in range(k):
        inv[r * k + r] = 1
    for c in range(k):
        p = c
        while p < k and a[p * k + c] == 0:
            p += 1
        if p == k:
            return -1
        if p != c:
            for j in range(k):
                t = a[p * k + j]; a[p * k + j] = a[c * k + j]; a[c * k + j] = t
                t = inv[p * k + j]; inv[p * k + j] = inv[c * k + j]; inv[c * k + j] = t
        f = gf_inv(a[c * k + c])
        for j in range(k):
            a[c * k + j] = gf_mul(a[c * k + j], f)
            inv[c * k + j] = gf_mul(inv[c * k + j], f)
        for r in range(k):
            f = a[r * k + c]
            if r == c or f == 0:
                continue
            for j in range(k):
                a[r * k + j] ^= gf_mul(f, a[c * k + j])
                inv[r * k + j] ^= gf_mul(f, inv[c * k + j])
    return 0


cdef gf_mat *encoding_matrix(int k, int m) noexcept nogil:
    # P[i][j] = coefficient of x^(m-1-i) in x^(n-1-j) mod g(x), g = prod_{i<m} (x - alpha^i):
    # the remainder of the systematic division that reedsolo's encoder performs.
    cdef int n = k + m
    cdef uint8_t g[MAXN + 1]
    cdef uint8_t r[MAXN]
    cdef int i, t, j
    cdef uint8_t top, root
    cdef gf_mat *mt = mat_new(m, k)
    if mt == NULL:
        return NULL
    # g in ascending powers, monic of degree m
    memset(g, 0, sizeof(g))
    g[0] = 1
    for i in range(m):
        root = gf_pow2(i)
        # g *= (x + root)
        for j in range(i + 1, 0, -1):
            g[j] = g[j - 1] ^ gf_mul(g[j], root)
        g[0] = gf_mul(g[0], root)
    # r = x^m mod g = g - x^m; then r_{t+1} = x r_t mod g
    for i in range(m):
        r[i] = g[i]
    t = m
    while True:
        j = n - 1 - t              # the data shard whose power is x^t
        if j >= 0 and j < k:
            for i in range(m):
                mt.coef[i * k + j] = r[m - 1 - i]
        if t == n - 1:
            break
        top = r[m - 1]
        for i in range(m - 1, 0, -1):
            r[i] = r[i - 1] ^ gf_mul(top, g[i])
        r[0] = gf_mul(top, g[0])
        t += 1
    for j in range(k):
        mt.in_idx[j] = <uint8_t>j
    for i in range(m):
        mt.out_idx[i] = <uint8_t>(k + i)
    return mt


cdef gf_mat *decoding_matrix(fec_state *st, const uint8_t *present) noexcept nogil:
    # The matrix that rebuilds every missing shard from the first k present ones, from
    # the cache when this erasure pattern was seen before. NULL: out of memory.
    cdef int k = st.k, n = st.n, j, r, c, nout = 0, nin = 0, s, d, t, o
    cdef uint64_t key[4]
    cdef uint8_t missing_data[MAXN]
    cdef uint8_t *rrow
    cdef int slot, victim = 0
    cdef uint8_t in_idx[MAXN]
    cdef uint8_t out_idx[MAXN]
    cdef uint8_t *tmp
    cdef uint8_t *a
    cdef uint8_t *inv
    cdef uint8_t acc
    cdef gf_mat *mt
    memset(key, 0, sizeof(key))
    for j in range(n):
        if present[j]:
            key[j >> 6] |= (<uint64_t>1) << (j & 63)
            if nin < k:
                in_idx[nin] = <uint8_t>j
                nin += 1
        else:
            out_idx[nout] = <uint8_t>j
            nout += 1
    st.tick += 1
    for slot in range(CACHE_SLOTS):
        if st.cache[slot].used and st.cache[slot].key[0] == key[0] and st.cache[slot].key[1] == key[1] \
                and st.cache[slot].key[2] == key[2] and st.cache[slot].key[3] == key[3]:
            st.cache[slot].used = st.tick
            return st.cache[slot].mat
        if st.cache[slot].used < st.cache[victim].used:
            victim = slot
    # The inputs are the d present data shards (unit rows, nothing to invert) and
    # t = k - d parity shards q_s; the t missing data shards U solve the t x t system
    #   M x = p_Q + P[Q][D] d_D,  M[s][r] = P[q_s][U_r],
    # so only M is inverted (cheap for the usual few erasures, e.g. a fresh BLE pattern).
    d = 0
    while d < k and in_idx[d] < k:
        d += 1
    t = k - d
    tmp = <uint8_t *>bnt_alloc(<size_t>2 * t * t + <size_t>t * k + 1)
    if tmp == NULL:
        return NULL
    a = tmp                              # M, destroyed by invert
    inv = tmp + <size_t>t * t            # M^-1
    rrow = inv + <size_t>t * t           # rrow[r][pos]: missing data U_r over the k inputs
    r = 0
    for j in range(k):                   # U = missing data shards, ascending
        if not present[j]:
            missing_data[r] = j
            r += 1
    for s in range(t):
        for r in range(t):
            a[s * t + r] = st.enc.coef[(in_idx[d + s] - k) * k + missing_data[r]]
    if t > 0 and invert(a, inv, t) != 0:      # impossible for an MDS code; kept as a guard
        bnt_free(tmp)
        return NULL
    for r in range(t):
        for c in range(d):                    # data input j = in_idx[c]
            acc = 0
            for s in range(t):
                acc ^= gf_mul(inv[r * t + s], st.enc.coef[(in_idx[d + s] - k) * k + in_idx[c]])
            rrow[r * k + c] = acc
        for s in range(t):                    # parity input q_s
            rrow[r * k + d + s] = inv[r * t + s]
    mt = mat_new(nout, k)
    if mt == NULL:
        bnt_free(tmp)
        return NULL
    r = 0
    for o in range(nout):
        s = out_idx[o]
        mt.out_idx[o] = <uint8_t>s
        if s < k:                             # missing data: its row (U is ascending too)
            memcpy(mt.coef + o * k, rrow + r * k, <size_t>k)
            r += 1
        else:                                 # missing parity: P[s] with d_U substituted
            for c in range(k):
                acc = st.enc.coef[(s - k) * k + in_idx[c]] if c < d else 0
                for j in range(t):
                    acc ^= gf_mul(st.enc.coef[(s - k) * k + missing_data[j]], rrow[j * k + c])
                mt.coef[o * k + c] = acc
    for c in range(k):
        mt.in_idx[c] = in_idx[c]
    bnt_free(tmp)
    if st.cache[victim].mat != NULL:
        bnt_free(st.cache[victim].mat)
    st.cache[victim].mat = mt
    st.cache[victim].used = st.tick
    memcpy(st.cache[victim].key, key, sizeof(key))
    return mt


# ---- public API ----------------------------------------------------------------------

cdef public int betanet_fec_new(unsigned int k, unsigned int m, betanet_fec_t **out) noexcept nogil:
    cdef int rc
    cdef fec_state *st
    if out == NULL:
        return BETANET_E_INVALID
    out[0] = NULL
    if k < 1 or m < 1 or k + m > MAXN:
        return BETANET_E_INVALID
    rc = betanet_init()
    if rc != BETANET_OK:
        return rc
    st = <fec_state *>bnt_alloc(sizeof(fec_state))
    if st == NULL:
        return BETANET_E_NOMEM
    st.k = k
    st.m = m
    st.n = k + m
    st.enc = encoding_matrix(k, m)
    if st.enc == NULL:
        bnt_free(st)
        return BETANET_E_NOMEM
    out[0] = <betanet_fec_t *>st
    return BETANET_OK


cdef public void betanet_fec_free(betanet_fec_t *fec) noexcept nogil:
    cdef fec_state *st = <fec_state *>fec
    cdef int i
    if st == NULL:
        return
    for i in range(CACHE_SLOTS):
        bnt_free(st.cache[i].mat)
    bnt_free(st.enc)
    bnt_free(st.syn)
    bnt_free(st.forney)
    bnt_free(st.scratch)
    bnt_free(st)


cdef public const char *betanet_fec_kernel() noexcept nogil:
    cdef int isa = current_isa()
    if isa == 3:
        return "gfni-avx512"
    if isa == 2:
        return "avx2"
    if isa == 1:
        return "ssse3"
    return "scalar"


cdef public int betanet_fec_encode(betanet_fec_t *fec, const uint8_t *const *data,
                                   uint8_t *const *parity, size_t len) noexcept nogil:
    cdef fec_state *st = <fec_state *>fec
    cdef int i
    if st == NULL or data == NULL or parity == NULL:
        return BETANET_E_INVALID
    for i in range(st.k):
        if data[i] == NULL:
            return BETANET_E_INVALID
    for i in range(st.m):
        if parity[i] == NULL:
            return BETANET_E_INVALID
    mat_apply(st.enc, data, parity, 0, len)
    return BETANET_OK


cdef int rebuild(fec_state *st, uint8_t *const *shards, const uint8_t *present,
                 size_t length) noexcept nogil:
    # Write every shard with present[j] == 0 from the first k present ones.
    cdef const uint8_t *inp[MAXN]
    cdef uint8_t *outp[MAXN]
    cdef int j, have = 0
    for j in range(st.n):
        if present[j]:
            have += 1
    if have < st.k:
        return BETANET_E_UNCORRECTABLE
    if have == st.n:
        return BETANET_OK
    cdef gf_mat *mt = decoding_matrix(st, present)
    if mt == NULL:
        return BETANET_E_NOMEM
    for j in range(mt.nin):
        inp[j] = shards[mt.in_idx[j]]
    for j in range(mt.nout):
        outp[j] = shards[mt.out_idx[j]]
    mat_apply(mt, inp, outp, 0, length)
    return BETANET_OK


cdef int check_shards(fec_state *st, uint8_t *const *shards) noexcept nogil:
    cdef int j
    if st == NULL or shards == NULL:
        return BETANET_E_INVALID
    for j in range(st.n):
        if shards[j] == NULL:
            return BETANET_E_INVALID
    return BETANET_OK


cdef public int betanet_fec_reconstruct(betanet_fec_t *fec, uint8_t *const *shards,
                                        const uint8_t *present, size_t len) noexcept nogil:
    cdef fec_state *st = <fec_state *>fec
    cdef int rc = check_shards(st, shards)
    if rc != BETANET_OK:
        return rc
    if present == NULL:
        return BETANET_E_INVALID
    return rebuild(st, shards, present, len)


# ---- locating silent corruption ------------------------------------------------------

cdef int locate_column(fec_state *st, const uint8_t *synd, const uint8_t *gamma_e, int v,
                       const uint8_t *ispresent, uint8_t *isbad) noexcept nogil:
    # One column's errors (erasures known): Forney syndromes T_i = (Gamma_E * S)_{v+i},
    # Berlekamp-Massey for the error locator, Chien search over the present shards.
    # Marks the error positions in isbad; returns how many were new, or -1 when the
    # column is not decodable within the bound.
    cdef int m = st.m, n = st.n, N = m - v
    cdef uint8_t T[MAXN]
    cdef uint8_t C[MAXN + 1]
    cdef uint8_t B[MAXN + 1]
    cdef uint8_t old[MAXN + 1]
    cdef int i, t, r, L = 0, shift = 1, roots = 0, added = 0, j
    cdef uint8_t d, b = 1, coef, acc
    for i in range(N):
        acc = 0
        for t in range(v + 1):
            acc ^= gf_mul(gamma_e[t], synd[i + v - t])
        T[i] = acc
    memset(C, 0, sizeof(C))
    memset(B, 0, sizeof(B))
    C[0] = 1
    B[0] = 1
    for r in range(N):
        d = T[r]
        for i in range(1, L + 1):
            d ^= gf_mul(C[i], T[r - i])
        if d == 0:
            shift += 1
            continue
        coef = gf_mul(d, gf_inv(b))
        if 2 * L <= r:
            memcpy(old, C, <size_t>(N + 1))
            for i in range(0, N + 1 - shift):
                C[i + shift] ^= gf_mul(coef, B[i])
            L = r + 1 - L
            memcpy(B, old, <size_t>(N + 1))
            b = d
            shift = 1
        else:
            for i in range(0, N + 1 - shift):
                C[i + shift] ^= gf_mul(coef, B[i])
            shift += 1
    if L == 0 or 2 * L > N or C[L] == 0:
        return -1
    for i in range(L + 1, N + 1):
        if C[i] != 0:
            return -1
    # Chien search: Lambda(X_j^-1) == 0, X_j = alpha^(n-1-j)
    for j in range(n):
        if not ispresent[j]:
            continue
        acc = 0
        for i in range(L + 1):
            acc ^= gf_mul(C[i], gf_pow2(-<long>i * (n - 1 - j)))
        if acc == 0:
            roots += 1
            if not isbad[j]:
                isbad[j] = 2          # new in this round
    if roots != L:
        for j in range(n):
            if isbad[j] == 2:
                isbad[j] = 0
        return -1
    for j in range(n):
        if isbad[j] == 2:
            isbad[j] = 1
            added += 1
    return added


cdef void forney_matrix(fec_state *st, gf_mat *F, const uint8_t *inX) noexcept nogil:
    # Rows T_{x+r} = sum_t Gamma_X[t] S_{x+r-t}, r < m - x, x = |X|: all zero exactly
    # when a column's syndromes are explained by errata at the positions X.
    cdef int m = st.m, n = st.n, x = 0, j, t, r, s
    cdef uint8_t gam[MAXN + 1]
    cdef uint8_t X
    memset(gam, 0, sizeof(gam))
    gam[0] = 1
    for j in range(n):
        if inX[j]:
            X = gf_pow2(n - 1 - j)
            for t in range(x + 1, 0, -1):
                gam[t] ^= gf_mul(gam[t - 1], X)
            x += 1
    F.nout = m - x
    F.nin = m
    for r in range(m - x):
        for s in range(m):
            t = x + r - s
            F.coef[r * m + s] = gam[t] if 0 <= t <= x else 0
    F.built = 0                 # coefficients changed: tables are rebuilt on use


cdef long first_nonzero(uint8_t *const *rows, int nrows, size_t length) noexcept nogil:
    # Smallest column where any row is non-zero, or -1. Rows are 8-byte aligned.
    cdef long best = <long>length
    cdef int r
    cdef size_t x, w
    cdef const uint64_t *p
    for r in range(nrows):
        p = <const uint64_t *>rows[r]
        w = 0
        while (w + 1) * 8 <= <size_t>best and p[w] == 0:
            w += 1
        x = w * 8
        while x < <size_t>best and rows[r][x] == 0:
            x += 1
        if x < <size_t>best:
            best = <long>x
    return -1 if best == <long>length else best


cdef public int betanet_fec_correct(betanet_fec_t *fec, uint8_t *const *shards,
                                    const uint8_t *present, size_t len,
                                    uint8_t *corrupted, size_t *n_corrupted) noexcept nogil:
    cdef fec_state *st = <fec_state *>fec
    cdef int rc = check_shards(st, shards)
    if rc != BETANET_OK:
        return rc
    cdef int k = st.k, m = st.m, n = st.n
    cdef uint8_t ispresent[MAXN]
    cdef uint8_t isbad[MAXN]
    cdef uint8_t inX[MAXN]
    cdef uint8_t gamma_e[MAXN + 1]
    cdef uint8_t synd[MAXN]
    cdef const uint8_t *inp[MAXN]
    cdef uint8_t *srows[MAXN]
    cdef uint8_t *rrows[MAXN]
    cdef int j, t, i, v = 0, nbad = 0, added, nx
    cdef size_t c0, cl
    cdef long col
    cdef uint8_t *zero
    cdef gf_mat *F = NULL
    cdef uint8_t X
    cdef bint dirty
    memset(isbad, 0, sizeof(isbad))
    memset(gamma_e, 0, sizeof(gamma_e))
    gamma_e[0] = 1
    for j in range(n):
        ispresent[j] = 1 if present == NULL or present[j] != 0 else 0
        if not ispresent[j]:
            X = gf_pow2(n - 1 - j)
            for t in range(v + 1, 0, -1):
                gamma_e[t] ^= gf_mul(gamma_e[t - 1], X)
            v += 1
    if v > m:
        return BETANET_E_UNCORRECTABLE
    if v < m and len > 0:
        # Lazily: the syndrome matrix and the scratch blocks (S, R, a zero row).
        if st.syn == NULL:
            st.syn = mat_new(m, n)
            if st.syn == NULL:
                return BETANET_E_NOMEM
            for i in range(m):
                for j in range(n):
                    st.syn.coef[i * n + j] = gf_pow2(<long>i * (n - 1 - j))
        if st.scratch == NULL:
            st.scratch = <uint8_t *>bnt_alloc(<size_t>(2 * m + 1) * CORRECT_BLOCK)
            if st.scratch == NULL:
                return BETANET_E_NOMEM
        if st.forney == NULL:
            st.forney = mat_new(m, m)
            if st.forney == NULL:
                return BETANET_E_NOMEM
        F = st.forney
        zero = st.scratch + <size_t>2 * m * CORRECT_BLOCK
        for i in range(m):
            srows[i] = st.scratch + <size_t>i * CORRECT_BLOCK
            rrows[i] = st.scratch + <size_t>(m + i) * CORRECT_BLOCK
        dirty = True
        c0 = 0
        while c0 < len:
            cl = len - c0
            if cl > CORRECT_BLOCK:
                cl = CORRECT_BLOCK
            for j in range(n):
                inp[j] = shards[j] + c0 if ispresent[j] else zero
            mat_apply(st.syn, inp, srows, 0, cl)
            while True:
                nx = v + nbad
                if nx >= m:
                    break               # only when nbad == 0 and v == m: nothing to check
                if nx == 0:
                    col = first_nonzero(srows, m, cl)      # no errata: S itself must be 0
                else:
                    if dirty:
                        for j in range(n):
                            inX[j] = 1 if (not ispresent[j]) or isbad[j] else 0
                        forney_matrix(st, F, inX)
                        dirty = False
                    mat_apply(F, <const uint8_t *const *>srows, rrows, 0, cl)
                    col = first_nonzero(rrows, F.nout, cl)
                if col < 0:
                    break
                for i in range(m):
                    synd[i] = srows[i][col]
                added = locate_column(st, synd, gamma_e, v, ispresent, isbad)
                if added <= 0 or 2 * (nbad + added) + v > m:
                    return BETANET_E_UNCORRECTABLE
                nbad += added
                dirty = True
            c0 += cl
    # Verified: repair the corrupted and missing shards as erasures.
    if nbad > 0 or v > 0:
        for j in range(n):
            inX[j] = 1 if ispresent[j] and not isbad[j] else 0
        rc = rebuild(st, shards, inX, len)
        if rc != BETANET_OK:
            return rc
    if corrupted != NULL:
        i = 0
        for j in range(n):
            if isbad[j]:
                corrupted[i] = <uint8_t>j
                i += 1
    if n_corrupted != NULL:
        n_corrupted[0] = <size_t>nbad
    return BETANET_OK
