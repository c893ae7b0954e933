import Testing
@testable import KafkaRecords

@Suite struct LegacyMessageSetTests {
    @Test func plainV0MessageSet() throws {
        let blob = legacyEntry(offset: 10, magic: 0, key: Array("a".utf8), value: Array("one".utf8))
            + legacyEntry(offset: 11, magic: 0, key: nil, value: Array("two".utf8))
            + legacyEntry(offset: 12, magic: 0, key: [], value: nil)
        let result = try RecordSet.decode(blob)
        #expect(!result.truncatedTail && result.bytesConsumed == blob.count)
        #expect(result.batches.map(\.magic) == [0, 0, 0])
        #expect(result.batches.flatMap(\.records) == [
            Record(offset: 10, timestamp: -1, key: Array("a".utf8), value: Array("one".utf8)),
            Record(offset: 11, timestamp: -1, key: nil, value: Array("two".utf8)),
            Record(offset: 12, timestamp: -1, key: [], value: nil),
        ])
        #expect(result.batches[0].crc == crc32Bitwise(Array(blob[16..<(12 + 4 + 1 + 1 + 4 + 1 + 4 + 3)])))
        #expect(result.batches[2].nextOffset == 13)
    }

    @Test func plainV1MessageSet() throws {
        let blob = legacyEntry(offset: 0, magic: 1, timestamp: 1000, key: nil, value: [1])
            + legacyEntry(offset: 1, magic: 1, attributes: 0x08, timestamp: 2000, key: [2], value: [3])
        let result = try RecordSet.decode(blob)
        #expect(result.batches.flatMap(\.records) == [
            Record(offset: 0, timestamp: 1000, key: nil, value: [1]),
            Record(offset: 1, timestamp: 2000, key: [2], value: [3]),
        ])
        #expect(result.batches[0].timestampType == .createTime)
        #expect(result.batches[1].timestampType == .logAppendTime)
        #expect(result.batches[1].producerId == -1 && result.batches[1].magic == 1)
    }

    /// A compressed v1 wrapper: inner offsets are relative, the wrapper has the last one's absolute offset.
    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4])
    func compressedV1Wrapper(codec: CompressionCodec) throws {
        let inner = legacyEntry(offset: 0, magic: 1, timestamp: 500, key: Array("k0".utf8), value: Array("v0".utf8))
            + legacyEntry(offset: 1, magic: 1, timestamp: 501, key: nil, value: Array("v1".utf8))
            + legacyEntry(offset: 2, magic: 1, timestamp: 502, key: Array("k2".utf8), value: nil)
        let compressed = try codec.compress(inner)
        let wrapper = legacyEntry(offset: 102, magic: 1, attributes: Int8(codec.rawValue), timestamp: 502, key: nil, value: compressed)
        let plainAfter = legacyEntry(offset: 103, magic: 1, timestamp: 600, key: nil, value: [9])
        let result = try RecordSet.decode(wrapper + plainAfter)
        #expect(result.batches.count == 2)
        let batch = result.batches[0]
        #expect(batch.compression == codec && batch.magic == 1)
        #expect(batch.baseOffset == 100 && batch.lastOffset == 102)
        #expect(batch.records == [
            Record(offset: 100, timestamp: 500, key: Array("k0".utf8), value: Array("v0".utf8)),
            Record(offset: 101, timestamp: 501, key: nil, value: Array("v1".utf8)),
            Record(offset: 102, timestamp: 502, key: Array("k2".utf8), value: nil),
        ])
        #expect(result.batches[1].records == [Record(offset: 103, timestamp: 600, key: nil, value: [9])])

        // Log append time on the wrapper overrides the inner timestamps.
        let appended = legacyEntry(offset: 102, magic: 1, attributes: Int8(codec.rawValue) | 0x08, timestamp: 9999, key: nil, value: compressed)
        let batch2 = try #require(try RecordSet.decode(appended).batches.first)
        #expect(batch2.records.map(\.timestamp) == [9999, 9999, 9999])
        #expect(batch2.timestampType == .logAppendTime)
    }

    /// A compressed v0 wrapper: inner offsets are absolute.
    @Test func gzipV0Wrapper() throws {
        let inner = legacyEntry(offset: 50, magic: 0, key: nil, value: [1]) + legacyEntry(offset: 51, magic: 0, key: [2], value: [3])
        let wrapper = legacyEntry(offset: 51, magic: 0, attributes: 1, key: nil, value: try CompressionCodec.gzip.compress(inner))
        let batch = try #require(try RecordSet.decode(wrapper).batches.first)
        #expect(batch.records == [
            Record(offset: 50, timestamp: -1, key: nil, value: [1]),
            Record(offset: 51, timestamp: -1, key: [2], value: [3]),
        ])
    }

    /// Kafka before 0.10 computed the LZ4 frame header checksum over the magic number too; magic-0
    /// messages with such frames must still decode (Java ignores that checksum for magic 0).
    @Test func lz4V0WrapperWithKafkaBrokenHeaderChecksum() throws {
        let inner = legacyEntry(offset: 0, magic: 0, key: nil, value: Array("old".utf8))
        var frame = try CompressionCodec.lz4.compress(inner)
        let broken = UInt8(truncatingIfNeeded: Decompressor.xxh32Small(frame[0..<6]) >> 8)
        #expect(frame[6] == UInt8(truncatingIfNeeded: Decompressor.xxh32Small(frame[4..<6]) >> 8))
        #expect(broken != frame[6])
        frame[6] = broken
        let wrapper = legacyEntry(offset: 0, magic: 0, attributes: 3, key: nil, value: frame)
        #expect(try RecordSet.decode(wrapper).batches[0].records == [Record(offset: 0, timestamp: -1, key: nil, value: Array("old".utf8))])
    }

    @Test func xxh32KnownValues() {
        // Reference values from the xxHash test vectors (seed 0).
        #expect(Decompressor.xxh32Small([][...]) == 0x02CC_5D05)
        #expect(Decompressor.xxh32Small(Array("a".utf8)[...]) == 0x550D_7456)
        #expect(Decompressor.xxh32Small(Array("abc".utf8)[...]) == 0x32D1_53FF)
    }

    @Test func mixedLegacyAndV2() throws {
        let v2 = try RecordBatch.encode(records: [Record(timestamp: 7, key: nil, value: [7])], baseOffset: 2)
        let blob = legacyEntry(offset: 0, magic: 0, key: nil, value: [0]) + legacyEntry(offset: 1, magic: 1, timestamp: 5, key: nil, value: [1]) + v2
        let result = try RecordSet.decode(blob)
        #expect(result.batches.map(\.magic) == [0, 1, 2])
        #expect(result.batches.flatMap(\.records).map(\.offset) == [0, 1, 2])
    }

    @Test func legacyErrors() throws {
        var badCRC = legacyEntry(offset: 3, magic: 1, timestamp: 1, key: nil, value: [1, 2, 3])
        badCRC[badCRC.count - 1] ^= 0xFF
        #expect(decodeError(badCRC).map(kind) == "crcMismatch")

        let zstdLegacy = legacyEntry(offset: 0, magic: 1, attributes: 4, key: nil, value: try CompressionCodec.zstd.compress([1]))
        #expect(decodeError(zstdLegacy).map(kind) == "unknownCompressionCodec")

        let innerCompressed = legacyEntry(offset: 0, magic: 1, attributes: 1, key: nil, value: try CompressionCodec.gzip.compress([1]))
        let nested = legacyEntry(offset: 0, magic: 1, attributes: 1, key: nil, value: try CompressionCodec.gzip.compress(innerCompressed))
        #expect(decodeError(nested).map(kind) == "malformedLegacyMessage")

        let noValue = legacyEntry(offset: 0, magic: 1, attributes: 1, key: nil, value: nil)
        #expect(decodeError(noValue).map(kind) == "malformedLegacyMessage")

        let innerMagic0 = legacyEntry(offset: 0, magic: 0, key: nil, value: [1])
        let mismatch = legacyEntry(offset: 0, magic: 1, attributes: 1, key: nil, value: try CompressionCodec.gzip.compress(innerMagic0))
        #expect(decodeError(mismatch).map(kind) == "malformedLegacyMessage")

        let truncatedInner = legacyEntry(offset: 0, magic: 1, key: nil, value: [1])
        let cut = legacyEntry(offset: 0, magic: 1, attributes: 1, key: nil, value: try CompressionCodec.gzip.compress(Array(truncatedInner.dropLast(2))))
        #expect(decodeError(cut).map(kind) == "malformedLegacyMessage")

        // Key length pointing past the message (with a CRC that matches the bad bytes).
        var body = ByteBuilder()
        body.i8(0)
        body.i8(0)
        body.i32(1000)
        body.i32(-1)
        var entry = ByteBuilder()
        entry.i64(0)
        entry.i32(Int32(4 + body.bytes.count))
        entry.u32(crc32Bitwise(body.bytes))
        entry.raw(body.bytes)
        #expect(decodeError(entry.bytes).map(kind) == "malformedLegacyMessage")

        // Magic 1 message too short for its timestamp.
        var short = ByteBuilder()
        short.i64(0)
        short.i32(14)
        short.raw([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(decodeError(short.bytes).map(kind) == "invalidBatchLength")
    }
}
