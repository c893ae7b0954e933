import Foundation

// What a consumer accepts: the same rules as schemas/events/*.schema.json (tests_events/ checks the
// events the Swift code makes against those files; EventValidationTests checks these rules reject
// what the schemas reject). A record that fails them is a dead letter, never retried.

/// Why an event was refused.
public struct EventValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The value is not JSON, or not an object.
        case unparseable
        /// JSON, but not a valid event of its stream (missing or mistyped field, unknown type...).
        case schema
        /// A notification without a usable recipient address.
        case noRecipient = "no_recipient"
    }
    public var kind: Kind
    public var message: String
    public var description: String { "\(kind.rawValue): \(message)" }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

public enum EventValidation {
    /// Parses and checks a notification event (the record value).
    public static func notification(_ bytes: [UInt8]) throws(EventValidationError) -> EventEnvelope<NotificationData> {
        let object = try parseObject(bytes)
        try checkEnvelope(object, types: Set(NotificationEventType.allCases.map(\.rawValue)))
        guard case let .object(data)? = object["data"] else { throw .init(.schema, "data must be an object") }
        guard case let .string(email)? = data["recipient_email"] else {
            throw .init(.noRecipient, "data.recipient_email is missing or not a string")
        }
        guard isEmailAddress(email) else { throw .init(.noRecipient, "data.recipient_email \"\(email)\" is not an address") }
        try expect(data, "recipient_name", .stringOrNull)
        try expect(data, "subject", .string, required: true)
        try expect(data, "template_name", .nonEmptyString, required: true)
        try expect(data, "template_data", .object)
        if case let .string(p)? = data["priority"], !["low", "normal", "high"].contains(p) {
            throw .init(.schema, "data.priority must be low, normal or high, got \"\(p)\"")
        }
        try expect(data, "priority", .string)
        return try decode(bytes)
    }

    /// Parses and checks an audit event (the record value).
    public static func audit(_ bytes: [UInt8]) throws(EventValidationError) -> EventEnvelope<AuditData> {
        let object = try parseObject(bytes)
        try checkEnvelope(object, types: Set(AuditEventType.allCases.map(\.rawValue)))
        guard case let .object(data)? = object["data"] else { throw .init(.schema, "data must be an object") }
        try expect(data, "user_id", .stringOrNull)
        try expect(data, "action", .nonEmptyString, required: true)
        try expect(data, "resource_type", .nonEmptyString, required: true)
        try expect(data, "resource_id", .nonEmptyString, required: true)
        for name in ["description", "ip_address", "user_agent"] { try expect(data, name, .stringOrNull) }
        return try decode(bytes)
    }

    // MARK: Rules

    private enum Shape { case string, nonEmptyString, stringOrNull, object }

    private static func expect(_ object: [String: JSONValue], _ name: String, _ shape: Shape, required: Bool = false,
                               prefix: String = "data.") throws(EventValidationError) {
        guard let value = object[name] else {
            if required { throw .init(.schema, "\(prefix)\(name) is required") }
            return
        }
        let ok: Bool
        switch (shape, value) {
        case (.string, .string), (.stringOrNull, .string), (.stringOrNull, .null), (.object, .object): ok = true
        case let (.nonEmptyString, .string(s)): ok = !s.isEmpty
        default: ok = false
        }
        if !ok {
            let what: String
            switch shape {
            case .string: what = "a string"
            case .nonEmptyString: what = "a non-empty string"
            case .stringOrNull: what = "a string or null"
            case .object: what = "an object"
            }
            throw .init(.schema, "\(prefix)\(name) must be \(what)")
        }
    }

    private static func checkEnvelope(_ object: [String: JSONValue], types: Set<String>) throws(EventValidationError) {
        guard case let .string(id)? = object["event_id"], UUID(uuidString: id) != nil else {
            throw .init(.schema, "event_id must be a UUID")
        }
        guard case let .string(type)? = object["event_type"] else { throw .init(.schema, "event_type is required") }
        guard types.contains(type) else { throw .init(.schema, "unknown event_type \"\(type)\" for this stream") }
        guard case let .string(ts)? = object["timestamp"], EventTime.parse(ts) != nil else {
            throw .init(.schema, "timestamp must be an ISO 8601 date-time")
        }
        guard case let .string(source)? = object["source_service"], isKebabCase(source) else {
            throw .init(.schema, "source_service must be kebab-case")
        }
        try expect(object, "correlation_id", .stringOrNull, prefix: "")
        guard object["data"] != nil else { throw .init(.schema, "data is required") }
    }

    private static func parseObject(_ bytes: [UInt8]) throws(EventValidationError) -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw .init(.unparseable, "not JSON (\(bytes.count) bytes)")
        }
        guard case let .object(object) = value else { throw .init(.unparseable, "not a JSON object") }
        return object
    }

    private static func decode<P: Codable & Sendable>(_ bytes: [UInt8]) throws(EventValidationError) -> EventEnvelope<P> {
        do {
            return try JSONDecoder().decode(EventEnvelope<P>.self, from: Data(bytes))
        } catch {
            throw .init(.schema, "does not decode: \(error)")
        }
    }

    static func isKebabCase(_ s: String) -> Bool {
        // ^[a-z0-9]+(-[a-z0-9]+)*$
        !s.isEmpty && s.split(separator: "-", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) }
        }
    }

    /// local@domain with no spaces: what the schema's pattern says (full RFC 5322 is the mail server's job).
    static func isEmailAddress(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
            && !s.contains(where: { $0.isWhitespace })
    }
}
