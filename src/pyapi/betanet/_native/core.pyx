# betanet._native.core — versions, init, CPU features, error strings (common C API).
from betanet._native._common cimport *

cdef extern from "betanet.h" nogil:
    const char *BETANET_VERSION_STRING
    const char *betanet_version_string()
    int betanet_version_number()
    unsigned int betanet_cpu_features()
    unsigned int betanet_cpu_restrict(unsigned int mask)
    size_t betanet_live_allocations()
    const char *betanet_error_name(int code)
    unsigned int BETANET_CPU_SSSE3, BETANET_CPU_AVX2, BETANET_CPU_AVX512, BETANET_CPU_GFNI, BETANET_CPU_NEON
    unsigned int BETANET_CPU_AVX512IFMA
    unsigned int BETANET_CPU_SSE42

HEADER_VERSION = BETANET_VERSION_STRING.decode()
CPU_FLAGS = {
    "ssse3": BETANET_CPU_SSSE3, "avx2": BETANET_CPU_AVX2, "avx512": BETANET_CPU_AVX512,
    "gfni": BETANET_CPU_GFNI, "neon": BETANET_CPU_NEON, "avx512ifma": BETANET_CPU_AVX512IFMA,
    "sse4.2": BETANET_CPU_SSE42,
}


def init() -> None:
    check(betanet_init(), "betanet_init")


def version() -> str:
    return betanet_version_string().decode()


def version_number() -> int:
    return betanet_version_number()


def strerror(int code) -> str:
    return betanet_strerror(code).decode()


def error_table() -> list:
    """[(code, macro name, message)] for every status the library defines, from the
    library itself (betanet_error_name enumerates 0, -1, -2, ... until it returns NULL)."""
    cdef int code = 0
    cdef const char *name = betanet_error_name(0)
    rows = []
    while name != NULL:
        rows.append((code, name.decode(), betanet_strerror(code).decode()))
        code -= 1
        name = betanet_error_name(code)
    return rows


def cpu_features() -> int:
    return betanet_cpu_features()


def cpu_restrict(unsigned int mask) -> int:
    return betanet_cpu_restrict(mask)


def live_allocations() -> int:
    return betanet_live_allocations()


# The library is usable as soon as the package is imported.
init()
