// KafkaWire's benchmarks. Each subcommand prints one JSON object per measurement; scripts/bench.py
// runs them next to librdkafka (kcat) against the same broker and prints the table.
//
//   kafkawire-bench codec              record batch encode/decode MB/s (100-byte records; none, lz4)
//   kafkawire-bench crc                CRC-32C GB/s (hardware and portable paths)
//   kafkawire-bench produce -b B -t T [-n 1000000] [-s 100] [-z lz4] [--acks 1] [--settings k=v,k=v]
//   kafkawire-bench consume -b B -t T [-n 1000000]
import CKafkaSupport
import Foundation
import KafkaWire

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

func report(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

/// Runs `body` repeatedly for about `seconds`, returning the median per-run seconds of 5 rounds.
func medianSeconds(rounds: Int = 5, _ body: () throws -> Void) rethrows -> Double {
    var times: [Double] = []
    for _ in 0..<rounds {
        let start = Date()
        try body()
        times.append(Date().timeIntervalSince(start))
    }
    return times.sorted()[rounds / 2]
}

/// 100-byte values like a JSON event; compressible as real payloads are.
func payload(_ i: Int, size: Int) -> [UInt8] {
    var s = Array("{\"event_id\":\"\(i)\",\"event_type\":\"audit.leave.create\",\"data\":{\"n\":\(i % 1000)}}".utf8)
    while s.count < size { s.append(UInt8(ascii: " ")) }
    return Array(s.prefix(size))
}

func codecBench() throws {
    let recordsPerBatch = 1000
    let batches = 50
    for codec in [CompressionCodec.none, .lz4] {
        var encoded: [[UInt8]] = []
        let values = (0..<recordsPerBatch).map { payload($0, size: 100) }
        let encodeTime = try medianSeconds {
            encoded.removeAll(keepingCapacity: true)
            for b in 0..<batches {
                var builder = RecordBatchBuilder(compression: codec, initialCapacity: recordsPerBatch * 120)
                for (i, v) in values.enumerated() { builder.append(key: nil, value: v, timestamp: 1_700_000_000_000 + Int64(b * recordsPerBatch + i)) }
                encoded.append(try builder.finish())
            }
        }
        let payloadBytes = Double(batches * recordsPerBatch * 100)
        let blob = encoded.flatMap { $0 }
        var decodedRecords = 0
        let decodeTime = try medianSeconds {
            let set = try RecordSet.decode(blob)
            decodedRecords = set.batches.reduce(0) { $0 + $1.records.count }
        }
        guard decodedRecords == batches * recordsPerBatch else { throw BenchError(description: "decoded \(decodedRecords)") }
        report(["bench": "record_batch", "codec": "\(codec)", "encode_MBps": payloadBytes / encodeTime / 1e6,
                "decode_MBps": payloadBytes / decodeTime / 1e6, "records_per_s_encode": Double(batches * recordsPerBatch) / encodeTime,
                "wire_bytes": blob.count])
    }
}

func crcBench() {
    let size = 64 << 20
    let buffer = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761) }
    var sink: UInt32 = 0
    let hw = buffer.withUnsafeBytes { raw in medianSeconds { sink ^= kw_crc32c(0, raw.baseAddress, raw.count) } }
    let sw = buffer.withUnsafeBytes { raw in medianSeconds(rounds: 3) { sink ^= kw_crc32c_portable(0, raw.baseAddress, raw.count) } }
    report(["bench": "crc32c", "hardware": kw_crc32c_hardware() != 0, "GBps": Double(size) / hw / 1e9,
            "portable_GBps": Double(size) / sw / 1e9, "sink": Int(sink)])
}

func flagValue(_ args: [String], _ name: String, _ fallback: String? = nil) throws -> String {
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    if let fallback { return fallback }
    throw BenchError(description: "\(name) is required")
}

func produceBench(_ args: [String]) async throws {
    let bootstrap = try flagValue(args, "-b")
    let topic = try flagValue(args, "-t")
    let count = Int(try flagValue(args, "-n", "1000000"))!
    let size = Int(try flagValue(args, "-s", "100"))!
    var config = ProducerConfig(bootstrapServers: bootstrap)
    config.compression = CompressionCodec.allCases.first { "\($0)" == (try? flagValue(args, "-z", "lz4")) } ?? .lz4
    config.acks = (try flagValue(args, "--acks", "1")) == "all" ? .all : .leader
    config.lingerMs = 5
    config.batchSize = 1 << 20
    // --settings k=v,k=v: any producer setting by its Kafka name (enable.idempotence=false...).
    var settings: [String: String] = [:]
    for part in (try flagValue(args, "--settings", "")).split(separator: ",") {
        guard let (k, v) = KafkaSettings.parseAssignment(String(part)) else { throw BenchError(description: "bad setting \(part)") }
        settings[k] = v
    }
    try config.apply(settings)
    let values = (0..<1000).map { payload($0, size: size) }
    let producer = KafkaProducer(config: config)
    // Warm up the metadata and the connection outside the measurement.
    _ = try await producer.send(ProducerRecord(topic: topic, value: values[0]))
    let cpu0 = cpuSeconds()
    let start = Date()
    for i in 0..<count {
        try await producer.enqueue(ProducerRecord(topic: topic, value: values[i % values.count]))
    }
    try await producer.flush()
    let wall = Date().timeIntervalSince(start)
    let cpu = cpuSeconds() - cpu0
    let idempotent = producer.producerIdentity != nil
    await producer.close()
    report(["bench": "produce", "client": "kafkawire", "idempotent": idempotent, "messages": count, "seconds": wall, "msgs_per_s": Double(count) / wall,
            "MBps": Double(count * size) / wall / 1e6, "cpu_s_per_million": cpu / Double(count) * 1e6, "peak_rss_MiB": peakRSSMiB()])
}

func consumeBench(_ args: [String]) async throws {
    let bootstrap = try flagValue(args, "-b")
    let topic = try flagValue(args, "-t")
    let count = Int(try flagValue(args, "-n", "1000000"))!
    var config = ConsumerConfig(bootstrapServers: bootstrap)
    config.fetchMaxWaitMs = 100
    let consumer = KafkaConsumer(config: config)
    let cpu0 = cpuSeconds()
    let start = Date()
    try await consumer.assign(topic: topic, from: .earliest)
    var n = 0
    var bytes = 0
    for try await r in consumer.records {
        n += 1
        bytes += r.value?.count ?? 0
        if n >= count { break }
    }
    let wall = Date().timeIntervalSince(start)
    let cpu = cpuSeconds() - cpu0
    await consumer.close()
    report(["bench": "consume", "client": "kafkawire", "messages": n, "seconds": wall, "msgs_per_s": Double(n) / wall,
            "MBps": Double(bytes) / wall / 1e6, "cpu_s_per_million": cpu / Double(n) * 1e6, "peak_rss_MiB": peakRSSMiB()])
}

@main
struct Bench {
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        do {
            switch args.first {
            case "codec": try codecBench()
            case "crc": crcBench()
            case "produce": try await produceBench(args)
            case "consume": try await consumeBench(args)
            case "create-topic":
                let admin = KafkaAdmin(config: ClientConfig(bootstrapServers: try flagValue(args, "-b")))
                try await admin.createTopics([.init(name: try flagValue(args, "-t"), partitions: Int32(try flagValue(args, "-P", "1"))!)])
                await admin.close()
            default: throw BenchError(description: "usage: kafkawire-bench codec|crc|produce|consume ...")
            }
        } catch {
            FileHandle.standardError.write(Data("kafkawire-bench: \(error)\n".utf8))
            exit(1)
        }
    }
}
