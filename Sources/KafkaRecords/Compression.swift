import CLZ4
import CSnappy
import CZlib
import CZstd

extension CompressionCodec {
    /// Compresses `bytes` the way Kafka's Java client does: gzip member, LZ4 frame (64 KiB
    /// independent blocks, no content checksum), xerial-framed snappy, zstd frame.
    /// `.none` returns the input.
    public func compress(_ bytes: [UInt8], level: Int? = nil) throws(RecordEncodingError) -> [UInt8] {
        if self == .none { return bytes }
        return try bytes.withUnsafeBufferPointer { (input) throws(RecordEncodingError) -> [UInt8] in
            try Compressor.compress(self, input, level: level, prefix: 0)
        }
    }

    /// Decompresses `bytes`, failing with a typed error on corrupt input or if the output would
    /// exceed `maxOutputBytes`. Snappy accepts both raw and xerial-framed data; gzip, lz4 and zstd
    /// accept concatenated members/frames. `.none` returns the input.
    public func decompress(_ bytes: [UInt8], maxOutputBytes: Int = RecordSet.defaultMaxDecompressedBytes) throws(RecordDecodingError) -> [UInt8] {
        if self == .none { return bytes }
        return try bytes.withUnsafeBufferPointer { (input) throws(RecordDecodingError) -> [UInt8] in
            try Decompressor.decompress(self, input, limit: maxOutputBytes).toArray()
        }
    }
}

// MARK: - Compression

enum Compressor {
    static let xerialHeader: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]
    /// Uncompressed bytes per xerial chunk (snappy-java's default block size).
    static let xerialChunk = 32 * 1024

    /// Returns `prefix` zero bytes followed by the compressed input.
    static func compress(
        _ codec: CompressionCodec, _ input: UnsafeBufferPointer<UInt8>, level: Int?, prefix: Int
    ) throws(RecordEncodingError) -> [UInt8] {
        // Never hand a library a null source pointer, even for empty input.
        var dummy: UInt8 = 0
        return try withUnsafeMutablePointer(to: &dummy) { (d) throws(RecordEncodingError) -> [UInt8] in
            let src = input.baseAddress ?? UnsafePointer(d)
            switch codec {
            case .none:
                var out = [UInt8](repeating: 0, count: prefix)
                out.append(contentsOf: input)
                return out
            case .gzip: return try gzip(src, input.count, level: level, prefix: prefix)
            case .snappy: return try snappy(src, input.count, prefix: prefix)
            case .lz4: return try lz4(src, input.count, level: level, prefix: prefix)
            case .zstd: return try zstd(src, input.count, level: level, prefix: prefix)
            }
        }
    }

    /// Allocates `prefix + capacity` bytes, zeroes the prefix, lets `body` fill the rest and report
    /// how much it wrote (nil on failure).
    @inline(__always)
    static func withOutput(
        prefix: Int, capacity: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int?
    ) -> [UInt8]? {
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: prefix + capacity) { buffer, initialized in
            let base = buffer.baseAddress!
            base.initialize(repeating: 0, count: prefix)
            if let written = body(base + prefix) {
                initialized = prefix + written
            } else {
                ok = false
                initialized = prefix
            }
        }
        return ok ? out : nil
    }

    static func gzip(_ src: UnsafePointer<UInt8>, _ count: Int, level: Int?, prefix: Int) throws(RecordEncodingError) -> [UInt8] {
        let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        strm.initialize(to: z_stream())
        defer { strm.deallocate() }
        let rc = deflateInit2_(
            strm, Int32(level ?? Int(Z_DEFAULT_COMPRESSION)), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw .compressionFailed(codec: .gzip, reason: "deflateInit2 returned \(rc)") }
        defer { deflateEnd(strm) }
        let bound = Int(deflateBound(strm, uLong(count)))
        var result: Int32 = Z_OK
        let out = withOutput(prefix: prefix, capacity: bound) { dst in
            strm.pointee.next_in = UnsafeMutablePointer(mutating: src)
            strm.pointee.avail_in = uInt(count)
            strm.pointee.next_out = dst
            strm.pointee.avail_out = uInt(bound)
            result = deflate(strm, Z_FINISH)
            return result == Z_STREAM_END ? bound - Int(strm.pointee.avail_out) : nil
        }
        guard let out else { throw .compressionFailed(codec: .gzip, reason: "deflate returned \(result)") }
        return out
    }

    static func lz4(_ src: UnsafePointer<UInt8>, _ count: Int, level: Int?, prefix: Int) throws(RecordEncodingError) -> [UInt8] {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max64KB
        prefs.frameInfo.blockMode = LZ4F_blockIndependent
        prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum
        prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum
        prefs.compressionLevel = Int32(level ?? 0)
        let bound = LZ4F_compressFrameBound(count, &prefs)
        var result = 0
        let out = withOutput(prefix: prefix, capacity: bound) { dst in
            result = LZ4F_compressFrame(dst, bound, src, count, &prefs)
            return LZ4F_isError(result) == 0 ? result : nil
        }
        guard let out else { throw .compressionFailed(codec: .lz4, reason: String(cString: LZ4F_getErrorName(result))) }
        return out
    }

    static func zstd(_ src: UnsafePointer<UInt8>, _ count: Int, level: Int?, prefix: Int) throws(RecordEncodingError) -> [UInt8] {
        guard let cctx = ThreadContexts.zstdCompression() else {
            throw .compressionFailed(codec: .zstd, reason: "cannot create a compression context")
        }
        let bound = ZSTD_compressBound(count)
        var result = 0
        let out = withOutput(prefix: prefix, capacity: bound) { dst in
            result = ZSTD_compressCCtx(cctx, dst, bound, src, count, Int32(level ?? 3))
            return ZSTD_isError(result) == 0 ? result : nil
        }
        guard let out else { throw .compressionFailed(codec: .zstd, reason: String(cString: ZSTD_getErrorName(result))) }
        return out
    }

    /// xerial framing (what Kafka's Java client writes): 16-byte header, then chunks of at most
    /// 32 KiB of input, each a big-endian int32 length and a raw snappy block.
    static func snappy(_ src: UnsafePointer<UInt8>, _ count: Int, prefix: Int) throws(RecordEncodingError) -> [UInt8] {
        let chunks = (count + xerialChunk - 1) / xerialChunk
        var bound = xerialHeader.count
        var remaining = count
        for _ in 0..<chunks {
            let n = Swift.min(remaining, xerialChunk)
            bound += 4 + snappy_max_compressed_length(n)
            remaining -= n
        }
        var status = SNAPPY_OK
        let out = withOutput(prefix: prefix, capacity: bound) { dst in
            var w = 0
            for b in xerialHeader {
                dst[w] = b
                w += 1
            }
            var offset = 0
            while offset < count {
                let n = Swift.min(count - offset, xerialChunk)
                var written = bound - w - 4
                status = snappy_compress(
                    UnsafeRawPointer(src + offset).assumingMemoryBound(to: CChar.self), n,
                    UnsafeMutableRawPointer(dst + w + 4).assumingMemoryBound(to: CChar.self), &written)
                guard status == SNAPPY_OK else { return nil }
                storeBE(UInt32(truncatingIfNeeded: written), dst + w)
                w += 4 + written
                offset += n
            }
            return w
        }
        guard let out else { throw .compressionFailed(codec: .snappy, reason: "snappy_compress returned \(status.rawValue)") }
        return out
    }
}

// MARK: - Decompression

/// Output that grows geometrically up to a hard limit.
struct BoundedOutput: ~Copyable {
    var raw: RawBuffer
    let limit: Int
    /// Capacity never goes beyond this (at least 1, so there is always a valid pointer).
    let capacityLimit: Int

    init(expected: Int, limit: Int) {
        self.limit = Swift.max(limit, 0)
        capacityLimit = Swift.max(self.limit, 1)
        raw = RawBuffer(capacity: Swift.min(Swift.max(expected, 1024), capacityLimit))
    }

    var free: Int { raw.free }
    var produced: Int { raw.count }
    var next: UnsafeMutablePointer<UInt8> { raw.base + raw.count }

    /// Makes room for more output; false once the limit is reached.
    mutating func grow() -> Bool {
        guard raw.capacity < capacityLimit else { return false }
        raw.reserve(Swift.min(capacityLimit, Swift.max(raw.capacity * 2, 64 * 1024)))
        return true
    }

    consuming func finish(_ codec: CompressionCodec) throws(RecordDecodingError) -> RawBuffer {
        guard raw.count <= limit else { throw .decompressedSizeLimitExceeded(codec: codec, limit: limit) }
        return raw
    }
}

enum Decompressor {
    /// Decompresses into a buffer of at most `limit` bytes.
    /// - Parameter legacyLZ4: the input comes from a magic-0 message, whose LZ4 frame header checksum
    ///   Kafka before 0.10 computed wrongly; it is recomputed before decoding (as Java ignores it).
    static func decompress(
        _ codec: CompressionCodec, _ input: UnsafeBufferPointer<UInt8>, limit: Int, legacyLZ4: Bool = false
    ) throws(RecordDecodingError) -> RawBuffer {
        // Never hand a library a null source pointer, even for empty input.
        var dummy: UInt8 = 0
        return try withUnsafeMutablePointer(to: &dummy) { (d) throws(RecordDecodingError) -> RawBuffer in
            let src = input.baseAddress ?? UnsafePointer(d)
            switch codec {
            case .none:
                guard input.count <= limit else { throw .decompressedSizeLimitExceeded(codec: .none, limit: limit) }
                var out = RawBuffer(capacity: input.count)
                out.append(input)
                return out
            case .gzip: return try gunzip(src, input.count, limit: limit)
            case .snappy: return try unsnappy(src, input.count, limit: limit)
            case .lz4:
                if legacyLZ4 {
                    var copy = RawBuffer(capacity: input.count)
                    copy.append(input)
                    fixLegacyLZ4HeaderChecksum(UnsafeMutableBufferPointer(start: copy.base, count: copy.count))
                    return try unlz4(copy.base, copy.count, limit: limit)
                }
                return try unlz4(src, input.count, limit: limit)
            case .zstd: return try unzstd(src, input.count, limit: limit)
            }
        }
    }

    static func gunzip(_ src: UnsafePointer<UInt8>, _ count: Int, limit: Int) throws(RecordDecodingError) -> RawBuffer {
        // zlib keeps a pointer back to the z_stream: it must not move, so it lives on the heap.
        let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        strm.initialize(to: z_stream())
        defer { strm.deallocate() }
        let rc = inflateInit2_(strm, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw .decompressionFailed(codec: .gzip, reason: "inflateInit2 returned \(rc)") }
        defer { inflateEnd(strm) }
        strm.pointee.next_in = UnsafeMutablePointer(mutating: src)
        strm.pointee.avail_in = uInt(count)
        // The gzip trailer holds the uncompressed size (mod 2^32): a good first guess, within
        // deflate's maximum ratio (about 1032:1).
        var expected = count * 4
        if count >= 18 {
            let trailer = UnsafeRawPointer(src + count - 4).loadUnaligned(as: UInt32.self)
            expected = Swift.min(Int(UInt32(littleEndian: trailer)), count.multipliedReportingOverflow(by: 1032).partialValue)
        }
        var out = BoundedOutput(expected: expected, limit: limit)
        while true {
            if out.free == 0 {
                guard out.grow() else { throw .decompressedSizeLimitExceeded(codec: .gzip, limit: limit) }
            }
            let space = out.free
            strm.pointee.next_out = out.next
            strm.pointee.avail_out = uInt(space)
            let r = inflate(strm, Z_NO_FLUSH)
            out.raw.count += space - Int(strm.pointee.avail_out)
            switch r {
            case Z_STREAM_END:
                if strm.pointee.avail_in == 0 { return try out.finish(.gzip) }
                // Another gzip member follows.
                guard inflateReset(strm) == Z_OK else { throw .decompressionFailed(codec: .gzip, reason: "inflateReset failed") }
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                if out.free == 0 { continue }
                throw .decompressionFailed(codec: .gzip, reason: "truncated gzip stream")
            default:
                let message = strm.pointee.msg.map { String(cString: $0) } ?? "inflate returned \(r)"
                throw .decompressionFailed(codec: .gzip, reason: message)
            }
        }
    }

    static func unlz4(_ src: UnsafePointer<UInt8>, _ count: Int, limit: Int) throws(RecordDecodingError) -> RawBuffer {
        guard let dctx = ThreadContexts.lz4Decompression() else {
            throw .decompressionFailed(codec: .lz4, reason: "cannot create a decompression context")
        }
        LZ4F_resetDecompressionContext(dctx)  // it may hold the state of a failed frame
        var out = BoundedOutput(expected: count * 4, limit: limit)
        var consumed = 0
        while true {
            if out.free == 0 {
                guard out.grow() else { throw .decompressedSizeLimitExceeded(codec: .lz4, limit: limit) }
            }
            var srcSize = count - consumed
            var dstSize = out.free
            let r = LZ4F_decompress(dctx, out.next, &dstSize, src + consumed, &srcSize, nil)
            if LZ4F_isError(r) != 0 {
                throw .decompressionFailed(codec: .lz4, reason: String(cString: LZ4F_getErrorName(r)))
            }
            consumed += srcSize
            out.raw.count += dstSize
            if r == 0 {
                // End of a frame; another may follow.
                if consumed == count { return try out.finish(.lz4) }
                continue
            }
            if consumed == count && out.free > 0 {
                throw .decompressionFailed(codec: .lz4, reason: "truncated LZ4 frame")
            }
        }
    }

    static func unzstd(_ src: UnsafePointer<UInt8>, _ count: Int, limit: Int) throws(RecordDecodingError) -> RawBuffer {
        let contentSize = ZSTD_getFrameContentSize(src, count)
        var expected = count * 4
        if contentSize < UInt64.max - 1 {  // neither unknown nor an error
            guard contentSize <= UInt64(Swift.max(limit, 0)) else {
                throw .decompressedSizeLimitExceeded(codec: .zstd, limit: limit)
            }
            expected = Int(contentSize)
        }
        guard let dctx = ThreadContexts.zstdDecompression() else {
            throw .decompressionFailed(codec: .zstd, reason: "cannot create a decompression context")
        }
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)
        var out = BoundedOutput(expected: expected, limit: limit)
        var input = ZSTD_inBuffer(src: src, size: count, pos: 0)
        var last = 0
        while true {
            if out.free == 0 {
                if input.pos == input.size && last == 0 { return try out.finish(.zstd) }
                guard out.grow() else { throw .decompressedSizeLimitExceeded(codec: .zstd, limit: limit) }
            }
            var output = ZSTD_outBuffer(dst: out.next, size: out.free, pos: 0)
            let r = ZSTD_decompressStream(dctx, &output, &input)
            if ZSTD_isError(r) != 0 {
                throw .decompressionFailed(codec: .zstd, reason: String(cString: ZSTD_getErrorName(r)))
            }
            out.raw.count += output.pos
            last = r
            if input.pos == input.size && output.pos < output.size {
                // All input used and the decoder had room left: it has nothing more to give.
                guard r == 0 else { throw .decompressionFailed(codec: .zstd, reason: "truncated zstd frame") }
                return try out.finish(.zstd)
            }
        }
    }

    static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]

    static func unsnappy(_ src: UnsafePointer<UInt8>, _ count: Int, limit: Int) throws(RecordDecodingError) -> RawBuffer {
        let input = UnsafeBufferPointer(start: src, count: count)
        var isXerial = count >= 16
        if isXerial {
            for i in 0..<8 where input[i] != xerialMagic[i] { isXerial = false }
        }
        if !isXerial {
            var out = RawBuffer(capacity: 0)
            try appendRawSnappy(input, into: &out, limit: limit)
            return out
        }
        // Chunks hold at most 32 KiB (snappy-java's default) but other writers may use more.
        var out = RawBuffer(capacity: Swift.min(Swift.max(count * 2, 64 * 1024), Swift.max(limit, 1)))
        var pos = 16
        while pos < count {
            guard count - pos >= 4 else { throw .decompressionFailed(codec: .snappy, reason: "truncated xerial chunk length") }
            let length = Int(Int32(bitPattern: loadBE32(input, pos)))
            if length == Int(Int32(bitPattern: 0x8253_4E41)) && count - pos >= 16
                && (0..<8).allSatisfy({ input[pos + $0] == xerialMagic[$0] })
            {
                pos += 16  // a concatenated xerial stream: skip its header
                continue
            }
            guard length >= 0, length <= count - pos - 4 else {
                throw .decompressionFailed(codec: .snappy, reason: "invalid xerial chunk length \(length)")
            }
            try appendRawSnappy(UnsafeBufferPointer(rebasing: input[(pos + 4)..<(pos + 4 + length)]), into: &out, limit: limit)
            pos += 4 + length
        }
        return out
    }

    /// Decodes one raw snappy block and appends it to `out`.
    static func appendRawSnappy(_ block: UnsafeBufferPointer<UInt8>, into out: inout RawBuffer, limit: Int) throws(RecordDecodingError) {
        guard let base = block.baseAddress, block.count > 0 else {
            throw .decompressionFailed(codec: .snappy, reason: "empty snappy block")
        }
        let compressed = UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self)
        var length = 0
        guard snappy_uncompressed_length(compressed, block.count, &length) == SNAPPY_OK else {
            throw .decompressionFailed(codec: .snappy, reason: "invalid snappy block header")
        }
        guard length <= limit - out.count else { throw .decompressedSizeLimitExceeded(codec: .snappy, limit: limit) }
        if length == 0 {
            // Only the length varint: still validate it.
            guard snappy_validate_compressed_buffer(compressed, block.count) == SNAPPY_OK else {
                throw .decompressionFailed(codec: .snappy, reason: "corrupt snappy block")
            }
            return
        }
        if out.free < length {
            out.reserve(Swift.max(out.count + length, Swift.min(out.capacity * 2, limit)))
        }
        var written = length
        let status = snappy_uncompress(
            compressed, block.count, UnsafeMutableRawPointer(out.base + out.count).assumingMemoryBound(to: CChar.self), &written)
        guard status == SNAPPY_OK, written == length else {
            throw .decompressionFailed(codec: .snappy, reason: "corrupt snappy block")
        }
        out.count += length
    }

    /// Recomputes the header checksum byte of an LZ4 frame in place (Kafka < 0.10 hashed the magic
    /// number too).
    static func fixLegacyLZ4HeaderChecksum(_ frame: UnsafeMutableBufferPointer<UInt8>) {
        guard frame.count >= 7, frame[0] == 0x04, frame[1] == 0x22, frame[2] == 0x4D, frame[3] == 0x18 else { return }
        let flags = frame[4]
        let descriptorEnd = 6 + (flags & 0x08 != 0 ? 8 : 0) + (flags & 0x01 != 0 ? 4 : 0)
        guard frame.count > descriptorEnd else { return }
        frame[descriptorEnd] = UInt8(truncatingIfNeeded: xxh32Small(Array(frame[4..<descriptorEnd])[...]) >> 8)
    }

    /// XXH32 with seed 0 of fewer than 16 bytes (enough for an LZ4 frame descriptor).
    static func xxh32Small(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        precondition(bytes.count < 16)
        let p1: UInt32 = 0x9E37_79B1, p2: UInt32 = 0x85EB_CA77, p3: UInt32 = 0xC2B2_AE3D
        let p4: UInt32 = 0x27D4_EB2F, p5: UInt32 = 0x1656_67B1
        func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }
        var h = p5 &+ UInt32(bytes.count)
        var i = bytes.startIndex
        while bytes.endIndex - i >= 4 {
            let v = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            h = rotl(h &+ v &* p3, 17) &* p4
            i += 4
        }
        while i < bytes.endIndex {
            h = rotl(h &+ UInt32(bytes[i]) &* p5, 11) &* p1
            i += 1
        }
        h ^= h >> 15
        h = h &* p2
        h ^= h >> 13
        h = h &* p3
        h ^= h >> 16
        return h
    }
}
