import Foundation
import HRMSServiceKit
import HummingbirdTesting
import JWTKit
import NIOCore
import Testing

/// The kit's HTTP behaviour through a real server (HummingbirdTesting `.live`): errors, input limits,
/// pagination, auth guards, correlation ids, metrics, readiness.
struct AppTests {
    enum Kind: String, APIEnum { case sick, casual }
    struct Input: Decodable { var name: String; var days: Int; var kind: Kind; var nested: Nested? }
    struct Nested: Decodable { var flag: Bool }
    struct Echo: Encodable, Sendable { var name: String; var days: Int; var kind: String }

    /// A key pair that signs the test tokens, installed in the verifier (no JWKS fetch).
    static let key = ES256PrivateKey()

    static func token(role: Role, issuer: String = "hrms-user-management", audience: String = "hrms", ttl: TimeInterval = 600) async throws -> String {
        let keys = await JWTKeyCollection().add(ecdsa: key, kid: "test")
        return try await keys.sign(AccessClaims(issuer: issuer, audience: audience, subject: "sub-\(role.rawValue)", role: role,
                                                email: nil, employeeId: nil, ttl: ttl), kid: "test")
    }

    struct StaticTokens: ServiceTokenSource {
        func token() async throws -> String { try await AppTests.token(role: .service) }
    }

    static func config(port: Int, dir: String, extra: [String: String] = [:]) throws -> ServiceConfig {
        var env = ["PORT": String(port), "DATA_DIR": dir, "MAX_BODY_BYTES": "1024", "LOG_LEVEL": "error",
                   "AUDIT_SERVICE_URL": "http://127.0.0.1:18005", "HTTP_CLIENT_TIMEOUT_MS": "1000"]
        env.merge(extra) { _, new in new }
        return try ServiceConfig(service: .employee, environment: Environment(env))
    }

    static func definition(_ name: HRMSServiceName = .employee) -> ServiceDefinition {
        ServiceDefinition(
            name: name, migrations: [],
            openAPI: OpenAPIDocument(title: "test", paths: [:], schemas: [:]),
            routes: { router, env in
                router.post("t/body") { request, context -> JSONResponse<Echo> in
                    let input = try await request.decode(as: Input.self, context: context)
                    return JSONResponse(Echo(name: input.name, days: input.days, kind: input.kind.rawValue), status: .created)
                }
                router.get("t/page") { request, _ -> JSONResponse<[String: Int]> in
                    let page = try Pagination(request)
                    return JSONResponse(["offset": page.offset, "limit": page.limit])
                }
                router.get("t/admin") { _, context -> JSONResponse<[String: String]> in
                    let who = try context.requireRoles(.admin, .hrManager)
                    return JSONResponse(["subject": who.subject])
                }
                router.get("t/rule") { _, _ -> JSONResponse<[String: String]> in throw APIError.badRequest("start after end") }
                router.get("t/bug") { _, _ -> JSONResponse<[String: String]> in throw DatabaseError("boom") }
                // Calls the audit slot (another app in the test) and returns what it saw.
                router.get("t/call") { _, context -> Response in
                    let data = try await env.client.raw(.audit, .GET, "/t/seen", correlationId: context.correlationId)
                    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
                }
                router.get("t/seen") { request, context -> JSONResponse<[String: String]> in
                    JSONResponse(["correlation": request.headers[.correlationId] ?? "", "role": context.identity?.role.rawValue ?? "none"])
                }
                router.get("t/missing") { _, context -> Response in
                    _ = try await env.client.raw(.audit, .GET, "/nothing/here", correlationId: context.correlationId)
                    return Response(status: .ok)
                }
            },
            tokenSource: { _, _ in StaticTokens() },
            verifierSetup: { verifier, _ in await verifier.install(await JWTKeyCollection().add(ecdsa: AppTests.key, kid: "test")) })
    }

    static func withApp(extra: [String: String] = [:], _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kitapp-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let app = try await HRMSApp.build(definition(), config: config(port: 0, dir: dir, extra: extra))
        try await app.test(.live) { client in try await test(client) }
    }

    static func detail(_ response: TestResponse) throws -> String {
        let object = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
        return try #require(object["detail"])
    }

    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func bodyDecodingErrorsName422AndTheField() async throws {
        try await Self.withApp { client in
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"name":"a","days":2,"kind":"sick"}"#, .created, ""),
                (#"{"name":"a","days":2,"kind":"sick""#, .unprocessableContent, "malformed JSON"),
                ("", .unprocessableContent, "empty"),
                (#"{"name":"a","days":"2","kind":"sick"}"#, .unprocessableContent, "days: expected an integer"),
                (#"{"name":"a","kind":"sick"}"#, .unprocessableContent, "days: field required"),
                (#"{"name":"a","days":2,"kind":"holiday"}"#, .unprocessableContent, "kind: 'holiday' is not one of sick, casual"),
                (#"{"name":"a","days":2,"kind":"sick","nested":{"flag":"yes"}}"#, .unprocessableContent, "nested.flag: expected a boolean"),
                (#"{"name":null,"days":2,"kind":"sick"}"#, .unprocessableContent, "name: expected a string, got null"),
                (#"[1]"#, .unprocessableContent, "body"),
            ]
            for (body, status, fragment) in cases {
                try await client.execute(uri: "/t/body", method: .post, headers: [.contentType: "application/json"], body: Self.json(body)) { r in
                    #expect(r.status == status, "\(body)")
                    if status != .created {
                        let detail = try Self.detail(r)
                        #expect(detail.contains(fragment), "\(body): \(detail)")
                    }
                }
            }
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await Self.withApp { client in
            let big = #"{"name":""# + String(repeating: "x", count: 2000) + #"","days":1,"kind":"sick"}"#
            try await client.execute(uri: "/t/body", method: .post, body: Self.json(big)) { r in
                #expect(r.status == .contentTooLarge)
                let detail = try Self.detail(r)
                #expect(detail.contains("1024"))
            }
        }
    }

    @Test func paginationBounds() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/t/page", method: .get) { r in
                #expect(String(buffer: r.body) == #"{"limit":20,"offset":0}"#)
            }
            try await client.execute(uri: "/t/page?offset=5&limit=100", method: .get) { r in
                #expect(String(buffer: r.body) == #"{"limit":100,"offset":5}"#)
            }
            for bad in ["limit=0", "limit=101", "offset=-1", "limit=x", "offset=99999999999999999999"] {
                try await client.execute(uri: "/t/page?\(bad)", method: .get) { r in
                    #expect(r.status == .unprocessableContent, "\(bad)")
                    let detail = try Self.detail(r)
                    #expect(detail.hasPrefix(String(bad.prefix(while: { $0 != "=" }))))
                }
            }
        }
    }

    @Test func errorsAreJSONDetails() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/t/rule", method: .get) { r in
                #expect(r.status == .badRequest)
                let detail = try Self.detail(r)
                #expect(detail == "start after end")
                #expect(r.headers[.contentType] == "application/json")
            }
            try await client.execute(uri: "/no/such/route", method: .get) { r in
                #expect(r.status == .notFound)
                _ = try Self.detail(r)
            }
            try await client.execute(uri: "/t/bug", method: .get) { r in
                #expect(r.status == .internalServerError)
                let detail = try Self.detail(r)
                #expect(detail == "internal error")   // no internals leak
            }
        }
    }

    @Test func roleGuards() async throws {
        let admin = try await Self.token(role: .admin)
        let employee = try await Self.token(role: .employee)
        let expired = try await Self.token(role: .admin, ttl: -60)
        let wrongAudience = try await Self.token(role: .admin, audience: "other")
        let wrongIssuer = try await Self.token(role: .admin, issuer: "someone-else")
        let foreignKey = try await {
            let keys = await JWTKeyCollection().add(ecdsa: ES256PrivateKey(), kid: "test")
            return try await keys.sign(AccessClaims(issuer: "hrms-user-management", audience: "hrms", subject: "x", role: .admin,
                                                    email: nil, employeeId: nil, ttl: 600), kid: "test")
        }()
        try await Self.withApp { client in
            let cases: [(String?, HTTPResponse.Status)] = [
                (nil, .unauthorized), ("Bearer garbage", .unauthorized), ("Basic YTpi", .unauthorized),
                ("Bearer \(expired)", .unauthorized), ("Bearer \(wrongAudience)", .unauthorized),
                ("Bearer \(wrongIssuer)", .unauthorized), ("Bearer \(foreignKey)", .unauthorized),
                ("Bearer \(employee)", .forbidden), ("Bearer \(admin)", .ok),
            ]
            for (auth, status) in cases {
                var headers = HTTPFields()
                if let auth { headers[.authorization] = auth }
                try await client.execute(uri: "/t/admin", method: .get, headers: headers) { r in
                    #expect(r.status == status, "\(auth ?? "none")")
                    if status != .ok { _ = try Self.detail(r) }
                }
            }
        }
    }

    @Test func correlationIdEchoedGeneratedAndPassedDownstream() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kitapp-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The downstream service listens on the audit slot of this helper's ports (18005).
        let downstream = try await HRMSApp.build(Self.definition(.audit), config: Self.config(port: 18005, dir: dir + "/d"))
        try await downstream.test(.live) { _ in
            try await Self.withApp { client in
                try await client.execute(uri: "/health", method: .get) { r in
                    #expect(UUID(uuidString: r.headers[.correlationId] ?? "") != nil)
                    #expect(r.headers[.requestId] != nil)
                }
                try await client.execute(uri: "/t/call", method: .get, headers: [.correlationId: "corr-42"]) { r in
                    #expect(r.status == .ok)
                    #expect(r.headers[.correlationId] == "corr-42")
                    let seen = try JSONDecoder().decode([String: String].self, from: Data(buffer: r.body))
                    #expect(seen == ["correlation": "corr-42", "role": "service"])
                }
                // A 404 downstream is a typed not-found, answered 404 here.
                try await client.execute(uri: "/t/missing", method: .get) { r in #expect(r.status == .notFound) }
            }
        }
        // Downstream gone: 503 with the service named, quickly (deadline 1 s).
        try await Self.withApp { client in
            try await client.execute(uri: "/t/call", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                let detail = try Self.detail(r)
                #expect(detail.contains("audit-service"))
            }
        }
    }

    @Test func metricsHealthAndOpenAPI() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/t/page?limit=3", method: .get) { _ in }
            try await client.execute(uri: "/health/ready", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body) == #"{"service":"employee-service","status":"ready"}"#)
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(text.contains(#"http_requests_total{method="GET",route="/t/page",status="200"}"#))
                #expect(text.contains(#"http_request_duration_seconds_bucket{method="GET",route="/t/page",le="#))
            }
            try await client.execute(uri: "/openapi.json", method: .get) { r in
                let doc = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: r.body))
                guard case .object(let o) = doc, case .object(let paths)? = o["paths"] else { Issue.record("not an object"); return }
                #expect(o["openapi"] == "3.0.3")
                #expect(paths["/health/ready"] != nil)
            }
        }
    }

    @Test func badSettingsAreNamed() throws {
        #expect(throws: ConfigError.self) { try ServiceConfig(service: .leave, environment: Environment(["PORT": "http"])) }
        do {
            _ = try ServiceConfig(service: .leave, environment: Environment(["MAX_BODY_BYTES": "-5"]))
            Issue.record("accepted")
        } catch { #expect(error.variable == "MAX_BODY_BYTES") }
        do {
            _ = try ServiceConfig(service: .leave, environment: Environment(["DATABASE_URL": "mysql://x"]))
            Issue.record("accepted")
        } catch { #expect(error.variable == "DATABASE_URL") }
        let c = try ServiceConfig(service: .leave, environment: Environment(["DATA_DIR": "/tmp/x"]))
        #expect(c.port == 8002 && c.database == .sqlite(path: "/tmp/x/leave-service.sqlite") && c.serviceURLs[.employee] == "http://127.0.0.1:8001")
    }
}
