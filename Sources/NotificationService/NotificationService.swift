import Foundation
import HRMSEventPipeline
import HRMSMail
import HRMSServiceKit
import HRMSServiceSupport

public enum NotificationStatus: String, APIEnum { case pending, sent, failed }

public struct NotificationRecord: Codable, Sendable, Equatable, NullEncodingRecord {
    public var id: String
    public var event_id: String
    public var employee_id: String?
    public var recipient_email: String
    public var recipient_name: String?
    public var subject: String
    public var template: String
    public var template_data: [String: JSONValue]
    public var status: NotificationStatus
    /// `smtp`, or `outbox` when no SMTP server is configured (kept as delivered in DATA_DIR/outbox).
    public var channel: String
    public var attempts: Int
    public var last_error: String?
    /// For a failed notification: whether trying again may help (4xx, connection trouble) or not (5xx).
    public var retryable: Bool
    public var created_at: String
    public var sent_at: String?

    init(row: DBRow) throws {
        id = try row.string("id")
        event_id = try row.string("event_id")
        employee_id = row.optionalString("employee_id")
        recipient_email = try row.string("recipient_email")
        recipient_name = row.optionalString("recipient_name")
        subject = try row.string("subject")
        template = try row.string("template")
        template_data = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(try row.string("template_data").utf8))) ?? [:]
        guard let s = NotificationStatus(rawValue: try row.string("status")) else { throw DatabaseError("bad notification status") }
        status = s
        channel = try row.string("channel")
        attempts = try row.int("attempts")
        last_error = row.optionalString("last_error")
        retryable = try row.bool("retryable")
        created_at = try row.string("created_at")
        sent_at = row.optionalString("sent_at")
    }
}

struct EmailRequest: Decodable {
    var to: String
    var subject: String
    var template: String
    var data: [String: JSONValue]?
    var recipient_name: String?
    var employee_id: String?
    /// Set by services sending an event over HTTP (issue 6's fallback): the same event is sent once.
    var event_id: String?
}

struct NotificationList: Encodable, Sendable {
    var total: Int
    var offset: Int
    var limit: Int
    var items: [NotificationRecord]
}

/// Where mail goes: a real SMTP server (SMTP_URL) or, with none configured, files in DATA_DIR/outbox.
public struct Mailer: Sendable {
    enum Route: Sendable {
        case smtp(SMTPClient)
        case outbox(URL)
    }

    let route: Route
    let from: MailAddress
    public var channel: String { if case .smtp = route { "smtp" } else { "outbox" } }

    public init(config: ServiceConfig) throws {
        from = MailAddress(config.env.string("SMTP_FROM", default: "hrms@localhost"), name: "HRMS")
        _ = try from.checked()
        if let url = config.env.string("SMTP_URL") {
            do {
                route = .smtp(SMTPClient(configuration: try SMTPConfiguration(url: url)))
            } catch {
                throw MailSettingError(variable: "SMTP_URL", reason: "\(error)")
            }
        } else {
            route = .outbox(URL(fileURLWithPath: config.dataDir).appendingPathComponent("outbox"))
        }
    }

    /// Sends one message; the error says whether trying again may help.
    func deliver(id: String, to: MailAddress, mail: RenderedMail, eventId: String) async throws(MailError) {
        let message = MailMessage(from: from, to: [to], subject: mail.subject, text: mail.text, html: mail.html,
                                  headers: [("X-HRMS-Notification-Id", id), ("X-HRMS-Event-Id", eventId)])
        switch route {
        case .smtp(let client):
            try await client.send(message)
        case .outbox(let folder):
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try Data(try message.rendered()).write(to: folder.appendingPathComponent("\(id).eml"), options: .atomic)
            } catch let error as MailError {
                throw error
            } catch {
                throw .connectionFailed("local outbox: \(error)")
            }
        }
    }
}

/// A bad SMTP_URL or SMTP_FROM: the service refuses to start and names the variable.
struct MailSettingError: Error, CustomStringConvertible {
    var variable: String
    var reason: String
    var description: String { "configuration: \(variable): \(reason)" }
}

extension MailAddress {
    func checked() throws -> MailAddress {
        do { _ = try MailMessage(from: self, to: [self], subject: "", text: "").rendered() } catch {
            throw MailSettingError(variable: "SMTP_FROM", reason: "\(error)")
        }
        return self
    }
}

public enum NotificationService {
    static let senders: Set<Role> = [.admin, .hrManager, .service]
    static let readers: Set<Role> = [.admin, .hrManager, .service]

    public static let migrations: [Migration] = [
        Migration(1, "notifications", [
            """
            CREATE TABLE notifications (id TEXT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, employee_id TEXT,
            recipient_email TEXT NOT NULL, recipient_name TEXT, subject TEXT NOT NULL, template TEXT NOT NULL,
            template_data TEXT NOT NULL, status TEXT NOT NULL, channel TEXT NOT NULL, attempts BIGINT NOT NULL,
            last_error TEXT, retryable BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, sent_at TEXT)
            """,
            "CREATE INDEX notifications_status ON notifications (status, created_at)",
            "CREATE INDEX notifications_employee ON notifications (employee_id, created_at)",
        ]),
        // Notifications made from events (issue 6) keep their event's type and correlation id.
        Migration(2, "notification_events", [
            "ALTER TABLE notifications ADD COLUMN event_type TEXT",
            "ALTER TABLE notifications ADD COLUMN correlation_id TEXT",
        ]),
    ]

    /// The definition needs the settings (SMTP_URL), so the executable uses `HRMSApp.main(.notification, make)`.
    /// `.worker`: the notification consumer with the kit's health and metrics routes only.
    public static func definition(_ config: ServiceConfig, mode: ServiceMode = .serve) throws -> ServiceDefinition {
        let mailer = try Mailer(config: config)
        // Read now, so that a bad setting stops the start with a line naming it.
        let consumerConfig = try mode.runsConsumer(config, enabledVariable: "NOTIFICATION_CONSUMER_ENABLED") ? try consumerSettings(config) : nil
        return ServiceDefinition(
            name: .notification, migrations: migrations,
            openAPI: mode == .worker ? OpenAPIDocument(title: "HRMS Notification worker", paths: [:], schemas: [:]) : openAPI,
            routes: { router, env in if mode == .serve { routes(router, env, mailer: mailer) } },
            services: { env in
                guard let consumerConfig, let pipeline = try? EventPipelineSettings.fromEnvironment(config.env.values) else { return [] }
                let consumer = makeConsumer(consumerConfig, env: env, mailer: mailer)
                return [ConsumerService("notification consumer", logger: env.logger) {
                    // A broker that lost its topics (in-memory, restarted) gets them back first.
                    try await pipeline.topics.ensureExist(pipeline.client)
                    try await consumer.run()
                }]
            })
    }

    static func fetch(_ db: some DBExecutor, _ id: String) async throws -> NotificationRecord {
        guard let row = try await db.queryOne("SELECT * FROM notifications WHERE id = ?", [id]) else {
            throw APIError.notFound("notification \(id) not found")
        }
        return try NotificationRecord(row: row)
    }

    /// Renders `template` over `data` (the recipient's name filling `name` when absent); 422 on a bad template.
    static func render(_ template: String, data: [String: JSONValue], recipientName: String?, subject: String) throws -> RenderedMail {
        var data = data
        if data["name"] == nil || data["name"] == .null { data["name"] = .string(recipientName ?? "colleague") }
        do {
            let mail = try MailTemplates.builtIn.render(template, data: data)
            // The caller's subject wins (the old API's contract); the template gives the body.
            return RenderedMail(subject: subject.isEmpty ? mail.subject : subject, text: mail.text, html: mail.html)
        } catch .unknownTemplate(let name) {
            throw APIError.unprocessable("template: '\(name)' is not one of \(MailTemplates.builtIn.names.joined(separator: ", "))")
        } catch {
            throw APIError.unprocessable("\(error)")
        }
    }

    /// One delivery attempt of a stored notification; records the outcome.
    @discardableResult
    static func attempt(_ record: NotificationRecord, mail: RenderedMail, mailer: Mailer, db: Database) async throws -> NotificationRecord {
        var error: MailError?
        do {
            try await mailer.deliver(id: record.id, to: MailAddress(record.recipient_email, name: record.recipient_name),
                                     mail: mail, eventId: record.event_id)
        } catch let failure {
            error = failure
        }
        let now = Timestamp.now()
        try await db.execute(
            "UPDATE notifications SET status = ?, attempts = attempts + 1, last_error = ?, retryable = ?, updated_at = ?, sent_at = ? WHERE id = ?",
            [error == nil ? "sent" : "failed", error.map { "\($0)" }, error?.isRetryable ?? false, now, error == nil ? now : nil,
             record.id])
        return try await fetch(db, record.id)
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment, mailer: Mailer) {
        let api = router.group("api/v1/notifications")
        let db = env.db

        api.post("email") { request, context -> JSONResponse<NotificationRecord> in
            try context.requireRoles(senders)
            let input = try await request.decode(as: EmailRequest.self, context: context)
            let to = try Validate.email(input.to, "to")
            let subject = try Validate.nonEmpty(input.subject, "subject", max: 255)
            let name = try Validate.optional(input.recipient_name, "recipient_name", max: 255)
            let employeeId = try input.employee_id.map { value -> String in
                guard let uuid = UUID(uuidString: value) else { throw APIError.unprocessable("employee_id: expected a UUID") }
                return uuid.uuidString.lowercased()
            }
            let eventId = try input.event_id.map { value -> String in
                guard let uuid = UUID(uuidString: value) else { throw APIError.unprocessable("event_id: expected a UUID") }
                return uuid.uuidString.lowercased()
            } ?? UUID().uuidString.lowercased()
            let data = input.data ?? [:]
            let mail = try render(input.template, data: data, recipientName: name, subject: subject)
            let dataText = String(decoding: try JSONEncoder.sorted.encode(data), as: UTF8.self)
            let id = UUID().uuidString.lowercased()
            let now = Timestamp.now()
            let (record, fresh) = try await db.transaction { tx -> (NotificationRecord, Bool) in
                if let row = try await tx.queryOne("SELECT * FROM notifications WHERE event_id = ?", [eventId]) {
                    return (try NotificationRecord(row: row), false)   // this event was already taken: send nothing twice
                }
                try await tx.execute(
                    "INSERT INTO notifications (id, event_id, employee_id, recipient_email, recipient_name, subject, template, template_data, status, channel, attempts, retryable, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, 0, 0, ?, ?)",
                    [id, eventId, employeeId, to, name, subject, input.template, dataText, mailer.channel, now, now])
                return (try await fetch(tx, id), true)
            }
            if fresh {
                // 202: the request is recorded; delivery happens after the answer.
                let logger = context.logger
                Task {
                    do { try await attempt(record, mail: mail, mailer: mailer, db: db) } catch {
                        logger.error("recording a delivery failed", metadata: ["notification_id": "\(record.id)", "error": "\(error)"])
                    }
                }
            }
            return JSONResponse(record, status: .accepted)
        }

        api.get { request, context -> JSONResponse<NotificationList> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            let status = try Query.enumValue(request, "status", as: NotificationStatus.self)
            if let status { return JSONResponse(try await list(" WHERE status = ?", [status.rawValue], page, db)) }
            return JSONResponse(try await list("", [], page, db))
        }

        api.get(":id") { _, context -> JSONResponse<NotificationRecord> in
            try context.requireRoles(readers)
            return JSONResponse(try await fetch(db, try Validate.id(context.parameters.get("id"), "notification")))
        }

        api.get("employee/:employee_id") { request, context -> JSONResponse<NotificationList> in
            let identity = try context.requireIdentity()
            let employeeId = try Validate.id(context.parameters.get("employee_id"), "employee")
            if identity.employeeId != employeeId { try context.requireRoles(readers) }
            return JSONResponse(try await list(" WHERE employee_id = ?", [employeeId], try Pagination(request), db))
        }

        api.put(":id/retry") { _, context -> JSONResponse<NotificationRecord> in
            try context.requireRoles(senders)
            let record = try await fetch(db, try Validate.id(context.parameters.get("id"), "notification"))
            guard record.status == .failed else {
                throw APIError.conflict("notification \(record.id) is \(record.status.rawValue); only failed ones are retried")
            }
            let mail = try render(record.template, data: record.template_data, recipientName: record.recipient_name,
                                  subject: record.subject)
            return JSONResponse(try await attempt(record, mail: mail, mailer: mailer, db: db))
        }
    }

    static func list(_ filter: String, _ binds: [any DBBindable], _ page: Pagination, _ db: Database) async throws -> NotificationList {
        let total = try await db.count("SELECT COUNT(*) AS n FROM notifications" + filter, binds)
        let rows = try await db.query("SELECT * FROM notifications\(filter) ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                                      binds + [page.limit, page.offset])
        return NotificationList(total: total, offset: page.offset, limit: page.limit, items: try rows.map(NotificationRecord.init))
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
