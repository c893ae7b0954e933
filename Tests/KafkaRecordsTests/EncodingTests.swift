import Testing
@testable import KafkaRecords

@Suite struct EncodingTests {
    /// A v2 batch written byte by byte from the spec (section 5.3.1/5.3.2), CRC included, must equal
    /// the encoder's output.
    @Test func knownBytesUncompressedBatch() throws {
        let base: Int64 = 1_700_000_000_000
        let records = [
            Record(timestamp: base, key: Array("k".utf8), value: Array("hello".utf8)),
            Record(
                timestamp: base + 300, key: nil, value: Array("v2".utf8),
                headers: [RecordHeader(key: "h", value: [1, 2]), RecordHeader(key: "n", value: nil)]),
        ]
        let encoded = try RecordBatch.encode(
            records: records, producerId: 42, producerEpoch: 3, baseSequence: 7, isTransactional: true)

        let recordBytes: [UInt8] = [
            // record 0: length 12, attributes, timestampDelta 0, offsetDelta 0, key "k", value "hello", 0 headers
            0x18, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x0A, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x00,
            // record 1: length 17, attributes, timestampDelta 300 (zigzag 600 = 0xD8 0x04), offsetDelta 1,
            // null key, value "v2", 2 headers: "h" -> [1, 2], "n" -> null
            0x22, 0x00, 0xD8, 0x04, 0x02, 0x01, 0x04, 0x76, 0x32, 0x04,
            0x02, 0x68, 0x04, 0x01, 0x02,
            0x02, 0x6E, 0x01,
        ]
        var afterCRC = ByteBuilder()
        afterCRC.raw([0x00, 0x10])  // attributes: no compression, create time, transactional
        afterCRC.i32(1)  // lastOffsetDelta
        afterCRC.i64(base)  // baseTimestamp
        afterCRC.i64(base + 300)  // maxTimestamp
        afterCRC.i64(42)  // producerId
        afterCRC.i16(3)  // producerEpoch
        afterCRC.i32(7)  // baseSequence
        afterCRC.i32(2)  // records count
        afterCRC.raw(recordBytes)

        var expected = ByteBuilder()
        expected.i64(0)  // baseOffset
        expected.i32(Int32(4 + 1 + 4 + afterCRC.bytes.count))  // batchLength
        expected.i32(-1)  // partitionLeaderEpoch
        expected.i8(2)  // magic
        expected.u32(crc32cBitwise(afterCRC.bytes))
        expected.raw(afterCRC.bytes)

        #expect(encoded == expected.bytes)
        #expect(expected.bytes.count == 61 + recordBytes.count)

        let decoded = try RecordSet.decode(encoded)
        #expect(decoded.batches.count == 1)
        #expect(decoded.batches[0].records == withOffsets(records, from: 0))
        #expect(decoded.batches[0].isTransactional)
        #expect(decoded.batches[0].producerId == 42)
    }

    /// Varint fields at the edges of their byte counts, checked against the independent writer.
    @Test(arguments: [0, 1, 63, 64, 127, 128, 8191, 8192, 1_048_575, 1_048_576])
    func varintLengths(length: Int) throws {
        let key = [UInt8](repeating: 0x61, count: length)
        for delta: Int64 in [0, 1, -1, 63, -64, 64, -65, 1 << 20, -(1 << 40), Int64(Int32.max) * 4] {
            let records = [
                Record(timestamp: 1000, key: [], value: nil),
                Record(timestamp: 1000 &+ delta, key: key, value: key.isEmpty ? nil : [1], headers: [RecordHeader(key: String(repeating: "x", count: length % 300), value: key)]),
            ]
            let encoded = try RecordBatch.encode(records: records)
            // The second record, as the spec lays it out.
            var body = ByteBuilder()
            body.i8(0)
            body.varlong(delta)
            body.varlong(1)
            body.varlong(Int64(length))
            body.raw(key)
            if key.isEmpty { body.varlong(-1) } else {
                body.varlong(1)
                body.raw([1])
            }
            body.varlong(1)
            body.varlong(Int64(length % 300))
            body.raw(Array(String(repeating: "x", count: length % 300).utf8))
            body.varlong(Int64(length))
            body.raw(key)
            var record = ByteBuilder()
            record.varlong(Int64(body.bytes.count))
            record.raw(body.bytes)
            #expect(Array(encoded.suffix(record.bytes.count)) == record.bytes)
            #expect(RecordBatchBuilder.encodedSize(key: key, value: key.isEmpty ? nil : [1], headers: records[1].headers, timestampDelta: delta, offsetDelta: 1) == record.bytes.count)
            let decoded = try RecordSet.decode(encoded)
            #expect(decoded.batches[0].records == withOffsets(records, from: 0))
            #expect(decoded.batches[0].maxTimestamp == max(1000, 1000 &+ delta))
        }
    }

    /// Kafka's Java client accepts non-minimal varints (up to 5 bytes) and rejects longer ones.
    @Test func nonMinimalAndOverlongVarints() throws {
        func batch(recordBytes: [UInt8]) -> [UInt8] {
            var blob = try! RecordBatch.encode(records: [Record(timestamp: 5, key: nil, value: nil)])
            blob.removeLast(blob.count - 61)
            blob.append(contentsOf: recordBytes)
            putInt32(Int32(blob.count - 12), into: &blob, at: 8)
            fixCRC(&blob)
            return blob
        }
        // length 6 written in five bytes; fields: attributes, ts 0, offset 0, key null, value null, 0 headers
        let padded = batch(recordBytes: [0x8C, 0x80, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00])
        let decoded = try RecordSet.decode(padded)
        #expect(decoded.batches[0].records == [Record(offset: 0, timestamp: 5, key: nil, value: nil)])

        let overlong = batch(recordBytes: [0x8C, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00])
        let error = decodeError(overlong)
        #expect(error.map(kind) == "malformedRecord")
        #expect(error?.description.contains("varint overflow") == true)
    }

    @Test func builderMatchesStaticEncodeAndIsReusable() throws {
        let records = sampleRecords(count: 25)
        var builder = RecordBatchBuilder(initialCapacity: 64)
        #expect(builder.sizeInBytes == 61)
        for r in records { builder.append(r) }
        #expect(builder.recordCount == 25)
        let sizeBefore = builder.sizeInBytes
        let first = try builder.finish(producerId: 9, producerEpoch: 1, baseSequence: 100)
        #expect(first.count == sizeBefore)
        #expect(first == (try RecordBatch.encode(records: records, producerId: 9, producerEpoch: 1, baseSequence: 100)))
        #expect(builder.isEmpty && builder.sizeInBytes == 61 && builder.baseTimestamp == -1)
        for r in records { builder.append(r) }
        let second = try builder.finish(producerId: 9, producerEpoch: 1, baseSequence: 100)
        #expect(second == first)
    }

    /// The builder is a value: a copy taken mid-batch evolves independently.
    @Test func builderCopiesAreIndependent() throws {
        let records = sampleRecords(count: 6)
        var a = RecordBatchBuilder(compression: .snappy, initialCapacity: 70)
        for r in records[..<3] { a.append(r) }
        var b = a
        for r in records[3...] { b.append(r) }
        let fromA = try a.finish()
        #expect(try RecordSet.decode(fromA).batches[0].records == withOffsets(Array(records[..<3]), from: 0))
        #expect(try RecordSet.decode(try b.finish()).batches[0].records == withOffsets(records, from: 0))
        let c = a
        a.append(records[0])
        #expect(c.isEmpty && a.recordCount == 1)
    }

    @Test func restampProducerStateAndBaseOffset() throws {
        var blob = try RecordBatch.encode(records: sampleRecords(count: 3), compression: .lz4)
        #expect(RecordBatch.restampProducerState(&blob, producerId: 77, producerEpoch: 4, baseSequence: 1234, isTransactional: true))
        #expect(RecordBatch.setBaseOffset(&blob, 5000))
        let batch = try #require(try RecordSet.decode(blob).batches.first)
        #expect(batch.producerId == 77 && batch.producerEpoch == 4 && batch.baseSequence == 1234)
        #expect(batch.isTransactional && batch.compression == .lz4)
        #expect(batch.baseOffset == 5000 && batch.records.map(\.offset) == [5000, 5001, 5002])
        var short: [UInt8] = [1, 2, 3]
        #expect(!RecordBatch.restampProducerState(&short, producerId: 1, producerEpoch: 1, baseSequence: 1))
    }
}
