import KafkaFakeBroker
import Logging
import MetricsTestKit
import ServiceLifecycle
import Synchronization
import Testing
@testable import KafkaWire

/// Delivery results, bounded buffers, flush and close deadlines, the Service wrapper, metrics.
@Suite(.timeLimit(.minutes(1))) struct ProducerDeliveryTests {
    /// A broker that accepts connections and metadata but never answers a Produce.
    func silentBroker() throws -> FakeBroker {
        try Scripted.broker { req, _ in req.apiKey == ApiKey.produce.rawValue ? .silence : .close }
    }

    @Test func sendReturnsPartitionOffsetAndTimestamp() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config())
        let a = try await producer.send(ProducerRecord(topic: "t", partition: 1, value: Array("a".utf8), timestamp: 1_700_000_000_123))
        let b = try await producer.send(ProducerRecord(topic: "t", partition: 1, value: Array("b".utf8), timestamp: 1_700_000_000_456))
        #expect(a == RecordMetadata(topic: "t", partition: 1, offset: 0, timestamp: 1_700_000_000_123))
        #expect(b == RecordMetadata(topic: "t", partition: 1, offset: 1, timestamp: 1_700_000_000_456))
        await producer.close()
    }

    @Test func deliveryReportsCarryTheRecordsIdentityAndOutcome() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config())
        for i in 0..<20 {
            try await producer.enqueue(ProducerRecord(topic: "t", key: Array("key-\(i % 4)".utf8), value: Array("v\(i)".utf8)), reportId: UInt64(1000 + i))
        }
        var reports: [UInt64: DeliveryReport] = [:]
        for await r in producer.deliveryReports {
            reports[r.reportId] = r
            if reports.count == 20 { break }
        }
        #expect(Set(reports.keys) == Set((0..<20).map { UInt64(1000 + $0) }))
        for (id, r) in reports {
            let i = Int(id - 1000)
            let key = Array("key-\(i % 4)".utf8)
            #expect(r.key == key && r.topic == "t")
            #expect(r.partition == partitionForKey(key, partitionCount: 2))
            let meta = try r.result.get()
            #expect(meta.partition == r.partition)
            #expect(fake.log(r.partition)[Int(meta.offset)] == "v\(i)")
        }
        try await producer.flush()
        await producer.close()
    }

    @Test func aFailedRecordsReportCarriesItsError() async throws {
        let fake = try SequencingBroker { _ in .error(.messageTooLarge) }
        let producer = KafkaProducer(config: fake.config())
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, key: Array("k".utf8), value: [1]), reportId: 7)
        var iterator = producer.deliveryReports.makeAsyncIterator()
        let report = try #require(await iterator.next())
        #expect(report.reportId == 7 && report.partition == 0 && report.key == Array("k".utf8))
        guard case .failure(.broker(.messageTooLarge, _)) = report.result else { Issue.record("got \(report.result)"); return }
        await producer.close()
    }

    /// queue.buffering.max.messages: the next record waits for room up to max.block.ms, then fails.
    @Test func aFullRecordCapBlocksThenFailsAfterMaxBlock() async throws {
        let broker = try silentBroker()
        defer { broker.stop() }
        var config = ProducerConfig(client: Scripted.config(broker, requestTimeoutMs: 30_000))
        config.maxBufferedRecords = 5
        config.maxBlockMs = 200
        let producer = KafkaProducer(config: config)
        for i in 0..<5 { try await producer.enqueue(ProducerRecord(topic: "t", key: Array("k\(i)".utf8), value: [1])) }
        do {
            try await producer.enqueue(ProducerRecord(topic: "t", value: [1]))
            Issue.record("expected the buffer to be full")
        } catch {
            guard case let .timedOut(why) = error else { Issue.record("got \(error)"); return }
            #expect(why == "queue.buffering.max.messages (5 records) full for max.block.ms 200")
        }
        let undelivered = await producer.close(timeoutMs: 100)
        #expect(Set(undelivered.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }) == ["k0", "k1", "k2", "k3", "k4"])
    }

    /// buffer.memory: the same for bytes.
    @Test func aFullByteCapBlocksThenFailsAfterMaxBlock() async throws {
        let broker = try silentBroker()
        defer { broker.stop() }
        var config = ProducerConfig(client: Scripted.config(broker, requestTimeoutMs: 30_000))
        config.bufferMemory = 1_000
        config.maxBlockMs = 100
        let producer = KafkaProducer(config: config)
        let value = [UInt8](repeating: 1, count: 300)
        for _ in 0..<3 { try await producer.enqueue(ProducerRecord(topic: "t", value: value)) }
        do {
            try await producer.enqueue(ProducerRecord(topic: "t", value: value))
            Issue.record("expected the buffer to be full")
        } catch {
            guard case let .timedOut(why) = error else { Issue.record("got \(error)"); return }
            #expect(why == "buffer.memory (1000 bytes) full for max.block.ms 100")
        }
        #expect(await producer.close(timeoutMs: 100).count == 3)
    }

    /// A blocked send goes on as soon as answers free room.
    @Test func aBlockedSendResumesWhenRoomFrees() async throws {
        let fake = try SequencingBroker { n in n == 1 ? .after(delayMs: 200, .none) : .none }
        let producer = KafkaProducer(config: fake.config { $0.maxBufferedRecords = 2; $0.maxBlockMs = 10_000 })
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: Array("a".utf8)))
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: Array("b".utf8)))
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: Array("c".utf8)))
        try await producer.flush()
        #expect(fake.log(0) == ["a", "b", "c"])
        await producer.close()
    }

    /// Reports not read yet keep their records' room: an application that ignores its reports is
    /// slowed down instead of growing memory.
    @Test func unreadReportsHoldTheirRoom() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config { $0.maxBufferedRecords = 3; $0.maxBlockMs = 200 })
        for i in 0..<3 { try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: [UInt8(i)]), reportId: UInt64(i)) }
        try await producer.flush()
        await #expect(throws: KafkaError.self) { try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: [9]), reportId: 9) }
        var iterator = producer.deliveryReports.makeAsyncIterator()
        let first = try #require(await iterator.next())
        #expect(first.reportId == 0)
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: [3]), reportId: 3)
        await producer.close()
    }

    @Test func flushWithADeadlineSaysHowManyAreStillPending() async throws {
        let broker = try silentBroker()
        defer { broker.stop() }
        let producer = KafkaProducer(config: ProducerConfig(client: Scripted.config(broker, requestTimeoutMs: 30_000)))
        try await producer.enqueue(ProducerRecord(topic: "t", value: [1]))
        try await producer.enqueue(ProducerRecord(topic: "t", value: [2]))
        do {
            try await producer.flush(timeoutMs: 200)
            Issue.record("expected pending records")
        } catch {
            #expect(error.stillPending == 2 && error.failed.isEmpty)
        }
        await producer.close(timeoutMs: 0)
    }

    @Test func flushReportsFailedEnqueuedRecordsWithTheirIdentity() async throws {
        let fake = try SequencingBroker { _ in .error(.recordListTooLarge) }
        let producer = KafkaProducer(config: fake.config())
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, key: Array("a".utf8), value: [1]))
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 1, key: Array("b".utf8), value: [1]))
        do {
            try await producer.flush()
            Issue.record("expected failures")
        } catch {
            #expect(error.stillPending == 0)
            #expect(error.failed.map { "\($0.partition) \(String(decoding: $0.key ?? [], as: UTF8.self))" }.sorted() == ["0 a", "1 b"])
            guard case .broker(.recordListTooLarge, _)? = error.firstError else { Issue.record("got \(error)"); return }
        }
        try await producer.flush()  // reported once
        await producer.close()
    }

    /// The broker disappears: close gives up at its deadline (not request.timeout.ms or
    /// delivery.timeout.ms later) and names every record it could not deliver.
    @Test func closeWithTheBrokerGoneReturnsAtItsDeadlineAndReportsTheUndelivered() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config { $0.client.requestTimeoutMs = 30_000 })
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("warm".utf8)))
        fake.broker.stop()
        let awaited = Mutex<Result<RecordMetadata, KafkaError>?>(nil)
        await producer.send(ProducerRecord(topic: "t", partition: 0, key: Array("awaited".utf8), value: [0])) { r in awaited.withLock { $0 = r } }
        for i in 0..<3 { try await producer.enqueue(ProducerRecord(topic: "t", partition: 1, key: Array("k\(i)".utf8), value: [1])) }
        try await producer.enqueue(ProducerRecord(topic: "t", partition: 1, key: Array("r".utf8), value: [2]), reportId: 77)
        let start = ContinuousClock.now
        let undelivered = await producer.close(timeoutMs: 500)
        let took = ContinuousClock.now - start
        // A hang check, not a benchmark: a generous slack over the deadline.
        #expect(took < .seconds(5), "close took \(took)")
        #expect(Set(undelivered.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }) == ["awaited", "k0", "k1", "k2", "r"])
        #expect(undelivered.first { $0.reportId == 77 } != nil)
        guard case .failure? = awaited.withLock({ $0 }) else { Issue.record("the waiting caller got no failure"); return }
        var reports: [DeliveryReport] = []
        for await r in producer.deliveryReports { reports.append(r) }  // ends after close
        #expect(reports.map(\.reportId) == [77])
        await #expect(throws: KafkaError.self) { try await producer.enqueue(ProducerRecord(topic: "t", value: [1])) }
    }

    @Test func theServiceClosesTheProducerAtGracefulShutdown() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config { $0.lingerMs = 60_000 })
        let undelivered = Mutex<[UndeliveredRecord]?>(nil)
        let service = KafkaProducerService(producer, shutdownTimeoutMs: 5_000) { u in undelivered.withLock { $0 = u } }
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        // Held by a long linger: only the shutdown's close sends them.
        for i in 0..<10 { try await producer.enqueue(ProducerRecord(topic: "t", partition: 0, value: Array("v\(i)".utf8))) }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(fake.log(0) == (0..<10).map { "v\($0)" })
        #expect(undelivered.withLock { $0 } == nil)
        await #expect(throws: KafkaError.self) { try await producer.enqueue(ProducerRecord(topic: "t", value: [1])) }
    }

    @Test func metricsCountRecordsBytesBatchesErrorsRetriesAndBuffer() async throws {
        let metrics = TestMetrics()
        let fake = try SequencingBroker { n in
            switch n {
            case 1: .error(.notLeaderOrFollower)
            case 3: .error(.messageTooLarge)
            default: .none
            }
        }
        // A linger long enough to put the three records in one batch.
        let producer = KafkaProducer(config: fake.config { $0.client.clientId = "m"; $0.lingerMs = 50 }, metricsFactory: metrics)
        let three = await producer.send((0..<3).map { ProducerRecord(topic: "t", partition: 0, value: Array("v\($0)".utf8)) })
        #expect(three.allSatisfy { (try? $0.get()) != nil })
        await #expect(throws: KafkaError.self) { try await producer.send(ProducerRecord(topic: "t", partition: 0, value: [1])) }
        let dims = [("client_id", "m"), ("topic", "t")]
        #expect(try metrics.expectCounter("kafkawire_producer_records_sent_total", dims).totalValue == 3)
        let bytes = try metrics.expectCounter("kafkawire_producer_bytes_sent_total", dims).totalValue
        let batches = try metrics.expectRecorder("kafkawire_producer_batch_size_bytes", dims).values
        #expect(batches.count == 1 && bytes > 61 && batches[0] == Double(bytes))
        #expect(try metrics.expectCounter("kafkawire_producer_retries_total", dims + [("error", "NOT_LEADER_OR_FOLLOWER")]).totalValue >= 1)
        #expect(try metrics.expectCounter("kafkawire_producer_errors_total", dims + [("error", "MESSAGE_TOO_LARGE")]).totalValue == 1)
        #expect(try metrics.expectGauge("kafkawire_producer_buffer_bytes", [("client_id", "m")]).lastValue == 0)
        await producer.close()
    }
}
