import Foundation
import Testing
@testable import KafkaRecords

/// Frame compatibility with the reference command-line tools: what they write we read, what we
/// write they read.
@Suite struct InteropTests {
    static func tool(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `tool args` with `input` on stdin and returns stdout.
    static func run(_ tool: String, _ args: [String], input: [UInt8]) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kafkarecords-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inURL = dir.appendingPathComponent("in"), outURL = dir.appendingPathComponent("out")
        try Data(input).write(to: inURL)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = args
        process.standardInput = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolFailure(description: "\(tool) \(args) exited with \(process.terminationStatus)")
        }
        return [UInt8](try Data(contentsOf: outURL))
    }

    struct ToolFailure: Error, CustomStringConvertible { var description: String }

    static let payloads: [[UInt8]] = {
        var rng = SplitMix(seed: 11)
        let text = Array(String(repeating: "kafka record batch interop ", count: 5000).utf8)
        return [[], [42], text, rng.bytes(300_000) + text]
    }()

    static func check(_ codec: CompressionCodec, tool: String, compressArgs: [[String]], decompressArgs: [String]) throws {
        for payload in payloads {
            // Ours -> tool.
            let ours = try codec.compress(payload)
            #expect(try run(tool, decompressArgs, input: ours) == payload, "\(tool) reading our \(codec), \(payload.count) bytes")
            // Tool -> ours, with each set of options.
            for args in compressArgs {
                let theirs = try run(tool, args, input: payload)
                #expect(try codec.decompress(theirs) == payload, "our \(codec) reading \(tool) \(args), \(payload.count) bytes")
            }
        }
    }

    @Test(.enabled(if: tool("gzip") != nil, "gzip is not installed"))
    func gzipTool() throws {
        try Self.check(.gzip, tool: Self.tool("gzip")!, compressArgs: [["-c"], ["-c", "-9", "-n"], ["-c", "-1"]], decompressArgs: ["-d", "-c"])
        // Concatenated members, as `cat a.gz b.gz` makes.
        let a = try Self.run(Self.tool("gzip")!, ["-c"], input: [1, 2, 3]), b = try Self.run(Self.tool("gzip")!, ["-c"], input: [4, 5])
        #expect(try CompressionCodec.gzip.decompress(a + b) == [1, 2, 3, 4, 5])
    }

    /// The lz4 tool writes frames with content checksums by default, and block-dependent frames with
    /// -BD (as some librdkafka versions do): all must decode. It must read our Java-style frames.
    @Test(.enabled(if: tool("lz4") != nil, "lz4 is not installed"))
    func lz4Tool() throws {
        try Self.check(
            .lz4, tool: Self.tool("lz4")!,
            compressArgs: [["-c"], ["-c", "-BD"], ["-c", "-B4", "--no-frame-crc"], ["-c", "-BX", "--content-size"], ["-c", "-9"]],
            decompressArgs: ["-d", "-c"])
    }

    /// zstd frames without a content size (streamed from stdin) and with a checksum must decode.
    @Test(.enabled(if: tool("zstd") != nil, "zstd is not installed"))
    func zstdTool() throws {
        try Self.check(
            .zstd, tool: Self.tool("zstd")!, compressArgs: [["-c", "-q"], ["-c", "-q", "-19", "--no-check"], ["-c", "-q", "--long=27"]],
            decompressArgs: ["-d", "-c", "-q"])
    }

    /// No snappy command-line tool is packaged; check our xerial framing byte for byte instead
    /// (snappy-java's SnappyOutputStream layout) and that raw snappy blocks (librdkafka) decode.
    @Test func snappyXerialLayout() throws {
        let payload = Array(String(repeating: "snappy ", count: 10_000).utf8)  // 70,000 bytes: 3 chunks
        let framed = try CompressionCodec.snappy.compress(payload)
        #expect(Array(framed[..<16]) == [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
        var pos = 16, chunks: [[UInt8]] = []
        while pos < framed.count {
            let n = Int(UInt32(framed[pos]) << 24 | UInt32(framed[pos + 1]) << 16 | UInt32(framed[pos + 2]) << 8 | UInt32(framed[pos + 3]))
            chunks.append(Array(framed[(pos + 4)..<(pos + 4 + n)]))
            pos += 4 + n
        }
        #expect(pos == framed.count && chunks.count == 3)
        // Each chunk is a raw snappy block that decodes alone (to 32 KiB, 32 KiB, the rest).
        let sizes = try chunks.map { try CompressionCodec.snappy.decompress($0).count }
        #expect(sizes == [32768, 32768, 70_000 - 65536])
        let raw = chunks.flatMap { try! CompressionCodec.snappy.decompress($0) }
        #expect(raw == payload)
        // Two concatenated xerial streams.
        #expect(try CompressionCodec.snappy.decompress(framed + (try CompressionCodec.snappy.compress([1, 2]))) == payload + [1, 2])
    }

    /// A batch whose payload was compressed by the reference tool decodes as a record batch.
    @Test(.enabled(if: tool("zstd") != nil && tool("lz4") != nil, "zstd or lz4 is not installed"))
    func batchWithToolCompressedPayload() throws {
        let records = sampleRecords(count: 30, valueSize: 50)
        for (codec, tool, args) in [(CompressionCodec.zstd, "zstd", ["-c", "-q"]), (.lz4, "lz4", ["-c", "-BD"]), (.gzip, "gzip", ["-c"])] {
            guard let path = Self.tool(tool) else { continue }
            let plain = try RecordBatch.encode(records: records)
            let theirs = try Self.run(path, args, input: Array(plain[61...]))
            var batch = Array(try RecordBatch.encode(records: records, compression: codec)[..<61]) + theirs
            putInt32(Int32(batch.count - 12), into: &batch, at: 8)
            fixCRC(&batch)
            #expect(try RecordSet.decode(batch).batches[0].records == withOffsets(records, from: 0))
        }
    }
}
