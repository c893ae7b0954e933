import Logging
import Synchronization

public struct GroupConsumerConfig: Sendable {
    public var consumer: ConsumerConfig
    /// `group.id`
    public var groupId: String
    /// `group.instance.id`: static membership; a restart within the session timeout keeps the
    /// member's partitions without a rebalance. A static member does not leave the group on close.
    public var groupInstanceId: String?
    /// `session.timeout.ms`: the coordinator drops a member it has not heard from for this long.
    public var sessionTimeoutMs: Int = 45_000
    /// `heartbeat.interval.ms`
    public var heartbeatIntervalMs: Int = 3_000
    /// `max.poll.interval.ms`: a member whose application holds a record longer than this leaves
    /// the group, so that its partitions go to a member that makes progress.
    public var maxPollIntervalMs: Int = 300_000
    /// `partition.assignment.strategy`, in order of preference. The group uses the first one all
    /// members support. Cooperative rebalancing is used only if every listed assignor is
    /// cooperative (as in the Java client).
    public var assignors: [any PartitionAssignor] = [RangeAssignor(), CooperativeStickyAssignor()]
    /// `enable.auto.commit` / `auto.commit.interval.ms`
    public var enableAutoCommit: Bool = true
    public var autoCommitIntervalMs: Int = 5_000
    /// Deadline for committing and leaving on close; a dead broker cannot hang shutdown longer.
    public var closeTimeoutMs: Int = 5_000
    /// `group.protocol`: `.classic` (JoinGroup/SyncGroup, assignors run on the leader member) or
    /// `.consumer` (KIP-848, ConsumerGroupHeartbeat; the coordinator assigns).
    public var groupProtocol: GroupProtocol = .classic
    /// `group.remote.assignor`: with `.consumer`, the coordinator's assignor to use ("uniform",
    /// "range"); nil lets the coordinator pick its default. `assignors` apply to `.classic` only.
    public var serverAssignor: String?
    /// Called before the consumer gives partitions up or after it gets them; awaited, so the
    /// application can flush and commit. Runs on the group's task: heartbeats wait meanwhile,
    /// within the rebalance timeout (max.poll.interval.ms).
    public var onRebalance: (@Sendable (RebalanceEvent) async -> Void)?
    /// Called with the outcome of every automatic commit (manual commits throw instead).
    public var onAutoCommit: (@Sendable (Result<[TopicPartition: Int64], KafkaError>) -> Void)?

    public init(consumer: ConsumerConfig, groupId: String) {
        self.consumer = consumer
        self.groupId = groupId
    }

    public init(bootstrapServers: String, groupId: String) {
        self.init(consumer: ConsumerConfig(bootstrapServers: bootstrapServers), groupId: groupId)
    }

    var rebalanceProtocol: RebalanceProtocol {
        assignors.allSatisfy { $0.rebalanceProtocol == .cooperative } ? .cooperative : .eager
    }
}

/// What a rebalance did to this member's partitions.
public enum RebalanceEvent: Sendable, Equatable {
    /// Partitions now owned; fetching starts after the handler returns.
    case assigned([TopicPartition])
    /// Partitions about to be given up: still owned, so commits for them still succeed.
    case revoked([TopicPartition])
    /// Partitions already owned by another member (session expired, fenced): do not commit them.
    case lost([TopicPartition])
}

/// A member of a consumer group: it joins, gets partitions (classic protocol, protocol type
/// "consumer": from the leader's assignor; KIP-848 with `groupProtocol = .consumer`: from the
/// coordinator, see ConsumerGroupProtocol.swift), heartbeats on its own schedule, commits offsets,
/// and hands records of its partitions to the application through `records`.
///
/// Offsets: a record counts as processed when the application asks for the next one; automatic
/// and `commit()` commits cover processed records only, so a crash re-delivers at most the records
/// after the last commit.
public final class KafkaGroupConsumer: Sendable {
    public let config: GroupConsumerConfig
    public let topics: [String]
    let logger: Logger
    let fetcher: KafkaConsumer
    var cluster: KafkaCluster { fetcher.cluster }

    struct Membership {
        var memberId = ""
        var generationId: Int32 = -1
        var protocolName: String?
        var coordinator: BrokerConnection?
        var assigned: Set<TopicPartition> = []
        /// Next offset expected per partition: records below it are stale (re-fetched or from
        /// before a re-assignment) and are skipped.
        var nextExpected: [TopicPartition: Int64] = [:]
        /// Partitions being revoked: no more of their records go to the application.
        var revoking: Set<TopicPartition> = []
        /// The fetcher's assignment epoch of each owned partition.
        var fetchEpochs: [TopicPartition: UInt64] = [:]
        /// Next offset to commit per partition: one past the last record the application finished.
        var processed: [TopicPartition: Int64] = [:]
        var lastCommitted: [TopicPartition: Int64] = [:]
        /// The record handed to the application and not yet followed by another `next()`.
        var outstanding: (TopicPartition, Int64, UInt64)?
        var needsJoin = true
        /// An assignment received (SyncGroup) and not started yet: applying it failed (offsets
        /// could not be fetched...), so the group task tries again.
        var pendingAssignment: Set<TopicPartition>?
        /// Heartbeat at once rather than at the interval: to acknowledge an assignment (KIP-848),
        /// or to retry one that failed.
        var heartbeatNow = false
        /// State of the KIP-848 protocol (`groupProtocol == .consumer`).
        var consumerGroup = ConsumerGroupMemberState()
        var pollExpired = false
        var closed = false
        var fatal: KafkaError?
        /// The leader's view of the subscribed topics' partition counts when it assigned (a
        /// missing topic has none); nil when this member is no leader.
        var assignedPartitionCounts: [String: Int]?
        var nextTopicCheck: UInt64 = 0
    }
    let membership = Mutex(Membership())
    private let wake = Signal()
    private let outstandingFinished = Signal()
    let groupTask = Mutex<Task<Void, Never>?>(nil)

    public init(config: GroupConsumerConfig, topics: [String], logger: Logger = Logger(label: "kafkawire.group")) {
        self.config = config
        self.topics = topics.sorted()
        self.logger = logger
        fetcher = KafkaConsumer(config: config.consumer, group: config.groupId, logger: logger)
        groupTask.withLock { $0 = Task { await self.runGroup() } }
    }

    /// The partitions this member owns now.
    public var assignment: Set<TopicPartition> { membership.withLock { $0.assigned } }
    public var memberId: String { membership.withLock { $0.memberId } }
    public var generationId: Int32 { membership.withLock { $0.generationId } }

    // MARK: Records

    public var records: Records { Records(consumer: self) }

    /// Records of the partitions this member owns, in order per partition.
    public struct Records: AsyncSequence, Sendable {
        public typealias Element = ConsumerRecord
        let consumer: KafkaGroupConsumer

        public struct AsyncIterator: AsyncIteratorProtocol {
            let consumer: KafkaGroupConsumer
            var inner: KafkaConsumer.Records.AsyncIterator

            public mutating func next() async throws -> ConsumerRecord? {
                consumer.finishOutstanding()
                while true {
                    if let fatal = consumer.membership.withLock({ $0.fatal }) { throw fatal }
                    guard let (r, epoch) = try await inner.nextWithEpoch() else {
                        if let fatal = consumer.membership.withLock({ $0.fatal }) { throw fatal }
                        return nil
                    }
                    if consumer.accept(r, epoch: epoch) { return r }
                }
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(consumer: consumer, inner: consumer.fetcher.records.makeAsyncIterator())
        }
    }

    /// Marks the record handed out last as processed.
    func finishOutstanding() {
        let (resume, finished) = membership.withLock { m -> (Bool, Bool) in
            let finished = m.outstanding != nil
            if let (tp, offset, _) = m.outstanding, m.assigned.contains(tp) {
                m.processed[tp] = max(m.processed[tp] ?? 0, offset + 1)
            }
            m.outstanding = nil
            // The application is polling again: a member that left for being slow may rejoin.
            if m.pollExpired { m.pollExpired = false; m.needsJoin = true; return (true, finished) }
            return (false, finished)
        }
        if finished { outstandingFinished.signal() }
        if resume { wake.signal() }
    }

    /// Stops handing out records of `partitions` and waits (up to `timeoutMs`) until the
    /// application is done with the one it holds, so that the commit that follows covers it:
    /// a record the application has finished is never given to the partition's next owner.
    private func drainApplication(_ partitions: Set<TopicPartition>, timeoutMs: Int) async {
        membership.withLock { $0.revoking.formUnion(partitions) }
        let deadline = monotonicNanos() + UInt64(max(timeoutMs, 0)) * 1_000_000
        while membership.withLock({ m in m.outstanding.map { partitions.contains($0.0) } ?? false }),
              monotonicNanos() < deadline {
            await outstandingFinished.wait(until: deadline)
        }
    }

    /// Whether a fetched record may go to the application: its partition is still ours, it was
    /// fetched in the current assignment of the partition (records buffered before a revocation
    /// must not be delivered after the partition comes back: the fetch restarts from the committed
    /// offset), and it is not one the application has already had.
    func accept(_ r: ConsumerRecord, epoch: UInt64) -> Bool {
        let tp = TopicPartition(topic: r.topic, partition: r.partition)
        return membership.withLock { m in
            // Once closing, nothing more: the final commit and the revocation are under way, and a
            // record handed out now would be consumed again by the partition's next owner.
            guard !m.closed, m.assigned.contains(tp), !m.revoking.contains(tp), m.fetchEpochs[tp] == epoch,
                  r.offset >= (m.nextExpected[tp] ?? 0) else { return false }
            m.nextExpected[tp] = r.offset + 1
            m.outstanding = (tp, r.offset, monotonicNanos())
            return true
        }
    }

    // MARK: Commits

    /// Commits the processed position of every owned partition.
    public func commit() async throws(KafkaError) {
        let offsets = membership.withLock { m in m.processed.filter { m.assigned.contains($0.key) } }
        try await commit(offsets)
    }

    /// Commits that `record` and everything before it in its partition are processed.
    public func commit(_ record: ConsumerRecord) async throws(KafkaError) {
        try await commit([TopicPartition(topic: record.topic, partition: record.partition): record.offset + 1])
    }

    /// Commits explicit positions (the offset of the next record to read, per partition).
    public func commit(_ offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        if offsets.isEmpty { return }
        let (memberId, generation, closed) = membership.withLock { ($0.memberId, $0.generationId, $0.closed) }
        if closed { throw .closed }
        try await sendCommit(offsets, memberId: memberId, generation: generation)
    }

    /// OffsetCommit on the coordinator; `generation` is the generation id (classic) or the member
    /// epoch (KIP-848). A coordinator that moved or is loading is looked up again and the commit
    /// retried (a few times); any other error is thrown, after the group reacted to it (rejoin...).
    func sendCommit(_ offsets: [TopicPartition: Int64], memberId: String, generation: Int32, timeoutMs: Int? = nil) async throws(KafkaError) {
        var request = OffsetCommitRequest()
        request.groupId = config.groupId
        request.generationIdOrMemberEpoch = generation
        request.memberId = memberId
        request.groupInstanceId = config.groupInstanceId
        request.retentionTimeMs = -1
        let byTopic = Dictionary(grouping: offsets, by: \.key.topic)
        request.topics = byTopic.keys.sorted().map { topic in
            .init(name: topic, partitions: byTopic[topic]!.sorted { $0.key.partition < $1.key.partition }.map {
                .init(partitionIndex: $0.key.partition, committedOffset: $0.value, committedLeaderEpoch: -1, commitTimestamp: -1)
            })
        }
        var attempt = 0
        while true {
            attempt += 1
            let coordinator = try await coordinatorConnection()
            let response: OffsetCommitResponse
            do {
                response = try await coordinator.send(request, timeoutMs: timeoutMs)
            } catch {
                await coordinatorFailed(coordinator, error)
                throw error
            }
            var failure: (code: KafkaErrorCode, partition: String)?
            var codes = Set<KafkaErrorCode>()
            for t in response.topics {
                for p in t.partitions where p.errorCode != 0 {
                    let code = KafkaErrorCode(rawValue: p.errorCode)
                    failure = failure ?? (code, "\(t.name)/\(p.partitionIndex)")
                    codes.insert(code)
                }
            }
            guard let failure else { break }
            for code in codes { handleGroupError(code) }
            if Self.coordinatorMoved(failure.code), attempt < 3 {
                try? await Task.sleep(nanoseconds: UInt64(config.consumer.client.retryBackoffMs) * 1_000_000)
                continue
            }
            let why: String
            switch failure.code {
            case .rebalanceInProgress:
                why = " (the group is rebalancing: this member rejoins; commit again once it has its partitions)"
            case .unknownMemberId, .illegalGeneration, .fencedMemberEpoch:
                why = " (this member is no longer part of the group's current generation: it rejoins, and its partitions may go to another member)"
            default:
                why = ""
            }
            throw .broker(failure.code, context: "commit \(failure.partition) for group \(config.groupId)\(why)")
        }
        membership.withLock { m in
            for (tp, o) in offsets { m.lastCommitted[tp] = max(m.lastCommitted[tp] ?? -1, o) }
        }
    }

    /// The committed offsets of the group for these partitions (-1: none).
    public func committed(_ partitions: [TopicPartition]) async throws(KafkaError) -> [TopicPartition: Int64] {
        let coordinator = try await coordinatorConnection()
        do {
            return try await fetchCommitted(coordinator, partitions)
        } catch {
            await coordinatorFailed(coordinator, error)
            throw error
        }
    }

    private func fetchCommitted(_ c: BrokerConnection, _ partitions: [TopicPartition]) async throws(KafkaError) -> [TopicPartition: Int64] {
        try await fetchCommittedOffsets(c, group: config.groupId, partitions: partitions)
    }

    // MARK: Closing

    /// Commits processed offsets (with auto-commit on), tells the coordinator this member leaves
    /// (unless it is static), and stops; bounded by `closeTimeoutMs` whatever the broker does.
    /// Closing says the application is done: the record it was handed last counts as processed
    /// (as records returned by the last poll do in the Java client).
    public func close() async {
        finishOutstanding()
        let alreadyClosed = membership.withLock { m -> Bool in
            defer { m.closed = true }
            return m.closed
        }
        if alreadyClosed { return }
        wake.signal()
        let task = groupTask.withLock { $0 }
        // The group task commits and leaves on its way out; wait for it up to the deadline. (Not in
        // a task group: leaving one waits for all its children, so a group task stuck on a silent
        // coordinator would hold close() past the deadline.)
        if let task { await Self.wait(for: task, atMostMs: config.closeTimeoutMs) }
        task?.cancel()
        await fetcher.close()
    }

    /// Returns when `task` ends or after `ms`, whichever comes first.
    private static func wait(for task: Task<Void, Never>, atMostMs ms: Int) async {
        let waiter = OnceContinuation()
        var timer: Task<Void, Never>?
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            waiter.set(c)
            timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(max(ms, 0)) * 1_000_000)
                waiter.resume()
            }
            Task {
                await task.value
                waiter.resume()
            }
        }
        timer?.cancel()
    }

    /// Leaves without committing or saying goodbye, as a crashed process would (for tests of
    /// session expiry).
    func abandon() async {
        membership.withLock { $0.closed = true; $0.memberId = "" }
        let task = groupTask.withLock { $0 }
        task?.cancel()
        await fetcher.close()
    }

    // MARK: The group task

    private func runGroup() async {
        var lastHeartbeat: UInt64 = 0
        var lastAutoCommit = monotonicNanos()
        var backoffMs = config.consumer.client.retryBackoffMs
        while true {
            let (closed, needsJoin, pollExpired) = membership.withLock { ($0.closed, $0.needsJoin, $0.pollExpired) }
            if closed || Task.isCancelled { break }
            do throws(KafkaError) {
                if needsJoin && !pollExpired {
                    try await join()
                    lastHeartbeat = monotonicNanos()
                    backoffMs = config.consumer.client.retryBackoffMs
                    continue
                }
                if !pollExpired {
                    // Retried each turn while it fails; heartbeats go on meanwhile, so that the
                    // session does not expire over a coordinator that is slow to load offsets.
                    do { try await applyPendingAssignment() } catch where error.isRetriable {
                        logger.debug("starting the assignment failed, retrying", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
                    }
                }
                let now = monotonicNanos()
                if !pollExpired, pollIntervalExceeded(now) {
                    logger.warning("max.poll.interval.ms exceeded: leaving the group", metadata: ["group": "\(config.groupId)"])
                    await leaveGroup(reason: "max.poll.interval.ms exceeded")
                    await revoke(lost: true)
                    membership.withLock { $0.pollExpired = true; $0.memberId = ""; $0.generationId = -1 }
                    continue
                }
                let interval = heartbeatIntervalNanos
                let heartbeatNow = membership.withLock { m in defer { m.heartbeatNow = false }; return m.heartbeatNow }
                if !pollExpired, heartbeatNow || now - lastHeartbeat >= interval {
                    lastHeartbeat = now
                    try await heartbeat()
                    backoffMs = config.consumer.client.retryBackoffMs
                }
                if config.enableAutoCommit, !pollExpired, now - lastAutoCommit >= UInt64(config.autoCommitIntervalMs) * 1_000_000 {
                    lastAutoCommit = now
                    await autoCommit()
                }
                if !pollExpired { await watchSubscribedTopics(now) }
                // A heartbeat or a commit asked for a rejoin (or another heartbeat): at once.
                if membership.withLock({ ($0.needsJoin && !$0.pollExpired) || $0.heartbeatNow }) { continue }
                let next = min(lastHeartbeat + interval,
                               config.enableAutoCommit ? lastAutoCommit + UInt64(config.autoCommitIntervalMs) * 1_000_000 : .max,
                               monotonicNanos() + 1_000_000_000)
                await wake.wait(until: next)
            } catch {
                if case .closed = error { break }
                if !error.isRetriable && !Self.isRejoinable(error) {
                    logger.error("group consumer failed", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
                    membership.withLock { $0.fatal = error }
                    fetcher.channel.finish(throwing: error)
                    break
                }
                logger.debug("group operation failed, retrying", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
                // Retry what failed (a join, or a heartbeat on a coordinator found again) after the backoff.
                membership.withLock { m in if !m.needsJoin { m.heartbeatNow = true } }
                try? await Task.sleep(nanoseconds: UInt64(backoffMs) * 1_000_000)
                backoffMs = min(backoffMs * 2, 2_000)
            }
        }
        await shutdown()
    }

    /// Group errors after which the member rejoins (the handler already asked for it) rather than stops.
    static func isRejoinable(_ error: KafkaError) -> Bool {
        guard case let .broker(code, _) = error else { return false }
        switch code {
        case .unknownMemberId, .illegalGeneration, .rebalanceInProgress, .memberIdRequired, .fencedMemberEpoch: return true
        default: return false
        }
    }

    /// Errors that mean the coordinator moved (or is not ready yet): find it again and retry.
    static func coordinatorMoved(_ code: KafkaErrorCode) -> Bool {
        code == .notCoordinator || code == .coordinatorNotAvailable || code == .coordinatorLoadInProgress
    }

    private var heartbeatIntervalNanos: UInt64 {
        let brokerMs = membership.withLock { $0.consumerGroup.heartbeatIntervalMs }
        return UInt64(max(brokerMs ?? config.heartbeatIntervalMs, 1)) * 1_000_000
    }

    /// Joins the group: JoinGroup and SyncGroup (classic), or a heartbeat with epoch 0 (KIP-848).
    private func join() async throws(KafkaError) {
        switch config.groupProtocol {
        case .classic: try await joinAndSync()
        case .consumer: try await consumerGroupHeartbeat()
        }
    }

    private func heartbeat() async throws(KafkaError) {
        switch config.groupProtocol {
        case .classic: try await classicHeartbeat()
        case .consumer: try await consumerGroupHeartbeat()
        }
    }

    /// Starts an assignment that was received but could not be started yet.
    private func applyPendingAssignment() async throws(KafkaError) {
        switch config.groupProtocol {
        case .classic:
            guard let pending = membership.withLock({ $0.pendingAssignment }) else { return }
            try await apply(pending)
            membership.withLock { m in if m.pendingAssignment == pending { m.pendingAssignment = nil } }
        case .consumer:
            try await reconcileConsumerGroupAssignment()
        }
    }

    private func pollIntervalExceeded(_ now: UInt64) -> Bool {
        membership.withLock { m in
            // `since` can be later than `now`: the application takes records on its own task while
            // this one runs (unsigned `now - since` then traps: a crash seen under load).
            guard let (_, _, since) = m.outstanding, now > since else { return false }
            return now - since > UInt64(config.maxPollIntervalMs) * 1_000_000
        }
    }

    /// On close: commit what was processed, then leave (classic: dynamic members only; KIP-848: a
    /// static member leaves with epoch -2, which keeps its partitions for its return).
    private func shutdown() async {
        let (wasMember, memberId, generation) = membership.withLock { ($0.generationId >= 0 && !$0.memberId.isEmpty, $0.memberId, $0.generationId) }
        guard wasMember else { return }
        if config.enableAutoCommit {
            let offsets = membership.withLock { m in m.processed.filter { m.assigned.contains($0.key) && m.lastCommitted[$0.key] != $0.value } }
            if !offsets.isEmpty {
                do { try await sendCommit(offsets, memberId: memberId, generation: generation, timeoutMs: config.closeTimeoutMs) } catch {
                    logger.warning("final commit failed", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
                    config.onAutoCommit?(.failure(error))
                }
            }
        }
        await callHandler(.revoked(Array(assignment).sorted()))
        if config.groupInstanceId == nil || config.groupProtocol == .consumer { await leaveGroup(reason: "the consumer is closing") }
    }

    func autoCommit() async {
        let (offsets, memberId, generation) = membership.withLock { m in
            (m.processed.filter { m.assigned.contains($0.key) && m.lastCommitted[$0.key] != $0.value }, m.memberId, m.generationId)
        }
        guard !offsets.isEmpty else { return }
        do {
            try await sendCommit(offsets, memberId: memberId, generation: generation)
            config.onAutoCommit?(.success(offsets))
        } catch {
            logger.warning("auto-commit failed", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
            config.onAutoCommit?(.failure(error))
        }
    }

    // MARK: Coordinator

    func coordinatorConnection() async throws(KafkaError) -> BrokerConnection {
        if let c = membership.withLock({ $0.coordinator }), !c.isClosed { return c }
        let c = try await cluster.groupCoordinator(config.groupId)
        membership.withLock { $0.coordinator = c }
        return c
    }

    func coordinatorFailed(_ c: BrokerConnection, _ error: KafkaError) async {
        if case .network = error {
            membership.withLock { m in if m.coordinator === c { m.coordinator = nil } }
            await cluster.connectionFailed(c)
        }
    }

    /// Reacts to a group error code from any group request (from the application's task too: a
    /// rejoin it asks for wakes the group task).
    func handleGroupError(_ code: KafkaErrorCode) {
        switch code {
        case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress:
            membership.withLock { $0.coordinator = nil }
        case .rebalanceInProgress:
            membership.withLock { $0.needsJoin = true }
            wake.signal()
        case .unknownMemberId, .illegalGeneration, .fencedMemberEpoch:
            // The generation (or member epoch) is gone: owned partitions are lost on the rejoin.
            membership.withLock { m in
                if code == .unknownMemberId { m.memberId = "" }
                m.generationId = -1
                m.needsJoin = true
            }
            wake.signal()
        default:
            break
        }
    }

    private func classicHeartbeat() async throws(KafkaError) {
        let coordinator = try await coordinatorConnection()
        let (memberId, generation) = membership.withLock { ($0.memberId, $0.generationId) }
        var request = HeartbeatRequest()
        request.groupId = config.groupId
        request.generationId = generation
        request.memberId = memberId
        request.groupInstanceId = config.groupInstanceId
        let response: HeartbeatResponse
        do {
            response = try await coordinator.send(request)
        } catch {
            await coordinatorFailed(coordinator, error)
            throw error
        }
        let code = KafkaErrorCode(rawValue: response.errorCode)
        switch code {
        case .none: return
        case .rebalanceInProgress:
            logger.debug("rebalance in progress", metadata: ["group": "\(config.groupId)"])
            membership.withLock { $0.needsJoin = true }
        case .unknownMemberId, .illegalGeneration:
            // Our session is gone: the partitions may already belong to someone else.
            logger.info("membership lost", metadata: ["group": "\(config.groupId)", "error": "\(code.name)"])
            await revoke(lost: true)
            handleGroupError(code)
        case .fencedInstanceId:
            throw .broker(code, context: "group \(config.groupId): another member uses group.instance.id \(config.groupInstanceId ?? "")")
        case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress:
            // Thrown (retriable): the group task finds the coordinator again and heartbeats after a backoff.
            handleGroupError(code)
            throw .broker(code, context: "heartbeat for group \(config.groupId)")
        default:
            throw .broker(code, context: "heartbeat for group \(config.groupId)")
        }
    }

    private func leaveGroup(reason: String) async {
        if config.groupProtocol == .consumer { await leaveConsumerGroup(); return }
        guard let coordinator = try? await coordinatorConnection(),
              let version = try? coordinator.versions.version(for: LeaveGroupRequest.self) else { return }
        let memberId = membership.withLock { $0.memberId }
        guard !memberId.isEmpty else { return }
        var request = LeaveGroupRequest()
        request.groupId = config.groupId
        // v3+ (KIP-345) names the members in a list; before, the member id is top-level. Setting
        // both fails to encode.
        if version >= 3 {
            request.members = [.init(memberId: memberId, groupInstanceId: config.groupInstanceId, reason: reason)]
        } else {
            request.memberId = memberId
        }
        _ = try? await coordinator.send(request, version: version, timeoutMs: config.closeTimeoutMs)
    }

    // MARK: Rebalancing

    func callHandler(_ event: RebalanceEvent) async {
        switch event {
        case let .assigned(p), let .revoked(p), let .lost(p): if p.isEmpty { return }
        }
        await config.onRebalance?(event)
    }

    /// Gives up partitions: `lost` ones without committing.
    func revoke(_ partitions: Set<TopicPartition>? = nil, lost: Bool = false) async {
        if !lost {
            let gone = membership.withLock { m in partitions ?? m.assigned }
            // Bounded, so an application stuck elsewhere cannot stall the group's rebalance.
            await drainApplication(gone, timeoutMs: min(config.maxPollIntervalMs / 2, 3_000))
        }
        let (gone, offsets, memberId, generation) = membership.withLock { m in
            let gone = partitions ?? m.assigned
            return (gone, m.processed.filter { gone.contains($0.key) && m.lastCommitted[$0.key] != $0.value }, m.memberId, m.generationId)
        }
        if gone.isEmpty { return }
        if lost {
            await callHandler(.lost(gone.sorted()))
        } else {
            if config.enableAutoCommit && !offsets.isEmpty {
                do {
                    try await sendCommit(offsets, memberId: memberId, generation: generation)
                    config.onAutoCommit?(.success(offsets))
                } catch {
                    logger.warning("commit before revocation failed", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
                    config.onAutoCommit?(.failure(error))
                }
            }
            await callHandler(.revoked(gone.sorted()))
        }
        fetcher.unassign(gone)
        membership.withLock { m in
            m.assigned.subtract(gone)
            m.revoking.subtract(gone)
            for tp in gone {
                m.nextExpected[tp] = nil
                m.fetchEpochs[tp] = nil
                m.processed[tp] = nil
                m.lastCommitted[tp] = nil
            }
        }
    }

    private func joinAndSync() async throws(KafkaError) {
        // After UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION (from a commit or a sync) the partitions may
        // already be someone else's: lost, not revoked, and not committed.
        let lostMembership = membership.withLock { m in
            m.pendingAssignment = nil
            return m.generationId < 0 && !m.assigned.isEmpty
        }
        if lostMembership { await revoke(lost: true) }
        if config.rebalanceProtocol == .eager { await revoke() }
        let coordinator = try await coordinatorConnection()
        let owned = membership.withLock { $0.assigned }
        var ownedByTopic: [String: [Int32]] = [:]
        for tp in owned { ownedByTopic[tp.topic, default: []].append(tp.partition) }
        let generation = membership.withLock { $0.generationId }

        var join = JoinGroupRequest()
        join.groupId = config.groupId
        join.sessionTimeoutMs = Int32(clamping: config.sessionTimeoutMs)
        join.rebalanceTimeoutMs = Int32(clamping: config.maxPollIntervalMs)
        join.groupInstanceId = config.groupInstanceId
        join.protocolType = "consumer"
        join.protocols = config.assignors.map {
            // Java's cooperative-sticky reads the generation from user data when the subscription
            // version predates the generation field (KIP-792): send it there too.
            let userData = $0 is CooperativeStickyAssignor ? CooperativeStickyAssignor.subscriptionUserData(generation: generation) : nil
            return .init(name: $0.name, metadata: ConsumerProtocol.encodeSubscription(
                topics: topics, ownedPartitions: ownedByTopic, generation: generation, userData: userData, rackId: nil))
        }
        // JoinGroup waits for every member (up to the rebalance timeout): it needs a longer deadline.
        let joinTimeout = config.maxPollIntervalMs + config.consumer.client.requestTimeoutMs
        var response: JoinGroupResponse
        var memberIdRequired = 0
        while true {
            join.memberId = membership.withLock { $0.memberId }
            do {
                response = try await coordinator.send(join, timeoutMs: joinTimeout)
            } catch {
                await coordinatorFailed(coordinator, error)
                throw error
            }
            let code = KafkaErrorCode(rawValue: response.errorCode)
            if code == .memberIdRequired {
                // KIP-394: the coordinator hands out the member id first; join again with it (at
                // once the first time; after a backoff if it asks again).
                membership.withLock { $0.memberId = response.memberId }
                memberIdRequired += 1
                if memberIdRequired == 1 { continue }
            }
            if code != .none {
                // Coordinator moves and membership errors are retried (see isRejoinable); others stop the member.
                handleGroupError(code)
                throw .broker(code, context: "join group \(config.groupId)")
            }
            break
        }
        membership.withLock { m in
            m.memberId = response.memberId
            m.generationId = response.generationId
            m.protocolName = response.protocolName
            m.assignedPartitionCounts = nil
        }
        logger.debug("joined group", metadata: [
            "group": "\(config.groupId)", "member": "\(response.memberId)", "generation": "\(response.generationId)",
            "leader": "\(response.leader == response.memberId)", "protocol": "\(response.protocolName ?? "?")",
        ])

        var sync = SyncGroupRequest()
        sync.groupId = config.groupId
        sync.generationId = response.generationId
        sync.memberId = response.memberId
        sync.groupInstanceId = config.groupInstanceId
        sync.protocolType = "consumer"
        sync.protocolName = response.protocolName
        if response.leader == response.memberId && !response.skipAssignment {
            sync.assignments = try await leaderAssignments(response)
        }
        let synced: SyncGroupResponse
        do {
            synced = try await coordinator.send(sync, timeoutMs: joinTimeout)
        } catch {
            await coordinatorFailed(coordinator, error)
            throw error
        }
        let code = KafkaErrorCode(rawValue: synced.errorCode)
        if code != .none {
            handleGroupError(code)
            throw .broker(code, context: "sync group \(config.groupId)")
        }
        let assignment: [String: [Int32]]
        do {
            assignment = try ConsumerProtocol.decodeAssignment(synced.assignment).partitions
        } catch {
            throw .malformedResponse(coordinator.address, apiKey: ApiKey.syncGroup.rawValue, "assignment: \(error)")
        }
        var newAssignment = Set<TopicPartition>()
        for (topic, partitions) in assignment { for p in partitions { newAssignment.insert(TopicPartition(topic: topic, partition: p)) } }
        membership.withLock { m in
            m.needsJoin = false
            m.pendingAssignment = newAssignment
        }
        fetcher.metrics.rebalances.increment()
        // If this fails (offsets cannot be fetched yet...), the group task tries again.
        try await applyPendingAssignment()
    }

    /// The leader's part: decode every member's subscription, run the chosen assignor.
    private func leaderAssignments(_ response: JoinGroupResponse) async throws(KafkaError) -> [SyncGroupRequest.SyncGroupRequestAssignment] {
        guard let name = response.protocolName, let assignor = config.assignors.first(where: { $0.name == name }) else {
            throw .invalidConfiguration("coordinator chose assignor \(response.protocolName ?? "none"), which this member does not have")
        }
        var members: [GroupMemberSubscription] = []
        for m in response.members {
            do {
                members.append(try ConsumerProtocol.decodeSubscription(m.metadata, memberId: m.memberId, groupInstanceId: m.groupInstanceId))
            } catch {
                throw .malformedResponse(BrokerAddress(host: "coordinator", port: 0), apiKey: ApiKey.joinGroup.rawValue, "subscription of \(m.memberId): \(error)")
            }
        }
        let allTopics = Set(members.flatMap(\.topics)).sorted()
        var counts: [String: Int] = [:]
        try await cluster.refreshMetadata(topics: allTopics)
        for topic in allTopics {
            if let t = try? await cluster.topic(topic) { counts[topic] = t.partitions.count }
        }
        membership.withLock { m in
            m.assignedPartitionCounts = counts
            m.nextTopicCheck = 0  // a missing topic is watched from now on
        }
        let plan = assignor.assign(members: members, partitionCounts: counts)
        logger.debug("leader computed assignment", metadata: ["group": "\(config.groupId)", "assignor": "\(name)", "members": "\(members.count)"])
        return members.map { m in
            .init(memberId: m.memberId, assignment: ConsumerProtocol.encodeAssignment(plan[m.memberId] ?? [:], userData: nil))
        }
    }

    /// The leader watches the subscribed topics, as the Java client compares its metadata with the
    /// assignment's: a topic created after the assignment (say, recreated after a broker lost it)
    /// or given more partitions needs a new assignment, so it rejoins. Every second while a
    /// subscribed topic is missing, else every metadata.max.age.ms.
    private func watchSubscribedTopics(_ now: UInt64) async {
        guard config.groupProtocol == .classic,
              let snapshot = membership.withLock({ $0.assignedPartitionCounts }),
              now >= membership.withLock({ $0.nextTopicCheck }) else { return }
        let missing = topics.contains { (snapshot[$0] ?? 0) == 0 }
        let intervalMs = missing ? 1_000 : config.consumer.client.metadataMaxAgeMs
        membership.withLock { $0.nextTopicCheck = now + UInt64(intervalMs) * 1_000_000 }
        do {
            try await cluster.refreshMetadata(topics: topics)
        } catch {
            logger.debug("checking the subscribed topics failed", metadata: ["group": "\(config.groupId)", "error": "\(error)"])
            return
        }
        var changed: [String] = []
        for topic in topics {
            let count = (try? await cluster.topic(topic))?.partitions.count ?? 0
            if count != snapshot[topic] ?? 0 { changed.append(topic) }
        }
        logger.trace("subscribed topics checked", metadata: ["group": "\(config.groupId)", "changed": "\(changed)"])
        guard !changed.isEmpty else { return }
        logger.info("subscribed topics changed: rejoining", metadata: ["group": "\(config.groupId)", "topics": "\(changed)"])
        membership.withLock { m in
            m.assignedPartitionCounts = nil
            m.needsJoin = true
        }
    }

    /// Moves from the current assignment to `new`: revokes what left (then rejoins, cooperative),
    /// fetches committed offsets of what arrived and starts fetching it.
    func apply(_ new: Set<TopicPartition>) async throws(KafkaError) {
        let current = membership.withLock { $0.assigned }
        let revoked = current.subtracting(new)
        let added = new.subtracting(current)
        if !revoked.isEmpty {
            await revoke(revoked)
            // Cooperative: the partitions we gave up go to their new owner in a follow-up round.
            // (KIP-848 needs no second round: the next heartbeat reports what this member owns.)
            if config.groupProtocol == .classic && config.rebalanceProtocol == .cooperative { membership.withLock { $0.needsJoin = true } }
        }
        guard !added.isEmpty else { return }
        let coordinator = try await coordinatorConnection()
        let committed: [TopicPartition: Int64]
        do {
            committed = try await fetchCommitted(coordinator, Array(added))
        } catch {
            await coordinatorFailed(coordinator, error)
            throw error
        }
        var positions: [TopicPartition: Int64] = [:]
        var reset: [TopicPartition] = []
        for tp in added {
            if let o = committed[tp], o >= 0 { positions[tp] = o } else { reset.append(tp) }
        }
        if !reset.isEmpty {
            let timestamp: Int64
            switch config.consumer.autoOffsetReset {
            case .earliest: timestamp = -2
            case .latest: timestamp = -1
            case .none:
                throw .invalidConfiguration("no committed offset for \(reset.sorted().map(\.description).joined(separator: ", ")) and auto.offset.reset is none")
            }
            let found = try await listOffsets(cluster: cluster, reset.map { ($0, timestamp) }, readCommitted: config.consumer.readCommitted)
            for tp in reset { positions[tp] = found[tp] ?? 0 }
        }
        membership.withLock { m in
            m.assigned.formUnion(added)
            for (tp, o) in positions {
                m.nextExpected[tp] = o
                m.processed[tp] = o
                m.lastCommitted[tp] = committed[tp]
            }
        }
        await callHandler(.assigned(added.sorted()))
        // Epochs are recorded before the first fetch, so no record of the new assignment can
        // arrive before the member knows to accept it.
        let epochs = fetcher.register(positions)
        membership.withLock { m in
            for (tp, epoch) in epochs where m.assigned.contains(tp) { m.fetchEpochs[tp] = epoch }
        }
        try await fetcher.startFetching()
        logger.info("partitions assigned", metadata: ["group": "\(config.groupId)", "added": "\(added.count)", "revoked": "\(revoked.count)", "owned": "\(new.count)"])
    }
}

/// A continuation resumed by whichever of several tasks gets there first.
private final class OnceContinuation: Sendable {
    private let continuation = Mutex<CheckedContinuation<Void, Never>?>(nil)
    func set(_ c: CheckedContinuation<Void, Never>) { continuation.withLock { $0 = c } }
    func resume() { continuation.withLock { c in defer { c = nil }; return c }?.resume() }
}
