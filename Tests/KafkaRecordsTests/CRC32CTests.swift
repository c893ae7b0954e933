import Testing
@testable import KafkaRecords

@Suite struct CRC32CTests {
    @Test func checkValue() {
        #expect(crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(Array("123456789".utf8).withUnsafeBytes { crc32cPortable($0) } == 0xE306_9283)
        #expect(crc32cBitwise(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc32c([]) == 0)
    }

    @Test func hardwareIsUsedOnX86() {
        #if arch(x86_64)
        #expect(crc32cIsHardwareAccelerated)
        #else
        #expect(!crc32cIsHardwareAccelerated)
        #endif
    }

    /// Odd lengths and misaligned starts cross every path: byte loop, 8-byte loop, the three-stream
    /// 256- and 8192-byte blocks and their combination.
    @Test func hardwareMatchesPortable() {
        var rng = SplitMix(seed: 42)
        let data = rng.bytes(80_000)
        var lengths = Array(0..<80) + [255, 256, 767, 768, 769, 1023, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 7, 70_001]
        for _ in 0..<40 { lengths.append(Int.random(in: 0..<79_000, using: &rng) | 1) }
        data.withUnsafeBytes { all in
            for length in lengths {
                for offset in [0, 1, 3, 7] where offset + length <= all.count {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let fast = crc32c(slice)
                    #expect(fast == crc32cPortable(slice), "length \(length) offset \(offset)")
                    if length < 2000 {
                        #expect(fast == crc32cBitwise(Array(slice)), "length \(length) offset \(offset)")
                    }
                }
            }
        }
    }

    @Test func continuation() {
        var rng = SplitMix(seed: 7)
        let data = rng.bytes(100_000)
        let whole = crc32c(data)
        for split in [0, 1, 13, 4096, 50_001, 100_000] {
            let first = crc32c(Array(data[..<split]))
            #expect(crc32c(Array(data[split...]), continuing: first) == whole)
        }
    }
}
