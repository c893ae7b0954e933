import Foundation
import HRMSServiceKit
import JWTKit

public enum UserStatus: String, APIEnum { case active, suspended, deleted }
public enum PersonRole: String, APIEnum {
    case admin, hrManager = "hr_manager", manager, employee, complianceOfficer = "compliance_officer"
    var role: Role { Role(rawValue: rawValue)! }
}

/// A user as served (never with the password hash).
public struct User: Codable, Sendable, Equatable {
    public var id: String
    public var email: String
    public var first_name: String
    public var last_name: String
    public var phone: String?
    public var role: String
    public var status: UserStatus
    public var employee_id: String?
    public var status_reason: String?
    public var created_at: String
    public var updated_at: String

    init(row: DBRow) throws {
        id = try row.string("id")
        email = try row.string("email")
        first_name = try row.string("first_name")
        last_name = try row.string("last_name")
        phone = row.optionalString("phone")
        role = try row.string("role")
        guard let s = UserStatus(rawValue: try row.string("status")) else { throw DatabaseError("bad status") }
        status = s
        employee_id = row.optionalString("employee_id")
        status_reason = row.optionalString("status_reason")
        created_at = try row.string("created_at")
        updated_at = try row.string("updated_at")
    }

    var name: String { "\(first_name) \(last_name)" }
}

struct SignupRequest: Decodable { var email: String; var password: String; var first_name: String; var last_name: String; var phone: String? }
struct SignupResponse: Encodable, Sendable { var user_id: String; var email: String; var employee_id: String; var status: String }
struct LoginRequest: Decodable { var email: String; var password: String }
struct LoginResponse: Encodable, Sendable { var access_token: String; var token_type = "bearer"; var expires_in: Int; var user: User }
struct TokenRequest: Decodable { var client_id: String; var client_secret: String }
struct TokenResponse: Encodable, Sendable { var access_token: String; var token_type = "bearer"; var expires_in: Int }
struct ProfileUpdate: Decodable { var first_name: String?; var last_name: String?; var phone: String? }
struct PasswordChange: Decodable { var old_password: String; var new_password: String }
struct RoleChange: Decodable { var role: PersonRole }
struct SuspendRequest: Decodable { var reason: String }
struct DeleteRequest: Decodable { var reason: String? }
struct UserList: Encodable, Sendable { var total: Int; var offset: Int; var limit: Int; var users: [User] }
struct RemoteEmployee: Decodable { var id: String; var status: String }
struct PolicyResult: Decodable { var valid: Bool; var violations: [String] }
struct PolicyRequest: Encodable, Sendable { var policy_name: String; var context: [String: JSONValue] }

public enum UserManagementService {
    public static let migrations: [Migration] = [
        Migration(1, "users", [
            """
            CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL, password_hash TEXT NOT NULL, first_name TEXT NOT NULL,
            last_name TEXT NOT NULL, phone TEXT, role TEXT NOT NULL, status TEXT NOT NULL, employee_id TEXT, status_reason TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)
            """,
            "CREATE UNIQUE INDEX users_email ON users (email)",
        ])
    ]

    /// The service's definition once its settings are known (it loads the signing key).
    public static func definition(_ config: ServiceConfig) async throws -> ServiceDefinition {
        let key = try SigningKey.load(config)
        let keys = await key.collection()
        let ttl = try config.env.int("ACCESS_TOKEN_TTL_SECONDS", default: 3600, range: 60...86_400)
        let issuer = TokenIssuer(keys: keys, kid: key.kid, issuer: config.jwtIssuer, audience: config.jwtAudience, ttl: ttl)
        let clients = try serviceClients(config.env.string("SERVICE_CLIENTS", default: ServiceConfig.defaultServiceClients))
        let admin = (config.env.string("ADMIN_EMAIL"), config.env.string("ADMIN_PASSWORD"))
        if let password = admin.1, !Passwords.policyViolations(password).isEmpty {
            throw ConfigError(variable: "ADMIN_PASSWORD", reason: "the password needs " + Passwords.policyViolations(password).joined(separator: ", "))
        }
        let source = LocalTokenSource(issuer: issuer, clientId: config.serviceClientId)
        return ServiceDefinition(
            name: .userManagement, migrations: migrations, openAPI: openAPI,
            routes: { router, env in routes(router, env, issuer: issuer, jwks: key.jwks, clients: clients) },
            setup: { env in
                if let email = admin.0, let password = admin.1 { try await createAdmin(env, email: email, password: password) }
            },
            tokenSource: { _, _ in source },
            verifierSetup: { verifier, _ in await verifier.install(keys) })
    }

    static func serviceClients(_ text: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigError(variable: "SERVICE_CLIENTS", reason: "expected id:secret,id:secret")
            }
            out[String(parts[0])] = String(parts[1])
        }
        return out
    }

    static func createAdmin(_ env: ServiceEnvironment, email rawEmail: String, password: String) async throws {
        let email = try Validate.email(rawEmail, "ADMIN_EMAIL")
        if try await env.db.count("SELECT COUNT(*) AS n FROM users WHERE email = ?", [email]) > 0 { return }
        let hash = try await Passwords.hash(password)
        let id = UUID().uuidString.lowercased()
        let now = Timestamp.now()
        try await env.db.transaction { tx in
            try await tx.execute(
                "INSERT INTO users (id, email, password_hash, first_name, last_name, role, status, created_at, updated_at) VALUES (?, ?, ?, 'Admin', 'User', 'admin', 'active', ?, ?)",
                [id, email, hash, now, now])
            try await tx.enqueue([env.events.audit(.userCreate, key: id, correlationId: nil, data: AuditData(
                userId: id, action: "create", resourceType: "user", resourceId: id, description: "first admin \(email) created from ADMIN_EMAIL"))])
        }
        env.logger.info("first admin created", metadata: ["email": "\(email)"])
    }

    static func fetch(_ db: some DBExecutor, _ id: String) async throws -> (User, String) {
        guard let row = try await db.queryOne("SELECT * FROM users WHERE id = ?", [id]) else { throw APIError.notFound("user \(id) not found") }
        return (try User(row: row), try row.string("password_hash"))
    }

    static func notify(_ env: ServiceEnvironment, _ type: NotificationEventType, _ user: User, _ context: HRMSRequestContext,
                       subject: String, template: String, extra: [String: JSONValue] = [:]) -> OutboxEvent {
        var data: [String: JSONValue] = ["user_id": .string(user.id), "first_name": .string(user.first_name), "email": .string(user.email)]
        data.merge(extra) { _, new in new }
        return env.events.notification(type, key: user.id, correlationId: context.correlationId, data: NotificationData(
            recipientEmail: user.email, recipientName: user.name, subject: subject, templateName: template, templateData: data,
            priority: type == .userSuspended || type == .userPasswordChanged ? "high" : "normal"))
    }

    /// Asks Compliance whether a policy allows the operation: 400 with the violations when not.
    static func checkPolicy(_ env: ServiceEnvironment, _ name: String, _ context: [String: JSONValue], correlationId: String) async throws {
        let result = try await env.client.call(.compliance, .POST, "/api/v1/policies/validate",
                                               body: PolicyRequest(policy_name: name, context: context), correlationId: correlationId, as: PolicyResult.self)
        if !result.valid { throw APIError.badRequest("policy \(name) refused: " + result.violations.joined(separator: "; ")) }
    }

    static func routes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment, issuer: TokenIssuer, jwks: JSONValue, clients: [String: String]) {
        let db = env.db
        router.get(".well-known/jwks.json") { _, _ in JSONResponse(jwks) }
        let auth = router.group("api/v1/auth")

        auth.post("signup") { request, context -> JSONResponse<SignupResponse> in
            let input = try await request.decode(as: SignupRequest.self, context: context)
            let email = try Validate.email(input.email)
            try Passwords.checkPolicy(input.password, field: "password")
            let first = try Validate.nonEmpty(input.first_name, "first_name", max: 100)
            let last = try Validate.nonEmpty(input.last_name, "last_name", max: 100)
            let phone = try Validate.optional(input.phone, "phone", max: 32)
            if try await db.count("SELECT COUNT(*) AS n FROM users WHERE email = ?", [email]) > 0 {
                throw APIError.conflict("a user with email \(email) exists")
            }
            let id = UUID().uuidString.lowercased()
            let cid = context.correlationId
            // Remote calls first (they leave nothing here if they fail), then one local transaction.
            try await checkPolicy(env, "user_signup", ["email": .string(email), "user_id": .string(id)], correlationId: cid)
            struct NewEmployee: Encodable, Sendable { var user_id: String; var email: String; var first_name: String; var last_name: String }
            let employee = try await env.client.call(.employee, .POST, "/api/v1/employees",
                                                     body: NewEmployee(user_id: id, email: email, first_name: first, last_name: last),
                                                     correlationId: cid, as: RemoteEmployee.self)
            let hash = try await Passwords.hash(input.password)
            let now = Timestamp.now()
            do {
                try await db.transaction { tx in
                    try await tx.execute(
                        "INSERT INTO users (id, email, password_hash, first_name, last_name, phone, role, status, employee_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'employee', 'active', ?, ?, ?)",
                        [id, email, hash, first, last, phone, employee.id, now, now])
                    let (user, _) = try await fetch(tx, id)
                    try await tx.enqueue([
                        notify(env, .userCreated, user, context, subject: "Welcome to HRMS", template: "account_created",
                               extra: ["employee_id": .string(employee.id)]),
                        env.events.audit(.userCreate, context: context, resourceType: "user", resourceId: id,
                                         description: "user \(email) signed up", newValue: JSONValue(encoding: user), userId: id),
                    ])
                }
            } catch {
                // Compensate: the employee made for this user must not outlive the failed insert.
                env.logger.error("signup insert failed, removing the employee", metadata: ["employee_id": "\(employee.id)", "error": "\(error)"])
                _ = try? await env.client.raw(.employee, .DELETE, "/api/v1/employees/\(employee.id)?purge=true", correlationId: cid)
                if (try? await db.count("SELECT COUNT(*) AS n FROM users WHERE email = ?", [email])) ?? 0 > 0 {
                    throw APIError.conflict("a user with email \(email) exists")
                }
                throw error
            }
            return JSONResponse(SignupResponse(user_id: id, email: email, employee_id: employee.id, status: "active"), status: .created)
        }

        auth.post("login") { request, context -> JSONResponse<LoginResponse> in
            let input = try await request.decode(as: LoginRequest.self, context: context)
            let email = input.email.trimmingCharacters(in: .whitespaces).lowercased()
            guard let row = try await db.queryOne("SELECT * FROM users WHERE email = ?", [email]),
                  await Passwords.verify(input.password, against: try row.string("password_hash"))
            else { throw APIError.unauthorized("invalid email or password") }
            let user = try User(row: row)
            switch user.status {
            case .deleted: throw APIError.unauthorized("invalid email or password")
            case .suspended: throw APIError.forbidden("account suspended")
            case .active: break
            }
            guard let role = Role(rawValue: user.role) else { throw DatabaseError("bad role") }
            let token = try await issuer.issue(subject: user.id, role: role, email: user.email, employeeId: user.employee_id)
            try await db.transaction { tx in
                try await tx.enqueue([env.events.audit(.userLogin, context: context, resourceType: "user", resourceId: user.id,
                                                       description: "user \(user.email) logged in", userId: user.id)])
            }
            return JSONResponse(LoginResponse(access_token: token, expires_in: issuer.ttl, user: user))
        }

        auth.post("token") { request, context -> JSONResponse<TokenResponse> in
            let input = try await request.decode(as: TokenRequest.self, context: context)
            guard let secret = clients[input.client_id],
                  Passwords.constantTimeEqual(Array(secret.utf8), Array(input.client_secret.utf8))
            else { throw APIError.unauthorized("invalid client credentials") }
            let token = try await issuer.issue(subject: input.client_id, role: .service, email: nil, employeeId: nil)
            return JSONResponse(TokenResponse(access_token: token, expires_in: issuer.ttl))
        }

        /// The caller's own user (a person, not a service account).
        @Sendable func me(_ context: HRMSRequestContext) throws -> String {
            let identity = try context.requireIdentity()
            guard !identity.isService else { throw APIError.forbidden("service accounts have no profile") }
            return identity.subject
        }

        auth.get("users/me") { _, context -> JSONResponse<User> in
            JSONResponse(try await fetch(db, try me(context)).0)
        }

        auth.put("users/me") { request, context -> JSONResponse<User> in
            let id = try me(context)
            let input = try await request.decode(as: ProfileUpdate.self, context: context)
            let first = try input.first_name.map { try Validate.nonEmpty($0, "first_name", max: 100) }
            let last = try input.last_name.map { try Validate.nonEmpty($0, "last_name", max: 100) }
            let phone = try Validate.optional(input.phone, "phone", max: 32)
            return JSONResponse(try await db.transaction { tx in
                let (old, _) = try await fetch(tx, id)
                try await tx.execute("UPDATE users SET first_name = ?, last_name = ?, phone = ?, updated_at = ? WHERE id = ?",
                                     [first ?? old.first_name, last ?? old.last_name, phone ?? old.phone, Timestamp.now(), id])
                let (new, _) = try await fetch(tx, id)
                try await tx.enqueue([env.events.audit(.userUpdate, context: context, resourceType: "user", resourceId: id,
                                                       description: "profile updated", oldValue: JSONValue(encoding: old), newValue: JSONValue(encoding: new))])
                return new
            })
        }

        auth.put("users/me/change-password") { request, context -> JSONResponse<[String: Bool]> in
            let id = try me(context)
            let input = try await request.decode(as: PasswordChange.self, context: context)
            try Passwords.checkPolicy(input.new_password, field: "new_password")
            let (_, stored) = try await fetch(db, id)
            guard await Passwords.verify(input.old_password, against: stored) else { throw APIError.badRequest("old_password is incorrect") }
            let hash = try await Passwords.hash(input.new_password)
            try await db.transaction { tx in
                try await tx.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", [hash, Timestamp.now(), id])
                let (user, _) = try await fetch(tx, id)
                try await tx.enqueue([
                    notify(env, .userPasswordChanged, user, context, subject: "Your password was changed", template: "password_changed"),
                    env.events.audit(.userPasswordChange, context: context, resourceType: "user", resourceId: id, description: "password changed"),
                ])
            }
            return JSONResponse(["ok": true])
        }

        let users = router.group("api/v1/users")
        let readers: Set<Role> = [.admin, .hrManager, .service]

        users.get { request, context -> JSONResponse<UserList> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            let role = try Query.enumValue(request, "role", as: PersonRole.self)
            let status = try Query.enumValue(request, "status", as: UserStatus.self)
            var clauses: [String] = []
            var binds: [any DBBindable] = []
            if let role { clauses.append("role = ?"); binds.append(role.rawValue) }
            if let status { clauses.append("status = ?"); binds.append(status.rawValue) }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            let total = try await db.count("SELECT COUNT(*) AS n FROM users" + filter, binds)
            let rows = try await db.query("SELECT * FROM users\(filter) ORDER BY created_at, id LIMIT ? OFFSET ?", binds + [page.limit, page.offset])
            return JSONResponse(UserList(total: total, offset: page.offset, limit: page.limit, users: try rows.map(User.init)))
        }

        users.get(":id") { _, context -> JSONResponse<User> in
            let identity = try context.requireIdentity()
            let id = try Validate.id(context.parameters.get("id"), "user")
            if identity.subject != id { try context.requireRoles(readers) }
            return JSONResponse(try await fetch(db, id).0)
        }

        /// One admin state change of a user: checks, update, events, all in one transaction.
        @Sendable func change(_ context: HRMSRequestContext, _ id: String, _ body: @Sendable (Transaction, User) async throws -> [OutboxEvent]) async throws -> User {
            try await db.transaction { tx in
                let (old, _) = try await fetch(tx, id)
                let events = try await body(tx, old)
                try await tx.enqueue(events)
                return try await fetch(tx, id).0
            }
        }

        users.post(":id/role") { request, context -> JSONResponse<User> in
            try context.requireRoles(.admin)
            let id = try Validate.id(context.parameters.get("id"), "user")
            let input = try await request.decode(as: RoleChange.self, context: context)
            return JSONResponse(try await change(context, id) { tx, old in
                guard old.status != .deleted else { throw APIError.conflict("user is deleted") }
                try await tx.execute("UPDATE users SET role = ?, updated_at = ? WHERE id = ?", [input.role.rawValue, Timestamp.now(), id])
                var new = old
                new.role = input.role.rawValue
                return [
                    notify(env, .userRoleChanged, new, context, subject: "Your role changed", template: "role_changed",
                           extra: ["old_role": .string(old.role), "new_role": .string(new.role)]),
                    env.events.audit(.userRoleChange, context: context, resourceType: "user", resourceId: id,
                                     description: "role \(old.role) -> \(new.role)", oldValue: ["role": .string(old.role)], newValue: ["role": .string(new.role)]),
                ]
            })
        }

        users.put(":id/suspend") { request, context -> JSONResponse<User> in
            let admin = try context.requireRoles(.admin)
            let id = try Validate.id(context.parameters.get("id"), "user")
            let input = try await request.decode(as: SuspendRequest.self, context: context)
            let reason = try Validate.nonEmpty(input.reason, "reason", max: 500)
            guard admin.subject != id else { throw APIError.badRequest("an admin cannot suspend themself") }
            return JSONResponse(try await change(context, id) { tx, old in
                guard old.status == .active else { throw APIError.conflict("user is \(old.status.rawValue)") }
                try await tx.execute("UPDATE users SET status = 'suspended', status_reason = ?, updated_at = ? WHERE id = ?", [reason, Timestamp.now(), id])
                return [
                    notify(env, .userSuspended, old, context, subject: "Your account was suspended", template: "account_suspended", extra: ["reason": .string(reason)]),
                    env.events.audit(.userSuspend, context: context, resourceType: "user", resourceId: id, description: "suspended: \(reason)",
                                     oldValue: ["status": .string(old.status.rawValue)], newValue: ["status": "suspended"]),
                ]
            })
        }

        users.put(":id/activate") { _, context -> JSONResponse<User> in
            try context.requireRoles(.admin)
            let id = try Validate.id(context.parameters.get("id"), "user")
            return JSONResponse(try await change(context, id) { tx, old in
                guard old.status == .suspended else { throw APIError.conflict("user is \(old.status.rawValue), not suspended") }
                try await tx.execute("UPDATE users SET status = 'active', status_reason = NULL, updated_at = ? WHERE id = ?", [Timestamp.now(), id])
                return [
                    notify(env, .userActivated, old, context, subject: "Your account was activated", template: "account_activated"),
                    env.events.audit(.userActivate, context: context, resourceType: "user", resourceId: id, description: "activated",
                                     oldValue: ["status": "suspended"], newValue: ["status": "active"]),
                ]
            })
        }

        users.delete(":id") { request, context -> JSONResponse<[String: Bool]> in
            let admin = try context.requireRoles(.admin)
            let id = try Validate.id(context.parameters.get("id"), "user")
            // The body is optional: none, or {"reason": "..."}.
            let reason = try await optionalBody(request, as: DeleteRequest.self).flatMap { try Validate.optional($0.reason, "reason", max: 500) }
            guard admin.subject != id else { throw APIError.badRequest("an admin cannot delete themself") }
            let (user, _) = try await fetch(db, id)
            guard user.status != .deleted else { throw APIError.conflict("user is already deleted") }
            // Another active admin must remain (the caller is one, so this is a safety net for direct calls).
            let otherAdmins = try await db.count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND status = 'active' AND id <> ?", [id])
            let cid = context.correlationId
            try await checkPolicy(env, "user_deletion", [
                "user_id": .string(id), "role": .string(user.role), "is_last_admin": .bool(user.role == "admin" && otherAdmins == 0),
            ], correlationId: cid)
            // Terminate the employee first; if the local update then fails, put its status back.
            var previous: String? = nil
            if let employeeId = user.employee_id {
                struct Status: Encodable, Sendable { var status: String }
                do {
                    previous = try await env.client.call(.employee, .GET, "/api/v1/employees/\(employeeId)", correlationId: cid, as: RemoteEmployee.self).status
                    _ = try await env.client.raw(.employee, .PUT, "/api/v1/employees/\(employeeId)", body: Status(status: "terminated"), correlationId: cid)
                } catch RemoteError.notFound {
                    previous = nil   // nothing to terminate
                }
            }
            do {
                _ = try await change(context, id) { tx, old in
                    try await tx.execute("UPDATE users SET status = 'deleted', status_reason = ?, updated_at = ? WHERE id = ?", [reason, Timestamp.now(), id])
                    return [
                        notify(env, .userDeleted, old, context, subject: "Your account was deleted", template: "account_deleted",
                               extra: ["reason": reason.map { .string($0) } ?? .null]),
                        env.events.audit(.userDelete, context: context, resourceType: "user", resourceId: id,
                                         description: "deleted" + (reason.map { ": \($0)" } ?? ""),
                                         oldValue: ["status": .string(old.status.rawValue)], newValue: ["status": "deleted"]),
                    ]
                }
            } catch {
                if let employeeId = user.employee_id, let previous {
                    struct Status: Encodable, Sendable { var status: String }
                    _ = try? await env.client.raw(.employee, .PUT, "/api/v1/employees/\(employeeId)", body: Status(status: previous), correlationId: cid)
                }
                throw error
            }
            return JSONResponse(["ok": true])
        }
    }
}
