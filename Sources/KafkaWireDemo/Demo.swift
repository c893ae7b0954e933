// The main job, for now: a produce/consume round trip through KafkaWire against a broker.
//   swift run kafkawire-demo --bootstrap 127.0.0.1:19092 [--topic T] [--count N] [--compression lz4]
import Foundation
import KafkaWire
import Logging

struct Options {
    var bootstrap = ProcessInfo.processInfo.environment["KWIRE_BOOTSTRAP"] ?? "127.0.0.1:19092"
    var topic = "kafkawire-demo"
    var count = 1000
    var compression = CompressionCodec.lz4

    init(_ args: [String]) throws {
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw DemoError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--bootstrap", "-b": bootstrap = try value()
            case "--topic", "-t": topic = try value()
            case "--count", "-c":
                guard let n = Int(try value()), n > 0 else { throw DemoError("--count takes a positive number") }
                count = n
            case "--compression", "-z":
                let name = try value()
                guard let c = CompressionCodec.allCases.first(where: { "\($0)" == name }) else {
                    throw DemoError("unknown compression \(name)")
                }
                compression = c
            case "--help", "-h":
                print("usage: kafkawire-demo [--bootstrap HOST:PORT] [--topic T] [--count N] [--compression none|gzip|snappy|lz4|zstd]")
                exit(0)
            default: throw DemoError("unknown argument \(args[i])")
            }
            i += 1
        }
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

@main
struct Demo {
    static func main() async {
        do {
            try await run(try Options(Array(CommandLine.arguments.dropFirst())))
        } catch {
            FileHandle.standardError.write(Data("kafkawire-demo: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ o: Options) async throws {
        let client = ClientConfig(bootstrapServers: o.bootstrap, clientId: "kafkawire-demo")
        let admin = KafkaAdmin(config: client)
        try await admin.createTopics([.init(name: o.topic, partitions: 3)], ignoreExisting: true)
        let before = try await admin.offsets(topic: o.topic)
        await admin.close()

        var pc = ProducerConfig(client: client)
        pc.compression = o.compression
        let producer = KafkaProducer(config: pc)
        let start = Date()
        for i in 0..<o.count {
            try await producer.enqueue(ProducerRecord(
                topic: o.topic, key: Array("key-\(i % 10)".utf8), value: Array("hello from KafkaWire #\(i)".utf8),
                headers: [RecordHeader(key: "demo", value: Array("yes".utf8))]))
        }
        try await producer.flush()
        await producer.close()
        let produced = Date().timeIntervalSince(start)

        var cc = ConsumerConfig(client: client)
        cc.fetchMaxWaitMs = 100
        let consumer = KafkaConsumer(config: cc)
        for p in before {
            try await consumer.assign(topic: o.topic, partitions: [p.partition], from: .offset(p.latest))
        }
        var seen = 0
        var perPartition: [Int32: Int] = [:]
        for try await record in consumer.records {
            guard let value = record.value, String(decoding: value, as: UTF8.self).hasPrefix("hello from KafkaWire #") else {
                throw DemoError("unexpected record at \(record.partition)/\(record.offset)")
            }
            perPartition[record.partition, default: 0] += 1
            seen += 1
            if seen == o.count { break }
        }
        await consumer.close()
        let total = Date().timeIntervalSince(start)
        print("produced \(o.count) records (\(o.compression)) to \(o.topic) in \(String(format: "%.3f", produced)) s; consumed them back in \(String(format: "%.3f", total - produced)) s")
        for (p, n) in perPartition.sorted(by: { $0.key < $1.key }) { print("  partition \(p): \(n) records") }
        print("round trip OK")
    }
}
