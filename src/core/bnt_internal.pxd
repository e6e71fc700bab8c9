# Helpers implemented in base.pyx and shared by the core modules through the linker
# (DESIGN.md: no cross-module cimport of cdef functions). See bnt_internal.h.

cdef extern from "bnt_internal.h" nogil:
    void *bnt_alloc(size_t size)
    void bnt_free(void *ptr)
    void bnt_free_secret(void *ptr, size_t size)
    unsigned int bnt_cpu()
