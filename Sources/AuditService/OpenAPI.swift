import HRMSServiceKit

extension AuditService {
    static var openAPI: OpenAPIDocument {
        let any: JSONValue = ["nullable": true]
        let entry = OAS.object([
            "id": OAS.string(format: "uuid"), "event_id": OAS.string(), "user_id": OAS.string(nullable: true),
            "action": OAS.string(), "resource_type": OAS.string(), "resource_id": OAS.string(),
            "description": OAS.string(nullable: true), "old_value": any, "new_value": any, "changes": any,
            "ip_address": OAS.string(nullable: true), "user_agent": OAS.string(nullable: true), "service_name": OAS.string(),
            "correlation_id": OAS.string(nullable: true), "created_at": OAS.string(format: "date-time"),
        ], required: ["id", "event_id", "action", "resource_type", "resource_id", "service_name", "created_at"])
        let create = OAS.object([
            "user_id": OAS.string(nullable: true, maxLength: 255), "action": OAS.string(maxLength: 100, minLength: 1),
            "resource_type": OAS.string(maxLength: 100, minLength: 1), "resource_id": OAS.string(maxLength: 255, minLength: 1),
            "description": OAS.string(nullable: true, maxLength: 4000), "old_value": any, "new_value": any, "changes": any,
            "ip_address": OAS.string(nullable: true, maxLength: 64), "user_agent": OAS.string(nullable: true, maxLength: 1000),
            "event_id": OAS.string(format: "uuid", nullable: true), "service_name": OAS.string(nullable: true, maxLength: 100),
        ], required: ["action", "resource_type", "resource_id"])
        let list = OAS.object(["total": OAS.integer(), "offset": OAS.integer(), "limit": OAS.integer(),
                               "items": OAS.array(OAS.ref("AuditEntry"))], required: ["total", "offset", "limit", "items"])
        let filters = ["user_id", "action", "resource_type", "service_name"].map { OAS.queryParam($0, OAS.string()) }
            + ["start_date", "end_date"].map { OAS.queryParam($0, OAS.string(format: "date")) }
        return OpenAPIDocument(title: "HRMS Audit service", paths: [
            "/api/v1/audit-logs": [
                "post": OAS.op("Record an audit entry (append-only)", body: create,
                               responses: [201: ("Stored", OAS.ref("AuditEntry"))]),
                "get": OAS.op("Search the trail, newest first", parameters: OAS.pagination + filters,
                              responses: [200: ("Entries", OAS.ref("AuditList"))]),
            ],
            "/api/v1/audit-logs/{id}": [
                "get": OAS.op("One entry", parameters: [OAS.pathParam("id")], responses: [200: ("Entry", OAS.ref("AuditEntry"))],
                              errors: [404]),
            ],
            "/api/v1/audit-logs/user/{user_id}": [
                "get": OAS.op("One user's trail, newest first", parameters: [OAS.pathParam("user_id", format: nil)] + OAS.pagination,
                              responses: [200: ("Entries", OAS.ref("AuditList"))]),
            ],
        ], schemas: ["AuditEntry": entry, "AuditList": list])
    }
}
