import KafkaWire

/// The consumers' tuning from the environment (names in docs/service-settings.md). Kafka names go
/// through KafkaWire's `KafkaSettings` (`KAFKA_SESSION_TIMEOUT_MS` -> `session.timeout.ms`), so they
/// are parsed and checked by the same code as every other KafkaWire setting.
extension EventConsumerConfig {
    /// The group-member settings a deployment (or a test shortening Tansu's join wait) may change.
    static let environmentSettingNames: Set<String> = [
        "session.timeout.ms", "heartbeat.interval.ms", "auto.offset.reset", "fetch.max.wait.ms",
    ]

    /// Applies `KAFKA_SESSION_TIMEOUT_MS`, `KAFKA_HEARTBEAT_INTERVAL_MS`, `KAFKA_AUTO_OFFSET_RESET`
    /// and `KAFKA_FETCH_MAX_WAIT_MS`; a bad value names the variable and changes nothing.
    public mutating func apply(environment env: [String: String]) throws(EventPipelineSettings.InvalidSetting) {
        let given = KafkaSettings.environment(env).filter { Self.environmentSettingNames.contains($0.key) }
        var group = groupConsumerConfig
        do {
            try group.apply(given)
        } catch {
            let variables = given.keys.sorted().map { "KAFKA_" + $0.uppercased().replacingOccurrences(of: ".", with: "_") }
            throw .init(description: "\(variables.joined(separator: ", ")): \(error)")
        }
        sessionTimeoutMs = group.sessionTimeoutMs
        heartbeatIntervalMs = group.heartbeatIntervalMs
        autoOffsetReset = group.consumer.autoOffsetReset
        fetchMaxWaitMs = group.consumer.fetchMaxWaitMs
    }
}

extension NotificationConsumer.Config {
    /// The pipeline settings plus `NOTIFICATION_MAX_ATTEMPTS`, `NOTIFICATION_RETRY_BACKOFF_MS` and
    /// `NOTIFICATION_RETRY_BACKOFF_MAX_MS` and the consumer's Kafka tuning.
    public static func fromEnvironment(_ env: [String: String]) throws(EventPipelineSettings.InvalidSetting) -> Self {
        var config = Self(settings: try EventPipelineSettings.fromEnvironment(env))
        try config.consumer.apply(environment: env)
        config.maxAttempts = try positiveInt(env, "NOTIFICATION_MAX_ATTEMPTS", default: config.maxAttempts)
        config.retry.baseMs = try positiveInt(env, "NOTIFICATION_RETRY_BACKOFF_MS", default: config.retry.baseMs)
        config.retry.maxMs = try positiveInt(env, "NOTIFICATION_RETRY_BACKOFF_MAX_MS", default: max(config.retry.maxMs, config.retry.baseMs))
        return config
    }
}

extension AuditConsumer.Config {
    /// The pipeline settings plus `AUDIT_BATCH_SIZE`, `AUDIT_BATCH_MAX_MS` and the consumer's Kafka tuning.
    public static func fromEnvironment(_ env: [String: String]) throws(EventPipelineSettings.InvalidSetting) -> Self {
        var config = Self(settings: try EventPipelineSettings.fromEnvironment(env))
        try config.consumer.apply(environment: env)
        config.maxBatchSize = try positiveInt(env, "AUDIT_BATCH_SIZE", default: config.maxBatchSize)
        config.maxBatchWaitMs = try positiveInt(env, "AUDIT_BATCH_MAX_MS", default: config.maxBatchWaitMs)
        return config
    }
}

/// `env[name]` as an integer >= 1, or `value` when unset or empty.
func positiveInt(_ env: [String: String], _ name: String, default value: Int) throws(EventPipelineSettings.InvalidSetting) -> Int {
    guard let text = env[name], !text.isEmpty else { return value }
    guard let n = Int(text), n >= 1 else {
        throw .init(description: "\(name): expected a positive integer, got \"\(text)\"")
    }
    return n
}
