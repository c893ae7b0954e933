/// Consumer group administration: list, describe with lag, reset offsets.
extension KafkaAdmin {
    public struct GroupListing: Sendable, Equatable {
        public var groupId: String
        public var protocolType: String
        /// Empty where the broker does not report states (ListGroups before v4).
        public var state: String
    }

    /// Every group of every broker (each broker lists the groups it coordinates).
    public func listGroups() async throws(KafkaError) -> [GroupListing] {
        let meta = try await cluster.refreshMetadata()
        var out: [String: GroupListing] = [:]
        for nodeId in meta.brokers.keys.sorted() {
            let c = try await cluster.connection(to: nodeId)
            let response: ListGroupsResponse
            do {
                response = try await c.send(ListGroupsRequest())
            } catch {
                if case .network = error { await cluster.connectionFailed(c) }
                throw error
            }
            if response.errorCode != 0 {
                throw .broker(KafkaErrorCode(rawValue: response.errorCode), context: "list groups on broker \(nodeId)")
            }
            for g in response.groups {
                out[g.groupId] = GroupListing(groupId: g.groupId, protocolType: g.protocolType, state: g.groupState)
            }
        }
        return out.values.sorted { $0.groupId < $1.groupId }
    }

    public struct GroupMemberDescription: Sendable, Equatable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        /// Decoded from the consumer protocol; empty for other protocol types.
        public var assignment: [TopicPartition]
    }

    public struct PartitionLag: Sendable, Equatable {
        public var partition: TopicPartition
        /// -1 when the group has committed nothing for the partition.
        public var committedOffset: Int64
        public var highWatermark: Int64
        /// High watermark minus committed offset; the whole partition when nothing is committed.
        public var lag: Int64
        /// The member that owns the partition now, if any.
        public var memberId: String?
    }

    public struct GroupDescription: Sendable, Equatable {
        public var groupId: String
        public var state: String
        public var protocolType: String
        /// The assignor in use ("range", "cooperative-sticky"...).
        public var assignor: String
        public var members: [GroupMemberDescription]
        /// Committed offset, high watermark and lag for every partition the group has committed
        /// or is assigned.
        public var partitions: [PartitionLag]
        public var totalLag: Int64 { partitions.reduce(0) { $0 + $1.lag } }
    }

    /// State, members and their partitions, and lag per partition.
    public func describeGroup(_ groupId: String) async throws(KafkaError) -> GroupDescription {
        let coordinator = try await cluster.groupCoordinator(groupId)
        var request = DescribeGroupsRequest()
        request.groups = [groupId]
        let response = try await coordinator.send(request)
        guard let g = response.groups.first else {
            throw .malformedResponse(coordinator.address, apiKey: ApiKey.describeGroups.rawValue, "no group in the answer")
        }
        let code = KafkaErrorCode(rawValue: g.errorCode)
        if code != .none { throw .broker(code, context: "describe group \(groupId)") }
        if g.groupState == "Dead" { throw .broker(.groupIdNotFound, context: "describe group \(groupId)") }
        var owner: [TopicPartition: String] = [:]
        let members = g.members.map { m in
            let partitions = g.protocolType == "consumer"
                ? ((try? ConsumerProtocol.decodeAssignment(m.memberAssignment).partitions) ?? [:])
                    .flatMap { topic, ps in ps.map { TopicPartition(topic: topic, partition: $0) } }.sorted()
                : []
            for tp in partitions { owner[tp] = m.memberId }
            return GroupMemberDescription(
                memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId,
                clientHost: m.clientHost, assignment: partitions)
        }
        let committed = try await fetchCommittedOffsets(coordinator, group: groupId, partitions: nil)
        let all = Set(committed.keys).union(owner.keys).sorted()
        let ends = try await listOffsets(cluster: cluster, all.map { ($0, -1) }, readCommitted: false)
        let lags = all.map { tp in
            let c = committed[tp] ?? -1
            let end = ends[tp] ?? -1
            return PartitionLag(partition: tp, committedOffset: c, highWatermark: end,
                                lag: c >= 0 ? max(0, end - c) : max(0, end), memberId: owner[tp])
        }
        return GroupDescription(groupId: g.groupId, state: g.groupState, protocolType: g.protocolType,
                                assignor: g.protocolData, members: members, partitions: lags)
    }

    public enum OffsetResetTarget: Sendable {
        case earliest, latest
        case offset(Int64)
    }

    /// Moves a group's committed offsets for every partition of `topic`. Only for an empty group:
    /// a live member would overwrite them with its own commits.
    public func resetGroupOffsets(_ groupId: String, topic: String, to target: OffsetResetTarget) async throws(KafkaError) -> [TopicPartition: Int64] {
        let coordinator = try await cluster.groupCoordinator(groupId)
        var describe = DescribeGroupsRequest()
        describe.groups = [groupId]
        let described = try await coordinator.send(describe)
        if let g = described.groups.first, !g.members.isEmpty {
            throw .invalidConfiguration("group \(groupId) has \(g.members.count) active members (state \(g.groupState)); stop them before resetting offsets")
        }
        let t = try await cluster.topic(topic)
        let tps = t.partitions.map { TopicPartition(topic: topic, partition: $0.partition) }
        var offsets: [TopicPartition: Int64] = [:]
        switch target {
        case .earliest: offsets = try await listOffsets(cluster: cluster, tps.map { ($0, -2) }, readCommitted: false)
        case .latest: offsets = try await listOffsets(cluster: cluster, tps.map { ($0, -1) }, readCommitted: false)
        case let .offset(o): for tp in tps { offsets[tp] = o }
        }
        var request = OffsetCommitRequest()
        request.groupId = groupId
        request.generationIdOrMemberEpoch = -1  // a commit from outside the group
        request.memberId = ""
        request.retentionTimeMs = -1
        request.topics = [.init(name: topic, partitions: tps.map {
            .init(partitionIndex: $0.partition, committedOffset: offsets[$0] ?? 0, committedLeaderEpoch: -1, commitTimestamp: -1)
        })]
        let response = try await coordinator.send(request)
        for rt in response.topics {
            for p in rt.partitions where p.errorCode != 0 {
                throw .broker(KafkaErrorCode(rawValue: p.errorCode), context: "reset offsets of \(rt.name)/\(p.partitionIndex) for group \(groupId)")
            }
        }
        return offsets
    }
}
