import Testing
@testable import KafkaRecords

@Suite struct MalformedInputTests {
    /// Brokers cut fetch responses at max bytes: every prefix of a valid blob decodes to the complete
    /// batches before the cut and flags the partial tail.
    @Test func truncatedTailAtEveryOffset() throws {
        let batches = [
            try RecordBatch.encode(records: sampleRecords(count: 3, seed: 1), baseOffset: 0),
            try RecordBatch.encode(records: sampleRecords(count: 4, seed: 2), compression: .gzip, baseOffset: 3),
            try RecordBatch.encode(records: sampleRecords(count: 2, seed: 3), compression: .lz4, baseOffset: 7),
        ]
        let blob = batches.joined().map { $0 }
        let ends = [batches[0].count, batches[0].count + batches[1].count, blob.count]
        let full = try RecordSet.decode(blob)
        for cut in 0...blob.count {
            let result = try RecordSet.decode(Array(blob[..<cut]))
            let complete = ends.filter { $0 <= cut }.count
            #expect(result.batches == Array(full.batches.prefix(complete)), "cut at \(cut)")
            #expect(result.bytesConsumed == (complete == 0 ? 0 : ends[complete - 1]), "cut at \(cut)")
            #expect(result.truncatedTail == (cut != result.bytesConsumed), "cut at \(cut)")
        }
    }

    @Test func truncatedLegacyTail() throws {
        let blob = legacyEntry(offset: 0, magic: 1, timestamp: 1, key: nil, value: [1, 2, 3]) + legacyEntry(offset: 1, magic: 0, key: [4], value: [5])
        for cut in 0...blob.count {
            let result = try RecordSet.decode(Array(blob[..<cut]))
            #expect(result.batches.count == (cut >= blob.count ? 2 : cut >= 37 ? 1 : 0), "cut at \(cut)")
        }
    }

    @Test func lengthBeyondInputIsATruncatedTail() throws {
        var blob = try RecordBatch.encode(records: sampleRecords(count: 2))
        putInt32(Int32.max, into: &blob, at: 8)
        let result = try RecordSet.decode(blob)
        #expect(result.batches.isEmpty && result.truncatedTail && result.bytesConsumed == 0)
    }

    /// Each entry corrupts a valid batch and names the error it must produce.
    @Test func badInputTable() throws {
        let good = try RecordBatch.encode(records: sampleRecords(count: 5), producerId: 1, producerEpoch: 0, baseSequence: 0)
        // Offset of the first record's length varint.
        let firstRecord = 61
        let cases: [(String, String, ([UInt8]) -> [UInt8])] = [
            ("wrong CRC", "crcMismatch", { b in var b = b; b[70] ^= 0x01; return b }),
            ("wrong CRC field", "crcMismatch", { b in var b = b; b[17] ^= 0x80; return b }),
            ("magic 3", "unsupportedMagic", { b in var b = b; b[16] = 3; return b }),
            ("magic -1", "unsupportedMagic", { b in var b = b; b[16] = 0xFF; return b }),
            ("negative batch length", "invalidBatchLength", { b in var b = b; putInt32(-5, into: &b, at: 8); return b }),
            ("batch length below legacy minimum", "invalidBatchLength", { b in var b = b; putInt32(3, into: &b, at: 8); return b }),
            ("v2 batch length below header", "invalidBatchLength", { b in
                var b = Array(b[..<50]); putInt32(38, into: &b, at: 8); return b }),
            ("negative record count", "invalidRecordCount", { b in var b = b; putInt32(-1, into: &b, at: 57); fixCRC(&b); return b }),
            ("huge record count", "invalidRecordCount", { b in var b = b; putInt32(Int32.max, into: &b, at: 57); fixCRC(&b); return b }),
            ("record count too high", "malformedRecord", { b in var b = b; putInt32(6, into: &b, at: 57); fixCRC(&b); return b }),
            ("record count too low", "malformedRecord", { b in var b = b; putInt32(4, into: &b, at: 57); fixCRC(&b); return b }),
            ("compression id 5", "unknownCompressionCodec", { b in var b = b; b[22] = 5; fixCRC(&b); return b }),
            ("compression id 7", "unknownCompressionCodec", { b in var b = b; b[22] = 7; fixCRC(&b); return b }),
            ("record length past batch", "malformedRecord", { b in var b = b; b[firstRecord] = 0x7E; fixCRC(&b); return b }),
            ("negative record length", "malformedRecord", { b in var b = b; b[firstRecord] = 0x03; fixCRC(&b); return b }),
            ("varint overflow", "malformedRecord", { b in
                var b = b; for i in 0..<6 { b[firstRecord + i] = 0xFF }; fixCRC(&b); return b }),
            ("key length past record", "malformedRecord", { b in var b = b; b[firstRecord + 4] = 0x7E; fixCRC(&b); return b }),
            ("key length -2", "malformedRecord", { b in var b = b; b[firstRecord + 4] = 0x03; fixCRC(&b); return b }),
            ("negative header count", "malformedRecord", { b in
                // Record 0 has no headers: its last byte is the header count.
                var b = b; let length = Int(b[firstRecord]) / 2; b[firstRecord + length] = 0x03; fixCRC(&b); return b }),
            ("huge header count", "malformedRecord", { b in
                var b = b; let length = Int(b[firstRecord]) / 2; b[firstRecord + length] = 0x7E; fixCRC(&b); return b }),
            ("trailing byte in batch", "malformedRecord", { b in
                var b = b + [0]; putInt32(Int32(b.count - 12), into: &b, at: 8); fixCRC(&b); return b }),
        ]
        #expect(decodeError(good) == nil)
        for (name, expected, corrupt) in cases {
            let error = decodeError(corrupt(good))
            #expect(error.map(kind) == expected, "\(name): \(error.map(\.description) ?? "no error")")
        }
    }

    /// Replaces the records payload of a compressed batch and fixes length and CRC.
    func withPayload(_ batch: [UInt8], _ payload: [UInt8]) -> [UInt8] {
        var b = Array(batch[..<61]) + payload
        putInt32(Int32(b.count - 12), into: &b, at: 8)
        fixCRC(&b)
        return b
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func corruptCompressedPayloads(codec: CompressionCodec) throws {
        let good = try RecordBatch.encode(records: sampleRecords(count: 20, valueSize: 300), compression: codec)
        let payload = Array(good[61...])
        var rng = SplitMix(seed: 3)
        let variants: [(String, [UInt8])] = [
            ("empty", []),
            ("cut in half", Array(payload[..<(payload.count / 2)])),
            ("last byte missing", Array(payload.dropLast())),
            ("garbage", [UInt8](repeating: 0xFF, count: 64)),
            ("random", rng.bytes(200)),
            ("header only", Array(payload.prefix(codec == .snappy ? 16 : 4)) + [0, 0, 0, 0x7F]),
        ]
        for (name, bytes) in variants {
            let error = decodeError(withPayload(good, bytes))
            #expect(error != nil, "\(codec) \(name)")
            if name != "random" && !(codec == .snappy && name == "last byte missing") {
                #expect(error.map(kind) == "decompressionFailed", "\(codec) \(name): \(error.map(\.description) ?? "-")")
            }
        }
        // Flipped bits in the middle: whatever comes out, a typed error or valid records, never a crash.
        for i in stride(from: 0, to: payload.count, by: max(1, payload.count / 50)) {
            var bytes = payload
            bytes[i] ^= 0x5A
            _ = decodeError(withPayload(good, bytes))
        }
    }

    /// A small payload that decompresses to far more than the cap is refused before it is all
    /// produced.
    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func decompressionBomb(codec: CompressionCodec) throws {
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let blob = try RecordBatch.encode(records: [Record(timestamp: 0, key: nil, value: zeros)], compression: codec)
        #expect(blob.count < 1 << 20)
        let error = decodeError(blob, maxDecompressedBytes: 1 << 20)
        #expect(error == .decompressedSizeLimitExceeded(codec: codec, limit: 1 << 20))
        #expect(throws: RecordDecodingError.self) { try codec.decompress(try codec.compress(zeros), maxOutputBytes: 4096) }
        // Within the limit it decodes.
        #expect(decodeError(blob, maxDecompressedBytes: 9 << 20) == nil)
    }

    @Test func budgetIsSharedAcrossBatches() throws {
        let value = [UInt8](repeating: 1, count: 600_000)
        let one = try RecordBatch.encode(records: [Record(timestamp: 0, key: nil, value: value)], compression: .zstd)
        #expect(decodeError(one, maxDecompressedBytes: 1_000_000) == nil)
        #expect(decodeError(one + one, maxDecompressedBytes: 1_000_000).map(kind) == "decompressedSizeLimitExceeded")
        var decoder = RecordBatchDecoder(one + one, maxDecompressedBytes: 1_000_000)
        #expect(try decoder.next() != nil)
        #expect(decoder.position == one.count)
        #expect(throws: RecordDecodingError.self) { try decoder.next() }
        #expect(decoder.position == one.count)
    }

    /// Random edits of valid batches, with the CRC fixed up so the parsers see them: only typed
    /// errors or successful decodes may come out.
    @Test func randomMutationsNeverCrash() throws {
        var rng = SplitMix(seed: 2024)
        for codec in CompressionCodec.allCases {
            let good = try RecordBatch.encode(records: sampleRecords(count: 8, valueSize: 30), compression: codec)
            for _ in 0..<300 {
                var b = good
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 21..<b.count, using: &rng)
                    b[i] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { fixCRC(&b) }
                _ = decodeError(b)
                _ = decodeError(Array(b[..<Int.random(in: 0...b.count, using: &rng)]))
            }
        }
        for _ in 0..<2000 {
            _ = decodeError(rng.bytes(Int.random(in: 0...120, using: &rng)))
        }
    }
}
