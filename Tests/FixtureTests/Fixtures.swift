import Foundation
import KafkaProtocol
import KafkaRecords

// Loading of the captured fixtures (Fixtures/*/index.json, the frames, and the batch lines of each
// folder's README.md). See Fixtures/README.md for the layout.

/// The package root, from this file's path (Tests/FixtureTests/Fixtures.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let fixturesRoot = packageRoot.appendingPathComponent("Fixtures")

/// One entry of a folder's index.json.
struct FrameEntry: Decodable, Sendable {
    struct HandMade: Decodable, Sendable {
        var originalRecordsBytes: Int
        var truncatedRecordsBytes: Int
        var lastBatchBaseOffset: Int64
        var lastBatchBytesTotal: Int
        var lastBatchBytesKept: Int
        var completeBatches: Int

        enum CodingKeys: String, CodingKey {
            case originalRecordsBytes = "original_records_bytes"
            case truncatedRecordsBytes = "truncated_records_bytes"
            case lastBatchBaseOffset = "last_batch_base_offset"
            case lastBatchBytesTotal = "last_batch_bytes_total"
            case lastBatchBytesKept = "last_batch_bytes_kept"
            case completeBatches = "complete_batches"
        }
    }

    var seq: Int
    var file: String
    var direction: String
    var connection: Int
    var apiKey: Int16
    var apiName: String
    var apiVersion: Int16
    var correlationId: Int32
    var length: Int
    /// Hand-made frames: the captured frame they were cut from ("folder/file").
    var source: String?
    var handMade: HandMade?

    enum CodingKeys: String, CodingKey {
        case seq, file, direction, connection, length, source
        case apiKey = "api_key"
        case apiName = "api_name"
        case apiVersion = "api_version"
        case correlationId = "correlation_id"
        case handMade = "hand_made"
    }

    var isRequest: Bool { direction == "c2s" }
}

struct FixtureIndex: Decodable, Sendable {
    var frames: [FrameEntry]
    var trimmed: [String: Int]
}

/// A batch line of a README's frame list: "batch at byte 70: base offset 0, 4 records, gzip, 124
/// payload bytes -> 444 uncompressed", or "TRUNCATED batch at byte 827: base offset 16, ...".
struct ReportedBatch: Sendable, Equatable, CustomStringConvertible {
    var byteInFrame: Int
    var baseOffset: Int64
    var recordCount: Int
    var codec: CompressionCodec
    var payloadBytes: Int?
    var uncompressedBytes: Int?
    /// "lz4 frame", "zstd frame", "raw snappy block", "xerial-framed", or nil.
    var note: String?
    var truncated: Bool

    var description: String {
        "\(truncated ? "truncated " : "")batch at byte \(byteInFrame): base offset \(baseOffset), \(recordCount) records, \(codec)"
    }
}

/// One frame of one fixture folder, as a test argument.
struct Frame: Sendable, CustomStringConvertible {
    var folder: String
    var entry: FrameEntry
    /// The batches the README lists under this frame.
    var reportedBatches: [ReportedBatch]

    var description: String { "\(folder)/\(entry.file)" }
    var path: String { "\(folder)/\(entry.file)" }
    var url: URL { fixturesRoot.appendingPathComponent(folder).appendingPathComponent(entry.file) }

    func bytes() throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }
}

enum FixtureLoadError: Error, CustomStringConvertible {
    case bad(String)
    var description: String {
        switch self {
        case let .bad(s): s
        }
    }
}

enum Fixtures {
    /// Every fixture folder (those holding an index.json), sorted.
    static let folders: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixturesRoot.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: fixturesRoot.appendingPathComponent($0).appendingPathComponent("index.json").path)
        }.sorted()
    }()

    static func index(_ folder: String) throws -> FixtureIndex {
        let data = try Data(contentsOf: fixturesRoot.appendingPathComponent(folder).appendingPathComponent("index.json"))
        return try JSONDecoder().decode(FixtureIndex.self, from: data)
    }

    static func readme(_ folder: String) throws -> String {
        try String(contentsOf: fixturesRoot.appendingPathComponent(folder).appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// Every frame of every folder, in folder then index order; empty if the fixtures cannot be read
    /// (the "fixtures are present" test then fails).
    static let frames: [Frame] = (try? loadFrames()) ?? []

    static func loadFrames() throws -> [Frame] {
        var out: [Frame] = []
        for folder in folders {
            let batches = try reportedBatches(readme(folder))
            for entry in try index(folder).frames {
                out.append(Frame(folder: folder, entry: entry, reportedBatches: batches[entry.file] ?? []))
            }
        }
        return out
    }

    static func frame(_ path: String) -> Frame? { frames.first { $0.path == path } }

    /// The batch lines of a README, by frame file: the lines "  - batch at ..." and
    /// "  - TRUNCATED batch at ..." that follow a frame line "- `FILE` (N bytes)".
    static func reportedBatches(_ readme: String) throws -> [String: [ReportedBatch]] {
        var out: [String: [ReportedBatch]] = [:]
        var current: String?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("- `"), line.hasSuffix(" bytes)"), let close = line.dropFirst(3).firstIndex(of: "`") {
                current = String(line[line.index(line.startIndex, offsetBy: 3)..<close])
                continue
            }
            let trimmed = line.drop { $0 == " " }
            guard line.hasPrefix("  - "), trimmed.hasPrefix("- batch at byte ") || trimmed.hasPrefix("- TRUNCATED batch at byte ") else {
                if !line.hasPrefix("  ") { current = nil }
                continue
            }
            guard let file = current else { throw FixtureLoadError.bad("batch line outside a frame: \(line)") }
            out[file, default: []].append(try parseBatchLine(String(trimmed.dropFirst(2))))
        }
        return out
    }

    static func parseBatchLine(_ line: String) throws -> ReportedBatch {
        func int(after marker: String, in s: Substring) -> Int? {
            guard let r = s.range(of: marker) else { return nil }
            return Int(s[r.upperBound...].prefix { $0.isNumber })
        }
        func codec(_ name: Substring) throws -> CompressionCodec {
            guard let c = CompressionCodec.allCases.first(where: { $0.description == name }) else {
                throw FixtureLoadError.bad("unknown codec \(name) in \(line)")
            }
            return c
        }
        let s = Substring(line)
        guard let byte = int(after: "batch at byte ", in: s), let base = int(after: "base offset ", in: s) else {
            throw FixtureLoadError.bad("cannot parse \(line)")
        }
        if line.hasPrefix("TRUNCATED") {
            // "(none, header says 2 records)"
            guard let open = s.lastIndex(of: "("), let count = int(after: "header says ", in: s) else {
                throw FixtureLoadError.bad("cannot parse \(line)")
            }
            let name = s[s.index(after: open)...].prefix { $0 != "," }
            return ReportedBatch(
                byteInFrame: byte, baseOffset: Int64(base), recordCount: count, codec: try codec(name),
                payloadBytes: nil, uncompressedBytes: nil, note: nil, truncated: true)
        }
        // "batch at byte 70: base offset 0, 4 records, gzip, 124 payload bytes -> 444 uncompressed (lz4 frame)"
        let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count >= 4, let count = Int(parts[1].prefix { $0.isNumber }) else {
            throw FixtureLoadError.bad("cannot parse \(line)")
        }
        var note: String?
        if let open = s.lastIndex(of: "("), s.hasSuffix(")") {
            note = String(s[s.index(after: open)..<s.index(before: s.endIndex)])
        }
        return ReportedBatch(
            byteInFrame: byte, baseOffset: Int64(base), recordCount: count, codec: try codec(Substring(parts[2])),
            payloadBytes: Int(parts[3].prefix { $0.isNumber }), uncompressedBytes: int(after: "-> ", in: s),
            note: note, truncated: false)
    }
}

extension Array where Element == UInt8 {
    /// Where `needle` first occurs, or nil.
    func offset(of needle: [UInt8]) -> Int? {
        guard !needle.isEmpty, needle.count <= count else { return nil }
        outer: for i in 0...(count - needle.count) {
            for j in 0..<needle.count where self[i + j] != needle[j] { continue outer }
            return i
        }
        return nil
    }
}

func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }
