import HRMSServiceKit

extension LeaveService {
    static var openAPI: OpenAPIDocument {
        let leave = OAS.object([
            "id": OAS.string(format: "uuid"), "employee_id": OAS.string(format: "uuid"),
            "leave_type": OAS.string(enum: LeaveType.names), "start_date": OAS.string(format: "date"),
            "end_date": OAS.string(format: "date"), "days": OAS.integer(), "reason": OAS.string(nullable: true),
            "status": OAS.string(enum: LeaveStatus.names), "approved_by": OAS.string(nullable: true),
            "rejection_reason": OAS.string(nullable: true), "created_at": OAS.string(format: "date-time"),
            "updated_at": OAS.string(format: "date-time"),
        ], required: ["id", "employee_id", "leave_type", "start_date", "end_date", "days", "reason", "status", "approved_by",
                      "rejection_reason", "created_at", "updated_at"])
        let create = OAS.object([
            "employee_id": OAS.string(format: "uuid"), "leave_type": OAS.string(enum: LeaveType.names),
            "start_date": OAS.string(format: "date"), "end_date": OAS.string(format: "date"),
            "reason": OAS.string(nullable: true, maxLength: 2000),
        ], required: ["employee_id", "leave_type", "start_date", "end_date"])
        let update = OAS.object([
            "status": OAS.string(enum: ["approved", "rejected", "cancelled"]),
            "approved_by": OAS.string(nullable: true, maxLength: 255),
            "rejection_reason": OAS.string(nullable: true, maxLength: 2000),
        ], required: ["status"])
        let list = OAS.object(["total": OAS.integer(), "offset": OAS.integer(), "limit": OAS.integer(),
                               "items": OAS.array(OAS.ref("Leave"))], required: ["total", "offset", "limit", "items"])
        let id = OAS.pathParam("id")
        return OpenAPIDocument(title: "HRMS Leave service", paths: [
            "/api/v1/leaves": [
                "post": OAS.op("Request leave (the employee is checked on Employee)", body: create,
                               responses: [201: ("Created", OAS.ref("Leave"))], errors: [400, 404]),
                "get": OAS.op("List leave, newest first", parameters: OAS.pagination + [OAS.queryParam("status", OAS.string(enum: LeaveStatus.names))],
                              responses: [200: ("Leave", OAS.ref("LeaveList"))]),
            ],
            "/api/v1/leaves/{id}": [
                "get": OAS.op("One leave", parameters: [id], responses: [200: ("Leave", OAS.ref("Leave"))], errors: [404]),
                "put": OAS.op("Approve, reject or cancel", parameters: [id], body: update,
                              responses: [200: ("Leave", OAS.ref("Leave"))], errors: [400, 404]),
                "delete": OAS.op("Cancel", parameters: [id], responses: [200: ("Leave", OAS.ref("Leave"))], errors: [400, 404]),
            ],
            "/api/v1/leaves/employee/{employee_id}": [
                "get": OAS.op("An employee's leave", parameters: [OAS.pathParam("employee_id")] + OAS.pagination,
                              responses: [200: ("Leave", OAS.ref("LeaveList"))], errors: [404]),
            ],
        ], schemas: ["Leave": leave, "LeaveList": list])
    }
}
