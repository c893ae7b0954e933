import Foundation
import HRMSEvents

// One event of every type, made the way the services' outboxes make them, one JSON object a line:
// {"meta": {"stream", "key"}, "headers": {...}, "value": <the envelope>}. tests_events/ validates
// each value against schemas/events/.
//
// `hrms-event-samples validate notification|audit` instead reads one event a line from stdin and
// prints `ok` or `invalid <reason>: <message>` a line: what the Swift consumers make of it.
if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "validate" {
    let stream = CommandLine.arguments[2]
    while let line = readLine(strippingNewline: true) {
        do {
            if stream == "audit" { _ = try EventValidation.audit(Array(line.utf8)) } else { _ = try EventValidation.notification(Array(line.utf8)) }
            print("ok")
        } catch {
            print("invalid \(error.kind.rawValue): \(error.message)")
        }
    }
    exit(0)
}

let when = Date(timeIntervalSince1970: 1_795_800_000.123)

func emit(_ e: OutboxEvent) {
    let value = String(decoding: e.payload, as: UTF8.self)
    var headers: [String: String] = ["event_type": e.eventType, "source_service": e.sourceService, "event_id": e.eventId]
    headers["correlation_id"] = e.correlationId
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let meta = String(decoding: try! encoder.encode(["stream": e.stream.rawValue, "key": e.key]), as: UTF8.self)
    let h = String(decoding: try! encoder.encode(headers), as: UTF8.self)
    print(#"{"meta":\#(meta),"headers":\#(h),"value":\#(value)}"#)
}

for (i, type) in NotificationEventType.allCases.enumerated() {
    emit(.notification(type, key: "entity-\(i)", source: "user-management-service", correlationId: i % 2 == 0 ? "corr-\(i)" : nil,
                       data: NotificationData(recipientEmail: "ada@example.com", recipientName: i % 3 == 0 ? nil : "Ada Lovelace",
                                              subject: "Subject \(type.rawValue)", templateName: type.rawValue.replacingOccurrences(of: ".", with: "_"),
                                              templateData: ["first_name": "Ada", "days": 3, "approved": true, "ratio": 0.5, "tags": ["a", "b"]],
                                              priority: ["low", "normal", "high"][i % 3]), at: when))
}
for (i, type) in AuditEventType.allCases.enumerated() {
    emit(.audit(type, key: "entity-\(i)", source: "leave-service", correlationId: i % 2 == 0 ? "corr-\(i)" : nil,
                data: AuditData(userId: i % 4 == 0 ? nil : "user-\(i)", action: String(type.rawValue.split(separator: ".").last!),
                                resourceType: String(type.rawValue.split(separator: ".")[1]), resourceId: "res-\(i)",
                                description: i % 2 == 0 ? "did \(type.rawValue)" : nil, ipAddress: "10.0.0.\(i)", userAgent: "curl/8",
                                oldValue: i % 2 == 0 ? ["status": "pending"] : nil, newValue: ["status": "approved"],
                                changes: i % 2 == 0 ? ["status": ["from": "pending", "to": "approved"]] : nil), at: when))
}
