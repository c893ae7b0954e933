import Foundation
import HRMSEvents
import KafkaWire
import Logging
import Synchronization

/// One pending outbox row: the event as the service wrote it in its business transaction.
public struct OutboxRow: Sendable, Hashable {
    /// The row's position in the outbox (increasing in commit order): rows are relayed in this order.
    public var seq: Int64
    public var event: OutboxEvent
    public var createdAt: Date
    /// Failed relay attempts so far.
    public var attempts: Int
    /// `dual` mode: the synchronous HTTP call made in the request succeeded (Kafka is still due).
    public var httpDelivered: Bool

    public init(seq: Int64, event: OutboxEvent, createdAt: Date, attempts: Int = 0, httpDelivered: Bool = false) {
        self.seq = seq
        self.event = event
        self.createdAt = createdAt
        self.attempts = attempts
        self.httpDelivered = httpDelivered
    }
}

/// The service's outbox table, as the relay needs it (the service kit implements it over SQLite
/// or PostgreSQL; the events are inserted by the business transactions themselves).
public protocol OutboxStore: Sendable {
    /// Unsent rows, lowest `seq` first.
    func fetchPending(limit: Int) async throws -> [OutboxRow]
    /// The broker (or the HTTP endpoint) has these rows: never relay them again.
    func markSent(_ seqs: [Int64]) async throws
    /// A relay attempt failed; the row stays pending.
    func recordFailure(seq: Int64, error: String) async throws
    /// The request's synchronous HTTP call delivered these events (`http`/`dual` modes); with
    /// `done` (the `http` mode) they are sent, otherwise Kafka is still due.
    func markHTTPDelivered(eventIds: [String], done: Bool) async throws
    /// Number of unsent rows.
    func depth() async throws -> Int
    /// Age of the oldest unsent row; nil when there is none.
    func oldestPendingAge() async throws -> TimeInterval?
}

/// The old synchronous endpoints (`POST /api/v1/notifications/email`, `POST /api/v1/audit-logs`)
/// for the `dual` and `http` modes and the fallback of the `kafka` mode. HRMSEventHTTP has the
/// async-http-client implementation.
public protocol HTTPEventFallback: Sendable {
    /// Delivers the event; throws unless the endpoint accepted it (2xx).
    func deliver(_ event: OutboxEvent) async throws
}

/// Relays outbox rows to Kafka in `seq` order and marks them sent only once the broker has them
/// (acks=all for audit events; all for notifications too unless configured otherwise). A row that
/// fails stays pending and is tried again after a backoff: the broker being down delays events,
/// it never loses them. Call `poke()` after a transaction that wrote outbox rows to relay them
/// without waiting for the next poll.
public final class OutboxRelay<Store: OutboxStore>: Sendable {
    public struct Config: Sendable {
        public var settings: EventPipelineSettings
        /// The service's kebab-case name, the `service` label of the outbox metrics.
        public var serviceName: String
        /// Rows per round.
        public var batchSize = 200
        /// Polls this often when nobody pokes.
        public var pollIntervalMs = 1_000
        /// Pause after a failed round: base, doubled per consecutive failure, capped.
        public var retry = Backoff(baseMs: 200, maxMs: 10_000)
        /// `acks` for notification events; audit events always use all.
        public var notificationAcks = Acks.all
        /// Status `stalled` when rows have waited longer than this and no row was sent for as long.
        public var stalledAfterMs = 60_000
        /// Give up on a Kafka send (the row stays pending) after this long.
        public var deliveryTimeoutMs = 15_000

        public init(settings: EventPipelineSettings, serviceName: String) {
            self.settings = settings
            self.serviceName = serviceName
        }
    }

    /// For readiness: `stalled` means rows wait and nothing has been sent for `stalledAfterMs`.
    public enum Status: Sendable, Equatable {
        case idle
        case relaying(depth: Int, oldestAgeSeconds: Double)
        case stalled(depth: Int, oldestAgeSeconds: Double, lastError: String?)

        public var isStalled: Bool { if case .stalled = self { true } else { false } }
    }

    public let config: Config
    let store: Store
    let fallback: (any HTTPEventFallback)?
    let logger: Logger
    private let wakeup = Wakeup()
    private let producers: (notification: KafkaProducer, audit: KafkaProducer)

    private struct Progress {
        var depth = 0
        var oldestAge: TimeInterval?
        var lastProgress = Date()
        var lastError: String?
        var lastTopicCreation: Date?
    }
    private let progress = Mutex(Progress())

    public init(config: Config, store: Store, httpFallback: (any HTTPEventFallback)? = nil,
                logger: Logger = Logger(label: "hrms.outbox-relay")) {
        self.config = config
        self.store = store
        fallback = httpFallback
        self.logger = logger
        func producer(_ acks: Acks) -> KafkaProducer {
            var pc = ProducerConfig(client: config.settings.client)
            pc.acks = acks
            pc.lingerMs = 2
            pc.deliveryTimeoutMs = config.deliveryTimeoutMs
            pc.maxBlockMs = config.deliveryTimeoutMs
            // One request in flight: a retried batch cannot be overtaken by a later one.
            pc.maxInFlightPerConnection = 1
            return KafkaProducer(config: pc, logger: logger)
        }
        producers = (producer(config.notificationAcks), producer(.all))
    }

    /// Relay now rather than at the next poll.
    public func poke() { wakeup.poke() }

    /// After a commit that wrote `events`: pokes the relay (`kafka`), or first makes the old
    /// stack's synchronous HTTP calls (`http`, `dual`: the request waits for them, as it did). A
    /// failed call is logged and left to the relay, which repeats it: the event is never lost, and
    /// the business change (committed) never fails because of it.
    public func committed(_ events: [OutboxEvent]) async {
        let mode = config.settings.publishMode
        if mode == .dual { poke() }  // Kafka meanwhile
        if mode != .kafka, let fallback {
            var delivered: [String] = []
            for event in events {
                do {
                    try await fallback.deliver(event)
                    delivered.append(event.eventId)
                    EventMetrics.httpDelivered(eventType: event.eventType).increment()
                } catch {
                    logger.warning("synchronous event call failed, the relay repeats it", metadata: [
                        "event_id": "\(event.eventId)", "correlation_id": "\(event.correlationId ?? "-")", "error": "\(error)",
                    ])
                }
            }
            if !delivered.isEmpty {
                do {
                    try await store.markHTTPDelivered(eventIds: delivered, done: mode == .http)
                } catch {
                    // Unmarked: the relay calls again, the endpoints take an event id once.
                    logger.error("marking outbox rows delivered failed", metadata: ["error": "\(error)"])
                }
            }
        }
        if mode != .dual { poke() }
    }

    public var status: Status {
        progress.withLock { p in
            guard p.depth > 0, let age = p.oldestAge else { return .idle }
            let stalledFor = Date().timeIntervalSince(p.lastProgress) * 1000
            if age * 1000 >= Double(config.stalledAfterMs) && stalledFor >= Double(config.stalledAfterMs) {
                return .stalled(depth: p.depth, oldestAgeSeconds: age, lastError: p.lastError)
            }
            return .relaying(depth: p.depth, oldestAgeSeconds: age)
        }
    }

    /// Relays until the task is cancelled, then closes the producers (what they hold is either
    /// acknowledged, and marked sent, or left pending).
    public func run() async {
        logger.info("outbox relay started", metadata: ["mode": "\(config.settings.publishMode.rawValue)", "service": "\(config.serviceName)"])
        // A round may be waiting on an unreachable broker (up to deliveryTimeoutMs): on cancellation
        // close the producers at once, so that wait ends (its rows stay pending) and shutdown is prompt.
        await withTaskCancellationHandler {
            await relayUntilCancelled()
        } onCancel: { [producers, wakeup] in
            wakeup.poke()  // a round waiting out its retry delay ends it now
            Task {
                async let notification: [UndeliveredRecord] = producers.notification.close(timeoutMs: 2_000)
                async let audit: [UndeliveredRecord] = producers.audit.close(timeoutMs: 2_000)
                _ = await (notification, audit)
            }
        }
        await producers.notification.close(timeoutMs: 2_000)
        await producers.audit.close(timeoutMs: 2_000)
        logger.info("outbox relay stopped", metadata: ["service": "\(config.serviceName)"])
    }

    private func relayUntilCancelled() async {
        var failures = 0
        while !Task.isCancelled {
            let outcome = await round()
            await refreshGauges()
            switch outcome {
            case .idle:
                failures = 0
                await wakeup.wait(timeoutMs: config.pollIntervalMs)
            case .progressed(let full):
                failures = 0
                if !full { await wakeup.wait(timeoutMs: config.pollIntervalMs) }
            case .failed:
                failures += 1
                await wakeup.wait(timeoutMs: config.retry.delayMs(afterAttempt: failures))
            }
        }
    }

    enum RoundOutcome: Equatable {
        case idle
        /// Every row of the round went out; `full`: the round was a whole batch (there may be more).
        case progressed(full: Bool)
        case failed
    }

    /// One round: fetch pending rows, send them, mark the ones acknowledged. Public for tests and
    /// for a service that drives the relay itself.
    @discardableResult
    public func relayOnce() async -> Bool {
        await round() != .failed
    }

    private func round() async -> RoundOutcome {
        let rows: [OutboxRow]
        do {
            rows = try await store.fetchPending(limit: config.batchSize)
        } catch {
            note(error: "outbox read: \(error)")
            logger.error("outbox read failed", metadata: ["error": "\(error)"])
            return .failed
        }
        if rows.isEmpty { return .idle }
        let mode = config.settings.publishMode
        let now = Date()
        let fallbackAfter = Double(config.settings.httpFallbackAfterMs) / 1000
        var sent: [Int64] = []
        var failures: [(OutboxRow, String)] = []

        // Kafka first (in seq order, one send of the whole round), then HTTP where the mode says so.
        var viaKafka: [OutboxRow] = []
        var viaHTTP: [OutboxRow] = []
        for row in rows {
            switch mode {
            case .http:
                viaHTTP.append(row)
            case .dual:
                viaKafka.append(row)
            case .kafka:
                if fallback != nil, fallbackAfter > 0, now.timeIntervalSince(row.createdAt) >= fallbackAfter {
                    viaHTTP.append(row)
                } else {
                    viaKafka.append(row)
                }
            }
        }
        var kafkaOK = Set<Int64>()
        var missingTopic = false
        if !viaKafka.isEmpty {
            for (row, result) in zip(viaKafka, await publish(viaKafka)) {
                switch result {
                case .success: kafkaOK.insert(row.seq)
                case let .failure(error):
                    failures.append((row, "kafka: \(error)"))
                    missingTopic = missingTopic || Self.isMissingTopic(error)
                }
            }
        }
        if missingTopic { await createTopics() }
        // dual: the HTTP call too (unless the request's call succeeded), for the rows Kafka has; the
        // row is sent once both have it (a retry may publish it to Kafka again: the consumers absorb
        // duplicates by event_id).
        if mode == .dual {
            sent += viaKafka.filter { kafkaOK.contains($0.seq) && $0.httpDelivered }.map(\.seq)
            viaHTTP = viaKafka.filter { kafkaOK.contains($0.seq) && !$0.httpDelivered }
        } else { sent += viaKafka.map(\.seq).filter { kafkaOK.contains($0) } }
        for row in viaHTTP {
            guard let fallback else {
                failures.append((row, "http: no HTTP client configured for mode \(mode.rawValue)"))
                continue
            }
            do {
                try await fallback.deliver(row.event)
                sent.append(row.seq)
                EventMetrics.httpDelivered(eventType: row.event.eventType).increment()
            } catch {
                failures.append((row, "http: \(error)"))
            }
        }
        sent.sort()
        do {
            if !sent.isEmpty { try await store.markSent(sent) }
        } catch {
            // Sent but not marked: they will go again; the consumers absorb the duplicates.
            note(error: "outbox mark sent: \(error)")
            logger.error("marking outbox rows sent failed", metadata: ["error": "\(error)", "rows": "\(sent.count)"])
            return .failed
        }
        for (row, error) in failures {
            try? await store.recordFailure(seq: row.seq, error: error)
        }
        if !sent.isEmpty { progress.withLock { $0.lastProgress = Date() } }
        if let (row, error) = failures.first {
            note(error: error)
            logger.warning("outbox rows not relayed, will retry", metadata: [
                "failed": "\(failures.count)", "sent": "\(sent.count)", "event_id": "\(row.event.eventId)",
                "correlation_id": "\(row.event.correlationId ?? "-")", "error": "\(error)",
            ])
            return .failed
        }
        return .progressed(full: rows.count >= config.batchSize)
    }

    static func isMissingTopic(_ error: KafkaError) -> Bool {
        switch error {
        case .unknownTopicOrPartition: true
        case let .broker(code, _): code == .unknownTopicOrPartition
        default: false
        }
    }

    /// The broker does not have a topic (one without auto-creation that lost them: an in-memory
    /// broker restarted): the relay creates the pipeline's topics, at most every few seconds, and
    /// the rows go at the next round. A broker that refuses (no CREATE right, topics managed by
    /// the Strimzi topic operator) is only logged.
    private func createTopics() async {
        let due = progress.withLock { p in
            if let last = p.lastTopicCreation, Date().timeIntervalSince(last) < 5 { return false }
            p.lastTopicCreation = Date()
            return true
        }
        guard due else { return }
        do {
            try await config.settings.topics.ensureExist(config.settings.client)
            logger.notice("the broker did not have the pipeline's topics: created them", metadata: ["topics": "\(config.settings.topics.all)"])
        } catch {
            logger.warning("creating the pipeline's topics failed", metadata: ["error": "\(error)"])
        }
    }

    private func publish(_ rows: [OutboxRow]) async -> [Result<RecordMetadata, KafkaError>] {
        // Notification and audit rows go through their own producers (acks differ), each in seq order.
        var results = [Result<RecordMetadata, KafkaError>?](repeating: nil, count: rows.count)
        await withTaskGroup(of: [(Int, Result<RecordMetadata, KafkaError>)].self) { group in
            for stream in EventStream.allCases {
                let indexed = rows.enumerated().filter { $0.element.event.stream == stream }
                if indexed.isEmpty { continue }
                let producer = stream == .audit ? producers.audit : producers.notification
                let topic = config.settings.topics.topic(for: stream)
                group.addTask {
                    let out = await producer.send(indexed.map { Self.record($0.element.event, topic: topic) })
                    return zip(indexed.map(\.offset), out).map { ($0, $1) }
                }
            }
            for await part in group { for (i, r) in part { results[i] = r } }
        }
        for (row, result) in zip(rows, results) where (try? result?.get()) != nil {
            EventMetrics.produced(eventType: row.event.eventType, topic: config.settings.topics.topic(for: row.event.stream)).increment()
            logger.debug("event published", metadata: ["event_id": "\(row.event.eventId)", "correlation_id": "\(row.event.correlationId ?? "-")", "event_type": "\(row.event.eventType)"])
        }
        return results.map { $0 ?? .failure(.closed) }
    }

    /// The record for an outbox event: key = the entity id, value = the envelope's bytes, headers
    /// for routing without parsing.
    public static func record(_ event: OutboxEvent, topic: String) -> ProducerRecord {
        var headers = [
            RecordHeader(key: EventHeader.eventType, value: Array(event.eventType.utf8)),
            RecordHeader(key: EventHeader.source, value: Array(event.sourceService.utf8)),
            RecordHeader(key: EventHeader.eventId, value: Array(event.eventId.utf8)),
        ]
        if let c = event.correlationId { headers.append(RecordHeader(key: EventHeader.correlationId, value: Array(c.utf8))) }
        return ProducerRecord(topic: topic, key: Array(event.key.utf8), value: event.payload, headers: headers)
    }

    private func note(error: String) {
        progress.withLock { $0.lastError = error }
    }

    /// Reads the outbox's depth and age into `status` and the gauges. The relay does so after each
    /// round; call it too when a round may be long (a send to an unreachable broker waits up to the
    /// delivery timeout), e.g. before answering readiness.
    public func refreshStatus() async { await refreshGauges() }

    private func refreshGauges() async {
        let depth: Int
        let age: TimeInterval?
        do {
            depth = try await store.depth()
            age = try await store.oldestPendingAge()
        } catch {
            return
        }
        progress.withLock { p in
            p.depth = depth
            p.oldestAge = age
            if depth == 0 { p.lastProgress = Date() }
        }
        EventMetrics.outboxDepth(service: config.serviceName).record(depth)
        EventMetrics.outboxOldestAge(service: config.serviceName).record(age ?? 0)
    }
}
