import AsyncHTTPClient
import Foundation
import HRMSEventHTTP
import HRMSEventPipeline
import HRMSEvents
import Logging
import ServiceLifecycle

/// The kit's `outbox` table (SQLite or PostgreSQL) as the relay reads it. The business
/// transactions write the rows (`Transaction.enqueue`); only the relay updates them.
public struct DatabaseOutboxStore: OutboxStore {
    let db: Database

    public init(db: Database) { self.db = db }

    public func fetchPending(limit: Int) async throws -> [OutboxRow] {
        let rows = try await db.query(
            "SELECT seq, event_id, stream, event_type, message_key, payload, correlation_id, source_service, created_at, attempts, http_sent_at FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
            [limit])
        return try rows.map { row in
            let streamName = try row.string("stream")
            guard let stream = EventStream(rawValue: streamName) else {
                throw DatabaseError("outbox row \(row.optionalString("seq") ?? "?"): unknown stream \(streamName)")
            }
            let event = OutboxEvent(
                eventId: try row.string("event_id"), stream: stream, eventType: try row.string("event_type"),
                key: try row.string("message_key"), correlationId: row.optionalString("correlation_id"),
                sourceService: try row.string("source_service"), payload: Array(try row.string("payload").utf8))
            let created = try row.string("created_at")
            return OutboxRow(seq: Int64(try row.int("seq")), event: event,
                             createdAt: EventTime.parse(created) ?? Date(), attempts: row.optionalInt("attempts") ?? 0,
                             httpDelivered: row.optionalString("http_sent_at") != nil)
        }
    }

    public func markSent(_ seqs: [Int64]) async throws {
        let now = Timestamp.now()
        try await update("sent_at = ?, last_error = NULL", [now], where: "seq", in: seqs)
    }

    public func markHTTPDelivered(eventIds: [String], done: Bool) async throws {
        let now = Timestamp.now()
        if done {
            try await update("http_sent_at = ?, sent_at = ?, last_error = NULL", [now, now], where: "event_id", in: eventIds)
        } else {
            try await update("http_sent_at = ?", [now], where: "event_id", in: eventIds)
        }
    }

    /// `UPDATE outbox SET <assignments> WHERE <column> IN (<keys>)`, in chunks that keep the
    /// statement's placeholder count bounded.
    private func update(_ assignments: String, _ values: [any DBBindable], where column: String, in keys: [some DBBindable]) async throws {
        for start in stride(from: 0, to: keys.count, by: 500) {
            let chunk = keys[start..<min(start + 500, keys.count)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            _ = try await db.execute("UPDATE outbox SET \(assignments) WHERE \(column) IN (\(marks))", values + chunk.map { $0 as any DBBindable })
        }
    }

    public func recordFailure(seq: Int64, error: String) async throws {
        _ = try await db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?", [String(error.prefix(1000)), seq])
    }

    public func depth() async throws -> Int {
        try await db.count("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
    }

    public func oldestPendingAge() async throws -> TimeInterval? {
        guard let row = try await db.queryOne("SELECT created_at FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT 1"),
              let created = EventTime.parse(try row.string("created_at")) else { return nil }
        return max(0, Date().timeIntervalSince(created))
    }
}

/// The outbox relay as a companion of the server: relays until graceful shutdown.
struct OutboxRelayService: Service {
    let relay: OutboxRelay<DatabaseOutboxStore>
    let db: Database
    func run() async throws {
        // Companions start beside the server's migrations: the outbox is read once they are done.
        while !db.migrated {
            do { try await Task.sleep(nanoseconds: 50_000_000) } catch { return }
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await relay.run() }
                // The gauges stay current while a round waits on an unreachable broker.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: 1_000_000_000)
                        await relay.refreshStatus()
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }
}

extension HRMSServiceName {
    /// The services whose state changes publish notification and audit events (issue 6).
    public var producesEvents: Bool {
        switch self {
        case .userManagement, .employee, .leave, .attendance, .compliance: true
        case .notification, .audit: false
        }
    }
}

enum OutboxPublishing {
    /// The relay for a producing service, configured from the environment (KAFKA_*, EVENT_PUBLISH_MODE,
    /// OUTBOX_HTTP_FALLBACK_AFTER_MS, OUTBOX_STALLED_AFTER_MS). It connects lazily: a service starts
    /// with no broker at all, and the relay retries until one answers.
    static func makeRelay(config: ServiceConfig, db: Database, tokens: any ServiceTokenSource, http: HTTPClient,
                          logger: Logger) throws(ConfigError) -> OutboxRelay<DatabaseOutboxStore> {
        var values = config.env.values
        // The client id names the service in the broker's logs unless set explicitly.
        if values["KAFKA_CLIENT_ID"]?.isEmpty ?? true { values["KAFKA_CLIENT_ID"] = config.service.serviceName }
        let settings: EventPipelineSettings
        do {
            settings = try EventPipelineSettings.fromEnvironment(values)
        } catch {
            // "NAME: why" names its variable; a KafkaWire client setting error names the setting itself.
            let parts = error.description.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0].allSatisfy({ $0.isUppercase || $0 == "_" }) {
                throw ConfigError(variable: parts[0], reason: parts[1])
            }
            throw ConfigError(variable: "KAFKA_*", reason: error.description)
        }
        var relayConfig = OutboxRelay<DatabaseOutboxStore>.Config(settings: settings, serviceName: config.service.serviceName)
        relayConfig.stalledAfterMs = try config.env.int("OUTBOX_STALLED_AFTER_MS", default: relayConfig.stalledAfterMs, range: 1...86_400_000)
        var fallback: AsyncHTTPEventFallback?
        if settings.publishMode != .kafka || settings.httpFallbackAfterMs > 0 {
            var fc = AsyncHTTPEventFallback.Config(notificationServiceURL: config.serviceURLs[.notification] ?? "",
                                                   auditServiceURL: config.serviceURLs[.audit] ?? "")
            fc.timeoutMs = config.httpClientTimeoutMs
            fc.token = { try await tokens.token() }
            fallback = AsyncHTTPEventFallback(config: fc, client: http, logger: logger)
        }
        return OutboxRelay(config: relayConfig, store: DatabaseOutboxStore(db: db), httpFallback: fallback, logger: logger)
    }

    /// Readiness: a stalled relay is not ready (the detail says how far behind and why).
    static func readiness(_ relay: OutboxRelay<DatabaseOutboxStore>) -> ReadinessCheck {
        {
            await relay.refreshStatus()
            guard case let .stalled(depth, age, lastError) = relay.status else { return nil }
            return "stalled: \(depth) events waiting, oldest \(Int(age))s" + (lastError.map { ", last error: \($0)" } ?? "")
        }
    }
}
