import Foundation
import HRMSEvents
import KafkaWire
import Logging

/// One audit event as the Audit service stores it.
public struct AuditEntry: Sendable, Equatable {
    public var eventId: String
    public var eventType: String
    /// As the event says (ISO 8601 UTC).
    public var timestamp: String
    public var sourceService: String
    public var correlationId: String?
    public var data: AuditData

    public init(_ envelope: EventEnvelope<AuditData>) {
        eventId = envelope.eventId
        eventType = envelope.eventType
        timestamp = envelope.timestamp
        sourceService = envelope.sourceService
        correlationId = envelope.correlationId
        data = envelope.data
    }

    /// The entry a record holds, or why it holds none.
    public static func parse(_ record: ConsumerRecord) throws(EventValidationError) -> AuditEntry {
        AuditEntry(try EventValidation.audit(record.value ?? []))
    }
}

/// The Audit service's append-only store.
public protocol AuditStore: Sendable {
    /// Inserts the entries in one transaction, skipping event ids already stored (and repeated
    /// ones within the batch); returns how many were new.
    @discardableResult
    func insertBatch(_ entries: [AuditEntry]) async throws -> Int
}

/// The audit consumer (group `audit-service-group`): batches bounded by size and time, one store
/// call per batch, offsets committed after it; a bad record goes to the DLQ and the batch goes on.
public final class AuditConsumer: Sendable {
    public struct Config: Sendable {
        public var consumer: EventConsumerConfig
        public var maxBatchSize = 500
        /// A batch is stored at the latest this long after its first record arrived.
        public var maxBatchWaitMs = 1_000

        public init(consumer: EventConsumerConfig) { self.consumer = consumer }

        public init(settings: EventPipelineSettings) {
            consumer = EventConsumerConfig(client: settings.client, groupId: settings.auditGroup,
                                           topic: settings.topics.audit, dlqTopic: settings.topics.auditDLQ)
        }
    }

    public let config: Config
    let store: any AuditStore
    let logger: Logger

    public init(config: Config, store: any AuditStore, logger: Logger = Logger(label: "hrms.audit-consumer")) {
        self.config = config
        self.store = store
        self.logger = logger
    }

    /// Consumes until the task is cancelled; throws only if the group consumer fails for good.
    public func run() async throws {
        let c = config.consumer
        let member = KafkaGroupConsumer(config: c.groupConsumerConfig, topics: [c.topic], logger: logger)
        let dlq = DeadLetterWriter(client: c.client, topic: c.dlqTopic, logger: logger)
        defer { Task { await dlq.close() } }
        let queue = RecordQueue(capacity: config.maxBatchSize * 2)
        logger.info("audit consumer started", metadata: ["group": "\(c.groupId)", "topic": "\(c.topic)"])
        // The reader hands records over; this task batches, stores and commits.
        let reader = Task {
            do {
                try await consumeUntilCancelled(member) { await queue.send($0) }
                queue.finish(nil)
            } catch {
                queue.finish(error)
            }
        }
        defer { reader.cancel() }
        try await withTaskCancellationHandler {
            while true {
                let first = await queue.receive(max: config.maxBatchSize, until: .now + .seconds(1))
                var batch: [ConsumerRecord]
                switch first {
                case .timedOut: continue
                case let .finished(error):
                    if let error, !Task.isCancelled { throw error }
                    return
                case let .records(r): batch = r
                }
                let deadline = ContinuousClock.now + .milliseconds(config.maxBatchWaitMs)
                fill: while batch.count < config.maxBatchSize {
                    switch await queue.receive(max: config.maxBatchSize - batch.count, until: deadline) {
                    case let .records(more): batch += more
                    case .timedOut, .finished: break fill
                    }
                }
                try await process(batch, dlq: dlq)
                do {
                    try await member.commit(Self.nextOffsets(batch))
                } catch {
                    logger.warning("commit failed", metadata: ["group": "\(c.groupId)", "error": "\(error)"])
                }
            }
        } onCancel: {
            reader.cancel()
            queue.finish(nil)
        }
    }

    /// One past the last record of each partition in the batch.
    static func nextOffsets(_ batch: [ConsumerRecord]) -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for r in batch {
            let tp = TopicPartition(topic: r.topic, partition: r.partition)
            out[tp] = max(out[tp] ?? 0, r.offset + 1)
        }
        return out
    }

    /// Dead letters first (acknowledged), then the good entries in one store call.
    func process(_ batch: [ConsumerRecord], dlq: DeadLetterWriter) async throws {
        let c = config.consumer
        var entries: [AuditEntry] = []
        var dead: [DeadLetter] = []
        for record in batch {
            do {
                entries.append(try AuditEntry.parse(record))
            } catch {
                dead.append(DeadLetter(record: record, error: error.message, reason: error.kind.rawValue, attempts: 0, group: c.groupId))
            }
        }
        if !dead.isEmpty { try await dlq.write(dead) }
        if !entries.isEmpty {
            let toStore = entries
            let inserted = try await retryUntilDone("audit batch insert", backoff: c.storeRetry, logger: logger) {
                try await store.insertBatch(toStore)
            }
            for e in entries {
                EventMetrics.consumed(eventType: e.eventType, group: c.groupId).increment()
                logger.debug("audit event stored", metadata: ["event_id": "\(e.eventId)", "correlation_id": "\(e.correlationId ?? "-")"])
            }
            logger.info("audit batch stored", metadata: ["records": "\(batch.count)", "new": "\(inserted)", "dead_letters": "\(dead.count)"])
        }
        for d in dead {
            EventMetrics.consumed(eventType: d.originalHeaders.first { $0.key == EventHeader.eventType }
                .flatMap { $0.value.map { String(decoding: $0, as: UTF8.self) } } ?? "invalid", group: c.groupId).increment()
        }
    }
}

/// Event sourcing: rebuilds an audit store from a topic, earliest offset to the end as it is when
/// the replay starts (records produced meanwhile are left to the live consumer). Reads partitions
/// directly (no group, no commits).
public enum AuditReplay {
    public struct Report: Sendable, Equatable {
        /// Records read.
        public var records = 0
        /// Entries new to the store.
        public var inserted = 0
        /// Records that are no valid audit event (the live consumer dead-lettered them).
        public var invalid = 0
    }

    public static func run(client: ClientConfig, topic: String, into store: any AuditStore, batchSize: Int = 500,
                           idleTimeoutMs: Int = 15_000, logger: Logger = Logger(label: "hrms.audit-replay")) async throws -> Report {
        var report = Report()
        let retry = Backoff(baseMs: 200, maxMs: 5_000)
        try await TopicReader.readToEnd(client: client, topic: topic, chunkSize: batchSize, idleTimeoutMs: idleTimeoutMs, logger: logger) { records in
            report.records += records.count
            var entries: [AuditEntry] = []
            for r in records {
                if let entry = try? AuditEntry.parse(r) { entries.append(entry) } else { report.invalid += 1 }
            }
            if entries.isEmpty { return }
            let toStore = entries
            report.inserted += try await retryUntilDone("audit replay insert", backoff: retry, logger: logger) {
                try await store.insertBatch(toStore)
            }
        }
        logger.info("audit replay done", metadata: ["topic": "\(topic)", "records": "\(report.records)", "inserted": "\(report.inserted)", "invalid": "\(report.invalid)"])
        return report
    }
}
