/// Settings every KafkaWire client (producer, consumer, admin) shares. Names follow Kafka's.
public struct ClientConfig: Sendable {
    /// `bootstrap.servers`: where to find the cluster; any reachable one is enough.
    public var bootstrapServers: [BrokerAddress]
    /// `client.id`: sent with every request, shown in broker logs and quotas.
    public var clientId: String = "kafkawire"
    /// `socket.connection.setup.timeout.ms`
    public var connectTimeoutMs: Int = 10_000
    /// `request.timeout.ms`: how long to wait for any single answer.
    public var requestTimeoutMs: Int = 30_000
    /// `metadata.max.age.ms`: refresh metadata at least this often.
    public var metadataMaxAgeMs: Int = 300_000
    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`: exponential backoff between attempts to
    /// reach a broker that failed.
    public var reconnectBackoffMs: Int = 50
    public var reconnectBackoffMaxMs: Int = 1_000
    /// `retry.backoff.ms`: pause before retrying a failed request.
    public var retryBackoffMs: Int = 100
    /// Largest response frame accepted; a bigger size prefix is treated as corruption.
    public var maxResponseBytes: Int = 256 << 20
    /// `security.protocol`: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    public var securityProtocol: SecurityProtocol = .plaintext
    /// `sasl.mechanism`, `sasl.username`, `sasl.password`: used with SASL_PLAINTEXT and SASL_SSL.
    public var sasl = SASLSettings()
    /// `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, `ssl.key.password`,
    /// `ssl.endpoint.identification.algorithm`: used with SSL and SASL_SSL.
    public var tls = TLSSettings()

    /// What each connection to a broker does to secure itself.
    public var security: ConnectionSecurity {
        ConnectionSecurity(securityProtocol: securityProtocol, sasl: sasl, tls: tls)
    }

    public init(bootstrapServers: [BrokerAddress], clientId: String = "kafkawire") {
        self.bootstrapServers = bootstrapServers
        self.clientId = clientId
    }

    public init(bootstrapServers: String, clientId: String = "kafkawire") {
        self.init(bootstrapServers: BrokerAddress.list(bootstrapServers), clientId: clientId)
    }
}
