/*
 * BetanetExample.kt — libbetanet's C ABI from Kotlin/JVM through JNA.
 *
 * Loads the installed shared libbetanet (jna.library.path, or an absolute path in
 * BETANET_LIBRARY), prints betanet_version_string, shows betanet_strerror, does a
 * Reed-Solomon round trip (encode 4 data shards into 2 parity shards, drop 2 shards,
 * rebuild them, check every byte) and one ECVRF prove/verify on RFC 9381 example 16.
 * Exit status 0 when every check passes.
 */
import com.sun.jna.IntegerType
import com.sun.jna.Library
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import kotlin.system.exitProcess

/** C size_t: JNA has no built-in mapping; its width is the platform's (8 bytes on LP64). */
class SizeT(value: Long = 0) : IntegerType(Native.SIZE_T_SIZE, value, true) {
    // kotlin.Number declares these abstract; java.lang.Number (IntegerType's base) does not
    override fun toByte() = toInt().toByte()
    override fun toChar() = toInt().toChar()
    override fun toShort() = toInt().toShort()
}

/** The declarations this program uses, transcribed from include/betanet.h (same names). */
@Suppress("FunctionName")
interface LibBetanet : Library {
    fun betanet_init(): Int
    fun betanet_version_string(): String
    fun betanet_strerror(code: Int): String

    // betanet/fec.h — betanet_fec_t is opaque: a Pointer
    fun betanet_fec_new(k: Int, m: Int, out: PointerByReference): Int
    fun betanet_fec_free(fec: Pointer?)
    fun betanet_fec_encode(fec: Pointer, data: Array<Pointer>, parity: Array<Pointer>, len: SizeT): Int
    fun betanet_fec_reconstruct(fec: Pointer, shards: Array<Pointer>, present: ByteArray, len: SizeT): Int

    // betanet/vrf.h — byte arrays are copied in and back out around each call
    fun betanet_vrf_key_new(seed: ByteArray?, seedLen: SizeT, out: PointerByReference): Int
    fun betanet_vrf_key_free(key: Pointer?)
    fun betanet_vrf_key_public(key: Pointer, pk: ByteArray, pkLen: SizeT): Int
    fun betanet_vrf_prove(key: Pointer, alpha: ByteArray?, alphaLen: SizeT,
                          proof: ByteArray, proofLen: SizeT, output: ByteArray?, outputLen: SizeT): Int
    fun betanet_vrf_verify(pk: ByteArray, pkLen: SizeT, proof: ByteArray, proofLen: SizeT,
                           alpha: ByteArray?, alphaLen: SizeT, output: ByteArray, outputLen: SizeT): Int
    // function twins of the BETANET_VRF_*_BYTES macros: sizes without transcribing them
    fun betanet_vrf_public_key_bytes(): SizeT
    fun betanet_vrf_proof_bytes(): SizeT
    fun betanet_vrf_output_bytes(): SizeT
}

// Status codes from betanet.h
const val BETANET_OK = 0
const val BETANET_E_AUTH = -4

val lib: LibBetanet = Native.load(System.getenv("BETANET_LIBRARY") ?: "betanet", LibBetanet::class.java)

// Sizes from the library itself (betanet/vrf.h's function twins)
val VRF_PUBLIC_KEY_BYTES = lib.betanet_vrf_public_key_bytes().toInt()
val VRF_PROOF_BYTES = lib.betanet_vrf_proof_bytes().toInt()
val VRF_OUTPUT_BYTES = lib.betanet_vrf_output_bytes().toInt()

fun check(rc: Int, what: String) {
    if (rc != BETANET_OK) {
        System.err.println("$what: ${lib.betanet_strerror(rc)}")
        exitProcess(1)
    }
}

fun fail(what: String): Nothing {
    System.err.println(what)
    exitProcess(1)
}

fun size(n: Int) = SizeT(n.toLong())

fun hex(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

fun fecRoundTrip() {
    val k = 4
    val m = 2
    val len = 1000
    val out = PointerByReference()
    check(lib.betanet_fec_new(k, m, out), "betanet_fec_new")
    val fec = out.value
    try {
        // shard buffers live in native memory, so the library reads and writes them in place
        val shards = Array<Pointer>(k + m) { Memory(len.toLong()) }
        for (i in 0 until k) shards[i].write(0, ByteArray(len) { x -> (i * 37 + x * 11).toByte() }, 0, len)
        check(lib.betanet_fec_encode(fec, shards.copyOfRange(0, k), shards.copyOfRange(k, k + m), size(len)),
              "betanet_fec_encode")
        val original = shards.map { it.getByteArray(0, len) }

        val lost = listOf(1, k + 1)         // one data shard and one parity shard
        val present = ByteArray(k + m) { 1 }
        for (i in lost) {
            present[i] = 0
            shards[i].clear(len.toLong())
        }
        check(lib.betanet_fec_reconstruct(fec, shards, present, size(len)), "betanet_fec_reconstruct")
        for (i in 0 until k + m)
            if (!shards[i].getByteArray(0, len).contentEquals(original[i])) fail("reconstruct: shard $i differs")
        println("reconstruct: rebuilt shards ${lost[0]} and ${lost[1]} from the other $k")
    } finally {
        lib.betanet_fec_free(fec)
    }
}

fun vrfProveVerify() {
    // RFC 9381 appendix B.3, example 16 (ECVRF-EDWARDS25519-SHA512-TAI, empty alpha)
    val seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    val expectPk = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    val expectPi = hex("8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f" +
                       "26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab12" +
                       "68a1b0db10836d9826a528ca76567805")
    val expectBeta = hex("90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff" +
                         "66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae")
    val alpha = ByteArray(0)

    val out = PointerByReference()
    check(lib.betanet_vrf_key_new(seed, size(seed.size), out), "betanet_vrf_key_new")
    val key = out.value
    val pk = ByteArray(VRF_PUBLIC_KEY_BYTES)
    val proof = ByteArray(VRF_PROOF_BYTES)
    val beta = ByteArray(VRF_OUTPUT_BYTES)
    try {
        check(lib.betanet_vrf_key_public(key, pk, size(pk.size)), "betanet_vrf_key_public")
        check(lib.betanet_vrf_prove(key, alpha, size(0), proof, size(proof.size), beta, size(beta.size)),
              "betanet_vrf_prove")
    } finally {
        lib.betanet_vrf_key_free(key)       // wipes the secret key
    }
    if (!pk.contentEquals(expectPk) || !proof.contentEquals(expectPi) || !beta.contentEquals(expectBeta))
        fail("vrf: prove does not match RFC 9381 example 16")

    val verified = ByteArray(VRF_OUTPUT_BYTES)
    check(lib.betanet_vrf_verify(pk, size(pk.size), proof, size(proof.size), alpha, size(0),
                                 verified, size(verified.size)), "betanet_vrf_verify")
    if (!verified.contentEquals(beta)) fail("vrf: verify output differs from prove output")

    proof[40] = (proof[40].toInt() xor 1).toByte()    // flip one bit of c
    val rc = lib.betanet_vrf_verify(pk, size(pk.size), proof, size(proof.size), alpha, size(0),
                                    verified, size(verified.size))
    if (rc != BETANET_E_AUTH) fail("vrf: tampered proof gave $rc, expected BETANET_E_AUTH")
    println("vrf: RFC 9381 example 16 proved and verified; tampered proof rejected (${lib.betanet_strerror(rc)})")
}

fun main() {
    check(lib.betanet_init(), "betanet_init")
    println("libbetanet ${lib.betanet_version_string()}")
    fecRoundTrip()
    vrfProveVerify()
    println("ok: libbetanet ${lib.betanet_version_string()} through JNA")
}
