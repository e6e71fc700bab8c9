# betanet._native.vrf — the VRF section of betanet.h (ECVRF-EDWARDS25519-SHA512-TAI).
# Inputs are read in place from any C-contiguous byte buffer; the GIL is released
# around every point operation.
from libc.stdint cimport uint8_t
from betanet._native._common cimport *

cdef extern from "betanet.h" nogil:
    enum:
        BETANET_VRF_SEED_BYTES
        BETANET_VRF_PUBLIC_KEY_BYTES
        BETANET_VRF_PROOF_BYTES
        BETANET_VRF_OUTPUT_BYTES
    ctypedef struct betanet_vrf_key_t:
        pass
    int betanet_vrf_key_new(const uint8_t *seed, size_t seed_len, betanet_vrf_key_t **out)
    void betanet_vrf_key_free(betanet_vrf_key_t *key)
    int betanet_vrf_key_public(const betanet_vrf_key_t *key, uint8_t *pk, size_t pk_len)
    int betanet_vrf_prove(const betanet_vrf_key_t *key, const uint8_t *alpha, size_t alpha_len,
                          uint8_t *proof, size_t proof_len, uint8_t *output, size_t output_len)
    int betanet_vrf_verify(const uint8_t *pk, size_t pk_len, const uint8_t *proof, size_t proof_len,
                           const uint8_t *alpha, size_t alpha_len, uint8_t *output, size_t output_len)
    int betanet_vrf_proof_to_hash(const uint8_t *proof, size_t proof_len,
                                  uint8_t *output, size_t output_len)
    int betanet_vrf_validate_key(const uint8_t *pk, size_t pk_len)

SEED_BYTES = BETANET_VRF_SEED_BYTES
PUBLIC_KEY_BYTES = BETANET_VRF_PUBLIC_KEY_BYTES
PROOF_BYTES = BETANET_VRF_PROOF_BYTES
OUTPUT_BYTES = BETANET_VRF_OUTPUT_BYTES


cdef inline const uint8_t *ptr(const uint8_t[::1] view) noexcept:
    # A zero-length view has no first element; C accepts NULL with length 0.
    return &view[0] if view.shape[0] else NULL


cdef class Key:
    """A VRF secret key held by libbetanet (wiped when freed). Never exposes the secret."""
    cdef betanet_vrf_key_t *_key

    def __cinit__(self, seed=None):
        cdef const uint8_t[::1] sv
        cdef int rc
        if seed is None:
            with nogil:
                rc = betanet_vrf_key_new(NULL, 0, &self._key)
        else:
            sv = seed
            if sv.shape[0] != BETANET_VRF_SEED_BYTES:
                from betanet.errors import InvalidArgumentError
                raise InvalidArgumentError(f"VRF seed must be {BETANET_VRF_SEED_BYTES} bytes, got {sv.shape[0]}")
            rc = betanet_vrf_key_new(&sv[0], sv.shape[0], &self._key)
        check(rc, "betanet_vrf_key_new")

    def __dealloc__(self):
        betanet_vrf_key_free(self._key)
        self._key = NULL

    def public_key(self) -> bytes:
        cdef uint8_t pk[32]
        check(betanet_vrf_key_public(self._key, pk, 32), "betanet_vrf_key_public")
        return pk[:32]

    def prove(self, alpha, bint with_output=False):
        """The 80-byte proof for alpha, or (proof, output) when with_output."""
        cdef const uint8_t[::1] av = alpha
        cdef const uint8_t *ap = ptr(av)
        cdef size_t n = av.shape[0]
        cdef uint8_t proof[80]
        cdef uint8_t out[64]
        cdef int rc
        with nogil:
            rc = betanet_vrf_prove(self._key, ap, n, proof, 80, out if with_output else NULL, 64)
        check(rc, "betanet_vrf_prove")
        if with_output:
            return proof[:80], out[:64]
        return proof[:80]


def verify(public_key, proof, alpha) -> bytes:
    cdef const uint8_t[::1] kv = public_key
    cdef const uint8_t[::1] pv = proof
    cdef const uint8_t[::1] av = alpha
    cdef const uint8_t *kp = ptr(kv)
    cdef const uint8_t *pp = ptr(pv)
    cdef const uint8_t *ap = ptr(av)
    cdef size_t kn = kv.shape[0], pn = pv.shape[0], an = av.shape[0]
    cdef uint8_t out[64]
    cdef uint8_t dummy[1]
    cdef int rc
    # NULL stands for "no bytes"; the C API wants non-NULL pk/proof, so point at a dummy.
    if kp == NULL:
        kp = dummy
    if pp == NULL:
        pp = dummy
    with nogil:
        rc = betanet_vrf_verify(kp, kn, pp, pn, ap, an, out, 64)
    check(rc, "betanet_vrf_verify")
    return out[:64]


def proof_to_hash(proof) -> bytes:
    cdef const uint8_t[::1] pv = proof
    cdef const uint8_t *pp = ptr(pv)
    cdef uint8_t out[64]
    cdef uint8_t dummy[1]
    cdef int rc
    if pp == NULL:
        pp = dummy
    with nogil:
        rc = betanet_vrf_proof_to_hash(pp, pv.shape[0], out, 64)
    check(rc, "betanet_vrf_proof_to_hash")
    return out[:64]


def validate_key(public_key) -> None:
    cdef const uint8_t[::1] kv = public_key
    cdef const uint8_t *kp = ptr(kv)
    cdef uint8_t dummy[1]
    if kp == NULL:
        kp = dummy
    check(betanet_vrf_validate_key(kp, kv.shape[0]), "betanet_vrf_validate_key")
