import Foundation
import HRMSServiceKit

enum Policy: String, APIEnum { case userSignup = "user_signup", userDeletion = "user_deletion", dataAccess = "data_access" }

public enum ComplianceService {
    static let managers: Set<Role> = [.admin, .complianceOfficer]
    static let readers: Set<Role> = [.admin, .complianceOfficer, .hrManager, .service]

    public static let migrations: [Migration] = [
        Migration(1, "compliance", [
            "CREATE TABLE data_categories (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, sensitivity TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
            "CREATE UNIQUE INDEX data_categories_name ON data_categories (name)",
            """
            CREATE TABLE data_inventory (id TEXT PRIMARY KEY, data_name TEXT NOT NULL, category_id TEXT NOT NULL REFERENCES data_categories (id),
            purpose TEXT NOT NULL, legal_basis TEXT NOT NULL, retention_days BIGINT NOT NULL, recipients TEXT NOT NULL,
            third_party_sharing INTEGER NOT NULL, encryption INTEGER NOT NULL, access_level TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)
            """,
            """
            CREATE TABLE access_grants (id TEXT PRIMARY KEY, employee_id TEXT NOT NULL, data_category_id TEXT NOT NULL REFERENCES data_categories (id),
            reason TEXT NOT NULL, granted_by TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT, created_at TEXT NOT NULL)
            """,
            "CREATE INDEX access_grants_employee ON access_grants (employee_id)",
            "CREATE TABLE policy_checks (id TEXT PRIMARY KEY, policy_name TEXT NOT NULL, subject_id TEXT, valid INTEGER NOT NULL, violations TEXT NOT NULL, checked_by TEXT NOT NULL, created_at TEXT NOT NULL)",
        ])
    ]

    public static func definition(_ config: ServiceConfig) throws -> ServiceDefinition {
        let settings = Settings(
            officerEmail: try Validate.emailSetting(config.env.string("COMPLIANCE_OFFICER_EMAIL", default: "compliance@hrms.local")),
            defaultRetentionDays: try config.env.int("RETENTION_DEFAULT_DAYS", default: 365, range: 1...36_500))
        return ServiceDefinition(name: .compliance, migrations: migrations, openAPI: openAPI, routes: { router, env in
            routes(router, env, settings)
            dataRoutes(router, env)
        })
    }

    struct Settings: Sendable {
        var officerEmail: String
        var defaultRetentionDays: Int
    }

    // MARK: policies

    /// Reads a typed field of a policy context: 422 naming it when its type is wrong.
    static func field(_ context: [String: JSONValue], _ key: String) throws -> String? {
        switch context[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw APIError.unprocessable("context.\(key): expected a string")
        }
    }
    static func flag(_ context: [String: JSONValue], _ key: String) throws -> Bool? {
        switch context[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw APIError.unprocessable("context.\(key): expected a boolean")
        }
    }
    static func number(_ context: [String: JSONValue], _ key: String) throws -> Double? {
        switch context[key] {
        case nil, .null?: return nil
        case .number(let n)?: return n
        default: throw APIError.unprocessable("context.\(key): expected a number")
        }
    }

    /// The rules of each policy; returns the violations (none: allowed).
    static func evaluate(_ policy: Policy, _ context: [String: JSONValue], db: some DBExecutor) async throws -> [String] {
        var violations: [String] = []
        switch policy {
        case .userSignup:
            guard let email = try field(context, "email") else { throw APIError.unprocessable("context.email: field required") }
            if (try? Validate.email(email)) == nil { violations.append("email is not a valid address") }
            if let age = try number(context, "age"), age < 16 {
                violations.append("under 16 the consent of a holder of parental responsibility is required (GDPR Art. 8)")
            }
            if try flag(context, "consent") == false { violations.append("consent to the processing of personal data was refused") }
        case .userDeletion:
            if try flag(context, "is_last_admin") == true { violations.append("the last active admin cannot be deleted") }
            if try flag(context, "legal_hold") == true { violations.append("the user's data is under a legal hold") }
        case .dataAccess:
            guard let employee = try field(context, "employee_id") else { throw APIError.unprocessable("context.employee_id: field required") }
            guard let category = try field(context, "data_category_id") else { throw APIError.unprocessable("context.data_category_id: field required") }
            let active = try await db.count(
                "SELECT COUNT(*) AS n FROM access_grants WHERE employee_id = ? AND data_category_id = ? AND revoked_at IS NULL AND expires_at > ?",
                [employee, category, Timestamp.now()])
            if active == 0 { violations.append("employee \(employee) has no active access grant to data category \(category)") }
        }
        return violations
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment, _ settings: Settings) {
        let db = env.db
        let api = router.group("api/v1")

        api.post("policies/validate") { request, context -> JSONResponse<PolicyResult> in
            let caller = try context.requireIdentity()
            let input = try await request.decode(as: PolicyInput.self, context: context)
            guard let policy = Policy(rawValue: input.policy_name) else {
                throw APIError.unprocessable("policy_name: '\(input.policy_name)' is not one of \(Policy.names.joined(separator: ", "))")
            }
            let subject = try field(input.context, "user_id") ?? field(input.context, "employee_id")
            let id = UUID().uuidString.lowercased()
            let violations = try await db.transaction { tx in
                let violations = try await evaluate(policy, input.context, db: tx)
                let encoded = String(decoding: try JSONEncoder().encode(violations), as: UTF8.self)
                try await tx.execute("INSERT INTO policy_checks (id, policy_name, subject_id, valid, violations, checked_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     [id, policy.rawValue, subject, violations.isEmpty, encoded, caller.subject, Timestamp.now()])
                var events = [env.events.audit(.complianceCheck, context: context, resourceType: "policy_check", resourceId: id,
                                               description: "policy \(policy.rawValue): " + (violations.isEmpty ? "valid" : "violations"),
                                               newValue: ["policy_name": .string(policy.rawValue), "valid": .bool(violations.isEmpty),
                                                          "violations": .array(violations.map { .string($0) }), "subject_id": subject.map { .string($0) } ?? .null])]
                if !violations.isEmpty {
                    events.append(env.events.notification(.complianceViolation, key: subject ?? id, correlationId: context.correlationId, data: NotificationData(
                        recipientEmail: settings.officerEmail, recipientName: "Compliance officer", subject: "Compliance violation: \(policy.rawValue)",
                        templateName: "compliance_violation",
                        templateData: ["policy_name": .string(policy.rawValue), "violations": .array(violations.map { .string($0) }),
                                       "subject_id": subject.map { .string($0) } ?? .null, "check_id": .string(id)],
                        priority: "high")))
                }
                try await tx.enqueue(events)
                return violations
            }
            return JSONResponse(PolicyResult(valid: violations.isEmpty, violations: violations))
        }

        api.get("retention/check") { request, context -> JSONResponse<RetentionReport> in
            try context.requireRoles(managers)
            let asOfText = try Query.date(request, "as_of") ?? String(Timestamp.now().prefix(10))
            guard let asOf = EventTime.parse(asOfText + "T00:00:00Z") else { throw APIError.unprocessable("as_of: expected a date YYYY-MM-DD") }
            func retention(_ name: String) async throws -> Int {
                try await db.queryOne("SELECT MIN(retention_days) AS d FROM data_inventory WHERE data_name = ?", [name])?.optionalInt("d")
                    ?? settings.defaultRetentionDays
            }
            var items: [RetentionItem] = []
            func check(_ type: String, _ id: String, since: String, days: Int) {
                guard let start = EventTime.parse(since) else { return }
                let expiry = start.addingTimeInterval(Double(days) * 86_400)
                if expiry <= asOf { items.append(RetentionItem(record_type: type, record_id: id, since: since, retention_days: days, expired_on: EventTime.format(expiry))) }
            }
            let grantDays = try await retention("access_grants")
            for row in try await db.query("SELECT id, expires_at, revoked_at FROM access_grants", []) {
                // A grant's retention runs from when it ended.
                let ended = try row.optionalString("revoked_at") ?? row.string("expires_at")
                check("access_grant", try row.string("id"), since: ended, days: grantDays)
            }
            let checkDays = try await retention("policy_checks")
            for row in try await db.query("SELECT id, created_at FROM policy_checks", []) {
                check("policy_check", try row.string("id"), since: try row.string("created_at"), days: checkDays)
            }
            items.sort { ($0.expired_on, $0.record_id) < ($1.expired_on, $1.record_id) }
            return JSONResponse(RetentionReport(as_of: asOfText, total: items.count, items: items))
        }

        api.get("compliance/subject/:user_id") { _, context -> JSONResponse<JSONValue> in
            let caller = try context.requireIdentity()
            let userId = try Validate.id(context.parameters.get("user_id"), "user")
            if caller.subject != userId { try context.requireRoles(managers) }
            return JSONResponse(try await SubjectReport.build(userId: userId, env: env, context: context))
        }
    }
}

extension Validate {
    static func emailSetting(_ value: String) throws(ConfigError) -> String {
        do { return try Validate.email(value) } catch { throw ConfigError(variable: "COMPLIANCE_OFFICER_EMAIL", reason: "'\(value)' is not an email address") }
    }
}

/// What the platform holds about a person, gathered from every service that stores personal data.
enum SubjectReport {
    static func section(_ status: String, _ data: JSONValue? = nil, detail: String? = nil) -> JSONValue {
        ["status": .string(status), "data": data ?? .null, "detail": detail.map { .string($0) } ?? .null]
    }

    static func fetch(_ env: ServiceEnvironment, _ service: HRMSServiceName, _ path: String, _ cid: String) async -> JSONValue {
        do {
            let data = try await env.client.raw(service, .GET, path, correlationId: cid)
            return section("ok", (try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .null)
        } catch RemoteError.notFound(_, let detail) {
            return section("not_found", detail: detail)
        } catch {
            return section("unavailable", detail: "\(error)")
        }
    }

    static func build(userId: String, env: ServiceEnvironment, context: HRMSRequestContext) async throws -> JSONValue {
        let cid = context.correlationId
        // The user record is the anchor: without it there is no report (404, or 503 when it cannot be asked).
        let userData = try await env.client.raw(.userManagement, .GET, "/api/v1/users/\(userId)", correlationId: cid)
        let user = (try? JSONDecoder().decode(JSONValue.self, from: userData)) ?? .null
        var employeeId: String? = nil
        if case .object(let o) = user, case .string(let e)? = o["employee_id"] { employeeId = e }
        var sources: [String: JSONValue] = ["user_management": section("ok", user)]
        var remote: [(String, HRMSServiceName, String)] = [("audit", .audit, "/api/v1/audit-logs/user/\(userId)")]
        if let e = employeeId {
            remote += [("employee", .employee, "/api/v1/employees/\(e)"), ("leave", .leave, "/api/v1/leaves/employee/\(e)"),
                       ("attendance", .attendance, "/api/v1/attendance/employee/\(e)"), ("notification", .notification, "/api/v1/notifications/employee/\(e)")]
        }
        await withTaskGroup(of: (String, JSONValue).self) { group in
            for (name, service, path) in remote { group.addTask { (name, await fetch(env, service, path, cid)) } }
            for await (name, value) in group { sources[name] = value }
        }
        let now = Timestamp.now()
        let grants = try await employeeId.asyncMap { try await env.db.query("SELECT * FROM access_grants WHERE employee_id = ? ORDER BY created_at", [$0]) } ?? []
        let checks = try await env.db.query("SELECT id, policy_name, valid, violations, created_at FROM policy_checks WHERE subject_id = ? ORDER BY created_at", [userId])
        sources["compliance"] = section("ok", [
            "access_grants": JSONValue(encoding: try grants.map { try AccessGrant(row: $0, now: now) }),
            "policy_checks": .array(try checks.map { row in
                ["id": .string(try row.string("id")), "policy_name": .string(try row.string("policy_name")), "valid": .bool(try row.bool("valid")),
                 "created_at": .string(try row.string("created_at"))]
            }),
        ])
        try await env.db.transaction { tx in
            try await tx.enqueue([env.events.audit(.complianceCheck, context: context, resourceType: "subject_access_report", resourceId: userId,
                                                   description: "subject access report for user \(userId)")])
        }
        return ["user_id": .string(userId), "employee_id": employeeId.map { .string($0) } ?? .null, "generated_at": .string(now), "sources": .object(sources)]
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
