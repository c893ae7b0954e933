import Logging

/// Cluster administration: topics, offsets, configs.
public final class KafkaAdmin: Sendable {
    public let cluster: KafkaCluster

    public init(config: ClientConfig, logger: Logger = Logger(label: "kafkawire.admin")) {
        cluster = KafkaCluster(config: config, logger: logger)
    }

    public func close() async { await cluster.close() }

    /// A topic to create.
    public struct NewTopic: Sendable {
        public var name: String
        public var partitions: Int32
        public var replicationFactor: Int16
        public var configs: [String: String]
        public init(name: String, partitions: Int32 = 1, replicationFactor: Int16 = 1, configs: [String: String] = [:]) {
            self.name = name
            self.partitions = partitions
            self.replicationFactor = replicationFactor
            self.configs = configs
        }
    }

    /// Creates topics; one that already exists is an error unless `ignoreExisting`.
    public func createTopics(_ topics: [NewTopic], timeoutMs: Int32 = 30_000, ignoreExisting: Bool = false) async throws(KafkaError) {
        var request = CreateTopicsRequest()
        request.timeoutMs = timeoutMs
        request.topics = topics.map { t in
            CreateTopicsRequest.CreatableTopic(
                name: t.name, numPartitions: t.partitions, replicationFactor: t.replicationFactor,
                configs: t.configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) })
        }
        let response = try await sendToController(request)
        for r in response.topics {
            let code = KafkaErrorCode(rawValue: r.errorCode)
            if code == .none || (ignoreExisting && code == .topicAlreadyExists) { continue }
            throw .broker(code, context: "create topic \(r.name)\(r.errorMessage.map { ": \($0)" } ?? "")")
        }
        try await cluster.refreshMetadata(topics: topics.map(\.name))
    }

    /// Deletes topics by name.
    public func deleteTopics(_ names: [String], timeoutMs: Int32 = 30_000) async throws(KafkaError) {
        var request = DeleteTopicsRequest()
        request.timeoutMs = timeoutMs
        request.topicNames = names
        request.topics = names.map { .init(name: $0) }
        let response = try await sendToController(request)
        for r in response.responses {
            let code = KafkaErrorCode(rawValue: r.errorCode)
            if code != .none {
                throw .broker(code, context: "delete topic \(r.name ?? "?")\(r.errorMessage.map { ": \($0)" } ?? "")")
            }
        }
        await cluster.invalidateMetadata()
    }

    /// Every topic in the cluster with its partitions.
    public func metadata() async throws(KafkaError) -> ClusterMetadata {
        try await cluster.allTopicsMetadata()
    }

    /// Earliest and latest offset of every partition of `topic`.
    public func offsets(topic: String) async throws(KafkaError) -> [(partition: Int32, earliest: Int64, latest: Int64)] {
        let t = try await cluster.topic(topic)
        let tps = t.partitions.map { TopicPartition(topic: topic, partition: $0.partition) }
        let earliest = try await listOffsets(cluster: cluster, tps.map { ($0, -2) }, readCommitted: false)
        let latest = try await listOffsets(cluster: cluster, tps.map { ($0, -1) }, readCommitted: false)
        return tps.map { ($0.partition, earliest[$0] ?? -1, latest[$0] ?? -1) }
    }

    /// The offset of the first record at or after `timestamp` (ms) per partition; -1 where none is.
    public func offsets(topic: String, at timestamp: Int64) async throws(KafkaError) -> [Int32: Int64] {
        let t = try await cluster.topic(topic)
        let tps = t.partitions.map { TopicPartition(topic: topic, partition: $0.partition) }
        let found = try await listOffsets(cluster: cluster, tps.map { ($0, timestamp) }, readCommitted: false)
        return Dictionary(uniqueKeysWithValues: tps.map { ($0.partition, found[$0] ?? -1) })
    }

    /// One configuration entry as the broker reports it.
    public struct ConfigEntry: Sendable, Equatable {
        public var name: String
        public var value: String?
        public var isReadOnly: Bool
        public var isSensitive: Bool
        public var isDefault: Bool
    }

    public enum ConfigResource: Sendable {
        case topic(String)
        case broker(Int32)
    }

    /// Configuration of a topic or broker (`keys == nil`: all of them).
    public func describeConfigs(_ resource: ConfigResource, keys: [String]? = nil) async throws(KafkaError) -> [ConfigEntry] {
        var request = DescribeConfigsRequest()
        var r = DescribeConfigsRequest.DescribeConfigsResource()
        switch resource {
        case let .topic(name):
            r.resourceType = 2
            r.resourceName = name
        case let .broker(id):
            r.resourceType = 4
            r.resourceName = String(id)
        }
        r.configurationKeys = keys
        request.resources = [r]
        let connection: BrokerConnection
        if case let .broker(id) = resource {
            connection = try await cluster.connection(to: id)
        } else {
            connection = try await cluster.anyConnection()
        }
        let response = try await connection.send(request)
        var out: [ConfigEntry] = []
        for result in response.results {
            let code = KafkaErrorCode(rawValue: result.errorCode)
            guard code == .none else {
                throw .broker(code, context: "describe configs \(result.resourceName)\(result.errorMessage.map { ": \($0)" } ?? "")")
            }
            for c in result.configs {
                // Config source 5 is DEFAULT_CONFIG (v1+); v0 had an explicit flag.
                out.append(ConfigEntry(
                    name: c.name, value: c.value, isReadOnly: c.readOnly, isSensitive: c.isSensitive,
                    isDefault: c.isDefault || c.configSource == 5))
            }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// The API versions broker `nodeId` (or any broker) offers, and the versions KafkaWire uses.
    public func apiVersions(nodeId: Int32? = nil) async throws(KafkaError) -> ApiVersionTable {
        let c: BrokerConnection
        if let nodeId { c = try await cluster.connection(to: nodeId) } else { c = try await cluster.anyConnection() }
        return c.versions
    }

    /// Topic admin requests go to the controller where one is advertised (older clusters require
    /// it; KRaft brokers forward them).
    private func sendToController<R: KafkaRequest>(_ request: R) async throws(KafkaError) -> R.Response {
        var meta = await cluster.metadata
        if meta.brokers.isEmpty { meta = try await cluster.refreshMetadata() }
        let connection: BrokerConnection
        if meta.controllerId >= 0, meta.brokers[meta.controllerId] != nil {
            connection = try await cluster.connection(to: meta.controllerId)
        } else {
            connection = try await cluster.anyConnection()
        }
        return try await connection.send(request)
    }
}
