import KafkaFakeBroker
import Synchronization
import Testing
@testable import KafkaWire

/// A KIP-848 coordinator on a `GroupBroker`: answers ConsumerGroupHeartbeat. A join (epoch 0) gets a
/// member id (if it had none), epoch 1 and `joinAssignment`; other heartbeats get the current
/// epoch and no assignment, unless the test queued replies.
final class ConsumerGroupCoordinator: Sendable {
    struct Reply: Sendable {
        var error: KafkaErrorCode = .none
        var epoch: Int32?
        /// topic id -> partitions
        var assignment: [KafkaUUID: [Int32]]?
    }
    struct State: Sendable {
        var epoch: Int32 = 0
        var members = 0
        var intervalMs: Int32 = 100
        var joinAssignment: [KafkaUUID: [Int32]] = [:]
        var replies: [Reply] = []
    }
    let state = Mutex(State())

    init(on b: GroupBroker) {
        b.with { s in
            s.custom = { [self] req in
                guard req.apiKey == ApiKey.consumerGroupHeartbeat.rawValue else { return nil }
                let request = try! ConsumerGroupHeartbeatRequest.decode(req.body, version: req.apiVersion)
                return GroupBroker.respond(self.answer(request), req)
            }
        }
    }

    func with<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }

    /// Queues replies for the next heartbeats that are not joins or leaves.
    func queue(_ replies: Reply...) { with { $0.replies.append(contentsOf: replies) } }

    private func answer(_ request: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        state.withLock { s in
            var r = ConsumerGroupHeartbeatResponse()
            r.heartbeatIntervalMs = s.intervalMs
            r.memberId = request.memberId
            switch request.memberEpoch {
            case 0:
                if request.memberId.isEmpty {
                    s.members += 1
                    r.memberId = "cg-member-\(s.members)"
                }
                s.epoch = 1
                r.memberEpoch = 1
                r.assignment = .init(topicPartitions: s.joinAssignment.map { .init(topicId: $0.key, partitions: $0.value) })
            case ..<0:
                r.memberEpoch = request.memberEpoch
            default:
                r.memberEpoch = s.epoch
                if !s.replies.isEmpty {
                    let reply = s.replies.removeFirst()
                    r.errorCode = reply.error.rawValue
                    if let e = reply.epoch { s.epoch = e; r.memberEpoch = e }
                    if let a = reply.assignment {
                        r.assignment = .init(topicPartitions: a.map { .init(topicId: $0.key, partitions: $0.value) })
                    }
                }
            }
            return r
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct ConsumerGroupProtocolTests {
    typealias T = GroupTesting

    static func config(_ b: GroupBroker, log: EventLog? = nil) -> GroupConsumerConfig {
        var c = T.config(b, log: log)
        c.groupProtocol = .consumer
        // The coordinator's interval (100 ms) is what counts: this one would be far too slow.
        c.heartbeatIntervalMs = 60_000
        return c
    }

    static func owned(_ r: ConsumerGroupHeartbeatRequest) -> [KafkaUUID: [Int32]]? {
        r.topicPartitions.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.topicId, $0.partitions) }) }
    }

    @Test func joinsWithEpochZeroThenAcknowledgesTheAssignment() async throws {
        let b = try GroupBroker(topics: ["t": 2], offerConsumerGroupHeartbeat: true)
        defer { b.stop() }
        let t = b.topicId("t")
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0, 1]] }
        let log = EventLog()
        var config = Self.config(b, log: log)
        config.serverAssignor = "uniform"
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        let both: Set<TopicPartition> = [T.tp("t", 0), T.tp("t", 1)]
        #expect(await T.eventually { consumer.assignment == both })
        #expect(await T.eventually { b.count(.consumerGroupHeartbeat) >= 4 })
        let beats = b.received(ConsumerGroupHeartbeatRequest.self)
        let join = beats[0]
        #expect(join.groupId == "g")
        #expect(join.memberId == "")
        #expect(join.memberEpoch == 0)
        #expect(join.subscribedTopicNames == ["t"])
        #expect(join.serverAssignor == "uniform")
        #expect(join.rebalanceTimeoutMs == 30_000)
        #expect(join.topicPartitions == [])
        // The acknowledgement: the member's id and epoch, and the partitions it now owns.
        #expect(beats[1].memberId == "cg-member-1")
        #expect(beats[1].memberEpoch == 1)
        #expect(Self.owned(beats[1]) == [t: [0, 1]])
        #expect(beats[1].subscribedTopicNames == nil)
        // Then plain heartbeats: nothing changed, nothing repeated.
        #expect(beats[2].memberEpoch == 1)
        #expect(beats[2].topicPartitions == nil)
        #expect(beats[2].subscribedTopicNames == nil)
        #expect(b.count(.joinGroup) == 0 && b.count(.syncGroup) == 0 && b.count(.heartbeat) == 0)
        #expect(consumer.memberId == "cg-member-1")
        #expect(consumer.generationId == 1)
        #expect(log.all == [.assigned([T.tp("t", 0), T.tp("t", 1)])])
        #expect(await T.eventually { b.received(FetchRequest.self).contains { T.fetched($0) == both } })
        await consumer.close()
    }

    /// ConsumerGroupHeartbeat v1 (Kafka 4.0, KIP-1082): the member makes up its own id.
    @Test func version1JoinsWithAMemberIdOfItsOwn() async throws {
        let b = try GroupBroker(topics: ["t": 1], offerConsumerGroupHeartbeat: true, consumerGroupHeartbeatVersions: 0...1)
        defer { b.stop() }
        let t = b.topicId("t")
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0]] }
        let consumer = KafkaGroupConsumer(config: Self.config(b), topics: ["t"])
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        let join = try #require(b.broker.requests.first { $0.apiKey == ApiKey.consumerGroupHeartbeat.rawValue })
        #expect(join.apiVersion == 1)
        let request = try ConsumerGroupHeartbeatRequest.decode(join.body, version: 1)
        #expect(request.memberEpoch == 0)
        #expect(request.memberId.count == 22)
        #expect(consumer.memberId == request.memberId)
        await consumer.close()
    }

    /// A new assignment: what is gone is committed (with the member epoch) and revoked, what is new
    /// starts, and the next heartbeat reports the owned partitions.
    @Test func assignmentChangeRevokesThenAcknowledges() async throws {
        let b = try GroupBroker(topics: ["t": 3], offerConsumerGroupHeartbeat: true)
        defer { b.stop() }
        let t = b.topicId("t")
        b.with { s in for p: Int32 in 0..<3 { s.logEnd[T.tp("t", p)] = 2 } }
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0, 1]] }
        let log = EventLog()
        let consumer = KafkaGroupConsumer(config: Self.config(b, log: log), topics: ["t"])
        #expect(await T.eventually { b.received(ConsumerGroupHeartbeatRequest.self).contains { Self.owned($0) == [t: [0, 1]] } })
        coordinator.queue(.init(epoch: 2, assignment: [t: [1, 2]]))
        #expect(await T.eventually { b.received(ConsumerGroupHeartbeatRequest.self).contains { Self.owned($0) == [t: [1, 2]] } })
        #expect(consumer.assignment == [T.tp("t", 1), T.tp("t", 2)])
        #expect(log.all == [.assigned([T.tp("t", 0), T.tp("t", 1)]), .revoked([T.tp("t", 0)]), .assigned([T.tp("t", 2)])])
        let commit = try #require(b.received(OffsetCommitRequest.self).first)
        #expect(commit.generationIdOrMemberEpoch == 2)
        #expect(commit.memberId == "cg-member-1")
        #expect(commit.topics.flatMap { t in t.partitions.map { T.tp(t.name, $0.partitionIndex) } } == [T.tp("t", 0)])
        // Committed before the acknowledgement went out.
        let requests = b.broker.requests
        let commitIndex = try #require(requests.firstIndex { $0.apiKey == ApiKey.offsetCommit.rawValue })
        let ackIndex = try #require(requests.firstIndex {
            $0.apiKey == ApiKey.consumerGroupHeartbeat.rawValue
                && Self.owned(try! ConsumerGroupHeartbeatRequest.decode($0.body, version: $0.apiVersion)) == [t: [1, 2]]
        })
        #expect(commitIndex < ackIndex)
        let ackRequest = try ConsumerGroupHeartbeatRequest.decode(requests[ackIndex].body, version: requests[ackIndex].apiVersion)
        #expect(ackRequest.memberEpoch == 2)
        let fetchesBefore = b.count(.fetch)
        #expect(await T.eventually { b.count(.fetch) >= fetchesBefore + 3 })
        #expect(T.fetched(b.received(FetchRequest.self).last!) == [T.tp("t", 1), T.tp("t", 2)])
        await consumer.close()
    }

    /// FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID: partitions lost (nothing committed), rejoin with
    /// epoch 0: as the same member when fenced, as a new one when unknown.
    @Test(arguments: [(KafkaErrorCode.fencedMemberEpoch, "cg-member-1"), (KafkaErrorCode.unknownMemberId, "")])
    func fencedOrUnknownMemberRejoinsWithEpochZero(_ code: KafkaErrorCode, _ rejoinId: String) async throws {
        let b = try GroupBroker(topics: ["t": 1], offerConsumerGroupHeartbeat: true)
        defer { b.stop() }
        let t = b.topicId("t")
        b.with { $0.logEnd[T.tp("t", 0)] = 3 }
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0]] }
        let log = EventLog()
        let consumer = KafkaGroupConsumer(config: Self.config(b, log: log), topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        _ = try await it.next()
        _ = try await it.next()  // offset 0 processed: a revocation would commit it
        coordinator.queue(.init(error: code))
        #expect(await T.eventually { log.all.count == 3 })
        #expect(log.all == [.assigned([T.tp("t", 0)]), .lost([T.tp("t", 0)]), .assigned([T.tp("t", 0)])])
        #expect(b.received(OffsetCommitRequest.self).isEmpty)
        let joins = b.received(ConsumerGroupHeartbeatRequest.self).filter { $0.memberEpoch == 0 }
        #expect(joins.map(\.memberId) == ["", rejoinId])
        #expect(joins.last?.topicPartitions == [])
        #expect(joins.last?.subscribedTopicNames == ["t"])
        await consumer.close()
    }

    /// close(): commits (with the member epoch), then leaves with epoch -1, or -2 as a static member.
    @Test(arguments: [(nil, Int32(-1)), ("instance-1", -2)] as [(String?, Int32)])
    func closeCommitsThenLeaves(_ instanceId: String?, _ leaveEpoch: Int32) async throws {
        let b = try GroupBroker(topics: ["t": 1], offerConsumerGroupHeartbeat: true)
        defer { b.stop() }
        let t = b.topicId("t")
        b.with { $0.logEnd[T.tp("t", 0)] = 4 }
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0]] }
        var config = Self.config(b)
        config.groupInstanceId = instanceId
        let consumer = KafkaGroupConsumer(config: config, topics: ["t"])
        var it = consumer.records.makeAsyncIterator()
        for _ in 0..<3 { _ = try await it.next() }
        await consumer.close()
        // close() counts the record the application holds (offset 2) as processed.
        #expect(b.with { $0.committed[T.tp("t", 0)] } == 3)
        let commit = try #require(b.received(OffsetCommitRequest.self).last)
        #expect(commit.generationIdOrMemberEpoch == 1)
        #expect(commit.memberId == "cg-member-1")
        let leave = try #require(b.received(ConsumerGroupHeartbeatRequest.self).last)
        #expect(leave.memberEpoch == leaveEpoch)
        #expect(leave.memberId == "cg-member-1")
        #expect(leave.instanceId == instanceId)
        let order = b.groupRequestLog
        #expect(order.lastIndex(of: .offsetCommit)! < order.lastIndex(of: .consumerGroupHeartbeat)!)
        #expect(b.count(.leaveGroup) == 0)
    }

    enum Lacking: String, CaseIterable, Sendable { case notOffered, unsupportedVersionAnswer }

    /// A broker without KIP-848: the application gets an error that says so.
    @Test(arguments: Lacking.allCases)
    func brokerWithoutTheProtocolIsAClearError(_ how: Lacking) async throws {
        let b = try GroupBroker(topics: ["t": 1], offerConsumerGroupHeartbeat: how == .unsupportedVersionAnswer)
        defer { b.stop() }
        if how == .unsupportedVersionAnswer {
            b.with { s in
                s.custom = { req in
                    guard req.apiKey == ApiKey.consumerGroupHeartbeat.rawValue else { return nil }
                    var r = ConsumerGroupHeartbeatResponse()
                    r.errorCode = KafkaErrorCode.unsupportedVersion.rawValue
                    r.errorMessage = "The new group coordinator is not enabled."
                    return GroupBroker.respond(r, req)
                }
            }
        }
        let consumer = KafkaGroupConsumer(config: Self.config(b), topics: ["t"])
        do {
            for try await r in consumer.records { Issue.record("unexpected record \(r)") }
            Issue.record("records ended without an error")
        } catch let error as KafkaError {
            guard case let .invalidConfiguration(why) = error else { Issue.record("got \(error)"); return }
            #expect(why.contains("KIP-848"))
            #expect(why.contains("ConsumerGroupHeartbeat"))
            #expect(why.contains(".classic"))
        }
        #expect(b.count(.joinGroup) == 0)
        await consumer.close()
    }

    /// NOT_COORDINATOR on a heartbeat: FindCoordinator again, and the member goes on (same id and
    /// epoch, every field sent again since the coordinator may not have seen the last heartbeat).
    @Test func coordinatorMoveKeepsTheMembership() async throws {
        let b = try GroupBroker(topics: ["t": 1], offerConsumerGroupHeartbeat: true)
        defer { b.stop() }
        let t = b.topicId("t")
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0]] }
        let consumer = KafkaGroupConsumer(config: Self.config(b), topics: ["t"])
        #expect(await T.eventually { b.received(ConsumerGroupHeartbeatRequest.self).contains { Self.owned($0) == [t: [0]] } })
        let finds = b.count(.findCoordinator)
        let beats = b.count(.consumerGroupHeartbeat)
        coordinator.queue(.init(error: .notCoordinator))
        #expect(await T.eventually { b.count(.consumerGroupHeartbeat) >= beats + 3 })
        #expect(b.count(.findCoordinator) > finds)
        let after = b.received(ConsumerGroupHeartbeatRequest.self).dropFirst(beats)
        #expect(after.allSatisfy { $0.memberEpoch == 1 && $0.memberId == "cg-member-1" })
        // The one after the error carries everything again.
        let retry = after.dropFirst().first
        #expect(retry?.subscribedTopicNames == ["t"])
        #expect(retry.flatMap(Self.owned) == [t: [0]])
        #expect(consumer.assignment == [T.tp("t", 0)])
        await consumer.close()
    }

    /// An assignment naming a topic id the metadata does not know yet: metadata is refreshed until
    /// the topic appears, then the partitions start.
    @Test func unknownTopicIdWaitsForMetadata() async throws {
        let b = try GroupBroker(topics: ["t": 1], offerConsumerGroupHeartbeat: true)
        defer { b.stop() }
        let t = b.topicId("t")
        let hidden = b.with { s in s.topics.removeValue(forKey: "t")! }
        let coordinator = ConsumerGroupCoordinator(on: b)
        coordinator.with { $0.joinAssignment = [t: [0]] }
        let consumer = KafkaGroupConsumer(config: Self.config(b), topics: ["t"])
        #expect(await T.eventually { b.count(.consumerGroupHeartbeat) >= 3 })
        #expect(consumer.assignment.isEmpty)
        let metadataBefore = b.count(.metadata)
        #expect(await T.eventually { b.count(.metadata) > metadataBefore })
        b.with { $0.topics["t"] = hidden }
        #expect(await T.eventually { consumer.assignment == [T.tp("t", 0)] })
        #expect(await T.eventually { b.received(ConsumerGroupHeartbeatRequest.self).contains { Self.owned($0) == [t: [0]] } })
        await consumer.close()
    }
}
