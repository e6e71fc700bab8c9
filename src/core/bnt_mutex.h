/* bnt_mutex.h — the one lock the core uses (a Sphinx node's replay state), and nothing for
 * the firmware build (-DBETANET_FIRMWARE=ON, docs/porting.md): hosts without threads have
 * nothing to exclude, and no pthread library to link. */
#ifndef BNT_MUTEX_H
#define BNT_MUTEX_H
#if defined(BETANET_FIRMWARE) && BETANET_FIRMWARE
typedef struct bnt_mutex { int unused; } bnt_mutex_t;
static inline int bnt_mutex_init(bnt_mutex_t *m) { (void)m; return 0; }
static inline int bnt_mutex_destroy(bnt_mutex_t *m) { (void)m; return 0; }
static inline int bnt_mutex_lock(bnt_mutex_t *m) { (void)m; return 0; }
static inline int bnt_mutex_unlock(bnt_mutex_t *m) { (void)m; return 0; }
#else
#include <pthread.h>
typedef pthread_mutex_t bnt_mutex_t;
static inline int bnt_mutex_init(bnt_mutex_t *m) { return pthread_mutex_init(m, NULL); }
static inline int bnt_mutex_destroy(bnt_mutex_t *m) { return pthread_mutex_destroy(m); }
static inline int bnt_mutex_lock(bnt_mutex_t *m) { return pthread_mutex_lock(m); }
static inline int bnt_mutex_unlock(bnt_mutex_t *m) { return pthread_mutex_unlock(m); }
#endif
#endif /* BNT_MUTEX_H */
