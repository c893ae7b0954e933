// How a connection to a broker is secured: `security.protocol` picks TLS and/or SASL; the SASL and
// TLS settings say with what. Kafka's names and values throughout (a Strimzi listener with
// `tls: true` and `authentication: scram-sha-512` is `SASL_SSL` + `SCRAM-SHA-512`).

/// `security.protocol`: whether connections use TLS, SASL, both or neither.
public enum SecurityProtocol: String, Sendable, CaseIterable {
    case plaintext = "PLAINTEXT"
    case ssl = "SSL"
    case saslPlaintext = "SASL_PLAINTEXT"
    case saslSSL = "SASL_SSL"

    public var usesTLS: Bool { self == .ssl || self == .saslSSL }
    public var usesSASL: Bool { self == .saslPlaintext || self == .saslSSL }
}

/// `sasl.mechanism`: the SASL mechanisms KafkaWire speaks.
public enum SASLMechanism: String, Sendable, CaseIterable {
    case plain = "PLAIN"
    case scramSHA256 = "SCRAM-SHA-256"
    case scramSHA512 = "SCRAM-SHA-512"
}

/// SASL credentials (`sasl.mechanism`, `sasl.username`, `sasl.password`).
public struct SASLSettings: Sendable, Hashable {
    /// PLAIN unless set, as the Python clients do (Kafka's own default, GSSAPI, is not supported).
    public var mechanism: SASLMechanism = .plain
    public var username: String = ""
    public var password: String = ""

    public init(mechanism: SASLMechanism = .plain, username: String = "", password: String = "") {
        self.mechanism = mechanism
        self.username = username
        self.password = password
    }
}

/// TLS settings (`ssl.*`). Files are PEM.
public struct TLSSettings: Sendable, Hashable {
    /// `ssl.ca.location`: the CA certificate(s) that signed the brokers' certificates; nil trusts
    /// the system's store.
    public var caLocation: String?
    /// `ssl.certificate.location` / `ssl.key.location`: this client's certificate chain and key,
    /// for brokers that require mutual TLS; both or neither.
    public var certificateLocation: String?
    public var keyLocation: String?
    /// `ssl.key.password`: the passphrase of an encrypted key.
    public var keyPassword: String?
    /// `ssl.endpoint.identification.algorithm`: `https` (the default) checks that the broker's
    /// certificate names the host (or IP) connected to; `none` checks only the chain.
    public var verifyHostname: Bool = true

    public init(
        caLocation: String? = nil, certificateLocation: String? = nil, keyLocation: String? = nil,
        keyPassword: String? = nil, verifyHostname: Bool = true
    ) {
        self.caLocation = caLocation
        self.certificateLocation = certificateLocation
        self.keyLocation = keyLocation
        self.keyPassword = keyPassword
        self.verifyHostname = verifyHostname
    }
}

/// Everything a connection needs to secure itself.
public struct ConnectionSecurity: Sendable, Hashable {
    public var securityProtocol: SecurityProtocol
    public var sasl: SASLSettings
    public var tls: TLSSettings

    public init(securityProtocol: SecurityProtocol = .plaintext, sasl: SASLSettings = .init(), tls: TLSSettings = .init()) {
        self.securityProtocol = securityProtocol
        self.sasl = sasl
        self.tls = tls
    }

    public static let plaintext = ConnectionSecurity()

    /// Combinations that cannot work, found before any connection is tried.
    func validate() throws(KafkaError) {
        if securityProtocol.usesSASL && sasl.username.isEmpty {
            throw .invalidConfiguration("security.protocol \(securityProtocol.rawValue) needs sasl.username (and sasl.password)")
        }
        if securityProtocol.usesTLS && (tls.certificateLocation == nil) != (tls.keyLocation == nil) {
            throw .invalidConfiguration("ssl.certificate.location and ssl.key.location go together (mutual TLS): set both or neither")
        }
    }
}
