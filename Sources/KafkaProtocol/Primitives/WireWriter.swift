/// Appends Kafka wire primitives (big-endian integers, varints, strings, bytes, arrays) to a byte buffer.
///
/// The `compact` flag on the variable-length writers selects the flexible-version encodings
/// (unsigned-varint length + 1) instead of the classic int16/int32 length prefixes.
public struct WireWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    // MARK: Fixed-width integers

    @inlinable public mutating func writeInt8(_ v: Int8) { bytes.append(UInt8(bitPattern: v)) }
    @inlinable public mutating func writeUInt8(_ v: UInt8) { bytes.append(v) }
    @inlinable public mutating func writeBool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    @inlinable public mutating func writeInt16(_ v: Int16) { writeUInt16(UInt16(bitPattern: v)) }
    @inlinable public mutating func writeUInt16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }
    @inlinable public mutating func writeInt32(_ v: Int32) { writeUInt32(UInt32(bitPattern: v)) }
    @inlinable public mutating func writeUInt32(_ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }
    @inlinable public mutating func writeInt64(_ v: Int64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }
    @inlinable public mutating func writeFloat64(_ v: Double) { writeInt64(Int64(bitPattern: v.bitPattern)) }

    // MARK: Varints

    @inlinable public mutating func writeUnsignedVarint(_ v: UInt32) { writeUnsignedVarlong(UInt64(v)) }
    @inlinable public mutating func writeUnsignedVarlong(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    /// Zigzag-encoded signed varint (record fields).
    @inlinable public mutating func writeVarint(_ v: Int32) {
        writeUnsignedVarint(UInt32(bitPattern: (v << 1) ^ (v >> 31)))
    }
    @inlinable public mutating func writeVarlong(_ v: Int64) {
        writeUnsignedVarlong(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    // MARK: UUID

    public mutating func writeUUID(_ v: KafkaUUID) {
        writeUInt64Raw(v.high)
        writeUInt64Raw(v.low)
    }
    mutating func writeUInt64Raw(_ v: UInt64) { writeInt64(Int64(bitPattern: v)) }

    // MARK: Length-prefixed data

    /// Writes a length (or -1 for null) in the classic int16 or compact form.
    @inlinable public mutating func writeStringLength(_ length: Int?, compact: Bool) {
        if compact {
            writeUnsignedVarint(UInt32(truncatingIfNeeded: (length ?? -1) + 1))
        } else {
            writeInt16(Int16(truncatingIfNeeded: length ?? -1))
        }
    }
    /// Writes a length (or -1 for null) in the classic int32 or compact form (bytes, arrays, records).
    @inlinable public mutating func writeLength(_ length: Int?, compact: Bool) {
        if compact {
            writeUnsignedVarint(UInt32(truncatingIfNeeded: (length ?? -1) + 1))
        } else {
            writeInt32(Int32(truncatingIfNeeded: length ?? -1))
        }
    }

    public mutating func writeString(_ v: String, compact: Bool) {
        var v = v
        v.withUTF8 { utf8 in
            writeStringLength(utf8.count, compact: compact)
            bytes.append(contentsOf: utf8)
        }
    }
    public mutating func writeNullableString(_ v: String?, compact: Bool) {
        if let v { writeString(v, compact: compact) } else { writeStringLength(nil, compact: compact) }
    }
    public mutating func writeBytes(_ v: [UInt8], compact: Bool) {
        writeLength(v.count, compact: compact)
        bytes.append(contentsOf: v)
    }
    public mutating func writeNullableBytes(_ v: [UInt8]?, compact: Bool) {
        if let v { writeBytes(v, compact: compact) } else { writeLength(nil, compact: compact) }
    }
    public mutating func writeArrayLength(_ count: Int?, compact: Bool) { writeLength(count, compact: compact) }

    @inlinable public mutating func writeRaw<C: Collection>(_ raw: C) where C.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    // MARK: Tagged fields

    /// Writes the tagged-field section of a flexible struct: count, then (tag, size, data) in tag order.
    public mutating func writeTaggedFields(_ fields: [TaggedField]) {
        writeUnsignedVarint(UInt32(fields.count))
        for field in fields.sorted(by: { $0.tag < $1.tag }) {
            writeUnsignedVarint(field.tag)
            writeUnsignedVarint(UInt32(field.data.count))
            bytes.append(contentsOf: field.data)
        }
    }

    // MARK: Patching

    /// Overwrites four bytes at `offset` with a big-endian Int32 (length prefixes written after the body).
    @inlinable public mutating func patchInt32(_ v: Int32, at offset: Int) {
        let u = UInt32(bitPattern: v)
        bytes[offset] = UInt8(truncatingIfNeeded: u >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: u >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: u >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: u)
    }
    @inlinable public mutating func patchUInt32(_ v: UInt32, at offset: Int) {
        patchInt32(Int32(bitPattern: v), at: offset)
    }
}

/// A tagged field kept as raw bytes: unknown tags read from the wire are preserved so that
/// re-encoding a decoded message gives the same bytes.
public struct TaggedField: Sendable, Hashable {
    public var tag: UInt32
    public var data: [UInt8]
    public init(tag: UInt32, data: [UInt8]) {
        self.tag = tag
        self.data = data
    }
}

/// Kafka's 128-bit UUID (topic ids, member epochs...). All zeros is Kafka's "zero UUID".
public struct KafkaUUID: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }
    public static let zero = KafkaUUID(high: 0, low: 0)

    public static func random() -> KafkaUUID {
        var g = SystemRandomNumberGenerator()
        // Version 4, variant 1, as java.util.UUID.randomUUID.
        let high = (g.next() & ~0xF000) | 0x4000
        let low = (g.next() & ~(0xC000_0000_0000_0000 as UInt64)) | 0x8000_0000_0000_0000
        return KafkaUUID(high: high, low: low)
    }

    /// Kafka prints topic ids as URL-safe base64 without padding.
    public var description: String {
        var raw = [UInt8]()
        withUnsafeBytes(of: high.bigEndian) { raw.append(contentsOf: $0) }
        withUnsafeBytes(of: low.bigEndian) { raw.append(contentsOf: $0) }
        return Base64URL.encode(raw)
    }
}

enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static func encode(_ data: [UInt8]) -> String {
        var out = [UInt8]()
        var i = 0
        while i < data.count {
            let b0 = UInt32(data[i])
            let b1 = i + 1 < data.count ? UInt32(data[i + 1]) : 0
            let b2 = i + 2 < data.count ? UInt32(data[i + 2]) : 0
            let n = (b0 << 16) | (b1 << 8) | b2
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            if i + 1 < data.count { out.append(alphabet[Int((n >> 6) & 63)]) }
            if i + 2 < data.count { out.append(alphabet[Int(n & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
