import CKafkaSupport
import CZlib

/// A decoded records blob (the `records` field of a Fetch response partition, or of a Produce
/// request): a sequence of record batches (magic 2) and/or legacy messages (magic 0 and 1).
/// Obtain one with `RecordSet.decode(_:maxDecompressedBytes:)`.
public struct RecordSet: Sendable, Equatable {
    /// Complete batches, in order (legacy messages each become one batch).
    public var batches: [RecordBatch]
    /// The blob ended with an incomplete batch (normal: brokers cut responses at the fetch size).
    /// A consumer that got no complete batch at all should retry with a larger fetch size.
    public var truncatedTail: Bool
    /// Bytes taken by the complete batches; the rest is the partial tail.
    public var bytesConsumed: Int

    public init(batches: [RecordBatch], truncatedTail: Bool, bytesConsumed: Int) {
        self.batches = batches
        self.truncatedTail = truncatedTail
        self.bytesConsumed = bytesConsumed
    }

    /// The least decompression budget for one decode call, whatever the input size.
    public static let defaultMaxDecompressedBytes = 64 << 20

    /// The budget used when none is given: 64 MiB, or 16 times the input if that is more.
    public static func defaultDecompressionBudget(inputSize: Int) -> Int {
        Swift.max(defaultMaxDecompressedBytes, inputSize.multipliedReportingOverflow(by: 16).overflow ? Int.max : inputSize * 16)
    }

    /// Decodes every complete batch of `bytes`.
    ///
    /// - Parameter maxDecompressedBytes: the total number of bytes decompression may produce over the
    ///   whole blob (a bound on memory use against compression bombs); nil for
    ///   `defaultDecompressionBudget(inputSize:)`.
    /// - Throws: `RecordDecodingError` for corrupt data. A truncated last batch is not an error.
    public static func decode(_ bytes: [UInt8], maxDecompressedBytes: Int? = nil) throws(RecordDecodingError) -> RecordSet {
        var decoder = RecordBatchDecoder(bytes, maxDecompressedBytes: maxDecompressedBytes)
        var batches: [RecordBatch] = []
        while let batch = try decoder.next() {
            batches.append(batch)
        }
        return RecordSet(batches: batches, truncatedTail: decoder.truncatedTail, bytesConsumed: decoder.position)
    }
}

/// What `RecordSet.decode` returns.
public typealias RecordSetDecodeResult = RecordSet

/// Walks a records blob one batch at a time.
public struct RecordBatchDecoder: Sendable {
    public let bytes: [UInt8]
    /// Start of the next batch.
    public private(set) var position: Int = 0
    /// Set once `next()` has returned nil because the rest of the blob is an incomplete batch.
    public private(set) var truncatedTail = false
    /// What decompression may still produce.
    public private(set) var decompressionBudget: Int

    public init(_ bytes: [UInt8], maxDecompressedBytes: Int? = nil) {
        self.bytes = bytes
        decompressionBudget = maxDecompressedBytes ?? RecordSet.defaultDecompressionBudget(inputSize: bytes.count)
    }

    /// The next complete batch, or nil at the end of the blob or at a truncated tail. After an error
    /// the decoder stays on the failing batch.
    public mutating func next() throws(RecordDecodingError) -> RecordBatch? {
        guard position < bytes.count else { return nil }
        let bytes = self.bytes
        let start = position
        var budget = decompressionBudget
        let decoded = try bytes.withUnsafeBufferPointer { (b) throws(RecordDecodingError) -> (RecordBatch, Int)? in
            guard let end = try entryEnd(b, start) else { return nil }
            let batch: RecordBatch
            switch Int8(bitPattern: b[start + 16]) {
            case 2: batch = try decodeBatchV2(b, start, end, budget: &budget)
            case 0, 1: batch = try decodeLegacyEntry(b, start, end, budget: &budget)
            case let magic: throw .unsupportedMagic(magic, baseOffset: Int64(bitPattern: loadBE64(b, start)))
            }
            return (batch, end)
        }
        guard let (batch, end) = decoded else {
            truncatedTail = true
            return nil
        }
        position = end
        decompressionBudget = budget
        return batch
    }
}

/// Smallest legacy message (magic 0) after the offset and size fields.
let legacyMinimumSize: Int32 = 14
/// Batch length of an empty v2 batch (header after the offset and length fields).
let v2MinimumBatchLength: Int32 = 49

/// The end of the entry (batch or legacy message) starting at `p`, or nil if it is incomplete.
@inline(__always)
func entryEnd(_ b: UnsafeBufferPointer<UInt8>, _ p: Int) throws(RecordDecodingError) -> Int? {
    let remaining = b.count - p
    guard remaining >= 12 else { return nil }
    let length = Int32(bitPattern: loadBE32(b, p + 8))
    guard length >= legacyMinimumSize else {
        throw .invalidBatchLength(length, baseOffset: Int64(bitPattern: loadBE64(b, p)))
    }
    guard Int(length) <= remaining - 12 else { return nil }
    return p + 12 + Int(length)
}

// MARK: - Magic 2

func decodeBatchV2(_ b: UnsafeBufferPointer<UInt8>, _ p: Int, _ end: Int, budget: inout Int) throws(RecordDecodingError) -> RecordBatch {
    let baseOffset = Int64(bitPattern: loadBE64(b, p))
    let batchLength = Int32(bitPattern: loadBE32(b, p + 8))
    guard batchLength >= v2MinimumBatchLength else { throw .invalidBatchLength(batchLength, baseOffset: baseOffset) }
    let storedCRC = loadBE32(b, p + 17)
    let computedCRC = kw_crc32c(0, b.baseAddress! + p + 21, end - (p + 21))
    guard storedCRC == computedCRC else {
        throw .crcMismatch(baseOffset: baseOffset, stored: storedCRC, computed: computedCRC)
    }
    let attributes = RecordBatchAttributes(rawValue: Int16(bitPattern: loadBE16(b, p + 21)))
    guard let codec = attributes.compression else {
        throw .unknownCompressionCodec(attributes.compressionId, baseOffset: baseOffset)
    }
    let baseTimestamp = Int64(bitPattern: loadBE64(b, p + 27))
    let maxTimestamp = Int64(bitPattern: loadBE64(b, p + 35))
    let count = Int32(bitPattern: loadBE32(b, p + 57))
    guard count >= 0 else { throw .invalidRecordCount(count, baseOffset: baseOffset) }

    let context = RecordContext(
        baseOffset: baseOffset, baseTimestamp: baseTimestamp,
        logAppendTime: attributes.timestampType == .logAppendTime ? maxTimestamp : nil)
    let recordsStart = p + RecordBatchBuilder.headerSize
    let records: [Record]
    if codec == .none {
        records = try parseRecords(b, recordsStart, end, count: count, context)
    } else {
        let payload = UnsafeBufferPointer(rebasing: b[recordsStart..<end])
        let plain = try Decompressor.decompress(codec, payload, limit: budget)
        budget -= plain.count
        let d = plain.bytes
        records = try parseRecords(d, 0, d.count, count: count, context)
    }

    var control: ControlRecord?
    if attributes.isControl, let first = records.first {
        guard let key = first.key, key.count >= 4 else {
            throw .invalidControlRecord(baseOffset: baseOffset, reason: "control record key shorter than 4 bytes")
        }
        let version = Int16(bitPattern: UInt16(key[0]) << 8 | UInt16(key[1]))
        let type = Int16(bitPattern: UInt16(key[2]) << 8 | UInt16(key[3]))
        control = ControlRecord(version: version, type: .init(rawValue: type))
    }

    return RecordBatch(
        baseOffset: baseOffset, batchLength: batchLength,
        partitionLeaderEpoch: Int32(bitPattern: loadBE32(b, p + 12)), magic: 2, crc: storedCRC,
        attributes: attributes, lastOffsetDelta: Int32(bitPattern: loadBE32(b, p + 23)),
        baseTimestamp: baseTimestamp, maxTimestamp: maxTimestamp,
        producerId: Int64(bitPattern: loadBE64(b, p + 43)), producerEpoch: Int16(bitPattern: loadBE16(b, p + 51)),
        baseSequence: Int32(bitPattern: loadBE32(b, p + 53)), records: records, controlRecord: control)
}

struct RecordContext {
    let baseOffset: Int64
    let baseTimestamp: Int64
    /// The batch's max timestamp when its timestamp type is log-append time.
    let logAppendTime: Int64?
}

/// Every record takes at least 7 bytes: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
let minimumRecordSize = 7

func parseRecords(
    _ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, count: Int32, _ context: RecordContext
) throws(RecordDecodingError) -> [Record] {
    guard Int(count) <= (end - start) / minimumRecordSize else {
        throw .invalidRecordCount(count, baseOffset: context.baseOffset)
    }
    var records: [Record] = []
    records.reserveCapacity(Int(count))
    var r = RecordReader(b: b, pos: start, end: end, baseOffset: context.baseOffset)
    for _ in 0..<count {
        let length = try r.varint("record length")
        guard length >= 0, Int(length) <= r.end - r.pos else {
            throw r.fail("record length \(length) with \(r.end - r.pos) bytes left")
        }
        let recordEnd = r.pos + Int(length)
        let outerEnd = r.end
        r.end = recordEnd
        guard r.pos < r.end else { throw r.fail("empty record") }
        r.pos += 1  // attributes: unused
        let timestampDelta = try r.varlong("timestamp delta")
        let offsetDelta = try r.varint("offset delta")
        let key = try r.nullableBytes("key")
        let value = try r.nullableBytes("value")
        let headerCount = try r.varint("header count")
        // A header takes at least two bytes (key length, value length).
        guard headerCount >= 0, Int(headerCount) <= (r.end - r.pos) / 2 else {
            throw r.fail("header count \(headerCount) with \(r.end - r.pos) bytes left")
        }
        var headers: [RecordHeader] = []
        if headerCount > 0 {
            headers.reserveCapacity(Int(headerCount))
            for _ in 0..<headerCount {
                let keyLength = try r.varint("header key length")
                guard keyLength >= 0, Int(keyLength) <= r.end - r.pos else {
                    throw r.fail("header key length \(keyLength) with \(r.end - r.pos) bytes left")
                }
                // Like Java, invalid UTF-8 is replaced rather than rejected.
                let headerKey = String(decoding: UnsafeBufferPointer(rebasing: b[r.pos..<(r.pos + Int(keyLength))]), as: UTF8.self)
                r.pos += Int(keyLength)
                let headerValue = try r.nullableBytes("header value")
                headers.append(RecordHeader(key: headerKey, value: headerValue))
            }
        }
        guard r.pos == recordEnd else { throw r.fail("\(recordEnd - r.pos) bytes left over in a record") }
        r.end = outerEnd
        records.append(
            Record(
                offset: context.baseOffset &+ Int64(offsetDelta),
                timestamp: context.logAppendTime ?? (context.baseTimestamp &+ timestampDelta),
                key: key, value: value, headers: headers))
    }
    guard r.pos == end else { throw r.fail("\(end - r.pos) bytes after the \(count) records of the batch") }
    return records
}

/// Bounds-checked reads of record fields (varints as Kafka's Java client reads them).
struct RecordReader {
    let b: UnsafeBufferPointer<UInt8>
    var pos: Int
    var end: Int
    let baseOffset: Int64

    func fail(_ reason: String) -> RecordDecodingError { .malformedRecord(baseOffset: baseOffset, reason: reason) }

    @inline(__always) mutating func varint(_ what: StaticString) throws(RecordDecodingError) -> Int32 {
        guard pos < end else { throw fail("truncated \(what)") }
        let first = b[pos]
        if first < 0x80 {
            pos += 1
            let u = UInt32(first)
            return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
        }
        return try varintSlow(what)
    }

    mutating func varintSlow(_ what: StaticString) throws(RecordDecodingError) -> Int32 {
        var value: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard pos < end else { throw fail("truncated \(what)") }
            let byte = b[pos]
            pos += 1
            value |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            if shift > 28 { throw fail("varint overflow in \(what)") }
        }
        return Int32(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    @inline(__always) mutating func varlong(_ what: StaticString) throws(RecordDecodingError) -> Int64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end else { throw fail("truncated \(what)") }
            let byte = b[pos]
            pos += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            if shift > 63 { throw fail("varlong overflow in \(what)") }
        }
        return Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    @inline(__always) mutating func nullableBytes(_ what: StaticString) throws(RecordDecodingError) -> [UInt8]? {
        let length = try varint(what)
        if length < 0 {
            if length == -1 { return nil }
            throw fail("invalid \(what) length \(length)")
        }
        guard Int(length) <= end - pos else { throw fail("\(what) length \(length) with \(end - pos) bytes left") }
        let bytes = Array(UnsafeBufferPointer(rebasing: b[pos..<(pos + Int(length))]))
        pos += Int(length)
        return bytes
    }
}

// MARK: - Legacy message sets (magic 0 and 1)

struct LegacyMessage {
    var offset: Int64
    var size: Int32
    var crc: UInt32
    var magic: Int8
    var attributes: Int8
    var timestamp: Int64
    var key: Range<Int>?
    var value: Range<Int>?
}

/// Parses and checks the legacy message in `b[p..<end]` (offset, size, crc, magic, attributes,
/// [timestamp], key, value).
func parseLegacyMessage(_ b: UnsafeBufferPointer<UInt8>, _ p: Int, _ end: Int) throws(RecordDecodingError) -> LegacyMessage {
    let offset = Int64(bitPattern: loadBE64(b, p))
    let size = Int32(bitPattern: loadBE32(b, p + 8))
    let m = p + 12
    let magic = Int8(bitPattern: b[m + 4])
    guard magic == 0 || magic == 1 else { throw .unsupportedMagic(magic, baseOffset: offset) }
    let minimum: Int32 = magic == 0 ? legacyMinimumSize : legacyMinimumSize + 8
    guard size >= minimum else { throw .invalidBatchLength(size, baseOffset: offset) }
    let storedCRC = loadBE32(b, m)
    let computedCRC = UInt32(truncatingIfNeeded: crc32(0, b.baseAddress! + m + 4, uInt(end - (m + 4))))
    guard storedCRC == computedCRC else { throw .crcMismatch(baseOffset: offset, stored: storedCRC, computed: computedCRC) }
    let attributes = Int8(bitPattern: b[m + 5])
    var q = m + 6
    var timestamp: Int64 = -1
    if magic == 1 {
        timestamp = Int64(bitPattern: loadBE64(b, q))
        q += 8
    }
    func bytesField(_ what: String) throws(RecordDecodingError) -> Range<Int>? {
        guard end - q >= 4 else { throw .malformedLegacyMessage(offset: offset, reason: "truncated \(what) length") }
        let length = Int32(bitPattern: loadBE32(b, q))
        q += 4
        if length < 0 {
            if length == -1 { return nil }
            throw .malformedLegacyMessage(offset: offset, reason: "invalid \(what) length \(length)")
        }
        guard Int(length) <= end - q else {
            throw .malformedLegacyMessage(offset: offset, reason: "\(what) length \(length) with \(end - q) bytes left")
        }
        defer { q += Int(length) }
        return q..<(q + Int(length))
    }
    let key = try bytesField("key")
    let value = try bytesField("value")
    guard q == end else { throw .malformedLegacyMessage(offset: offset, reason: "\(end - q) bytes after the value") }
    return LegacyMessage(
        offset: offset, size: size, crc: storedCRC, magic: magic, attributes: attributes, timestamp: timestamp,
        key: key, value: value)
}

@inline(__always) func copyRange(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>?) -> [UInt8]? {
    range.map { Array(UnsafeBufferPointer(rebasing: b[$0])) }
}

/// Decodes one top-level legacy message: a plain message, or a compressed wrapper whose value is a
/// compressed message set.
func decodeLegacyEntry(_ b: UnsafeBufferPointer<UInt8>, _ p: Int, _ end: Int, budget: inout Int) throws(RecordDecodingError) -> RecordBatch {
    let message = try parseLegacyMessage(b, p, end)
    let codecId = Int(message.attributes & 0x07)
    guard codecId <= 3, let codec = CompressionCodec(rawValue: codecId) else {
        throw .unknownCompressionCodec(codecId, baseOffset: message.offset)
    }
    let isV1 = message.magic == 1
    let logAppendTime = isV1 && message.attributes & 0x08 != 0
    let attributes = RecordBatchAttributes(rawValue: Int16(message.attributes) & (isV1 ? 0x0F : 0x07))

    var records: [Record] = []
    if codec == .none {
        records.append(
            Record(offset: message.offset, timestamp: message.timestamp, key: copyRange(b, message.key), value: copyRange(b, message.value)))
    } else {
        guard let valueRange = message.value else {
            throw .malformedLegacyMessage(offset: message.offset, reason: "compressed wrapper message without a value")
        }
        let plain = try Decompressor.decompress(
            codec, UnsafeBufferPointer(rebasing: b[valueRange]), limit: budget, legacyLZ4: message.magic == 0)
        budget -= plain.count
        records = try { (d: UnsafeBufferPointer<UInt8>) throws(RecordDecodingError) -> [Record] in
            var inner: [Record] = []
            var q = 0
            while q < d.count {
                guard d.count - q >= 12 else {
                    throw .malformedLegacyMessage(offset: message.offset, reason: "truncated inner message")
                }
                let size = Int32(bitPattern: loadBE32(d, q + 8))
                guard size >= legacyMinimumSize else { throw .invalidBatchLength(size, baseOffset: message.offset) }
                guard Int(size) <= d.count - q - 12 else {
                    throw .malformedLegacyMessage(offset: message.offset, reason: "truncated inner message")
                }
                let innerEnd = q + 12 + Int(size)
                let m = try parseLegacyMessage(d, q, innerEnd)
                guard m.magic == message.magic else {
                    throw .malformedLegacyMessage(
                        offset: message.offset, reason: "inner message magic \(m.magic) in a wrapper of magic \(message.magic)")
                }
                guard m.attributes & 0x07 == 0 else {
                    throw .malformedLegacyMessage(offset: message.offset, reason: "compressed message inside a compressed message")
                }
                inner.append(
                    Record(
                        offset: m.offset, timestamp: logAppendTime ? message.timestamp : m.timestamp,
                        key: copyRange(d, m.key), value: copyRange(d, m.value)))
                q = innerEnd
            }
            return inner
        }(plain.bytes)
        // Magic 1 inner offsets are relative; the wrapper carries the absolute offset of the last one.
        if isV1, let lastRelative = records.last?.offset {
            let base = message.offset &- lastRelative
            for i in records.indices { records[i].offset = base &+ records[i].offset }
        }
    }
    let baseOffset = records.first?.offset ?? message.offset
    return RecordBatch(
        baseOffset: baseOffset, batchLength: message.size, partitionLeaderEpoch: -1, magic: message.magic,
        crc: message.crc, attributes: attributes,
        lastOffsetDelta: Int32(truncatingIfNeeded: message.offset &- baseOffset),
        baseTimestamp: records.first?.timestamp ?? message.timestamp, maxTimestamp: message.timestamp,
        records: records)
}
