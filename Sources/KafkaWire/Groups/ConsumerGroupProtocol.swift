/// The consumer group protocol of KIP-848 (`group.protocol=consumer`): one ConsumerGroupHeartbeat
/// request does what JoinGroup, SyncGroup and Heartbeat do in the classic protocol. The coordinator
/// runs the assignor and hands each member its partitions incrementally: a partition moving between
/// members is first revoked by its owner (which reports it no longer owns it in a heartbeat) and only
/// then appears in the new owner's assignment. Commits, offsets and fetching are the classic path's.

/// Which group membership protocol a `KafkaGroupConsumer` speaks (`group.protocol`).
public enum GroupProtocol: String, Sendable {
    /// JoinGroup / SyncGroup / Heartbeat; the leader member computes the assignment with
    /// `GroupConsumerConfig.assignors`.
    case classic
    /// KIP-848: ConsumerGroupHeartbeat only; the coordinator computes the assignment (with
    /// `GroupConsumerConfig.serverAssignor`). Needs Apache Kafka 4.0+ (or 3.7+ with the new
    /// protocol enabled on the broker).
    case consumer
}

/// What a KIP-848 member keeps between heartbeats (in `KafkaGroupConsumer.Membership`).
struct ConsumerGroupMemberState {
    /// The assignment the coordinator sent last (topic id -> partitions), until this member has
    /// moved to it. The coordinator sends it only when it changes.
    var target: [KafkaUUID: Set<Int32>]?
    /// Whether the next heartbeat carries every field: when joining, and after a heartbeat that
    /// failed (the coordinator may not have seen what it said).
    var sendAllFields = true
    /// The owned partitions the last successful heartbeat reported; the next one reports them again
    /// if they changed (which acknowledges an assignment).
    var reportedOwned: Set<TopicPartition>?
    /// The heartbeat interval the coordinator asks for (nil until it said).
    var heartbeatIntervalMs: Int?
}

extension KafkaGroupConsumer {
    /// The member epoch that leaves the group; -2 leaves as a static member that will come back.
    static let leaveGroupEpoch: Int32 = -1
    static let leaveGroupStaticEpoch: Int32 = -2

    /// One ConsumerGroupHeartbeat: joins with epoch 0 (and member id "" the first time) when
    /// `needsJoin`, else heartbeats with the epoch of the last answer, reporting the owned partitions
    /// when they changed. Then takes the answer's member id, epoch, heartbeat interval and assignment,
    /// and moves to the assignment.
    func consumerGroupHeartbeat() async throws(KafkaError) {
        let coordinator = try await coordinatorConnection()
        let version = try consumerGroupHeartbeatVersion(coordinator)
        // Epoch 0 means owning nothing: whatever this member had may be someone else's by now, and
        // an assignment not applied yet is of the old membership.
        let rejoining = membership.withLock { m -> Bool in
            guard m.needsJoin else { return false }
            m.consumerGroup.target = nil
            m.consumerGroup.reportedOwned = nil
            return !m.assigned.isEmpty
        }
        if rejoining { await revoke(lost: true) }
        if version >= 1 {
            // v1+ (KIP-1082, Kafka 4.0): the member makes up its id; the coordinator refuses an
            // empty one. v0 leaves it empty and takes the coordinator's.
            membership.withLock { m in if m.memberId.isEmpty { m.memberId = KafkaUUID.random().description } }
        }
        let (joining, memberId, epoch, owned, allFields, reported) = membership.withLock { m in
            (m.needsJoin, m.memberId, m.generationId, m.assigned, m.needsJoin || m.consumerGroup.sendAllFields,
             m.consumerGroup.reportedOwned)
        }
        var request = ConsumerGroupHeartbeatRequest()
        request.groupId = config.groupId
        request.memberId = memberId
        request.memberEpoch = joining ? 0 : epoch
        if allFields {
            request.instanceId = config.groupInstanceId
            request.rebalanceTimeoutMs = Int32(clamping: config.maxPollIntervalMs)
            request.subscribedTopicNames = topics
            request.serverAssignor = config.serverAssignor
        }
        if allFields || reported != owned {
            request.topicPartitions = try await topicIdPartitions(owned)
        }
        let response: ConsumerGroupHeartbeatResponse
        do {
            response = try await coordinator.send(request, version: version)
        } catch {
            membership.withLock { $0.consumerGroup.sendAllFields = true }
            await coordinatorFailed(coordinator, error)
            throw error
        }
        let code = KafkaErrorCode(rawValue: response.errorCode)
        let message = response.errorMessage.map { ": \($0)" } ?? ""
        switch code {
        case .none:
            break
        case .fencedMemberEpoch, .unknownMemberId:
            // The coordinator no longer counts this member (in this epoch): its partitions may
            // already be another's. Rejoin with epoch 0 (UNKNOWN_MEMBER_ID: as a new member).
            logger.info("membership lost", metadata: ["group": "\(config.groupId)", "error": "\(code.name)\(message)"])
            await revoke(lost: true)
            handleGroupError(code)
            membership.withLock { $0.consumerGroup = ConsumerGroupMemberState(heartbeatIntervalMs: $0.consumerGroup.heartbeatIntervalMs) }
            // Rejoin at once; but a join refused this way is retried after a backoff.
            if joining { throw .broker(code, context: "join group \(config.groupId)\(message)") }
            return
        case .unsupportedVersion:
            throw lacksConsumerGroupProtocol(coordinator, message)
        case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress:
            membership.withLock { $0.consumerGroup.sendAllFields = true }
            handleGroupError(code)
            throw .broker(code, context: "consumer group heartbeat for group \(config.groupId)\(message)")
        default:
            // FENCED_INSTANCE_ID, UNRELEASED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, UNSUPPORTED_ASSIGNOR,
            // INVALID_REQUEST, authorization: fatal (not retriable); anything retriable is retried.
            membership.withLock { $0.consumerGroup.sendAllFields = true }
            throw .broker(code, context: "consumer group heartbeat for group \(config.groupId)\(message)")
        }
        membership.withLock { m in
            if let id = response.memberId, !id.isEmpty { m.memberId = id }
            m.generationId = response.memberEpoch
            m.needsJoin = false
            if response.heartbeatIntervalMs > 0 { m.consumerGroup.heartbeatIntervalMs = Int(response.heartbeatIntervalMs) }
            m.consumerGroup.sendAllFields = false
            if request.topicPartitions != nil { m.consumerGroup.reportedOwned = owned }
            if let assignment = response.assignment {
                var target: [KafkaUUID: Set<Int32>] = [:]
                for t in assignment.topicPartitions { target[t.topicId, default: []].formUnion(t.partitions) }
                m.consumerGroup.target = target
            }
        }
        if joining {
            logger.debug("joined group", metadata: [
                "group": "\(config.groupId)", "member": "\(response.memberId ?? memberId)", "epoch": "\(response.memberEpoch)",
                "protocol": "consumer",
            ])
        }
        try await reconcileConsumerGroupAssignment()
    }

    /// Moves to the coordinator's latest assignment: names its topics (refreshing metadata for an
    /// id not known yet), revokes what left (committing first), starts what is new, and has the
    /// next heartbeat go out at once to report the owned partitions, which acknowledges the
    /// assignment. Topics whose id stays unknown are tried again on the next turn of the group task.
    func reconcileConsumerGroupAssignment() async throws(KafkaError) {
        guard let target = membership.withLock({ $0.consumerGroup.target }) else { return }
        var names = await topicNamesById()
        if target.keys.contains(where: { names[$0] == nil }) {
            try await cluster.refreshMetadata(topics: topics)
            names = await topicNamesById()
        }
        var wanted = Set<TopicPartition>()
        var unresolved: [KafkaUUID] = []
        for (id, partitions) in target {
            guard let name = names[id] else { unresolved.append(id); continue }
            for p in partitions { wanted.insert(TopicPartition(topic: name, partition: p)) }
        }
        if !unresolved.isEmpty {
            logger.debug("assignment names unknown topic ids; retrying", metadata: ["group": "\(config.groupId)", "ids": "\(unresolved)"])
        }
        if membership.withLock({ $0.assigned != wanted }) { fetcher.metrics.rebalances.increment() }
        try await apply(wanted)
        membership.withLock { m in
            if unresolved.isEmpty, m.consumerGroup.target == target { m.consumerGroup.target = nil }
            if m.consumerGroup.reportedOwned != m.assigned { m.heartbeatNow = true }
        }
    }

    /// Leaves the group: a heartbeat with epoch -1, or -2 for a static member (the coordinator keeps
    /// its partitions for it until the session times out). Bounded by `closeTimeoutMs`.
    func leaveConsumerGroup() async {
        let (memberId, epoch) = membership.withLock { ($0.memberId, $0.generationId) }
        guard !memberId.isEmpty, epoch > 0, let coordinator = try? await coordinatorConnection(),
              let version = try? consumerGroupHeartbeatVersion(coordinator) else { return }
        var request = ConsumerGroupHeartbeatRequest()
        request.groupId = config.groupId
        request.memberId = memberId
        request.memberEpoch = config.groupInstanceId == nil ? Self.leaveGroupEpoch : Self.leaveGroupStaticEpoch
        request.instanceId = config.groupInstanceId
        _ = try? await coordinator.send(request, version: version, timeoutMs: config.closeTimeoutMs)
        membership.withLock { m in
            m.generationId = -1
            m.consumerGroup = ConsumerGroupMemberState()
        }
    }

    private func consumerGroupHeartbeatVersion(_ coordinator: BrokerConnection) throws(KafkaError) -> Int16 {
        do {
            return try coordinator.versions.version(for: ConsumerGroupHeartbeatRequest.self)
        } catch {
            throw lacksConsumerGroupProtocol(coordinator, "")
        }
    }

    private func lacksConsumerGroupProtocol(_ coordinator: BrokerConnection, _ detail: String) -> KafkaError {
        .invalidConfiguration(
            "group.protocol=consumer: the coordinator \(coordinator.address) does not offer ConsumerGroupHeartbeat" +
            " (the broker lacks KIP-848, or does not enable it)\(detail); use groupProtocol = .classic")
    }

    /// Topic id -> name for the topics in the cluster metadata.
    private func topicNamesById() async -> [KafkaUUID: String] {
        var out: [KafkaUUID: String] = [:]
        for t in await cluster.metadata.topics.values where t.topicId != .zero { out[t.topicId] = t.name }
        return out
    }

    /// Owned partitions by topic id, as heartbeats report them.
    private func topicIdPartitions(_ owned: Set<TopicPartition>) async throws(KafkaError) -> [ConsumerGroupHeartbeatRequest.TopicPartitions] {
        guard !owned.isEmpty else { return [] }
        let byTopic = Dictionary(grouping: owned, by: \.topic)
        var out: [ConsumerGroupHeartbeatRequest.TopicPartitions] = []
        for topic in byTopic.keys.sorted() {
            let id = try await cluster.topic(topic).topicId
            out.append(.init(topicId: id, partitions: byTopic[topic]!.map(\.partition).sorted()))
        }
        return out
    }
}
