import Foundation
import HRMSServiceSupport
import HRMSServiceKit

public enum LeaveType: String, APIEnum { case sick, casual, annual, unpaid, maternity, paternity }
public enum LeaveStatus: String, APIEnum { case pending, approved, rejected, cancelled }

public struct Leave: Codable, Sendable, Equatable, NullEncodingRecord {
    public var id: String
    public var employee_id: String
    public var leave_type: LeaveType
    public var start_date: String
    public var end_date: String
    public var days: Int
    public var reason: String?
    public var status: LeaveStatus
    public var approved_by: String?
    public var rejection_reason: String?
    public var created_at: String
    public var updated_at: String

    init(row: DBRow) throws {
        id = try row.string("id")
        employee_id = try row.string("employee_id")
        guard let type = LeaveType(rawValue: try row.string("leave_type")),
              let state = LeaveStatus(rawValue: try row.string("status")) else { throw DatabaseError("bad leave row") }
        leave_type = type
        status = state
        start_date = try row.string("start_date")
        end_date = try row.string("end_date")
        days = try row.int("days")
        reason = row.optionalString("reason")
        approved_by = row.optionalString("approved_by")
        rejection_reason = row.optionalString("rejection_reason")
        created_at = try row.string("created_at")
        updated_at = try row.string("updated_at")
    }
}

struct LeaveCreate: Decodable {
    var employee_id: String
    var leave_type: LeaveType
    var start_date: String
    var end_date: String
    var reason: String?
}

struct LeaveUpdate: Decodable {
    var status: LeaveStatus
    var approved_by: String?
    var rejection_reason: String?
}

struct LeaveList: Encodable, Sendable {
    var total: Int
    var offset: Int
    var limit: Int
    var items: [Leave]
}

public enum LeaveService {
    /// Who sees everyone's leave; who decides on it (issue 5: managers approve or reject).
    static let readers: Set<Role> = [.admin, .hrManager, .manager, .service]
    static let approvers: Set<Role> = [.admin, .hrManager, .manager]

    public static let migrations: [Migration] = [
        Migration(1, "leaves", [
            """
            CREATE TABLE leaves (id TEXT PRIMARY KEY, employee_id TEXT NOT NULL, employee_email TEXT NOT NULL,
            employee_name TEXT NOT NULL, leave_type TEXT NOT NULL, start_date TEXT NOT NULL, end_date TEXT NOT NULL,
            days BIGINT NOT NULL, reason TEXT, status TEXT NOT NULL, approved_by TEXT, rejection_reason TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)
            """,
            "CREATE INDEX leaves_employee ON leaves (employee_id)",
            "CREATE INDEX leaves_status ON leaves (status)",
        ])
    ]

    public static var definition: ServiceDefinition {
        ServiceDefinition(name: .leave, migrations: migrations, openAPI: openAPI, routes: routes)
    }

    static func fetchRow(_ db: some DBExecutor, _ id: String) async throws -> DBRow {
        guard let row = try await db.queryOne("SELECT * FROM leaves WHERE id = ?", [id]) else {
            throw APIError.notFound("leave \(id) not found")
        }
        return row
    }

    /// Calendar days from start to end, both included (dates are validated YYYY-MM-DD).
    static func days(from start: String, to end: String) -> Int {
        let format = Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day()
        guard let a = try? format.parse(start), let b = try? format.parse(end) else { return 0 }
        return Int((b.timeIntervalSince(a) / 86_400).rounded()) + 1
    }

    static func events(_ type: NotificationEventType?, audit: AuditEventType, leave: Leave, row: DBRow, old: Leave?,
                       description: String, context: HRMSRequestContext, env: ServiceEnvironment) throws -> [OutboxEvent] {
        let email = try row.string("employee_email")
        let name = try row.string("employee_name")
        var out: [OutboxEvent] = []
        if let type {
            let template = type.rawValue.replacingOccurrences(of: ".", with: "_")   // leave.approved -> leave_approved
            var data: [String: JSONValue] = [
                "name": .string(name), "leave_id": .string(leave.id), "leave_type": .string(leave.leave_type.rawValue),
                "start_date": .string(leave.start_date), "end_date": .string(leave.end_date), "days": .number(Double(leave.days)),
            ]
            if let by = leave.approved_by { data["approved_by"] = .string(by) }
            if let why = leave.rejection_reason { data["rejection_reason"] = .string(why) }
            let subject = "Leave \(leave.status.rawValue): \(leave.leave_type.rawValue) \(leave.start_date) to \(leave.end_date)"
            out.append(env.events.notification(type, key: leave.id, correlationId: context.correlationId, data: NotificationData(
                recipientEmail: email, recipientName: name, subject: subject, templateName: template, templateData: data)))
        }
        out.append(env.events.audit(audit, context: context, resourceType: "leave", resourceId: leave.id, description: description,
                                    oldValue: old.map { JSONValue(encoding: $0) }, newValue: JSONValue(encoding: leave)))
        return out
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment) {
        let api = router.group("api/v1/leaves")
        let db = env.db

        api.post { request, context -> JSONResponse<Leave> in
            let input = try await request.decode(as: LeaveCreate.self, context: context)
            let employeeId = try EmployeeLookup.id(input.employee_id)
            try EmployeeLookup.requireSelfOr(approvers.union([.service]), employeeId: employeeId, context: context)
            let start = try Validate.date(input.start_date, "start_date")
            let end = try Validate.date(input.end_date, "end_date")
            guard start <= end else { throw APIError.badRequest("start_date \(start) is after end_date \(end)") }
            let reason = try Validate.optional(input.reason, "reason", max: 2000)
            let employee = try await EmployeeLookup.fetch(employeeId, env: env, correlationId: context.correlationId)
            guard employee.status != "terminated" else { throw APIError.badRequest("employee \(employeeId) is terminated") }
            let id = UUID().uuidString.lowercased()
            let now = Timestamp.now()
            let leave = try await db.transaction { tx in
                try await tx.execute(
                    "INSERT INTO leaves (id, employee_id, employee_email, employee_name, leave_type, start_date, end_date, days, reason, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    [id, employeeId, employee.email, employee.fullName, input.leave_type.rawValue, start, end,
                     days(from: start, to: end), reason, now, now])
                let row = try await fetchRow(tx, id)
                let leave = try Leave(row: row)
                try await tx.enqueue(try events(.leaveRequested, audit: .leaveCreate, leave: leave, row: row, old: nil,
                                                description: "leave requested", context: context, env: env))
                return leave
            }
            return JSONResponse(leave, status: .created)
        }

        api.get { request, context -> JSONResponse<LeaveList> in
            let identity = try context.requireIdentity()
            let page = try Pagination(request)
            let status = try Query.enumValue(request, "status", as: LeaveStatus.self)
            var clauses: [String] = []
            var binds: [any DBBindable] = []
            if !readers.contains(identity.role) {
                // Everyone else sees only their own leave.
                clauses.append("employee_id = ?")
                binds.append(identity.employeeId ?? "")
            }
            if let status { clauses.append("status = ?"); binds.append(status.rawValue) }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            let total = try await db.count("SELECT COUNT(*) AS n FROM leaves" + filter, binds)
            let rows = try await db.query("SELECT * FROM leaves\(filter) ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                                          binds + [page.limit, page.offset])
            return JSONResponse(LeaveList(total: total, offset: page.offset, limit: page.limit, items: try rows.map(Leave.init)))
        }

        api.get(":id") { _, context -> JSONResponse<Leave> in
            let id = try Validate.id(context.parameters.get("id"), "leave")
            let leave = try Leave(row: try await fetchRow(db, id))
            try EmployeeLookup.requireSelfOr(readers, employeeId: leave.employee_id, context: context)
            return JSONResponse(leave)
        }

        api.get("employee/:employee_id") { request, context -> JSONResponse<LeaveList> in
            let employeeId = try Validate.id(context.parameters.get("employee_id"), "employee")
            try EmployeeLookup.requireSelfOr(readers, employeeId: employeeId, context: context)
            let page = try Pagination(request)
            let total = try await db.count("SELECT COUNT(*) AS n FROM leaves WHERE employee_id = ?", [employeeId])
            let rows = try await db.query("SELECT * FROM leaves WHERE employee_id = ? ORDER BY start_date DESC, id LIMIT ? OFFSET ?",
                                          [employeeId, page.limit, page.offset])
            return JSONResponse(LeaveList(total: total, offset: page.offset, limit: page.limit, items: try rows.map(Leave.init)))
        }

        api.put(":id") { request, context -> JSONResponse<Leave> in
            let id = try Validate.id(context.parameters.get("id"), "leave")
            let input = try await request.decode(as: LeaveUpdate.self, context: context)
            return JSONResponse(try await change(id, to: input, context: context, env: env))
        }

        api.delete(":id") { _, context -> JSONResponse<Leave> in
            let id = try Validate.id(context.parameters.get("id"), "leave")
            return JSONResponse(try await change(id, to: LeaveUpdate(status: .cancelled), context: context, env: env))
        }
    }

    /// The one place leave changes state: pending -> approved | rejected | cancelled, approved -> cancelled.
    static func change(_ id: String, to input: LeaveUpdate, context: HRMSRequestContext, env: ServiceEnvironment) async throws -> Leave {
        let identity = try context.requireIdentity()
        let approvedBy = try input.approved_by.map { try Validate.nonEmpty($0, "approved_by", max: 255) }
        let rejection = try input.rejection_reason.map { try Validate.nonEmpty($0, "rejection_reason", max: 2000) }
        switch input.status {
        case .pending: throw APIError.badRequest("status can only change to approved, rejected or cancelled")
        case .approved, .rejected:
            try context.requireRoles(approvers)
            if input.status == .approved, approvedBy == nil { throw APIError.badRequest("approval needs approved_by") }
            if input.status == .rejected, rejection == nil { throw APIError.badRequest("rejection needs rejection_reason") }
        case .cancelled: break
        }
        return try await env.db.transaction { tx in
            let oldRow = try await fetchRow(tx, id)
            let old = try Leave(row: oldRow)
            if input.status == .cancelled, identity.employeeId != old.employee_id, !approvers.contains(identity.role) {
                throw APIError.forbidden("only the employee or a manager may cancel this leave")
            }
            let allowed = old.status == .pending || (old.status == .approved && input.status == .cancelled)
            guard allowed else {
                throw APIError.badRequest("leave \(id) is \(old.status.rawValue); it cannot become \(input.status.rawValue)")
            }
            try await tx.execute(
                "UPDATE leaves SET status = ?, approved_by = ?, rejection_reason = ?, updated_at = ? WHERE id = ?",
                [input.status.rawValue, input.status == .approved ? approvedBy : old.approved_by,
                 input.status == .rejected ? rejection : old.rejection_reason, Timestamp.now(), id])
            let row = try await fetchRow(tx, id)
            let leave = try Leave(row: row)
            let (notification, audit): (NotificationEventType, AuditEventType) = switch input.status {
            case .approved: (.leaveApproved, .leaveApprove)
            case .rejected: (.leaveRejected, .leaveReject)
            default: (.leaveCancelled, .leaveCancel)
            }
            try await tx.enqueue(try events(notification, audit: audit, leave: leave, row: row, old: old,
                                            description: "leave \(input.status.rawValue)", context: context, env: env))
            return leave
        }
    }
}
