/* bnt_sha256_ni.h — HMAC-SHA256 for short messages on the x86 SHA extensions.
 *
 * Sphinx derives four keys per hop with HKDF-SHA256 (13 SHA-256 compressions). libsodium
 * 1.0.18 computes SHA-256 in portable C (~1000 cycles per block); the SHA-NI instructions
 * do a block in ~130. Only what Cython cannot express lives here: the intrinsics and their
 * target attributes. sphinx.pyx uses these when bnt_sha_ni() says the CPU has them (and
 * betanet_cpu_restrict has not masked SSSE3 off) and libsodium's HMAC otherwise; the
 * results are identical (tests compare both paths). */
#ifndef BNT_SHA256_NI_H
#define BNT_SHA256_NI_H
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define BNT_HAVE_SHA_NI_CODE 1

/* 1 if the CPU has SHA, SSSE3 and SSE4.1 (computed once; the race is benign). */
static inline int bnt_sha_ni_cpu(void) {
    static volatile int cached = -1;
    int v = cached;
    if (v < 0) {
        unsigned a, b, c, d;
        v = 0;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) && (c & (1u << 19))
            && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)))
            v = 1;
        cached = v;
    }
    return v;
}

static const uint32_t bnt_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* state (a..h) += SHA-256 compression of `blocks` 64-byte blocks. */
__attribute__((target("sha,ssse3,sse4.1")))
static void bnt_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                 /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);                   /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);           /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);                /* CDGH */
    while (blocks--) {
        __m128i abef = s0, cdgh = s1, w[16], m;
        for (int i = 0; i < 16; i++) {
            if (i < 4)
                w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), mask);
            else   /* w[t] = σ1(w[t−2]) + w[t−7] + σ0(w[t−15]) + w[t−16], four at a time */
                w[i] = _mm_sha256msg2_epu32(
                    _mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]),
                                  _mm_alignr_epi8(w[i - 1], w[i - 2], 4)), w[i - 1]);
            m = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&bnt_sha256_k[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, m);
            m = _mm_shuffle_epi32(m, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, m);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        data += 64;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);                  /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                   /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);                /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);                   /* ABEF */
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
}

static const uint32_t bnt_sha256_iv[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* HMAC key schedule for a key of at most 64 bytes: the states after the ipad and opad
 * blocks (64 bytes together, a secret: wipe it). */
static void bnt_hmac_states(const uint8_t *key, size_t keylen, uint32_t st[16]) {
    uint8_t block[64];
    memcpy(st, bnt_sha256_iv, 32);
    memcpy(st + 8, bnt_sha256_iv, 32);
    for (int i = 0; i < 64; i++) block[i] = (uint8_t)((i < (int)keylen ? key[i] : 0) ^ 0x36);
    bnt_sha256_blocks(st, block, 1);
    for (int i = 0; i < 64; i++) block[i] ^= 0x36 ^ 0x5c;
    bnt_sha256_blocks(st + 8, block, 1);
    memset(block, 0, sizeof block);
    __asm__ __volatile__("" : : "r"(block) : "memory");
}

static inline void bnt_be32_store(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* HMAC(key, msg) for mlen ≤ 119, from the states of bnt_hmac_states. */
static void bnt_hmac_final(const uint32_t st[16], const uint8_t *msg, size_t mlen, uint8_t out[32]) {
    uint8_t buf[128];
    uint32_t h[8];
    size_t nb = mlen + 9 <= 64 ? 1 : 2;
    uint64_t bits = (uint64_t)(64 + mlen) * 8;
    memset(buf, 0, sizeof buf);
    memcpy(buf, msg, mlen);
    buf[mlen] = 0x80;
    for (int i = 0; i < 8; i++) buf[64 * nb - 1 - i] = (uint8_t)(bits >> (8 * i));
    memcpy(h, st, 32);
    bnt_sha256_blocks(h, buf, nb);
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++) bnt_be32_store(buf + 4 * i, h[i]);
    buf[32] = 0x80;
    buf[62] = 0x03;                 /* (64 + 32) · 8 = 768 bits */
    memcpy(h, st + 8, 32);
    bnt_sha256_blocks(h, buf, 1);
    for (int i = 0; i < 8; i++) bnt_be32_store(out + 4 * i, h[i]);
    memset(buf, 0, sizeof buf);
    memset(h, 0, sizeof h);
    __asm__ __volatile__("" : : "r"(buf), "r"(h) : "memory");
}

#else
#define BNT_HAVE_SHA_NI_CODE 0
static inline int bnt_sha_ni_cpu(void) { return 0; }
static inline void bnt_hmac_states(const uint8_t *key, size_t keylen, uint32_t st[16]) {
    (void)key; (void)keylen; memset(st, 0, 64);
}
static inline void bnt_hmac_final(const uint32_t st[16], const uint8_t *msg, size_t mlen, uint8_t out[32]) {
    (void)st; (void)msg; (void)mlen; memset(out, 0, 32);
}
#endif
#endif /* BNT_SHA256_NI_H */
