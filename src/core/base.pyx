# base.pyx — what every capability relies on: init, versions, status strings, CPU
# features and the host-replaceable allocator (include/betanet.h, "common" section).
#
# Module-level code never runs inside libbetanet (DESIGN.md), so all state here is
# zero-initialised C globals and everything that must be computed happens in betanet_init.

from libc.string cimport memset
from bnt cimport *

cdef extern from "bnt_internal.h":
    pass    # included so that the C compiler checks the definitions below against it

cdef extern from "betanet.h" nogil:
    const char *BETANET_VERSION_STRING
    int BETANET_VERSION_MAJOR
    int BETANET_VERSION_MINOR
    int BETANET_VERSION_PATCH
    ctypedef void *(*betanet_alloc_fn_t)(size_t size, void *ctx)
    ctypedef void (*betanet_free_fn_t)(void *ptr, void *ctx)

# Verbatim C for what Cython cannot express: atomics, pthread_once, CPUID, the firmware build.
cdef extern from *:
    """
    #if defined(__arm__) && defined(__linux__)
    #include <sys/auxv.h>
    #endif
    #include <stdlib.h>
    #if defined(BETANET_FIRMWARE) && BETANET_FIRMWARE
    /* Firmware build: no pthread (init runs once through an atomic flag) and no heap of
     * its own: every allocation goes to the host's betanet_set_allocator, NULL without one. */
    static int bnt_init_state;                     /* 0 not started, 1 running, 2 done */
    static inline void bnt_once(void (*once)(void)) {
        int expect = 0;
        if (__atomic_compare_exchange_n(&bnt_init_state, &expect, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            once();
            __atomic_store_n(&bnt_init_state, 2, __ATOMIC_RELEASE);
        } else {
            while (__atomic_load_n(&bnt_init_state, __ATOMIC_ACQUIRE) != 2) { }   /* another context */
        }
    }
    static inline void *bnt_sys_malloc(size_t n) { (void)n; return NULL; }
    static inline void bnt_sys_free(void *p) { (void)p; }
    #else
    #include <pthread.h>
    static pthread_once_t bnt_init_once = PTHREAD_ONCE_INIT;
    static inline void bnt_once(void (*once)(void)) { pthread_once(&bnt_init_once, once); }
    static inline void *bnt_sys_malloc(size_t n) { return malloc(n); }
    static inline void bnt_sys_free(void *p) { free(p); }
    #endif
    static volatile int bnt_init_status = 1;      /* 1 = not yet, 0 = ok, <0 = error */
    static unsigned int bnt_cpu_detected = 0, bnt_cpu_mask = ~0u;
    static size_t bnt_live = 0;

    static inline void bnt_live_add(long d) { __atomic_add_fetch(&bnt_live, (size_t)d, __ATOMIC_RELAXED); }
    static inline size_t bnt_live_get(void) { return __atomic_load_n(&bnt_live, __ATOMIC_RELAXED); }
    static inline unsigned int bnt_cpu_get(void) {
        return __atomic_load_n(&bnt_cpu_detected, __ATOMIC_ACQUIRE) & __atomic_load_n(&bnt_cpu_mask, __ATOMIC_RELAXED);
    }
    static inline void bnt_cpu_set_mask(unsigned int m) { __atomic_store_n(&bnt_cpu_mask, m, __ATOMIC_RELAXED); }

    static unsigned int bnt_detect_cpu(void) {
        unsigned int f = 0;
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("ssse3")) f |= 1u << 0;
        if (__builtin_cpu_supports("avx2")) f |= 1u << 1;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl")) f |= 1u << 2;
        if (__builtin_cpu_supports("gfni")) f |= 1u << 3;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma")) f |= 1u << 5;
        if (__builtin_cpu_supports("sse4.2")) f |= 1u << 6;
    #elif defined(__aarch64__)
        f |= 1u << 4;
    #elif defined(__arm__) && defined(__linux__)
        if (getauxval(AT_HWCAP) & (1ul << 12)) f |= 1u << 4;   /* HWCAP_NEON (asm/hwcap.h) */
    #endif
        return f;
    }
    static inline int bnt_status_get(void) { return __atomic_load_n(&bnt_init_status, __ATOMIC_ACQUIRE); }
    static inline int bnt_run_init(void (*once)(void)) {
        bnt_once(once);
        return bnt_status_get();
    }
    static inline void bnt_status_set(int s) { __atomic_store_n(&bnt_init_status, s, __ATOMIC_RELEASE); }
    static inline void bnt_cpu_store(unsigned int f) { __atomic_store_n(&bnt_cpu_detected, f, __ATOMIC_RELEASE); }
    """
    int bnt_run_init(void (*once)() noexcept nogil) nogil
    int bnt_status_get() nogil
    void bnt_status_set(int s) nogil
    unsigned int bnt_detect_cpu() nogil
    unsigned int bnt_cpu_get() nogil
    void bnt_cpu_store(unsigned int f) nogil
    void bnt_cpu_set_mask(unsigned int m) nogil
    void bnt_live_add(long d) nogil
    size_t bnt_live_get() nogil
    void *bnt_sys_malloc(size_t n) nogil
    void bnt_sys_free(void *p) nogil

# The host allocator. NULL means libc. Only changed while no allocation is alive.
cdef betanet_alloc_fn_t g_alloc = NULL
cdef betanet_free_fn_t g_free = NULL
cdef void *g_ctx = NULL


cdef void bnt_do_init() noexcept nogil:
    # Runs exactly once, under pthread_once (an atomic flag in the firmware build).
    if sodium_init() < 0:
        bnt_status_set(BETANET_E_CRYPTO)
        return
    bnt_cpu_store(bnt_detect_cpu())
    bnt_status_set(BETANET_OK)


cdef public int betanet_init() noexcept nogil:
    return bnt_run_init(bnt_do_init)


cdef public const char *betanet_version_string() noexcept nogil:
    return BETANET_VERSION_STRING


cdef public int betanet_version_number() noexcept nogil:
    return (BETANET_VERSION_MAJOR << 16) | (BETANET_VERSION_MINOR << 8) | BETANET_VERSION_PATCH


# The status codes, one row each: the code, its macro name (stringified by the
# preprocessor from the macro itself, so it cannot drift) and its description.
cdef extern from *:
    """
    typedef struct { int code; const char *name; const char *text; } bnt_error_row;
    #define BNT_ERR(macro, text) { macro, #macro, text }
    static const bnt_error_row bnt_errors[] = {
        BNT_ERR(BETANET_OK, "success"),
        BNT_ERR(BETANET_E_INVALID, "invalid argument"),
        BNT_ERR(BETANET_E_BUFFER_TOO_SMALL, "output buffer too small"),
        BNT_ERR(BETANET_E_MALFORMED, "malformed input"),
        BNT_ERR(BETANET_E_AUTH, "authentication failed"),
        BNT_ERR(BETANET_E_REPLAY, "replay detected"),
        BNT_ERR(BETANET_E_LIMIT, "limit exceeded"),
        BNT_ERR(BETANET_E_NOMEM, "out of memory"),
        BNT_ERR(BETANET_E_UNCORRECTABLE, "uncorrectable: too many errors or erasures"),
        BNT_ERR(BETANET_E_EXPIRED, "expired"),
        BNT_ERR(BETANET_E_STATE, "invalid state for this call"),
        BNT_ERR(BETANET_E_NOT_FOUND, "not found"),
        BNT_ERR(BETANET_E_NO_PATH, "no feasible path"),
        BNT_ERR(BETANET_E_CRYPTO, "crypto backend failure"),
        BNT_ERR(BETANET_E_UNSUPPORTED, "unsupported"),
        BNT_ERR(BETANET_E_PROTOCOL, "protocol violation"),
    };
    static inline const bnt_error_row *bnt_error_find(int code) {
        size_t i;
        for (i = 0; i < sizeof bnt_errors / sizeof bnt_errors[0]; i++)
            if (bnt_errors[i].code == code) return &bnt_errors[i];
        return 0;
    }
    """
    ctypedef struct bnt_error_row:
        int code
        const char *name
        const char *text
    const bnt_error_row *bnt_error_find(int code) nogil


cdef public const char *betanet_strerror(int code) noexcept nogil:
    cdef const bnt_error_row *row = bnt_error_find(code)
    if row == NULL:
        return "unknown error"
    return row.text


cdef public const char *betanet_error_name(int code) noexcept nogil:
    cdef const bnt_error_row *row = bnt_error_find(code)
    if row == NULL:
        return NULL
    return row.name


cdef public unsigned int betanet_cpu_features() noexcept nogil:
    betanet_init()      # detection happens there
    return bnt_cpu_get()


cdef public unsigned int bnt_cpu() noexcept nogil:
    return bnt_cpu_get()


cdef public unsigned int betanet_cpu_restrict(unsigned int mask) noexcept nogil:
    betanet_init()
    bnt_cpu_set_mask(mask)
    return bnt_cpu_get()


cdef public int betanet_set_allocator(betanet_alloc_fn_t alloc, betanet_free_fn_t free_fn,
                                      void *ctx) noexcept nogil:
    global g_alloc, g_free, g_ctx
    if (alloc == NULL) != (free_fn == NULL):
        return BETANET_E_INVALID
    if bnt_live_get() != 0:
        return BETANET_E_STATE
    g_alloc = alloc
    g_free = free_fn
    g_ctx = ctx
    return BETANET_OK


cdef public size_t betanet_live_allocations() noexcept nogil:
    return bnt_live_get()


cdef public void *bnt_alloc(size_t size) noexcept nogil:
    cdef void *p
    if size == 0:
        size = 1
    if g_alloc != NULL:
        p = g_alloc(size, g_ctx)
    else:
        p = bnt_sys_malloc(size)      # libc; NULL in the firmware build
    if p != NULL:
        memset(p, 0, size)
        bnt_live_add(1)
    return p


cdef public void bnt_free(void *ptr) noexcept nogil:
    if ptr == NULL:
        return
    bnt_live_add(-1)
    if g_free != NULL:
        g_free(ptr, g_ctx)
    else:
        bnt_sys_free(ptr)


cdef public void bnt_free_secret(void *ptr, size_t size) noexcept nogil:
    if ptr == NULL:
        return
    sodium_memzero(ptr, size)
    bnt_free(ptr)
