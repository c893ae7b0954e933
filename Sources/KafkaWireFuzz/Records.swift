import KafkaRecords

/// Decompression budgets a record-set input can pick (nil: the library's default).
let recordBudgets: [Int?] = [1 << 20, 0, 1, 100, 4096, 65536, nil]

func recordBudget(_ selector: UInt8) -> Int? {
    recordBudgets[Int(selector) % recordBudgets.count]
}

// MARK: - Record sets

func fuzzRecordSet(_ bytes: ArraySlice<UInt8>, fixCRCs: Bool) {
    var rest = bytes
    let budget = recordBudget(take(&rest))
    var blob = Array(rest)
    if fixCRCs { fixEntryCRCs(&blob) }
    checkRecordSet(blob, budget: budget)
}

/// `RecordSet.decode` must return or throw; what it returns must be consistent with its input, and
/// the records of every batch must survive being encoded again.
func checkRecordSet(_ blob: [UInt8], budget: Int?) {
    let set: RecordSet
    do {
        set = try RecordSet.decode(blob, maxDecompressedBytes: budget)
    } catch {
        checkDecoderStaysOnError(blob, budget: budget, error)
        return
    }
    guard set.bytesConsumed >= 0, set.bytesConsumed <= blob.count else {
        finding("RecordSet.bytesConsumed \(set.bytesConsumed) of \(blob.count) bytes")
    }
    guard set.truncatedTail == (set.bytesConsumed < blob.count) else {
        finding("RecordSet.truncatedTail \(set.truncatedTail) with \(set.bytesConsumed) of \(blob.count) bytes consumed")
    }
    let sizes = set.batches.reduce(0) { $0 + $1.sizeInBytes }
    guard sizes == set.bytesConsumed else {
        finding("RecordSet batches take \(sizes) bytes, bytesConsumed is \(set.bytesConsumed)")
    }
    for batch in set.batches {
        guard batch.magic >= 0, batch.magic <= 2 else { finding("batch with magic \(batch.magic)") }
        if batch.isControl, batch.magic == 2, !batch.records.isEmpty, batch.controlRecord == nil {
            finding("control batch with records but no control record")
        }
        checkRecordsRoundTrip(batch.records, codec: batch.compression)
    }
}

/// After an error, `next()` stays on the failing batch: asking again gives the same error.
func checkDecoderStaysOnError(_ blob: [UInt8], budget: Int?, _ error: RecordDecodingError) {
    var decoder = RecordBatchDecoder(blob, maxDecompressedBytes: budget)
    var first: RecordDecodingError?
    do {
        while try decoder.next() != nil {}
    } catch {
        first = error
    }
    guard let first else { finding("RecordSet.decode threw \(error), RecordBatchDecoder did not") }
    guard first == error else { finding("RecordSet.decode threw \(error), RecordBatchDecoder threw \(first)") }
    let position = decoder.position
    do {
        _ = try decoder.next()
        finding("RecordBatchDecoder.next() succeeded after throwing \(first)")
    } catch {
        guard decoder.position == position else {
            finding("RecordBatchDecoder moved from \(position) to \(decoder.position) after an error")
        }
    }
}

/// Records that decoded must encode again (with the batch's codec) and decode to the same keys,
/// values, headers and timestamps; offsets become 0, 1, 2...
func checkRecordsRoundTrip(_ records: [Record], codec: CompressionCodec) {
    guard !records.isEmpty else { return }
    let encoded: [UInt8]
    do {
        encoded = try RecordBatch.encode(records: records, compression: codec)
    } catch {
        finding("decoded records do not encode again with \(codec): \(error)")
    }
    let again: RecordSet
    do {
        again = try RecordSet.decode(encoded, maxDecompressedBytes: nil)
    } catch {
        finding("re-encoded \(codec) batch of \(records.count) records does not decode: \(error)\nencoded: \(hex(encoded))")
    }
    guard again.batches.count == 1, !again.truncatedTail, again.bytesConsumed == encoded.count else {
        finding("re-encoded batch decodes to \(again.batches.count) batches, tail \(again.truncatedTail)")
    }
    let back = again.batches[0].records
    guard back.count == records.count else {
        finding("re-encoded batch of \(records.count) records decodes to \(back.count)")
    }
    for (i, (a, b)) in zip(records, back).enumerated() {
        guard a.key == b.key, a.value == b.value, a.headers == b.headers, a.timestamp == b.timestamp, b.offset == Int64(i)
        else { finding("record \(i) changed by encode/decode with \(codec):\n\(a)\n\(b)") }
    }
}

// MARK: - CRC fix-up

/// Recomputes the CRC of every complete entry (v2 batch: CRC-32C from the attributes on; legacy
/// message: CRC-32 from the magic byte on), so mutated inputs reach the code behind the checksum.
func fixEntryCRCs(_ b: inout [UInt8]) {
    var p = 0
    while b.count - p >= 17 {
        let length = Int(Int32(bitPattern: loadBE32(b, p + 8)))
        guard length >= 14, length <= b.count - p - 12 else { return }
        let end = p + 12 + length
        switch b[p + 16] {
        case 2:
            let crc = b.withUnsafeBytes { crc32c(UnsafeRawBufferPointer(rebasing: $0[(p + 21)..<end])) }
            storeBE32(&b, p + 17, crc)
        case 0, 1:
            storeBE32(&b, p + 12, crc32IEEE(b[(p + 16)..<end]))
        default:
            return
        }
        p = end
    }
}

/// CRC-32 (IEEE, zlib's), for legacy messages.
func crc32IEEE(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
    }
    return ~crc
}

let crc32Table: [UInt32] = (0..<256).map { (i: UInt32) -> UInt32 in
    var c = i
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

func loadBE32(_ b: [UInt8], _ p: Int) -> UInt32 {
    UInt32(b[p]) << 24 | UInt32(b[p + 1]) << 16 | UInt32(b[p + 2]) << 8 | UInt32(b[p + 3])
}

func storeBE32(_ b: inout [UInt8], _ p: Int, _ v: UInt32) {
    b[p] = UInt8(truncatingIfNeeded: v >> 24)
    b[p + 1] = UInt8(truncatingIfNeeded: v >> 16)
    b[p + 2] = UInt8(truncatingIfNeeded: v >> 8)
    b[p + 3] = UInt8(truncatingIfNeeded: v)
}

/// Big-endian writer for the synthesized headers.
struct BEBytes {
    var bytes: [UInt8] = []
    mutating func i8(_ v: UInt8) { bytes.append(v) }
    mutating func i16(_ v: Int16) { be(UInt64(UInt16(bitPattern: v)), 2) }
    mutating func i32(_ v: Int32) { be(UInt64(UInt32(bitPattern: v)), 4) }
    mutating func i64(_ v: Int64) { be(UInt64(bitPattern: v), 8) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func be(_ v: UInt64, _ n: Int) {
        for i in (0..<n).reversed() { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

// MARK: - Synthesized v2 batches

/// Record counts a v2 batch can claim besides 0...63 (flags bit 1).
let oddRecordCounts: [Int32] = [-1, Int32.min, Int32.max, 1 << 16, 1 << 24]

/// flags: bit 0 payload as is (not compressed by us), bit 1 odd record count, bit 2 extreme
/// offsets/timestamps, bit 3 the batch twice plus a cut copy, bits 4-6 the budget.
func fuzzBatchV2(_ bytes: ArraySlice<UInt8>) {
    var rest = bytes
    let attributesByte = take(&rest)
    let countByte = take(&rest)
    let flags = take(&rest)
    let plain = Array(rest)
    let attributes = RecordBatchAttributes(rawValue: Int16(attributesByte & 0x7F))
    var payload = plain
    if flags & 1 == 0, let codec = attributes.compression, codec != .none {
        do {
            payload = try codec.compress(plain)
        } catch {
            finding("\(codec) cannot compress \(plain.count) bytes: \(error)")
        }
    }
    let count = flags & 2 != 0 ? oddRecordCounts[Int(countByte) % oddRecordCounts.count] : Int32(countByte & 0x3F)
    let extreme = flags & 4 != 0
    let batch = makeBatchV2(
        payload: payload, attributes: attributes, count: count,
        baseOffset: extreme ? Int64.max - 1 : 0,
        baseTimestamp: extreme ? Int64.min : 1_700_000_000_000,
        maxTimestamp: extreme ? Int64.max : 1_700_000_000_999)
    var blob = batch
    if flags & 8 != 0 {
        blob += batch
        blob += batch[0..<(batch.count / 2)]
    }
    checkRecordSet(blob, budget: recordBudget((flags >> 4) & 7))
}

func makeBatchV2(
    payload: [UInt8], attributes: RecordBatchAttributes, count: Int32,
    baseOffset: Int64, baseTimestamp: Int64, maxTimestamp: Int64
) -> [UInt8] {
    var w = BEBytes()
    w.i64(baseOffset)
    w.i32(Int32(truncatingIfNeeded: 49 + payload.count))
    w.i32(-1)  // partition leader epoch
    w.i8(2)  // magic
    w.i32(0)  // CRC, below
    w.i16(attributes.rawValue)
    w.i32(count > 0 ? count &- 1 : 0)  // last offset delta
    w.i64(baseTimestamp)
    w.i64(maxTimestamp)
    w.i64(-1)  // producer id
    w.i16(-1)  // producer epoch
    w.i32(-1)  // base sequence
    w.i32(count)
    w.raw(payload)
    var b = w.bytes
    let crc = b.withUnsafeBytes { crc32c(UnsafeRawBufferPointer(rebasing: $0[21...])) }
    storeBE32(&b, 17, crc)
    return b
}

// MARK: - Synthesized legacy wrappers

/// flags: bit 0 value as is (not compressed by us), bit 1 null value, bit 2 a plain copy of the
/// inner set after the wrapper, bits 5-7 the budget.
func fuzzLegacyWrapper(_ bytes: ArraySlice<UInt8>) {
    var rest = bytes
    let magic = take(&rest) & 1
    let attributes = take(&rest)
    let flags = take(&rest)
    var inner = Array(rest)
    fixEntryCRCs(&inner)
    var value: [UInt8]? = inner
    if flags & 1 == 0, let codec = CompressionCodec(rawValue: Int(attributes & 7)), codec != .none {
        do {
            value = try codec.compress(inner)
        } catch {
            finding("\(codec) cannot compress \(inner.count) bytes: \(error)")
        }
    }
    if flags & 2 != 0 { value = nil }
    var blob = makeLegacyMessage(
        offset: Int64(inner.count / 14), magic: magic, attributes: attributes, timestamp: 1_700_000_000_000,
        key: nil, value: value)
    if flags & 4 != 0 { blob += inner }
    checkRecordSet(blob, budget: recordBudget(flags >> 5))
}

/// One legacy message (offset, size, CRC-32, magic, attributes, [timestamp], key, value).
func makeLegacyMessage(offset: Int64, magic: UInt8, attributes: UInt8, timestamp: Int64, key: [UInt8]?, value: [UInt8]?) -> [UInt8] {
    var w = BEBytes()
    w.i64(offset)
    w.i32(0)  // size, below
    w.i32(0)  // CRC, below
    w.i8(magic)
    w.i8(attributes)
    if magic == 1 { w.i64(timestamp) }
    for field in [key, value] {
        if let field {
            w.i32(Int32(truncatingIfNeeded: field.count))
            w.raw(field)
        } else {
            w.i32(-1)
        }
    }
    var b = w.bytes
    storeBE32(&b, 8, UInt32(truncatingIfNeeded: b.count - 12))
    storeBE32(&b, 12, crc32IEEE(b[16...]))
    return b
}

// MARK: - Codecs

let codecCaps = [0, 1, 64, 1000, 4096, 65536, 1 << 20]

/// Each codec's decompress with a small output cap on arbitrary bytes; then compress → decompress
/// must give the input back, within a cap of exactly its size and not within one byte less.
func fuzzCodec(_ bytes: ArraySlice<UInt8>) {
    var rest = bytes
    let codec = CompressionCodec.allCases[Int(take(&rest)) % CompressionCodec.allCases.count]
    let cap = codecCaps[Int(take(&rest)) % codecCaps.count]
    let data = Array(rest)
    if let out = try? codec.decompress(data, maxOutputBytes: cap), codec != .none, out.count > cap {
        finding("\(codec) decompressed \(out.count) bytes with a cap of \(cap)")
    }
    let compressed: [UInt8]
    do {
        compressed = try codec.compress(data)
    } catch {
        finding("\(codec) cannot compress \(data.count) bytes: \(error)")
    }
    do {
        let back = try codec.decompress(compressed, maxOutputBytes: data.count)
        guard back == data else { finding("\(codec): decompress(compress(x)) != x for \(data.count) bytes") }
    } catch {
        finding("\(codec): decompress(compress(x)) failed with a cap of x's size \(data.count): \(error)")
    }
    if codec != .none, !data.isEmpty {
        do {
            let back = try codec.decompress(compressed, maxOutputBytes: data.count - 1)
            finding("\(codec): \(data.count) bytes decompressed within a cap of \(data.count - 1) (got \(back.count))")
        } catch .decompressedSizeLimitExceeded {
            // As it should.
        } catch {
            finding("\(codec): over the cap by one byte gave \(error), not decompressedSizeLimitExceeded")
        }
    }
}
