@testable import KafkaRecords

/// Big-endian/varint byte builder written independently of the library's encoder.
struct ByteBuilder {
    var bytes: [UInt8] = []

    mutating func i8(_ v: Int8) { bytes.append(UInt8(bitPattern: v)) }
    mutating func i16(_ v: Int16) { be(UInt64(UInt16(bitPattern: v)), 2) }
    mutating func i32(_ v: Int32) { be(UInt64(UInt32(bitPattern: v)), 4) }
    mutating func u32(_ v: UInt32) { be(UInt64(v), 4) }
    mutating func i64(_ v: Int64) { be(UInt64(bitPattern: v), 8) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func be(_ v: UInt64, _ n: Int) {
        for i in (0..<n).reversed() { bytes.append(UInt8((v >> (8 * UInt64(i))) & 0xFF)) }
    }
    /// Zigzag varint as the spec describes (protobuf sint64).
    mutating func varlong(_ v: Int64) {
        var u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        while u >= 0x80 {
            bytes.append(UInt8(u & 0x7F) | 0x80)
            u >>= 7
        }
        bytes.append(UInt8(u))
    }
    /// int32-length-prefixed bytes (legacy messages), -1 for null.
    mutating func bytes32(_ b: [UInt8]?) {
        guard let b else { return i32(-1) }
        i32(Int32(b.count))
        raw(b)
    }
}

/// Bit-by-bit CRC-32C, independent of the library's tables and instructions.
func crc32cBitwise(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

/// Bit-by-bit CRC-32 (IEEE), as legacy messages use.
func crc32Bitwise(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A legacy log entry: offset, size, then crc, magic, attributes, [timestamp], key, value.
func legacyEntry(offset: Int64, magic: Int8, attributes: Int8 = 0, timestamp: Int64 = 0, key: [UInt8]?, value: [UInt8]?) -> [UInt8] {
    var body = ByteBuilder()
    body.i8(magic)
    body.i8(attributes)
    if magic == 1 { body.i64(timestamp) }
    body.bytes32(key)
    body.bytes32(value)
    var entry = ByteBuilder()
    entry.i64(offset)
    entry.i32(Int32(4 + body.bytes.count))
    entry.u32(crc32Bitwise(body.bytes))
    entry.raw(body.bytes)
    return entry.bytes
}

/// Recomputes the CRC-32C of the v2 batch at `start` (after a deliberate edit).
func fixCRC(_ blob: inout [UInt8], batchAt start: Int = 0) {
    let length = Int(UInt32(blob[start + 8]) << 24 | UInt32(blob[start + 9]) << 16 | UInt32(blob[start + 10]) << 8 | UInt32(blob[start + 11]))
    let crc = crc32c(Array(blob[(start + 21)..<(start + 12 + length)]))
    for i in 0..<4 { blob[start + 17 + i] = UInt8((crc >> (24 - 8 * UInt32(i))) & 0xFF) }
}

func putInt32(_ v: Int32, into blob: inout [UInt8], at i: Int) {
    let u = UInt32(bitPattern: v)
    for k in 0..<4 { blob[i + k] = UInt8((u >> (24 - 8 * UInt32(k))) & 0xFF) }
}

/// Deterministic pseudo-random bytes (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(UInt8(truncatingIfNeeded: next())) }
        return out
    }
}

/// Which case a decoding error is, for table-driven tests.
func kind(_ error: RecordDecodingError) -> String {
    switch error {
    case .crcMismatch: "crcMismatch"
    case .unsupportedMagic: "unsupportedMagic"
    case .invalidBatchLength: "invalidBatchLength"
    case .invalidRecordCount: "invalidRecordCount"
    case .unknownCompressionCodec: "unknownCompressionCodec"
    case .malformedRecord: "malformedRecord"
    case .invalidControlRecord: "invalidControlRecord"
    case .malformedLegacyMessage: "malformedLegacyMessage"
    case .decompressionFailed: "decompressionFailed"
    case .decompressedSizeLimitExceeded: "decompressedSizeLimitExceeded"
    }
}

/// The error `RecordSet.decode` throws, or nil if it succeeds.
func decodeError(_ blob: [UInt8], maxDecompressedBytes: Int? = nil) -> RecordDecodingError? {
    do {
        _ = try RecordSet.decode(blob, maxDecompressedBytes: maxDecompressedBytes)
        return nil
    } catch {
        return error
    }
}

let sampleTimestamp: Int64 = 1_700_000_000_000

/// A varied set of records: keys, null keys, null values, headers with null values, timestamps
/// going backwards and forwards.
func sampleRecords(count: Int = 10, valueSize: Int = 20, seed: UInt64 = 1) -> [Record] {
    var rng = SplitMix(seed: seed)
    let someHeaders: [RecordHeader] = [
        RecordHeader(key: "trace-id", value: Array("abc".utf8)),
        RecordHeader(key: "empty", value: []),
        RecordHeader(key: "null", value: nil),
        RecordHeader(key: "ünïcode-✓", value: [0xFF]),
    ]
    var records: [Record] = []
    for i in 0..<count {
        let back: Int64 = i % 3 == 2 ? 500 : 0
        let timestamp: Int64 = sampleTimestamp + Int64(i * 37) - back
        let key: [UInt8]? = i % 4 == 1 ? nil : Array("key-\(i)".utf8)
        let value: [UInt8]? = i % 5 == 3 ? nil : rng.bytes(valueSize)
        let headers: [RecordHeader] = i % 2 == 0 ? [] : someHeaders
        records.append(Record(timestamp: timestamp, key: key, value: value, headers: headers))
    }
    return records
}

/// Records as the decoder returns them: absolute offsets from `baseOffset`.
func withOffsets(_ records: [Record], from baseOffset: Int64) -> [Record] {
    records.enumerated().map { i, r in
        var r = r
        r.offset = baseOffset + Int64(i)
        return r
    }
}
