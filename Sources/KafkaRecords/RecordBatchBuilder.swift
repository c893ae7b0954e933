import CKafkaSupport

/// Why a batch could not be encoded.
public enum RecordEncodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The encoded batch would not fit Kafka's int32 batch length.
    case batchTooLarge(bytes: Int)
    /// The compression library reported a failure (out of memory, or a bug).
    case compressionFailed(codec: CompressionCodec, reason: String)

    public var description: String {
        switch self {
        case let .batchTooLarge(bytes): "record batch too large: \(bytes) bytes"
        case let .compressionFailed(codec, reason): "\(codec) compression failed: \(reason)"
        }
    }
}

/// Builds one record batch (magic 2) record by record.
///
/// Records are encoded into the builder's buffer as they are appended (no per-record allocation);
/// `finish` writes the 61-byte batch header in front, compresses the records if asked, and computes
/// the CRC-32C. The producer can watch `sizeInBytes` to close a batch at `batch.size`. After
/// `finish` the builder is empty and keeps its buffer for the next batch.
///
/// ```swift
/// var builder = RecordBatchBuilder(compression: .lz4)
/// builder.append(key: nil, value: Array("hello".utf8), timestamp: nowMs)
/// let bytes = try builder.finish(producerId: pid, producerEpoch: epoch, baseSequence: seq)
/// ```
public struct RecordBatchBuilder: Sendable {
    /// Bytes of the batch header, up to and including the record count.
    public static let headerSize = 61

    public let compression: CompressionCodec
    /// Codec-specific level; nil for Kafka's defaults (gzip 6, lz4 fast, zstd 3).
    public let compressionLevel: Int?
    public private(set) var recordCount: Int = 0
    /// Timestamp of the first record (-1 while empty).
    public private(set) var baseTimestamp: Int64 = -1
    /// Largest record timestamp (-1 while empty).
    public private(set) var maxTimestamp: Int64 = -1

    /// Header placeholder followed by the encoded (uncompressed) records.
    private var storage: ByteStorage

    public init(compression: CompressionCodec = .none, compressionLevel: Int? = nil, initialCapacity: Int = 16 * 1024) {
        self.compression = compression
        self.compressionLevel = compressionLevel
        storage = ByteStorage(capacity: Swift.max(initialCapacity, Self.headerSize))
        storage.count = Self.headerSize
    }

    /// Uncompressed size of the batch so far (header plus records).
    public var sizeInBytes: Int { storage.count }
    public var isEmpty: Bool { recordCount == 0 }

    /// Bytes one record adds to a batch (uncompressed), given its delta fields.
    public static func encodedSize(
        key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = [], timestampDelta: Int64 = 0, offsetDelta: Int32 = 0
    ) -> Int {
        let body = bodySize(key: key, value: value, headers: headers, timestampDelta: timestampDelta, offsetDelta: offsetDelta)
        return varintSize(Int32(truncatingIfNeeded: body)) + body
    }

    @inline(__always)
    static func bodySize(key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader], timestampDelta: Int64, offsetDelta: Int32) -> Int {
        var size = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta) + nullableBytesSize(key) + nullableBytesSize(value)
        size += varintSize(Int32(truncatingIfNeeded: headers.count))
        for h in headers {
            let n = h.key.utf8.count
            size += varintSize(Int32(truncatingIfNeeded: n)) + n + nullableBytesSize(h.value)
        }
        return size
    }

    /// Writes one record (length, attributes, deltas, key, value, headers) whose body size is `body`.
    @inline(__always)
    static func writeRecord(
        _ w: inout PointerWriter, body: Int, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader],
        timestampDelta: Int64, offsetDelta: Int32
    ) {
        w.varint(Int32(truncatingIfNeeded: body))
        w.u8(0)  // record attributes: unused
        w.varlong(timestampDelta)
        w.varint(offsetDelta)
        w.nullableBytes(key)
        w.nullableBytes(value)
        w.varint(Int32(truncatingIfNeeded: headers.count))
        for h in headers {
            w.string(h.key)
            w.nullableBytes(h.value)
        }
    }

    /// Appends a record; its offset delta is its position in the batch, its timestamp delta is
    /// relative to the first record's timestamp.
    public mutating func append(key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = [], timestamp: Int64) {
        if recordCount == 0 {
            baseTimestamp = timestamp
            maxTimestamp = timestamp
        } else if timestamp > maxTimestamp {
            maxTimestamp = timestamp
        }
        let timestampDelta = timestamp &- baseTimestamp
        let offsetDelta = Int32(truncatingIfNeeded: recordCount)
        let body = Self.bodySize(key: key, value: value, headers: headers, timestampDelta: timestampDelta, offsetDelta: offsetDelta)
        let total = varintSize(Int32(truncatingIfNeeded: body)) + body
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        storage.reserve(storage.count + total)
        var w = PointerWriter(storage.base + storage.count)
        Self.writeRecord(
            &w, body: body, key: key, value: value, headers: headers, timestampDelta: timestampDelta, offsetDelta: offsetDelta)
        assert(w.p == storage.base + storage.count + total)
        storage.count += total
        recordCount += 1
    }

    /// Appends a record; `record.offset` is ignored.
    public mutating func append(_ record: Record) {
        append(key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp)
    }

    /// Completes the batch and returns its bytes, leaving the builder empty (ready for reuse with
    /// the same codec). Producer fields default to "no idempotence" (-1).
    public mutating func finish(
        baseOffset: Int64 = 0, partitionLeaderEpoch: Int32 = -1,
        producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1,
        isTransactional: Bool = false, isControl: Bool = false
    ) throws(RecordEncodingError) -> [UInt8] {
        let header = BatchHeader(
            baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch,
            attributes: RecordBatchAttributes(compression: compression, isTransactional: isTransactional, isControl: isControl),
            recordCount: recordCount, baseTimestamp: baseTimestamp, maxTimestamp: maxTimestamp,
            producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence)
        let records = UnsafeBufferPointer(start: storage.base + Self.headerSize, count: storage.count - Self.headerSize)
        let out: [UInt8]
        if compression == .none {
            guard storage.count - 12 <= Int(Int32.max) else { throw .batchTooLarge(bytes: storage.count) }
            let all = UnsafeBufferPointer(start: storage.base, count: storage.count)
            out = [UInt8](unsafeUninitializedCapacity: all.count) { buffer, initialized in
                _ = buffer.initialize(from: all)
                header.write(into: buffer)
                initialized = all.count
            }
        } else {
            out = try header.compressAndWrite(records, compression, level: compressionLevel)
        }
        // Reset for the next batch, keeping the buffer when nobody else shares it.
        if !isKnownUniquelyReferenced(&storage) { storage = ByteStorage(capacity: storage.capacity) }
        storage.count = Self.headerSize
        recordCount = 0
        baseTimestamp = -1
        maxTimestamp = -1
        return out
    }
}

/// The fields of a v2 batch header, written once the records are in place.
struct BatchHeader {
    var baseOffset: Int64
    var partitionLeaderEpoch: Int32
    var attributes: RecordBatchAttributes
    var recordCount: Int
    var baseTimestamp: Int64
    var maxTimestamp: Int64
    var producerId: Int64
    var producerEpoch: Int16
    var baseSequence: Int32

    /// Writes the header over the first 61 bytes of a complete batch and computes its CRC.
    func write(into b: UnsafeMutableBufferPointer<UInt8>) {
        let p = b.baseAddress!
        storeBE(UInt64(bitPattern: baseOffset), p)
        storeBE(UInt32(truncatingIfNeeded: b.count - 12), p + 8)
        storeBE(UInt32(bitPattern: partitionLeaderEpoch), p + 12)
        p[16] = 2  // magic
        storeBE(UInt16(bitPattern: attributes.rawValue), p + 21)
        storeBE(UInt32(bitPattern: recordCount == 0 ? -1 : Int32(truncatingIfNeeded: recordCount - 1)), p + 23)
        storeBE(UInt64(bitPattern: baseTimestamp), p + 27)
        storeBE(UInt64(bitPattern: maxTimestamp), p + 35)
        storeBE(UInt64(bitPattern: producerId), p + 43)
        storeBE(UInt16(bitPattern: producerEpoch), p + 51)
        storeBE(UInt32(bitPattern: baseSequence), p + 53)
        storeBE(UInt32(truncatingIfNeeded: recordCount), p + 57)
        storeBE(kw_crc32c(0, p + 21, b.count - 21), p + 17)
    }

    /// Compresses the encoded records behind a header and returns the complete batch.
    func compressAndWrite(
        _ records: UnsafeBufferPointer<UInt8>, _ codec: CompressionCodec, level: Int?
    ) throws(RecordEncodingError) -> [UInt8] {
        var out = try Compressor.compress(codec, records, level: level, prefix: RecordBatchBuilder.headerSize)
        guard out.count - 12 <= Int(Int32.max) else { throw .batchTooLarge(bytes: out.count) }
        out.withUnsafeMutableBufferPointer { write(into: $0) }
        return out
    }
}

/// Growable bytes behind the builder; the builder copies it before writing if it is shared, so
/// the builder keeps value semantics (and is safely Sendable).
final class ByteStorage: @unchecked Sendable {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    func copy() -> ByteStorage {
        let c = ByteStorage(capacity: capacity)
        c.base.initialize(from: base, count: count)
        c.count = count
        return c
    }

    /// Makes the capacity at least `needed`, growing geometrically.
    @inline(__always) func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = Swift.max(needed, capacity * 2)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}

extension RecordBatch {
    /// Encodes `records` as one batch (magic 2). Record offsets are ignored: offset deltas are the
    /// positions in the array; the base timestamp is the first record's.
    public static func encode(
        records: [Record], compression: CompressionCodec = .none,
        producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1,
        isTransactional: Bool = false, baseOffset: Int64 = 0,
        partitionLeaderEpoch: Int32 = -1, isControl: Bool = false, compressionLevel: Int? = nil
    ) throws(RecordEncodingError) -> [UInt8] {
        let baseTimestamp = records.first?.timestamp ?? -1
        var maxTimestamp = baseTimestamp
        // First pass: exact size, so the records are written in one go into a buffer of that size.
        var size = 0
        for (i, r) in records.enumerated() {
            if r.timestamp > maxTimestamp { maxTimestamp = r.timestamp }
            size += RecordBatchBuilder.encodedSize(
                key: r.key, value: r.value, headers: r.headers,
                timestampDelta: r.timestamp &- baseTimestamp, offsetDelta: Int32(truncatingIfNeeded: i))
        }
        let header = BatchHeader(
            baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch,
            attributes: RecordBatchAttributes(compression: compression, isTransactional: isTransactional, isControl: isControl),
            recordCount: records.count, baseTimestamp: baseTimestamp, maxTimestamp: maxTimestamp,
            producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence)

        func writeRecords(_ p: UnsafeMutablePointer<UInt8>) {
            var w = PointerWriter(p)
            for (i, r) in records.enumerated() {
                let timestampDelta = r.timestamp &- baseTimestamp
                let offsetDelta = Int32(truncatingIfNeeded: i)
                let body = RecordBatchBuilder.bodySize(
                    key: r.key, value: r.value, headers: r.headers, timestampDelta: timestampDelta, offsetDelta: offsetDelta)
                RecordBatchBuilder.writeRecord(
                    &w, body: body, key: r.key, value: r.value, headers: r.headers,
                    timestampDelta: timestampDelta, offsetDelta: offsetDelta)
            }
            assert(w.p == p + size)
        }

        let headerSize = RecordBatchBuilder.headerSize
        if compression == .none {
            let total = headerSize + size
            guard total - 12 <= Int(Int32.max) else { throw .batchTooLarge(bytes: total) }
            return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                writeRecords(buffer.baseAddress! + headerSize)
                header.write(into: buffer)
                initialized = total
            }
        }
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: Swift.max(size, 1))
        defer { scratch.deallocate() }
        writeRecords(scratch)
        return try header.compressAndWrite(UnsafeBufferPointer(start: scratch, count: size), compression, level: compressionLevel)
    }

    /// Rewrites the producer fields of an encoded batch (v2) in place and recomputes its CRC, as a
    /// producer does when it re-sends a batch after an epoch bump. Returns false if `batch` is not a
    /// complete v2 batch.
    @discardableResult
    public static func restampProducerState(
        _ batch: inout [UInt8], producerId: Int64, producerEpoch: Int16, baseSequence: Int32, isTransactional: Bool? = nil
    ) -> Bool {
        guard batch.count >= RecordBatchBuilder.headerSize, batch[16] == 2 else { return false }
        batch.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            storeBE(UInt64(bitPattern: producerId), p + 43)
            storeBE(UInt16(bitPattern: producerEpoch), p + 51)
            storeBE(UInt32(bitPattern: baseSequence), p + 53)
            if let isTransactional {
                var attributes = UInt16(p[21]) << 8 | UInt16(p[22])
                if isTransactional { attributes |= 0x10 } else { attributes &= ~0x10 }
                storeBE(attributes, p + 21)
            }
            storeBE(kw_crc32c(0, p + 21, b.count - 21), p + 17)
        }
        return true
    }

    /// Sets the base offset of an encoded batch (v2) in place; the CRC does not cover it.
    @discardableResult
    public static func setBaseOffset(_ batch: inout [UInt8], _ baseOffset: Int64) -> Bool {
        guard batch.count >= RecordBatchBuilder.headerSize else { return false }
        batch.withUnsafeMutableBufferPointer { storeBE(UInt64(bitPattern: baseOffset), $0.baseAddress!) }
        return true
    }
}
