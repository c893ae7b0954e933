/// Group requests shared by the group consumer and the admin client.

extension KafkaCluster {
    /// The coordinator of `group` (FindCoordinator), on its own connection.
    public func groupCoordinator(_ group: String) async throws(KafkaError) -> BrokerConnection {
        let any = try await anyConnection()
        var request = FindCoordinatorRequest()
        request.keyType = 0
        let version = try any.versions.version(for: FindCoordinatorRequest.self)
        let nodeId: Int32, host: String, port: Int32
        do throws(KafkaError) {
            if version >= 4 {
                // v4+ looks up several keys at once (KIP-699).
                request.coordinatorKeys = [group]
                let response = try await any.send(request, version: version)
                guard let c = response.coordinators.first else {
                    throw .malformedResponse(any.address, apiKey: ApiKey.findCoordinator.rawValue, "no coordinator in the answer")
                }
                if c.errorCode != 0 { throw .broker(KafkaErrorCode(rawValue: c.errorCode), context: "find coordinator for group \(group)") }
                (nodeId, host, port) = (c.nodeId, c.host, c.port)
            } else {
                request.key = group
                let response = try await any.send(request, version: version)
                if response.errorCode != 0 { throw .broker(KafkaErrorCode(rawValue: response.errorCode), context: "find coordinator for group \(group)") }
                (nodeId, host, port) = (response.nodeId, response.host, response.port)
            }
        } catch {
            if case .network = error { await connectionFailed(any) }
            throw error
        }
        return try await coordinatorConnection(nodeId: nodeId, address: BrokerAddress(host: host, port: Int(port)))
    }
}

/// A group's committed offsets (OffsetFetch); `partitions == nil` asks for all of the group's.
/// Partitions without a committed offset map to -1.
func fetchCommittedOffsets(_ c: BrokerConnection, group: String, partitions: [TopicPartition]?) async throws(KafkaError) -> [TopicPartition: Int64] {
    let version = try c.versions.version(for: OffsetFetchRequest.self)
    var byTopic: [String: [Int32]]?
    if let partitions {
        byTopic = Dictionary(grouping: partitions, by: \.topic).mapValues { $0.map(\.partition).sorted() }
    }
    var request = OffsetFetchRequest()
    request.requireStable = version >= 7
    var out: [TopicPartition: Int64] = [:]
    func take(_ topic: String, _ partition: Int32, _ offset: Int64, _ error: Int16) throws(KafkaError) {
        guard error == 0 else { throw .broker(KafkaErrorCode(rawValue: error), context: "offset fetch \(topic)/\(partition) for group \(group)") }
        out[TopicPartition(topic: topic, partition: partition)] = offset
    }
    if version >= 8 {
        // v8+ batches groups (KIP-709).
        request.groups = [.init(groupId: group, topics: byTopic.map { t in t.keys.sorted().map { .init(name: $0, partitionIndexes: t[$0]!) } })]
        let response = try await c.send(request, version: version)
        for g in response.groups {
            if g.errorCode != 0 { throw .broker(KafkaErrorCode(rawValue: g.errorCode), context: "offset fetch for group \(g.groupId)") }
            for t in g.topics { for p in t.partitions { try take(t.name, p.partitionIndex, p.committedOffset, p.errorCode) } }
        }
    } else {
        request.groupId = group
        request.topics = byTopic.map { t in t.keys.sorted().map { .init(name: $0, partitionIndexes: t[$0]!) } }
        let response = try await c.send(request, version: version)
        if response.errorCode != 0 { throw .broker(KafkaErrorCode(rawValue: response.errorCode), context: "offset fetch for group \(group)") }
        for t in response.topics { for p in t.partitions { try take(t.name, p.partitionIndex, p.committedOffset, p.errorCode) } }
    }
    return out
}
