import HRMSServiceKit

extension EmployeeService {
    static var openAPI: OpenAPIDocument {
        let status = OAS.string(enum: EmployeeStatus.names)
        let text = OAS.string(maxLength: 100)
        let nullableText = OAS.string(nullable: true, maxLength: 100)
        let employee = OAS.object([
            "id": OAS.string(format: "uuid"), "user_id": OAS.string(nullable: true), "email": OAS.string(),
            "first_name": OAS.string(), "last_name": OAS.string(), "department": OAS.string(nullable: true),
            "position": OAS.string(nullable: true), "hire_date": OAS.string(format: "date", nullable: true), "status": status,
            "created_at": OAS.string(format: "date-time"), "updated_at": OAS.string(format: "date-time"),
        ], required: ["id", "email", "first_name", "last_name", "status", "created_at", "updated_at"])
        let create = OAS.object([
            "user_id": OAS.string(nullable: true, maxLength: 64), "email": OAS.string(format: "email"), "first_name": text, "last_name": text,
            "department": nullableText, "position": nullableText, "hire_date": OAS.string(format: "date", nullable: true),
        ], required: ["email", "first_name", "last_name"])
        let update = OAS.object([
            "user_id": OAS.string(nullable: true, maxLength: 64), "email": OAS.string(format: "email", nullable: true),
            "first_name": nullableText, "last_name": nullableText, "department": nullableText, "position": nullableText,
            "hire_date": OAS.string(format: "date", nullable: true), "status": OAS.string(nullable: true, enum: EmployeeStatus.names),
        ])
        let list = OAS.object(["total": OAS.integer(), "offset": OAS.integer(), "limit": OAS.integer(), "items": OAS.array(OAS.ref("Employee"))],
                              required: ["total", "offset", "limit", "items"])
        let id = [OAS.pathParam("id")]
        return OpenAPIDocument(
            title: "HRMS Employee service",
            paths: [
                "/api/v1/employees": [
                    "post": OAS.op("Create an employee (admin, hr_manager, service)", body: OAS.ref("EmployeeCreate"),
                                   responses: [201: ("Created", OAS.ref("Employee"))], errors: [409]),
                    "get": OAS.op("List employees", parameters: OAS.pagination + [
                        OAS.queryParam("status", OAS.string(enum: EmployeeStatus.names)), OAS.queryParam("department", OAS.string()),
                    ], responses: [200: ("Employees", OAS.ref("EmployeeList"))]),
                ],
                "/api/v1/employees/{id}": [
                    "get": OAS.op("One employee (readers, or the employee themself)", parameters: id,
                                  responses: [200: ("Employee", OAS.ref("Employee"))], errors: [404]),
                    "put": OAS.op("Update an employee (any field, status active/on_leave/terminated)", parameters: id,
                                  body: OAS.ref("EmployeeUpdate"), responses: [200: ("Updated", OAS.ref("Employee"))], errors: [404, 409]),
                    "patch": OAS.op("Update some fields of an employee", parameters: id, body: OAS.ref("EmployeeUpdate"),
                                    responses: [200: ("Updated", OAS.ref("Employee"))], errors: [404, 409]),
                    "delete": OAS.op("Terminate an employee", parameters: id, responses: [200: ("Terminated", OAS.ref("Ok"))], errors: [404]),
                ],
            ],
            schemas: ["Employee": employee, "EmployeeCreate": create, "EmployeeUpdate": update, "EmployeeList": list])
    }
}
