import Foundation
import HRMSEvents
import KafkaWire
import Logging

/// A message ready to send.
public struct RenderedNotification: Sendable, Equatable {
    public var to: String
    public var toName: String?
    public var subject: String
    public var textBody: String
    public var htmlBody: String?

    public init(to: String, toName: String?, subject: String, textBody: String, htmlBody: String? = nil) {
        self.to = to
        self.toName = toName
        self.subject = subject
        self.textBody = textBody
        self.htmlBody = htmlBody
    }
}

/// Turns an event into a message (the Notification service's templates).
public protocol NotificationRenderer: Sendable {
    /// Throws for an event that cannot be rendered (unknown template, missing field): dead letter.
    func render(eventType: String, data: NotificationData) throws -> RenderedNotification
}

/// Sends a message (SMTP in the Notification service).
public protocol NotificationDeliverer: Sendable {
    /// Throws when the message was not accepted. Errors conforming to `PermanentDeliveryError` are
    /// not retried.
    func deliver(_ message: RenderedNotification, eventId: String) async throws
}

/// A delivery failure no retry can fix (an address the server refuses for good): dead letter at once.
public protocol PermanentDeliveryError: Error {}

/// What happened to one notification event.
public struct NotificationOutcome: Sendable, Equatable {
    public enum Status: String, Sendable {
        case sent
        case deadLettered = "dead_lettered"
    }
    public var eventId: String
    public var eventType: String
    public var sourceService: String
    public var correlationId: String?
    public var recipientEmail: String
    public var subject: String
    /// The rendered text, when rendering succeeded.
    public var body: String?
    public var status: Status
    public var attempts: Int
    public var error: String?
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The event's data as received (recipient name, template, template data for the store).
    public var data: NotificationData
}

/// The Notification service's record of what it did, keyed by event id.
public protocol NotificationStore: Sendable {
    /// Whether this event was already delivered (a redelivered record must not send again). A
    /// dead-lettered event is not "handled": re-published from the DLQ, it is tried again.
    func alreadyHandled(eventId: String) async throws -> Bool
    func recordOutcome(_ outcome: NotificationOutcome) async throws
}

/// The notification consumer (group `notification-service-group`): per record, validate, skip if
/// already delivered, render, deliver with retries (exponential backoff), else dead-letter with the
/// original bytes; the outcome is stored, then the offset committed. Runs inside the Notification
/// service or as a worker (several replicas share the partitions).
public final class NotificationConsumer: Sendable {
    public struct Config: Sendable {
        public var consumer: EventConsumerConfig
        /// Delivery attempts before the record goes to the DLQ.
        public var maxAttempts = 5
        public var retry = Backoff(baseMs: 500, maxMs: 30_000)

        public init(consumer: EventConsumerConfig) { self.consumer = consumer }

        public init(settings: EventPipelineSettings) {
            consumer = EventConsumerConfig(client: settings.client, groupId: settings.notificationGroup,
                                           topic: settings.topics.notification, dlqTopic: settings.topics.notificationDLQ)
        }
    }

    public let config: Config
    let store: any NotificationStore
    let renderer: any NotificationRenderer
    let deliverer: any NotificationDeliverer
    let logger: Logger

    public init(config: Config, store: any NotificationStore, renderer: any NotificationRenderer,
                deliverer: any NotificationDeliverer, logger: Logger = Logger(label: "hrms.notification-consumer")) {
        self.config = config
        self.store = store
        self.renderer = renderer
        self.deliverer = deliverer
        self.logger = logger
    }

    /// Consumes until the task is cancelled; throws only if the group consumer fails for good.
    public func run() async throws {
        let c = config.consumer
        let member = KafkaGroupConsumer(config: c.groupConsumerConfig, topics: [c.topic], logger: logger)
        let dlq = DeadLetterWriter(client: c.client, topic: c.dlqTopic, logger: logger)
        defer { Task { await dlq.close() } }
        logger.info("notification consumer started", metadata: ["group": "\(c.groupId)", "topic": "\(c.topic)"])
        try await consumeUntilCancelled(member) { record in
            try await handle(record, dlq: dlq)
            do {
                try await member.commit(record)
            } catch {
                // The outcome is stored: a redelivery after a rebalance is absorbed by event id.
                logger.warning("commit failed", metadata: ["group": "\(c.groupId)", "error": "\(error)"])
            }
        }
    }

    func handle(_ record: ConsumerRecord, dlq: DeadLetterWriter) async throws {
        let c = config.consumer
        let envelope: EventEnvelope<NotificationData>
        do {
            envelope = try EventValidation.notification(record.value ?? [])
        } catch {
            var log = logger
            log[metadataKey: "event_id"] = "\(headerValue(record, EventHeader.eventId) ?? "-")"
            log.warning("invalid notification event", metadata: ["error": "\(error)", "offset": "\(record.offset)"])
            try await dlq.write([DeadLetter(record: record, error: error.message, reason: error.kind.rawValue, attempts: 0, group: c.groupId)])
            EventMetrics.consumed(eventType: headerValue(record, EventHeader.eventType) ?? "invalid", group: c.groupId).increment()
            return
        }
        var log = logger
        log[metadataKey: "event_id"] = "\(envelope.eventId)"
        log[metadataKey: "correlation_id"] = "\(envelope.correlationId ?? "-")"
        defer { EventMetrics.consumed(eventType: envelope.eventType, group: c.groupId).increment() }

        let handled = try await retryUntilDone("notification store lookup", backoff: c.storeRetry, logger: log) {
            try await store.alreadyHandled(eventId: envelope.eventId)
        }
        if handled {
            log.info("duplicate notification event skipped")
            return
        }
        var outcome = NotificationOutcome(
            eventId: envelope.eventId, eventType: envelope.eventType, sourceService: envelope.sourceService,
            correlationId: envelope.correlationId, recipientEmail: envelope.data.recipientEmail, subject: envelope.data.subject,
            body: nil, status: .sent, attempts: 0, error: nil, topic: record.topic, partition: record.partition, offset: record.offset,
            data: envelope.data)
        let message: RenderedNotification
        do {
            message = try renderer.render(eventType: envelope.eventType, data: envelope.data)
            outcome.body = message.textBody
            outcome.subject = message.subject
        } catch {
            try await deadLetter(record, &outcome, error: "render: \(error)", reason: "render", dlq: dlq, log: log)
            return
        }
        var lastError = ""
        var permanent = false
        while outcome.attempts < config.maxAttempts {
            outcome.attempts += 1
            do {
                try await deliverer.deliver(message, eventId: envelope.eventId)
                try await retryUntilDone("notification store write", backoff: c.storeRetry, logger: log) {
                    try await store.recordOutcome(outcome)
                }
                log.info("notification delivered", metadata: ["attempts": "\(outcome.attempts)", "event_type": "\(envelope.eventType)"])
                return
            } catch let error as CancellationError {
                throw error
            } catch {
                lastError = "\(error)"
                permanent = error is any PermanentDeliveryError
                log.warning("delivery failed", metadata: ["attempt": "\(outcome.attempts)", "error": "\(error)", "permanent": "\(permanent)"])
                if permanent || outcome.attempts >= config.maxAttempts { break }
                EventMetrics.consumerRetries(group: c.groupId).increment()
                try await config.retry.sleep(afterAttempt: outcome.attempts)
            }
        }
        try await deadLetter(record, &outcome, error: "delivery: \(lastError)", reason: permanent ? "delivery_permanent" : "delivery",
                             dlq: dlq, log: log)
    }

    private func deadLetter(_ record: ConsumerRecord, _ outcome: inout NotificationOutcome, error: String, reason: String,
                            dlq: DeadLetterWriter, log: Logger) async throws {
        try await dlq.write([DeadLetter(record: record, error: error, reason: reason, attempts: outcome.attempts, group: config.consumer.groupId)])
        outcome.status = .deadLettered
        outcome.error = error
        let stored = outcome
        try await retryUntilDone("notification store write", backoff: config.consumer.storeRetry, logger: log) {
            try await store.recordOutcome(stored)
        }
    }
}

func headerValue(_ record: ConsumerRecord, _ name: String) -> String? {
    record.headers.first { $0.key == name }?.value.map { String(decoding: $0, as: UTF8.self) }
}
