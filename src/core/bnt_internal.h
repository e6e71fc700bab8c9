/* bnt_internal.h — functions the core modules share with each other (not exported:
 * the version script keeps only betanet_*). Implemented in base.pyx. Core modules reach
 * them through bnt.pxd; the linker resolves them (DESIGN.md: no cross-module cimport). */
#ifndef BNT_INTERNAL_H
#define BNT_INTERNAL_H
#include <stddef.h>

/* Allocate through the host's allocator (betanet_set_allocator); zeroed memory. */
void *bnt_alloc(size_t size);
/* Free memory from bnt_alloc; NULL is ignored. */
void bnt_free(void *ptr);
/* Wipe then free `size` bytes from bnt_alloc (for buffers that held secrets). */
void bnt_free_secret(void *ptr, size_t size);
/* CPU features in use (BETANET_CPU_* bits) — detected by betanet_init. */
unsigned int bnt_cpu(void);

#endif
