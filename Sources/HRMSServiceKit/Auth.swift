import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Roles of the platform; `service` is held only by service accounts (service-to-service calls).
public enum Role: String, Codable, Sendable, CaseIterable {
    case admin, hrManager = "hr_manager", manager, employee, complianceOfficer = "compliance_officer", service

    /// Roles a person can hold (assignable through User Management).
    public static let personRoles: [Role] = [.admin, .hrManager, .manager, .employee, .complianceOfficer]
}

/// The authenticated caller, from a verified token.
public struct Identity: Sendable, Equatable {
    /// `sub`: the user id, or the client id of a service account.
    public var subject: String
    public var role: Role
    public var email: String?
    /// The employee record of the user, when it has one.
    public var employeeId: String?

    public init(subject: String, role: Role, email: String? = nil, employeeId: String? = nil) {
        self.subject = subject
        self.role = role
        self.email = email
        self.employeeId = employeeId
    }

    public var isService: Bool { role == .service }
}

/// The access token's claims (User Management signs them; every service verifies them).
public struct AccessClaims: JWTPayload, Sendable {
    public var iss: IssuerClaim
    public var aud: AudienceClaim
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    public var role: String
    public var email: String?
    public var employeeId: String?

    enum CodingKeys: String, CodingKey {
        case iss, aud, sub, exp, iat, role, email, employeeId = "employee_id"
    }

    public init(issuer: String, audience: String, subject: String, role: Role, email: String?, employeeId: String?, ttl: TimeInterval, now: Date = Date()) {
        iss = .init(value: issuer)
        aud = .init(value: [audience])
        sub = .init(value: subject)
        exp = .init(value: now.addingTimeInterval(ttl))
        iat = .init(value: now)
        self.role = role.rawValue
        self.email = email
        self.employeeId = employeeId
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Verifies bearer tokens against a JWKS URL: keys fetched once, cached, fetched again when a token
/// names an unknown key id (rotation), at most once every few seconds so bad tokens cannot hammer it.
public actor TokenVerifier {
    let jwksURL: String
    let issuer: String
    let audience: String
    let http: HTTPClient
    let timeout: TimeAmount
    var keys: JWTKeyCollection?
    var lastFetch: NIODeadline = .distantPast
    let logger: Logger

    public init(jwksURL: String, issuer: String, audience: String, http: HTTPClient, timeoutMs: Int, logger: Logger) {
        self.jwksURL = jwksURL
        self.issuer = issuer
        self.audience = audience
        self.http = http
        self.timeout = .milliseconds(Int64(timeoutMs))
        self.logger = logger
    }

    /// Installs keys directly (User Management verifies with its own keys without fetching them).
    public func install(_ collection: JWTKeyCollection) {
        keys = collection
        lastFetch = .now()
    }

    func refresh(force: Bool) async throws {
        if !force, keys != nil { return }
        if force, keys != nil, NIODeadline.now() - lastFetch < .seconds(5) { return }
        var request = HTTPClientRequest(url: jwksURL)
        request.method = .GET
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            logger.warning("JWKS fetch failed", metadata: ["url": "\(jwksURL)", "error": "\(error)"])
            throw APIError.unavailable("cannot fetch signing keys from \(jwksURL)")
        }
        guard response.status == .ok else { throw APIError.unavailable("JWKS at \(jwksURL) answered \(response.status.code)") }
        let collection = JWTKeyCollection()
        do {
            _ = try await collection.add(jwksJSON: String(buffer: body))
        } catch {
            throw APIError.unavailable("JWKS at \(jwksURL) is not a valid key set")
        }
        keys = collection
        lastFetch = .now()
    }

    /// The identity a token proves, or 401 with why.
    public func verify(_ token: String) async throws -> Identity {
        try await refresh(force: false)
        let claims: AccessClaims
        do {
            claims = try await keys!.verify(token, as: AccessClaims.self)
        } catch let error as JWTError where error.errorType == .unknownKID || error.errorType == .missingKIDHeader {
            try await refresh(force: true)
            do { claims = try await keys!.verify(token, as: AccessClaims.self) } catch { throw APIError.unauthorized("invalid token") }
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw APIError.unauthorized("token expired")
        } catch {
            throw APIError.unauthorized("invalid token")
        }
        guard claims.iss.value == issuer else { throw APIError.unauthorized("token issuer not accepted") }
        guard claims.aud.value.contains(audience) else { throw APIError.unauthorized("token audience not accepted") }
        guard let role = Role(rawValue: claims.role) else { throw APIError.unauthorized("token has an unknown role") }
        return Identity(subject: claims.sub.value, role: role, email: claims.email, employeeId: claims.employeeId)
    }
}

/// Reads `Authorization: Bearer ...` and sets `context.identity` when the token is valid; a present
/// but invalid token is refused at once (401). Routes decide with `requireRoles` what they need.
struct AuthMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    let verifier: TokenVerifier

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw APIError.unauthorized("Authorization must be 'Bearer <token>'")
            }
            let identity = try await verifier.verify(String(parts[1]))
            context.identity = identity
            context.logger[metadataKey: "subject"] = "\(identity.subject)"
        }
        return try await next(request, context)
    }
}
