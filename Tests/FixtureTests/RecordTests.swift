import Foundation
import KafkaProtocol
import KafkaRecords
import Testing

// The records fields of every Produce request and Fetch response of the fixtures.

/// A records field found in a frame.
struct RecordsField {
    var partition: Int32
    var bytes: [UInt8]
}

/// The records fields of a frame (Produce requests and Fetch responses), in order; nil for frames
/// that have none.
func recordsFields(_ frame: Frame) throws -> [RecordsField]? {
    let e = frame.entry
    switch (ApiKey(rawValue: e.apiKey), e.isRequest) {
    case (.produce, true):
        return try body(of: frame, request: ProduceRequest.self).topicData.flatMap { topic in
            topic.partitionData.map { RecordsField(partition: $0.index, bytes: $0.records ?? []) }
        }
    case (.fetch, false):
        return try body(of: frame, responseTo: FetchRequest.self).responses.flatMap { topic in
            topic.partitions.map { RecordsField(partition: $0.partitionIndex, bytes: $0.records ?? []) }
        }
    default:
        return nil
    }
}

/// A batch decoded from a records field, with its bytes.
struct DecodedBatch {
    var batch: RecordBatch
    var bytes: [UInt8]
    /// Start of the batch in the frame.
    var byteInFrame: Int
}

/// Decodes a records field with `RecordBatchDecoder`, keeping each batch's bytes.
func decodeBatches(_ field: RecordsField, frameBytes: [UInt8]) throws -> (batches: [DecodedBatch], set: RecordSet) {
    let set = try RecordSet.decode(field.bytes)
    var decoder = RecordBatchDecoder(field.bytes)
    var out: [DecodedBatch] = []
    let fieldStart = field.bytes.isEmpty ? 0 : (frameBytes.offset(of: field.bytes) ?? -1)
    while true {
        let start = decoder.position
        guard let batch = try decoder.next() else { break }
        out.append(DecodedBatch(batch: batch, bytes: Array(field.bytes[start..<decoder.position]), byteInFrame: fieldStart + start))
    }
    #expect(decoder.truncatedTail == set.truncatedTail)
    #expect(decoder.position == set.bytesConsumed)
    #expect(out.map(\.batch) == set.batches, "RecordBatchDecoder and RecordSet.decode disagree")
    return (out, set)
}

/// What the peers were told to write (tools/capture_fixtures.py): the records of each fixture's
/// topic, by offset.
enum ExpectedRecords {
    /// capture_fixtures.py's VALUE.
    static let value = "KafkaWire fixture payload, compressible: " + String(repeating: "abcdefgh", count: 6)

    struct Expected: Equatable, CustomStringConvertible {
        var codec: CompressionCodec
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [RecordHeader]
        var description: String {
            "\(codec) key \(String(decoding: key ?? [], as: UTF8.self)) value \(String(decoding: value ?? [], as: UTF8.self)) headers \(headers.map { "\($0.key)=\(String(decoding: $0.value ?? [], as: UTF8.self))" })"
        }
    }

    /// `printf 'key-N:TAG #N <payload>\n' xN | kcat -P -K: -z CODEC [-H ...]`: one record per line,
    /// split at the first ':' into key and value (the newline is the message delimiter).
    static func kcatLines(_ n: Int, tag: String, codec: CompressionCodec, headers: [RecordHeader] = []) -> [Expected] {
        (0..<n).map { i in Expected(codec: codec, key: utf8("key-\(i)"), value: utf8("\(tag) #\(i) \(value)"), headers: headers) }
    }

    /// aiokafka_produce: key "key-i", value "CODEC #i VALUE", header h=i.
    static func aiokafka(_ codec: CompressionCodec) -> [Expected] {
        (0..<6).map { i in
            Expected(codec: codec, key: utf8("key-\(i)"), value: utf8("\(codec) #\(i) \(value)"), headers: [RecordHeader(key: "h", value: utf8("\(i)"))])
        }
    }

    /// kw-fetch: five kcat -P runs (produce_several).
    static let several: [Expected] = [(CompressionCodec.gzip, 4), (.lz4, 4), (.zstd, 4), (.snappy, 4), (.none, 2)]
        .flatMap { kcatLines($0.1, tag: "\($0.0)", codec: $0.0) }

    /// The topic's records by offset (produce requests: offsets within the batch, base offset 0).
    static func log(for folder: String) -> [Expected]? {
        let codecs = CompressionCodec.allCases
        if folder.hasPrefix("kcat-produce-"), let codec = codecs.first(where: { folder == "kcat-produce-\($0)" }) {
            return kcatLines(6, tag: "\(codec)", codec: codec)
        }
        if folder == "kcat-produce-lz4-headers" {
            return kcatLines(6, tag: "lz4+headers", codec: .lz4, headers: [RecordHeader(key: "a", value: utf8("1")), RecordHeader(key: "b", value: utf8("2"))])
        }
        if let codec = codecs.first(where: { folder == "aiokafka-produce-\($0)" }) { return aiokafka(codec) }
        switch folder {
        case "kcat-consume-fetch", "aiokafka-consume-fetch", "fetch-truncated": return several
        case "kcat-group-join-sync", "aiokafka-group-join-sync": return kcatLines(4, tag: "group", codec: .lz4)
        default: return nil
        }
    }

    /// Folders where every record of `log` must appear (fetch-truncated holds only part of the log).
    static func mustCoverLog(_ folder: String) -> Bool { folder != "fetch-truncated" }
}

/// "snappy (raw)" vs "snappy (xerial)" etc., for the codec tally.
func codecLabel(_ b: DecodedBatch) -> String {
    guard b.batch.compression == .snappy else { return "\(b.batch.compression)" }
    let xerial: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    return Array(b.bytes[61..<min(b.bytes.count, 69)]) == xerial ? "snappy (xerial-framed)" : "snappy (raw block)"
}

/// The peer that compressed a batch: the producer of the fixture, or kcat for the fetch fixtures
/// (every fetched record was written by kcat -P).
func producer(_ frame: Frame) -> String { frame.folder.hasPrefix("aiokafka-produce-") ? "aiokafka" : "kcat" }

/// Compressed batches our encoder reproduces byte for byte, by producer and codec label. This holds
/// with the codec libraries of the project's Linux image (zlib, liblz4, libzstd, libsnappy): the
/// same algorithms and settings as the peer. The others differ for known reasons:
/// - aiokafka gzip: Python's gzip module (level 9, mtime and XFL in the header) vs our zlib level 6;
/// - aiokafka lz4: cramjam sets the block checksum flag (FLG 0x70, 4 more bytes), we (like
///   librdkafka, FLG 0x60) do not;
/// - kcat zstd: librdkafka's frame has no content size, ours does (4 bytes);
/// - kcat snappy: librdkafka sends a raw snappy block, we send Kafka's xerial framing.
/// If a library update changes its output, move the entry out with the reason.
let reproducibleCompressed: Set<String> = [
    "kcat gzip", "kcat lz4", "aiokafka zstd", "aiokafka snappy (xerial-framed)",
]

/// The frames holding records fields.
let recordFrames: [Frame] = Fixtures.frames.filter {
    let api = ApiKey(rawValue: $0.entry.apiKey)
    return (api == .produce && $0.entry.isRequest) || (api == .fetch && !$0.entry.isRequest)
}

@Suite("Captured record batches")
struct RecordTests {
    /// Every batch of every records field (RecordSet.decode verifies each batch's CRC-32C): the
    /// position, count, codec and sizes the README reports, the records the peer was told to write,
    /// and re-encoding.
    @Test("Records fields decode to the batches and records the fixtures report", arguments: recordFrames)
    func recordsField(_ frame: Frame) throws {
        let frameBytes = try frame.bytes()
        let fields = try #require(try recordsFields(frame))
        #expect(!fields.isEmpty)
        let log = try #require(ExpectedRecords.log(for: frame.folder), "no expected records for \(frame.folder)")
        var decoded: [DecodedBatch] = []
        for field in fields {
            let (batches, set) = try decodeBatches(field, frameBytes: frameBytes)
            if frame.entry.handMade == nil {
                #expect(!set.truncatedTail && set.bytesConsumed == field.bytes.count, "a captured records field is incomplete")
            }
            // The topics have several partitions (Tansu creates 4 for kw-group); the peers wrote to 0.
            if !field.bytes.isEmpty { #expect(field.partition == 0) }
            decoded += batches
        }
        // The batches the README lists (fetch-truncated's cut batch is checked in TruncatedFetchTests).
        let reported = frame.reportedBatches.filter { !$0.truncated }
        #expect(decoded.count == reported.count, "\(decoded.count) batches decoded, README reports \(reported)")
        for (d, r) in zip(decoded, reported) {
            let b = d.batch
            #expect(b.magic == 2)
            #expect(d.byteInFrame == r.byteInFrame, "\(r)")
            #expect(b.baseOffset == r.baseOffset, "\(r)")
            #expect(b.records.count == r.recordCount, "\(r)")
            #expect(b.compression == r.codec, "\(r)")
            #expect(r.payloadBytes == nil || d.bytes.count - RecordBatchBuilder.headerSize == r.payloadBytes, "\(r)")
            if r.codec == .snappy {
                #expect(codecLabel(d) == (r.note == "xerial-framed" ? "snappy (xerial-framed)" : "snappy (raw block)"), "\(r)")
            }
            if let plain = r.uncompressedBytes {
                let payload = Array(d.bytes[RecordBatchBuilder.headerSize...])
                #expect(try b.compression.decompress(payload).count == plain, "\(r)")
            }
        }
        for d in decoded {
            try checkContents(d, log: log, frame: frame)
            try checkReencoding(d, frame: frame)
        }
    }

    func checkContents(_ d: DecodedBatch, log: [ExpectedRecords.Expected], frame: Frame) throws {
        let b = d.batch
        #expect(!b.isControl && !b.isTransactional && b.timestampType == .createTime)
        #expect(Int(b.lastOffsetDelta) == b.records.count - 1)
        for (i, record) in b.records.enumerated() {
            #expect(record.offset == b.baseOffset + Int64(i))
            #expect(record.timestamp >= b.baseTimestamp && record.timestamp <= b.maxTimestamp)
            // A plausible capture time (after November 2023), not a delta or a default.
            #expect(record.timestamp > 1_700_000_000_000)
            guard record.offset >= 0, record.offset < log.count else {
                Issue.record("\(frame): offset \(record.offset) is beyond the \(log.count) records written")
                continue
            }
            let got = ExpectedRecords.Expected(codec: b.compression, key: record.key, value: record.value, headers: record.headers)
            #expect(got == log[Int(record.offset)], "\(frame): record at offset \(record.offset)")
        }
    }

    /// Re-encoding with RecordBatchBuilder (and RecordBatch.encode, which must agree with it).
    ///
    /// Uncompressed batches must come back byte for byte. Compressed bytes differ between compressor
    /// implementations and settings (librdkafka's bundled lz4/zstd/zlib, cramjam's Rust codecs,
    /// librdkafka's raw snappy block against our xerial framing), so for those the uncompressed
    /// records section must be byte-identical to the decompressed payload, the header fields must
    /// match, and our compressed batch must decode back to the same records.
    func checkReencoding(_ d: DecodedBatch, frame: Frame) throws {
        let b = d.batch
        func encode(_ codec: CompressionCodec) throws -> [UInt8] {
            var builder = RecordBatchBuilder(compression: codec)
            for r in b.records { builder.append(r) }
            let built = try builder.finish(
                baseOffset: b.baseOffset, partitionLeaderEpoch: b.partitionLeaderEpoch, producerId: b.producerId,
                producerEpoch: b.producerEpoch, baseSequence: b.baseSequence, isTransactional: b.isTransactional,
                isControl: b.isControl)
            let encoded = try RecordBatch.encode(
                records: b.records, compression: codec, producerId: b.producerId, producerEpoch: b.producerEpoch,
                baseSequence: b.baseSequence, isTransactional: b.isTransactional, baseOffset: b.baseOffset,
                partitionLeaderEpoch: b.partitionLeaderEpoch, isControl: b.isControl)
            // Our compressors are deterministic: both encoders give the same bytes.
            expectSame(encoded, built, "RecordBatch.encode and RecordBatchBuilder disagree (\(codec))")
            return built
        }
        let plain = try encode(.none)
        let h = RecordBatchBuilder.headerSize
        if b.compression == .none {
            expectSame(plain, d.bytes, "\(frame) uncompressed batch at offset \(b.baseOffset)")
            return
        }
        // Records section: canonical.
        let payload = Array(d.bytes[h...])
        let decompressed = try b.compression.decompress(payload)
        expectSame(Array(plain[h...]), decompressed, "\(frame) \(b.compression) batch at offset \(b.baseOffset) records")
        // Header: the same except batch length and CRC (which cover the compressed bytes) and the codec bits.
        #expect(plain[0..<8] == d.bytes[0..<8] && plain[12..<17] == d.bytes[12..<17] && plain[23..<h] == d.bytes[23..<h],
                "\(frame) header: \(firstDifference(Array(d.bytes[..<h]), Array(plain[..<h])))")
        #expect(Int16(d.bytes[21]) << 8 | Int16(d.bytes[22]) == b.attributes.rawValue)
        #expect(b.attributes.rawValue & ~0x07 == 0)

        // Same codec, our compressor: decodes back to the same batch, and is byte-identical where
        // our compressor matches the peer's.
        let ours = try encode(b.compression)
        if reproducibleCompressed.contains("\(producer(frame)) \(codecLabel(d))") {
            expectSame(ours, d.bytes, "\(frame) \(codecLabel(d)) batch at offset \(b.baseOffset) re-encoding")
        }
        let again = try RecordSet.decode(ours)
        #expect(again.batches.count == 1 && !again.truncatedTail && again.bytesConsumed == ours.count)
        if let o = again.batches.first {
            #expect(o.records == b.records)
            #expect(o.compression == b.compression)
            #expect(o.baseOffset == b.baseOffset && o.lastOffsetDelta == b.lastOffsetDelta)
            #expect(o.baseTimestamp == b.baseTimestamp && o.maxTimestamp == b.maxTimestamp)
            #expect(o.producerId == b.producerId && o.producerEpoch == b.producerEpoch && o.baseSequence == b.baseSequence)
            #expect(o.partitionLeaderEpoch == b.partitionLeaderEpoch)
        }
    }

    /// Every record the peers were asked to write shows up, and every codec (both snappy framings)
    /// is exercised.
    @Test("The record batches cover every codec and every record written")
    func coverage() throws {
        var codecs: [String: Int] = [:]
        var seen: [String: Set<Int64>] = [:]
        var reproducible: Set<String> = []
        var decodedCount = 0
        for frame in recordFrames {
            let frameBytes = try frame.bytes()
            for field in try recordsFields(frame) ?? [] {
                for d in try decodeBatches(field, frameBytes: frameBytes).batches {
                    decodedCount += 1
                    codecs[codecLabel(d), default: 0] += 1
                    seen[frame.folder, default: []].formUnion(d.batch.records.map(\.offset))
                    reproducible.insert("\(producer(frame)) \(codecLabel(d))")
                }
            }
        }
        // Every complete batch the READMEs list was decoded, and nothing else.
        let reported = Fixtures.frames.flatMap(\.reportedBatches).filter { !$0.truncated }
        #expect(decodedCount == reported.count && decodedCount >= 33, "\(decodedCount) batches decoded, \(reported.count) reported")
        #expect(reproducibleCompressed.isSubset(of: reproducible), "reproducibleCompressed names batches the fixtures do not have")
        for label in ["none", "gzip", "snappy (raw block)", "snappy (xerial-framed)", "lz4", "zstd"] {
            #expect(codecs[label, default: 0] > 0, "no \(label) batch in the fixtures")
        }
        for folder in Fixtures.folders {
            guard let log = ExpectedRecords.log(for: folder), ExpectedRecords.mustCoverLog(folder) else { continue }
            #expect(seen[folder] == Set(0..<Int64(log.count)), "\(folder): offsets seen \(seen[folder]?.sorted() ?? [])")
        }
        // Every folder that produces or fetches records has an expectation.
        for frame in recordFrames {
            #expect(ExpectedRecords.log(for: frame.folder) != nil, "\(frame.folder)")
        }
    }
}

@Suite("Truncated Fetch responses")
struct TruncatedFetchTests {
    static let frames = Fixtures.frames.filter { $0.entry.handMade != nil }

    /// Decoding stops quietly at the cut batch and returns the complete batches before it, which are
    /// those of the response it was cut from.
    @Test("The cut batch ends decoding quietly", arguments: frames)
    func truncated(_ frame: Frame) throws {
        let cut = try #require(frame.entry.handMade)
        let fields = try #require(try recordsFields(frame))
        try #require(fields.count == 1)
        let field = fields[0]
        #expect(field.bytes.count == cut.truncatedRecordsBytes)

        let set = try RecordSet.decode(field.bytes)
        #expect(set.truncatedTail)
        #expect(set.batches.count == cut.completeBatches)
        #expect(set.bytesConsumed == cut.truncatedRecordsBytes - cut.lastBatchBytesKept)
        #expect(set.batches.last.map { $0.nextOffset } == cut.lastBatchBaseOffset)

        // Batch by batch: nil at the cut, and again nil after it, without throwing.
        var decoder = RecordBatchDecoder(field.bytes)
        var n = 0
        while try decoder.next() != nil { n += 1 }
        #expect(n == cut.completeBatches)
        #expect(decoder.truncatedTail)
        #expect(try decoder.next() == nil)
        #expect(decoder.position == set.bytesConsumed)

        // The README's cut batch.
        let reportedCut = frame.reportedBatches.filter(\.truncated)
        if cut.lastBatchBytesKept >= 17 {
            #expect(reportedCut.count == 1 && reportedCut.first?.baseOffset == cut.lastBatchBaseOffset)
        }

        // The complete batches are those of the captured response.
        let source = try #require(frame.entry.source.flatMap(Fixtures.frame), "source frame")
        let original = try #require(try recordsFields(source)?.first)
        #expect(original.bytes.count == cut.originalRecordsBytes)
        let full = try RecordSet.decode(original.bytes)
        #expect(!full.truncatedTail && full.bytesConsumed == original.bytes.count)
        #expect(Array(full.batches.prefix(cut.completeBatches)) == set.batches)
        // The cut batch was the last of the captured field.
        try #require(full.batches.count == cut.completeBatches + 1)
        #expect(full.batches[cut.completeBatches].baseOffset == cut.lastBatchBaseOffset)
        #expect(full.batches[cut.completeBatches].sizeInBytes == cut.lastBatchBytesTotal)
        // The cut bytes are a prefix of the original field.
        expectSame(field.bytes, Array(original.bytes.prefix(field.bytes.count)), "cut field vs the captured one")

        // A tighter decompression budget still decodes the complete batches.
        let budgeted = try RecordSet.decode(field.bytes, maxDecompressedBytes: 4096)
        #expect(budgeted == set)
    }

    @Test("fetch-truncated holds both cut positions for both Fetch versions")
    func allCasesPresent() {
        let cases = Set(Self.frames.map { "v\($0.entry.apiVersion) \($0.entry.handMade!.lastBatchBytesKept < 61 ? "header" : "body")" })
        #expect(cases == ["v16 header", "v16 body", "v11 header", "v11 body"])
    }
}
