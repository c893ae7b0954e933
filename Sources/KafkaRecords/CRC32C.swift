import CKafkaSupport

/// CRC-32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start), as Kafka uses for record
/// batches v2. Uses the CPU's crc32 instruction when available (x86_64 with SSE4.2).
@inlinable
public func crc32c(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    kw_crc32c(crc, bytes.baseAddress, bytes.count)
}

/// CRC-32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start).
@inlinable
public func crc32c(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { kw_crc32c(crc, $0.baseAddress, $0.count) }
}

/// The table-driven CRC-32C, whatever the CPU offers (for tests and comparisons).
public func crc32cPortable(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    kw_crc32c_portable(crc, bytes.baseAddress, bytes.count)
}

/// Whether `crc32c` uses the CPU's crc32 instruction.
public var crc32cIsHardwareAccelerated: Bool { kw_crc32c_hardware() != 0 }
