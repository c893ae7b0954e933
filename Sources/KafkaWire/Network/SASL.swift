import Crypto

// SASL authentication (KIP-43, KIP-152): after ApiVersions, SaslHandshake v1 names the mechanism and
// SaslAuthenticate frames carry the mechanism's messages. PLAIN (RFC 4616) and SCRAM-SHA-256/512
// (RFC 5802, RFC 7677) as Kafka speaks them: no channel binding, no authorization id, the user
// name escaped as a saslname, the password as its UTF-8 bytes (Kafka does not apply SASLprep).

/// Why the client side of a SASL exchange gave up.
struct SASLFailure: Error, Equatable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One client side of a SASL exchange: the first message, then an answer to each server message
/// until the exchange is complete.
protocol SASLClientSession {
    mutating func initialResponse() -> [UInt8]
    /// The next message to send, or nil once the server's last message has been checked.
    mutating func respond(to challenge: [UInt8]) throws(SASLFailure) -> [UInt8]?
}

/// PLAIN: one message, `authzid NUL user NUL password`, with an empty authzid.
struct PlainSession: SASLClientSession {
    let username: String
    let password: String

    func initialResponse() -> [UInt8] { [0] + Array(username.utf8) + [0] + Array(password.utf8) }
    func respond(to challenge: [UInt8]) throws(SASLFailure) -> [UInt8]? { nil }
}

/// SCRAM's hash, chosen by mechanism.
enum ScramHash: Sendable {
    case sha256, sha512

    func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        case .sha512: Array(HMAC<SHA512>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        }
    }

    func hash(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: Array(SHA256.hash(data: data))
        case .sha512: Array(SHA512.hash(data: data))
        }
    }

    /// Hi(str, salt, i) of RFC 5802: PBKDF2 with HMAC as the PRF and one block of output.
    func hi(_ password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        switch self {
        case .sha256: Self.hi(SHA256.self, password, salt, iterations)
        case .sha512: Self.hi(SHA512.self, password, salt, iterations)
        }
    }

    private static func hi<H: HashFunction>(_: H.Type, _ password: [UInt8], _ salt: [UInt8], _ iterations: Int) -> [UInt8] {
        // Keyed once, copied per round: the copy carries the key's inner and outer pads.
        let keyed = HMAC<H>(key: SymmetricKey(data: password))
        var mac = keyed
        mac.update(data: salt + [0, 0, 0, 1])
        var u = Array(mac.finalize())
        var result = u
        for _ in 1..<max(iterations, 1) {
            var next = keyed
            next.update(data: u)
            u = Array(next.finalize())
            for j in result.indices { result[j] ^= u[j] }
        }
        return result
    }
}

/// The client side of SCRAM: client-first, then client-final in answer to server-first, then a
/// check of the server's signature in server-final (which proves the server knew the password too).
struct ScramSession: SASLClientSession {
    /// Kafka's brokers refuse fewer; more than this is a server asking for minutes of CPU.
    static let minIterations = 4096
    static let maxIterations = 1_000_000

    let hash: ScramHash
    let username: String
    let password: String
    let clientNonce: String
    private var clientFirstBare = ""
    private var expectedServerSignature: [UInt8]?
    private var done = false

    /// `nonce` is for tests (RFC 7677's vector); by default 24 random bytes in base64, which has
    /// no comma and only printable characters, as the RFC asks.
    init(hash: ScramHash, username: String, password: String, nonce: String? = nil) {
        self.hash = hash
        self.username = username
        self.password = password
        if let nonce {
            clientNonce = nonce
        } else {
            var rng = SystemRandomNumberGenerator()
            clientNonce = Base64.encode((0..<24).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    /// A user name as a saslname: `=` and `,` escaped as `=3D` and `=2C`.
    static func saslName(_ name: String) -> String {
        var out = ""
        for c in name {
            switch c {
            case "=": out += "=3D"
            case ",": out += "=2C"
            default: out.append(c)
            }
        }
        return out
    }

    mutating func initialResponse() -> [UInt8] {
        clientFirstBare = "n=\(Self.saslName(username)),r=\(clientNonce)"
        return Array(("n,," + clientFirstBare).utf8)
    }

    mutating func respond(to challenge: [UInt8]) throws(SASLFailure) -> [UInt8]? {
        if done { throw SASLFailure("the server sent another message after server-final") }
        let text = String(decoding: challenge, as: UTF8.self)
        guard Array(text.utf8) == challenge else { throw SASLFailure("the server's SCRAM message is not UTF-8") }
        if let expected = expectedServerSignature {
            done = true
            try verifyServerFinal(text, expected: expected)
            return nil
        }
        return Array(try clientFinal(serverFirst: text).utf8)
    }

    private mutating func clientFinal(serverFirst: String) throws(SASLFailure) -> String {
        let attributes = try Self.attributes(serverFirst)
        if let error = attributes.first(where: { $0.key == "e" })?.value {
            throw SASLFailure("the server refused: \(error)")
        }
        guard let first = attributes.first else { throw SASLFailure("empty server-first message") }
        if first.key == "m" { throw SASLFailure("the server requires an extension KafkaWire does not know (m=\(first.value))") }
        guard attributes.count >= 3, attributes[0].key == "r", attributes[1].key == "s", attributes[2].key == "i" else {
            throw SASLFailure("malformed server-first message \"\(serverFirst)\"")
        }
        let nonce = attributes[0].value
        guard nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw SASLFailure("the server's nonce does not extend the client's")
        }
        guard let salt = Base64.decode(attributes[1].value), !salt.isEmpty else {
            throw SASLFailure("the server's salt is not base64")
        }
        guard let iterations = Int(attributes[2].value) else {
            throw SASLFailure("the server's iteration count \"\(attributes[2].value)\" is not a number")
        }
        guard iterations >= Self.minIterations, iterations <= Self.maxIterations else {
            throw SASLFailure("the server asks for \(iterations) iterations, outside \(Self.minIterations)...\(Self.maxIterations)")
        }

        let withoutProof = "c=biws,r=\(nonce)"  // biws = base64("n,,"), the GS2 header
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let salted = hash.hi(Array(password.utf8), salt: salt, iterations: iterations)
        let clientKey = hash.hmac(key: salted, Array("Client Key".utf8))
        let storedKey = hash.hash(clientKey)
        let clientSignature = hash.hmac(key: storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = hash.hmac(key: salted, Array("Server Key".utf8))
        expectedServerSignature = hash.hmac(key: serverKey, authMessage)
        return "\(withoutProof),p=\(Base64.encode(proof))"
    }

    private func verifyServerFinal(_ text: String, expected: [UInt8]) throws(SASLFailure) {
        let attributes = try Self.attributes(text)
        if let error = attributes.first(where: { $0.key == "e" })?.value {
            throw SASLFailure("the server refused: \(error)")
        }
        guard let v = attributes.first(where: { $0.key == "v" })?.value, let signature = Base64.decode(v) else {
            throw SASLFailure("malformed server-final message \"\(text)\"")
        }
        // Not secret-dependent timing on our side: the signature is the server's to prove.
        guard signature == expected else {
            throw SASLFailure("the server's signature does not verify: it does not know this user's credentials")
        }
    }

    /// `k=v,k=v...` with one-letter keys; a value may contain `=`.
    static func attributes(_ text: String) throws(SASLFailure) -> [(key: Character, value: String)] {
        var out: [(key: Character, value: String)] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard part.count >= 2, let key = part.first, key.isLetter, part[part.index(after: part.startIndex)] == "=" else {
                throw SASLFailure("malformed SCRAM attribute \"\(part)\"")
            }
            out.append((key, String(part.dropFirst(2))))
        }
        return out
    }
}

/// Base64 (RFC 4648, with padding), for SCRAM's salts, nonces and proofs.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil for anything but canonical padded base64.
    static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 4 * 3)
        var i = 0
        while i < chars.count {
            let last = i + 4 == chars.count
            let pad = last ? (chars[i + 3] == UInt8(ascii: "=") ? (chars[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            var quad: UInt32 = 0
            for k in 0..<4 {
                let c = chars[i + k]
                let v: UInt8
                if k >= 4 - pad {
                    v = 0
                } else {
                    v = values[Int(c)]
                    if v == 0xFF { return nil }
                }
                quad = quad << 6 | UInt32(v)
            }
            out.append(UInt8(truncatingIfNeeded: quad >> 16))
            if pad < 2 { out.append(UInt8(truncatingIfNeeded: quad >> 8)) }
            if pad < 1 { out.append(UInt8(truncatingIfNeeded: quad)) }
            i += 4
        }
        return out
    }
}

extension BrokerConnection {
    /// Runs SaslHandshake and SaslAuthenticate until the mechanism's exchange completes. Returns the
    /// session lifetime the broker gave (KIP-368; 0 when it has none).
    func authenticate(_ sasl: SASLSettings) async throws(KafkaError) -> Int64 {
        guard let offered = versions.broker[ApiKey.saslHandshake.rawValue], offered.upperBound >= 1 else {
            // v0 sends the mechanism's messages unframed (Kafka before 1.0): not supported.
            throw .unsupportedVersion(
                apiKey: ApiKey.saslHandshake.rawValue, broker: versions.broker[ApiKey.saslHandshake.rawValue], client: 1...1)
        }
        let mechanism = sasl.mechanism.rawValue
        let handshake = try await send(SaslHandshakeRequest(mechanism: mechanism), version: 1)
        guard handshake.errorCode == 0 else {
            let code = KafkaErrorCode(rawValue: handshake.errorCode)
            throw .broker(code, context: "SASL mechanism \(mechanism) at \(address) (the broker offers \(handshake.mechanisms.joined(separator: ", ")))")
        }
        var session: any SASLClientSession = switch sasl.mechanism {
        case .plain: PlainSession(username: sasl.username, password: sasl.password)
        case .scramSHA256: ScramSession(hash: .sha256, username: sasl.username, password: sasl.password)
        case .scramSHA512: ScramSession(hash: .sha512, username: sasl.username, password: sasl.password)
        }
        let context = "SASL \(mechanism) authentication to \(address) as \"\(sasl.username)\""
        var token = session.initialResponse()
        while true {
            let answer = try await send(SaslAuthenticateRequest(authBytes: token))
            guard answer.errorCode == 0 else {
                let why = answer.errorMessage.map { ": \($0)" } ?? ""
                throw .broker(KafkaErrorCode(rawValue: answer.errorCode), context: "\(context) failed\(why)")
            }
            do throws(SASLFailure) {
                guard let next = try session.respond(to: answer.authBytes) else { return answer.sessionLifetimeMs }
                token = next
            } catch {
                throw .broker(.saslAuthenticationFailed, context: "\(context) failed: \(error)")
            }
        }
    }
}
