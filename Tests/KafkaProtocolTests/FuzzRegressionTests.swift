#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import KafkaProtocol

/// Inputs found by scripts/fuzz.sh (Sources/KafkaWireFuzz), kept as tests once fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// An element type far larger in memory than on the wire (4 KiB from one byte).
    struct Wide: Sendable {
        var a = SIMD64<Int64>(), b = SIMD64<Int64>(), c = SIMD64<Int64>(), d = SIMD64<Int64>()
        var e = SIMD64<Int64>(), f = SIMD64<Int64>(), g = SIMD64<Int64>(), h = SIMD64<Int64>()
    }

    /// Array counts were trusted for the up-front reservation once checked against the bytes left:
    /// a 6.5 MB DescribeGroups response claiming 6.5 million groups made the decoder malloc 624 MB
    /// (96 bytes per group) before it read the first one (libFuzzer -malloc_limit_mb=512: "out-of-
    /// memory (malloc(624000032))"); at the client's 256 MiB frame limit that is ~25 GiB.
    @Test func arrayCountDoesNotReserveElementStrideTimesInput() throws {
        let count = 250_000  // claimed and backed by as many bytes: 1 GiB of Wide before the fix
        var bytes: [UInt8] = []
        withUnsafeBytes(of: Int32(count).bigEndian) { bytes += $0 }
        bytes += [UInt8](repeating: 7, count: count)
        var r = WireReader(bytes)
        #expect(MemoryLayout<Wide>.stride == 4096)

        // Stop at the first element: decoding them all would build a genuine 1 GiB array.
        struct Enough: Error {}
        var grewBeforeFirstElement: Int?
        let before = virtualMemoryBytes()
        #expect(throws: Enough.self) {
            _ = try r.readArray(compact: false, nullable: false, "wide") { _ -> Wide in
                grewBeforeFirstElement = virtualMemoryBytes() - before
                throw Enough()
            }
        }
        // The up-front reservation is bounded (1024 elements: 4 MiB here), whatever the count.
        let grew = try #require(grewBeforeFirstElement)
        #expect(grew < 256 << 20, "reserved \(grew >> 20) MiB for an array of \(count) claimed elements")
    }

    /// The shape of the fuzzer's input through a generated decoder: a typed error.
    @Test func describeGroupsResponseClaimingMillionsOfGroups() throws {
        let count: Int32 = 2_000_000
        var body: [UInt8] = []
        withUnsafeBytes(of: count.bigEndian) { body += $0 }
        body += [UInt8](repeating: 0, count: Int(count))
        #expect(throws: WireDecodingError.self) { try DescribeGroupsResponse.decode(body, version: 0) }
    }

    /// The process's virtual size (first field of /proc/self/statm, in pages): a reservation counts
    /// in full as soon as it is made, even though none of its pages is touched yet.
    private func virtualMemoryBytes() -> Int {
        #if canImport(Glibc)
        guard let f = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(f) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), f) != nil else { return 0 }
        let pages = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: " ").first.flatMap { Int($0) } ?? 0
        return pages * sysconf(Int32(_SC_PAGESIZE))
        #else
        return 0
        #endif
    }
}
