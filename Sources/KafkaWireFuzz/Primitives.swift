import KafkaProtocol

/// Runs the input as a little program over one WireReader: each step reads an opcode byte, then the
/// primitive it names from the same bytes. Every read must stay within the buffer, move forward,
/// and (for values) read back the same from the writer's encoding.
func fuzzPrimitives(_ bytes: [UInt8]) {
    var r = WireReader(bytes)
    var steps = 0
    while !r.isAtEnd, steps < 512 {
        steps += 1
        let before = r.position
        guard let op = try? r.readUInt8() else { return }
        do {
            try step(op, &r, bytes)
        } catch {
            return
        }
        guard r.position > before, r.position <= r.end else {
            finding("WireReader op \(op % 24) moved from \(before) to \(r.position) (end \(r.end))")
        }
    }
}

private func step(_ op: UInt8, _ r: inout WireReader, _ bytes: [UInt8]) throws {
    switch op % 24 {
    case 0: _ = try r.readInt8()
    case 1: _ = try r.readBool()
    case 2:
        let v = try r.readInt16()
        try expectBack(v) { $0.writeInt16(v) } read: { try $0.readInt16() }
    case 3:
        let v = try r.readInt32()
        try expectBack(v) { $0.writeInt32(v) } read: { try $0.readInt32() }
    case 4:
        let v = try r.readInt64()
        try expectBack(v) { $0.writeInt64(v) } read: { try $0.readInt64() }
    case 5:
        let v = try r.readFloat64()
        try expectBack(v.bitPattern) { $0.writeFloat64(v) } read: { try $0.readFloat64().bitPattern }
    case 6:
        let v = try r.readUUID()
        try expectBack(v) { $0.writeUUID(v) } read: { try $0.readUUID() }
    case 7:
        let v = try r.readUnsignedVarint()
        try expectBack(v) { $0.writeUnsignedVarint(v) } read: { try $0.readUnsignedVarint() }
    case 8:
        let v = try r.readVarint()
        try expectBack(v) { $0.writeVarint(v) } read: { try $0.readVarint() }
    case 9:
        let v = try r.readUnsignedVarlong()
        try expectBack(v) { $0.writeUnsignedVarlong(v) } read: { try $0.readUnsignedVarlong() }
    case 10:
        let v = try r.readVarlong()
        try expectBack(v) { $0.writeVarlong(v) } read: { try $0.readVarlong() }
    case 11, 12:
        let compact = op % 24 == 12
        let v = try r.readNullableString(compact: compact)
        try expectBack(v) { $0.writeNullableString(v, compact: compact) } read: { try $0.readNullableString(compact: compact) }
    case 13, 14:
        let compact = op % 24 == 14
        let v = try r.readString(compact: compact)
        try expectBack(v) { $0.writeString(v, compact: compact) } read: { try $0.readString(compact: compact) }
    case 15, 16:
        let compact = op % 24 == 16
        let v = try r.readNullableBytes(compact: compact)
        try expectBack(v) { $0.writeNullableBytes(v, compact: compact) } read: { try $0.readNullableBytes(compact: compact) }
    case 17:
        let v = try r.readBytes(compact: true)
        try expectBack(v) { $0.writeBytes(v, compact: true) } read: { try $0.readBytes(compact: true) }
    case 18, 19:
        let compact = op % 24 == 19
        if let n = try r.readArrayLength(compact: compact), n > r.remaining {
            finding("array length \(n) accepted with \(r.remaining) bytes left")
        }
    case 20:
        // Tagged fields, some claimed by a handler that reads varints (it may leave bytes over,
        // which must be an error) or everything.
        let unknown = try r.readTaggedFields { tag, sub in
            switch tag % 3 {
            case 0: return false
            case 1:
                _ = try sub.readRaw(sub.remaining)
                return true
            default:
                _ = try sub.readUnsignedVarint()
                return true
            }
        }
        var previous: Int64 = -1
        for field in unknown {
            guard Int64(field.tag) > previous else { finding("tagged fields returned out of order") }
            previous = Int64(field.tag)
        }
        if unknown.count == 0 || unknown.allSatisfy({ $0.tag % 3 == 0 }) {
            // Unknown fields alone re-encode to what was read when the count and sizes are canonical.
            var w = WireWriter()
            w.writeTaggedFields(unknown)
            var back = WireReader(w.bytes)
            let again = try back.readTaggedFields()
            guard again == unknown, back.isAtEnd else { finding("tagged fields do not read back: \(unknown)") }
        }
    case 21:
        let n = Int(try r.readUInt8())
        let raw = try r.readRaw(n)
        guard raw.count == n else { finding("readRaw(\(n)) returned \(raw.count) bytes") }
    case 22:
        try r.skip(Int(try r.readUInt8()))
    default:
        // A sub-reader over a range of the buffer: positions stay absolute and end where told.
        let a = Int(try r.readUInt8())
        let b = Int(try r.readUInt8())
        let lower = Swift.min(r.position + a, r.end)
        let upper = Swift.min(lower + b, r.end)
        var sub = WireReader(bytes, range: lower..<upper)
        while !sub.isAtEnd {
            let before = sub.position
            guard (try? sub.readVarlong()) != nil else { break }
            guard sub.position > before, sub.position <= upper else { finding("sub-reader left its range") }
        }
    }
}

/// Writes `value` with `write`, reads it back with `read`: the same value, all bytes used.
private func expectBack<T: Equatable>(
    _ value: T, write: (inout WireWriter) -> Void, read: (inout WireReader) throws -> T
) throws {
    var w = WireWriter()
    write(&w)
    var back = WireReader(w.bytes)
    let again: T
    do {
        again = try read(&back)
    } catch {
        finding("\(T.self) \(value) does not read back from its encoding \(hex(w.bytes)): \(error)")
    }
    guard again == value, back.isAtEnd else {
        finding("\(T.self) \(value) reads back as \(again) from \(hex(w.bytes))")
    }
}
