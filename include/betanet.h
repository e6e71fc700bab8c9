/*
 * betanet.h — the public C API of libbetanet.
 *
 * This is the one header a host includes. It declares the common conventions (status
 * codes, versions, initialisation, allocator) and pulls in one section per capability
 * from include/betanet/ (in the style of sodium.h). Include only this file.
 *
 * Conventions (all functions):
 *   - Return an int status: 0 (BETANET_OK) on success, a negative BETANET_E_* on error.
 *     betanet_strerror() names the code. Nothing aborts, prints or longjmps.
 *   - Inputs are (pointer, length) pairs and are never modified unless documented.
 *     Outputs go to caller buffers whose needed size a function or macro tells.
 *   - Stateful objects are opaque handles: betanet_x_new(..., &out) / betanet_x_free(x).
 *     A handle may be used from one thread at a time; distinct handles are independent.
 *   - Initialisation (sqlite's model): every function that needs the library initialised
 *     calls betanet_init() itself on first use, so a host never has to. A host may still
 *     call it up front (to learn of a crypto backend failure early); it is idempotent and
 *     thread-safe. No function returns BETANET_E_STATE for "not initialised"; if the
 *     backend cannot start, the first such call returns BETANET_E_CRYPTO.
 *   - Sizes: every size constant is BETANET_<CAP>_<THING>_BYTES; fixed sizes a host
 *     without a C preprocessor needs also have a function twin betanet_<cap>_<thing>_bytes().
 *   - Functions whose status must be checked before an output is trusted (verify, open,
 *     process, decode, reconstruct, ...) are marked BETANET_NODISCARD.
 *   - Secrets are wiped with sodium_memzero; MACs are compared in constant time.
 */
#ifndef BETANET_H
#define BETANET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a function whose result must be checked: ignoring it is a compiler warning. */
#ifndef BETANET_NODISCARD
#if defined(__GNUC__) || defined(__clang__)
#define BETANET_NODISCARD __attribute__((warn_unused_result))
#else
#define BETANET_NODISCARD
#endif
#endif

/* ---- version --------------------------------------------------------------------
 * The library's version; CMake and pyproject.toml read BETANET_VERSION_STRING from here.
 * The SONAME is libbetanet.so.<major>; exported symbols carry version BETANET_<major>. */
#define BETANET_VERSION_MAJOR 1
#define BETANET_VERSION_MINOR 0
#define BETANET_VERSION_PATCH 0
#define BETANET_VERSION_STRING "1.0.0"

/* Version of the library actually loaded (may differ from the header's). Static string. */
const char *betanet_version_string(void);
/* (major << 16) | (minor << 8) | patch of the loaded library. */
int betanet_version_number(void);

/* ---- status codes ------------------------------------------------------------------ */
#define BETANET_OK                   0
#define BETANET_E_INVALID           -1  /* invalid argument (NULL, out of range, bad size) */
#define BETANET_E_BUFFER_TOO_SMALL  -2  /* an output buffer is smaller than needed */
#define BETANET_E_MALFORMED         -3  /* input bytes do not parse */
#define BETANET_E_AUTH              -4  /* authentication failed (MAC, tag, signature) */
#define BETANET_E_REPLAY            -5  /* input was seen before */
#define BETANET_E_LIMIT             -6  /* a configured or protocol limit was exceeded */
#define BETANET_E_NOMEM             -7  /* the allocator returned NULL */
#define BETANET_E_UNCORRECTABLE     -8  /* too many errors/erasures to recover the data */
#define BETANET_E_EXPIRED           -9  /* key epoch or deadline has passed */
#define BETANET_E_STATE            -10  /* call not valid in the object's current state */
#define BETANET_E_NOT_FOUND        -11  /* unknown node, key, stream or entry */
#define BETANET_E_NO_PATH          -12  /* no route satisfies the constraints */
#define BETANET_E_CRYPTO           -13  /* the crypto backend failed (e.g. init, bad point) */
#define BETANET_E_UNSUPPORTED      -14  /* feature not available in this build or CPU */
#define BETANET_E_PROTOCOL         -15  /* the peer violated the protocol */

/* A static, English description of a status code ("unknown error" for unknown codes).
 * Thread-safe. Never NULL. */
const char *betanet_strerror(int code);

/* The macro name of a status code ("BETANET_OK", "BETANET_E_INVALID", ...), or NULL for a
 * code the library does not define: bindings enumerate the codes with it
 * (code = 0, -1, -2, ... until NULL) instead of copying the list. Static string. */
const char *betanet_error_name(int code);

/* ---- initialisation -----------------------------------------------------------------
 * Initialise libsodium and detect CPU features. Idempotent and thread-safe. Optional:
 * every function that needs it calls it on first use (see "Initialisation" above).
 * Errors: BETANET_E_CRYPTO if libsodium cannot initialise. */
int betanet_init(void);

/* CPU features the library detected and uses (bit set of BETANET_CPU_*). Initialises
 * the library on first use. */
#define BETANET_CPU_SSSE3   (1u << 0)
#define BETANET_CPU_AVX2    (1u << 1)
#define BETANET_CPU_AVX512  (1u << 2)  /* AVX-512 F + BW + VL */
#define BETANET_CPU_GFNI    (1u << 3)
#define BETANET_CPU_NEON    (1u << 4)
#define BETANET_CPU_AVX512IFMA (1u << 5)  /* AVX-512 F + IFMA (52-bit multiply-add) */
#define BETANET_CPU_SSE42   (1u << 6)  /* SSE4.2 (the crc32 instruction: CRC-32C) */
unsigned int betanet_cpu_features(void);

/* Restrict the SIMD paths the library may use to `mask` & detected (for tests and
 * benchmarks of the portable path: pass 0 to force scalar code). Returns the features
 * now in use. Not thread-safe with concurrent calls into the library. */
unsigned int betanet_cpu_restrict(unsigned int mask);

/* ---- memory ---------------------------------------------------------------------------
 * Let a host without malloc supply its own allocator. Must be called before any handle
 * exists (it need not precede betanet_init); passing NULL for both restores malloc/free.
 * `alloc(size, ctx)` returns memory aligned to at least 16 bytes or NULL.
 * Errors: BETANET_E_INVALID if exactly one of alloc/free is NULL,
 *         BETANET_E_STATE if a handle allocated with the previous allocator is alive. */
typedef void *(*betanet_alloc_fn_t)(size_t size, void *ctx);
typedef void (*betanet_free_fn_t)(void *ptr, void *ctx);
int betanet_set_allocator(betanet_alloc_fn_t alloc, betanet_free_fn_t free_fn, void *ctx);

/* Number of live allocations made through the library's allocator (leak checks). */
size_t betanet_live_allocations(void);

/* ---- capabilities ------------------------------------------------------------------- */
#define BETANET_H_INSIDE
#include "betanet/fec.h"
#include "betanet/htx.h"
#include "betanet/sphinx.h"
#include "betanet/vrf.h"
#include "betanet/navigator.h"
#include "betanet/cgr.h"
#include "betanet/dpp.h"
#include "betanet/bundle.h"
#include "betanet/secagg.h"
#include "betanet/mesh.h"
#include "betanet/noise.h"
#undef BETANET_H_INSIDE

#ifdef __cplusplus
}
#endif
#endif /* BETANET_H */
