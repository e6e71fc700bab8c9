/* hostile_sizes.h — what every tests/hostile_sizes*.c program shares: the check counters,
 * EXPECT (a call must return one of the listed statuses), the hostile size tables and the
 * final report line tests/test_hostile_sizes.py reads. Header-only: each program is one
 * translation unit linked against the ASan + UBSan library. */
#ifndef HOSTILE_SIZES_H
#define HOSTILE_SIZES_H
#include <betanet.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long checks, failures;

static inline void expect_in(int rc, const char *what, int line, const int *ok, size_t n) {
    size_t i;
    checks++;
    for (i = 0; i < n; i++)
        if (rc == ok[i]) return;
    failures++;
    if (failures <= 50) fprintf(stderr, "line %d: %s returned %d (%s)\n", line, what, rc, betanet_strerror(rc));
}
#define EXPECT(expr, ...)                                                                   \
    do {                                                                                    \
        const int ok_[] = {__VA_ARGS__};                                                    \
        expect_in((expr), #expr, __LINE__, ok_, sizeof ok_ / sizeof ok_[0]);                \
    } while (0)
#define TRUE_(cond) EXPECT((cond) ? 0 : -1000, 0)

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
static const size_t SIZES[] = {
    0, 1, 2, 15, 16, 31, 32, 33, 63, 64, 79, 80, 255, 256,
    (size_t)INT_MAX, (size_t)INT_MAX + 1, (size_t)UINT32_MAX, (size_t)UINT32_MAX + 1,
    SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX - 64, SIZE_MAX - 16, SIZE_MAX - 2, SIZE_MAX - 1,
    SIZE_MAX, (size_t)-28, (size_t)-20, (size_t)-12};
static const uint32_t U32[] = {0, 1, 2, 16, 17, 64, 254, 255, 256, 2048, 65536, 65537,
                               INT32_MAX, 0x80000000u, UINT32_MAX - 1, UINT32_MAX};
static const uint64_t U64[] = {0, 1, 63, 64, 16383, 16384, 4611686018427387903ull,
                               4611686018427387904ull, UINT64_MAX - 1, UINT64_MAX};

/* The last line of every program: no leak through the library's allocator, then the
 * count tests/test_hostile_sizes.py parses. Returns main's exit status. */
static inline int hostile_report(void) {
    TRUE_(betanet_live_allocations() == 0);
    printf("hostile: %ld checks, %ld failures\n", checks, failures);
    return failures != 0;
}
#endif
