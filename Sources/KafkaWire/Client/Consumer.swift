import Logging
import Metrics
import Synchronization

/// Where to start reading a partition.
public enum StartOffset: Sendable, Equatable {
    case earliest
    case latest
    case offset(Int64)
    /// The first offset whose timestamp is at or after this many milliseconds since the epoch.
    case timestamp(Int64)
}

/// `auto.offset.reset`: what to do when the position is out of the partition's range.
public enum OffsetResetPolicy: String, Sendable {
    case earliest, latest
    /// Fail the consumer with an error.
    case none
}

public struct ConsumerConfig: Sendable {
    public var client: ClientConfig
    /// `fetch.min.bytes`
    public var fetchMinBytes: Int = 1
    /// `fetch.max.bytes`
    public var fetchMaxBytes: Int = 50 << 20
    /// `max.partition.fetch.bytes`
    public var maxPartitionFetchBytes: Int = 1 << 20
    /// `fetch.max.wait.ms`
    public var fetchMaxWaitMs: Int = 500
    /// `isolation.level`: read_committed skips aborted transactions' records.
    public var readCommitted: Bool = false
    public var autoOffsetReset: OffsetResetPolicy = .latest
    /// Bytes of fetched records held for the application before fetching pauses.
    public var maxBufferedBytes: Int = 16 << 20
    /// `max.partition.buffered.bytes`: bytes of one partition's fetched records held for the
    /// application; at it the partition is not fetched again, and the answer in hand is decoded no
    /// further, until the application has read some. So the bound holds (within one record batch)
    /// even against a broker that ignores the fetch size limits.
    public var maxPartitionBufferedBytes: Int = 4 << 20
    /// `enable.fetch.sessions`: KIP-227 incremental fetches, which list only the partitions whose
    /// position changed. A broker that keeps no sessions gets full fetches either way.
    public var fetchSessions: Bool = true
    /// Largest decompressed size of one batch; anything larger is treated as corrupt.
    public var maxDecompressedBatchBytes: Int = 64 << 20

    public init(client: ClientConfig) { self.client = client }
    public init(bootstrapServers: String) { self.init(client: ClientConfig(bootstrapServers: bootstrapServers)) }
}

/// A record read from a partition.
public struct ConsumerRecord: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]
}

/// Reads chosen partitions (no group) from a start offset on.
///
/// Records arrive through `records`, an `AsyncSequence` backed by a buffer bounded by
/// `maxBufferedBytes`: when the application reads slowly, fetching pauses instead of memory growing.
/// One fetch loop runs per leader broker, fetching all of that broker's partitions in one request.
public final class KafkaConsumer: Sendable {
    public let config: ConsumerConfig
    let cluster: KafkaCluster
    let logger: Logger
    let channel: BoundedChannel<FetchedChunk>

    /// Records of one partition fetched in one assignment of it. The epoch tells records fetched
    /// before a partition was unassigned and assigned again from those fetched after.
    struct FetchedChunk: Sendable {
        var epoch: UInt64
        var records: [ConsumerRecord]
        var partition: TopicPartition
        var cost: Int
    }

    private struct PartitionState {
        var position: Int64
        var epoch: UInt64
        var highWatermark: Int64 = -1
        var leader: Int32?
    }
    private struct State {
        var nextEpoch: UInt64 = 0
        var partitions: [TopicPartition: PartitionState] = [:]
        var loops: [Int32: FetchLoop] = [:]
        var closed = false
    }
    /// One fetch loop per leader broker; `resume` wakes it when a paused partition has room again.
    private struct FetchLoop {
        var task: Task<FetchSession, Never>
        var resume: Signal
    }
    private let state = Mutex(State())
    let ledger: PartitionBufferLedger
    let metrics: ConsumerMetrics

    public convenience init(config: ConsumerConfig, logger: Logger = Logger(label: "kafkawire.consumer")) {
        self.init(config: config, group: "", logger: logger)
    }

    /// `group` names the consumer group in metrics (empty without one).
    init(config: ConsumerConfig, group: String, logger: Logger) {
        self.config = config
        self.logger = logger
        cluster = KafkaCluster(config: config.client, logger: logger)
        channel = BoundedChannel(capacity: config.maxBufferedBytes)
        ledger = PartitionBufferLedger(bound: config.maxPartitionBufferedBytes)
        metrics = ConsumerMetrics(clientId: config.client.clientId, group: group)
        ledger.onRoom = { [weak self] in self?.wakeLoops() }
    }

    private func wakeLoops() {
        for l in state.withLock({ Array($0.loops.values) }) { l.resume.signal() }
    }

    /// Starts reading the given partitions; `partitions == nil` means every partition of the topic.
    public func assign(topic: String, partitions: [Int32]? = nil, from start: StartOffset) async throws(KafkaError) {
        let meta = try await cluster.topic(topic)
        let wanted = partitions ?? meta.partitions.map(\.partition)
        for p in wanted where !meta.partitions.contains(where: { $0.partition == p }) {
            throw .unknownTopicOrPartition(topic: topic, partition: p)
        }
        let tps = wanted.map { TopicPartition(topic: topic, partition: $0) }
        let offsets = try await resolve(tps, start)
        _ = register(Dictionary(uniqueKeysWithValues: tps.map { ($0, offsets[$0] ?? 0) }))
        try await startLoops()
    }

    /// Makes these partitions assigned from these offsets, each with a new epoch, without starting
    /// to fetch yet (the group consumer records the epochs first, then calls `startFetching`).
    func register(_ positions: [TopicPartition: Int64]) -> [TopicPartition: UInt64] {
        state.withLock { s in
            var epochs: [TopicPartition: UInt64] = [:]
            for (tp, offset) in positions {
                s.nextEpoch += 1
                s.partitions[tp] = PartitionState(position: offset, epoch: s.nextEpoch)
                epochs[tp] = s.nextEpoch
            }
            return epochs
        }
    }

    func startFetching() async throws(KafkaError) {
        try await startLoops()
    }

    /// Stops fetching these partitions; records of theirs already buffered stay buffered.
    func unassign(_ partitions: some Sequence<TopicPartition>) {
        state.withLock { s in
            for tp in partitions { s.partitions[tp] = nil }
        }
    }

    /// The next offset to be fetched for each assigned partition.
    public func positions() -> [String: [Int32: Int64]] {
        state.withLock { s in
            var out: [String: [Int32: Int64]] = [:]
            for (tp, p) in s.partitions { out[tp.topic, default: [:]][tp.partition] = p.position }
            return out
        }
    }

    /// The high watermark last seen for each assigned partition (-1 before the first fetch).
    public func highWatermarks() -> [String: [Int32: Int64]] {
        state.withLock { s in
            var out: [String: [Int32: Int64]] = [:]
            for (tp, p) in s.partitions { out[tp.topic, default: [:]][tp.partition] = p.highWatermark }
            return out
        }
    }

    public var records: Records { Records(channel: channel, ledger: ledger) }

    /// Bytes of fetched records waiting for the application.
    public var bufferedBytes: Int { channel.bufferedCost }

    /// Stops fetching and ends `records` after what is buffered.
    public func close() async {
        let loops = state.withLock { s -> [(Int32, FetchLoop)] in
            s.closed = true
            return s.loops.map { ($0.key, $0.value) }
        }
        for (_, l) in loops {
            l.task.cancel()
            l.resume.signal()  // a loop waiting for buffer room
        }
        channel.finish()
        for (leader, l) in loops.map({ ($0.0, $0.1.task) }) {
            let session = await l.value
            await closeSession(session, leader: leader)
        }
        await cluster.close()
    }

    /// Tells the broker it can drop the session (best effort, only over a connection that is still
    /// open, so that closing never waits for a broker that is gone).
    private func closeSession(_ session: FetchSession, leader: Int32) async {
        guard let plan = session.closeRequest(), let connection = await cluster.openConnection(to: leader) else { return }
        var request = fetchRequest(plan)
        request.maxWaitMs = 0
        _ = try? await connection.send(request, timeoutMs: min(config.client.requestTimeoutMs, 2_000))
    }

    // MARK: Offsets

    private func resolve(_ tps: [TopicPartition], _ start: StartOffset) async throws(KafkaError) -> [TopicPartition: Int64] {
        let timestamp: Int64
        switch start {
        case let .offset(o): return Dictionary(uniqueKeysWithValues: tps.map { ($0, o) })
        case .earliest: timestamp = -2
        case .latest: timestamp = -1
        case let .timestamp(t): timestamp = t
        }
        let found = try await listOffsets(cluster: cluster, tps.map { ($0, timestamp) }, readCommitted: config.readCommitted)
        var out: [TopicPartition: Int64] = [:]
        for tp in tps {
            // No record at or after the timestamp: start at the end, as the Java client does.
            guard let o = found[tp], o >= 0 else {
                out[tp] = try await listOffsets(cluster: cluster, [(tp, -1)], readCommitted: config.readCommitted)[tp] ?? 0
                continue
            }
            out[tp] = o
        }
        return out
    }

    // MARK: Fetching

    /// Finds the leader of every partition that has none yet, and makes sure each leader with
    /// partitions has a fetch loop.
    private func startLoops() async throws(KafkaError) {
        let unresolved = state.withLock { s in s.partitions.filter { $0.value.leader == nil }.map(\.key) }
        var leaders: [TopicPartition: Int32] = [:]
        for tp in unresolved { leaders[tp] = try await cluster.leader(topic: tp.topic, partition: tp.partition) }
        state.withLock { s in
            for (tp, l) in leaders where s.partitions[tp] != nil && s.partitions[tp]?.leader == nil {
                s.partitions[tp]?.leader = l
            }
            for leader in Set(s.partitions.values.compactMap(\.leader)) where s.loops[leader] == nil && !s.closed {
                let resume = Signal()
                s.loops[leader] = FetchLoop(task: Task { await self.fetchLoop(leader: leader, resume: resume) }, resume: resume)
            }
        }
    }

    /// Fetches the partitions led by `leader` until there are none or the consumer closes; returns
    /// its fetch session so that `close` can end it on the broker.
    private func fetchLoop(leader: Int32, resume: Signal) async -> FetchSession {
        var session = FetchSession(enabled: config.fetchSessions)
        var failures = 0
        while !Task.isCancelled {
            // Checked and deregistered under one lock, so that an assign() racing with this exit
            // either sees the loop gone (and starts a new one) or gives it work.
            let mine = state.withLock { s -> [TopicPartition: Int64]? in
                var m: [TopicPartition: Int64] = [:]
                for (tp, p) in s.partitions where p.leader == leader { m[tp] = p.position }
                if m.isEmpty { s.loops[leader] = nil; return nil }
                return m
            }
            guard let mine else {
                await closeSession(session, leader: leader)
                return session
            }
            // Partitions whose buffered records are at the bound wait for the application.
            let fetchable = mine.filter { !ledger.isFull($0.key) }
            if fetchable.isEmpty {
                await resume.wait(until: monotonicNanos() + UInt64(max(config.fetchMaxWaitMs, 10)) * 1_000_000)
                continue
            }
            do {
                try await fetchOnce(leader: leader, partitions: fetchable, session: &session, resume: resume)
                failures = 0
            } catch {
                session.restart()
                if Task.isCancelled { break }
                failures += 1
                if !error.isRetriable {
                    logger.error("consumer stopped", metadata: ["broker": "\(leader)", "error": "\(error)"])
                    channel.finish(throwing: error)
                    break
                }
                logger.debug("fetch failed", metadata: ["broker": "\(leader)", "error": "\(error)"])
                let backoff = min(UInt64(config.client.retryBackoffMs) << min(failures, 6), 2_000) * 1_000_000
                try? await Task.sleep(nanoseconds: backoff)
                if error.invalidatesMetadata { await reassignLeaders(from: leader) }
            }
        }
        state.withLock { s in s.loops[leader] = nil }
        return session
    }

    /// After a leader change, moves partitions to their new leaders' loops.
    private func reassignLeaders(from leader: Int32) async {
        do {
            try await cluster.refreshMetadata()
        } catch {
            return
        }
        let tps = state.withLock { s in s.partitions.filter { $0.value.leader == leader }.map(\.key) }
        var moved = false
        for tp in tps {
            if let l = try? await cluster.leader(topic: tp.topic, partition: tp.partition), l != leader {
                state.withLock { $0.partitions[tp]?.leader = l }
                moved = true
            }
        }
        if moved { try? await startLoops() }
    }

    /// A Fetch request for a session plan.
    private func fetchRequest(_ plan: FetchSession.Plan) -> FetchRequest {
        var request = FetchRequest()
        request.replicaId = -1
        request.maxWaitMs = Int32(clamping: config.fetchMaxWaitMs)
        request.minBytes = Int32(clamping: config.fetchMinBytes)
        request.maxBytes = Int32(clamping: config.fetchMaxBytes)
        request.isolationLevel = config.readCommitted ? 1 : 0
        request.sessionId = plan.sessionId
        request.sessionEpoch = plan.sessionEpoch
        var topics: [FetchRequest.FetchTopic] = []
        for (tp, data) in plan.send {
            var p = FetchRequest.FetchTopic.FetchPartition()
            p.partition = tp.partition
            p.fetchOffset = data.fetchOffset
            p.partitionMaxBytes = data.maxBytes
            if topics.last?.topic == tp.topic {
                topics[topics.count - 1].partitions.append(p)
            } else {
                topics.append(FetchRequest.FetchTopic(topic: tp.topic, partitions: [p]))
            }
        }
        request.topics = topics
        request.forgottenTopicsData = plan.forget.map { FetchRequest.ForgottenTopic(topic: $0.topic, partitions: $0.partitions) }
        return request
    }

    private func fetchOnce(
        leader: Int32, partitions: [TopicPartition: Int64], session: inout FetchSession, resume: Signal
    ) async throws(KafkaError) {
        let connection = try await cluster.connection(to: leader)
        let maxBytes = Int32(clamping: config.maxPartitionFetchBytes)
        let plan = session.plan(partitions.mapValues { FetchSession.PartitionData(fetchOffset: $0, maxBytes: maxBytes) })
        let request = fetchRequest(plan)

        let response: FetchResponse
        let start = monotonicNanos()
        do {
            response = try await connection.send(request, timeoutMs: config.client.requestTimeoutMs + config.fetchMaxWaitMs)
        } catch {
            if case .network = error { await cluster.connectionFailed(connection) }
            throw error
        }
        metrics.fetchLatency.recordNanoseconds(Int64(clamping: monotonicNanos() - start))
        let topLevel = KafkaErrorCode(rawValue: response.errorCode)
        if topLevel == .fetchSessionIdNotFound || topLevel == .invalidFetchSessionEpoch, !plan.isFull {
            // The broker lost or evicted the session: start a new one with the next request.
            logger.debug("fetch session reset", metadata: [
                "broker": "\(leader)", "session_id": "\(plan.sessionId)", "epoch": "\(plan.sessionEpoch)", "error": "\(topLevel)",
            ])
            connection.metrics.brokerError(apiKey: ApiKey.fetch.rawValue, topLevel)
            session.rejected(topLevel)
            return
        }
        if topLevel != .none {
            connection.metrics.brokerError(apiKey: ApiKey.fetch.rawValue, topLevel)
            throw KafkaError.broker(topLevel, context: "fetch from broker \(leader)")
        }
        session.accepted(plan, sessionId: response.sessionId)

        // An incremental answer covers every partition of the session (those with news only),
        // each fetched from the offset the session holds for it: the positions it was built from.
        for topic in response.responses {
            var delivered = Delivered()
            for p in topic.partitions {
                let tp = TopicPartition(topic: topic.topic, partition: p.partitionIndex)
                guard let fetchedFrom = partitions[tp] else { continue }
                let code = KafkaErrorCode(rawValue: p.errorCode)
                switch code {
                case .none:
                    let position = try await deliver(tp, from: fetchedFrom, p, into: &delivered, resume: resume)
                    if p.highWatermark >= 0 { metrics.lag(tp).record(max(0, p.highWatermark - position)) }
                case .offsetOutOfRange:
                    connection.metrics.brokerError(apiKey: ApiKey.fetch.rawValue, code)
                    try await resetOffset(tp)
                default:
                    connection.metrics.brokerError(apiKey: ApiKey.fetch.rawValue, code)
                    logger.debug("fetch error", metadata: [
                        "topic": "\(tp.topic)", "partition": "\(tp.partition)", "broker": "\(leader)", "error": "\(code)",
                    ])
                    throw KafkaError.broker(code, context: "fetch \(tp)")
                }
            }
            if delivered.records > 0 { metrics.consumed(topic: topic.topic, records: delivered.records, bytes: delivered.bytes) }
        }
    }

    /// Records and bytes handed to the application from one answer, for metrics.
    struct Delivered {
        var records = 0
        var bytes = 0
    }

    /// Decodes one partition's records batch by batch and hands each batch to the application's
    /// buffer, waiting for room: at most one decoded batch is held beyond the buffer's cap.
    /// Returns the position after delivery. Before decoding each batch it waits while the
    /// partition's buffered bytes are at their bound (the answer in hand is used, not fetched
    /// again: a broker that ignores fetch size limits would otherwise send the same bytes over).
    private func deliver(
        _ tp: TopicPartition, from position: Int64, _ p: FetchResponse.FetchableTopicResponse.PartitionData,
        into delivered: inout Delivered, resume: Signal
    ) async throws(KafkaError) -> Int64 {
        state.withLock { $0.partitions[tp]?.highWatermark = p.highWatermark }
        guard let blob = p.records, !blob.isEmpty else { return position }
        let aborted = config.readCommitted ? Set((p.abortedTransactions ?? []).map(\.producerId)) : []
        var decoder = RecordBatchDecoder(blob, maxDecompressedBytes: config.maxDecompressedBatchBytes)
        var current = position
        while true {
            while ledger.isFull(tp) {
                if Task.isCancelled { throw .closed }
                await resume.wait(until: monotonicNanos() + UInt64(max(config.fetchMaxWaitMs, 10)) * 1_000_000)
            }
            let batch: RecordBatch?
            do {
                batch = try decoder.next()
            } catch {
                throw .corruptRecords(topic: tp.topic, partition: tp.partition, offset: current, error)
            }
            guard let batch else { return current }
            var out: [ConsumerRecord] = []
            var bytes = 0
            var payload = 0
            if !batch.isControl && !(batch.isTransactional && aborted.contains(batch.producerId)) {
                out.reserveCapacity(batch.records.count)
                for r in batch.records where r.offset >= current {
                    let size = (r.key?.count ?? 0) + (r.value?.count ?? 0)
                    payload += size
                    bytes += size + 64
                    out.append(ConsumerRecord(
                        topic: tp.topic, partition: tp.partition, offset: r.offset, timestamp: r.timestamp,
                        timestampType: batch.timestampType, key: r.key, value: r.value, headers: r.headers))
                }
            }
            let next = max(current, batch.nextOffset)
            // Only advance if nobody moved the position meanwhile (a reset or a re-assignment).
            let epoch = state.withLock { s -> UInt64? in
                guard let ps = s.partitions[tp], ps.position == current else { return nil }
                s.partitions[tp]?.position = next
                return ps.epoch
            }
            guard let epoch else { return current }
            current = next
            guard !out.isEmpty else { continue }
            delivered.records += out.count
            delivered.bytes += payload
            ledger.add(tp, bytes)
            let chunk = FetchedChunk(epoch: epoch, records: out, partition: tp, cost: bytes)
            if !(await channel.send(chunk, cost: bytes)) { throw .closed }
        }
    }

    private func resetOffset(_ tp: TopicPartition) async throws(KafkaError) {
        let timestamp: Int64
        switch config.autoOffsetReset {
        case .earliest: timestamp = -2
        case .latest: timestamp = -1
        case .none: throw .broker(.offsetOutOfRange, context: "fetch \(tp) (auto.offset.reset=none)")
        }
        let o = try await listOffsets(cluster: cluster, [(tp, timestamp)], readCommitted: config.readCommitted)[tp] ?? 0
        logger.info("offset reset", metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)", "offset": "\(o)"])
        state.withLock { $0.partitions[tp]?.position = o }
    }

    /// The fetched records, in order per partition.
    public struct Records: AsyncSequence, Sendable {
        public typealias Element = ConsumerRecord
        let channel: BoundedChannel<FetchedChunk>
        let ledger: PartitionBufferLedger

        public struct AsyncIterator: AsyncIteratorProtocol {
            let channel: BoundedChannel<FetchedChunk>
            let ledger: PartitionBufferLedger
            var chunk = FetchedChunk(epoch: 0, records: [], partition: TopicPartition(topic: "", partition: 0), cost: 0)
            var index = 0

            public mutating func next() async throws -> ConsumerRecord? {
                try await nextWithEpoch()?.record
            }

            /// The next record and the assignment epoch it was fetched in.
            mutating func nextWithEpoch() async throws -> (record: ConsumerRecord, epoch: UInt64)? {
                while index >= chunk.records.count {
                    guard let c = try await channel.receive() else { return nil }
                    ledger.remove(c.partition, c.cost)
                    chunk = c
                    index = 0
                }
                defer { index += 1 }
                return (chunk.records[index], chunk.epoch)
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: channel, ledger: ledger) }
    }
}

/// ListOffsets for several partitions, each asked of its leader. Timestamps: -1 latest, -2 earliest.
func listOffsets(cluster: KafkaCluster, _ queries: [(TopicPartition, Int64)], readCommitted: Bool) async throws(KafkaError) -> [TopicPartition: Int64] {
    var byLeader: [Int32: [(TopicPartition, Int64)]] = [:]
    for q in queries {
        let leader = try await cluster.leader(topic: q.0.topic, partition: q.0.partition)
        byLeader[leader, default: []].append(q)
    }
    var out: [TopicPartition: Int64] = [:]
    for (leader, qs) in byLeader {
        let c = try await cluster.connection(to: leader)
        var request = ListOffsetsRequest()
        request.replicaId = -1
        request.isolationLevel = readCommitted ? 1 : 0
        var byTopic: [String: [ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition]] = [:]
        for (tp, ts) in qs {
            var p = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition()
            p.partitionIndex = tp.partition
            p.timestamp = ts
            byTopic[tp.topic, default: []].append(p)
        }
        request.topics = byTopic.keys.sorted().map { ListOffsetsRequest.ListOffsetsTopic(name: $0, partitions: byTopic[$0]!) }
        let response: ListOffsetsResponse
        do {
            response = try await c.send(request)
        } catch {
            if case .network = error { await cluster.connectionFailed(c) }
            throw error
        }
        for t in response.topics {
            for p in t.partitions {
                let code = KafkaErrorCode(rawValue: p.errorCode)
                guard code == .none else {
                    if code.invalidatesMetadata { await cluster.invalidateMetadata() }
                    throw .broker(code, context: "list offsets \(t.name)/\(p.partitionIndex)")
                }
                out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.offset
            }
        }
    }
    return out
}
