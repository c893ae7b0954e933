import Foundation
import HRMSServiceKit
import HRMSServiceSupport
import HRMSEventPipeline

/// One audit entry as served. `old_value`, `new_value` and `changes` are any JSON.
public struct AuditEntry: Codable, Sendable, Equatable, NullEncodingRecord {
    public var id: String
    public var event_id: String
    public var user_id: String?
    public var action: String
    public var resource_type: String
    public var resource_id: String
    public var description: String?
    public var old_value: JSONValue?
    public var new_value: JSONValue?
    public var changes: JSONValue?
    public var ip_address: String?
    public var user_agent: String?
    public var service_name: String
    public var correlation_id: String?
    public var created_at: String

    init(row: DBRow) throws {
        func json(_ column: String) -> JSONValue? {
            row.optionalString(column).flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        }
        id = try row.string("id")
        event_id = try row.string("event_id")
        user_id = row.optionalString("user_id")
        action = try row.string("action")
        resource_type = try row.string("resource_type")
        resource_id = try row.string("resource_id")
        description = row.optionalString("description")
        old_value = json("old_value")
        new_value = json("new_value")
        changes = json("changes")
        ip_address = row.optionalString("ip_address")
        user_agent = row.optionalString("user_agent")
        service_name = try row.string("service_name")
        correlation_id = row.optionalString("correlation_id")
        created_at = try row.string("created_at")
    }
}

struct AuditCreate: Decodable {
    var user_id: String?
    var action: String
    var resource_type: String
    var resource_id: String
    var description: String?
    var old_value: JSONValue?
    var new_value: JSONValue?
    var changes: JSONValue?
    var ip_address: String?
    var user_agent: String?
    /// Set by services replaying an event (issue 6's HTTP fallback): the same event is stored once.
    var event_id: String?
    var service_name: String?
}

struct AuditList: Encodable, Sendable {
    var total: Int
    var offset: Int
    var limit: Int
    var items: [AuditEntry]
}

public enum AuditService {
    static let writers: Set<Role> = [.admin, .service]
    static let readers: Set<Role> = [.admin, .complianceOfficer, .hrManager, .service]

    public static let migrations: [Migration] = [
        Migration(1, "audit_logs", [
            """
            CREATE TABLE audit_logs (id TEXT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, user_id TEXT, action TEXT NOT NULL,
            resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, description TEXT, old_value TEXT, new_value TEXT,
            changes TEXT, ip_address TEXT, user_agent TEXT, service_name TEXT NOT NULL, correlation_id TEXT,
            created_at TEXT NOT NULL)
            """,
            "CREATE INDEX audit_logs_user ON audit_logs (user_id, created_at)",
            "CREATE INDEX audit_logs_created ON audit_logs (created_at)",
            "CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id)",
        ])
    ]

    public static var definition: ServiceDefinition {
        ServiceDefinition(name: .audit, migrations: migrations, openAPI: openAPI, routes: routes)
    }

    /// The service (`.serve`: the API, and the audit consumer when AUDIT_CONSUMER_ENABLED and a broker
    /// is configured) or the worker (`.worker`: the consumer with health and metrics routes only).
    public static func definition(_ config: ServiceConfig, mode: ServiceMode) throws -> ServiceDefinition {
        let consumerConfig = try mode.runsConsumer(config, enabledVariable: "AUDIT_CONSUMER_ENABLED") ? try consumerSettings(config) : nil
        return ServiceDefinition(
            name: .audit, migrations: migrations,
            openAPI: mode == .worker ? OpenAPIDocument(title: "HRMS Audit worker", paths: [:], schemas: [:]) : openAPI,
            routes: { router, env in if mode == .serve { routes(router, env) } },
            services: { env in
                guard let consumerConfig, let pipeline = try? EventPipelineSettings.fromEnvironment(config.env.values) else { return [] }
                let consumer = makeConsumer(consumerConfig, env: env)
                return [ConsumerService("audit consumer", logger: env.logger) {
                    // A broker that lost its topics (in-memory, restarted) gets them back first.
                    try await pipeline.topics.ensureExist(pipeline.client)
                    try await consumer.run()
                }]
            })
    }

    static func jsonText(_ value: JSONValue?) -> String? {
        guard let value, value != .null else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Stores one entry unless its event_id is already stored (idempotent, also against a concurrent
    /// insert of the same event: ON CONFLICT DO NOTHING); returns the stored entry and whether it is
    /// new. The Audit consumer and the replay store through here too, with `id` = the event id so
    /// that a replayed store equals the live one.
    public static func store(_ data: AuditData, eventId: String, serviceName: String, correlationId: String?,
                             id: String = UUID().uuidString.lowercased(), at createdAt: String = Timestamp.now(),
                             in db: some DBExecutor) async throws -> (entry: AuditEntry, inserted: Bool) {
        // RETURNING says whether this statement inserted: the id alone cannot (the consumer uses the
        // event id as the entry id, so a duplicate record would look new and be counted twice).
        let inserted = try await db.query(
            "INSERT INTO audit_logs (id, event_id, user_id, action, resource_type, resource_id, description, old_value, new_value, changes, ip_address, user_agent, service_name, correlation_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING id",
            [id, eventId, data.userId, data.action, data.resourceType, data.resourceId, data.description,
             jsonText(data.oldValue), jsonText(data.newValue), jsonText(data.changes), data.ipAddress, data.userAgent,
             serviceName, correlationId, createdAt])
        guard let row = try await db.queryOne("SELECT * FROM audit_logs WHERE event_id = ?", [eventId]) else {
            throw DatabaseError("audit entry vanished after insert")
        }
        return (try AuditEntry(row: row), !inserted.isEmpty)
    }

    /// `YYYY-MM-DD` plus one day, for an inclusive end_date over ISO timestamps.
    static func dayAfter(_ date: String) -> String {
        let format = Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day()
        guard let day = try? format.parse(date) else { return date }
        return format.format(day.addingTimeInterval(86_400))
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment) {
        let api = router.group("api/v1/audit-logs")
        let db = env.db

        api.post { request, context -> JSONResponse<AuditEntry> in
            let caller = try context.requireRoles(writers)
            let input = try await request.decode(as: AuditCreate.self, context: context)
            let data = AuditData(
                userId: try Validate.optional(input.user_id, "user_id", max: 255),
                action: try Validate.nonEmpty(input.action, "action", max: 100),
                resourceType: try Validate.nonEmpty(input.resource_type, "resource_type", max: 100),
                resourceId: try Validate.nonEmpty(input.resource_id, "resource_id", max: 255),
                description: try Validate.optional(input.description, "description", max: 4000),
                ipAddress: try Validate.optional(input.ip_address, "ip_address", max: 64),
                userAgent: try Validate.optional(input.user_agent, "user_agent", max: 1000),
                oldValue: input.old_value, newValue: input.new_value, changes: input.changes)
            let eventId: String
            if let given = input.event_id {
                guard let uuid = UUID(uuidString: given) else { throw APIError.unprocessable("event_id: expected a UUID") }
                eventId = uuid.uuidString.lowercased()
            } else {
                eventId = UUID().uuidString.lowercased()
            }
            let service = try input.service_name.map { try Validate.nonEmpty($0, "service_name", max: 100) }
                ?? (caller.isService ? caller.subject : "api")
            let entry = try await db.transaction { tx in
                try await store(data, eventId: eventId, serviceName: service, correlationId: context.correlationId, in: tx).entry
            }
            return JSONResponse(entry, status: .created)
        }

        api.get { request, context -> JSONResponse<AuditList> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            var clauses: [String] = []
            var binds: [any DBBindable] = []
            for (parameter, column) in [("user_id", "user_id"), ("action", "action"), ("resource_type", "resource_type"),
                                        ("service_name", "service_name")] {
                if let value = Query.string(request, parameter) { clauses.append("\(column) = ?"); binds.append(value) }
            }
            if let start = try Query.date(request, "start_date") { clauses.append("created_at >= ?"); binds.append(start) }
            if let end = try Query.date(request, "end_date") { clauses.append("created_at < ?"); binds.append(dayAfter(end)) }
            return JSONResponse(try await list(clauses, binds, page, db))
        }

        api.get(":id") { _, context -> JSONResponse<AuditEntry> in
            try context.requireRoles(readers)
            let id = try Validate.id(context.parameters.get("id"), "audit entry")
            guard let row = try await db.queryOne("SELECT * FROM audit_logs WHERE id = ?", [id]) else {
                throw APIError.notFound("audit entry \(id) not found")
            }
            return JSONResponse(try AuditEntry(row: row))
        }

        api.get("user/:user_id") { request, context -> JSONResponse<AuditList> in
            let identity = try context.requireIdentity()
            let userId = try Validate.nonEmpty(context.parameters.get("user_id") ?? "", "user_id", max: 255)
            // A person may read their own trail; others need a reader role.
            if identity.subject != userId { try context.requireRoles(readers) }
            return JSONResponse(try await list(["user_id = ?"], [userId], try Pagination(request), db))
        }
    }

    static func list(_ clauses: [String], _ binds: [any DBBindable], _ page: Pagination, _ db: Database) async throws -> AuditList {
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let total = try await db.count("SELECT COUNT(*) AS n FROM audit_logs" + filter, binds)
        let rows = try await db.query("SELECT * FROM audit_logs\(filter) ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                                      binds + [page.limit, page.offset])
        return AuditList(total: total, offset: page.offset, limit: page.limit, items: try rows.map(AuditEntry.init))
    }
}
