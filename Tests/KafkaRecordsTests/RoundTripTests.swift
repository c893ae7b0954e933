import Testing
@testable import KafkaRecords

@Suite struct RoundTripTests {
    @Test(arguments: CompressionCodec.allCases)
    func roundTrip(codec: CompressionCodec) throws {
        let records = sampleRecords(count: 40, valueSize: 100)
        let blob = try RecordBatch.encode(
            records: records, compression: codec, producerId: 1234, producerEpoch: 5, baseSequence: 99,
            isTransactional: true, baseOffset: 1000, partitionLeaderEpoch: 17)
        let result = try RecordSet.decode(blob)
        #expect(!result.truncatedTail && result.bytesConsumed == blob.count)
        let batch = try #require(result.batches.first)
        #expect(result.batches.count == 1)
        #expect(batch.records == withOffsets(records, from: 1000))
        #expect(batch.magic == 2 && batch.compression == codec && batch.timestampType == .createTime)
        #expect(batch.isTransactional && !batch.isControl && !batch.hasDeleteHorizon && batch.controlRecord == nil)
        #expect(batch.producerId == 1234 && batch.producerEpoch == 5 && batch.baseSequence == 99)
        #expect(batch.partitionLeaderEpoch == 17)
        #expect(batch.baseOffset == 1000 && batch.lastOffsetDelta == 39 && batch.nextOffset == 1040)
        #expect(batch.baseTimestamp == records[0].timestamp)
        #expect(batch.maxTimestamp == records.map(\.timestamp).max())
        #expect(batch.sizeInBytes == blob.count)
        #expect(batch.crc == crc32c(Array(blob[21...])))
    }

    @Test(arguments: CompressionCodec.allCases)
    func emptyBatch(codec: CompressionCodec) throws {
        let blob = try RecordBatch.encode(records: [], compression: codec)
        let batch = try #require(try RecordSet.decode(blob).batches.first)
        #expect(batch.records.isEmpty)
        #expect(batch.lastOffsetDelta == -1 && batch.baseTimestamp == -1 && batch.maxTimestamp == -1)
        if codec == .none { #expect(blob.count == 61) }
    }

    @Test(arguments: CompressionCodec.allCases)
    func oneMegabyteValue(codec: CompressionCodec) throws {
        var rng = SplitMix(seed: 99)
        // Half random, half repetitive, so compressors both work and fall back to literals.
        let value = rng.bytes(512 * 1024) + [UInt8](repeating: 0x41, count: 512 * 1024)
        let records = [
            Record(timestamp: 1, key: Array("big".utf8), value: value),
            Record(timestamp: 2, key: nil, value: nil),
        ]
        let blob = try RecordBatch.encode(records: records, compression: codec)
        let batch = try #require(try RecordSet.decode(blob).batches.first)
        #expect(batch.records == withOffsets(records, from: 0))
    }

    @Test(arguments: CompressionCodec.allCases)
    func codecRoundTripStandalone(codec: CompressionCodec) throws {
        var rng = SplitMix(seed: 5)
        for size in [0, 1, 100, 32 * 1024, 32 * 1024 + 1, 200_000] {
            let data = rng.bytes(size / 2) + [UInt8](repeating: 7, count: size - size / 2)
            let compressed = try codec.compress(data)
            #expect(try codec.decompress(compressed) == data, "\(codec) size \(size)")
        }
    }

    @Test func compressionLevels() throws {
        let records = sampleRecords(count: 50, valueSize: 200)
        for (codec, level) in [(CompressionCodec.gzip, 1), (.gzip, 9), (.lz4, 9), (.zstd, 1), (.zstd, 19)] {
            let blob = try RecordBatch.encode(records: records, compression: codec, compressionLevel: level)
            #expect(try RecordSet.decode(blob).batches[0].records == withOffsets(records, from: 0))
        }
    }

    @Test func manyBatchesMixedCodecs() throws {
        var blob: [UInt8] = []
        var expected: [[Record]] = []
        var offset: Int64 = 0
        for (i, codec) in (CompressionCodec.allCases + CompressionCodec.allCases).enumerated() {
            let records = sampleRecords(count: i + 1, seed: UInt64(i))
            blob += try RecordBatch.encode(records: records, compression: codec, baseOffset: offset)
            expected.append(withOffsets(records, from: offset))
            offset += Int64(records.count)
        }
        let result = try RecordSet.decode(blob)
        #expect(result.batches.map(\.records) == expected)
        #expect(!result.truncatedTail && result.bytesConsumed == blob.count)
    }

    @Test func controlBatch() throws {
        for type in [ControlRecord.Kind.abort, .commit] {
            let marker = ControlRecord(version: 0, type: type)
            let blob = try RecordBatch.encode(
                records: [Record(timestamp: 10, key: marker.keyBytes, value: [0, 0, 0, 0, 0, 0])],
                producerId: 5, producerEpoch: 0, isTransactional: true, baseOffset: 77, isControl: true)
            let batch = try #require(try RecordSet.decode(blob).batches.first)
            #expect(batch.isControl && batch.isTransactional)
            #expect(batch.controlRecord == marker)
        }
        let bad = try RecordBatch.encode(records: [Record(timestamp: 1, key: [0, 0], value: nil)], isControl: true)
        #expect(decodeError(bad).map(kind) == "invalidControlRecord")
    }

    @Test func logAppendTimeUsesMaxTimestamp() throws {
        var blob = try RecordBatch.encode(records: sampleRecords(count: 5), compression: .zstd)
        blob[22] |= 0x08  // attributes: log append time
        var ts = ByteBuilder()
        ts.i64(42_000)
        blob.replaceSubrange(35..<43, with: ts.bytes)  // maxTimestamp
        fixCRC(&blob)
        let batch = try #require(try RecordSet.decode(blob).batches.first)
        #expect(batch.timestampType == .logAppendTime)
        #expect(batch.records.allSatisfy { $0.timestamp == 42_000 })
    }

    @Test func attributesBits() {
        let a = RecordBatchAttributes(compression: .zstd, timestampType: .logAppendTime, isTransactional: true, isControl: true, hasDeleteHorizon: true)
        #expect(a.rawValue == 0x7C)
        #expect(a.compression == .zstd && a.timestampType == .logAppendTime && a.isTransactional && a.isControl && a.hasDeleteHorizon)
        #expect(RecordBatchAttributes(rawValue: 5).compression == nil)
    }
}
