import HRMSEvents
import KafkaWire

/// The four topics of the event pipeline (docs/service-settings.md).
public struct EventTopics: Sendable, Equatable {
    public var notification = "notification-queue"
    public var audit = "audit-queue"
    public var notificationDLQ = "notification-dlq"
    public var auditDLQ = "audit-dlq"

    public init() {}

    public func topic(for stream: EventStream) -> String {
        switch stream {
        case .notification: notification
        case .audit: audit
        }
    }

    public var all: [String] { [notification, audit, notificationDLQ, auditDLQ] }

    /// Creates the topics that do not exist yet (a broker without auto-creation, or one that lost
    /// them: an in-memory broker after a restart).
    public func ensureExist(_ client: ClientConfig, partitions: Int32 = 3) async throws(KafkaError) {
        let admin = KafkaAdmin(config: client)
        defer { Task { await admin.close() } }
        try await admin.createTopics(all.map { .init(name: $0, partitions: partitions) }, ignoreExisting: true)
    }
}

/// `EVENT_PUBLISH_MODE`: where the outbox relay sends events.
public enum EventPublishMode: String, Sendable, CaseIterable {
    /// Kafka only (the default); rows older than `OUTBOX_HTTP_FALLBACK_AFTER_MS` go over HTTP.
    case kafka
    /// Kafka and the old HTTP call, for the migration weeks.
    case dual
    /// HTTP only: the rollback plan.
    case http
}

/// The pipeline's settings from the environment (names in docs/service-settings.md).
public struct EventPipelineSettings: Sendable {
    public var client: ClientConfig
    public var topics = EventTopics()
    public var notificationGroup = "notification-service-group"
    public var auditGroup = "audit-service-group"
    public var publishMode = EventPublishMode.kafka
    /// 0: never fall back to HTTP.
    public var httpFallbackAfterMs = 0

    public init(client: ClientConfig) { self.client = client }

    public struct InvalidSetting: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads KAFKA_* (every KafkaWire client setting too, e.g. KAFKA_CLIENT_ID), EVENT_PUBLISH_MODE
    /// and OUTBOX_HTTP_FALLBACK_AFTER_MS; a bad value is an error that names the variable.
    public static func fromEnvironment(_ env: [String: String]) throws(InvalidSetting) -> EventPipelineSettings {
        var client = ClientConfig(bootstrapServers: env["KAFKA_BOOTSTRAP_SERVERS"] ?? "127.0.0.1:9092")
        var clientSettings = KafkaSettings.environment(env).filter { ClientConfig.settingNames.contains($0.key) }
        clientSettings["bootstrap.servers"] = nil
        do {
            try client.apply(clientSettings)
        } catch {
            throw InvalidSetting(description: "\(error)")
        }
        var s = EventPipelineSettings(client: client)
        if let v = env["KAFKA_NOTIFICATION_TOPIC"], !v.isEmpty { s.topics.notification = v }
        if let v = env["KAFKA_AUDIT_TOPIC"], !v.isEmpty { s.topics.audit = v }
        if let v = env["KAFKA_NOTIFICATION_DLQ_TOPIC"], !v.isEmpty { s.topics.notificationDLQ = v }
        if let v = env["KAFKA_AUDIT_DLQ_TOPIC"], !v.isEmpty { s.topics.auditDLQ = v }
        if let v = env["KAFKA_NOTIFICATION_GROUP"], !v.isEmpty { s.notificationGroup = v }
        if let v = env["KAFKA_AUDIT_GROUP"], !v.isEmpty { s.auditGroup = v }
        if let v = env["EVENT_PUBLISH_MODE"], !v.isEmpty {
            guard let mode = EventPublishMode(rawValue: v.lowercased()) else {
                throw InvalidSetting(description: "EVENT_PUBLISH_MODE: expected kafka, dual or http, got \"\(v)\"")
            }
            s.publishMode = mode
        }
        if let v = env["OUTBOX_HTTP_FALLBACK_AFTER_MS"], !v.isEmpty {
            guard let ms = Int(v), ms >= 0 else {
                throw InvalidSetting(description: "OUTBOX_HTTP_FALLBACK_AFTER_MS: expected a non-negative integer, got \"\(v)\"")
            }
            s.httpFallbackAfterMs = ms
        }
        return s
    }
}

/// Exponential backoff: base * 2^(attempt-1), capped.
public struct Backoff: Sendable, Equatable {
    public var baseMs: Int
    public var maxMs: Int

    public init(baseMs: Int, maxMs: Int) {
        self.baseMs = baseMs
        self.maxMs = maxMs
    }

    /// The pause after the `attempt`-th failure (1-based).
    public func delayMs(afterAttempt attempt: Int) -> Int {
        let shift = min(max(attempt - 1, 0), 30)
        let (d, overflow) = baseMs.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? maxMs : min(d, maxMs)
    }

    func sleep(afterAttempt attempt: Int) async throws {
        try await Task.sleep(nanoseconds: UInt64(delayMs(afterAttempt: attempt)) * 1_000_000)
    }
}
