import Foundation
import HRMSServiceSupport
import HRMSServiceKit

public enum AttendanceStatus: String, APIEnum { case present, absent, late, halfDay = "half_day", onLeave = "on_leave" }

public struct AttendanceRecord: Codable, Sendable, Equatable, NullEncodingRecord {
    public var id: String
    public var employee_id: String
    public var date: String
    public var status: AttendanceStatus
    /// `HH:MM:SS`, UTC.
    public var check_in_time: String?
    public var check_out_time: String?
    public var working_hours: Double?
    public var notes: String?
    public var created_at: String
    public var updated_at: String

    init(row: DBRow) throws {
        id = try row.string("id")
        employee_id = try row.string("employee_id")
        date = try row.string("date")
        guard let s = AttendanceStatus(rawValue: try row.string("status")) else { throw DatabaseError("bad attendance status") }
        status = s
        check_in_time = row.optionalString("check_in_time")
        check_out_time = row.optionalString("check_out_time")
        working_hours = row.optionalDouble("working_hours")
        notes = row.optionalString("notes")
        created_at = try row.string("created_at")
        updated_at = try row.string("updated_at")
    }
}

struct EmployeeOnly: Decodable { var employee_id: String }

struct ManualEntry: Decodable {
    var employee_id: String
    var date: String
    var status: AttendanceStatus
    var check_in_time: String?
    var check_out_time: String?
    var notes: String?
}

struct AttendanceUpdate: Decodable {
    var status: AttendanceStatus?
    var check_in_time: String?
    var check_out_time: String?
    var notes: String?
}

struct AttendanceList: Encodable, Sendable {
    var total: Int
    var items: [AttendanceRecord]
}

struct MonthSummary: Encodable, Sendable {
    var employee_id: String
    var month: String
    var days_worked: Int
    var present: Int
    var absent: Int
    var late: Int
    var half_day: Int
    var on_leave: Int
    var working_hours: Double
}

public enum AttendanceService {
    static let readers: Set<Role> = [.admin, .hrManager, .manager, .service]
    static let editors: Set<Role> = [.admin, .hrManager, .manager]
    /// A check-in after this time of day (UTC) counts as late.
    static let lateAfter = "09:30:00"

    public static let migrations: [Migration] = [
        Migration(1, "attendance", [
            """
            CREATE TABLE attendance (id TEXT PRIMARY KEY, employee_id TEXT NOT NULL, employee_email TEXT NOT NULL,
            employee_name TEXT NOT NULL, date TEXT NOT NULL, status TEXT NOT NULL, check_in_time TEXT, check_out_time TEXT,
            working_hours DOUBLE PRECISION, notes TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)
            """,
            "CREATE UNIQUE INDEX attendance_employee_date ON attendance (employee_id, date)",
        ])
    ]

    public static var definition: ServiceDefinition {
        ServiceDefinition(name: .attendance, migrations: migrations, openAPI: openAPI, routes: routes)
    }

    /// `HH:MM` or `HH:MM:SS` -> `HH:MM:SS`, else 422.
    static func time(_ value: String?, _ field: String) throws -> String? {
        guard let value else { return nil }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count), parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
              let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h), (0..<60).contains(m),
              parts.count == 2 || Int(parts[2]).map({ (0..<60).contains($0) }) == true else {
            throw APIError.unprocessable("\(field): expected a time HH:MM or HH:MM:SS")
        }
        return parts.count == 2 ? value + ":00" : value
    }

    static func seconds(_ time: String) -> Int {
        let p = time.split(separator: ":").compactMap { Int($0) }
        return p.count == 3 ? p[0] * 3600 + p[1] * 60 + p[2] : 0
    }

    /// Hours between check-in and check-out (2 decimals); nil unless both are known. 400 if out is before in.
    static func hours(_ checkIn: String?, _ checkOut: String?) throws -> Double? {
        guard let checkIn, let checkOut else { return nil }
        let span = seconds(checkOut) - seconds(checkIn)
        guard span >= 0 else { throw APIError.badRequest("check_out_time \(checkOut) is before check_in_time \(checkIn)") }
        return (Double(span) / 36.0).rounded() / 100
    }

    static func fetchRow(_ db: some DBExecutor, _ id: String) async throws -> DBRow {
        guard let row = try await db.queryOne("SELECT * FROM attendance WHERE id = ?", [id]) else {
            throw APIError.notFound("attendance record \(id) not found")
        }
        return row
    }

    /// Every change: attendance.marked to the employee and an audit entry (same transaction).
    static func events(_ record: AttendanceRecord, row: DBRow, old: AttendanceRecord?, context: HRMSRequestContext,
                       env: ServiceEnvironment) throws -> [OutboxEvent] {
        var data: [String: JSONValue] = ["name": .string(try row.string("employee_name")), "date": .string(record.date),
                                         "status": .string(record.status.rawValue), "attendance_id": .string(record.id)]
        if let t = record.check_in_time { data["check_in_time"] = .string(t) }
        if let t = record.check_out_time { data["check_out_time"] = .string(t) }
        if let h = record.working_hours { data["working_hours"] = .number(h) }
        return [
            env.events.notification(.attendanceMarked, key: record.employee_id, correlationId: context.correlationId, data: NotificationData(
                recipientEmail: try row.string("employee_email"), recipientName: try row.string("employee_name"),
                subject: "Attendance recorded for \(record.date): \(record.status.rawValue)", templateName: "attendance_marked",
                templateData: data)),
            env.events.audit(old == nil ? .attendanceMark : .attendanceUpdate, context: context, resourceType: "attendance",
                             resourceId: record.id, description: old == nil ? "attendance marked" : "attendance updated",
                             oldValue: old.map { JSONValue(encoding: $0) }, newValue: JSONValue(encoding: record)),
        ]
    }

    static func today() -> (date: String, time: String) {
        let now = Timestamp.now()   // 2026-11-27T17:10:00.123Z
        return (String(now.prefix(10)), String(now.dropFirst(11).prefix(8)))
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment) {
        let api = router.group("api/v1/attendance")
        let db = env.db

        /// Inserts a new day's record (409 if the day has one) with its events.
        @Sendable func insert(_ employee: EmployeeRef, date: String, status: AttendanceStatus, checkIn: String?, checkOut: String?,
                              notes: String?, context: HRMSRequestContext) async throws -> AttendanceRecord {
            let workingHours = try hours(checkIn, checkOut)
            let id = UUID().uuidString.lowercased()
            let now = Timestamp.now()
            return try await db.transaction { tx in
                if try await tx.count("SELECT COUNT(*) AS n FROM attendance WHERE employee_id = ? AND date = ?", [employee.id, date]) > 0 {
                    throw APIError.conflict("employee \(employee.id) already has attendance for \(date)")
                }
                try await tx.execute(
                    "INSERT INTO attendance (id, employee_id, employee_email, employee_name, date, status, check_in_time, check_out_time, working_hours, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [id, employee.id, employee.email, employee.fullName, date, status.rawValue, checkIn, checkOut, workingHours, notes, now, now])
                let row = try await fetchRow(tx, id)
                let record = try AttendanceRecord(row: row)
                try await tx.enqueue(try events(record, row: row, old: nil, context: context, env: env))
                return record
            }
        }

        /// Applies `change` to one record and enqueues its events.
        @Sendable func update(_ row: DBRow, status: AttendanceStatus, checkIn: String?, checkOut: String?, notes: String?,
                              context: HRMSRequestContext, in tx: Transaction) async throws -> AttendanceRecord {
            let old = try AttendanceRecord(row: row)
            try await tx.execute(
                "UPDATE attendance SET status = ?, check_in_time = ?, check_out_time = ?, working_hours = ?, notes = ?, updated_at = ? WHERE id = ?",
                [status.rawValue, checkIn, checkOut, try hours(checkIn, checkOut), notes, Timestamp.now(), old.id])
            let newRow = try await fetchRow(tx, old.id)
            let record = try AttendanceRecord(row: newRow)
            try await tx.enqueue(try events(record, row: newRow, old: old, context: context, env: env))
            return record
        }

        api.post("check-in") { request, context -> JSONResponse<AttendanceRecord> in
            let input = try await request.decode(as: EmployeeOnly.self, context: context)
            let employeeId = try EmployeeLookup.id(input.employee_id)
            try EmployeeLookup.requireSelfOr(editors, employeeId: employeeId, context: context)
            let employee = try await EmployeeLookup.fetch(employeeId, env: env, correlationId: context.correlationId)
            let (date, time) = today()
            let record = try await insert(employee, date: date, status: time > lateAfter ? .late : .present, checkIn: time,
                                          checkOut: nil, notes: nil, context: context)
            return JSONResponse(record, status: .created)
        }

        api.post("check-out") { request, context -> JSONResponse<AttendanceRecord> in
            let input = try await request.decode(as: EmployeeOnly.self, context: context)
            let employeeId = try EmployeeLookup.id(input.employee_id)
            try EmployeeLookup.requireSelfOr(editors, employeeId: employeeId, context: context)
            _ = try await EmployeeLookup.fetch(employeeId, env: env, correlationId: context.correlationId)
            let (date, time) = today()
            return JSONResponse(try await db.transaction { tx in
                guard let row = try await tx.queryOne("SELECT * FROM attendance WHERE employee_id = ? AND date = ?", [employeeId, date]),
                      let checkIn = row.optionalString("check_in_time") else {
                    throw APIError.badRequest("employee \(employeeId) has not checked in on \(date)")
                }
                guard row.optionalString("check_out_time") == nil else {
                    throw APIError.conflict("employee \(employeeId) already checked out on \(date)")
                }
                return try await update(row, status: AttendanceStatus(rawValue: try row.string("status")) ?? .present,
                                        checkIn: checkIn, checkOut: time, notes: row.optionalString("notes"), context: context, in: tx)
            })
        }

        api.post("manual") { request, context -> JSONResponse<AttendanceRecord> in
            try context.requireRoles(editors)
            let input = try await request.decode(as: ManualEntry.self, context: context)
            let employeeId = try EmployeeLookup.id(input.employee_id)
            let date = try Validate.date(input.date, "date")
            let checkIn = try time(input.check_in_time, "check_in_time")
            let checkOut = try time(input.check_out_time, "check_out_time")
            let notes = try Validate.optional(input.notes, "notes", max: 2000)
            _ = try hours(checkIn, checkOut)   // 400 before calling Employee
            let employee = try await EmployeeLookup.fetch(employeeId, env: env, correlationId: context.correlationId)
            let record = try await insert(employee, date: date, status: input.status, checkIn: checkIn, checkOut: checkOut,
                                          notes: notes, context: context)
            return JSONResponse(record, status: .created)
        }

        api.get(":id") { _, context -> JSONResponse<AttendanceRecord> in
            let id = try Validate.id(context.parameters.get("id"), "attendance record")
            let record = try AttendanceRecord(row: try await fetchRow(db, id))
            try EmployeeLookup.requireSelfOr(readers, employeeId: record.employee_id, context: context)
            return JSONResponse(record)
        }

        api.put(":id") { request, context -> JSONResponse<AttendanceRecord> in
            try context.requireRoles(editors)
            let id = try Validate.id(context.parameters.get("id"), "attendance record")
            let input = try await request.decode(as: AttendanceUpdate.self, context: context)
            let checkIn = try time(input.check_in_time, "check_in_time")
            let checkOut = try time(input.check_out_time, "check_out_time")
            let notes = try Validate.optional(input.notes, "notes", max: 2000)
            return JSONResponse(try await db.transaction { tx in
                let row = try await fetchRow(tx, id)
                let old = try AttendanceRecord(row: row)
                return try await update(row, status: input.status ?? old.status, checkIn: checkIn ?? old.check_in_time,
                                        checkOut: checkOut ?? old.check_out_time, notes: notes ?? old.notes, context: context, in: tx)
            })
        }

        api.get("employee/:employee_id") { request, context -> JSONResponse<AttendanceList> in
            let employeeId = try Validate.id(context.parameters.get("employee_id"), "employee")
            try EmployeeLookup.requireSelfOr(readers, employeeId: employeeId, context: context)
            var sql = "SELECT * FROM attendance WHERE employee_id = ?"
            var binds: [any DBBindable] = [employeeId]
            if let start = try Query.date(request, "start_date") { sql += " AND date >= ?"; binds.append(start) }
            if let end = try Query.date(request, "end_date") { sql += " AND date <= ?"; binds.append(end) }
            let rows = try await db.query(sql + " ORDER BY date DESC LIMIT 1000", binds)
            return JSONResponse(AttendanceList(total: rows.count, items: try rows.map(AttendanceRecord.init)))
        }

        api.get("summary/:employee_id/:month") { _, context -> JSONResponse<MonthSummary> in
            let employeeId = try Validate.id(context.parameters.get("employee_id"), "employee")
            try EmployeeLookup.requireSelfOr(readers, employeeId: employeeId, context: context)
            let month = context.parameters.get("month") ?? ""
            guard Validate.isDate(month + "-01") else { throw APIError.unprocessable("month: expected YYYY-MM") }
            let rows = try await db.query("SELECT * FROM attendance WHERE employee_id = ? AND date >= ? AND date <= ?",
                                          [employeeId, month + "-01", month + "-31"])
            let records = try rows.map(AttendanceRecord.init)
            func count(_ s: AttendanceStatus) -> Int { records.filter { $0.status == s }.count }
            let hours = records.compactMap(\.working_hours).reduce(0, +)
            return JSONResponse(MonthSummary(
                employee_id: employeeId, month: month, days_worked: count(.present) + count(.late) + count(.halfDay),
                present: count(.present), absent: count(.absent), late: count(.late), half_day: count(.halfDay),
                on_leave: count(.onLeave), working_hours: (hours * 100).rounded() / 100))
        }
    }
}
