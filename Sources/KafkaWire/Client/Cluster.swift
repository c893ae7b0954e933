import Logging

/// What the client knows about one partition.
public struct PartitionMetadata: Sendable, Equatable {
    public var partition: Int32
    public var leader: Int32
    public var leaderEpoch: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
    public var offlineReplicas: [Int32]
    public var error: KafkaErrorCode
}

public struct TopicMetadata: Sendable, Equatable {
    public var name: String
    public var topicId: KafkaUUID
    public var isInternal: Bool
    public var error: KafkaErrorCode
    /// Sorted by partition id.
    public var partitions: [PartitionMetadata]
}

public struct BrokerMetadata: Sendable, Equatable {
    public var nodeId: Int32
    public var address: BrokerAddress
    public var rack: String?
}

/// A snapshot of the cluster as the last Metadata answer described it.
public struct ClusterMetadata: Sendable, Equatable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: BrokerMetadata]
    public var topics: [String: TopicMetadata]

    public static let empty = ClusterMetadata(clusterId: nil, controllerId: -1, brokers: [:], topics: [:])
}

/// The client's view of a cluster: metadata, and one connection per broker, made on demand,
/// re-made with exponential backoff when lost.
///
/// Producer, consumer and admin each own a `KafkaCluster`, as the Java client does, so that a
/// consumer's long-polling Fetch never queues a producer's request behind it on the same socket.
public actor KafkaCluster {
    public let config: ClientConfig
    public nonisolated let logger: Logger
    public private(set) var metadata = ClusterMetadata.empty
    private var metadataFetchedAt: UInt64 = 0
    private var knownTopics: Set<String> = []
    private var connections: [Int32: BrokerConnection] = [:]
    private var connecting: [Int32: Task<BrokerConnection, any Error>] = [:]
    private var failures: [BrokerAddress: (count: Int, retryAt: UInt64)] = [:]
    private var refreshing: Task<ClusterMetadata, any Error>?
    private var nextBootstrap = 0
    private var closed = false

    public init(config: ClientConfig, logger: Logger = Logger(label: "kafkawire")) {
        self.config = config
        self.logger = logger
    }

    // MARK: Connections

    /// A connection to broker `nodeId`, connecting if needed.
    public func connection(to nodeId: Int32) async throws(KafkaError) -> BrokerConnection {
        guard let broker = metadata.brokers[nodeId] else {
            try await refreshMetadata()
            guard let broker = metadata.brokers[nodeId] else {
                throw .invalidConfiguration("broker \(nodeId) is not in the cluster metadata")
            }
            return try await connection(nodeId: nodeId, address: broker.address)
        }
        return try await connection(nodeId: nodeId, address: broker.address)
    }

    /// The open connection to broker `nodeId`, if there is one (never connects).
    func openConnection(to nodeId: Int32) -> BrokerConnection? {
        guard let c = connections[nodeId], !c.isClosed else { return nil }
        return c
    }

    /// A connection to any broker: a known one if we have metadata, else the bootstrap list in turn.
    public func anyConnection() async throws(KafkaError) -> BrokerConnection {
        // Never a coordinator connection: a JoinGroup may hold it for minutes.
        if let live = connections.first(where: { $0.key > Self.coordinatorKeyLimit && !$0.value.isClosed })?.value { return live }
        var candidates: [(Int32, BrokerAddress)] = metadata.brokers.values.map { ($0.nodeId, $0.address) }.sorted { $0.0 < $1.0 }
        for (i, address) in config.bootstrapServers.enumerated() {
            candidates.append((-1 - Int32(i), address))
        }
        guard !candidates.isEmpty else { throw .invalidConfiguration("bootstrap.servers is empty") }
        var lastError = KafkaError.invalidConfiguration("no broker reachable")
        for step in 0..<candidates.count {
            let (nodeId, address) = candidates[(nextBootstrap + step) % candidates.count]
            do {
                let c = try await connection(nodeId: nodeId, address: address)
                nextBootstrap = (nextBootstrap + step) % candidates.count
                return c
            } catch {
                lastError = error
            }
        }
        nextBootstrap += 1
        throw lastError
    }

    /// A connection to a group coordinator, separate from the broker's data connection so that
    /// heartbeats never queue behind a long-polling Fetch (the Java client does the same).
    public func coordinatorConnection(nodeId: Int32, address: BrokerAddress) async throws(KafkaError) -> BrokerConnection {
        try await connection(nodeId: Int32.min + 1 + max(nodeId, 0), address: address)
    }

    /// Connection keys at or below this are coordinator connections.
    static let coordinatorKeyLimit = Int32.min / 2

    private func connection(nodeId: Int32, address: BrokerAddress) async throws(KafkaError) -> BrokerConnection {
        if closed { throw .closed }
        if let c = connections[nodeId], !c.isClosed, c.address == address { return c }
        if let pending = connecting[nodeId] { return try await awaitConnection(pending) }
        if let f = failures[address], f.retryAt > monotonicNanos() {
            // Back off: wait out the remaining delay rather than hammering a dead broker.
            let wait = f.retryAt - monotonicNanos()
            try? await Task.sleep(nanoseconds: wait)
            if let c = connections[nodeId], !c.isClosed, c.address == address { return c }
            if let pending = connecting[nodeId] { return try await awaitConnection(pending) }
        }
        let config = self.config
        let logger = self.logger
        let task = Task<BrokerConnection, any Error> {
            try await BrokerConnection.open(
                address: address, nodeId: nodeId, clientId: config.clientId,
                connectTimeoutMs: config.connectTimeoutMs, requestTimeoutMs: config.requestTimeoutMs,
                maxResponseBytes: config.maxResponseBytes, security: config.security, logger: logger)
        }
        connecting[nodeId] = task
        defer { connecting[nodeId] = nil }
        do throws(KafkaError) {
            let c = try await awaitConnection(task)
            failures[address] = nil
            if let old = connections[nodeId], old !== c { Task { await old.close() } }
            connections[nodeId] = c
            if closed {
                await c.close()
                throw KafkaError.closed
            }
            return c
        } catch {
            let count = (failures[address]?.count ?? 0) + 1
            let delayMs = min(config.reconnectBackoffMaxMs, config.reconnectBackoffMs << min(count - 1, 16))
            // Jitter of +-20% keeps many clients from retrying in lockstep.
            let jittered = Double(delayMs) * Double.random(in: 0.8...1.2)
            failures[address] = (count, monotonicNanos() + UInt64(jittered * 1e6))
            logger.debug("connect failed", metadata: ["broker": "\(address)", "error": "\(error)", "attempt": "\(count)"])
            throw error
        }
    }

    private func awaitConnection(_ task: Task<BrokerConnection, any Error>) async throws(KafkaError) -> BrokerConnection {
        do { return try await task.value } catch let e as KafkaError { throw e } catch { throw .network(.socketFailed("\(error)")) }
    }

    /// Drops a connection that failed, so the next use reconnects.
    public func connectionFailed(_ c: BrokerConnection) async {
        if connections[c.nodeId] === c { connections[c.nodeId] = nil }
        await c.close()
    }

    // MARK: Metadata

    /// Refreshes metadata for every topic the client has asked about (and `topics`).
    @discardableResult
    public func refreshMetadata(topics: [String] = []) async throws(KafkaError) -> ClusterMetadata {
        knownTopics.formUnion(topics)
        if let running = refreshing {
            do { return try await running.value } catch let e as KafkaError { throw e } catch { throw .timedOut("metadata") }
        }
        let task = Task<ClusterMetadata, any Error> { try await self.fetchMetadata(topics: nil) }
        refreshing = task
        defer { refreshing = nil }
        do { return try await task.value } catch let e as KafkaError { throw e } catch { throw .timedOut("metadata") }
    }

    /// Fetches metadata for all topics (`topics == nil` asks for the known set; an empty known set
    /// asks for every topic, so that listing works).
    private func fetchMetadata(topics: [String]?) async throws(KafkaError) -> ClusterMetadata {
        var lastError = KafkaError.invalidConfiguration("no broker reachable")
        for _ in 0..<max(2, config.bootstrapServers.count + metadata.brokers.count) {
            let c = try await anyConnection()
            var request = MetadataRequest()
            request.allowAutoTopicCreation = false
            let wanted = topics ?? Array(knownTopics).sorted()
            request.topics = wanted.isEmpty ? nil : wanted.map { MetadataRequest.MetadataRequestTopic(name: $0) }
            do {
                let response = try await c.send(request)
                apply(response)
                return metadata
            } catch {
                lastError = error
                if case .network = error { await connectionFailed(c) }
                if !error.isRetriable { throw error }
            }
        }
        throw lastError
    }

    private func apply(_ response: MetadataResponse) {
        var brokers: [Int32: BrokerMetadata] = [:]
        for b in response.brokers {
            brokers[b.nodeId] = BrokerMetadata(nodeId: b.nodeId, address: BrokerAddress(host: b.host, port: Int(b.port)), rack: b.rack)
        }
        var topics = knownTopics.isEmpty ? [:] : metadata.topics
        for t in response.topics {
            guard let name = t.name else { continue }
            let partitions = t.partitions.map {
                PartitionMetadata(
                    partition: $0.partitionIndex, leader: $0.leaderId, leaderEpoch: $0.leaderEpoch,
                    replicas: $0.replicaNodes, isr: $0.isrNodes, offlineReplicas: $0.offlineReplicas,
                    error: KafkaErrorCode(rawValue: $0.errorCode))
            }.sorted { $0.partition < $1.partition }
            topics[name] = TopicMetadata(
                name: name, topicId: t.topicId, isInternal: t.isInternal,
                error: KafkaErrorCode(rawValue: t.errorCode), partitions: partitions)
        }
        metadata = ClusterMetadata(clusterId: response.clusterId, controllerId: response.controllerId, brokers: brokers, topics: topics)
        metadataFetchedAt = monotonicNanos()
    }

    /// Metadata for all topics in the cluster (for listings), without adding them to the known set.
    public func allTopicsMetadata() async throws(KafkaError) -> ClusterMetadata {
        let c = try await anyConnection()
        var request = MetadataRequest()
        request.topics = nil
        request.allowAutoTopicCreation = false
        do {
            let response = try await c.send(request)
            let known = knownTopics
            knownTopics = []
            apply(response)
            knownTopics = known
            return metadata
        } catch {
            if case .network = error { await connectionFailed(c) }
            throw error
        }
    }

    /// The partitions of `topic`, fetching metadata when the topic is new or metadata is old.
    public func topic(_ name: String) async throws(KafkaError) -> TopicMetadata {
        let stale = monotonicNanos() - metadataFetchedAt > UInt64(config.metadataMaxAgeMs) * 1_000_000
        // A topic last seen with an error (unknown: not created yet, or lost by a broker restart) is
        // asked for again rather than answered from the cache until metadata.max.age.ms.
        if stale || (metadata.topics[name]?.error ?? .unknownTopicOrPartition) != .none || !knownTopics.contains(name) {
            try await refreshMetadata(topics: [name])
        }
        guard let t = metadata.topics[name] else { throw .unknownTopicOrPartition(topic: name, partition: nil) }
        switch t.error {
        case .none: return t
        case .unknownTopicOrPartition: throw .unknownTopicOrPartition(topic: name, partition: nil)
        default: throw .broker(t.error, context: "metadata for \(name)")
        }
    }

    /// The leader of a partition, refreshing metadata once if it is unknown.
    public func leader(topic: String, partition: Int32) async throws(KafkaError) -> Int32 {
        var t = try await self.topic(topic)
        for attempt in 0..<2 {
            guard let p = t.partitions.first(where: { $0.partition == partition }) else {
                if attempt == 0 { try await refreshMetadata(topics: [topic]); t = try await self.topic(topic); continue }
                throw .unknownTopicOrPartition(topic: topic, partition: partition)
            }
            if p.leader >= 0, metadata.brokers[p.leader] != nil { return p.leader }
            if attempt == 0 { try await refreshMetadata(topics: [topic]); t = try await self.topic(topic) }
        }
        throw .leaderNotAvailable(topic: topic, partition: partition)
    }

    /// Marks metadata stale so the next lookup refreshes it.
    public func invalidateMetadata() { metadataFetchedAt = 0 }

    public func close() async {
        closed = true
        let all = Array(connections.values)
        connections.removeAll()
        for task in connecting.values { task.cancel() }
        for c in all { await c.close() }
    }
}
