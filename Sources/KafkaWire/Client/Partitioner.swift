/// Kafka's murmur2 (the Java client's `Utils.murmur2`), seed 0x9747b28c. Keyed records must land on
/// the partition the Java client, aiokafka and librdkafka's `murmur2_random` partitioner choose.
public func murmur2(_ data: [UInt8]) -> Int32 {
    let m: UInt32 = 0x5bd1_e995
    let r: UInt32 = 24
    let length = data.count
    var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
    let blocks = length / 4
    data.withUnsafeBytes { raw in
        for i in 0..<blocks {
            var k = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
            k &*= m
            k ^= k >> r
            k &*= m
            h &*= m
            h ^= k
        }
    }
    let tail = blocks * 4
    switch length & 3 {
    case 3:
        h ^= UInt32(data[tail + 2]) << 16
        h ^= UInt32(data[tail + 1]) << 8
        h ^= UInt32(data[tail])
        h &*= m
    case 2:
        h ^= UInt32(data[tail + 1]) << 8
        h ^= UInt32(data[tail])
        h &*= m
    case 1:
        h ^= UInt32(data[tail])
        h &*= m
    default: break
    }
    h ^= h >> 13
    h &*= m
    h ^= h >> 15
    return Int32(bitPattern: h)
}

/// The partition the Java client's default partitioner picks for a non-null key.
public func partitionForKey(_ key: [UInt8], partitionCount: Int) -> Int32 {
    precondition(partitionCount > 0)
    let positive = murmur2(key) & 0x7fff_ffff
    return positive % Int32(partitionCount)
}
