/// Why a record set could not be decoded. Garbage from the wire always ends in one of these, never
/// in a crash or an unbounded allocation. `baseOffset` is the offset field of the batch (or legacy
/// message) being decoded, as read from the wire.
public enum RecordDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The batch's CRC (CRC-32C for magic 2, CRC-32 for legacy messages) does not match its bytes.
    case crcMismatch(baseOffset: Int64, stored: UInt32, computed: UInt32)
    /// A magic byte other than 0, 1 or 2.
    case unsupportedMagic(Int8, baseOffset: Int64)
    /// A batch length smaller than the header of its format (or negative).
    case invalidBatchLength(Int32, baseOffset: Int64)
    /// A negative record count, or more records than the bytes could hold.
    case invalidRecordCount(Int32, baseOffset: Int64)
    /// Compression bits with no codec behind them (5-7, or zstd in a legacy message).
    case unknownCompressionCodec(Int, baseOffset: Int64)
    /// A record whose fields do not add up (bad lengths, varint overflow, bytes left over...).
    case malformedRecord(baseOffset: Int64, reason: String)
    /// A control batch whose record key is not a control key.
    case invalidControlRecord(baseOffset: Int64, reason: String)
    /// A legacy message (magic 0/1) whose fields do not add up.
    case malformedLegacyMessage(offset: Int64, reason: String)
    /// The compressed payload is corrupt or truncated.
    case decompressionFailed(codec: CompressionCodec, reason: String)
    /// Decompressing would produce more than the allowed number of bytes.
    case decompressedSizeLimitExceeded(codec: CompressionCodec, limit: Int)

    public var description: String {
        switch self {
        case let .crcMismatch(offset, stored, computed):
            "CRC mismatch in batch at offset \(offset): stored \(hex(stored)), computed \(hex(computed))"
        case let .unsupportedMagic(magic, offset): "unsupported magic \(magic) in batch at offset \(offset)"
        case let .invalidBatchLength(length, offset): "invalid batch length \(length) at offset \(offset)"
        case let .invalidRecordCount(count, offset): "invalid record count \(count) in batch at offset \(offset)"
        case let .unknownCompressionCodec(id, offset): "unknown compression codec \(id) in batch at offset \(offset)"
        case let .malformedRecord(offset, reason): "malformed record in batch at offset \(offset): \(reason)"
        case let .invalidControlRecord(offset, reason): "invalid control record in batch at offset \(offset): \(reason)"
        case let .malformedLegacyMessage(offset, reason): "malformed legacy message at offset \(offset): \(reason)"
        case let .decompressionFailed(codec, reason): "\(codec) decompression failed: \(reason)"
        case let .decompressedSizeLimitExceeded(codec, limit):
            "\(codec) data decompresses to more than the limit of \(limit) bytes"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}
