import Testing
@testable import KafkaProtocol

@Suite("Wire primitives")
struct PrimitivesTests {
    // MARK: Varints

    static let unsignedCases: [(UInt32, [UInt8])] = [
        (0, [0x00]),
        (1, [0x01]),
        (127, [0x7F]),
        (128, [0x80, 0x01]),
        (300, [0xAC, 0x02]),
        (16_383, [0xFF, 0x7F]),
        (16_384, [0x80, 0x80, 0x01]),
        (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ]

    @Test(arguments: unsignedCases)
    func unsignedVarint(value: UInt32, bytes: [UInt8]) throws {
        var w = WireWriter()
        w.writeUnsignedVarint(value)
        #expect(w.bytes == bytes)
        var r = WireReader(bytes)
        #expect(try r.readUnsignedVarint() == value)
        #expect(r.isAtEnd)
    }

    static let varintCases: [(Int32, [UInt8])] = [
        (0, [0x00]),
        (-1, [0x01]),
        (1, [0x02]),
        (-2, [0x03]),
        (63, [0x7E]),
        (-64, [0x7F]),
        (64, [0x80, 0x01]),
        (Int32.max, [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
        (Int32.min, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ]

    @Test(arguments: varintCases)
    func zigzagVarint(value: Int32, bytes: [UInt8]) throws {
        var w = WireWriter()
        w.writeVarint(value)
        #expect(w.bytes == bytes)
        var r = WireReader(bytes)
        #expect(try r.readVarint() == value)
        #expect(r.isAtEnd)
    }

    static let varlongCases: [(Int64, [UInt8])] = [
        (0, [0x00]),
        (-1, [0x01]),
        (1, [0x02]),
        (Int64(Int32.max) + 1, [0x80, 0x80, 0x80, 0x80, 0x10]),
        (Int64.max, [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        (Int64.min, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
    ]

    @Test(arguments: varlongCases)
    func zigzagVarlong(value: Int64, bytes: [UInt8]) throws {
        var w = WireWriter()
        w.writeVarlong(value)
        #expect(w.bytes == bytes)
        var r = WireReader(bytes)
        #expect(try r.readVarlong() == value)
        #expect(r.isAtEnd)
    }

    @Test func sixByteVarintIsMalformed() {
        // Zero padded to six bytes: the value fits in 32 bits, the encoding does not.
        var r = WireReader([0x80, 0x80, 0x80, 0x80, 0x80, 0x00])
        #expect(throws: WireDecodingError.malformedVarint(field: "v")) { try r.readUnsignedVarint("v") }
        var r2 = WireReader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
        #expect(throws: WireDecodingError.malformedVarint(field: "v")) { try r2.readVarint("v") }
    }

    @Test func fiveByteVarintBeyond32BitsIsMalformed() {
        var r = WireReader([0xFF, 0xFF, 0xFF, 0xFF, 0x1F])
        #expect(throws: WireDecodingError.malformedVarint(field: "v")) { try r.readUnsignedVarint("v") }
    }

    @Test func elevenByteVarlongIsMalformed() {
        var r = WireReader([UInt8](repeating: 0x80, count: 10) + [0x00])
        #expect(throws: WireDecodingError.malformedVarint(field: "v")) { try r.readVarlong("v") }
        // Ten bytes whose last one carries more than the 64th bit.
        var r2 = WireReader([UInt8](repeating: 0xFF, count: 9) + [0x02])
        #expect(throws: WireDecodingError.malformedVarint(field: "v")) { try r2.readUnsignedVarlong("v") }
    }

    @Test func truncatedVarint() {
        var r = WireReader([0x80, 0x80])
        #expect(throws: WireDecodingError.truncated(needed: 1, remaining: 0, field: "v")) { try r.readUnsignedVarint("v") }
        var empty = WireReader([])
        #expect(throws: WireDecodingError.truncated(needed: 1, remaining: 0, field: "v")) { try empty.readVarlong("v") }
    }

    // MARK: Fixed width

    @Test func fixedWidthBigEndian() throws {
        var w = WireWriter()
        w.writeInt16(-2)
        w.writeInt32(0x0102_0304)
        w.writeInt64(-1)
        w.writeUInt16(0xABCD)
        w.writeUInt32(0xDEAD_BEEF)
        w.writeFloat64(1.5)
        w.writeBool(true)
        w.writeInt8(-128)
        #expect(w.bytes == [0xFF, 0xFE, 0x01, 0x02, 0x03, 0x04] + [UInt8](repeating: 0xFF, count: 8)
            + [0xAB, 0xCD, 0xDE, 0xAD, 0xBE, 0xEF, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0x01, 0x80])
        var r = WireReader(w.bytes)
        #expect(try r.readInt16() == -2)
        #expect(try r.readInt32() == 0x0102_0304)
        #expect(try r.readInt64() == -1)
        #expect(try r.readUInt16() == 0xABCD)
        #expect(try r.readUInt32() == 0xDEAD_BEEF)
        #expect(try r.readFloat64() == 1.5)
        #expect(try r.readBool() == true)
        #expect(try r.readInt8() == -128)
        #expect(r.isAtEnd)
        #expect(throws: WireDecodingError.truncated(needed: 4, remaining: 0, field: "x")) { try r.readInt32("x") }
    }

    @Test func uuidIsSixteenBigEndianBytes() throws {
        let id = KafkaUUID(high: 0x0011_2233_4455_6677, low: 0x8899_AABB_CCDD_EEFF)
        var w = WireWriter()
        w.writeUUID(id)
        #expect(w.bytes == [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF])
        var r = WireReader(w.bytes)
        #expect(try r.readUUID() == id)
    }

    // MARK: Lengths

    @Test func compactAndClassicStrings() throws {
        var w = WireWriter()
        w.writeString("abc", compact: true)
        w.writeString("abc", compact: false)
        w.writeNullableString(nil, compact: true)
        w.writeNullableString(nil, compact: false)
        w.writeString("", compact: true)
        w.writeString("", compact: false)
        #expect(w.bytes == [0x04, 0x61, 0x62, 0x63, 0x00, 0x03, 0x61, 0x62, 0x63, 0x00, 0xFF, 0xFF, 0x01, 0x00, 0x00])
        var r = WireReader(w.bytes)
        #expect(try r.readString(compact: true) == "abc")
        #expect(try r.readString(compact: false) == "abc")
        #expect(try r.readNullableString(compact: true) == nil)
        #expect(try r.readNullableString(compact: false) == nil)
        #expect(try r.readString(compact: true) == "")
        #expect(try r.readString(compact: false) == "")
        #expect(r.isAtEnd)
    }

    @Test func compactAndClassicBytesAndArrays() throws {
        var w = WireWriter()
        w.writeBytes([9, 8], compact: true)
        w.writeBytes([9, 8], compact: false)
        w.writeNullableBytes(nil, compact: true)
        w.writeNullableBytes(nil, compact: false)
        w.writeArrayLength(2, compact: true)
        w.writeArrayLength(2, compact: false)
        w.writeArrayLength(nil, compact: true)
        w.writeArrayLength(nil, compact: false)
        #expect(w.bytes == [0x03, 9, 8, 0, 0, 0, 2, 9, 8, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
                            0x03, 0, 0, 0, 2, 0x00, 0xFF, 0xFF, 0xFF, 0xFF])
        var r = WireReader(w.bytes)
        #expect(try r.readBytes(compact: true) == [9, 8])
        #expect(try r.readBytes(compact: false) == [9, 8])
        #expect(try r.readNullableBytes(compact: true) == nil)
        #expect(try r.readNullableBytes(compact: false) == nil)
        #expect(try r.readArrayLength(compact: true) == 2)
        #expect(try r.readArrayLength(compact: false) == 2)
        #expect(try r.readArrayLength(compact: true) == nil)
        #expect(try r.readArrayLength(compact: false) == nil)
    }

    @Test func nullWhereNotAllowed() {
        var r = WireReader([0xFF, 0xFF])
        #expect(throws: WireDecodingError.invalidLength(-1, field: "s")) { try r.readString(compact: false, "s") }
        var r2 = WireReader([0x00])
        #expect(throws: WireDecodingError.invalidLength(-1, field: "b")) { try r2.readBytes(compact: true, "b") }
    }

    @Test func negativeLengthsOtherThanMinusOne() {
        var r = WireReader([0xFF, 0xFE, 0x61])
        #expect(throws: WireDecodingError.invalidLength(-2, field: "s")) { try r.readNullableString(compact: false, "s") }
        var r2 = WireReader([0x80, 0x00, 0x00, 0x00])
        #expect(throws: WireDecodingError.invalidLength(Int64(Int32.min), field: "b")) { try r2.readNullableBytes(compact: false, "b") }
        var r3 = WireReader([0xFF, 0xFF, 0xFF, 0xF0])
        #expect(throws: WireDecodingError.invalidLength(-16, field: "a")) { try r3.readArrayLength(compact: false, "a") }
    }

    @Test func lengthsBeyondWhatRemains() {
        var r = WireReader([0x00, 0x0A, 0x61, 0x62])
        #expect(throws: WireDecodingError.invalidLength(10, field: "s")) { try r.readString(compact: false, "s") }
        // Compact: 0xFFFFFFFF - 1, far more than remains; must not try to allocate it.
        var r2 = WireReader([0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00])
        #expect(throws: WireDecodingError.invalidLength(Int64(UInt32.max) - 1, field: "b")) { try r2.readBytes(compact: true, "b") }
        var r3 = WireReader([0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: WireDecodingError.invalidLength(Int64(Int32.max), field: "a")) { try r3.readArrayLength(compact: false, "a") }
    }

    @Test func invalidUTF8() {
        var r = WireReader([0x00, 0x02, 0xC3, 0x28])
        #expect(throws: WireDecodingError.invalidUTF8(field: "s")) { try r.readString(compact: false, "s") }
        var r2 = WireReader([0x02, 0xFF])
        #expect(throws: WireDecodingError.invalidUTF8(field: "s")) { try r2.readNullableString(compact: true, "s") }
    }

    // MARK: Tagged fields

    @Test func taggedFieldsRoundTripInTagOrder() throws {
        var w = WireWriter()
        w.writeTaggedFields([TaggedField(tag: 5, data: [1]), TaggedField(tag: 2, data: [])])
        #expect(w.bytes == [0x02, 0x02, 0x00, 0x05, 0x01, 0x01])
        var r = WireReader(w.bytes)
        #expect(try r.readTaggedFields() == [TaggedField(tag: 2, data: []), TaggedField(tag: 5, data: [1])])
        #expect(r.isAtEnd)
    }

    @Test func outOfOrderTagsAreRejected() {
        var r = WireReader([0x02, 0x05, 0x00, 0x03, 0x00])
        #expect(throws: WireDecodingError.self) { try r.readTaggedFields() }
        var dup = WireReader([0x02, 0x03, 0x00, 0x03, 0x00])
        #expect(throws: WireDecodingError.self) { try dup.readTaggedFields() }
    }

    @Test func taggedFieldBeyondInput() {
        var r = WireReader([0x01, 0x00, 0x05, 0x01])
        #expect(throws: WireDecodingError.truncated(needed: 5, remaining: 1, field: "tagged field 0")) { try r.readTaggedFields() }
        var count = WireReader([0x7F])
        #expect(throws: WireDecodingError.invalidLength(127, field: "tagged field count")) { try count.readTaggedFields() }
    }
}
