import Foundation
import HRMSEventPipeline
import HRMSEvents
import KafkaWire
import Testing

/// The broker under test: `KWIRE_BOOTSTRAP`, as the KafkaWire broker suites.
enum Broker {
    static let bootstrap = ProcessInfo.processInfo.environment["KWIRE_BOOTSTRAP"]
    static var available: Bool { bootstrap != nil }

    static func client(_ bootstrap: String? = Broker.bootstrap) -> ClientConfig {
        var c = ClientConfig(bootstrapServers: bootstrap ?? "127.0.0.1:1", clientId: "hrms-pipeline-tests")
        c.requestTimeoutMs = 10_000
        return c
    }

    /// Fresh topic names, so tests running side by side do not see each other's records.
    static func settings(_ name: String, bootstrap: String? = Broker.bootstrap) -> EventPipelineSettings {
        let tag = "\(name)-\(UInt32.random(in: 0...UInt32.max))"
        var s = EventPipelineSettings(client: client(bootstrap))
        s.topics.notification = "notification-queue-\(tag)"
        s.topics.audit = "audit-queue-\(tag)"
        s.topics.notificationDLQ = "notification-dlq-\(tag)"
        s.topics.auditDLQ = "audit-dlq-\(tag)"
        s.notificationGroup = "notification-service-group-\(tag)"
        s.auditGroup = "audit-service-group-\(tag)"
        return s
    }

    /// Reads `count` records of `topic` from the beginning (fails the test after `timeoutSeconds`).
    static func consume(_ topic: String, count: Int, client: ClientConfig = Broker.client(), timeoutSeconds: Double = 20) async throws -> [ConsumerRecord] {
        var config = ConsumerConfig(client: client)
        config.fetchMaxWaitMs = 100
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, from: .earliest)
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

    /// Produces raw records (acks=all) and returns where they went.
    static func produce(_ records: [ProducerRecord], client: ClientConfig = Broker.client()) async throws -> [RecordMetadata] {
        let producer = KafkaProducer(config: ProducerConfig(client: client))
        let results = await producer.send(records)
        await producer.close()
        return try results.map { try $0.get() }
    }
}

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
func eventually(_ seconds: Double = 30, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: 100_000_000)
    }
    return try await condition()
}

func header(_ r: ConsumerRecord, _ name: String) -> String? {
    r.headers.first { $0.key == name }?.value.map { String(decoding: $0, as: UTF8.self) }
}

enum Samples {
    static func notification(_ i: Int, email: String = "ada@example.com", key: String? = nil, type: NotificationEventType = .leaveRequested) -> OutboxEvent {
        .notification(type, key: key ?? "leave-\(i)", source: "leave-service", correlationId: "corr-\(i)",
                      data: NotificationData(recipientEmail: email, recipientName: "Ada", subject: "Leave \(i)",
                                             templateName: "leave_requested", templateData: ["leave_id": .number(Double(i))]))
    }

    static func audit(_ i: Int, key: String? = nil, type: AuditEventType = .leaveCreate) -> OutboxEvent {
        .audit(type, key: key ?? "leave-\(i % 5)", source: "leave-service", correlationId: i % 2 == 0 ? "corr-\(i)" : nil,
               data: AuditData(userId: "user-\(i)", action: "create", resourceType: "leave", resourceId: "leave-\(i % 5)",
                               description: "leave \(i)", ipAddress: "127.0.0.1", userAgent: "tests",
                               newValue: ["days": .number(Double(i))], changes: ["status": ["from": nil, "to": "pending"]]))
    }

    /// The record the relay would make of an event.
    static func record(_ e: OutboxEvent, _ topics: EventTopics) -> ProducerRecord {
        OutboxRelay<SQLiteOutboxStore>.record(e, topic: topics.topic(for: e.stream))
    }
}
