// Pointer-level helpers for the hot encode/decode paths. Callers guarantee the room (encoding sizes
// are computed exactly beforehand) or check bounds themselves (decoding).

@inline(__always) func zigzag32(_ v: Int32) -> UInt32 { UInt32(bitPattern: (v << 1) ^ (v >> 31)) }
@inline(__always) func zigzag64(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }

/// Bytes taken by an unsigned varint.
@inline(__always) func uvarintSize(_ v: UInt64) -> Int { (64 - (v | 1).leadingZeroBitCount + 6) / 7 }
@inline(__always) func varintSize(_ v: Int32) -> Int { uvarintSize(UInt64(zigzag32(v))) }
@inline(__always) func varlongSize(_ v: Int64) -> Int { uvarintSize(zigzag64(v)) }

/// Size of a varint length followed by the bytes, or of the varint -1 for null.
@inline(__always) func nullableBytesSize(_ b: [UInt8]?) -> Int {
    guard let b else { return 1 }
    return varintSize(Int32(truncatingIfNeeded: b.count)) + b.count
}

/// Writes through a raw pointer into memory the caller has sized.
struct PointerWriter {
    var p: UnsafeMutablePointer<UInt8>

    @inline(__always) init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }

    @inline(__always) mutating func u8(_ v: UInt8) {
        p.pointee = v
        p += 1
    }
    @inline(__always) mutating func uvarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            p.pointee = UInt8(truncatingIfNeeded: v) | 0x80
            p += 1
            v >>= 7
        }
        p.pointee = UInt8(truncatingIfNeeded: v)
        p += 1
    }
    @inline(__always) mutating func varint(_ v: Int32) { uvarint(UInt64(zigzag32(v))) }
    @inline(__always) mutating func varlong(_ v: Int64) { uvarint(zigzag64(v)) }

    @inline(__always) mutating func copy(_ src: UnsafeBufferPointer<UInt8>) {
        guard let base = src.baseAddress, src.count > 0 else { return }
        p.update(from: base, count: src.count)
        p += src.count
    }
    @inline(__always) mutating func nullableBytes(_ b: [UInt8]?) {
        guard let b else {
            u8(0x01)  // zigzag(-1)
            return
        }
        varint(Int32(truncatingIfNeeded: b.count))
        b.withUnsafeBufferPointer { copy($0) }
    }
    @inline(__always) mutating func string(_ s: String) {
        let n = s.utf8.count
        varint(Int32(truncatingIfNeeded: n))
        if s.utf8.withContiguousStorageIfAvailable({ copy($0) }) == nil {
            for b in s.utf8 { u8(b) }
        }
    }
}

@inline(__always) func storeBE(_ v: UInt64, _ p: UnsafeMutablePointer<UInt8>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v.bigEndian, as: UInt64.self)
}
@inline(__always) func storeBE(_ v: UInt32, _ p: UnsafeMutablePointer<UInt8>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v.bigEndian, as: UInt32.self)
}
@inline(__always) func storeBE(_ v: UInt16, _ p: UnsafeMutablePointer<UInt8>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v.bigEndian, as: UInt16.self)
}

@inline(__always) func loadBE64(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt64 {
    UInt64(bigEndian: UnsafeRawPointer(b.baseAddress! + i).loadUnaligned(as: UInt64.self))
}
@inline(__always) func loadBE32(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
    UInt32(bigEndian: UnsafeRawPointer(b.baseAddress! + i).loadUnaligned(as: UInt32.self))
}
@inline(__always) func loadBE16(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt16 {
    UInt16(bigEndian: UnsafeRawPointer(b.baseAddress! + i).loadUnaligned(as: UInt16.self))
}

/// A heap buffer of bytes, uninitialized beyond `count`, freed when it goes out of scope. Used for
/// decompressed data, which is parsed in place and never zero-filled.
struct RawBuffer: ~Copyable {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    var free: Int { capacity - count }
    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// Grows the capacity to at least `newCapacity`, keeping the bytes.
    mutating func reserve(_ newCapacity: Int) {
        guard newCapacity > capacity else { return }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    mutating func append(_ src: UnsafeBufferPointer<UInt8>) {
        guard let s = src.baseAddress, src.count > 0 else { return }
        reserve(Swift.max(count + src.count, capacity * 2))
        (base + count).initialize(from: s, count: src.count)
        count += src.count
    }

    func toArray() -> [UInt8] { Array(bytes) }
}
