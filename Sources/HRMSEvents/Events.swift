import Foundation

// The event contract between the HRMS services (producers, through their outbox) and the Notification
// and Audit consumers. Field names are those of the old Python stack's consumers: keep them.
// JSON Schemas for every event live in schemas/events/ and tests check produced events against them.

/// Which topic an event goes to (the topic's name comes from KAFKA_NOTIFICATION_TOPIC / KAFKA_AUDIT_TOPIC).
public enum EventStream: String, Codable, Sendable, CaseIterable {
    case notification
    case audit
}

/// The envelope every event travels in, as the record value (JSON).
public struct EventEnvelope<Payload: Codable & Sendable>: Codable, Sendable {
    public var eventId: String
    public var eventType: String
    /// ISO 8601, UTC, milliseconds: `2026-11-27T17:10:00.123Z`.
    public var timestamp: String
    /// kebab-case: `user-management-service`.
    public var sourceService: String
    public var correlationId: String?
    public var data: Payload

    enum CodingKeys: String, CodingKey {
        case eventId = "event_id", eventType = "event_type", timestamp, sourceService = "source_service"
        case correlationId = "correlation_id", data
    }

    public init(eventId: String = UUID().uuidString.lowercased(), eventType: String, timestamp: Date = Date(),
                sourceService: String, correlationId: String?, data: Payload) {
        self.eventId = eventId
        self.eventType = eventType
        self.timestamp = EventTime.format(timestamp)
        self.sourceService = sourceService
        self.correlationId = correlationId
        self.data = data
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(eventId, forKey: .eventId)
        try c.encode(eventType, forKey: .eventType)
        try c.encode(timestamp, forKey: .timestamp)
        try c.encode(sourceService, forKey: .sourceService)
        try c.encode(correlationId, forKey: .correlationId)   // null when absent, never omitted
        try c.encode(data, forKey: .data)
    }
}

public enum EventTime {
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }
    public static func parse(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt).parse(text))
            ?? (try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(text))
    }
}

/// `data` of a notification event.
public struct NotificationData: Codable, Sendable, Hashable {
    public var recipientEmail: String
    public var recipientName: String?
    public var subject: String
    public var templateName: String
    public var templateData: [String: JSONValue]
    /// low, normal or high.
    public var priority: String

    enum CodingKeys: String, CodingKey {
        case recipientEmail = "recipient_email", recipientName = "recipient_name", subject
        case templateName = "template_name", templateData = "template_data", priority
    }

    public init(recipientEmail: String, recipientName: String?, subject: String, templateName: String,
                templateData: [String: JSONValue], priority: String = "normal") {
        self.recipientEmail = recipientEmail
        self.recipientName = recipientName
        self.subject = subject
        self.templateName = templateName
        self.templateData = templateData
        self.priority = priority
    }

    /// The old Python producers could leave out recipient_name, template_data and priority.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        recipientEmail = try c.decode(String.self, forKey: .recipientEmail)
        recipientName = try c.decodeIfPresent(String.self, forKey: .recipientName)
        subject = try c.decode(String.self, forKey: .subject)
        templateName = try c.decode(String.self, forKey: .templateName)
        templateData = try c.decodeIfPresent([String: JSONValue].self, forKey: .templateData) ?? [:]
        priority = try c.decodeIfPresent(String.self, forKey: .priority) ?? "normal"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(recipientEmail, forKey: .recipientEmail)
        try c.encode(recipientName, forKey: .recipientName)
        try c.encode(subject, forKey: .subject)
        try c.encode(templateName, forKey: .templateName)
        try c.encode(templateData, forKey: .templateData)
        try c.encode(priority, forKey: .priority)
    }
}

/// `data` of an audit event.
public struct AuditData: Codable, Sendable, Hashable {
    public var userId: String?
    public var action: String
    public var resourceType: String
    public var resourceId: String
    public var description: String?
    public var ipAddress: String?
    public var userAgent: String?
    public var oldValue: JSONValue?
    public var newValue: JSONValue?
    public var changes: JSONValue?

    enum CodingKeys: String, CodingKey {
        case userId = "user_id", action, resourceType = "resource_type", resourceId = "resource_id", description
        case ipAddress = "ip_address", userAgent = "user_agent", oldValue = "old_value", newValue = "new_value"
        case changes
    }

    public init(userId: String?, action: String, resourceType: String, resourceId: String, description: String? = nil,
                ipAddress: String? = nil, userAgent: String? = nil, oldValue: JSONValue? = nil,
                newValue: JSONValue? = nil, changes: JSONValue? = nil) {
        self.userId = userId
        self.action = action
        self.resourceType = resourceType
        self.resourceId = resourceId
        self.description = description
        self.ipAddress = ipAddress
        self.userAgent = userAgent
        self.oldValue = oldValue
        self.newValue = newValue
        self.changes = changes
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(userId, forKey: .userId)
        try c.encode(action, forKey: .action)
        try c.encode(resourceType, forKey: .resourceType)
        try c.encode(resourceId, forKey: .resourceId)
        try c.encode(description, forKey: .description)
        try c.encode(ipAddress, forKey: .ipAddress)
        try c.encode(userAgent, forKey: .userAgent)
        try c.encode(oldValue, forKey: .oldValue)
        try c.encode(newValue, forKey: .newValue)
        try c.encode(changes, forKey: .changes)
    }
}

/// Notification event types (the record header `event_type` and the envelope's `event_type`).
public enum NotificationEventType: String, Codable, Sendable, CaseIterable {
    case userCreated = "user.created"
    case userPasswordChanged = "user.password_changed"
    case userSuspended = "user.suspended"
    case userActivated = "user.activated"
    case userDeleted = "user.deleted"
    case userRoleChanged = "user.role_changed"
    case employeeCreated = "employee.created"
    case employeeUpdated = "employee.updated"
    case leaveRequested = "leave.requested"
    case leaveApproved = "leave.approved"
    case leaveRejected = "leave.rejected"
    case leaveCancelled = "leave.cancelled"
    case attendanceMarked = "attendance.marked"
    case complianceViolation = "compliance.violation"
}

/// Audit event types: one per kind of state change a service makes.
public enum AuditEventType: String, Codable, Sendable, CaseIterable {
    case userCreate = "audit.user.create"
    case userUpdate = "audit.user.update"
    case userDelete = "audit.user.delete"
    case userLogin = "audit.user.login"
    case userRoleChange = "audit.user.role_change"
    case userSuspend = "audit.user.suspend"
    case userActivate = "audit.user.activate"
    case userPasswordChange = "audit.user.password_change"
    case employeeCreate = "audit.employee.create"
    case employeeUpdate = "audit.employee.update"
    case employeeDelete = "audit.employee.delete"
    case leaveCreate = "audit.leave.create"
    case leaveApprove = "audit.leave.approve"
    case leaveReject = "audit.leave.reject"
    case leaveCancel = "audit.leave.cancel"
    case attendanceMark = "audit.attendance.mark"
    case attendanceUpdate = "audit.attendance.update"
    case complianceCheck = "audit.compliance.check"
    case complianceCreate = "audit.compliance.create"
    case complianceUpdate = "audit.compliance.update"
    case complianceDelete = "audit.compliance.delete"
}

/// Record header names: consumers route on them without parsing the JSON value.
public enum EventHeader {
    public static let eventType = "event_type"
    public static let source = "source_service"
    public static let correlationId = "correlation_id"
    public static let eventId = "event_id"
}

/// One event ready for the outbox: where it goes, its record key, and the envelope's exact bytes.
public struct OutboxEvent: Sendable, Hashable {
    public var eventId: String
    public var stream: EventStream
    public var eventType: String
    /// The id of the entity the event is about, so one entity's events stay in order (one partition).
    public var key: String
    public var correlationId: String?
    public var sourceService: String
    /// The envelope as JSON (UTF-8), exactly what the record value will be.
    public var payload: [UInt8]

    /// An event read back from an outbox table.
    public init(eventId: String, stream: EventStream, eventType: String, key: String, correlationId: String?,
                sourceService: String, payload: [UInt8]) {
        self.eventId = eventId
        self.stream = stream
        self.eventType = eventType
        self.key = key
        self.correlationId = correlationId
        self.sourceService = sourceService
        self.payload = payload
    }

    public static func notification(_ type: NotificationEventType, key: String, source: String, correlationId: String?,
                                    data: NotificationData, at date: Date = Date()) -> OutboxEvent {
        make(.notification, type: type.rawValue, key: key, source: source, correlationId: correlationId, data: data, at: date)
    }

    public static func audit(_ type: AuditEventType, key: String, source: String, correlationId: String?,
                             data: AuditData, at date: Date = Date()) -> OutboxEvent {
        make(.audit, type: type.rawValue, key: key, source: source, correlationId: correlationId, data: data, at: date)
    }

    static func make<P: Codable & Sendable>(_ stream: EventStream, type: String, key: String, source: String,
                                            correlationId: String?, data: P, at date: Date) -> OutboxEvent {
        let envelope = EventEnvelope(eventType: type, timestamp: date, sourceService: source,
                                     correlationId: correlationId, data: data)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these value types cannot fail (no floats that are NaN; strings and dictionaries only).
        let bytes = (try? encoder.encode(envelope)).map { Array($0) } ?? []
        return OutboxEvent(eventId: envelope.eventId, stream: stream, eventType: type, key: key,
                           correlationId: correlationId, sourceService: source, payload: bytes)
    }
}
