import AsyncHTTPClient
import Foundation
import HRMSEventPipeline
import HRMSEvents
import Logging
import NIOCore

/// The outbox's HTTP path (`dual` and `http` modes, and the `kafka` mode's fallback): the old
/// synchronous calls, `POST /api/v1/notifications/email` {event_id, to, recipient_name, subject, template, data} on the
/// Notification service and `POST /api/v1/audit-logs` {event_id, user_id, action, resource_type, resource_id,
/// description, old_value, new_value, ip_address, user_agent} on the Audit service. Each call carries
/// `X-Correlation-ID`, and the event id (`event_id` in the body, which both endpoints store idempotently,
/// and `X-Event-ID`/`Idempotency-Key`) so that a receiver drops the duplicates a fallback can cause.
public final class AsyncHTTPEventFallback: HTTPEventFallback {
    public struct Config: Sendable {
        /// `NOTIFICATION_SERVICE_URL`
        public var notificationServiceURL: String
        /// `AUDIT_SERVICE_URL`
        public var auditServiceURL: String
        /// `HTTP_CLIENT_TIMEOUT_MS`
        public var timeoutMs = 3_000
        /// The bearer token of this service's account (service-to-service calls carry one); nil: none.
        public var token: (@Sendable () async throws -> String?)?

        public init(notificationServiceURL: String, auditServiceURL: String) {
            self.notificationServiceURL = notificationServiceURL
            self.auditServiceURL = auditServiceURL
        }

        /// From the environment names of docs/service-settings.md, with their local defaults.
        public static func fromEnvironment(_ env: [String: String]) -> Config {
            var c = Config(notificationServiceURL: env["NOTIFICATION_SERVICE_URL"] ?? "http://127.0.0.1:8004",
                           auditServiceURL: env["AUDIT_SERVICE_URL"] ?? "http://127.0.0.1:8005")
            if let ms = env["HTTP_CLIENT_TIMEOUT_MS"].flatMap({ Int($0) }), ms > 0 { c.timeoutMs = ms }
            return c
        }
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let config: Config
    let client: HTTPClient
    let logger: Logger

    public init(config: Config, client: HTTPClient = .shared, logger: Logger = Logger(label: "hrms.outbox-http")) {
        self.config = config
        self.client = client
        self.logger = logger
    }

    public func deliver(_ event: OutboxEvent) async throws {
        let (url, body) = try Self.request(for: event, config)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Event-ID", value: event.eventId)
        request.headers.add(name: "Idempotency-Key", value: event.eventId)
        if let c = event.correlationId { request.headers.add(name: "X-Correlation-ID", value: c) }
        if let token = try await config.token?() { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .milliseconds(Int64(config.timeoutMs)), logger: logger)
        let answer = try await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(response.status.code) else {
            throw Failure(description: "POST \(url): \(response.status.code) \(String(buffer: answer).prefix(200))")
        }
        logger.debug("event delivered over HTTP", metadata: ["event_id": "\(event.eventId)", "correlation_id": "\(event.correlationId ?? "-")", "url": "\(url)"])
    }

    /// The URL and JSON body the old endpoint takes for this event.
    public static func request(for event: OutboxEvent, _ config: Config) throws -> (url: String, body: [UInt8]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        switch event.stream {
        case .notification:
            let e = try JSONDecoder().decode(EventEnvelope<NotificationData>.self, from: Data(event.payload))
            let body: JSONValue = [
                "event_id": .string(event.eventId), "to": .string(e.data.recipientEmail), "subject": .string(e.data.subject),
                "recipient_name": e.data.recipientName.map { .string($0) } ?? .null,
                "template": .string(e.data.templateName), "data": .object(e.data.templateData),
            ]
            return (join(config.notificationServiceURL, "/api/v1/notifications/email"), Array(try encoder.encode(body)))
        case .audit:
            let e = try JSONDecoder().decode(EventEnvelope<AuditData>.self, from: Data(event.payload))
            let d = e.data
            let body: JSONValue = [
                "event_id": .string(event.eventId), "user_id": d.userId.map { .string($0) } ?? .null, "action": .string(d.action),
                "resource_type": .string(d.resourceType), "resource_id": .string(d.resourceId),
                "description": d.description.map { .string($0) } ?? .null,
                "old_value": d.oldValue ?? .null, "new_value": d.newValue ?? .null,
                "ip_address": d.ipAddress.map { .string($0) } ?? .null, "user_agent": d.userAgent.map { .string($0) } ?? .null,
            ]
            return (join(config.auditServiceURL, "/api/v1/audit-logs"), Array(try encoder.encode(body)))
        }
    }

    private static func join(_ base: String, _ path: String) -> String {
        (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
    }
}
