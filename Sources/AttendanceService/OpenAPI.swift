import HRMSServiceKit

extension AttendanceService {
    static var openAPI: OpenAPIDocument {
        let time = OAS.string(nullable: true)
        let record = OAS.object([
            "id": OAS.string(format: "uuid"), "employee_id": OAS.string(format: "uuid"), "date": OAS.string(format: "date"),
            "status": OAS.string(enum: AttendanceStatus.names), "check_in_time": time, "check_out_time": time,
            "working_hours": OAS.number(nullable: true), "notes": OAS.string(nullable: true),
            "created_at": OAS.string(format: "date-time"), "updated_at": OAS.string(format: "date-time"),
        ], required: ["id", "employee_id", "date", "status", "created_at", "updated_at"])
        let employeeOnly = OAS.object(["employee_id": OAS.string(format: "uuid")], required: ["employee_id"])
        let timePattern: JSONValue = ["type": "string", "nullable": true, "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"]
        let manual = OAS.object([
            "employee_id": OAS.string(format: "uuid"), "date": OAS.string(format: "date"),
            "status": OAS.string(enum: AttendanceStatus.names), "check_in_time": timePattern, "check_out_time": timePattern,
            "notes": OAS.string(nullable: true, maxLength: 2000),
        ], required: ["employee_id", "date", "status"])
        let update = OAS.object([
            "status": OAS.string(nullable: true, enum: AttendanceStatus.names), "check_in_time": timePattern,
            "check_out_time": timePattern, "notes": OAS.string(nullable: true, maxLength: 2000),
        ])
        let list = OAS.object(["total": OAS.integer(), "items": OAS.array(OAS.ref("Attendance"))], required: ["total", "items"])
        let summary = OAS.object([
            "employee_id": OAS.string(), "month": OAS.string(), "days_worked": OAS.integer(), "present": OAS.integer(),
            "absent": OAS.integer(), "late": OAS.integer(), "half_day": OAS.integer(), "on_leave": OAS.integer(),
            "working_hours": OAS.number(),
        ], required: ["employee_id", "month", "days_worked", "present", "absent", "late", "working_hours"])
        let one: JSONValue = OAS.ref("Attendance")
        return OpenAPIDocument(title: "HRMS Attendance service", paths: [
            "/api/v1/attendance/check-in": ["post": OAS.op("Check in now", body: employeeOnly,
                                                           responses: [201: ("Checked in", one)], errors: [404, 409])],
            "/api/v1/attendance/check-out": ["post": OAS.op("Check out now", body: employeeOnly,
                                                            responses: [200: ("Checked out", one)], errors: [400, 404, 409])],
            "/api/v1/attendance/manual": ["post": OAS.op("Record a day by hand", body: manual,
                                                         responses: [201: ("Recorded", one)], errors: [400, 404, 409])],
            "/api/v1/attendance/{id}": [
                "get": OAS.op("One record", parameters: [OAS.pathParam("id")], responses: [200: ("Record", one)], errors: [404]),
                "put": OAS.op("Correct a record", parameters: [OAS.pathParam("id")], body: update,
                              responses: [200: ("Record", one)], errors: [400, 404]),
            ],
            "/api/v1/attendance/employee/{employee_id}": [
                "get": OAS.op("An employee's records, newest first", parameters: [
                    OAS.pathParam("employee_id"), OAS.queryParam("start_date", OAS.string(format: "date")),
                    OAS.queryParam("end_date", OAS.string(format: "date")),
                ], responses: [200: ("Records", OAS.ref("AttendanceList"))], errors: [404]),
            ],
            "/api/v1/attendance/summary/{employee_id}/{month}": [
                "get": OAS.op("Month summary", parameters: [
                    OAS.pathParam("employee_id"),
                    ["name": "month", "in": "path", "required": true, "schema": ["type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"]],
                ], responses: [200: ("Summary", OAS.ref("MonthSummary"))], errors: [404]),
            ],
        ], schemas: ["Attendance": record, "AttendanceList": list, "MonthSummary": summary])
    }
}
