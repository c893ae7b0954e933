import Foundation
import HRMSEvents
import KafkaWire
import Logging
import Metrics

/// A record a consumer gave up on, as it travels in a DLQ topic: the original key and value bytes
/// untouched, the original headers, plus `dlq.*` headers saying what went wrong and where the
/// record came from (so it can be inspected and re-published: `kwire dlq`).
public struct DeadLetter: Sendable, Equatable {
    public var key: [UInt8]?
    public var value: [UInt8]?
    /// The original record's headers (without `dlq.*` ones).
    public var originalHeaders: [RecordHeader]
    public var error: String
    /// `unparseable`, `schema`, `no_recipient`, `render`, `delivery`...
    public var reason: String
    /// Delivery attempts made (0 when the record was refused before any).
    public var attempts: Int
    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    public var originalTimestamp: Int64
    /// Milliseconds since the epoch.
    public var failedAt: Int64
    public var consumerGroup: String

    public enum Header {
        public static let prefix = "dlq."
        public static let error = "dlq.error"
        public static let reason = "dlq.reason"
        public static let attempts = "dlq.attempts"
        public static let originalTopic = "dlq.original.topic"
        public static let originalPartition = "dlq.original.partition"
        public static let originalOffset = "dlq.original.offset"
        public static let originalTimestamp = "dlq.original.timestamp"
        public static let failedAt = "dlq.failed_at"
        public static let group = "dlq.group"
    }

    public init(record: ConsumerRecord, error: String, reason: String, attempts: Int, group: String, failedAt: Date = Date()) {
        key = record.key
        value = record.value
        originalHeaders = record.headers.filter { !$0.key.hasPrefix(Header.prefix) }
        self.error = error
        self.reason = reason
        self.attempts = attempts
        originalTopic = record.topic
        originalPartition = record.partition
        originalOffset = record.offset
        originalTimestamp = record.timestamp
        self.failedAt = Int64(failedAt.timeIntervalSince1970 * 1000)
        consumerGroup = group
    }

    /// The record to write to `dlqTopic`.
    public func producerRecord(topic dlqTopic: String) -> ProducerRecord {
        func h(_ k: String, _ v: String) -> RecordHeader { RecordHeader(key: k, value: Array(v.utf8)) }
        let headers = originalHeaders + [
            h(Header.error, error), h(Header.reason, reason), h(Header.attempts, String(attempts)),
            h(Header.originalTopic, originalTopic), h(Header.originalPartition, String(originalPartition)),
            h(Header.originalOffset, String(originalOffset)), h(Header.originalTimestamp, String(originalTimestamp)),
            h(Header.failedAt, String(failedAt)), h(Header.group, consumerGroup),
        ]
        // Same key: the dead letters of one entity stay in order in the DLQ too.
        return ProducerRecord(topic: dlqTopic, key: key, value: value, headers: headers)
    }

    /// Reads a DLQ record back; nil if it lacks the `dlq.*` headers that say where it came from.
    public init?(deadLetterRecord r: ConsumerRecord) {
        var fields: [String: String] = [:]
        for header in r.headers where header.key.hasPrefix(Header.prefix) {
            fields[header.key] = header.value.map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        guard let topic = fields[Header.originalTopic],
              let partition = fields[Header.originalPartition].flatMap({ Int32($0) }),
              let offset = fields[Header.originalOffset].flatMap({ Int64($0) }) else { return nil }
        key = r.key
        value = r.value
        originalHeaders = r.headers.filter { !$0.key.hasPrefix(Header.prefix) }
        error = fields[Header.error] ?? ""
        reason = fields[Header.reason] ?? ""
        attempts = fields[Header.attempts].flatMap { Int($0) } ?? 0
        originalTopic = topic
        originalPartition = partition
        originalOffset = offset
        originalTimestamp = fields[Header.originalTimestamp].flatMap { Int64($0) } ?? -1
        failedAt = fields[Header.failedAt].flatMap { Int64($0) } ?? -1
        consumerGroup = fields[Header.group] ?? ""
    }

    /// The record to write back to the original topic: key, value and headers as they were.
    public var republishRecord: ProducerRecord {
        ProducerRecord(topic: originalTopic, key: key, value: value, headers: originalHeaders)
    }

    /// The original record's `event_id` header, if it had one.
    public var eventId: String? {
        originalHeaders.first { $0.key == EventHeader.eventId }?.value.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Writes dead letters with acks=all and retries until the broker has them: a consumer commits the
/// original record's offset only after its dead letter is safe.
final class DeadLetterWriter: Sendable {
    let producer: KafkaProducer
    let topic: String
    let logger: Logger
    let retry: Backoff

    init(client: ClientConfig, topic: String, logger: Logger, retry: Backoff = Backoff(baseMs: 200, maxMs: 5_000)) {
        var config = ProducerConfig(client: client)
        config.acks = .all
        config.lingerMs = 1
        config.deliveryTimeoutMs = 15_000
        config.maxBlockMs = 15_000
        producer = KafkaProducer(config: config, logger: logger)
        self.topic = topic
        self.logger = logger
        self.retry = retry
    }

    /// Writes all of them (in order), retrying failed ones until they succeed or the task is cancelled.
    func write(_ letters: [DeadLetter]) async throws {
        var pending = letters
        var attempt = 0
        while !pending.isEmpty {
            let results = await producer.send(pending.map { $0.producerRecord(topic: topic) })
            var failed: [DeadLetter] = []
            for (letter, result) in zip(pending, results) {
                switch result {
                case .success:
                    EventMetrics.dlqRecords(topic: topic).increment()
                    logger.warning("dead-lettered", metadata: [
                        "event_id": "\(letter.eventId ?? "-")", "dlq": "\(topic)", "reason": "\(letter.reason)",
                        "error": "\(letter.error)", "attempts": "\(letter.attempts)",
                        "original": "\(letter.originalTopic)/\(letter.originalPartition)@\(letter.originalOffset)",
                    ])
                case let .failure(error):
                    failed.append(letter)
                    logger.warning("dead letter not written yet, retrying", metadata: ["dlq": "\(topic)", "error": "\(error)"])
                }
            }
            pending = failed
            if pending.isEmpty { return }
            attempt += 1
            try await retry.sleep(afterAttempt: attempt)
        }
    }

    func close() async { await producer.close(timeoutMs: 5_000) }
}
