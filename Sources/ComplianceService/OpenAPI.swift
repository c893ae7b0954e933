import HRMSServiceKit

extension ComplianceService {
    static var openAPI: OpenAPIDocument {
        let ts = OAS.string(format: "date-time")
        let category = OAS.object([
            "id": OAS.string(format: "uuid"), "name": OAS.string(), "description": OAS.string(nullable: true),
            "sensitivity": OAS.string(enum: Sensitivity.names), "created_at": ts, "updated_at": ts,
        ], required: ["id", "name", "sensitivity", "created_at", "updated_at"])
        let categoryInput = OAS.object(["name": OAS.string(nullable: true, maxLength: 100), "description": OAS.string(nullable: true, maxLength: 1000),
                                        "sensitivity": OAS.string(nullable: true, enum: Sensitivity.names)])
        let item = OAS.object([
            "id": OAS.string(format: "uuid"), "data_name": OAS.string(), "category_id": OAS.string(format: "uuid"), "purpose": OAS.string(),
            "legal_basis": OAS.string(enum: LegalBasis.names), "retention_days": OAS.integer(), "recipients": OAS.array(OAS.string()),
            "third_party_sharing": OAS.boolean(), "encryption": OAS.boolean(), "access_level": OAS.string(enum: AccessLevel.names),
            "created_at": ts, "updated_at": ts,
        ], required: ["id", "data_name", "category_id", "purpose", "legal_basis", "retention_days", "recipients", "third_party_sharing",
                      "encryption", "access_level", "created_at", "updated_at"])
        let itemInput = OAS.object([
            "data_name": OAS.string(nullable: true, maxLength: 200), "category_id": OAS.string(format: "uuid", nullable: true),
            "purpose": OAS.string(nullable: true, maxLength: 1000), "legal_basis": OAS.string(nullable: true, enum: LegalBasis.names),
            "retention_days": OAS.integer(minimum: 1, maximum: 36_500, nullable: true), "recipients": ["type": "array", "items": OAS.string(maxLength: 200), "maxItems": 50, "nullable": true],
            "third_party_sharing": OAS.boolean(nullable: true), "encryption": OAS.boolean(nullable: true),
            "access_level": OAS.string(nullable: true, enum: AccessLevel.names),
        ])
        let grant = OAS.object([
            "id": OAS.string(format: "uuid"), "employee_id": OAS.string(), "data_category_id": OAS.string(format: "uuid"), "reason": OAS.string(),
            "granted_by": OAS.string(), "expires_at": ts, "revoked_at": OAS.string(format: "date-time", nullable: true), "created_at": ts, "active": OAS.boolean(),
        ], required: ["id", "employee_id", "data_category_id", "reason", "granted_by", "expires_at", "created_at", "active"])
        let grantInput = OAS.object(["employee_id": OAS.string(maxLength: 64), "data_category_id": OAS.string(format: "uuid"),
                                     "reason": OAS.string(maxLength: 500), "expires_at": ts],
                                    required: ["employee_id", "data_category_id", "reason", "expires_at"])
        func page(_ ref: String) -> JSONValue {
            OAS.object(["total": OAS.integer(), "offset": OAS.integer(), "limit": OAS.integer(), "items": OAS.array(OAS.ref(ref))],
                       required: ["total", "offset", "limit", "items"])
        }
        func crud(_ path: String, _ name: String, _ input: String, create: String) -> [String: JSONValue] {
            let id = [OAS.pathParam("id")]
            return [
                "/api/v1/\(path)": [
                    "post": OAS.op("Create (admin, compliance_officer)", body: OAS.ref(input), responses: [201: ("Created", OAS.ref(name))], errors: [400, 409]),
                    "get": OAS.op("List", parameters: OAS.pagination, responses: [200: ("Page", OAS.ref("\(name)Page"))]),
                ],
                "/api/v1/\(path)/{id}": [
                    "get": OAS.op("One", parameters: id, responses: [200: (name, OAS.ref(name))], errors: [404]),
                    "put": OAS.op("Update (admin, compliance_officer)", parameters: id, body: OAS.ref(input == create ? input : input),
                                  responses: [200: ("Updated", OAS.ref(name))], errors: [400, 404, 409]),
                    "delete": OAS.op("Delete (admin, compliance_officer)", parameters: id, responses: [200: ("Deleted", OAS.ref("Ok"))], errors: [404, 409]),
                ],
            ]
        }
        var paths: [String: JSONValue] = [
            "/api/v1/policies/validate": ["post": OAS.op(
                "Check a policy (user_signup, user_deletion, data_access)",
                body: OAS.object(["policy_name": OAS.string(enum: Policy.names), "context": OAS.anyObject], required: ["policy_name", "context"]),
                responses: [200: ("Result", OAS.object(["valid": OAS.boolean(), "violations": OAS.array(OAS.string())], required: ["valid", "violations"]))])],
            "/api/v1/access-grants": [
                "post": OAS.op("Grant an employee access to a data category until a time", body: OAS.ref("AccessGrantInput"),
                               responses: [201: ("Granted", OAS.ref("AccessGrant"))], errors: [400]),
                "get": OAS.op("List grants", parameters: OAS.pagination + [OAS.queryParam("employee_id", OAS.string()),
                                                                          OAS.queryParam("active", OAS.string(enum: ["true", "false"]))],
                              responses: [200: ("Page", OAS.ref("AccessGrantPage"))]),
            ],
            "/api/v1/access-grants/{id}": [
                "get": OAS.op("One grant", parameters: [OAS.pathParam("id")], responses: [200: ("Grant", OAS.ref("AccessGrant"))], errors: [404]),
                "delete": OAS.op("Revoke a grant", parameters: [OAS.pathParam("id")], responses: [200: ("Revoked", OAS.ref("AccessGrant"))], errors: [404, 409]),
            ],
            "/api/v1/retention/check": ["get": OAS.op(
                "Records kept past their retention (as of a date, default today)",
                parameters: [OAS.queryParam("as_of", OAS.string(format: "date"))],
                responses: [200: ("Report", OAS.object([
                    "as_of": OAS.string(), "total": OAS.integer(),
                    "items": OAS.array(OAS.object(["record_type": OAS.string(), "record_id": OAS.string(), "since": OAS.string(),
                                                   "retention_days": OAS.integer(), "expired_on": OAS.string()],
                                                  required: ["record_type", "record_id", "since", "retention_days", "expired_on"])),
                ], required: ["as_of", "total", "items"]))])],
            "/api/v1/compliance/subject/{user_id}": ["get": OAS.op(
                "Subject access report: what every service holds about a person (admin, compliance_officer, or the person)",
                parameters: [OAS.pathParam("user_id")],
                responses: [200: ("Report", OAS.object(["user_id": OAS.string(), "employee_id": OAS.string(nullable: true),
                                                        "generated_at": OAS.string(), "sources": OAS.anyObject],
                                                       required: ["user_id", "employee_id", "generated_at", "sources"]))],
                errors: [404])],
        ]
        paths.merge(crud("data-categories", "DataCategory", "DataCategoryInput", create: "DataCategoryInput")) { a, _ in a }
        paths.merge(crud("data-inventory", "InventoryItem", "InventoryItemInput", create: "InventoryItemInput")) { a, _ in a }
        return OpenAPIDocument(
            title: "HRMS Compliance service", paths: paths,
            schemas: ["DataCategory": category, "DataCategoryInput": categoryInput, "DataCategoryPage": page("DataCategory"),
                      "InventoryItem": item, "InventoryItemInput": itemInput, "InventoryItemPage": page("InventoryItem"),
                      "AccessGrant": grant, "AccessGrantInput": grantInput, "AccessGrantPage": page("AccessGrant")])
    }
}
