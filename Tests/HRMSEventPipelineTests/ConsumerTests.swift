import Foundation
import HRMSEventPipeline
import HRMSEvents
import KafkaWire
import Synchronization
import Testing

/// Renders "<template>: <subject>"; refuses templates named "broken".
struct TestRenderer: NotificationRenderer {
    struct UnknownTemplate: Error {}
    func render(eventType: String, data: NotificationData) throws -> RenderedNotification {
        if data.templateName == "broken" { throw UnknownTemplate() }
        return RenderedNotification(to: data.recipientEmail, toName: data.recipientName, subject: data.subject,
                                    textBody: "\(data.templateName): \(data.subject)")
    }
}

/// A mail server stand-in: refuses (transiently) every address starting with "fail", accepts the rest.
final class TestDeliverer: NotificationDeliverer {
    struct Refused: Error, CustomStringConvertible { var description: String { "451 try again later" } }
    let calls = Mutex<[String: Int]>([:])
    func deliver(_ message: RenderedNotification, eventId: String) async throws {
        calls.withLock { $0[eventId, default: 0] += 1 }
        if message.to.hasPrefix("fail") { throw Refused() }
    }
    func count(_ id: String) -> Int { calls.withLock { $0[id] ?? 0 } }
}

func consumerConfig(_ settings: EventPipelineSettings, stream: EventStream) -> EventConsumerConfig {
    var c = stream == .notification
        ? EventConsumerConfig(client: settings.client, groupId: settings.notificationGroup, topic: settings.topics.notification, dlqTopic: settings.topics.notificationDLQ)
        : EventConsumerConfig(client: settings.client, groupId: settings.auditGroup, topic: settings.topics.audit, dlqTopic: settings.topics.auditDLQ)
    // Tansu makes a join wait half the session timeout.
    c.sessionTimeoutMs = 6_000
    c.heartbeatIntervalMs = 1_000
    c.fetchMaxWaitMs = 100
    return c
}

func committed(_ settings: EventPipelineSettings, group: String, topic: String) async throws -> [Int32: Int64] {
    let admin = KafkaAdmin(config: settings.client)
    defer { Task { await admin.close() } }
    let d = try await admin.describeGroup(group)
    var out: [Int32: Int64] = [:]
    for p in d.partitions where p.partition.topic == topic { out[p.partition.partition] = p.committedOffset }
    return out
}

@Suite(.enabled(if: Broker.available, "set KWIRE_BOOTSTRAP (scripts/test.sh starts a local broker)"), .timeLimit(.minutes(2)))
struct NotificationConsumerTests {
    @Test func poisonAndFailedDeliveriesGoToTheDLQWithOriginalBytesAndTheConsumerGoesOn() async throws {
        let settings = Broker.settings("notify")
        try await settings.topics.ensureExist(settings.client)
        let topic = settings.topics.notification
        let good = Samples.notification(1)
        let failing = Samples.notification(2, email: "fail@example.com")
        var missingSubject = Samples.notification(3)
        missingSubject.payload = Array(String(decoding: missingSubject.payload, as: UTF8.self)
            .replacingOccurrences(of: #""subject":"Leave 3","#, with: "").utf8)
        let noRecipient = Samples.notification(4, email: "nobody")
        let broken = OutboxEvent.notification(.userCreated, key: "user-5", source: "user-management-service", correlationId: nil,
                                              data: NotificationData(recipientEmail: "x@example.com", recipientName: nil, subject: "s",
                                                                     templateName: "broken", templateData: [:]))
        let after = Samples.notification(6)
        // All on one key, so one partition, in this order: the consumer must go on past each bad one.
        let malformed = ProducerRecord(topic: topic, key: Array("leave-x".utf8), value: Array(#"{"event_id": "#.utf8),
                                       headers: [RecordHeader(key: "origin", value: Array("test".utf8))])
        var records = [malformed]
        for e in [good, failing, missingSubject, noRecipient, broken, after] {
            var r = Samples.record(e, settings.topics)
            r.key = Array("leave-x".utf8)
            records.append(r)
        }
        let written = try await Broker.produce(records)

        let db = try await SQLiteDB.open("notify")
        let store = try await SQLiteNotificationStore(db)
        let deliverer = TestDeliverer()
        var config = NotificationConsumer.Config(consumer: consumerConfig(settings, stream: .notification))
        config.maxAttempts = 3
        config.retry = Backoff(baseMs: 50, maxMs: 200)
        let consumer = NotificationConsumer(config: config, store: store, renderer: TestRenderer(), deliverer: deliverer)
        let running = Task { try await consumer.run() }
        let end = written.last!.offset + 1
        let done = await eventually(40) { (try? await committed(settings, group: settings.notificationGroup, topic: topic))?[written[0].partition] == end }
        running.cancel()
        try await running.value
        #expect(done)

        #expect(deliverer.count(good.eventId) == 1)
        #expect(deliverer.count(after.eventId) == 1)
        #expect(deliverer.count(failing.eventId) == 3)
        let outcomes = try await store.outcomes()
        #expect(outcomes[good.eventId]?.status == "sent")
        #expect(outcomes[after.eventId]?.status == "sent")
        #expect(outcomes[failing.eventId]?.status == "dead_lettered" && outcomes[failing.eventId]?.attempts == 3)
        #expect(outcomes[broken.eventId]?.status == "dead_lettered")

        let dlq = try await Broker.consume(settings.topics.notificationDLQ, count: 5)
        #expect(dlq.count == 5)
        let letters = dlq.compactMap(DeadLetter.init(deadLetterRecord:)).sorted { $0.originalOffset < $1.originalOffset }
        #expect(letters.map(\.reason) == ["unparseable", "delivery", "schema", "no_recipient", "render"])
        #expect(letters.map(\.originalOffset) == [0, 2, 3, 4, 5].map { written[0].offset + Int64($0) })
        #expect(letters.map(\.attempts) == [0, 3, 0, 0, 0])
        for (letter, index) in zip(letters, [0, 2, 3, 4, 5]) {
            // The original record exactly: key, value bytes and headers.
            #expect(letter.key == records[index].key)
            #expect(letter.value == records[index].value)
            #expect(letter.originalHeaders == records[index].headers)
            #expect(letter.originalTopic == topic)
            #expect(letter.originalPartition == written[index].partition)
            #expect(letter.consumerGroup == settings.notificationGroup)
            #expect(letter.republishRecord.value == records[index].value)
        }
        #expect(letters[1].error.contains("451"))
        #expect(letters[2].error.contains("subject"))
        await db.close()
    }

    @Test func theSameEventTwiceIsDeliveredOnce() async throws {
        let settings = Broker.settings("notify-dup")
        try await settings.topics.ensureExist(settings.client)
        let events = (0..<3).map { Samples.notification($0) }
        // The second copy of event 0 comes after the others (a redelivery, or the HTTP fallback's duplicate).
        let records = (events + [events[0]]).map { Samples.record($0, settings.topics) }
        _ = try await Broker.produce(records)
        let db = try await SQLiteDB.open("notify-dup")
        let store = try await SQLiteNotificationStore(db)
        let deliverer = TestDeliverer()
        let consumer = NotificationConsumer(config: .init(consumer: consumerConfig(settings, stream: .notification)), store: store,
                                            renderer: TestRenderer(), deliverer: deliverer)
        let running = Task { try await consumer.run() }
        let admin = KafkaAdmin(config: settings.client)
        let done = await eventually(40) {
            guard let c = try? await committed(settings, group: settings.notificationGroup, topic: settings.topics.notification) else { return false }
            return c.values.reduce(0, +) >= 4
        }
        await admin.close()
        running.cancel()
        try await running.value
        #expect(done)
        for e in events { #expect(deliverer.count(e.eventId) == 1) }
        #expect(try await store.outcomes().count == 3)
        await db.close()
    }
}

@Suite(.enabled(if: Broker.available, "set KWIRE_BOOTSTRAP (scripts/test.sh starts a local broker)"), .timeLimit(.minutes(2)))
struct AuditConsumerTests {
    @Test func batchesABadRecordToTheDLQAndReplayEqualsLive() async throws {
        let settings = Broker.settings("audit")
        try await settings.topics.ensureExist(settings.client)
        let topic = settings.topics.audit
        let events = (0..<60).map { Samples.audit($0) }
        var records = events.map { Samples.record($0, settings.topics) }
        // A record that is no audit event, in the middle; and one event twice.
        let bad = ProducerRecord(topic: topic, key: Array("leave-1".utf8), value: Array(#"{"event_type":"audit.leave.create","data":{}}"#.utf8))
        records.insert(bad, at: 30)
        records.append(records[5])
        _ = try await Broker.produce(records)

        let db = try await SQLiteDB.open("audit-live")
        let store = try await SQLiteAuditStore(db)
        var config = AuditConsumer.Config(consumer: consumerConfig(settings, stream: .audit))
        config.maxBatchSize = 25
        config.maxBatchWaitMs = 300
        let consumer = AuditConsumer(config: config, store: store)
        let running = Task { try await consumer.run() }
        let done = await eventually(40) {
            guard let c = try? await committed(settings, group: settings.auditGroup, topic: topic) else { return false }
            return c.values.reduce(0, +) >= Int64(records.count)
        }
        running.cancel()
        try await running.value
        #expect(done)
        #expect(try await store.eventIds() == Set(events.map(\.eventId)))
        let sizes = try await store.batchSizes()
        #expect(sizes.allSatisfy { $0 <= 25 })
        #expect(sizes.count < events.count / 2)  // batched, not one call per record

        let dlq = try await Broker.consume(settings.topics.auditDLQ, count: 1)
        let letter = try #require(dlq.first.flatMap(DeadLetter.init(deadLetterRecord:)))
        #expect(letter.value == bad.value && letter.key == bad.key)
        #expect(letter.reason == "schema" && letter.originalTopic == topic)

        // Replay into a fresh database from the earliest offsets: the same rows.
        let fresh = try await SQLiteDB.open("audit-replay")
        let rebuilt = try await SQLiteAuditStore(fresh)
        let report = try await AuditReplay.run(client: settings.client, topic: topic, into: rebuilt, batchSize: 20)
        #expect(report.records == records.count)
        #expect(report.invalid == 1)
        #expect(report.inserted == events.count)
        #expect(try await rebuilt.dump() == store.dump())
        await db.close()
        await fresh.close()
    }
}
