// kwire produce: one record per line of standard input (kcat -P), or each file as one record.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Dispatch
import KafkaWire
import Synchronization

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce one record per line of standard input, or each FILE as one record (kcat -P).",
        discussion: """
            Empty lines are skipped. With -K the key is the text before the first DELIM (a line without \
            DELIM has no key, or the -k key). Prints each record that failed on standard error and exits \
            with status 1 if any did. With --json, prints {"record", "topic", "partition", "offset"} (or \
            "error") for every record on standard output.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customShort("t"), help: "The topic.")
    var topic: String

    @Option(name: .customShort("p"), parsing: .unconditional, help: "Partition (-1: a random one per record); default: by key (murmur2), sticky without a key.")
    var partition: Int32?

    @Option(name: .customShort("k"), help: "A fixed key for every record (a -K key takes precedence).")
    var key: String?

    @Option(name: .customShort("K"), help: ArgumentHelp("Key delimiter: the key is the text before its first occurrence (\\t, \\xNN escapes).", valueName: "delim"))
    var keyDelimiter: String?

    @Option(name: .customShort("D"), help: ArgumentHelp("Record delimiter (\\n, \\t, \\xNN escapes).", valueName: "delim"))
    var delimiter: String = "\\n"

    @Option(name: .customShort("H"), help: ArgumentHelp("A header for every record: name=value, or name for a null value (repeatable).", valueName: "name=value"))
    var headers: [String] = []

    @Option(name: .customShort("z"), help: ArgumentHelp("Compression.", valueName: "none|gzip|lz4|snappy|zstd"))
    var compression: String?

    @Option(name: .customLong("acks"), help: ArgumentHelp("Acknowledgements to wait for.", valueName: "0|1|all"))
    var acks: String?

    @Flag(name: .customShort("l"), help: "Read records line by line from the one FILE given, as from standard input.")
    var lineMode = false

    @Option(name: .customShort("c"), help: "Stop after producing this many records.")
    var count: Int?

    @Flag(name: .customShort("Z"), help: "With -K, send an empty key or value as null.")
    var emptyAsNull = false

    @Argument(help: "Files to send, each as one record (with -l: one file, one record per line).")
    var files: [String] = []

    func validate() throws {
        if lineMode && files.count != 1 { throw ValidationError("-l needs exactly one FILE") }
        if let p = partition, p < -1 { throw ValidationError("-p expects a partition number or -1, got \(p)") }
        if let c = compression, CompressionCodec(setting: c) == nil {
            throw ValidationError("-z expects none, gzip, lz4, snappy or zstd, got \"\(c)\"")
        }
        if let a = acks, Acks(setting: a) == nil { throw ValidationError("--acks expects 0, 1 or all, got \"\(a)\"") }
        if let c = count, c < 1 { throw ValidationError("-c expects a positive count") }
        for h in headers where h.isEmpty || h.hasPrefix("=") { throw ValidationError("-H expects name=value or name, got \"\(h)\"") }
    }

    func run() async throws {
        global.setUp()
        var config = try global.producerConfig()
        if let c = compression.flatMap(CompressionCodec.init(setting:)) { config.compression = c }
        if let a = acks.flatMap(Acks.init(setting:)) { config.acks = a }
        let delimiter = try parseEscapes(self.delimiter)
        guard !delimiter.isEmpty else { throw CLIError.usage("-D must not be empty") }
        let keyDelimiter = try self.keyDelimiter.map { (d: String) throws(CLIError) -> [UInt8] in
            let bytes = try parseEscapes(d)
            guard !bytes.isEmpty else { throw .usage("-K must not be empty") }
            return bytes
        }
        let recordHeaders = headers.map { h in
            if let (name, value) = KafkaSettings.parseAssignment(h) { return RecordHeader(key: name, value: Array(value.utf8)) }
            return RecordHeader(key: h, value: nil)
        }

        // Files are opened first, so that a missing one fails before anything is sent; the topic
        // (and -p) are checked before any input is read.
        let inputs = files.isEmpty ? [Int32(0)] : try files.map { path throws(CLIError) in try openFile(path) }
        let topic = self.topic, partition = self.partition
        let partitionCount = try await withAdmin(config.client) { admin in
            try await checkPartition(admin, topic, partition.flatMap { $0 >= 0 ? $0 : nil })
            return try await admin.cluster.topic(topic).partitions.count
        }
        var wholeFiles: [[UInt8]] = []
        if !files.isEmpty && !lineMode {
            for fd in inputs {
                let reader = InputReader(fd: fd)
                var content: [UInt8] = []
                while let chunk = try await reader.next() { content += chunk }
                close(fd)
                if !content.isEmpty { wholeFiles.append(content) }  // as kcat: an empty file sends nothing
            }
        }

        let producer = KafkaProducer(config: config)
        let outcomes = Mutex<[Int: Result<RecordMetadata, KafkaError>]>([:])
        let previews = Mutex<[Int: String]>([:])
        var sent = 0
        let fixedKey = key.map { Array($0.utf8) }
        let limit = count ?? Int.max

        func send(_ key: [UInt8]?, _ value: [UInt8]?) async {
            let index = sent
            sent += 1
            var p = partition
            if p == -1 { p = Int32.random(in: 0..<Int32(max(partitionCount, 1))) }
            let record = ProducerRecord(topic: topic, partition: p, key: key ?? fixedKey, value: value, headers: recordHeaders)
            let shown = value.map { previewText($0) } ?? "null"
            await producer.send(record) { result in
                if case .failure = result { previews.withLock { $0[index] = shown } }
                outcomes.withLock { $0[index] = result }
            }
        }

        if !files.isEmpty && !lineMode {
            for content in wholeFiles where sent < limit { await send(nil, content) }
        } else {
            let reader = InputReader(fd: inputs[0])
            var splitter = Splitter(delimiter: delimiter)
            reading: while true {
                let chunk = try await reader.next()
                let lines = chunk.map { splitter.feed($0) } ?? splitter.finish()
                for line in lines where !line.isEmpty {
                    if sent >= limit { break reading }
                    var key: [UInt8]?
                    var value: [UInt8]? = line
                    if let kd = keyDelimiter, let at = firstIndex(of: kd, in: line) {
                        key = Array(line[..<at])
                        value = Array(line[(at + kd.count)...])
                        if emptyAsNull {
                            if key?.isEmpty == true { key = nil }
                            if value?.isEmpty == true { value = nil }
                        }
                    }
                    await send(key, value)
                }
                if chunk == nil { break }
            }
        }
        try? await producer.flush()
        await producer.close()

        let results = outcomes.withLock { $0 }
        var failed = 0
        for i in 0..<sent {
            let result = results[i] ?? .failure(.closed)
            switch result {
            case let .success(m):
                if global.json {
                    stdoutWriter.write(JSON.object([
                        ("record", .int(i + 1)), ("topic", .string(m.topic)), ("partition", .int(m.partition)), ("offset", .int(m.offset)),
                    ]).rendered + "\n")
                }
            case let .failure(e):
                failed += 1
                if global.json {
                    stdoutWriter.write(JSON.object([("record", .int(i + 1)), ("error", .string(Main.describe(e)))]).rendered + "\n")
                }
                let preview = previews.withLock { $0[i] } ?? ""
                printError("kwire: record \(i + 1) (\(preview)) failed: \(Main.describe(e))")
            }
        }
        stdoutWriter.flush()
        if failed > 0 {
            printError("kwire: \(failed) of \(sent) records failed")
            throw ExitCode(1)
        }
    }

    private func openFile(_ path: String) throws(CLIError) -> Int32 {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .failure("cannot open \(path): \(String(cString: strerror(errno)))") }
        return fd
    }
}

/// The first bytes of a value, for messages about it.
private func previewText(_ value: [UInt8]) -> String {
    let head = value.prefix(32)
    var text = String(decoding: head, as: UTF8.self)
    text = String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    return "\"" + text + (value.count > 32 ? "..." : "") + "\""
}

func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
    let first = needle[0]
    var i = 0
    while i <= haystack.count - needle.count {
        if haystack[i] == first {
            var j = 1
            while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
            if j == needle.count { return i }
        }
        i += 1
    }
    return nil
}

/// Cuts a byte stream into records at a delimiter.
struct Splitter {
    let delimiter: [UInt8]
    private var pending: [UInt8] = []
    private var scanFrom = 0

    init(delimiter: [UInt8]) { self.delimiter = delimiter }

    mutating func feed(_ chunk: [UInt8]) -> [[UInt8]] {
        pending += chunk
        var out: [[UInt8]] = []
        var start = 0
        var i = max(0, scanFrom - delimiter.count + 1)
        while i + delimiter.count <= pending.count {
            if pending[i] == delimiter[0] && (delimiter.count == 1 || Array(pending[i..<(i + delimiter.count)]) == delimiter) {
                out.append(Array(pending[start..<i]))
                i += delimiter.count
                start = i
            } else {
                i += 1
            }
        }
        pending.removeFirst(start)
        scanFrom = pending.count
        return out
    }

    /// What is left after the last delimiter, at the end of the input.
    mutating func finish() -> [[UInt8]] {
        defer { pending = [] }
        return pending.isEmpty ? [] : [pending]
    }
}

/// Reads a file descriptor in chunks on a Dispatch thread, so that a slow standard input never
/// holds one of the few threads Swift's concurrency runs on.
final class InputReader: Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }

    /// The next chunk, or nil at the end.
    func next() async throws(CLIError) -> [UInt8]? {
        let fd = self.fd
        let result: Result<[UInt8]?, CLIError> = await withCheckedContinuation { c in
            DispatchQueue.global().async {
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n > 0 { c.resume(returning: .success(Array(buffer[..<n]))); return }
                    if n == 0 { c.resume(returning: .success(nil)); return }
                    if errno == EINTR { continue }
                    c.resume(returning: .failure(.failure("cannot read input: \(String(cString: strerror(errno)))")))
                    return
                }
            }
        }
        return try result.get()
    }
}
