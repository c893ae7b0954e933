#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Client settings by their Kafka names ("linger.ms", "group.id"...), read from a string dictionary
// or from the environment: what a command line's `-X key=value`, a properties file or a service's
// environment hands over. Each config knows its own names and delegates the ones it shares
// (ProducerConfig and ConsumerConfig -> ClientConfig, GroupConsumerConfig -> ConsumerConfig).
//
//   var producer = ProducerConfig(client: ClientConfig(bootstrapServers: "127.0.0.1:9092"))
//   try producer.apply(["linger.ms": "20", "compression.type": "lz4", "client.id": "audit"])
//
//   // KAFKA_BOOTSTRAP_SERVERS=... KAFKA_GROUP_ID=... in the environment:
//   let group = try GroupConsumerConfig(settings: KafkaSettings.environment())
//
// An unknown name or a value that does not fit is a `KafkaError.invalidConfiguration` that names it.

/// Helpers shared by the settings of every config.
public enum KafkaSettings {
    /// Every name some config understands.
    public static var allNames: Set<String> {
        GroupConsumerConfig.settingNames.union(ProducerConfig.settingNames)
    }

    /// Settings from environment variables: `PREFIX` + the Kafka name upper-cased with dots as
    /// underscores (`KAFKA_BOOTSTRAP_SERVERS` -> `bootstrap.servers`, `KAFKA_LINGER_MS` ->
    /// `linger.ms`). Only names some config understands are taken, so unrelated variables that
    /// share the prefix (`KAFKA_HOME`) are left alone.
    ///
    /// - Parameter environment: the variables to read; nil reads the process environment.
    public static func environment(prefix: String = "KAFKA_", _ environment: [String: String]? = nil) -> [String: String] {
        var out: [String: String] = [:]
        for name in allNames {
            let variable = prefix + name.uppercased().replacingDots(with: "_")
            if let environment {
                if let value = environment[variable] { out[name] = value }
            } else if let value = getenv(variable) {
                out[name] = String(cString: value)
            }
        }
        return out
    }

    /// Splits `key=value` (the first `=` separates; the value may contain more). Nil without `=` or
    /// with an empty key.
    public static func parseAssignment(_ text: String) -> (key: String, value: String)? {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { return nil }
        return (String(text[..<eq]).trimmingWhitespace(), String(text[text.index(after: eq)...]))
    }

    // MARK: Value parsing

    static func fail(_ name: String, _ value: String, _ expected: String) -> KafkaError {
        .invalidConfiguration("\(name): expected \(expected), got \"\(value)\"")
    }

    static func int(_ name: String, _ value: String, min: Int = 0) throws(KafkaError) -> Int {
        guard let n = Int(value.trimmingWhitespace()), n >= min else {
            throw fail(name, value, min == 0 ? "a non-negative integer" : "an integer of at least \(min)")
        }
        return n
    }

    static func bool(_ name: String, _ value: String) throws(KafkaError) -> Bool {
        switch value.trimmingWhitespace().lowercased() {
        case "true": return true
        case "false": return false
        default: throw fail(name, value, "true or false")
        }
    }

    static func unknown(_ name: String, in what: String) -> KafkaError {
        .invalidConfiguration("unknown setting \"\(name)\" for \(what)")
    }
}

// MARK: ClientConfig

extension ClientConfig {
    /// The settings every client shares.
    public static let settingNames: Set<String> = [
        "bootstrap.servers", "client.id", "request.timeout.ms", "socket.connection.setup.timeout.ms",
        "metadata.max.age.ms", "retry.backoff.ms", "reconnect.backoff.ms", "reconnect.backoff.max.ms",
        "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
        "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
    ]

    /// A config from settings; `bootstrap.servers` is required.
    public init(settings: [String: String]) throws(KafkaError) {
        guard settings["bootstrap.servers"] != nil else { throw .invalidConfiguration("bootstrap.servers is required") }
        self.init(bootstrapServers: [BrokerAddress]())
        try apply(settings)
    }

    /// Sets each named setting; an unknown name or a bad value throws and leaves the config as it was.
    public mutating func apply(_ settings: [String: String]) throws(KafkaError) {
        var copy = self
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            try copy.set(name, value)
        }
        self = copy
    }

    private mutating func set(_ name: String, _ value: String) throws(KafkaError) {
        switch name {
        case "bootstrap.servers":
            var addresses: [BrokerAddress] = []
            for part in value.split(separator: ",") {
                let text = String(part).trimmingWhitespace()
                if text.isEmpty { continue }
                guard let a = BrokerAddress(text) else { throw KafkaSettings.fail(name, value, "host:port[,host:port...]") }
                addresses.append(a)
            }
            guard !addresses.isEmpty else { throw KafkaSettings.fail(name, value, "host:port[,host:port...]") }
            bootstrapServers = addresses
        case "client.id": clientId = value
        case "request.timeout.ms": requestTimeoutMs = try KafkaSettings.int(name, value, min: 1)
        case "socket.connection.setup.timeout.ms": connectTimeoutMs = try KafkaSettings.int(name, value, min: 1)
        case "metadata.max.age.ms": metadataMaxAgeMs = try KafkaSettings.int(name, value)
        case "retry.backoff.ms": retryBackoffMs = try KafkaSettings.int(name, value)
        case "reconnect.backoff.ms": reconnectBackoffMs = try KafkaSettings.int(name, value)
        case "reconnect.backoff.max.ms": reconnectBackoffMaxMs = try KafkaSettings.int(name, value)
        case "security.protocol":
            guard let p = SecurityProtocol(rawValue: value.trimmingWhitespace().uppercased()) else {
                throw KafkaSettings.fail(name, value, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            }
            securityProtocol = p
        // librdkafka's spelling, plural, takes one mechanism too.
        case "sasl.mechanism", "sasl.mechanisms":
            guard let m = SASLMechanism(rawValue: value.trimmingWhitespace().uppercased()) else {
                throw KafkaSettings.fail(name, value, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
            }
            sasl.mechanism = m
        case "sasl.username": sasl.username = value
        case "sasl.password": sasl.password = value
        case "ssl.ca.location": tls.caLocation = Self.path(value)
        case "ssl.certificate.location": tls.certificateLocation = Self.path(value)
        case "ssl.key.location": tls.keyLocation = Self.path(value)
        case "ssl.key.password": tls.keyPassword = value.isEmpty ? nil : value
        case "ssl.endpoint.identification.algorithm":
            // Kafka's values; an empty one turns the check off, as in the Java client.
            switch value.trimmingWhitespace().lowercased() {
            case "https": tls.verifyHostname = true
            case "none", "": tls.verifyHostname = false
            default: throw KafkaSettings.fail(name, value, "https or none")
            }
        default: throw KafkaSettings.unknown(name, in: "a client")
        }
    }

    /// A file setting: empty means unset.
    private static func path(_ value: String) -> String? {
        let v = value.trimmingWhitespace()
        return v.isEmpty ? nil : v
    }

    /// The current value of every setting, by name (`sasl.password` included: do not log it).
    public var settings: [String: String] {
        [
            "bootstrap.servers": bootstrapServers.map(\.description).joined(separator: ","),
            "client.id": clientId,
            "request.timeout.ms": String(requestTimeoutMs),
            "socket.connection.setup.timeout.ms": String(connectTimeoutMs),
            "metadata.max.age.ms": String(metadataMaxAgeMs),
            "retry.backoff.ms": String(retryBackoffMs),
            "reconnect.backoff.ms": String(reconnectBackoffMs),
            "reconnect.backoff.max.ms": String(reconnectBackoffMaxMs),
            "security.protocol": securityProtocol.rawValue,
            "sasl.mechanism": sasl.mechanism.rawValue,
            "sasl.mechanisms": sasl.mechanism.rawValue,
            "sasl.username": sasl.username,
            "sasl.password": sasl.password,
            "ssl.ca.location": tls.caLocation ?? "",
            "ssl.certificate.location": tls.certificateLocation ?? "",
            "ssl.key.location": tls.keyLocation ?? "",
            "ssl.key.password": tls.keyPassword ?? "",
            "ssl.endpoint.identification.algorithm": tls.verifyHostname ? "https" : "none",
        ]
    }
}

// MARK: ProducerConfig

extension Acks {
    /// `acks` as Kafka spells it: "0", "1", "all" (or "-1").
    public init?(setting: String) {
        switch setting.trimmingWhitespace().lowercased() {
        case "0": self = .none
        case "1": self = .leader
        case "all", "-1": self = .all
        default: return nil
        }
    }

    public var setting: String {
        switch self {
        case .none: "0"
        case .leader: "1"
        case .all: "all"
        }
    }
}

extension CompressionCodec {
    /// `compression.type` as Kafka spells it: none, gzip, snappy, lz4, zstd.
    public init?(setting: String) {
        let name = setting.trimmingWhitespace().lowercased()
        guard let c = CompressionCodec.allCases.first(where: { $0.description == name }) else { return nil }
        self = c
    }
}

extension ProducerConfig: LayeredSettings {
    static var innerSettingNames: Set<String> { ClientConfig.settingNames }
    var innerSettings: ClientConfig {
        get { client }
        set { client = newValue }
    }

    /// The producer's own settings.
    public static let producerSettingNames: Set<String> = [
        "acks", "linger.ms", "batch.size", "compression.type", "delivery.timeout.ms", "buffer.memory",
        "max.block.ms", "max.in.flight.requests.per.connection", "enable.idempotence", "retries",
        "retry.backoff.max.ms", "queue.buffering.max.messages",
    ]
    /// Every setting a producer understands (its own and the client's).
    public static var settingNames: Set<String> { producerSettingNames.union(ClientConfig.settingNames) }

    /// A config from settings; `bootstrap.servers` is required.
    public init(settings: [String: String]) throws(KafkaError) {
        self.init(client: try ClientConfig(settings: settings.filter { ClientConfig.settingNames.contains($0.key) }))
        try apply(settings.filter { !ClientConfig.settingNames.contains($0.key) })
    }

    /// Sets each named setting (client settings go to `client`); an unknown name, a bad value or
    /// settings that contradict each other (`ProducerConfig.validate`) throw and leave the config
    /// as it was.
    public mutating func apply(_ settings: [String: String]) throws(KafkaError) {
        var copy = self
        try copy.applySplitting(settings)
        try copy.validate()
        self = copy
    }

    mutating func setOwn(_ name: String, _ value: String) throws(KafkaError) {
        switch name {
        case "enable.idempotence": enableIdempotence = try KafkaSettings.bool(name, value)
        case "retries": retries = try KafkaSettings.int(name, value)
        case "retry.backoff.max.ms": retryBackoffMaxMs = try KafkaSettings.int(name, value)
        case "queue.buffering.max.messages": maxBufferedRecords = try KafkaSettings.int(name, value, min: 1)
        case "acks":
            guard let a = Acks(setting: value) else { throw KafkaSettings.fail(name, value, "0, 1 or all") }
            acks = a
        case "linger.ms": lingerMs = try KafkaSettings.int(name, value)
        case "batch.size": batchSize = try KafkaSettings.int(name, value, min: 1)
        case "compression.type":
            guard let c = CompressionCodec(setting: value) else {
                throw KafkaSettings.fail(name, value, "none, gzip, snappy, lz4 or zstd")
            }
            compression = c
        case "delivery.timeout.ms": deliveryTimeoutMs = try KafkaSettings.int(name, value, min: 1)
        case "buffer.memory": bufferMemory = try KafkaSettings.int(name, value, min: 1)
        case "max.block.ms": maxBlockMs = try KafkaSettings.int(name, value)
        case "max.in.flight.requests.per.connection": maxInFlightPerConnection = try KafkaSettings.int(name, value, min: 1)
        default: throw KafkaSettings.unknown(name, in: "a producer")
        }
    }

    /// The current value of every setting, by name (the client's included).
    public var settings: [String: String] {
        client.settings.merging([
            "acks": acks.setting,
            "linger.ms": String(lingerMs),
            "batch.size": String(batchSize),
            "compression.type": compression.description,
            "delivery.timeout.ms": String(deliveryTimeoutMs),
            "buffer.memory": String(bufferMemory),
            "max.block.ms": String(maxBlockMs),
            "max.in.flight.requests.per.connection": String(maxInFlightPerConnection),
            "enable.idempotence": String(wantsIdempotence),
            "retries": String(retries),
            "retry.backoff.max.ms": String(retryBackoffMaxMs),
            "queue.buffering.max.messages": String(maxBufferedRecords),
        ]) { a, _ in a }
    }
}

// MARK: ConsumerConfig

extension ConsumerConfig: LayeredSettings {
    static var innerSettingNames: Set<String> { ClientConfig.settingNames }
    var innerSettings: ClientConfig {
        get { client }
        set { client = newValue }
    }

    /// The consumer's own settings.
    public static let consumerSettingNames: Set<String> = [
        "fetch.min.bytes", "fetch.max.bytes", "max.partition.fetch.bytes", "fetch.max.wait.ms",
        "isolation.level", "auto.offset.reset", "max.partition.buffered.bytes", "enable.fetch.sessions",
    ]
    /// Every setting a consumer understands (its own and the client's).
    public static var settingNames: Set<String> { consumerSettingNames.union(ClientConfig.settingNames) }

    /// A config from settings; `bootstrap.servers` is required.
    public init(settings: [String: String]) throws(KafkaError) {
        self.init(client: try ClientConfig(settings: settings.filter { ClientConfig.settingNames.contains($0.key) }))
        try apply(settings.filter { !ClientConfig.settingNames.contains($0.key) })
    }

    /// Sets each named setting (client settings go to `client`); an unknown name or a bad value
    /// throws and leaves the config as it was.
    public mutating func apply(_ settings: [String: String]) throws(KafkaError) {
        try applySplitting(settings)
    }

    mutating func setOwn(_ name: String, _ value: String) throws(KafkaError) {
        switch name {
        case "fetch.min.bytes": fetchMinBytes = try KafkaSettings.int(name, value)
        case "fetch.max.bytes": fetchMaxBytes = try KafkaSettings.int(name, value, min: 1)
        case "max.partition.fetch.bytes": maxPartitionFetchBytes = try KafkaSettings.int(name, value, min: 1)
        case "fetch.max.wait.ms": fetchMaxWaitMs = try KafkaSettings.int(name, value)
        case "isolation.level":
            switch value.trimmingWhitespace().lowercased() {
            case "read_committed": readCommitted = true
            case "read_uncommitted": readCommitted = false
            default: throw KafkaSettings.fail(name, value, "read_committed or read_uncommitted")
            }
        case "auto.offset.reset":
            guard let p = OffsetResetPolicy(rawValue: value.trimmingWhitespace().lowercased()) else {
                throw KafkaSettings.fail(name, value, "earliest, latest or none")
            }
            autoOffsetReset = p
        case "max.partition.buffered.bytes": maxPartitionBufferedBytes = try KafkaSettings.int(name, value, min: 1)
        case "enable.fetch.sessions": fetchSessions = try KafkaSettings.bool(name, value)
        default: throw KafkaSettings.unknown(name, in: "a consumer")
        }
    }

    /// The current value of every setting, by name (the client's included).
    public var settings: [String: String] {
        client.settings.merging([
            "fetch.min.bytes": String(fetchMinBytes),
            "fetch.max.bytes": String(fetchMaxBytes),
            "max.partition.fetch.bytes": String(maxPartitionFetchBytes),
            "fetch.max.wait.ms": String(fetchMaxWaitMs),
            "isolation.level": readCommitted ? "read_committed" : "read_uncommitted",
            "auto.offset.reset": autoOffsetReset.rawValue,
            "max.partition.buffered.bytes": String(maxPartitionBufferedBytes),
            "enable.fetch.sessions": String(fetchSessions),
        ]) { a, _ in a }
    }
}

// MARK: GroupConsumerConfig

extension GroupConsumerConfig: LayeredSettings {
    static var innerSettingNames: Set<String> { ConsumerConfig.settingNames }
    var innerSettings: ConsumerConfig {
        get { consumer }
        set { consumer = newValue }
    }

    /// The group member's own settings.
    public static let groupSettingNames: Set<String> = [
        "group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
        "partition.assignment.strategy", "enable.auto.commit", "auto.commit.interval.ms",
    ]
    /// Every setting a group member understands (its own, the consumer's and the client's).
    public static var settingNames: Set<String> { groupSettingNames.union(ConsumerConfig.settingNames) }

    /// A config from settings; `bootstrap.servers` and `group.id` are required.
    public init(settings: [String: String]) throws(KafkaError) {
        guard let group = settings["group.id"], !group.isEmpty else { throw .invalidConfiguration("group.id is required") }
        self.init(consumer: try ConsumerConfig(settings: settings.filter { ConsumerConfig.settingNames.contains($0.key) }), groupId: group)
        try apply(settings.filter { !ConsumerConfig.settingNames.contains($0.key) })
    }

    /// Sets each named setting (consumer and client settings go to `consumer`); an unknown name or
    /// a bad value throws and leaves the config as it was.
    public mutating func apply(_ settings: [String: String]) throws(KafkaError) {
        try applySplitting(settings)
    }

    mutating func setOwn(_ name: String, _ value: String) throws(KafkaError) {
        switch name {
        case "group.id":
            guard !value.isEmpty else { throw KafkaSettings.fail(name, value, "a group name") }
            groupId = value
        case "group.instance.id": groupInstanceId = value.isEmpty ? nil : value
        case "session.timeout.ms": sessionTimeoutMs = try KafkaSettings.int(name, value, min: 1)
        case "heartbeat.interval.ms": heartbeatIntervalMs = try KafkaSettings.int(name, value, min: 1)
        case "max.poll.interval.ms": maxPollIntervalMs = try KafkaSettings.int(name, value, min: 1)
        case "partition.assignment.strategy":
            var assignors: [any PartitionAssignor] = []
            for part in value.split(separator: ",") {
                let text = String(part).trimmingWhitespace()
                guard let a = Self.assignor(named: text) else {
                    throw KafkaSettings.fail(name, value, "a list of range, roundrobin, cooperative-sticky")
                }
                assignors.append(a)
            }
            guard !assignors.isEmpty else { throw KafkaSettings.fail(name, value, "a list of range, roundrobin, cooperative-sticky") }
            self.assignors = assignors
        case "enable.auto.commit": enableAutoCommit = try KafkaSettings.bool(name, value)
        case "auto.commit.interval.ms": autoCommitIntervalMs = try KafkaSettings.int(name, value, min: 1)
        default: throw KafkaSettings.unknown(name, in: "a group consumer")
        }
    }

    /// An assignor by protocol name, or by the Java client's class name
    /// (`org.apache.kafka.clients.consumer.CooperativeStickyAssignor`).
    static func assignor(named name: String) -> (any PartitionAssignor)? {
        if let a = Assignors.named(name) { return a }
        switch name.split(separator: ".").last.map(String.init) {
        case "RangeAssignor": return Assignors.named("range")
        case "RoundRobinAssignor": return Assignors.named("roundrobin")
        case "CooperativeStickyAssignor": return Assignors.named("cooperative-sticky")
        default: return nil
        }
    }

    /// The current value of every setting, by name (the consumer's and client's included).
    public var settings: [String: String] {
        var own = [
            "group.id": groupId,
            "session.timeout.ms": String(sessionTimeoutMs),
            "heartbeat.interval.ms": String(heartbeatIntervalMs),
            "max.poll.interval.ms": String(maxPollIntervalMs),
            "partition.assignment.strategy": assignors.map(\.name).joined(separator: ","),
            "enable.auto.commit": String(enableAutoCommit),
            "auto.commit.interval.ms": String(autoCommitIntervalMs),
        ]
        if let groupInstanceId { own["group.instance.id"] = groupInstanceId }
        return consumer.settings.merging(own) { a, _ in a }
    }
}

extension String {
    fileprivate func replacingDots(with replacement: Character) -> String {
        String(map { $0 == "." ? replacement : $0 })
    }
}

/// A config with settings of its own around an inner config's (producer and consumer around the
/// client's, the group member around the consumer's): one place splits the names between them.
protocol LayeredSettings {
    associatedtype Inner: SettingsApplying
    static var innerSettingNames: Set<String> { get }
    var innerSettings: Inner { get set }
    /// Sets one of this config's own settings; throws for a name it does not know.
    mutating func setOwn(_ name: String, _ value: String) throws(KafkaError)
}

protocol SettingsApplying {
    mutating func apply(_ settings: [String: String]) throws(KafkaError)
}

extension ClientConfig: SettingsApplying {}
extension ConsumerConfig: SettingsApplying {}

extension LayeredSettings {
    /// Applies every setting, or none: an unknown name or a bad value leaves the config as it was.
    mutating func applySplitting(_ settings: [String: String]) throws(KafkaError) {
        var copy = self
        var inner: [String: String] = [:]
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            if Self.innerSettingNames.contains(name) {
                inner[name] = value
            } else {
                try copy.setOwn(name, value)
            }
        }
        try copy.innerSettings.apply(inner)
        self = copy
    }
}
