import HRMSEvents

/// Why a template could not be rendered. Never a crash: the notification is recorded as failed with this text.
public enum TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownTemplate(String)
    case missingKey(template: String, key: String)
    case malformed(template: String, detail: String)

    public var description: String {
        switch self {
        case .unknownTemplate(let name): "unknown template \(name)"
        case .missingKey(let template, let key): "template \(template) needs template_data.\(key)"
        case .malformed(let template, let detail): "template \(template) is malformed: \(detail)"
        }
    }
}

/// A rendered email: subject, plain text, and HTML with every substituted value escaped.
public struct RenderedMail: Sendable, Equatable {
    public var subject: String
    public var text: String
    public var html: String

    public init(subject: String, text: String, html: String) {
        self.subject = subject
        self.text = text
        self.html = html
    }
}

/// A template: subject and body with `{{key}}` (required) and `{{key?}}` (optional, empty when absent)
/// placeholders over `template_data`. Parsed once, so a broken template fails at load, not per mail.
public struct MailTemplate: Sendable {
    enum Piece: Sendable, Equatable {
        case literal(String)
        case value(key: String, optional: Bool)
    }

    public let name: String
    let subject: [Piece]
    let body: [Piece]

    public init(name: String, subject: String, body: String) throws(TemplateError) {
        self.name = name
        self.subject = try Self.parse(subject, template: name)
        self.body = try Self.parse(body, template: name)
    }

    /// The keys the template cannot do without.
    public var requiredKeys: Set<String> {
        Set((subject + body).compactMap { if case .value(let key, false) = $0 { key } else { nil } })
    }

    static func parse(_ source: String, template: String) throws(TemplateError) -> [Piece] {
        var pieces: [Piece] = []
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { pieces.append(.literal(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw .malformed(template: template, detail: "unclosed {{")
            }
            var key = rest[open.upperBound..<close.lowerBound]
            let optional = key.hasSuffix("?")
            if optional { key = key.dropLast() }
            guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw .malformed(template: template, detail: "bad placeholder {{\(key)}}")
            }
            pieces.append(.value(key: String(key), optional: optional))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { pieces.append(.literal(String(rest))) }
        return pieces
    }

    public func render(_ data: [String: JSONValue]) throws(TemplateError) -> RenderedMail {
        let subjectText = try fill(subject, data, escape: { $0 })
        let text = try fill(body, data, escape: { $0 })
        let htmlBody = try fill(body, data, escape: Self.escapeHTML)
        // Paragraphs from blank lines, <br> within; the literal template text is ours and plain.
        let paragraphs = htmlBody.components(separatedBy: "\n\n")
            .map { "<p>" + $0.replacingOccurrences(of: "\n", with: "<br>\n") + "</p>" }
        let html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(Self.escapeHTML(subjectText))</title></head>\n<body>\n"
            + paragraphs.joined(separator: "\n") + "\n</body></html>\n"
        return RenderedMail(subject: subjectText.map { $0.isNewline ? " " : String($0) }.joined(), text: text, html: html)
    }

    private func fill(_ pieces: [Piece], _ data: [String: JSONValue], escape: (String) -> String) throws(TemplateError)
        -> String
    {
        var out = ""
        for piece in pieces {
            switch piece {
            case .literal(let text): out += text
            case .value(let key, let optional):
                if let value = data[key].flatMap(Self.text) {
                    out += escape(value)
                } else if !optional {
                    throw .missingKey(template: name, key: key)
                }
            }
        }
        return out
    }

    /// Scalars as text; arrays joined with ", "; null counts as absent; objects as compact JSON-ish text.
    static func text(_ value: JSONValue) -> String? {
        switch value {
        case .null: nil
        case .string(let s): s
        case .bool(let b): b ? "yes" : "no"
        case .number(let n):
            n.rounded() == n && abs(n) < 9.007_199_254_740_992e15 ? String(Int64(n)) : String(n)
        case .array(let items): items.compactMap(text).joined(separator: ", ")
        case .object(let fields):
            fields.keys.sorted().map { "\($0): \(fields[$0].flatMap(text) ?? "")" }.joined(separator: ", ")
        }
    }

    static func escapeHTML(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// The built-in templates, by the names events carry in `template_name`. Every template can use `name`
/// (the recipient's name; the Notification service fills it from `recipient_name` when absent).
public struct MailTemplates: Sendable {
    public let templates: [String: MailTemplate]

    public init(_ templates: [MailTemplate]) {
        self.templates = Dictionary(templates.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func render(_ name: String, data: [String: JSONValue]) throws(TemplateError) -> RenderedMail {
        guard let template = templates[name] else { throw .unknownTemplate(name) }
        return try template.render(data)
    }

    public var names: [String] { templates.keys.sorted() }

    /// (name, subject, body) of the built-ins; parsed (and so checked) by `builtIn`.
    static let sources: [(String, String, String)] = [
        ("account_created", "Welcome to HRMS, {{name}}",
         "Hello {{name}},\n\nyour HRMS account {{email}} has been created. You can sign in now.\n{{employee_id?}}\n\nThe HR team"),
        ("password_changed", "Your HRMS password was changed",
         "Hello {{name}},\n\nthe password of your HRMS account {{email}} was changed {{changed_at?}}.\nIf this was not you, contact HR at once.\n\nThe HR team"),
        ("account_suspended", "Your HRMS account is suspended",
         "Hello {{name}},\n\nyour HRMS account {{email}} has been suspended.\nReason: {{reason}}\n\nThe HR team"),
        ("account_activated", "Your HRMS account is active again",
         "Hello {{name}},\n\nyour HRMS account {{email}} is active again.\n\nThe HR team"),
        ("account_deleted", "Your HRMS account was deleted",
         "Hello {{name}},\n\nyour HRMS account {{email}} has been deleted. {{reason?}}\n\nThe HR team"),
        ("role_changed", "Your HRMS role is now {{role}}",
         "Hello {{name}},\n\nyour HRMS role changed to {{role}}.\n\nThe HR team"),
        ("employee_created", "Your employee record was created",
         "Hello {{name}},\n\nyour employee record {{employee_id}} was created. Department: {{department?}}, position: {{position?}}.\n\nThe HR team"),
        ("employee_updated", "Your employee record was updated",
         "Hello {{name}},\n\nyour employee record {{employee_id}} was updated. {{changes?}}\n\nThe HR team"),
        ("leave_requested", "Leave request received: {{leave_type}} {{start_date}} to {{end_date}}",
         "Hello {{name}},\n\nyour {{leave_type}} leave request from {{start_date}} to {{end_date}} was received and awaits approval.\nRequest: {{leave_id?}}\n\nThe HR team"),
        ("leave_approved", "Leave approved: {{leave_type}} {{start_date}} to {{end_date}}",
         "Hello {{name}},\n\nyour {{leave_type}} leave from {{start_date}} to {{end_date}} was approved by {{approved_by}}.\n\nThe HR team"),
        ("leave_rejected", "Leave rejected: {{leave_type}} {{start_date}} to {{end_date}}",
         "Hello {{name}},\n\nyour {{leave_type}} leave request from {{start_date}} to {{end_date}} was rejected.\nReason: {{rejection_reason}}\n\nThe HR team"),
        ("leave_cancelled", "Leave cancelled: {{leave_type}} {{start_date}} to {{end_date}}",
         "Hello {{name}},\n\nyour {{leave_type}} leave from {{start_date}} to {{end_date}} was cancelled.\n\nThe HR team"),
        ("attendance_marked", "Attendance recorded for {{date}}: {{status}}",
         "Hello {{name}},\n\nyour attendance for {{date}} was recorded as {{status}}.\nCheck-in: {{check_in_time?}}\nCheck-out: {{check_out_time?}}\n\nThe HR team"),
        ("compliance_violation", "Compliance violation: {{policy_name}}",
         "Hello {{name}},\n\na check of policy {{policy_name}} found violations:\n{{violations}}\n\nThe compliance team"),
    ]

    /// Built-ins are literals checked by the tests, so a parse failure here is a programming error.
    public static let builtIn: MailTemplates = {
        var parsed: [MailTemplate] = []
        for (name, subject, body) in sources {
            do { parsed.append(try MailTemplate(name: name, subject: subject, body: body)) } catch {
                preconditionFailure("built-in template \(name): \(error)")
            }
        }
        return MailTemplates(parsed)
    }()
}
