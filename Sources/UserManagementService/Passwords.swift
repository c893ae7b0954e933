import Crypto
import Foundation
import HRMSServiceKit
import NIOPosix
import _CryptoExtras

/// Passwords are stored as PBKDF2-HMAC-SHA256 (210,000 rounds, OWASP's minimum for it) with a random
/// 16-byte salt: `pbkdf2-sha256$210000$<salt b64>$<hash b64>`.
enum Passwords {
    static let rounds = 210_000

    /// The policy: at least 8 characters, an upper-case letter, a digit, a special character. Returns
    /// what is missing (empty when it passes).
    static func policyViolations(_ password: String) -> [String] {
        var missing: [String] = []
        if password.count < 8 { missing.append("at least 8 characters") }
        if password.count > 128 { missing.append("at most 128 characters") }
        if !password.contains(where: { $0.isUppercase }) { missing.append("an upper-case letter") }
        if !password.contains(where: { $0.isNumber }) { missing.append("a digit") }
        if !password.contains(where: { !$0.isLetter && !$0.isNumber && !$0.isWhitespace }) { missing.append("a special character") }
        return missing
    }

    static func checkPolicy(_ password: String, field: String) throws {
        let missing = policyViolations(password)
        if !missing.isEmpty { throw APIError.unprocessable("\(field): the password needs " + missing.joined(separator: ", ")) }
    }

    /// Slow on purpose (~0.1 s): runs on NIO's blocking pool, not on the cooperative threads.
    static func hash(_ password: String) async throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
        let key = try await derive(password, salt: salt, rounds: rounds)
        return "pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(key.base64EncodedString())"
    }

    static func verify(_ password: String, against stored: String) async -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let r = Int(parts[1]), r >= rounds,
              let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3])),
              let key = try? await derive(password, salt: Array(salt), rounds: r)
        else { return false }
        return constantTimeEqual(Array(key), Array(expected))
    }

    static func derive(_ password: String, salt: [UInt8], rounds: Int) async throws -> Data {
        try await NIOThreadPool.singleton.runIfActive {
            let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
            return key.withUnsafeBytes { Data($0) }
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
