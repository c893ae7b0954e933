import Foundation
import Testing
@testable import KafkaWire

/// The broker the broker-facing suites run against: `KWIRE_BOOTSTRAP` (scripts/test.sh starts a
/// local Tansu and sets it; point it at Apache Kafka to run the same suites there).
enum TestBroker {
    static let bootstrap = ProcessInfo.processInfo.environment["KWIRE_BOOTSTRAP"]
    static var available: Bool { bootstrap != nil }

    static func client(_ id: String = "kafkawire-tests") -> ClientConfig {
        var c = ClientConfig(bootstrapServers: bootstrap ?? "127.0.0.1:1", clientId: id)
        c.requestTimeoutMs = 15_000
        return c
    }

    /// Tansu names its cluster "tansu_cluster" by default; some of its answers differ from Kafka's.
    static func isTansu() async throws -> Bool {
        let admin = KafkaAdmin(config: client())
        defer { Task { await admin.close() } }
        return try await admin.metadata().clusterId == "tansu_cluster"
    }

    static func uniqueTopic(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Creates a fresh topic and returns its name.
    static func createTopic(_ prefix: String, partitions: Int32 = 1) async throws -> String {
        let name = uniqueTopic(prefix)
        let admin = KafkaAdmin(config: client())
        try await admin.createTopics([.init(name: name, partitions: partitions)])
        await admin.close()
        return name
    }

    static func consume(_ topic: String, count: Int, partitions: [Int32]? = nil, from start: StartOffset = .earliest, timeoutSeconds: Double = 20) async throws -> [ConsumerRecord] {
        var config = ConsumerConfig(client: client())
        config.fetchMaxWaitMs = 100
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, partitions: partitions, from: start)
        let timer = Task {
            try await Task.sleep(nanoseconds: UInt64(timeoutSeconds * 1e9))
            await consumer.close()
        }
        var out: [ConsumerRecord] = []
        if count > 0 {
            for try await r in consumer.records {
                out.append(r)
                if out.count == count { break }
            }
        }
        timer.cancel()
        await consumer.close()
        return out
    }
}

@Suite(.enabled(if: TestBroker.available, "set KWIRE_BOOTSTRAP (scripts/test.sh starts a local broker)"),
       .timeLimit(.minutes(2)))
struct BrokerRoundTripTests {
    @Test(arguments: CompressionCodec.allCases)
    func produceAndConsumeEveryCodec(codec: CompressionCodec) async throws {
        let topic = try await TestBroker.createTopic("rt-\(codec)", partitions: 3)
        var config = ProducerConfig(client: TestBroker.client())
        config.compression = codec
        let producer = KafkaProducer(config: config)
        let sent = (0..<300).map { i in
            ProducerRecord(
                topic: topic, key: i % 7 == 0 ? nil : Array("key-\(i % 13)".utf8),
                value: i % 11 == 0 ? nil : Array(String(repeating: "value \(i) ", count: 1 + i % 5).utf8),
                headers: i % 3 == 0 ? [] : [RecordHeader(key: "h", value: Array("\(i)".utf8)), RecordHeader(key: "null", value: nil)],
                timestamp: 1_700_000_000_000 + Int64(i))
        }
        let results = await producer.send(sent)
        await producer.close()
        let metas = try results.map { try $0.get() }
        let got = try await TestBroker.consume(topic, count: sent.count)
        #expect(got.count == sent.count)
        let byPosition = Dictionary(uniqueKeysWithValues: got.map { ("\($0.partition)/\($0.offset)", $0) })
        for (record, meta) in zip(sent, metas) {
            let r = try #require(byPosition["\(meta.partition)/\(meta.offset)"])
            #expect(r.key == record.key)
            #expect(r.value == record.value)
            #expect(r.headers == record.headers)
            #expect(r.timestamp == record.timestamp)
            if let key = record.key { #expect(meta.partition == partitionForKey(key, partitionCount: 3)) }
        }
    }

    @Test(arguments: [Acks.none, .leader, .all])
    func everyAcksSetting(acks: Acks) async throws {
        let topic = try await TestBroker.createTopic("acks")
        var config = ProducerConfig(client: TestBroker.client())
        config.acks = acks
        let producer = KafkaProducer(config: config)
        let results = await producer.send((0..<50).map { ProducerRecord(topic: topic, value: Array("v\($0)".utf8)) })
        await producer.close()
        for r in results {
            let m = try r.get()
            if acks == .none { #expect(m.offset == -1) } else { #expect(m.offset >= 0) }
        }
        let got = try await TestBroker.consume(topic, count: 50)
        #expect(got.map { String(decoding: $0.value!, as: UTF8.self) } == (0..<50).map { "v\($0)" })
    }

    @Test func emptyAndOneMegabyteValues() async throws {
        let topic = try await TestBroker.createTopic("sizes")
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let producer = KafkaProducer(config: ProducerConfig(client: TestBroker.client()))
        let a = try await producer.send(ProducerRecord(topic: topic, value: []))
        let b = try await producer.send(ProducerRecord(topic: topic, value: big))
        await producer.close()
        #expect(b.offset == a.offset + 1)
        let got = try await TestBroker.consume(topic, count: 2)
        #expect(got[0].value == [])
        #expect(got[1].value == big)
    }

    @Test func startOffsets() async throws {
        let topic = try await TestBroker.createTopic("start")
        let producer = KafkaProducer(config: ProducerConfig(client: TestBroker.client()))
        // One batch per record: Tansu answers ListOffsets(latest) with the last batch's base offset
        // + 1 rather than the high watermark, so multi-record batches would blur "latest" there.
        for i in 0..<10 {
            _ = try await producer.send(ProducerRecord(topic: topic, value: [UInt8(i)], timestamp: 1_600_000_000_000 + Int64(i) * 1000))
        }
        let fromOffset = try await TestBroker.consume(topic, count: 4, from: .offset(6))
        #expect(fromOffset.map(\.offset) == [6, 7, 8, 9])
        let fromStart = try await TestBroker.consume(topic, count: 10, from: .earliest)
        #expect(fromStart.map(\.offset) == Array(0..<10))
        if try await !TestBroker.isTansu() {
            // Tansu does not look offsets up by time (it answers 0); FakeBrokerTests covers the client side.
            let fromTime = try await TestBroker.consume(topic, count: 3, from: .timestamp(1_600_000_007_000))
            #expect(fromTime.map(\.offset) == [7, 8, 9])
        }
        // From the end: only what is produced afterwards.
        var config = ConsumerConfig(client: TestBroker.client())
        config.fetchMaxWaitMs = 100
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, from: .latest)
        #expect(consumer.positions()[topic]?[0] == 10)
        _ = try await producer.send(ProducerRecord(topic: topic, value: [99]))
        var it = consumer.records.makeAsyncIterator()
        let next = try await it.next()
        #expect(next?.offset == 10 && next?.value == [99])
        await consumer.close()
        await producer.close()
    }

    @Test func admin() async throws {
        let admin = KafkaAdmin(config: TestBroker.client())
        let name = TestBroker.uniqueTopic("admin")
        try await admin.createTopics([.init(name: name, partitions: 4)])
        do {
            try await admin.createTopics([.init(name: name, partitions: 4)])
            Issue.record("created twice")
        } catch {
            guard case .broker(.topicAlreadyExists, _) = error else { Issue.record("got \(error)"); return }
        }
        let meta = try await admin.metadata()
        #expect(meta.topics[name]?.partitions.count == 4)
        #expect(!meta.brokers.isEmpty)
        let offsets = try await admin.offsets(topic: name)
        #expect(offsets.map(\.partition) == [0, 1, 2, 3])
        #expect(offsets.allSatisfy { $0.earliest == 0 && $0.latest == 0 })
        let configs = try await admin.describeConfigs(.topic(name))
        #expect(configs.isEmpty || configs.contains { $0.name.contains(".") })
        try await admin.deleteTopics([name])
        let after = try await admin.metadata()
        #expect(after.topics[name] == nil)
        await admin.close()
    }

    @Test func unknownTopicIsATypedError() async throws {
        let producer = KafkaProducer(config: ProducerConfig(client: TestBroker.client()))
        do {
            _ = try await producer.send(ProducerRecord(topic: TestBroker.uniqueTopic("missing"), value: [1]))
            Issue.record("sent to a missing topic")
        } catch {
            guard case .unknownTopicOrPartition = error else { Issue.record("got \(error)"); return }
        }
        await producer.close()
    }

    @Test func slowReaderBoundsTheBuffer() async throws {
        let topic = try await TestBroker.createTopic("bounded")
        var pconfig = ProducerConfig(client: TestBroker.client())
        pconfig.compression = .lz4
        pconfig.batchSize = 32 << 10
        let producer = KafkaProducer(config: pconfig)
        let value = [UInt8](repeating: 7, count: 1000)
        for _ in 0..<5000 { try await producer.enqueue(ProducerRecord(topic: topic, value: value)) }
        try await producer.flush()
        await producer.close()

        var config = ConsumerConfig(client: TestBroker.client())
        config.maxBufferedBytes = 256 << 10
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, from: .earliest)
        try await Task.sleep(nanoseconds: 500_000_000)
        // Nothing read yet: fetching has stopped at the cap (plus at most one batch of ~32 KiB).
        let buffered = consumer.bufferedBytes
        let position = consumer.positions()[topic]![0]!
        #expect(buffered > 0)
        #expect(buffered <= config.maxBufferedBytes + (40 << 10))
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(consumer.bufferedBytes == buffered)
        #expect(consumer.positions()[topic]![0]! == position)
        #expect(position < 5000)
        var n = 0
        for try await r in consumer.records {
            #expect(r.offset == Int64(n))
            n += 1
            if n == 5000 { break }
        }
        #expect(n == 5000)
        await consumer.close()
    }
}
