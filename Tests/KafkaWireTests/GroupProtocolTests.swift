#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import KafkaFakeBroker
import Synchronization
import Testing
@testable import KafkaWire

// MARK: - A scripted group coordinator

/// A fake broker that is also a group coordinator: it answers ApiVersions, Metadata (topics with
/// ids), FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetFetch, OffsetCommit,
/// ListOffsets and Fetch (records `v<offset>` below each partition's log end; an empty answer after a
/// short pause otherwise), with error codes, closes and silences injected per API by the tests.
final class GroupBroker: Sendable {
    struct State: Sendable {
        /// name -> (partitions, topic id)
        var topics: [String: (partitions: Int32, id: KafkaUUID)] = [:]
        /// Records 0..<logEnd exist (from `logStart` on).
        var logEnd: [TopicPartition: Int64] = [:]
        var logStart: Int64 = 0
        var committed: [TopicPartition: Int64] = [:]
        /// KIP-394: the first JoinGroup without a member id gets MEMBER_ID_REQUIRED.
        var requireMemberId = false
        var nextMember = 0
        var generation: Int32 = 0
        /// The protocol the coordinator chooses (default: the member's first).
        var protocolName: String?
        /// Whether the joining member leads; if so the JoinGroup answer lists it and `otherMembers`.
        var memberLeads = true
        var otherMembers: [(id: String, metadata: [UInt8])] = []
        /// What SyncGroup gives a member the leader sent nothing for (or when it does not lead).
        var assignment: [String: [Int32]] = [:]
        /// Next error codes per API key (popped one per request).
        var errors: [Int16: [Int16]] = [:]
        /// Next actions per API key instead of the scripted answer (.close, .silence).
        var actions: [Int16: [FakeBroker.Action]] = [:]
        /// APIs never answered.
        var silent: Set<Int16> = []
        /// Ports FindCoordinator answers, popped while more than one is left (nil: this broker).
        var coordinatorPorts: [Int] = []
        /// Consulted before anything scripted (ConsumerGroupHeartbeat answers...).
        var custom: (@Sendable (FakeBroker.Request) -> FakeBroker.Action?)?
    }

    final class Shared: Sendable {
        let state = Mutex(State())
        let port = Mutex(0)
        let dataPort = Mutex(0)
    }

    let shared = Shared()
    let broker: FakeBroker
    var port: Int { broker.port }

    static let groupApis: [(ApiKey, ClosedRange<Int16>)] = [
        (.findCoordinator, 0...4), (.joinGroup, 0...9), (.syncGroup, 0...5), (.heartbeat, 0...4),
        (.leaveGroup, 0...5), (.offsetCommit, 2...9), (.offsetFetch, 1...9),
    ]

    /// `dataPort`: where Metadata says the (only) broker is; default this one.
    init(
        topics: [String: Int32] = ["t": 1], offerConsumerGroupHeartbeat: Bool = false,
        consumerGroupHeartbeatVersions: ClosedRange<Int16> = 0...0, offerClassic: Bool = true, dataPort: Int? = nil
    ) throws {
        let shared = self.shared
        var apis = Scripted.supported + (offerClassic ? Self.groupApis : Self.groupApis.filter {
            [.findCoordinator, .offsetCommit, .offsetFetch].contains($0.0)
        })
        if offerConsumerGroupHeartbeat { apis.append((.consumerGroupHeartbeat, consumerGroupHeartbeatVersions)) }
        let advertised = apis
        broker = try FakeBroker { req in GroupBroker.answer(req, shared, advertised) }
        shared.port.withLock { $0 = broker.port }
        shared.dataPort.withLock { $0 = dataPort ?? broker.port }
        var ids: [String: (Int32, KafkaUUID)] = [:]
        for (i, (name, count)) in topics.sorted(by: { $0.key < $1.key }).enumerated() {
            ids[name] = (count, KafkaUUID(high: 0x1111, low: UInt64(i + 1)))
        }
        shared.state.withLock { $0.topics = ids.mapValues { (partitions: $0.0, id: $0.1) } }
    }

    func with<T>(_ body: (inout State) -> T) -> T { shared.state.withLock { body(&$0) } }
    func topicId(_ name: String) -> KafkaUUID { with { $0.topics[name]!.id } }
    func stop() { broker.stop() }

    /// The requests of one API received so far, decoded.
    func received<R: KafkaRequest>(_: R.Type) -> [R] {
        broker.requests.filter { $0.apiKey == R.apiKey }.map { try! R.decode($0.body, version: $0.apiVersion) }
    }

    func count(_ key: ApiKey) -> Int { broker.requests.filter { $0.apiKey == key.rawValue }.count }

    /// API keys of the group requests received (not Metadata, Fetch, ListOffsets, ApiVersions), in order.
    var groupRequestLog: [ApiKey] {
        broker.requests.compactMap { ApiKey(rawValue: $0.apiKey) }.filter {
            ![.apiVersions, .metadata, .fetch, .listOffsets].contains($0)
        }
    }

    static func respond<R: KafkaResponse>(_ r: R, _ req: FakeBroker.Request) -> FakeBroker.Action {
        .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: R.responseHeaderVersion(req.apiVersion))
    }

    static func answer(_ req: FakeBroker.Request, _ shared: Shared, _ apis: [(ApiKey, ClosedRange<Int16>)]) -> FakeBroker.Action {
        let key = req.apiKey
        let v = req.apiVersion
        if key == ApiKey.apiVersions.rawValue {
            return .respond(body: Scripted.apiVersions(version: v, keys: apis), headerVersion: 0)
        }
        let (injected, custom, silent) = shared.state.withLock { s -> (FakeBroker.Action?, (@Sendable (FakeBroker.Request) -> FakeBroker.Action?)?, Bool) in
            var action: FakeBroker.Action?
            if var queue = s.actions[key], !queue.isEmpty {
                action = queue.removeFirst()
                s.actions[key] = queue
            }
            return (action, s.custom, s.silent.contains(key))
        }
        if let injected { return injected }
        if silent { return .silence }
        if let custom, let action = custom(req) { return action }
        let error = shared.state.withLock { s -> Int16 in
            guard var queue = s.errors[key], !queue.isEmpty else { return 0 }
            defer { s.errors[key] = queue }
            return queue.removeFirst()
        }
        let port = shared.port.withLock { $0 }
        switch ApiKey(rawValue: key) {
        case .metadata:
            var r = MetadataResponse()
            r.brokers = [.init(nodeId: 1, host: "127.0.0.1", port: Int32(shared.dataPort.withLock { $0 }))]
            r.controllerId = 1
            r.clusterId = "fake"
            r.topics = shared.state.withLock { s in
                s.topics.sorted { $0.key < $1.key }.map { name, t in
                    var topic = MetadataResponse.MetadataResponseTopic()
                    topic.name = name
                    topic.topicId = t.id
                    topic.partitions = (0..<t.partitions).map { .init(errorCode: 0, partitionIndex: $0, leaderId: 1, replicaNodes: [1], isrNodes: [1]) }
                    return topic
                }
            }
            return respond(r, req)

        case .findCoordinator:
            let request = try! FindCoordinatorRequest.decode(req.body, version: v)
            let target = shared.state.withLock { s -> Int in
                guard let first = s.coordinatorPorts.first else { return port }
                if s.coordinatorPorts.count > 1 { s.coordinatorPorts.removeFirst() }
                return first
            }
            var r = FindCoordinatorResponse()
            if v >= 4 {
                r.coordinators = request.coordinatorKeys.map {
                    .init(key: $0, nodeId: 1, host: "127.0.0.1", port: Int32(target), errorCode: error)
                }
            } else {
                r.errorCode = error
                r.nodeId = 1
                r.host = "127.0.0.1"
                r.port = Int32(target)
            }
            return respond(r, req)

        case .joinGroup:
            let request = try! JoinGroupRequest.decode(req.body, version: v)
            var r = JoinGroupResponse()
            r.protocolType = "consumer"
            shared.state.withLock { s in
                if error != 0 {
                    r.errorCode = error
                    r.memberId = request.memberId
                    return
                }
                if request.memberId.isEmpty {
                    s.nextMember += 1
                    r.memberId = "member-\(s.nextMember)"
                    if s.requireMemberId && v >= 4 {
                        r.errorCode = KafkaErrorCode.memberIdRequired.rawValue
                        return
                    }
                } else {
                    r.memberId = request.memberId
                }
                s.generation += 1
                r.generationId = s.generation
                let chosen = request.protocols.first { $0.name == s.protocolName } ?? request.protocols[0]
                r.protocolName = chosen.name
                if s.memberLeads {
                    r.leader = r.memberId
                    r.members = [.init(memberId: r.memberId, groupInstanceId: request.groupInstanceId, metadata: chosen.metadata)]
                        + s.otherMembers.map { .init(memberId: $0.id, metadata: $0.metadata) }
                } else {
                    r.leader = "leader-elsewhere"
                }
            }
            return respond(r, req)

        case .syncGroup:
            let request = try! SyncGroupRequest.decode(req.body, version: v)
            var r = SyncGroupResponse()
            r.errorCode = error
            r.protocolType = "consumer"
            r.protocolName = request.protocolName
            if error == 0 {
                r.assignment = request.assignments.first { $0.memberId == request.memberId }?.assignment
                    ?? ConsumerProtocol.encodeAssignment(shared.state.withLock { $0.assignment }, userData: nil)
            }
            return respond(r, req)

        case .heartbeat:
            var r = HeartbeatResponse()
            r.errorCode = error
            return respond(r, req)

        case .leaveGroup:
            let request = try! LeaveGroupRequest.decode(req.body, version: v)
            var r = LeaveGroupResponse()
            r.errorCode = error
            r.members = request.members.map { .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: 0) }
            return respond(r, req)

        case .offsetCommit:
            let request = try! OffsetCommitRequest.decode(req.body, version: v)
            var r = OffsetCommitResponse()
            r.topics = request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: error) })
            }
            if error == 0 {
                shared.state.withLock { s in
                    for t in request.topics {
                        for p in t.partitions { s.committed[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.committedOffset }
                    }
                }
            }
            return respond(r, req)

        case .offsetFetch:
            let request = try! OffsetFetchRequest.decode(req.body, version: v)
            let committed = shared.state.withLock { $0.committed }
            func offset(_ topic: String, _ p: Int32) -> Int64 { committed[TopicPartition(topic: topic, partition: p)] ?? -1 }
            var r = OffsetFetchResponse()
            if v >= 8 {
                r.groups = request.groups.map { g in
                    .init(groupId: g.groupId, topics: (g.topics ?? []).map { t in
                        .init(name: t.name, partitions: t.partitionIndexes.map {
                            .init(partitionIndex: $0, committedOffset: offset(t.name, $0), committedLeaderEpoch: -1, metadata: "", errorCode: 0)
                        })
                    }, errorCode: error)
                }
            } else {
                r.errorCode = error
                r.topics = (request.topics ?? []).map { t in
                    .init(name: t.name, partitions: t.partitionIndexes.map {
                        .init(partitionIndex: $0, committedOffset: offset(t.name, $0), committedLeaderEpoch: -1, metadata: "", errorCode: 0)
                    })
                }
            }
            return respond(r, req)

        case .listOffsets:
            let request = try! ListOffsetsRequest.decode(req.body, version: v)
            let (logStart, logEnd) = shared.state.withLock { ($0.logStart, $0.logEnd) }
            var r = ListOffsetsResponse()
            r.topics = request.topics.map { t in
                .init(name: t.name, partitions: t.partitions.map { p in
                    let end = logEnd[TopicPartition(topic: t.name, partition: p.partitionIndex)] ?? 0
                    return .init(partitionIndex: p.partitionIndex, errorCode: 0, timestamp: -1, offset: p.timestamp == -2 ? logStart : end)
                })
            }
            return respond(r, req)

        case .fetch:
            let request = try! FetchRequest.decode(req.body, version: v)
            let logEnd = shared.state.withLock { $0.logEnd }
            var r = FetchResponse()
            var any = false
            r.responses = request.topics.map { t in
                .init(topic: t.topic, partitions: t.partitions.map { p in
                    let end = logEnd[TopicPartition(topic: t.topic, partition: p.partition)] ?? 0
                    var data = FetchResponse.FetchableTopicResponse.PartitionData()
                    data.partitionIndex = p.partition
                    data.highWatermark = end
                    data.lastStableOffset = end
                    data.logStartOffset = 0
                    if p.fetchOffset < end {
                        any = true
                        let records = (p.fetchOffset..<end).map {
                            Record(timestamp: 1_700_000_000_000, key: nil, value: Array("v\($0)".utf8))
                        }
                        data.records = try! RecordBatch.encode(records: records, baseOffset: p.fetchOffset)
                    }
                    return data
                })
            }
            // Nothing to send: wait a little, as a broker holds a fetch for fetch.max.wait.ms.
            if !any { usleep(20_000) }
            return respond(r, req)

        default:
            return .close
        }
    }
}

/// Rebalance events a consumer reported, in order.
final class EventLog: Sendable {
    let events = Mutex<[RebalanceEvent]>([])
    let commits = Mutex<[Result<[TopicPartition: Int64], KafkaError>]>([])
    var all: [RebalanceEvent] { events.withLock { $0 } }
    var commitResults: [Result<[TopicPartition: Int64], KafkaError>] { commits.withLock { $0 } }
}

enum GroupTesting {
    static func config(_ b: GroupBroker, log: EventLog? = nil, requestTimeoutMs: Int = 5_000) -> GroupConsumerConfig {
        var c = GroupConsumerConfig(consumer: ConsumerConfig(client: Scripted.config(b.broker, requestTimeoutMs: requestTimeoutMs)), groupId: "g")
        c.consumer.fetchMaxWaitMs = 20
        c.consumer.autoOffsetReset = .earliest
        c.consumer.client.retryBackoffMs = 20
        c.heartbeatIntervalMs = 100
        c.sessionTimeoutMs = 10_000
        c.maxPollIntervalMs = 30_000
        c.autoCommitIntervalMs = 60_000
        c.closeTimeoutMs = 3_000
        if let log {
            c.onRebalance = { e in log.events.withLock { $0.append(e) } }
            c.onAutoCommit = { r in log.commits.withLock { $0.append(r) } }
        }
        return c
    }

    /// Waits (polling) until `condition` holds; false if it does not within the time.
    static func eventually(_ timeoutMs: Int = 10_000, _ condition: () -> Bool) async -> Bool {
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while monotonicNanos() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return condition()
    }

    static func tp(_ topic: String, _ partition: Int32) -> TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// The partitions (by topic) of a Fetch request.
    static func fetched(_ r: FetchRequest) -> Set<TopicPartition> {
        Set(r.topics.flatMap { t in t.partitions.map { tp(t.topic, $0.partition) } })
    }
}

extension KafkaError {
    var brokerCode: KafkaErrorCode? {
        if case let .broker(code, _) = self { return code }
        return nil
    }
}

// MARK: - Classic protocol

@Suite(.timeLimit(.minutes(1))) struct GroupProtocolTests {
    typealias T = GroupTesting

    @Test func memberIdRequiredThenJoinsWithTheGivenId() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.requireMemberId = true }
        let consumer = KafkaGroupConsumer(config: T.config(b), topics: ["t"])
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        let joins = b.received(JoinGroupRequest.self)
        #expect(joins.map(\.memberId) == ["", "member-1"])
        #expect(consumer.memberId == "member-1")
        #expect(b.received(SyncGroupRequest.self).first?.memberId == "member-1")
        await consumer.close()
    }

    /// The coordinator makes us leader of a 2-member group and picks one of our assignors: the
    /// SyncGroup carries that assignor's plan for both members' subscriptions.
    @Test(arguments: ["range", "roundrobin", "cooperative-sticky"])
    func leaderComputesAssignmentsWithTheChosenAssignor(_ chosen: String) async throws {
        let b = try GroupBroker(topics: ["t": 3, "u": 2])
        defer { b.stop() }
        let other = ConsumerProtocol.encodeSubscription(topics: ["t", "u"], ownedPartitions: [:], generation: -1, userData: nil, rackId: nil)
        b.with { s in
            s.protocolName = chosen
            s.otherMembers = [("z-other", other)]
        }
        var config = T.config(b)
        config.assignors = [RangeAssignor(), RoundRobinAssignor(), CooperativeStickyAssignor()]
        let consumer = KafkaGroupConsumer(config: config, topics: ["t", "u"])
        #expect(await T.eventually { !consumer.assignment.isEmpty })
        let sync = try #require(b.received(SyncGroupRequest.self).first)
        #expect(sync.protocolName == chosen)
        var sent: [String: [String: [Int32]]] = [:]
        for a in sync.assignments { sent[a.memberId] = try ConsumerProtocol.decodeAssignment(a.assignment).partitions }
        let join = try #require(b.received(JoinGroupRequest.self).first)
        let mine = try ConsumerProtocol.decodeSubscription(
            try #require(join.protocols.first { $0.name == chosen }).metadata, memberId: "member-1", groupInstanceId: nil)
        #expect(mine.topics == ["t", "u"])
        let assignor = try #require(Assignors.named(chosen))
        let expected = assignor.assign(
            members: [mine, try ConsumerProtocol.decodeSubscription(other, memberId: "z-other", groupInstanceId: nil)],
            partitionCounts: ["t": 3, "u": 2])
        #expect(sent == expected)
        #expect(Set(sent.keys) == ["member-1", "z-other"])
        let total = sent.values.map { $0.values.map(\.count).reduce(0, +) }.reduce(0, +)
        #expect(total == 5)
        let ours = Set((expected["member-1"] ?? [:]).flatMap { t, ps in ps.map { T.tp(t, $0) } })
        #expect(await T.eventually { consumer.assignment == ours })
        await consumer.close()
    }

    @Test func rebalanceInProgressOnHeartbeatRejoins() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        let log = EventLog()
        let consumer = KafkaGroupConsumer(config: T.config(b, log: log), topics: ["t"])
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        b.with { $0.errors[ApiKey.heartbeat.rawValue] = [KafkaErrorCode.rebalanceInProgress.rawValue] }
        #expect(await T.eventually { b.count(.syncGroup) == 2 && consumer.generationId == 2 })
        let joins = b.received(JoinGroupRequest.self)
        #expect(joins.count == 2)
        #expect(joins.last?.memberId == "member-1")
        // Eager (the default assignors include range): everything revoked, then assigned again.
        #expect(await T.eventually { log.all.count == 3 })
        #expect(log.all == [.assigned([T.tp("t", 0)]), .revoked([T.tp("t", 0)]), .assigned([T.tp("t", 0)])])
        await consumer.close()
    }

    @Test func rebalanceInProgressOnManualCommitThrowsAndRejoins() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.logEnd[T.tp("t", 0)] = 3 }
        var config = T.config(b)
        config.enableAutoCommit = false
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        let first = try await it.next()
        #expect(first?.offset == 0)
        _ = try await it.next()  // the first is processed now
        b.with { $0.errors[ApiKey.offsetCommit.rawValue] = [KafkaErrorCode.rebalanceInProgress.rawValue] }
        do {
            try await consumer.commit()
            Issue.record("commit succeeded during a rebalance")
        } catch {
            #expect(error.brokerCode == .rebalanceInProgress)
            #expect(error.description.contains("rebalancing"))
            #expect(error.description.contains("REBALANCE_IN_PROGRESS"))
        }
        #expect(b.received(OffsetCommitRequest.self).first?.topics.first?.partitions.first?.committedOffset == 1)
        // The rejoin follows without waiting for a heartbeat to discover the rebalance.
        #expect(await T.eventually { b.count(.syncGroup) == 2 && consumer.generationId == 2 && !consumer.assignment.isEmpty })
        #expect(b.received(JoinGroupRequest.self).last?.memberId == "member-1")
        // Manual commits work again in the new generation.
        try await consumer.commit()
        #expect(b.received(OffsetCommitRequest.self).last?.generationIdOrMemberEpoch == 2)
        await consumer.close()
    }

    /// UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION on a heartbeat: the member's partitions are lost
    /// (not revoked, nothing committed for them) and it rejoins, as a new member or as itself.
    @Test(arguments: [(KafkaErrorCode.unknownMemberId, ""), (KafkaErrorCode.illegalGeneration, "member-1")])
    func membershipLostOnHeartbeat(_ code: KafkaErrorCode, _ rejoinMemberId: String) async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.logEnd[T.tp("t", 0)] = 5 }
        let log = EventLog()
        var config = T.config(b, log: log)
        config.autoCommitIntervalMs = 60_000  // on, but only a revocation or close would commit here
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        _ = try await it.next()
        _ = try await it.next()  // offset 0 processed
        b.with { $0.errors[ApiKey.heartbeat.rawValue] = [code.rawValue] }
        #expect(await T.eventually { b.count(.syncGroup) == 2 && log.all.count == 3 })
        #expect(log.all == [.assigned([T.tp("t", 0)]), .lost([T.tp("t", 0)]), .assigned([T.tp("t", 0)])])
        #expect(b.received(OffsetCommitRequest.self).isEmpty)
        #expect(b.received(JoinGroupRequest.self).map(\.memberId) == ["", rejoinMemberId])
        await consumer.close()
    }

    @Test func fencedInstanceIdIsFatalThroughRecords() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        var config = T.config(b)
        config.groupInstanceId = "instance-1"
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        b.with { $0.errors[ApiKey.heartbeat.rawValue] = [KafkaErrorCode.fencedInstanceId.rawValue] }
        do {
            for try await r in consumer.records { Issue.record("unexpected record \(r)") }
            Issue.record("records ended without an error")
        } catch let error as KafkaError {
            #expect(error.brokerCode == .fencedInstanceId)
            #expect(error.description.contains("instance-1"))
        }
        await consumer.close()
    }

    enum Operation: String, CaseIterable, Sendable { case heartbeat, joinGroup, offsetCommit }

    /// NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS on a heartbeat, a
    /// JoinGroup or a commit: FindCoordinator is asked again, and the operation goes on at the
    /// coordinator it names (a second fake broker).
    @Test(arguments: Operation.allCases, [KafkaErrorCode.notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress])
    func coordinatorMoves(_ op: Operation, _ code: KafkaErrorCode) async throws {
        let a = try GroupBroker()
        defer { a.stop() }
        let b = try GroupBroker(dataPort: a.port)
        defer { b.stop() }
        for g in [a, b] { g.with { $0.logEnd[T.tp("t", 0)] = 3 } }
        var config = T.config(a)
        config.enableAutoCommit = false
        if op == .joinGroup {
            a.with { s in
                s.coordinatorPorts = [a.port, b.port]
                s.errors[ApiKey.joinGroup.rawValue] = [code.rawValue]
            }
        }
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        switch op {
        case .joinGroup:
            #expect(a.count(.joinGroup) == 1)
            #expect(b.count(.joinGroup) == 1)
            #expect(b.count(.syncGroup) == 1)
        case .heartbeat:
            let generation = consumer.generationId
            a.with { s in
                s.coordinatorPorts = [b.port]
                s.errors[ApiKey.heartbeat.rawValue] = [code.rawValue]
            }
            #expect(await T.eventually { b.count(.heartbeat) >= 2 })
            let beats = b.received(HeartbeatRequest.self)
            #expect(beats.allSatisfy { $0.memberId == "member-1" && $0.generationId == generation })
            #expect(b.count(.joinGroup) == 0)
            #expect(consumer.memberId == "member-1")
        case .offsetCommit:
            a.with { s in
                s.coordinatorPorts = [b.port]
                s.errors[ApiKey.offsetCommit.rawValue] = [code.rawValue]
            }
            try await consumer.commit([T.tp("t", 0): 2])
            #expect(a.received(OffsetCommitRequest.self).count == 1)
            #expect(b.received(OffsetCommitRequest.self).count == 1)
            #expect(b.with { $0.committed[T.tp("t", 0)] } == 2)
        }
        #expect(a.count(.findCoordinator) >= 2)
        await consumer.close()
    }

    @Test func droppedCoordinatorConnectionDuringHeartbeatReconnects() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        let consumer = KafkaGroupConsumer(config: T.config(b), topics: ["t"])
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        let beatsBefore = b.count(.heartbeat)
        let connectionsBefore = b.broker.connectionCount
        b.with { $0.actions[ApiKey.heartbeat.rawValue] = [.close] }
        #expect(await T.eventually { b.count(.heartbeat) >= beatsBefore + 3 })
        #expect(b.broker.connectionCount > connectionsBefore)
        #expect(b.count(.joinGroup) == 1)
        #expect(consumer.memberId == "member-1")
        #expect(consumer.generationId == 1)
        #expect(consumer.assignment == [T.tp("t", 0)])
        await consumer.close()
    }

    enum Start: Sendable, CustomStringConvertible {
        case committed(Int64), reset(OffsetResetPolicy)
        var description: String {
            switch self {
            case let .committed(o): "committed \(o)"
            case let .reset(p): "reset \(p)"
            }
        }
    }

    /// Fetching starts at the committed offset; without one (-1), at auto.offset.reset's answer.
    @Test(arguments: [(Start.committed(5), Int64(5)), (.committed(0), 0), (.reset(.earliest), 2), (.reset(.latest), 8)])
    func fetchingStartsAtTheCommittedOffset(_ start: Start, _ expected: Int64) async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { s in
            s.logStart = 2
            s.logEnd[T.tp("t", 0)] = 8
            if case let .committed(o) = start { s.committed[T.tp("t", 0)] = o }
        }
        var config = T.config(b)
        if case let .reset(p) = start { config.consumer.autoOffsetReset = p }
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        #expect(await T.eventually { b.count(.fetch) >= 1 })
        let first = try #require(b.received(FetchRequest.self).first)
        #expect(first.topics.first?.partitions.first?.fetchOffset == expected)
        let listed = b.received(ListOffsetsRequest.self).flatMap { $0.topics.flatMap { $0.partitions.map(\.timestamp) } }
        switch start {
        case .committed: #expect(listed.isEmpty)
        case .reset(.earliest): #expect(listed == [-2])
        case .reset: #expect(listed == [-1])
        }
        if expected < 8 {
            var it = consumer.records.makeAsyncIterator()
            #expect(try await it.next()?.offset == expected)
        }
        await consumer.close()
    }

    @Test func noCommittedOffsetAndResetNoneIsAClearError() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        var config = T.config(b)
        config.consumer.autoOffsetReset = .none
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        do {
            for try await r in consumer.records { Issue.record("unexpected record \(r)") }
            Issue.record("records ended without an error")
        } catch let error as KafkaError {
            guard case let .invalidConfiguration(why) = error else { Issue.record("got \(error)"); return }
            #expect(why.contains("t/0"))
            #expect(why.contains("auto.offset.reset"))
        }
        #expect(b.count(.fetch) == 0)
        await consumer.close()
    }

    /// Auto-commit covers the records the application finished: one counts as finished when the
    /// application asks for the next.
    @Test func autoCommitCommitsOnlyProcessedRecords() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.logEnd[T.tp("t", 0)] = 6 }
        let log = EventLog()
        var config = T.config(b, log: log)
        config.autoCommitIntervalMs = 50
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        for expected in Int64(0)..<3 { #expect(try await it.next()?.offset == expected) }
        // 0 and 1 are processed; 2 is still with the application.
        #expect(await T.eventually { b.with { $0.committed[T.tp("t", 0)] } == 2 })
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(b.received(OffsetCommitRequest.self).allSatisfy { $0.topics.allSatisfy { $0.partitions.allSatisfy { $0.committedOffset <= 2 } } })
        #expect(try await it.next()?.offset == 3)
        #expect(await T.eventually { b.with { $0.committed[T.tp("t", 0)] } == 3 })
        // The callback hears of it (after the broker has answered, so wait for it too).
        #expect(await T.eventually { log.commitResults.compactMap { try? $0.get() }.last == [T.tp("t", 0): 3] })
        await consumer.close()
    }

    @Test func autoCommitFailuresReachTheCallback() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.logEnd[T.tp("t", 0)] = 3 }
        let log = EventLog()
        var config = T.config(b, log: log)
        config.autoCommitIntervalMs = 50
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        b.with { $0.errors[ApiKey.offsetCommit.rawValue] = [KafkaErrorCode.offsetMetadataTooLarge.rawValue] }
        var it = consumer.records.makeAsyncIterator()
        _ = try await it.next()
        _ = try await it.next()
        #expect(await T.eventually { log.commitResults.contains { (try? $0.get()) == nil } })
        let failure = log.commitResults.compactMap { r -> KafkaError? in
            if case let .failure(e) = r { return e }
            return nil
        }.first
        #expect(failure?.brokerCode == .offsetMetadataTooLarge)
        // Not committed: retried at the next interval.
        #expect(await T.eventually { b.with { $0.committed[T.tp("t", 0)] } == 1 })
        await consumer.close()
    }

    /// close(): commits what was processed, then leaves (a dynamic member) or does not (static).
    @Test(arguments: [nil, "instance-1"] as [String?])
    func closeCommitsThenLeaves(_ instanceId: String?) async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.logEnd[T.tp("t", 0)] = 4 }
        let log = EventLog()
        var config = T.config(b, log: log)
        config.groupInstanceId = instanceId
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        for _ in 0..<3 { _ = try await it.next() }
        await consumer.close()
        // close() counts the record the application holds (offset 2) as processed.
        #expect(b.with { $0.committed[T.tp("t", 0)] } == 3)
        let log2 = b.groupRequestLog
        let commitIndex = try #require(log2.lastIndex(of: .offsetCommit))
        if instanceId == nil {
            let leaveIndex = try #require(log2.lastIndex(of: .leaveGroup))
            #expect(commitIndex < leaveIndex)
            let leave = try #require(b.received(LeaveGroupRequest.self).last)
            #expect(leave.members.map(\.memberId) == ["member-1"])
        } else {
            #expect(b.count(.leaveGroup) == 0)
        }
        #expect(log.all.last == .revoked([T.tp("t", 0)]))
    }

    /// A coordinator that never answers cannot hold close() past closeTimeoutMs (the request
    /// timeout here is far longer).
    @Test(.timeLimit(.minutes(1))) func closeIsBoundedWhenTheCoordinatorIsSilent() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.logEnd[T.tp("t", 0)] = 4 }
        var config = T.config(b, requestTimeoutMs: 120_000)
        config.closeTimeoutMs = 300
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        _ = try await it.next()
        _ = try await it.next()
        b.with { $0.silent = [ApiKey.offsetCommit.rawValue, ApiKey.leaveGroup.rawValue, ApiKey.heartbeat.rawValue] }
        try await Task.sleep(nanoseconds: 300_000_000)  // a heartbeat is now hanging too
        let start = monotonicNanos()
        await consumer.close()
        let elapsedMs = (monotonicNanos() - start) / 1_000_000
        #expect(elapsedMs < 20_000)
    }

    /// Cooperative rebalancing: owning 0, 1, 2 and assigned 0, 1, the member revokes only 2, keeps
    /// fetching 0 and 1, and rejoins at once so that 2 can go to its new owner.
    @Test func cooperativeRevokesOnlyWhatMoves() async throws {
        let b = try GroupBroker(topics: ["t": 3])
        defer { b.stop() }
        b.with { s in
            s.memberLeads = false
            s.assignment = ["t": [0, 1, 2]]
        }
        let log = EventLog()
        var config = T.config(b, log: log)
        config.assignors = [CooperativeStickyAssignor()]
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        let all: Set<TopicPartition> = [T.tp("t", 0), T.tp("t", 1), T.tp("t", 2)]
        #expect(await T.eventually { consumer.assignment == all })
        #expect(await T.eventually { b.received(FetchRequest.self).contains { T.fetched($0) == all } })
        b.with { s in
            s.assignment = ["t": [0, 1]]
            s.errors[ApiKey.heartbeat.rawValue] = [KafkaErrorCode.rebalanceInProgress.rawValue]
        }
        #expect(await T.eventually { b.count(.syncGroup) >= 3 })
        #expect(consumer.assignment == [T.tp("t", 0), T.tp("t", 1)])
        #expect(log.all == [.assigned(all.sorted()), .revoked([T.tp("t", 2)])])
        // Partition 2's position was committed before it went.
        let revokeCommit = try #require(b.received(OffsetCommitRequest.self).first)
        #expect(revokeCommit.topics.map(\.name) == ["t"])
        #expect(revokeCommit.topics[0].partitions.map(\.partitionIndex) == [2])
        // The rejoin right after the revoking sync, not a heartbeat later; it reports 0 and 1 as owned.
        let requests = b.groupRequestLog.filter { [.joinGroup, .syncGroup, .heartbeat].contains($0) }
        let secondSync = try #require(requests.indices.filter { requests[$0] == .syncGroup }.dropFirst().first)
        #expect(requests[secondSync + 1] == .joinGroup)
        let third = try #require(b.received(JoinGroupRequest.self).dropFirst(2).first)
        let owned = try ConsumerProtocol.decodeSubscription(third.protocols[0].metadata, memberId: "member-1", groupInstanceId: nil).ownedPartitions
        #expect(owned == ["t": [0, 1]])
        // Fetching goes on for 0 and 1 only.
        let fetchesBefore = b.count(.fetch)
        #expect(await T.eventually { b.count(.fetch) >= fetchesBefore + 3 })
        #expect(T.fetched(b.received(FetchRequest.self).last!) == [T.tp("t", 0), T.tp("t", 1)])
        await consumer.close()
    }

    /// Records buffered for a partition before it was revoked are not delivered after the same
    /// member gets it back (cooperative): the application read 0...7 of a fetched 0...9 and had
    /// committed 3; the partition goes and comes back, and the records it sees next are 3, 4, ...
    /// from the new fetch, none skipped (not the stale 8, 9 and then 3...7 dropped as already seen).
    @Test func recordsBufferedBeforeARevocationAreNotDeliveredAfterTheReassignment() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        let tp = T.tp("t", 0)
        b.with { s in
            s.memberLeads = false
            s.assignment = ["t": [0]]
            s.logEnd[tp] = 10
        }
        let log = EventLog()
        var config = T.config(b, log: log)
        config.assignors = [CooperativeStickyAssignor()]
        config.enableAutoCommit = false
        // On the revocation the coordinator's next round gives partition 0 back, and the log grows.
        config.onRebalance = { e in
            log.events.withLock { $0.append(e) }
            if case .revoked = e {
                b.with { s in
                    s.assignment = ["t": [0]]
                    s.logEnd[tp] = 12
                }
            }
        }
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        var before: [Int64] = []
        for _ in 0..<8 { before.append(try #require(try await it.next()).offset) }
        #expect(before == Array(0...7))
        // The application committed up to 3 only; 8 and 9 stay buffered, unread.
        try await consumer.commit([tp: 3])
        b.with { s in
            s.assignment = [:]
            s.errors[ApiKey.heartbeat.rawValue] = [KafkaErrorCode.rebalanceInProgress.rawValue]
        }
        #expect(await T.eventually { log.all.count == 3 && consumer.assignment == [tp] })
        #expect(log.all == [.assigned([tp]), .revoked([tp]), .assigned([tp])])
        #expect(await T.eventually {
            b.received(FetchRequest.self).contains { $0.topics.first?.partitions.first?.fetchOffset == 3 }
        })
        var after: [Int64] = []
        while let r = try await it.next() {
            after.append(r.offset)
            if r.offset >= 11 { break }
        }
        #expect(after == Array(3...11), "after the re-assignment the application must resume at the committed offset 3 with no offset skipped")
        await consumer.close()
    }

    /// The FakeBroker reads request headers by the generated types' first flexible version.
    @Test func fakeBrokerHeaderFlexibilityFollowsTheGeneratedTypes() {
        for key in ApiKey.allCases {
            guard let type = key.requestType else {
                #expect(!FakeBroker.requestIsFlexible(apiKey: key.rawValue, version: 0))
                continue
            }
            for v in type.validVersions {
                #expect(FakeBroker.requestIsFlexible(apiKey: key.rawValue, version: v) == type.isFlexible(v), "\(key) v\(v)")
            }
        }
        #expect(FakeBroker.requestIsFlexible(apiKey: ApiKey.heartbeat.rawValue, version: 4))
        #expect(!FakeBroker.requestIsFlexible(apiKey: ApiKey.heartbeat.rawValue, version: 3))
        #expect(FakeBroker.requestIsFlexible(apiKey: ApiKey.consumerGroupHeartbeat.rawValue, version: 0))
        #expect(!FakeBroker.requestIsFlexible(apiKey: 9999, version: 0))
    }
}

/// What close() of a group consumer relies on in the connection layer.
@Suite(.timeLimit(.minutes(1))) struct ConnectionCancellationTests {
    /// A request sent by a task that is already cancelled fails at once instead of waiting for its
    /// deadline (the cancellation handler runs before the request is queued).
    @Test func alreadyCancelledTaskDoesNotWaitForTheDeadline() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        b.with { $0.silent = [ApiKey.heartbeat.rawValue] }
        let cluster = KafkaCluster(config: Scripted.config(b.broker, requestTimeoutMs: 60_000))
        let c = try await cluster.anyConnection()
        let start = monotonicNanos()
        let task = Task { () -> KafkaError? in
            while !Task.isCancelled { await Task.yield() }
            do throws(KafkaError) {
                _ = try await c.send(HeartbeatRequest())
                return nil
            } catch {
                return error
            }
        }
        task.cancel()
        let error = await task.value
        #expect(error != nil)
        #expect((monotonicNanos() - start) / 1_000_000 < 10_000)
        await cluster.close()
    }

    /// Closing a connection from several tasks at once returns in all of them.
    @Test func concurrentClosesAllReturn() async throws {
        let b = try GroupBroker()
        defer { b.stop() }
        for _ in 0..<20 {
            let cluster = KafkaCluster(config: Scripted.config(b.broker))
            let c = try await cluster.anyConnection()
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { await c.close() } }
                group.addTask { await cluster.close() }
            }
            #expect(c.isClosed)
        }
    }
}
