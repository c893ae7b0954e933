/// Why a frame could not be decoded. Every decoder reports one of these instead of trapping, so a
/// broker (or anything pretending to be one) that sends garbage costs a typed error, never a crash.
public enum WireDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes remained than the field needs.
    case truncated(needed: Int, remaining: Int, field: String)
    /// A length prefix that is negative where null is not allowed, or larger than what remains.
    case invalidLength(Int64, field: String)
    /// A varint longer than its type allows.
    case malformedVarint(field: String)
    /// A string that is not valid UTF-8.
    case invalidUTF8(field: String)
    /// Bytes left over after a message that should have used them all.
    case trailingBytes(Int, message: String)
    /// A value outside what the protocol allows (unsupported version, unknown magic byte...).
    case invalidValue(String)

    public var description: String {
        switch self {
        case let .truncated(needed, remaining, field):
            "truncated \(field): needed \(needed) bytes, \(remaining) remain"
        case let .invalidLength(length, field): "invalid length \(length) for \(field)"
        case let .malformedVarint(field): "malformed varint in \(field)"
        case let .invalidUTF8(field): "invalid UTF-8 in \(field)"
        case let .trailingBytes(n, message): "\(n) unexpected trailing bytes after \(message)"
        case let .invalidValue(what): what
        }
    }
}

/// Reads Kafka wire primitives from a byte buffer, checking every length against what remains.
///
/// No length read from the wire is trusted for an allocation: a string, byte or array length larger
/// than the remaining input is rejected before anything is reserved.
public struct WireReader: Sendable {
    public let bytes: [UInt8]
    public var position: Int
    public let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        position = 0
        end = bytes.count
    }

    /// A reader over `bytes[range]`; positions stay absolute.
    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
    }

    @inlinable public var remaining: Int { end - position }
    @inlinable public var isAtEnd: Bool { position >= end }

    @inlinable @inline(__always) mutating func need(_ n: Int, _ field: @autoclosure () -> String) throws(WireDecodingError) {
        if n > end - position {
            throw .truncated(needed: n, remaining: end - position, field: field())
        }
    }

    // MARK: Fixed-width integers

    @inlinable public mutating func readUInt8(_ field: @autoclosure () -> String = "uint8") throws(WireDecodingError) -> UInt8 {
        try need(1, field())
        defer { position += 1 }
        return bytes[position]
    }
    @inlinable public mutating func readInt8(_ field: @autoclosure () -> String = "int8") throws(WireDecodingError) -> Int8 {
        Int8(bitPattern: try readUInt8(field()))
    }
    @inlinable public mutating func readBool(_ field: @autoclosure () -> String = "bool") throws(WireDecodingError) -> Bool {
        try readUInt8(field()) != 0
    }
    @inlinable public mutating func readUInt16(_ field: @autoclosure () -> String = "uint16") throws(WireDecodingError) -> UInt16 {
        try need(2, field())
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }
    @inlinable public mutating func readInt16(_ field: @autoclosure () -> String = "int16") throws(WireDecodingError) -> Int16 {
        Int16(bitPattern: try readUInt16(field()))
    }
    @inlinable public mutating func readUInt32(_ field: @autoclosure () -> String = "uint32") throws(WireDecodingError) -> UInt32 {
        try need(4, field())
        defer { position += 4 }
        return bytes.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: position, as: UInt32.self)) }
    }
    @inlinable public mutating func readInt32(_ field: @autoclosure () -> String = "int32") throws(WireDecodingError) -> Int32 {
        Int32(bitPattern: try readUInt32(field()))
    }
    @inlinable public mutating func readInt64(_ field: @autoclosure () -> String = "int64") throws(WireDecodingError) -> Int64 {
        try need(8, field())
        defer { position += 8 }
        return bytes.withUnsafeBytes { Int64(bigEndian: $0.loadUnaligned(fromByteOffset: position, as: Int64.self)) }
    }
    @inlinable public mutating func readFloat64(_ field: @autoclosure () -> String = "float64") throws(WireDecodingError) -> Double {
        Double(bitPattern: UInt64(bitPattern: try readInt64(field())))
    }

    // MARK: Varints

    @inlinable public mutating func readUnsignedVarlong(_ field: @autoclosure () -> String = "varint") throws(WireDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw .truncated(needed: 1, remaining: 0, field: field()) }
            let b = bytes[position]
            position += 1
            // The tenth byte may only hold the top bit of the 64.
            if shift == 63 && b > 1 { throw .malformedVarint(field: field()) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .malformedVarint(field: field()) }
        }
    }
    /// At most five bytes, as Kafka's own reader: a sixth byte is malformed even if the value would fit.
    @inlinable public mutating func readUnsignedVarint(_ field: @autoclosure () -> String = "varint") throws(WireDecodingError) -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard position < end else { throw .truncated(needed: 1, remaining: 0, field: field()) }
            let b = bytes[position]
            position += 1
            // The fifth byte may only hold the top four bits of the 32, and must end the varint.
            if shift == 28 && b > 0x0F { throw .malformedVarint(field: field()) }
            result |= UInt32(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }
    @inlinable public mutating func readVarint(_ field: @autoclosure () -> String = "varint") throws(WireDecodingError) -> Int32 {
        let u = try readUnsignedVarint(field())
        return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }
    @inlinable public mutating func readVarlong(_ field: @autoclosure () -> String = "varlong") throws(WireDecodingError) -> Int64 {
        let u = try readUnsignedVarlong(field())
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    // MARK: UUID

    public mutating func readUUID(_ field: @autoclosure () -> String = "uuid") throws(WireDecodingError) -> KafkaUUID {
        let high = UInt64(bitPattern: try readInt64(field()))
        let low = UInt64(bitPattern: try readInt64(field()))
        return KafkaUUID(high: high, low: low)
    }

    // MARK: Lengths

    /// Reads a string length (int16, or compact varint); nil means null.
    public mutating func readStringLength(compact: Bool, _ field: @autoclosure () -> String) throws(WireDecodingError) -> Int? {
        let length: Int
        if compact {
            length = Int(try readUnsignedVarint(field())) - 1
        } else {
            length = Int(try readInt16(field()))
        }
        return try checkedLength(length, field())
    }
    /// Reads a bytes/array/records length (int32, or compact varint); nil means null.
    public mutating func readLength(compact: Bool, _ field: @autoclosure () -> String) throws(WireDecodingError) -> Int? {
        let length: Int
        if compact {
            length = Int(try readUnsignedVarint(field())) - 1
        } else {
            length = Int(try readInt32(field()))
        }
        return try checkedLength(length, field())
    }
    @usableFromInline func checkedLength(_ length: Int, _ field: @autoclosure () -> String) throws(WireDecodingError) -> Int? {
        if length < 0 {
            if length == -1 { return nil }
            throw .invalidLength(Int64(length), field: field())
        }
        // Every element and every byte takes at least one byte of input: anything longer is a lie.
        if length > remaining { throw .invalidLength(Int64(length), field: field()) }
        return length
    }

    // MARK: Strings, bytes, arrays

    public mutating func readNullableString(compact: Bool, _ field: @autoclosure () -> String = "string") throws(WireDecodingError) -> String? {
        guard let n = try readStringLength(compact: compact, field()) else { return nil }
        let start = position
        position += n
        guard let s = String(validating: bytes[start..<position], as: UTF8.self) else {
            throw .invalidUTF8(field: field())
        }
        return s
    }
    public mutating func readString(compact: Bool, _ field: @autoclosure () -> String = "string") throws(WireDecodingError) -> String {
        guard let s = try readNullableString(compact: compact, field()) else {
            throw .invalidLength(-1, field: field())
        }
        return s
    }
    public mutating func readNullableBytes(compact: Bool, _ field: @autoclosure () -> String = "bytes") throws(WireDecodingError) -> [UInt8]? {
        guard let n = try readLength(compact: compact, field()) else { return nil }
        return try readRaw(n, field())
    }
    public mutating func readBytes(compact: Bool, _ field: @autoclosure () -> String = "bytes") throws(WireDecodingError) -> [UInt8] {
        guard let b = try readNullableBytes(compact: compact, field()) else {
            throw .invalidLength(-1, field: field())
        }
        return b
    }
    /// Reads an array count; nil means a null array.
    public mutating func readArrayLength(compact: Bool, _ field: @autoclosure () -> String = "array") throws(WireDecodingError) -> Int? {
        try readLength(compact: compact, field())
    }
    public mutating func readRaw(_ n: Int, _ field: @autoclosure () -> String = "raw") throws(WireDecodingError) -> [UInt8] {
        guard n >= 0 else { throw .invalidLength(Int64(n), field: field()) }
        try need(n, field())
        defer { position += n }
        return Array(bytes[position..<position + n])
    }
    /// Advances without copying; used to step over fields that are not kept.
    public mutating func skip(_ n: Int, _ field: @autoclosure () -> String = "skip") throws(WireDecodingError) {
        guard n >= 0 else { throw .invalidLength(Int64(n), field: field()) }
        try need(n, field())
        position += n
    }

    // MARK: Tagged fields

    /// Reads a tagged-field section, handing each known tag to `known` (which must consume exactly
    /// `size` bytes from the reader it is given) and keeping the rest verbatim.
    public mutating func readTaggedFields(
        _ known: (UInt32, inout WireReader) throws -> Bool = { _, _ in false }
    ) throws -> [TaggedField] {
        let count = Int(try readUnsignedVarint("tagged field count"))
        guard count <= remaining else { throw WireDecodingError.invalidLength(Int64(count), field: "tagged field count") }
        var unknown: [TaggedField] = []
        var lastTag: Int64 = -1
        for _ in 0..<count {
            let tag = try readUnsignedVarint("tag")
            guard Int64(tag) > lastTag else {
                throw WireDecodingError.invalidValue("tagged fields out of order: \(tag) after \(lastTag)")
            }
            lastTag = Int64(tag)
            let size = Int(try readUnsignedVarint("tagged field size"))
            try need(size, "tagged field \(tag)")
            var sub = WireReader(bytes, range: position..<position + size)
            if try known(tag, &sub) {
                guard sub.isAtEnd else { throw WireDecodingError.trailingBytes(sub.remaining, message: "tagged field \(tag)") }
            } else {
                unknown.append(TaggedField(tag: tag, data: Array(bytes[position..<position + size])))
            }
            position += size
        }
        return unknown
    }
}
