// main.swift — Reed-Solomon FEC through libbetanet's C API from Swift (module CBetanet).
//
// Encodes 4 data shards into 2 parity shards, drops 2 shards, rebuilds them and checks
// every byte. Exit status 0 on success. Build: see README.md.
import CBetanet
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

struct BetanetError: Error, CustomStringConvertible {
    let description: String
}

/// Throws with betanet_strerror's text for a non-zero status.
func check(_ rc: Int32, _ what: String) throws {
    if rc != BETANET_OK {
        throw BetanetError(description: "\(what): \(String(cString: betanet_strerror(rc)))")
    }
}

func fecRoundTrip() throws {
    let k = 4, m = 2, len = 1000
    var fec: OpaquePointer?           // betanet_fec_t * (an opaque C struct)
    try check(betanet_fec_new(UInt32(k), UInt32(m), &fec), "betanet_fec_new")
    defer { betanet_fec_free(fec) }

    // Shards live in manually allocated memory so the library reads and writes them in place.
    let shards: [UnsafeMutablePointer<UInt8>] = (0..<(k + m)).map { _ in
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: len)
        p.initialize(repeating: 0, count: len)
        return p
    }
    defer { shards.forEach { $0.deallocate() } }
    for i in 0..<k {
        for x in 0..<len { shards[i][x] = UInt8(truncatingIfNeeded: i * 37 + x * 11) }
    }

    // const uint8_t *const *data, uint8_t *const *parity, size_t len (Int in Swift)
    let data: [UnsafePointer<UInt8>?] = shards[0..<k].map { UnsafePointer($0) }
    let parity: [UnsafeMutablePointer<UInt8>?] = shards[k...].map { $0 }
    try check(betanet_fec_encode(fec, data, parity, len), "betanet_fec_encode")
    let original = shards.map { Array(UnsafeBufferPointer(start: $0, count: len)) }

    let lost = [1, k + 1]             // one data shard and one parity shard
    var present = [UInt8](repeating: 1, count: k + m)
    for i in lost {
        present[i] = 0
        shards[i].initialize(repeating: 0, count: len)
    }
    let all: [UnsafeMutablePointer<UInt8>?] = shards.map { $0 }
    try check(betanet_fec_reconstruct(fec, all, present, len), "betanet_fec_reconstruct")
    for i in 0..<(k + m) where Array(UnsafeBufferPointer(start: shards[i], count: len)) != original[i] {
        throw BetanetError(description: "reconstruct: shard \(i) differs")
    }
    print("reconstruct: rebuilt shards \(lost[0]) and \(lost[1]) from the other \(k)")
}

do {
    try check(betanet_init(), "betanet_init")
    try fecRoundTrip()
    print("ok: libbetanet \(String(cString: betanet_version_string())) through Swift")
} catch {
    fputs("\(error)\n", stderr)
    exit(1)
}
