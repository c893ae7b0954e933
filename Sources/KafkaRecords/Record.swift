/// One Kafka record (message): what a producer sends and a consumer receives.
///
/// When encoding, `offset` is ignored (a record's offset delta is its position in the batch).
public struct Record: Sendable, Equatable {
    /// Absolute offset in the partition (decoded records); ignored when encoding.
    public var offset: Int64
    /// Milliseconds since the epoch; -1 when the message format has none (magic 0).
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]

    public init(offset: Int64 = 0, timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = []) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// A record header: a non-null UTF-8 key and a nullable value.
public struct RecordHeader: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }
}

/// Compression codecs, with Kafka's attribute ids (bits 0-2 of the batch attributes).
public enum CompressionCodec: Int, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }
}

/// Whether record timestamps were set by the producer or by the broker when it appended the batch.
public enum TimestampType: Sendable, Equatable {
    case createTime
    /// All records of the batch carry the batch's `maxTimestamp`.
    case logAppendTime
}

/// The attributes field of a record batch (int16). Legacy messages (magic 0/1) use the same low bits
/// for their int8 attributes (compression in bits 0-2, timestamp type in bit 3).
public struct RecordBatchAttributes: Sendable, Equatable, Hashable {
    public var rawValue: Int16

    public init(rawValue: Int16) { self.rawValue = rawValue }

    public init(
        compression: CompressionCodec = .none, timestampType: TimestampType = .createTime,
        isTransactional: Bool = false, isControl: Bool = false, hasDeleteHorizon: Bool = false
    ) {
        var raw = Int16(compression.rawValue)
        if timestampType == .logAppendTime { raw |= 0x08 }
        if isTransactional { raw |= 0x10 }
        if isControl { raw |= 0x20 }
        if hasDeleteHorizon { raw |= 0x40 }
        rawValue = raw
    }

    /// The raw codec id (bits 0-2); `compression` is nil for ids Kafka does not define.
    public var compressionId: Int { Int(rawValue & 0x07) }
    public var compression: CompressionCodec? { CompressionCodec(rawValue: compressionId) }
    public var timestampType: TimestampType { rawValue & 0x08 != 0 ? .logAppendTime : .createTime }
    public var isTransactional: Bool { rawValue & 0x10 != 0 }
    public var isControl: Bool { rawValue & 0x20 != 0 }
    /// Set by compaction: `baseTimestamp` is then the delete horizon, not a record timestamp.
    public var hasDeleteHorizon: Bool { rawValue & 0x40 != 0 }
}

/// The key of the single record in a control batch (transaction markers).
public struct ControlRecord: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case abort
        case commit
        /// Other control types (KRaft's leader change, snapshot markers...), kept by number.
        case other(Int16)

        public init(rawValue: Int16) {
            switch rawValue {
            case 0: self = .abort
            case 1: self = .commit
            default: self = .other(rawValue)
            }
        }

        public var rawValue: Int16 {
            switch self {
            case .abort: 0
            case .commit: 1
            case let .other(v): v
            }
        }
    }

    public var version: Int16
    public var type: Kind

    public init(version: Int16 = 0, type: Kind) {
        self.version = version
        self.type = type
    }

    /// The control record key bytes: version int16, type int16.
    public var keyBytes: [UInt8] {
        let v = UInt16(bitPattern: version), t = UInt16(bitPattern: type.rawValue)
        return [UInt8(v >> 8), UInt8(v & 0xFF), UInt8(t >> 8), UInt8(t & 0xFF)]
    }
}
