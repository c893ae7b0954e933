import Foundation
import HRMSServiceKit

public enum EmployeeStatus: String, APIEnum { case active, onLeave = "on_leave", terminated }

/// An employee record as served.
public struct Employee: Codable, Sendable, Equatable {
    public var id: String
    public var user_id: String?
    public var email: String
    public var first_name: String
    public var last_name: String
    public var department: String?
    public var position: String?
    public var hire_date: String?
    public var status: EmployeeStatus
    public var created_at: String
    public var updated_at: String

    init(row: DBRow) throws {
        id = try row.string("id")
        user_id = row.optionalString("user_id")
        email = try row.string("email")
        first_name = try row.string("first_name")
        last_name = try row.string("last_name")
        department = row.optionalString("department")
        position = row.optionalString("position")
        hire_date = row.optionalString("hire_date")
        guard let s = EmployeeStatus(rawValue: try row.string("status")) else { throw DatabaseError("bad status") }
        status = s
        created_at = try row.string("created_at")
        updated_at = try row.string("updated_at")
    }
}

struct EmployeeCreate: Decodable {
    var user_id: String?
    var email: String
    var first_name: String
    var last_name: String
    var department: String?
    var position: String?
    var hire_date: String?
}

/// PUT and PATCH: every field optional; absent or null leaves it unchanged.
struct EmployeeUpdate: Decodable {
    var email: String?
    var first_name: String?
    var last_name: String?
    var department: String?
    var position: String?
    var hire_date: String?
    var status: EmployeeStatus?
    var user_id: String?
}

struct EmployeeList: Encodable, Sendable {
    var total: Int
    var offset: Int
    var limit: Int
    var items: [Employee]
}

public enum EmployeeService {
    /// Who reads employee records; who manages them (issue 5: hr_manager and admin; services for signup).
    static let readers: Set<Role> = [.admin, .hrManager, .manager, .complianceOfficer, .service]
    static let managers: Set<Role> = [.admin, .hrManager, .service]

    public static let migrations: [Migration] = [
        Migration(1, "employees", [
            """
            CREATE TABLE employees (id TEXT PRIMARY KEY, user_id TEXT, email TEXT NOT NULL, first_name TEXT NOT NULL,
            last_name TEXT NOT NULL, department TEXT, position TEXT, hire_date TEXT, status TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)
            """,
            "CREATE UNIQUE INDEX employees_email ON employees (email)",
            "CREATE INDEX employees_user ON employees (user_id)",
        ])
    ]

    public static var definition: ServiceDefinition {
        ServiceDefinition(name: .employee, migrations: migrations, openAPI: openAPI, routes: routes)
    }

    static func fetch(_ db: some DBExecutor, _ id: String) async throws -> Employee {
        guard let row = try await db.queryOne("SELECT * FROM employees WHERE id = ?", [id]) else {
            throw APIError.notFound("employee \(id) not found")
        }
        return try Employee(row: row)
    }

    static func notification(_ type: NotificationEventType, _ e: Employee, _ context: HRMSRequestContext, env: ServiceEnvironment) -> OutboxEvent {
        let (subject, template) = type == .employeeCreated ? ("Your employee record was created", "employee_created")
                                                           : ("Your employee record was updated", "employee_updated")
        return env.events.notification(type, key: e.id, correlationId: context.correlationId, data: NotificationData(
            recipientEmail: e.email, recipientName: "\(e.first_name) \(e.last_name)", subject: subject, templateName: template,
            templateData: ["employee_id": .string(e.id), "first_name": .string(e.first_name), "last_name": .string(e.last_name),
                           "status": .string(e.status.rawValue), "department": e.department.map { .string($0) } ?? .null]))
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment) {
        let api = router.group("api/v1/employees")
        let db = env.db

        api.post { request, context -> JSONResponse<Employee> in
            try context.requireRoles(managers)
            let input = try await request.decode(as: EmployeeCreate.self, context: context)
            let email = try Validate.email(input.email)
            let first = try Validate.nonEmpty(input.first_name, "first_name", max: 100)
            let last = try Validate.nonEmpty(input.last_name, "last_name", max: 100)
            let department = try Validate.optional(input.department, "department", max: 100)
            let position = try Validate.optional(input.position, "position", max: 100)
            let hire = try input.hire_date.map { try Validate.date($0, "hire_date") }
            let userId = try input.user_id.map { try Validate.nonEmpty($0, "user_id", max: 64) }
            let id = UUID().uuidString.lowercased()
            let now = Timestamp.now()
            let employee = try await db.transaction { tx in
                if try await tx.count("SELECT COUNT(*) AS n FROM employees WHERE email = ?", [email]) > 0 {
                    throw APIError.conflict("an employee with email \(email) exists")
                }
                try await tx.execute(
                    "INSERT INTO employees (id, user_id, email, first_name, last_name, department, position, hire_date, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                    [id, userId, email, first, last, department, position, hire, now, now])
                let e = try await fetch(tx, id)
                try await tx.enqueue([
                    notification(.employeeCreated, e, context, env: env),
                    env.events.audit(.employeeCreate, context: context, resourceType: "employee", resourceId: id,
                                     description: "employee \(email) created", newValue: JSONValue(encoding: e)),
                ])
                return e
            }
            return JSONResponse(employee, status: .created)
        }

        api.get { request, context -> JSONResponse<EmployeeList> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            let status = try Query.enumValue(request, "status", as: EmployeeStatus.self)
            let department = Query.string(request, "department")
            var clauses: [String] = []
            var binds: [any DBBindable] = []
            if let status { clauses.append("status = ?"); binds.append(status.rawValue) }
            if let department { clauses.append("department = ?"); binds.append(department) }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            let total = try await db.count("SELECT COUNT(*) AS n FROM employees" + filter, binds)
            let rows = try await db.query("SELECT * FROM employees\(filter) ORDER BY created_at, id LIMIT ? OFFSET ?", binds + [page.limit, page.offset])
            return JSONResponse(EmployeeList(total: total, offset: page.offset, limit: page.limit, items: try rows.map(Employee.init)))
        }

        api.get(":id") { request, context -> JSONResponse<Employee> in
            let identity = try context.requireIdentity()
            let id = try Validate.id(context.parameters.get("id"), "employee")
            // Everyone may read their own record; reading others' needs a reader role.
            if identity.employeeId != id { try context.requireRoles(readers) }
            return JSONResponse(try await fetch(db, id))
        }

        let update: @Sendable (Request, HRMSRequestContext) async throws -> JSONResponse<Employee> = { request, context in
            try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "employee")
            let input = try await request.decode(as: EmployeeUpdate.self, context: context)
            let email = try input.email.map { try Validate.email($0) }
            let first = try input.first_name.map { try Validate.nonEmpty($0, "first_name", max: 100) }
            let last = try input.last_name.map { try Validate.nonEmpty($0, "last_name", max: 100) }
            let department = try Validate.optional(input.department, "department", max: 100)
            let position = try Validate.optional(input.position, "position", max: 100)
            let hire = try input.hire_date.map { try Validate.date($0, "hire_date") }
            let userId = try input.user_id.map { try Validate.nonEmpty($0, "user_id", max: 64) }
            return JSONResponse(try await db.transaction { tx in
                let old = try await fetch(tx, id)
                if let email, email != old.email,
                   try await tx.count("SELECT COUNT(*) AS n FROM employees WHERE email = ? AND id <> ?", [email, id]) > 0 {
                    throw APIError.conflict("an employee with email \(email) exists")
                }
                try await tx.execute(
                    "UPDATE employees SET email = ?, first_name = ?, last_name = ?, department = ?, position = ?, hire_date = ?, status = ?, user_id = ?, updated_at = ? WHERE id = ?",
                    [email ?? old.email, first ?? old.first_name, last ?? old.last_name, department ?? old.department,
                     position ?? old.position, hire ?? old.hire_date, (input.status ?? old.status).rawValue, userId ?? old.user_id,
                     Timestamp.now(), id])
                let new = try await fetch(tx, id)
                try await tx.enqueue(updateEvents(old: old, new: new, type: .employeeUpdate, context: context, env: env))
                return new
            })
        }
        api.put(":id", use: update)
        api.patch(":id", use: update)

        api.delete(":id") { request, context -> JSONResponse<[String: Bool]> in
            let caller = try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "employee")
            if Query.string(request, "purge") == "true" {
                // Compensation of a failed signup (User Management): the record never belonged to a user.
                guard caller.isService else { throw APIError.forbidden("only services may purge an employee record") }
                try await db.transaction { tx in
                    let old = try await fetch(tx, id)
                    try await tx.execute("DELETE FROM employees WHERE id = ?", [id])
                    try await tx.enqueue([env.events.audit(.employeeDelete, context: context, resourceType: "employee", resourceId: id,
                                                           description: "employee \(old.email) removed (signup compensation)", oldValue: JSONValue(encoding: old))])
                }
                return JSONResponse(["ok": true])
            }
            try await db.transaction { tx in
                let old = try await fetch(tx, id)
                try await tx.execute("UPDATE employees SET status = 'terminated', updated_at = ? WHERE id = ?", [Timestamp.now(), id])
                let new = try await fetch(tx, id)
                try await tx.enqueue(updateEvents(old: old, new: new, type: .employeeDelete, context: context, env: env))
            }
            return JSONResponse(["ok": true])
        }
    }

    static func updateEvents(old: Employee, new: Employee, type: AuditEventType, context: HRMSRequestContext, env: ServiceEnvironment) -> [OutboxEvent] {
        let oldValue = JSONValue(encoding: old)
        let newValue = JSONValue(encoding: new)
        var changes: [String: JSONValue] = [:]
        if case .object(let o) = oldValue, case .object(let n) = newValue {
            for (k, v) in n where k != "updated_at" && o[k] != v { changes[k] = ["old": o[k] ?? .null, "new": v] }
        }
        let what = type == .employeeDelete ? "terminated" : "updated"
        return [
            notification(.employeeUpdated, new, context, env: env),
            env.events.audit(type, context: context, resourceType: "employee", resourceId: new.id,
                             description: "employee \(new.email) \(what)", oldValue: oldValue, newValue: newValue, changes: .object(changes)),
        ]
    }
}
