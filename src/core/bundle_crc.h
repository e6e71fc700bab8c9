/* bundle_crc.h — the CRCs of RFC 9171 §4.2.1 for bundle.pyx: what needs intrinsics, target
 * attributes or constant tables (Cython can express none of them).
 *
 * CRC-16/X.25: reflected polynomial 0x1021 (0x8408), init 0xFFFF, final XOR 0xFFFF.
 *   Computed table-free, one byte at a time (the polynomial has few terms, so the byte
 *   step is three shifts: the classic CCITT byte update).
 * CRC-32C: reflected Castagnoli 0x1EDC6F41 (0x82F63B78), init and final XOR 0xFFFFFFFF.
 *   Fast path: the SSE4.2 crc32 instruction, 8 bytes per step. Portable path: a 256-entry
 *   table of C constants. The table is a compile-time expression: a byte's CRC step is
 *   linear in the byte, so entry n is the XOR of the steps of n's set bits (BNT_C32_K*,
 *   the steps of 1, 2, 4, ..., 128; tests/test_dtn_bundle.py recomputes them).
 */
#ifndef BNT_BUNDLE_CRC_H
#define BNT_BUNDLE_CRC_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t bnt_crc16_x25_update(uint16_t crc, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t x = (uint8_t)(p[i] ^ (uint8_t)crc);
        x ^= (uint8_t)(x << 4);
        crc = (uint16_t)((crc >> 8) ^ ((uint16_t)x << 8) ^ ((uint16_t)x << 3) ^ (x >> 4));
    }
    return crc;
}

#define BNT_C32_K0 0xf26b8303u
#define BNT_C32_K1 0xe13b70f7u
#define BNT_C32_K2 0xc79a971fu
#define BNT_C32_K3 0x8ad958cfu
#define BNT_C32_K4 0x105ec76fu
#define BNT_C32_K5 0x20bd8edeu
#define BNT_C32_K6 0x417b1dbcu
#define BNT_C32_K7 0x82f63b78u
#define BNT_C32_T(n) ((((n) & 1) ? BNT_C32_K0 : 0) ^ (((n) & 2) ? BNT_C32_K1 : 0) ^   \
                      (((n) & 4) ? BNT_C32_K2 : 0) ^ (((n) & 8) ? BNT_C32_K3 : 0) ^   \
                      (((n) & 16) ? BNT_C32_K4 : 0) ^ (((n) & 32) ? BNT_C32_K5 : 0) ^ \
                      (((n) & 64) ? BNT_C32_K6 : 0) ^ (((n) & 128) ? BNT_C32_K7 : 0))
#define BNT_C32_L4(n) BNT_C32_T(n), BNT_C32_T((n) + 1), BNT_C32_T((n) + 2), BNT_C32_T((n) + 3)
#define BNT_C32_L16(n) BNT_C32_L4(n), BNT_C32_L4((n) + 4), BNT_C32_L4((n) + 8), BNT_C32_L4((n) + 12)
#define BNT_C32_L64(n) BNT_C32_L16(n), BNT_C32_L16((n) + 16), BNT_C32_L16((n) + 32), BNT_C32_L16((n) + 48)
static const uint32_t bnt_crc32c_table[256] = {
    BNT_C32_L64(0), BNT_C32_L64(64), BNT_C32_L64(128), BNT_C32_L64(192)
};

/* Portable CRC-32C update on the raw (pre-inverted) register. */
static inline uint32_t bnt_crc32c_portable(uint32_t crc, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        crc = (crc >> 8) ^ bnt_crc32c_table[(crc ^ p[i]) & 0xFF];
    return crc;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define BNT_CRC_HAVE_SSE42 1
__attribute__((target("sse4.2")))
static uint32_t bnt_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);          /* unaligned, little-endian: what crc32q expects */
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
#endif
    while (n--) crc = _mm_crc32_u8(crc, *p++);
    return crc;
}
#else
#define BNT_CRC_HAVE_SSE42 0
static uint32_t bnt_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
    return bnt_crc32c_portable(crc, p, n);
}
#endif

#endif /* BNT_BUNDLE_CRC_H */
