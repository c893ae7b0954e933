import Crypto
import Foundation
import HRMSServiceKit
import JWTKit

/// The token signing key (ES256): from JWT_PRIVATE_KEY_FILE, else generated once into DATA_DIR.
struct SigningKey: Sendable {
    let key: ES256PrivateKey
    let kid: String

    static func load(_ config: ServiceConfig) throws -> SigningKey {
        let path = config.env.string("JWT_PRIVATE_KEY_FILE") ?? "\(config.dataDir)/user-management-jwt-es256.pem"
        let key: ES256PrivateKey
        if FileManager.default.fileExists(atPath: path) {
            do {
                key = try ES256PrivateKey(pem: try String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw ConfigError(variable: "JWT_PRIVATE_KEY_FILE", reason: "\(path) is not an ES256 (P-256) private key PEM")
            }
        } else if config.env.string("JWT_PRIVATE_KEY_FILE") != nil {
            throw ConfigError(variable: "JWT_PRIVATE_KEY_FILE", reason: "\(path) does not exist")
        } else {
            key = ES256PrivateKey()
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            // Owner-only: the key signs every token of the platform.
            guard FileManager.default.createFile(atPath: path, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ConfigError(variable: "DATA_DIR", reason: "cannot write the signing key to \(path)")
            }
        }
        // kid: a digest of the public key, so a new key gets a new kid and verifiers refetch.
        let digest = SHA256.hash(data: Data(key.publicKey.pemRepresentation.utf8))
        let kid = Data(digest.prefix(12)).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return SigningKey(key: key, kid: kid)
    }

    /// The public key set served at /.well-known/jwks.json.
    var jwks: JSONValue {
        let p = key.parameters!
        return ["keys": [["kty": "EC", "crv": "P-256", "x": .string(p.x), "y": .string(p.y), "kid": .string(kid), "alg": "ES256", "use": "sig"]]]
    }

    func collection() async -> JWTKeyCollection {
        await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid))
    }
}

/// Mints access tokens.
struct TokenIssuer: Sendable {
    let keys: JWTKeyCollection
    let kid: String
    let issuer: String
    let audience: String
    let ttl: Int

    func issue(subject: String, role: Role, email: String?, employeeId: String?) async throws -> String {
        let claims = AccessClaims(issuer: issuer, audience: audience, subject: subject, role: role, email: email,
                                  employeeId: employeeId, ttl: TimeInterval(ttl))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }
}

/// User Management's own service token: minted locally, no call to itself.
actor LocalTokenSource: ServiceTokenSource {
    let issuer: TokenIssuer
    let clientId: String
    var cached: (String, Date)?

    init(issuer: TokenIssuer, clientId: String) {
        self.issuer = issuer
        self.clientId = clientId
    }

    func token() async throws -> String {
        if let cached, cached.1 > Date() { return cached.0 }
        let t = try await issuer.issue(subject: clientId, role: .service, email: nil, employeeId: nil)
        cached = (t, Date().addingTimeInterval(TimeInterval(max(issuer.ttl - 60, 1))))
        return t
    }
}
