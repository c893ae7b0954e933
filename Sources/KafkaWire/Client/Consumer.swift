import Logging
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
        var loops: [Int32: Task<Void, Never>] = [:]
        var closed = false
    }
    private let state = Mutex(State())

    public init(config: ConsumerConfig, logger: Logger = Logger(label: "kafkawire.consumer")) {
        self.config = config
        self.logger = logger
        cluster = KafkaCluster(config: config.client, logger: logger)
        channel = BoundedChannel(capacity: config.maxBufferedBytes)
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

    public var records: Records { Records(channel: channel) }

    /// Bytes of fetched records waiting for the application.
    public var bufferedBytes: Int { channel.bufferedCost }

    /// Stops fetching and ends `records` after what is buffered.
    public func close() async {
        let loops = state.withLock { s -> [Task<Void, Never>] in
            s.closed = true
            return Array(s.loops.values)
        }
        for l in loops { l.cancel() }
        channel.finish()
        for l in loops { await l.value }
        await cluster.close()
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
                s.loops[leader] = Task { await self.fetchLoop(leader: leader) }
            }
        }
    }

    private func fetchLoop(leader: Int32) async {
        var failures = 0
        while !Task.isCancelled {
            // Checked and deregistered under one lock, so that an assign() racing with this exit
            // either sees the loop gone (and starts a new one) or gives it work.
            let mine = state.withLock { s -> [(TopicPartition, Int64)]? in
                let m = s.partitions.filter { $0.value.leader == leader }.map { ($0.key, $0.value.position) }
                if m.isEmpty { s.loops[leader] = nil; return nil }
                return m
            }
            guard let mine else { return }
            do {
                try await fetchOnce(leader: leader, partitions: mine)
                failures = 0
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if !error.isRetriable {
                    logger.error("consumer stopped", metadata: ["error": "\(error)"])
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

    private func fetchOnce(leader: Int32, partitions: [(TopicPartition, Int64)]) async throws(KafkaError) {
        let connection = try await cluster.connection(to: leader)
        var request = FetchRequest()
        request.replicaId = -1
        request.maxWaitMs = Int32(clamping: config.fetchMaxWaitMs)
        request.minBytes = Int32(clamping: config.fetchMinBytes)
        request.maxBytes = Int32(clamping: config.fetchMaxBytes)
        request.isolationLevel = config.readCommitted ? 1 : 0
        request.sessionId = 0
        request.sessionEpoch = -1  // no fetch session: every request lists every partition
        var byTopic: [String: [FetchRequest.FetchTopic.FetchPartition]] = [:]
        for (tp, position) in partitions.sorted(by: { ($0.0.topic, $0.0.partition) < ($1.0.topic, $1.0.partition) }) {
            var p = FetchRequest.FetchTopic.FetchPartition()
            p.partition = tp.partition
            p.fetchOffset = position
            p.partitionMaxBytes = Int32(clamping: config.maxPartitionFetchBytes)
            byTopic[tp.topic, default: []].append(p)
        }
        request.topics = byTopic.keys.sorted().map { FetchRequest.FetchTopic(topic: $0, partitions: byTopic[$0]!) }

        let response: FetchResponse
        do {
            response = try await connection.send(request, timeoutMs: config.client.requestTimeoutMs + config.fetchMaxWaitMs)
        } catch {
            if case .network = error { await cluster.connectionFailed(connection) }
            throw error
        }
        let topLevel = KafkaErrorCode(rawValue: response.errorCode)
        if topLevel != .none { throw KafkaError.broker(topLevel, context: "fetch from broker \(leader)") }

        let requested = Dictionary(uniqueKeysWithValues: partitions)
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition(topic: topic.topic, partition: p.partitionIndex)
                guard let fetchedFrom = requested[tp] else { continue }
                let code = KafkaErrorCode(rawValue: p.errorCode)
                switch code {
                case .none:
                    try await deliver(tp, from: fetchedFrom, p)
                case .offsetOutOfRange:
                    try await resetOffset(tp)
                default:
                    throw KafkaError.broker(code, context: "fetch \(tp)")
                }
            }
        }
    }

    /// Decodes one partition's records batch by batch and hands each batch to the application's
    /// buffer, waiting for room: at most one decoded batch is held beyond the buffer's cap.
    private func deliver(_ tp: TopicPartition, from position: Int64, _ p: FetchResponse.FetchableTopicResponse.PartitionData) async throws(KafkaError) {
        state.withLock { $0.partitions[tp]?.highWatermark = p.highWatermark }
        guard let blob = p.records, !blob.isEmpty else { return }
        let aborted = config.readCommitted ? Set((p.abortedTransactions ?? []).map(\.producerId)) : []
        var decoder = RecordBatchDecoder(blob, maxDecompressedBytes: config.maxDecompressedBatchBytes)
        var current = position
        while true {
            let batch: RecordBatch?
            do {
                batch = try decoder.next()
            } catch {
                throw .corruptRecords(topic: tp.topic, partition: tp.partition, offset: current, error)
            }
            guard let batch else { return }
            var out: [ConsumerRecord] = []
            var bytes = 0
            if !batch.isControl && !(batch.isTransactional && aborted.contains(batch.producerId)) {
                out.reserveCapacity(batch.records.count)
                for r in batch.records where r.offset >= current {
                    bytes += (r.key?.count ?? 0) + (r.value?.count ?? 0) + 64
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
            guard let epoch else { return }
            current = next
            if !out.isEmpty, !(await channel.send(FetchedChunk(epoch: epoch, records: out), cost: bytes)) { throw .closed }
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
        logger.info("offset reset", metadata: ["partition": "\(tp)", "offset": "\(o)"])
        state.withLock { $0.partitions[tp]?.position = o }
    }

    /// The fetched records, in order per partition.
    public struct Records: AsyncSequence, Sendable {
        public typealias Element = ConsumerRecord
        let channel: BoundedChannel<FetchedChunk>

        public struct AsyncIterator: AsyncIteratorProtocol {
            let channel: BoundedChannel<FetchedChunk>
            var chunk = FetchedChunk(epoch: 0, records: [])
            var index = 0

            public mutating func next() async throws -> ConsumerRecord? {
                try await nextWithEpoch()?.record
            }

            /// The next record and the assignment epoch it was fetched in.
            mutating func nextWithEpoch() async throws -> (record: ConsumerRecord, epoch: UInt64)? {
                while index >= chunk.records.count {
                    guard let c = try await channel.receive() else { return nil }
                    chunk = c
                    index = 0
                }
                defer { index += 1 }
                return (chunk.records[index], chunk.epoch)
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: channel) }
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
