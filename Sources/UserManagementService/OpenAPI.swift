import HRMSServiceKit

extension UserManagementService {
    static var openAPI: OpenAPIDocument {
        let user = OAS.object([
            "id": OAS.string(format: "uuid"), "email": OAS.string(), "first_name": OAS.string(), "last_name": OAS.string(),
            "phone": OAS.string(nullable: true), "role": OAS.string(enum: Role.allCases.map(\.rawValue)),
            "status": OAS.string(enum: UserStatus.names), "employee_id": OAS.string(nullable: true),
            "status_reason": OAS.string(nullable: true), "created_at": OAS.string(format: "date-time"), "updated_at": OAS.string(format: "date-time"),
        ], required: ["id", "email", "first_name", "last_name", "role", "status", "created_at", "updated_at"])
        let name = OAS.string(maxLength: 100)
        let id = [OAS.pathParam("id")]
        let ok = OAS.ref("Ok")
        return OpenAPIDocument(
            title: "HRMS User Management service",
            paths: [
                "/.well-known/jwks.json": ["get": OAS.op("Public keys that verify access tokens", secured: false,
                                                         responses: [200: ("JWKS", OAS.object(["keys": OAS.array(OAS.anyObject)], required: ["keys"]))])],
                "/api/v1/auth/signup": ["post": OAS.op(
                    "Sign up: creates the user and its employee record (Employee) after a policy check (Compliance)", secured: false,
                    body: OAS.object(["email": OAS.string(format: "email"), "password": OAS.string(maxLength: 128), "first_name": name,
                                      "last_name": name, "phone": OAS.string(nullable: true, maxLength: 32)],
                                     required: ["email", "password", "first_name", "last_name"]),
                    responses: [201: ("Created", OAS.object(["user_id": OAS.string(format: "uuid"), "email": OAS.string(),
                                                             "employee_id": OAS.string(), "status": OAS.string()],
                                                            required: ["user_id", "email", "employee_id", "status"]))],
                    errors: [400, 409])],
                "/api/v1/auth/login": ["post": OAS.op(
                    "Log in", secured: false,
                    body: OAS.object(["email": OAS.string(), "password": OAS.string()], required: ["email", "password"]),
                    responses: [200: ("Token", OAS.object(["access_token": OAS.string(), "token_type": OAS.string(enum: ["bearer"]),
                                                           "expires_in": OAS.integer(), "user": OAS.ref("User")],
                                                          required: ["access_token", "token_type", "expires_in", "user"]))],
                    errors: [401, 403])],
                "/api/v1/auth/token": ["post": OAS.op(
                    "Token for a service account (SERVICE_CLIENTS)", secured: false,
                    body: OAS.object(["client_id": OAS.string(), "client_secret": OAS.string()], required: ["client_id", "client_secret"]),
                    responses: [200: ("Token", OAS.object(["access_token": OAS.string(), "token_type": OAS.string(enum: ["bearer"]), "expires_in": OAS.integer()],
                                                          required: ["access_token", "token_type", "expires_in"]))],
                    errors: [401])],
                "/api/v1/auth/users/me": [
                    "get": OAS.op("The caller's user", responses: [200: ("User", OAS.ref("User"))], errors: [404]),
                    "put": OAS.op("Update the caller's profile",
                                  body: OAS.object(["first_name": OAS.string(nullable: true, maxLength: 100), "last_name": OAS.string(nullable: true, maxLength: 100),
                                                    "phone": OAS.string(nullable: true, maxLength: 32)]),
                                  responses: [200: ("User", OAS.ref("User"))], errors: [404]),
                ],
                "/api/v1/auth/users/me/change-password": ["put": OAS.op(
                    "Change the caller's password",
                    body: OAS.object(["old_password": OAS.string(), "new_password": OAS.string(maxLength: 128)], required: ["old_password", "new_password"]),
                    responses: [200: ("Changed", ok)], errors: [400, 404])],
                "/api/v1/users": ["get": OAS.op(
                    "List users (admin, hr_manager)",
                    parameters: OAS.pagination + [OAS.queryParam("role", OAS.string(enum: PersonRole.names)),
                                                  OAS.queryParam("status", OAS.string(enum: UserStatus.names))],
                    responses: [200: ("Users", OAS.object(["total": OAS.integer(), "offset": OAS.integer(), "limit": OAS.integer(),
                                                           "users": OAS.array(OAS.ref("User"))], required: ["total", "offset", "limit", "users"]))])],
                "/api/v1/users/{id}": [
                    "get": OAS.op("One user (admin, hr_manager, or the user)", parameters: id, responses: [200: ("User", OAS.ref("User"))], errors: [404]),
                    "delete": OAS.op("Soft-delete a user (admin): asks Compliance (user_deletion), terminates the employee", parameters: id,
                                     responses: [200: ("Deleted", ok)], errors: [400, 404, 409, 413, 422]),
                ],
                "/api/v1/users/{id}/role": ["post": OAS.op(
                    "Change a user's role (admin)", parameters: id,
                    body: OAS.object(["role": OAS.string(enum: PersonRole.names)], required: ["role"]),
                    responses: [200: ("User", OAS.ref("User"))], errors: [404, 409])],
                "/api/v1/users/{id}/suspend": ["put": OAS.op(
                    "Suspend a user (admin)", parameters: id, body: OAS.object(["reason": OAS.string(maxLength: 500)], required: ["reason"]),
                    responses: [200: ("User", OAS.ref("User"))], errors: [400, 404, 409])],
                "/api/v1/users/{id}/activate": ["put": OAS.op(
                    "Activate a suspended user (admin)", parameters: id, responses: [200: ("User", OAS.ref("User"))], errors: [404, 409])],
            ],
            schemas: ["User": user])
    }
}
