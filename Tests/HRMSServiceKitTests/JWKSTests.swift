import AsyncHTTPClient
import Foundation
import HRMSServiceKit
import HummingbirdTesting
import JWTKit
import Logging
import NIOConcurrencyHelpers
import Testing

/// The verifier against a real JWKS endpoint: keys fetched, cached, fetched again for an unknown kid
/// (key rotation), and a token of a key the set never had refused.
struct JWKSTests {
    static func jwk(_ key: ES256PrivateKey, kid: String) -> JSONValue {
        let p = key.parameters!
        return ["kty": "EC", "crv": "P-256", "x": .string(p.x), "y": .string(p.y), "kid": .string(kid), "alg": "ES256", "use": "sig"]
    }

    static func sign(_ key: ES256PrivateKey, kid: String, role: Role = .manager) async throws -> String {
        let keys = await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return try await keys.sign(AccessClaims(issuer: "iss", audience: "aud", subject: "s", role: role, email: nil, employeeId: nil, ttl: 600),
                                   kid: JWKIdentifier(string: kid))
    }

    @Test func rotationIsPickedUpAndUnknownKeysRefused() async throws {
        let first = ES256PrivateKey()
        let second = ES256PrivateKey()
        let served = NIOLockedValueBox<[JSONValue]>([Self.jwk(first, kid: "k1")])
        let fetches = NIOLockedValueBox(0)
        let router = Router()
        router.get("jwks") { _, _ -> JSONResponse<JSONValue> in
            fetches.withLockedValue { $0 += 1 }
            return JSONResponse(["keys": .array(served.withLockedValue { $0 })])
        }
        let app = Application(router: router)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await Self.check(port: port, served: served, fetches: fetches, first: first, second: second)
        }
    }

    static func check(port: Int, served: NIOLockedValueBox<[JSONValue]>, fetches: NIOLockedValueBox<Int>,
                      first: ES256PrivateKey, second: ES256PrivateKey) async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await checkVerifier(http: http, port: port, served: served, fetches: fetches, first: first, second: second)
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    static func checkVerifier(http: HTTPClient, port: Int, served: NIOLockedValueBox<[JSONValue]>, fetches: NIOLockedValueBox<Int>,
                              first: ES256PrivateKey, second: ES256PrivateKey) async throws {
        do {
            let verifier = TokenVerifier(jwksURL: "http://127.0.0.1:\(port)/jwks", issuer: "iss", audience: "aud", http: http,
                                         timeoutMs: 2000, logger: { var l = Logger(label: "t"); l.logLevel = .error; return l }(), minRefreshInterval: .zero)
            let identity = try await verifier.verify(try await Self.sign(first, kid: "k1"))
            #expect(identity == Identity(subject: "s", role: .manager))
            _ = try await verifier.verify(try await Self.sign(first, kid: "k1"))
            #expect(fetches.withLockedValue { $0 } == 1)   // cached

            served.withLockedValue { $0.append(Self.jwk(second, kid: "k2")) }
            _ = try await verifier.verify(try await Self.sign(second, kid: "k2"))
            #expect(fetches.withLockedValue { $0 } == 2)   // unknown kid: fetched again

            let stranger = try await Self.sign(ES256PrivateKey(), kid: "k1")   // known kid, wrong key
            await #expect(throws: APIError.self) { _ = try await verifier.verify(stranger) }
            let unknown = try await Self.sign(ES256PrivateKey(), kid: "k9")
            do {
                _ = try await verifier.verify(unknown)
                Issue.record("accepted a token of an unknown key")
            } catch let error as APIError {
                #expect(error.status == .unauthorized)
            }
        }
    }
}
