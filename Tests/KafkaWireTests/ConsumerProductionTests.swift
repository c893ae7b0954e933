import Foundation
import Logging
import Metrics
import MetricsTestKit
import ServiceLifecycle
import Synchronization
import Testing
@testable import KafkaWire

/// swift-metrics can be bootstrapped once per process: every test reads this factory and tells its
/// own metrics apart by a unique client id.
enum TestMetricsFactory {
    static let shared: TestMetrics = {
        let m = TestMetrics()
        MetricsSystem.bootstrap(m)
        return m
    }()

    static func has(_ dims: [(String, String)], _ wanted: [String: String]) -> Bool {
        wanted.allSatisfy { w in dims.contains { $0 == (w.key, w.value) } }
    }
}

private func produce(_ topic: String, _ records: [ProducerRecord], batchSize: Int = 64 * 1024) async throws -> [RecordMetadata] {
    var config = ProducerConfig(client: TestBroker.client())
    config.batchSize = batchSize
    let producer = KafkaProducer(config: config)
    let results = await producer.send(records)
    await producer.close()
    return try results.map { try $0.get() }
}


@Suite(.enabled(if: TestBroker.available, "set KWIRE_BOOTSTRAP (scripts/test.sh starts a local broker)"),
       .timeLimit(.minutes(2)))
struct ConsumerProductionTests {
    /// Several rounds of records over three partitions, read by one consumer with fetch sessions on
    /// and off: every record once, in order per partition. (Tansu keeps no sessions and answers
    /// session id 0; the consumer then fetches in full every time. Against Apache Kafka the same
    /// test runs incrementally.)
    @Test(arguments: [true, false])
    func consumptionWithFetchSessions(sessions: Bool) async throws {
        let topic = try await TestBroker.createTopic("sessions", partitions: 3)
        var config = ConsumerConfig(client: TestBroker.client())
        config.fetchMaxWaitMs = 50
        config.fetchSessions = sessions
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, from: .earliest)
        var it = consumer.records.makeAsyncIterator()
        var got: [Int32: [String]] = [:]
        var sent: [Int32: [String]] = [:]
        for round in 0..<4 {
            // Each round touches a different subset of partitions.
            let records = (0..<30).map { i in
                ProducerRecord(topic: topic, partition: Int32((round + i % 2) % 3), value: Array("r\(round)-\(i)".utf8))
            }
            let metas = try await produce(topic, records)
            for (r, m) in zip(records, metas) { sent[m.partition, default: []].append(String(decoding: r.value!, as: UTF8.self)) }
            for _ in 0..<records.count {
                let r = try #require(try await it.next())
                got[r.partition, default: []].append(r.text)
            }
        }
        await consumer.close()
        #expect(got == sent)
        // Whatever the broker does, the session probe of a full fetch must agree with the consumer.
        let probe = try await Self.sessionProbe(topic)
        if try await TestBroker.isTansu() { #expect(probe == 0) }
    }

    /// The session id a broker gives a full fetch with epoch 0 (0: it keeps no sessions).
    static func sessionProbe(_ topic: String) async throws -> Int32 {
        let cluster = KafkaCluster(config: TestBroker.client())
        defer { Task { await cluster.close() } }
        let leader = try await cluster.leader(topic: topic, partition: 0)
        let c = try await cluster.connection(to: leader)
        var request = FetchRequest()
        request.sessionId = 0
        request.sessionEpoch = 0
        request.maxWaitMs = 0
        request.topics = [.init(topic: topic, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1024)])]
        let response = try await c.send(request)
        #expect(response.errorCode == 0)
        return response.sessionId
    }

    /// A reader far slower than the broker: one partition's buffered records stay within
    /// `max.partition.buffered.bytes` plus one record batch, though Tansu answers every fetch with
    /// everything it has; and nothing is lost or reordered by the pauses.
    @Test func slowReaderKeepsPartitionBufferBounded() async throws {
        let topic = try await TestBroker.createTopic("bounded")
        let payload = [UInt8](repeating: 0x61, count: 1000)
        let count = 1500
        // Small batches (~16 records) so that the bound, not the batch, is what is measured.
        _ = try await produce(topic, (0..<count).map {
            ProducerRecord(topic: topic, partition: 0, key: Array("\($0)".utf8), value: payload)
        }, batchSize: 16 * 1024)
        let tp = TopicPartition(topic: topic, partition: 0)
        let largestBatchCost = 16 * (1000 + 64 + 8)

        func run(bound: Int) async throws -> Int {
            var config = ConsumerConfig(client: TestBroker.client())
            config.fetchMaxWaitMs = 50
            config.maxPartitionBufferedBytes = bound
            let consumer = KafkaConsumer(config: config)
            try await consumer.assign(topic: topic, from: .earliest)
            var next: Int64 = 0
            for try await r in consumer.records {
                #expect(r.offset == next)
                #expect(r.key == Array("\(next)".utf8))
                next += 1
                if next % 50 == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
                if next == Int64(count) { break }
            }
            #expect(next == Int64(count))
            let peak = consumer.ledger.buffered(tp).peak
            await consumer.close()
            return peak
        }
        let bound = 64 * 1024
        let bounded = try await run(bound: bound)
        #expect(bounded <= bound + largestBatchCost)
        #expect(bounded >= bound)  // the bound was reached: the reader really was slower
        // The same reader with a bound above the partition's size buffers far more: the bound is
        // what held memory above.
        let unbounded = try await run(bound: 64 << 20)
        #expect(unbounded > 4 * (bound + largestBatchCost))
    }

    /// The consumer and network metrics move with real consumption: records and bytes per topic,
    /// fetch and request latency, nothing left in flight, lag zero at the end.
    @Test func metricsFollowConsumption() async throws {
        let m = TestMetricsFactory.shared
        let clientId = "metrics-\(UInt32.random(in: 0...UInt32.max))"
        let topic = try await TestBroker.createTopic("metrics", partitions: 2)
        let records = (0..<200).map { ProducerRecord(topic: topic, partition: Int32($0 % 2), value: Array("value-\($0)".utf8)) }
        _ = try await produce(topic, records)
        var config = ConsumerConfig(client: TestBroker.client(clientId))
        config.fetchMaxWaitMs = 50
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, from: .earliest)
        var n = 0
        for try await _ in consumer.records {
            n += 1
            if n == records.count { break }
        }
        // Lag is recorded per fetch answer; wait for one answer after the last record was read.
        let mine: [String: String] = ["client_id": clientId]
        let lagged = { (p: String) in
            m.recorders(label: KafkaWireMetricNames.consumerLag).first {
                TestMetricsFactory.has($0.dimensions, ["client_id": clientId, "topic": topic, "partition": p, "group": ""])
            }?.lastValue
        }
        #expect(await GroupTesting.eventually { lagged("0") == 0 && lagged("1") == 0 })
        await consumer.close()

        let recordCounters = m.counters(label: KafkaWireMetricNames.consumerRecords).filter {
            TestMetricsFactory.has($0.dimensions, ["client_id": clientId, "topic": topic])
        }
        #expect(recordCounters.map(\.totalValue).reduce(0, +) == Int64(records.count))
        let bytes = m.counters(label: KafkaWireMetricNames.consumerBytes).filter { TestMetricsFactory.has($0.dimensions, mine) }
        #expect(bytes.map(\.totalValue).reduce(0, +) == Int64(records.reduce(0) { $0 + $1.value!.count }))
        let fetchTimers = m.timers(label: KafkaWireMetricNames.fetchLatency).filter { TestMetricsFactory.has($0.dimensions, mine) }
        #expect(!fetchTimers.flatMap(\.values).isEmpty)
        let apiTimers = m.timers(label: KafkaWireMetricNames.requestLatency).filter { TestMetricsFactory.has($0.dimensions, mine) }
        let apis = Set(apiTimers.filter { !$0.values.isEmpty }.compactMap { t in t.dimensions.first { $0.0 == "api" }?.1 })
        #expect(apis.isSuperset(of: ["ApiVersions", "Metadata", "ListOffsets", "Fetch"]))
        #expect(apiTimers.flatMap(\.values).allSatisfy { $0 > 0 })
        let inFlight = m.meters(label: KafkaWireMetricNames.requestsInFlight).filter { TestMetricsFactory.has($0.dimensions, mine) }
        #expect(!inFlight.isEmpty && inFlight.allSatisfy { ($0.lastValue ?? 0) == 0 })
    }

    /// A failed request is counted by API and error kind; an answered one counts none.
    @Test func requestErrorsAreCounted() async throws {
        let m = TestMetricsFactory.shared
        let clientId = "errors-\(UInt32.random(in: 0...UInt32.max))"
        let cluster = KafkaCluster(config: TestBroker.client(clientId))
        defer { Task { await cluster.close() } }
        let c = try await cluster.anyConnection()
        _ = try await c.send(MetadataRequest())
        #expect(m.counters(label: KafkaWireMetricNames.requestErrors).filter { TestMetricsFactory.has($0.dimensions, ["client_id": clientId]) }.isEmpty)
        await c.close()
        do throws(KafkaError) {
            _ = try await c.send(MetadataRequest())
            Issue.record("a closed connection sent a request")
        } catch {}
        let errors = m.counters(label: KafkaWireMetricNames.requestErrors).filter {
            TestMetricsFactory.has($0.dimensions, ["client_id": clientId, "api": "Metadata"])
        }
        #expect(errors.map(\.totalValue).reduce(0, +) == 1)
        #expect(errors.first?.dimensions.contains { $0 == ("error", "closed") } == true)
    }
}

/// Group consumers as swift-service-lifecycle services.
@Suite(.enabled(if: TestBroker.available, "set KWIRE_BOOTSTRAP (scripts/test.sh starts a local broker)"),
       .timeLimit(.minutes(2)))
struct GroupConsumerServiceTests {
    /// Tansu holds a JoinGroup for about half the joining member's session timeout: the first
    /// member's is long (its expiry would take that long), the second's short.
    static func groupConfig(_ group: String, clientId: String, sessionTimeoutMs: Int) -> GroupConsumerConfig {
        var c = GroupConsumerConfig(consumer: ConsumerConfig(client: TestBroker.client(clientId)), groupId: group)
        c.consumer.fetchMaxWaitMs = 100
        c.consumer.autoOffsetReset = .earliest
        c.heartbeatIntervalMs = 500
        c.sessionTimeoutMs = sessionTimeoutMs
        c.maxPollIntervalMs = 60_000
        c.autoCommitIntervalMs = 600_000  // only the shutdown commits
        c.closeTimeoutMs = 5_000
        return c
    }

    /// Graceful shutdown of a ServiceGroup: the member stops, commits exactly what the application
    /// processed, and leaves; a second member then gets every partition and reads on from there.
    @Test func gracefulShutdownCommitsAndLeaves() async throws {
        let m = TestMetricsFactory.shared
        let topic = try await TestBroker.createTopic("svc", partitions: 2)
        let group = "svc-group-\(UInt32.random(in: 0...UInt32.max))"
        let records = (0..<40).map { ProducerRecord(topic: topic, partition: Int32($0 % 2), value: Array("\($0)".utf8)) }
        _ = try await produce(topic, records)

        let first = KafkaGroupConsumer(config: Self.groupConfig(group, clientId: "svc-a-\(group)", sessionTimeoutMs: 30_000), topics: [topic])
        let services = ServiceGroup(services: [first], logger: Logger(label: "test.services"))
        let runner = Task { try await services.run() }
        var taken: [ConsumerRecord] = []
        for try await r in first.records {
            taken.append(r)
            if taken.count == 15 { break }
        }
        await services.triggerGracefulShutdown()
        try await runner.value

        // Committed: one past the last record taken of each partition (the held one counts).
        var expected: [Int32: Int64] = [:]
        for r in taken { expected[r.partition] = max(expected[r.partition] ?? 0, r.offset + 1) }
        let admin = KafkaAdmin(config: TestBroker.client())
        let described = try await admin.describeGroup(group)
        await admin.close()
        #expect(described.members.isEmpty)
        for p in described.partitions {
            // A partition the application took nothing from is committed at its start, if at all.
            #expect(p.committedOffset == expected[p.partition.partition] ?? (p.committedOffset < 0 ? -1 : 0))
        }
        #expect(Set(described.partitions.filter { $0.committedOffset > 0 }.map(\.partition.partition)) == Set(expected.keys))
        let rebalances = m.counters(label: KafkaWireMetricNames.consumerRebalances).filter {
            TestMetricsFactory.has($0.dimensions, ["client_id": "svc-a-\(group)", "group": group])
        }
        #expect(rebalances.map(\.totalValue).reduce(0, +) >= 1)

        // The second member owns both partitions within the first one's session timeout (30 s; the
        // watchdog gives up after 25; Tansu holds the join for half the group's session timeout,
        // 15 s) and reads exactly the records after the commit.
        let second = KafkaGroupConsumer(config: Self.groupConfig(group, clientId: "svc-b-\(group)", sessionTimeoutMs: 6_000), topics: [topic])
        var rest: [ConsumerRecord] = []
        let remaining = records.count - taken.count
        let watchdog = Task {
            try await Task.sleep(nanoseconds: 25_000_000_000)
            await second.close()
        }
        for try await r in second.records {
            rest.append(r)
            if rest.count == remaining { break }
        }
        watchdog.cancel()
        #expect(second.assignment.count == 2)
        await second.close()
        #expect(rest.count == remaining)
        let all = (taken + rest).map { "\($0.partition)/\($0.offset)" }
        #expect(Set(all).count == records.count)
    }
}

/// Shutdown with the broker gone: a fake coordinator that disappears.
extension GroupConsumerServiceTests {
    /// A member subscribed to a topic that does not exist yet (or that a broker lost in a restart)
    /// joins with nothing to read; once the topic is created it gets the partitions and reads.
    @Test func aTopicCreatedAfterTheJoinIsAssignedAndRead() async throws {
        let topic = "late-\(UInt32.random(in: 0...UInt32.max))"
        let group = "late-group-\(topic)"
        let member = KafkaGroupConsumer(config: Self.groupConfig(group, clientId: "late-\(topic)", sessionTimeoutMs: 6_000), topics: [topic])
        let watchdog = Task {
            try await Task.sleep(nanoseconds: 40_000_000_000)
            await member.close()
        }
        try await Task.sleep(nanoseconds: 5_000_000_000)  // Tansu holds the join for 3 s
        #expect(member.assignment.isEmpty)
        let admin = KafkaAdmin(config: TestBroker.client())
        try await admin.createTopics([.init(name: topic, partitions: 2)], ignoreExisting: false)
        await admin.close()
        _ = try await produce(topic, [ProducerRecord(topic: topic, value: Array("after".utf8))])
        var got: [String] = []
        for try await r in member.records {
            got.append(String(decoding: r.value ?? [], as: UTF8.self))
            break
        }
        watchdog.cancel()
        #expect(got == ["after"])
        #expect(member.assignment.count == 2)
        await member.close()
    }
}

@Suite(.timeLimit(.minutes(1))) struct GroupConsumerServiceFaultTests {
    @Test func shutdownWithTheBrokerGoneEndsWithinTheDeadline() async throws {
        let b = try GroupBroker()
        b.with { $0.logEnd[TopicPartition(topic: "t", partition: 0)] = 5 }
        var config = GroupTesting.config(b)
        config.closeTimeoutMs = 1_500
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        let services = ServiceGroup(services: [consumer], logger: Logger(label: "test.services"))
        let runner = Task { try await services.run() }
        var it = consumer.records.makeAsyncIterator()
        _ = try await it.next()
        b.stop()
        let start = monotonicNanos()
        await services.triggerGracefulShutdown()
        try await runner.value
        let tookMs = Int((monotonicNanos() - start) / 1_000_000)
        // Bounded by the close deadline (plus the fetcher's own bounded teardown), not by any timeout
        // of a broker that no longer answers.
        #expect(tookMs < config.closeTimeoutMs + 3_000)
        #expect(try await it.next() == nil)
    }
}
