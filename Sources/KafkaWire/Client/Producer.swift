#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Synchronization

/// `acks`: how many replicas must have a record before the broker answers.
public enum Acks: Int16, Sendable {
    /// Fire and forget: the broker sends no answer at all.
    case none = 0
    case leader = 1
    case all = -1
}

public struct ProducerConfig: Sendable {
    public var client: ClientConfig
    public var acks: Acks = .all
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    public var lingerMs: Int = 5
    /// `batch.size`: a batch is sent once its records reach this many bytes (before compression).
    public var batchSize: Int = 64 * 1024
    /// `compression.type`
    public var compression: CompressionCodec = .none
    /// `max.in.flight.requests.per.connection`
    public var maxInFlightPerConnection: Int = 5
    /// `delivery.timeout.ms`: give up on a record this long after `send`.
    public var deliveryTimeoutMs: Int = 120_000
    /// `buffer.memory`: bytes of records waiting to be sent; `send` waits while it is full.
    public var bufferMemory: Int = 64 << 20
    /// `max.block.ms`: how long `send` may wait for buffer space or for metadata.
    public var maxBlockMs: Int = 60_000

    public init(client: ClientConfig) { self.client = client }
    public init(bootstrapServers: String) { self.init(client: ClientConfig(bootstrapServers: bootstrapServers)) }
}

/// A record to send. `partition == nil` lets the partitioner choose: murmur2 of the key, or a
/// sticky partition for records without a key.
public struct ProducerRecord: Sendable {
    public var topic: String
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]
    /// Milliseconds since the epoch; nil means now.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    var estimatedSize: Int {
        21 + (key?.count ?? 0) + (value?.count ?? 0) + headers.reduce(0) { $0 + 2 + $1.key.utf8.count + ($1.value?.count ?? 0) }
    }
}

/// Where a record was written.
public struct RecordMetadata: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// -1 with acks=0, when the broker says nothing.
    public var offset: Int64
    public var timestamp: Int64
}



/// Sends records in batches per partition (linger, batch size), to each partition's leader, with
/// several requests in flight per broker.
///
/// `send` waits for the broker's acknowledgement; `enqueue` only waits for buffer space, and its
/// failures are reported by `flush`. Records of one partition are written in the order they were
/// handed over while no retry happens.
public final class KafkaProducer: Sendable {
    public let config: ProducerConfig
    let cluster: KafkaCluster
    let logger: Logger

    private struct PendingRecord {
        var record: ProducerRecord
        var timestamp: Int64
        var completion: Completion?
    }

    /// Called once per record with its outcome, from whichever task handled the answer.
    public typealias Completion = @Sendable (Result<RecordMetadata, KafkaError>) -> Void

    private final class Batch: @unchecked Sendable {
        // Only touched under the producer's lock, or by the single task sending it.
        let partition: TopicPartition
        var records: [PendingRecord] = []
        var bytes = 0
        let createdAt: UInt64
        var attempts = 0
        init(partition: TopicPartition, createdAt: UInt64) {
            self.partition = partition
            self.createdAt = createdAt
        }
    }

    private struct State {
        var open: [TopicPartition: Batch] = [:]
        var ready: [TopicPartition: [Batch]] = [:]
        var inFlightPerBroker: [Int32: Int] = [:]
        var partitionCounts: [String: Int] = [:]
        var sticky: [String: Int32] = [:]
        var bufferedBytes = 0
        var unackedRecords = 0
        var flushWaiters: [CheckedContinuation<Void, Never>] = []
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
        var failures: [(TopicPartition, KafkaError)] = []
        /// Partitions whose leader is being looked up; their batches wait in `ready`, in order.
        var resolving: Set<TopicPartition> = []
        /// Requests to each leader queue on its connection in the order the sender made them (each
        /// send task encodes on its own, so a later one may be ready first): tickets handed out,
        /// the ticket whose turn it is, tickets done early, and the tasks waiting for their turn.
        var nextTicket: [Int32: UInt64] = [:]
        var turn: [Int32: UInt64] = [:]
        var doneEarly: [Int32: Set<UInt64>] = [:]
        var turnWaiters: [Int32: [UInt64: CheckedContinuation<Void, Never>]] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let wake = Signal()
    private let senderTask = Mutex<Task<Void, Never>?>(nil)

    public init(config: ProducerConfig, logger: Logger = Logger(label: "kafkawire.producer")) {
        self.config = config
        self.logger = logger
        cluster = KafkaCluster(config: config.client, logger: logger)
        senderTask.withLock { $0 = Task { [self] in await self.runSender() } }
    }

    /// Sends one record and waits until the broker has it (per `acks`).
    public func send(_ record: ProducerRecord) async throws(KafkaError) -> RecordMetadata {
        let outcome = OneShot<Result<RecordMetadata, KafkaError>>()
        try await accept(record) { outcome.fulfill($0) }
        return try await outcome.value().get()
    }

    /// Sends records in the given order and waits for all their answers; one result per record.
    public func send(_ records: [ProducerRecord]) async -> [Result<RecordMetadata, KafkaError>] {
        let results = Mutex([Result<RecordMetadata, KafkaError>?](repeating: nil, count: records.count))
        let remaining = Mutex(records.count)
        let done = Signal()
        for (i, record) in records.enumerated() {
            await send(record) { result in
                results.withLock { $0[i] = result }
                if remaining.withLock({ $0 -= 1; return $0 == 0 }) { done.signal() }
            }
        }
        if !records.isEmpty { await done.wait(until: nil) }
        return results.withLock { $0.map { $0! } }
    }

    /// Queues a record; `completion` is called with its outcome (also when it cannot be queued).
    public func send(_ record: ProducerRecord, completion: @escaping Completion) async {
        do {
            try await accept(record, completion: completion)
        } catch {
            completion(.failure(error))
        }
    }

    /// Queues a record without waiting for its acknowledgement; `flush` reports failures.
    public func enqueue(_ record: ProducerRecord) async throws(KafkaError) {
        try await accept(record, completion: nil)
    }

    /// The errors of enqueued records that failed, since the last flush.
    public struct FlushError: Error, Sendable, CustomStringConvertible {
        public var failedRecords: Int
        public var firstError: KafkaError
        public var description: String { "\(failedRecords) records failed; first: \(firstError)" }
    }

    /// Sends everything queued now, waits for every answer, and reports enqueued records that failed.
    public func flush() async throws(FlushError) {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.unackedRecords == 0 { return true }
                for (tp, batch) in s.open { s.ready[tp, default: []].append(batch) }
                s.open.removeAll()
                s.flushWaiters.append(c)
                return false
            }
            if done { c.resume() } else { wake.signal() }
        }
        let failures = state.withLock { s in
            defer { s.failures.removeAll() }
            return s.failures
        }
        if let first = failures.first { throw FlushError(failedRecords: failures.count, firstError: first.1) }
    }

    /// Delivers what is buffered (within `timeoutMs`), then closes connections. Records that could
    /// not be delivered by then fail with `.closed`.
    public func close(timeoutMs: Int = 30_000) async {
        let flushed = Task { [self] in try? await self.flush() }
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while state.withLock({ $0.unackedRecords > 0 }) && monotonicNanos() < deadline {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        flushed.cancel()
        let (pending, waiters) = state.withLock { s -> ([Completion], [CheckedContinuation<Void, Never>]) in
            s.closed = true
            var pending: [Completion] = []
            for b in s.open.values { pending += b.records.compactMap(\.completion) }
            for bs in s.ready.values { for b in bs { pending += b.records.compactMap(\.completion) } }
            s.open.removeAll()
            s.ready.removeAll()
            let w = s.flushWaiters + s.spaceWaiters
            s.flushWaiters.removeAll()
            s.spaceWaiters.removeAll()
            return (pending, w)
        }
        for c in pending { c(.failure(.closed)) }
        for w in waiters { w.resume() }
        wake.signal()
        let task = senderTask.withLock { $0 }
        await task?.value
        await cluster.close()
    }

    // MARK: Accumulating

    private enum AppendOutcome {
        case appended(wakeSender: Bool)
        case needsPartitionCount
        case bufferFull
        case invalidPartition(Int32)
        case closed
    }

    /// Queues a record, waiting for metadata of a new topic or for buffer space (up to max.block.ms).
    private func accept(_ record: ProducerRecord, completion: Completion?) async throws(KafkaError) {
        let size = record.estimatedSize
        let timestamp = record.timestamp ?? currentTimeMillis()
        var deadline: UInt64?
        while true {
            switch tryAppend(record, size: size, timestamp: timestamp, completion: completion) {
            case let .appended(wakeSender):
                if wakeSender { wake.signal() }
                return
            case .closed:
                throw .closed
            case let .invalidPartition(p):
                throw .unknownTopicOrPartition(topic: record.topic, partition: p)
            case .needsPartitionCount:
                let t = try await cluster.topic(record.topic)
                guard !t.partitions.isEmpty else { throw .unknownTopicOrPartition(topic: record.topic, partition: nil) }
                state.withLock { $0.partitionCounts[record.topic] = t.partitions.count }
            case .bufferFull:
                let limit = deadline ?? monotonicNanos() + UInt64(config.maxBlockMs) * 1_000_000
                deadline = limit
                if monotonicNanos() >= limit {
                    throw .timedOut("buffer.memory (\(config.bufferMemory) bytes) full for max.block.ms \(config.maxBlockMs)")
                }
                await waitForSpace(size)
            }
        }
    }

    /// The whole hot path under one lock: choose the partition, reserve buffer space, append.
    private func tryAppend(_ record: ProducerRecord, size: Int, timestamp: Int64, completion: Completion?) -> AppendOutcome {
        state.withLock { s in
            if s.closed { return .closed }
            guard let count = s.partitionCounts[record.topic] else { return .needsPartitionCount }
            // One record larger than the whole buffer still goes through alone.
            guard s.bufferedBytes + size <= config.bufferMemory || s.bufferedBytes == 0 else { return .bufferFull }
            let partition: Int32
            if let p = record.partition {
                guard p >= 0, Int(p) < count else { return .invalidPartition(p) }
                partition = p
            } else if let key = record.key {
                partition = partitionForKey(key, partitionCount: count)
            } else if let p = s.sticky[record.topic] {
                partition = p
            } else {
                // Sticky partitioning (KIP-480): keyless records fill one partition's batch, then move on.
                partition = Int32.random(in: 0..<Int32(count))
                s.sticky[record.topic] = partition
            }
            let tp = TopicPartition(topic: record.topic, partition: partition)
            s.bufferedBytes += size
            let batch: Batch
            if let b = s.open[tp] {
                batch = b
            } else {
                batch = Batch(partition: tp, createdAt: monotonicNanos())
                s.open[tp] = batch
            }
            batch.records.append(PendingRecord(record: record, timestamp: timestamp, completion: completion))
            batch.bytes += size
            s.unackedRecords += 1
            if batch.bytes >= config.batchSize {
                s.open[tp] = nil
                s.ready[tp, default: []].append(batch)
                if record.key == nil && record.partition == nil { s.sticky[tp.topic] = nil }
                return .appended(wakeSender: true)
            }
            // The sender must start the linger clock of a new batch.
            return .appended(wakeSender: batch.records.count == 1)
        }
    }

    private func waitForSpace(_ size: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.closed || s.bufferedBytes == 0 || s.bufferedBytes + size <= config.bufferMemory { return true }
                s.spaceWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    // MARK: Sending

    private func runSender() async {
        while true {
            let (work, resolve, nextDeadline, stop) = collectReady()
            if stop { return }
            for tp in resolve {
                Task { await self.resolveLeader(tp) }
            }
            for (leader, (batches, ticket)) in work {
                Task { await self.sendBatches(batches, to: leader, ticket: ticket) }
            }
            if work.isEmpty { await wake.wait(until: nextDeadline) }
        }
    }

    /// Moves lingered batches to ready, then picks ready batches whose leader has room in flight,
    /// and names the partitions whose leader must be looked up first.
    private func collectReady() -> ([Int32: ([Batch], UInt64)], [TopicPartition], UInt64?, Bool) {
        let now = monotonicNanos()
        let linger = UInt64(config.lingerMs) * 1_000_000
        return state.withLock { s in
            if s.closed && s.ready.isEmpty && s.open.isEmpty && s.inFlightPerBroker.values.allSatisfy({ $0 == 0 }) {
                return ([:], [], nil, true)
            }
            var nextDeadline: UInt64?
            for (tp, batch) in s.open {
                if batch.createdAt + linger <= now || !s.flushWaiters.isEmpty {
                    s.open[tp] = nil
                    s.ready[tp, default: []].append(batch)
                    if s.sticky[tp.topic] == tp.partition { s.sticky[tp.topic] = nil }
                } else {
                    nextDeadline = min(nextDeadline ?? .max, batch.createdAt + linger)
                }
            }
            // Group ready batches by leader. A partition whose leader is unknown keeps its batches
            // queued (so that they still go out in the order they were made) while one task looks
            // the leader up.
            var work: [Int32: [Batch]] = [:]
            var resolve: [TopicPartition] = []
            for (tp, batches) in s.ready where !batches.isEmpty {
                guard let leader = leaderCache.withLock({ $0[tp] }) else {
                    if s.resolving.insert(tp).inserted { resolve.append(tp) }
                    continue
                }
                let inFlight = s.inFlightPerBroker[leader, default: 0]
                if inFlight >= config.maxInFlightPerConnection { continue }
                work[leader, default: []].append(contentsOf: batches)
                s.ready[tp] = nil
            }
            var ticketed: [Int32: ([Batch], UInt64)] = [:]
            for (leader, batches) in work {
                s.inFlightPerBroker[leader, default: 0] += 1
                let ticket = s.nextTicket[leader, default: 0]
                s.nextTicket[leader] = ticket + 1
                ticketed[leader] = (batches, ticket)
            }
            return (ticketed, resolve, nextDeadline, false)
        }
    }

    private let leaderCache = Mutex<[TopicPartition: Int32]>([:])

    /// Looks up a partition's leader for its queued batches. On failure, the batches that cannot
    /// wait any longer (delivery timeout, an error retrying cannot help, closed) fail; the others
    /// stay queued, in order, for the next lookup after the retry backoff.
    private func resolveLeader(_ tp: TopicPartition) async {
        defer { wake.signal() }
        do {
            let leader = try await cluster.leader(topic: tp.topic, partition: tp.partition)
            state.withLock { s in
                leaderCache.withLock { $0[tp] = leader }
                s.resolving.remove(tp)
            }
        } catch {
            let now = monotonicNanos()
            let hopeless = state.withLock { s -> [Batch] in
                var keep: [Batch] = []
                var fail: [Batch] = []
                for b in s.ready[tp] ?? [] {
                    let expired = now > b.createdAt + UInt64(config.deliveryTimeoutMs) * 1_000_000
                    if !error.isRetriable || expired || s.closed { fail.append(b) } else { keep.append(b) }
                }
                s.ready[tp] = keep.isEmpty ? nil : keep
                return fail
            }
            for b in hopeless { retryOrFail(b, error) }
            try? await Task.sleep(nanoseconds: UInt64(config.client.retryBackoffMs) * 1_000_000)
            state.withLock { _ = $0.resolving.remove(tp) }
        }
    }

    /// Waits until the requests of every earlier ticket to `leader` are queued (or given up).
    private func waitTurn(_ leader: Int32, _ ticket: UInt64) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.turn[leader, default: 0] == ticket { return true }
                s.turnWaiters[leader, default: [:]][ticket] = c
                return false
            }
            if now { c.resume() }
        }
    }

    /// Marks a ticket's request queued (or given up), letting the next ones go.
    private func finishTurn(_ leader: Int32, _ ticket: UInt64) {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.doneEarly[leader, default: []].insert(ticket)
            var turn = s.turn[leader, default: 0]
            while s.doneEarly[leader]?.remove(turn) != nil { turn += 1 }
            s.turn[leader] = turn
            return s.turnWaiters[leader]?.removeValue(forKey: turn)
        }
        next?.resume()
    }

    private func sendBatches(_ batches: [Batch], to leader: Int32, ticket: UInt64) async {
        let turn = TurnRelease { [self] in finishTurn(leader, ticket) }
        defer {
            turn.release()
            state.withLock { s in s.inFlightPerBroker[leader, default: 1] -= 1 }
            wake.signal()
        }
        let connection: BrokerConnection
        do {
            connection = try await cluster.connection(to: leader)
        } catch {
            for b in batches { retryOrFail(b, error) }
            return
        }
        var request = ProduceRequest()
        request.acks = config.acks.rawValue
        request.timeoutMs = Int32(clamping: config.client.requestTimeoutMs)
        var byTopic: [String: [ProduceRequest.TopicProduceData.PartitionProduceData]] = [:]
        var order: [String] = []
        var encodedBatches: [Batch] = []
        for b in batches {
            let encoded: [UInt8]
            do {
                encoded = try encode(b)
            } catch {
                retryOrFail(b, .recordEncoding(error))
                continue
            }
            encodedBatches.append(b)
            if byTopic[b.partition.topic] == nil { order.append(b.partition.topic) }
            byTopic[b.partition.topic, default: []].append(.init(index: b.partition.partition, records: encoded))
        }
        let batches = encodedBatches
        if batches.isEmpty { return }
        request.topicData = order.map { .init(name: $0, partitionData: byTopic[$0]!) }

        await waitTurn(leader, ticket)
        if config.acks == .none {
            do {
                try await connection.sendWithoutResponse(request, queued: { turn.release() })
                for b in batches { complete(b, baseOffset: -1, logAppendTime: -1) }
            } catch {
                await cluster.connectionFailed(connection)
                for b in batches { retryOrFail(b, error) }
            }
            return
        }
        let response: ProduceResponse
        do {
            response = try await connection.send(request, queued: { turn.release() })
        } catch {
            if case .network = error { await cluster.connectionFailed(connection) }
            for b in batches { retryOrFail(b, error) }
            return
        }
        var answered: [TopicPartition: ProduceResponse.TopicProduceResponse.PartitionProduceResponse] = [:]
        for t in response.responses {
            for p in t.partitionResponses { answered[TopicPartition(topic: t.name, partition: p.index)] = p }
        }
        for b in batches {
            guard let p = answered[b.partition] else {
                retryOrFail(b, .malformedResponse(connection.address, apiKey: ApiKey.produce.rawValue, "no answer for \(b.partition)"))
                continue
            }
            let code = KafkaErrorCode(rawValue: p.errorCode)
            if code == .none {
                complete(b, baseOffset: p.baseOffset, logAppendTime: p.logAppendTimeMs)
            } else {
                retryOrFail(b, .broker(code, context: "produce to \(b.partition)\(p.errorMessage.map { ": \($0)" } ?? "")"))
            }
        }
    }

    private func encode(_ b: Batch) throws(RecordEncodingError) -> [UInt8] {
        var builder = RecordBatchBuilder(compression: config.compression, initialCapacity: b.bytes + RecordBatchBuilder.headerSize)
        for r in b.records {
            builder.append(key: r.record.key, value: r.record.value, headers: r.record.headers, timestamp: r.timestamp)
        }
        return try builder.finish()
    }

    private func complete(_ b: Batch, baseOffset: Int64, logAppendTime: Int64) {
        var freed = 0
        for (i, r) in b.records.enumerated() {
            freed += r.record.estimatedSize
            r.completion?(.success(RecordMetadata(
                topic: b.partition.topic, partition: b.partition.partition,
                offset: baseOffset < 0 ? -1 : baseOffset + Int64(i),
                timestamp: logAppendTime >= 0 ? logAppendTime : r.timestamp)))
        }
        finish(records: b.records.count, bytes: freed)
    }

    private func retryOrFail(_ b: Batch, _ error: KafkaError) {
        b.attempts += 1
        let expired = monotonicNanos() > b.createdAt + UInt64(config.deliveryTimeoutMs) * 1_000_000
        if error.invalidatesMetadata {
            leaderCache.withLock { $0[b.partition] = nil }
            Task { await cluster.invalidateMetadata() }
        }
        if error.isRetriable && !expired && !state.withLock({ $0.closed }) {
            logger.debug("retrying batch", metadata: ["partition": "\(b.partition)", "error": "\(error)", "attempt": "\(b.attempts)"])
            let backoff = UInt64(config.client.retryBackoffMs) * 1_000_000
            Task {
                try? await Task.sleep(nanoseconds: backoff)
                self.requeue(b)
            }
            return
        }
        logger.warning("batch failed", metadata: ["partition": "\(b.partition)", "error": "\(error)", "records": "\(b.records.count)"])
        var freed = 0
        var failedWithoutWaiter = 0
        for r in b.records {
            freed += r.record.estimatedSize
            if let c = r.completion { c(.failure(error)) } else { failedWithoutWaiter += 1 }
        }
        state.withLock { s in
            for _ in 0..<failedWithoutWaiter { s.failures.append((b.partition, error)) }
        }
        finish(records: b.records.count, bytes: freed)
    }

    /// Puts a batch back at the front of its partition's queue, keeping record order.
    private func requeue(_ b: Batch) {
        state.withLock { s in s.ready[b.partition, default: []].insert(b, at: 0) }
        wake.signal()
    }

    private func finish(records: Int, bytes: Int) {
        let (flushed, space) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            s.unackedRecords -= records
            s.bufferedBytes -= bytes
            let f = s.unackedRecords == 0 ? s.flushWaiters : []
            if s.unackedRecords == 0 { s.flushWaiters.removeAll() }
            let w = s.spaceWaiters
            s.spaceWaiters.removeAll()
            return (f, w)
        }
        for c in flushed { c.resume() }
        for c in space { c.resume() }
    }
}

/// Runs its action once, whichever of the request being queued or the send task ending comes first.
private final class TurnRelease: Sendable {
    private let done = Mutex(false)
    private let action: @Sendable () -> Void
    init(_ action: @escaping @Sendable () -> Void) { self.action = action }
    func release() {
        if done.withLock({ d -> Bool in defer { d = true }; return !d }) { action() }
    }
}

func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
