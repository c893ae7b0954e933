#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Metrics
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
    /// `max.in.flight.requests.per.connection`; at most 5 with idempotence.
    public var maxInFlightPerConnection: Int = 5
    /// `delivery.timeout.ms`: give up on a record this long after `send`.
    public var deliveryTimeoutMs: Int = 120_000
    /// `buffer.memory`: bytes of records waiting to be sent; `send` waits while it is full.
    public var bufferMemory: Int = 64 << 20
    /// `queue.buffering.max.messages`: records waiting to be sent; `send` waits while it is full.
    public var maxBufferedRecords: Int = 100_000
    /// `max.block.ms`: how long `send` may wait for buffer space or for metadata.
    public var maxBlockMs: Int = 60_000
    /// `enable.idempotence`: nil (the default) means on when the broker can give a producer id and
    /// the other settings allow it (acks=all, max.in.flight <= 5, retries > 0), else off with a
    /// warning; true requires it (the producer fails clearly when it cannot have it); false is off.
    public var enableIdempotence: Bool?
    /// `retries`: how many times a batch is retried (within `delivery.timeout.ms`).
    public var retries: Int = Int(Int32.max)
    /// `retry.backoff.max.ms`: the retry backoff doubles from `retry.backoff.ms` up to this.
    public var retryBackoffMaxMs: Int = 1_000

    public init(client: ClientConfig) { self.client = client }
    public init(bootstrapServers: String) { self.init(client: ClientConfig(bootstrapServers: bootstrapServers)) }

    /// Whether the producer asks for a producer id: explicitly, or by default when nothing conflicts.
    public var wantsIdempotence: Bool {
        enableIdempotence ?? (acks == .all && maxInFlightPerConnection <= 5 && retries > 0)
    }

    /// Rejects settings that contradict each other (as the Java client does).
    public func validate() throws(KafkaError) {
        guard enableIdempotence == true else { return }
        if maxInFlightPerConnection > 5 {
            throw .invalidConfiguration("enable.idempotence=true requires max.in.flight.requests.per.connection <= 5, got \(maxInFlightPerConnection)")
        }
        if acks != .all { throw .invalidConfiguration("enable.idempotence=true requires acks=all, got acks=\(acks.setting)") }
        if retries == 0 { throw .invalidConfiguration("enable.idempotence=true requires retries > 0") }
    }
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
    /// -1 with acks=0, when the broker says nothing, and for a duplicate the broker recognised
    /// without naming its offset.
    public var offset: Int64
    public var timestamp: Int64
}

/// Sends records in batches per partition (linger, batch size), to each partition's leader, with
/// several requests in flight per broker.
///
/// Records of one partition are written in the order they were handed over, also across retries:
/// when a batch fails, its partition sends nothing more until its in-flight requests are answered,
/// then re-sends the failed batches in their order. With idempotence (the default when the broker
/// offers it) every batch carries the producer id, epoch and sequence, so the broker also drops
/// duplicates of a batch re-sent after a lost answer.
///
/// `send` waits for the broker's acknowledgement; `enqueue` only waits for buffer space: its
/// outcome goes to `deliveryReports` when given a `reportId`, else failures are reported by `flush`
/// and `close`.
public final class KafkaProducer: Sendable {
    public let config: ProducerConfig
    let cluster: KafkaCluster
    let logger: Logger
    let metrics: ProducerMetrics
    private let configError: KafkaError?
    private let reports: DeliveryReportQueue

    /// Called once per record with its outcome, from whichever task handled the answer.
    public typealias Completion = @Sendable (Result<RecordMetadata, KafkaError>) -> Void

    enum Notify {
        case none
        case completion(Completion)
        case report(UInt64)

        var isNone: Bool {
            if case .none = self { return true }
            return false
        }
    }

    struct PendingRecord {
        var record: ProducerRecord
        var timestamp: Int64
        var notify: Notify
    }

    /// Only touched under the producer's lock, or by the single task sending it (which reads the
    /// fields the lock set before the task started).
    final class Batch: @unchecked Sendable {
        let partition: TopicPartition
        /// Creation order: batches of one partition are written in this order.
        let id: UInt64
        var records: [PendingRecord] = []
        var bytes = 0
        let createdAt: UInt64
        var attempts = 0
        var retryAt: UInt64 = 0
        var lastError: KafkaError?
        /// Completed, failed or given up; a late answer is ignored.
        var done = false
        // Idempotence: the stamp this batch is sent with (sequence -1: none yet).
        var producerId: Int64 = -1
        var epoch: Int16 = -1
        var sequence: Int32 = -1
        /// Its sequence was reassigned after an epoch bump (Java's sequenceHasBeenReset).
        var sequenceReset = false
        /// Times sent with its current stamp: a DUPLICATE_SEQUENCE_NUMBER answer to the first
        /// of them means somebody else's batch under our producer id, not an earlier attempt.
        var sendsWithStamp = 0
        /// The encoded batch, kept so that a retry re-sends the same bytes (restamped if needed).
        var encoded: [UInt8]?
        var encodedStamp: (Int64, Int16, Int32) = (-1, -1, -1)

        init(partition: TopicPartition, id: UInt64, createdAt: UInt64) {
            self.partition = partition
            self.id = id
            self.createdAt = createdAt
        }

        var lastSequence: Int32 { sequenceAdd(sequence, Int32(records.count - 1)) }
    }

    /// One partition's queue of closed batches and what is in flight for it.
    final class Lane: @unchecked Sendable {
        var queue: [Batch] = []
        var inFlight: [Batch] = []
        /// A batch failed: send nothing more until the in-flight ones are answered, then re-send
        /// in order.
        var draining = false
        // Idempotence: the producer id and epoch this partition's sequences belong to.
        var producerId: Int64 = -1
        var epoch: Int16 = -1
        var nextSequence: Int32 = 0
        var lastAckedSequence: Int32 = -1
        /// Sequences must restart from 0 under the current epoch once nothing is in flight.
        var needsReset = false

        /// Moves the partition to a new producer id/epoch: sequences restart at 0, and batches
        /// already stamped (waiting for a retry) get new sequences in their order.
        func adopt(producerId: Int64, epoch: Int16) {
            let renumber = self.producerId >= 0
            self.producerId = producerId
            self.epoch = epoch
            nextSequence = 0
            lastAckedSequence = -1
            needsReset = false
            for b in queue where b.sequence >= 0 {
                b.producerId = producerId
                b.epoch = epoch
                b.sequence = nextSequence
                b.sequenceReset = renumber
                b.sendsWithStamp = 0
                nextSequence = sequenceAdd(nextSequence, Int32(b.records.count))
            }
        }

        /// Puts a batch back in creation order.
        func requeue(_ b: Batch) {
            let i = queue.firstIndex { $0.id > b.id } ?? queue.count
            queue.insert(b, at: i)
        }
    }

    /// Whether and with which id the producer is idempotent.
    enum Identity {
        case pending
        case initializing
        case ready(producerId: Int64, epoch: Int16)
        case disabled
        case failed(KafkaError)
    }

    private struct State {
        var open: [TopicPartition: Batch] = [:]
        var lanes: [TopicPartition: Lane] = [:]
        var inFlightPerBroker: [Int32: Int] = [:]
        var partitionCounts: [String: Int] = [:]
        var sticky: [String: Int32] = [:]
        var bufferedBytes = 0
        var bufferedRecords = 0
        var unackedRecords = 0
        var nextBatchId: UInt64 = 0
        var flushWaiters: [OneShot<Void>] = []
        var spaceWaiters: [OneShot<Void>] = []
        /// Enqueued records without a completion or report that failed, since the last flush.
        var failures: [UndeliveredRecord] = []
        var failuresNotKept = 0
        /// Partitions whose leader is being looked up; their batches wait in their lane, in order.
        var resolving: Set<TopicPartition> = []
        /// Requests to each leader queue on its connection in the order the sender made them (each
        /// send task encodes on its own, so a later one may be ready first): tickets handed out,
        /// the ticket whose turn it is, tickets done early, and the tasks waiting for their turn.
        var nextTicket: [Int32: UInt64] = [:]
        var turn: [Int32: UInt64] = [:]
        var doneEarly: [Int32: Set<UInt64>] = [:]
        var turnWaiters: [Int32: [UInt64: CheckedContinuation<Void, Never>]] = [:]
        var identity: Identity = .disabled
        /// False once `close` began: new records are refused, open batches go out at once.
        var accepting = true
        var closed = false
    }

    private let state = Mutex(State())
    private let wake = Signal()
    private let senderTask = Mutex<Task<Void, Never>?>(nil)

    /// - Parameter metricsFactory: where the producer's metrics go (the bootstrapped swift-metrics
    ///   backend by default).
    public init(config: ProducerConfig, logger: Logger = Logger(label: "kafkawire.producer"), metricsFactory: (any MetricsFactory)? = nil) {
        self.config = config
        self.logger = logger
        cluster = KafkaCluster(config: config.client, logger: logger)
        metrics = ProducerMetrics(clientId: config.client.clientId, factory: metricsFactory ?? MetricsSystem.factory)
        do throws(KafkaError) {
            try config.validate()
            configError = nil
        } catch {
            configError = error
        }
        reports = DeliveryReportQueue()
        let identity: Identity = config.wantsIdempotence && config.acks != .none ? .pending : .disabled
        state.withLock { $0.identity = identity }
        reports.onRead { [weak self] bytes in self?.reportRead(bytes: bytes) }
        senderTask.withLock { $0 = Task { [self] in await self.runSender() } }
    }

    /// A report read frees its record's buffer space.
    private func reportRead(bytes: Int) {
        let waiters = state.withLock { s -> [OneShot<Void>] in
            s.bufferedBytes -= bytes
            s.bufferedRecords -= 1
            defer { s.spaceWaiters.removeAll() }
            return s.spaceWaiters
        }
        for w in waiters { w.fulfill(()) }
    }

    /// Sends one record and waits until the broker has it (per `acks`).
    public func send(_ record: ProducerRecord) async throws(KafkaError) -> RecordMetadata {
        let outcome = OneShot<Result<RecordMetadata, KafkaError>>()
        try await accept(record, notify: .completion { outcome.fulfill($0) })
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
            try await accept(record, notify: .completion(completion))
        } catch {
            completion(.failure(error))
        }
    }

    /// Queues a record without waiting for its acknowledgement; `flush` and `close` report it if it
    /// fails. Throws only when it cannot be queued (closed, unknown topic, buffer full past
    /// max.block.ms).
    public func enqueue(_ record: ProducerRecord) async throws(KafkaError) {
        try await accept(record, notify: .none)
    }

    /// Queues a record without waiting; its outcome arrives on `deliveryReports` with `reportId`.
    /// Until that report is read it counts against the buffer caps, so an application that does
    /// not read its reports is slowed by backpressure instead of growing memory.
    public func enqueue(_ record: ProducerRecord, reportId: UInt64) async throws(KafkaError) {
        try await accept(record, notify: .report(reportId))
    }

    /// The producer id and epoch batches are stamped with; nil while the producer is not (or not
    /// yet) idempotent.
    public var producerIdentity: (producerId: Int64, epoch: Int16)? {
        state.withLock { s in
            if case let .ready(pid, epoch) = s.identity { return (pid, epoch) }
            return nil
        }
    }

    /// The outcome of every record queued with `enqueue(_:reportId:)`, in the order they were
    /// settled. Ends after `close`. One reader at a time.
    public var deliveryReports: DeliveryReports { DeliveryReports(queue: reports) }

    /// Sends everything queued now and waits for every answer, at most `timeoutMs` (nil: no limit).
    /// Throws if records failed since the last flush (enqueued ones without a report, with their
    /// identity) or if records are still unanswered at the deadline.
    public func flush(timeoutMs: Int? = nil) async throws(FlushError) {
        let deadline = timeoutMs.map { monotonicNanos() + UInt64(max(0, $0)) * 1_000_000 }
        await waitUntilIdle(deadline: deadline)
        let (failures, notKept, pending) = state.withLock { s in
            defer { s.failures.removeAll(); s.failuresNotKept = 0 }
            return (s.failures, s.failuresNotKept, s.unackedRecords)
        }
        if !failures.isEmpty || pending > 0 {
            throw FlushError(failed: failures, failedNotKept: notKept, stillPending: pending)
        }
    }

    /// Delivers what is held (within `timeoutMs`), then closes connections. Records that could not
    /// be delivered by then fail (with `.closed`, or the last error a retry met); returns every
    /// record that failed without its failure reaching a waiting caller since the last flush, and
    /// every record given up at the deadline, with their identities. Never waits much past the
    /// deadline, even when the broker is gone.
    @discardableResult
    public func close(timeoutMs: Int = 30_000) async -> [UndeliveredRecord] {
        let deadline = monotonicNanos() + UInt64(max(0, timeoutMs)) * 1_000_000
        let alreadyClosed = state.withLock { s -> Bool in
            defer { s.accepting = false }
            return !s.accepting
        }
        wake.signal()
        if !alreadyClosed { await waitUntilIdle(deadline: deadline) }
        let (given, waiters) = state.withLock { s -> ([Batch], [OneShot<Void>]) in
            s.closed = true
            var given: [Batch] = []
            for b in s.open.values where !b.done { b.done = true; given.append(b) }
            s.open.removeAll()
            for lane in s.lanes.values {
                for b in lane.inFlight + lane.queue where !b.done {
                    b.done = true
                    given.append(b)
                }
                lane.inFlight.removeAll()
                lane.queue.removeAll()
            }
            let w = s.flushWaiters + s.spaceWaiters
            s.flushWaiters.removeAll()
            s.spaceWaiters.removeAll()
            return (given.sorted { $0.id < $1.id }, w)
        }
        var undelivered: [UndeliveredRecord] = []
        for b in given {
            let error = b.lastError.map { KafkaError.timedOut("not delivered before close; last error: \($0)") } ?? .closed
            undelivered += settleRecords(b, .failure(error), keepFailures: false)
        }
        for w in waiters { w.fulfill(()) }
        wake.signal()
        let task = senderTask.withLock { $0 }
        await task?.value
        await cluster.close()
        reports.finish()
        let kept = state.withLock { s in
            defer { s.failures.removeAll() }
            return s.failures
        }
        return kept + undelivered
    }

    /// Waits until every record is answered, or the deadline.
    private func waitUntilIdle(deadline: UInt64?) async {
        let waiter = OneShot<Void>()
        let idle = state.withLock { s -> Bool in
            if s.unackedRecords == 0 { return true }
            // Open batches go out now rather than after their linger.
            for (tp, batch) in s.open { laneFor(&s, tp).queue.append(batch) }
            s.open.removeAll()
            s.flushWaiters.append(waiter)
            return false
        }
        if idle { return }
        wake.signal()
        await waiter.wait(until: deadline)
    }

    private func laneFor(_ s: inout State, _ tp: TopicPartition) -> Lane {
        if let l = s.lanes[tp] { return l }
        let l = Lane()
        s.lanes[tp] = l
        return l
    }

    // MARK: Accumulating

    private enum AppendOutcome {
        case appended(wakeSender: Bool)
        case needsPartitionCount
        case bufferFull(byRecords: Bool)
        case invalidPartition(Int32)
        case failed(KafkaError)
    }

    /// Queues a record, waiting for metadata of a new topic or for buffer space (up to max.block.ms).
    private func accept(_ record: ProducerRecord, notify: Notify) async throws(KafkaError) {
        if let configError { throw configError }
        let size = record.estimatedSize
        let timestamp = record.timestamp ?? currentTimeMillis()
        var deadline: UInt64?
        while true {
            switch tryAppend(record, size: size, timestamp: timestamp, notify: notify) {
            case let .appended(wakeSender):
                if wakeSender { wake.signal() }
                return
            case let .failed(error):
                throw error
            case let .invalidPartition(p):
                throw .unknownTopicOrPartition(topic: record.topic, partition: p)
            case .needsPartitionCount:
                let t = try await cluster.topic(record.topic)
                guard !t.partitions.isEmpty else { throw .unknownTopicOrPartition(topic: record.topic, partition: nil) }
                state.withLock { $0.partitionCounts[record.topic] = t.partitions.count }
            case let .bufferFull(byRecords):
                let limit = deadline ?? monotonicNanos() + UInt64(config.maxBlockMs) * 1_000_000
                deadline = limit
                if monotonicNanos() >= limit {
                    let cap = byRecords
                        ? "queue.buffering.max.messages (\(config.maxBufferedRecords) records)"
                        : "buffer.memory (\(config.bufferMemory) bytes)"
                    throw .timedOut("\(cap) full for max.block.ms \(config.maxBlockMs)")
                }
                await waitForSpace(size, until: limit)
            }
        }
    }

    /// Whether one more record of `size` fits. A record larger than the whole buffer still goes
    /// through alone, so nothing deadlocks on it.
    private func fits(_ s: borrowing State, _ size: Int) -> Bool {
        s.bufferedRecords == 0
            || (s.bufferedBytes + size <= config.bufferMemory && s.bufferedRecords < config.maxBufferedRecords)
    }

    /// The whole hot path under one lock: choose the partition, reserve buffer space, append.
    private func tryAppend(_ record: ProducerRecord, size: Int, timestamp: Int64, notify: Notify) -> AppendOutcome {
        state.withLock { s in
            if !s.accepting { return .failed(.closed) }
            if case let .failed(e) = s.identity { return .failed(e) }
            guard let count = s.partitionCounts[record.topic] else { return .needsPartitionCount }
            guard fits(s, size) else { return .bufferFull(byRecords: s.bufferedRecords >= config.maxBufferedRecords) }
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
            s.bufferedRecords += 1
            let batch: Batch
            if let b = s.open[tp] {
                batch = b
            } else {
                batch = Batch(partition: tp, id: s.nextBatchId, createdAt: monotonicNanos())
                s.nextBatchId += 1
                s.open[tp] = batch
            }
            batch.records.append(PendingRecord(record: record, timestamp: timestamp, notify: notify))
            batch.bytes += size
            s.unackedRecords += 1
            if batch.bytes >= config.batchSize {
                s.open[tp] = nil
                laneFor(&s, tp).queue.append(batch)
                if record.key == nil && record.partition == nil { s.sticky[tp.topic] = nil }
                return .appended(wakeSender: true)
            }
            // The sender must start the linger clock of a new batch.
            return .appended(wakeSender: batch.records.count == 1)
        }
    }

    private func waitForSpace(_ size: Int, until deadline: UInt64) async {
        let waiter = OneShot<Void>()
        let now = state.withLock { s -> Bool in
            if !s.accepting || fits(s, size) { return true }
            s.spaceWaiters.append(waiter)
            return false
        }
        if now { return }
        await waiter.wait(until: deadline)
    }

    // MARK: Sending

    private struct Work {
        var requests: [(leader: Int32, batches: [Batch], ticket: UInt64)] = []
        var resolve: [TopicPartition] = []
        var expired: [(Batch, KafkaError)] = []
        var initIdentity = false
        var nextDeadline: UInt64?
        var stop = false
    }

    private func runSender() async {
        while true {
            let work = collect()
            if work.stop { return }
            for (b, error) in work.expired { finishBatch(b, .failure(error)) }
            if work.initIdentity { Task { await self.initProducerId() } }
            for tp in work.resolve { Task { await self.resolveLeader(tp) } }
            for r in work.requests {
                Task { await self.sendBatches(r.batches, to: r.leader, ticket: r.ticket) }
            }
            if work.requests.isEmpty && work.expired.isEmpty { await wake.wait(until: work.nextDeadline) }
        }
    }

    /// Moves lingered batches to their lanes, gives up batches past delivery.timeout.ms, and makes
    /// requests from the lanes that may send, while their leader has room in flight.
    private func collect() -> Work {
        let now = monotonicNanos()
        let linger = UInt64(config.lingerMs) * 1_000_000
        let timeout = UInt64(config.deliveryTimeoutMs) * 1_000_000
        return state.withLock { s in
            var w = Work()
            if s.closed { w.stop = true; return w }
            func later(_ t: UInt64) { w.nextDeadline = min(w.nextDeadline ?? .max, t) }
            for (tp, batch) in s.open {
                if batch.createdAt + linger <= now || !s.accepting {
                    s.open[tp] = nil
                    laneFor(&s, tp).queue.append(batch)
                    if s.sticky[tp.topic] == tp.partition { s.sticky[tp.topic] = nil }
                } else {
                    later(batch.createdAt + linger)
                }
            }
            for (tp, lane) in s.lanes where !lane.queue.isEmpty {
                while let head = lane.queue.first, head.createdAt + timeout <= now || isFailed(s.identity) {
                    lane.queue.removeFirst()
                    head.done = true
                    if head.sequence >= 0 { bumpEpoch(&s, lane, head) }  // its outcome is unknown
                    if case let .failed(e) = s.identity {
                        w.expired.append((head, e))
                    } else {
                        // The cause is more useful than the timeout itself, when there was one.
                        w.expired.append((head, head.lastError ?? .timedOut("delivery.timeout.ms (\(config.deliveryTimeoutMs) ms) passed for \(tp)")))
                    }
                }
            }
            var stamp: (Int64, Int16)?
            switch s.identity {
            case .pending:
                // Asked for once there is something to send, not when the producer is made.
                if !s.open.isEmpty || s.lanes.values.contains(where: { !$0.queue.isEmpty }) {
                    s.identity = .initializing
                    w.initIdentity = true
                }
            case let .ready(pid, epoch): stamp = (pid, epoch)
            case .initializing, .disabled, .failed: break
            }
            var byLeader: [Int32: [Lane]] = [:]
            for (tp, lane) in s.lanes where !lane.queue.isEmpty {
                guard let head = lane.queue.first else { continue }
                later(head.createdAt + timeout)
                if lane.draining {
                    guard lane.inFlight.isEmpty else { continue }
                    lane.draining = false
                }
                if head.retryAt > now { later(head.retryAt); continue }
                switch s.identity {
                case .pending, .initializing: continue
                case .ready, .disabled, .failed: break
                }
                if case let (pid, epoch)? = stamp, lane.producerId != pid || lane.epoch != epoch || lane.needsReset {
                    // A new id or epoch starts the partition's sequences at 0: only once nothing
                    // stamped with the old one is in flight.
                    guard lane.inFlight.isEmpty else { continue }
                    lane.adopt(producerId: pid, epoch: epoch)
                }
                guard let leader = leaderCache.withLock({ $0[tp] }) else {
                    if s.resolving.insert(tp).inserted { w.resolve.append(tp) }
                    continue
                }
                byLeader[leader, default: []].append(lane)
            }
            for (leader, lanes) in byLeader {
                while s.inFlightPerBroker[leader, default: 0] < config.maxInFlightPerConnection {
                    var batches: [Batch] = []
                    for lane in lanes {
                        // One batch per partition per request (a broker keys a request's records by
                        // partition, and takes one compressed batch each); at most max.in.flight
                        // per partition.
                        guard lane.inFlight.count < config.maxInFlightPerConnection,
                              let head = lane.queue.first, head.retryAt <= now else { continue }
                        lane.queue.removeFirst()
                        if case let (pid, epoch)? = stamp, head.sequence < 0 {
                            head.producerId = pid
                            head.epoch = epoch
                            head.sequence = lane.nextSequence
                            lane.nextSequence = sequenceAdd(lane.nextSequence, Int32(head.records.count))
                        }
                        head.sendsWithStamp += 1
                        lane.inFlight.append(head)
                        batches.append(head)
                    }
                    if batches.isEmpty { break }
                    s.inFlightPerBroker[leader, default: 0] += 1
                    let ticket = s.nextTicket[leader, default: 0]
                    s.nextTicket[leader] = ticket + 1
                    w.requests.append((leader, batches, ticket))
                }
            }
            return w
        }
    }

    private func isFailed(_ identity: Identity) -> Bool {
        if case .failed = identity { return true }
        return false
    }

    private let leaderCache = Mutex<[TopicPartition: Int32]>([:])

    /// Asks any broker for a producer id. A broker that cannot give one (no InitProducerId, an
    /// error, or id -1, as Tansu 0.6 answers) turns idempotence off with a warning when it was only
    /// the default, and fails the producer when it was asked for explicitly.
    private func initProducerId() async {
        defer { wake.signal() }
        var attempt = 0
        while !state.withLock({ $0.closed }) {
            attempt += 1
            let failure: KafkaError
            do throws(KafkaError) {
                let c = try await cluster.anyConnection()
                guard c.versions.broker[InitProducerIdRequest.apiKey] != nil else {
                    throw .unsupportedVersion(apiKey: InitProducerIdRequest.apiKey, broker: nil, client: InitProducerIdRequest.validVersions)
                }
                var request = InitProducerIdRequest()
                request.transactionalId = nil
                request.transactionTimeoutMs = 60_000
                let response: InitProducerIdResponse
                do throws(KafkaError) {
                    response = try await c.send(request)
                } catch {
                    if case .network = error { await cluster.connectionFailed(c) }
                    throw error
                }
                let code = KafkaErrorCode(rawValue: response.errorCode)
                guard code == .none else { throw .broker(code, context: "InitProducerId") }
                guard response.producerId >= 0, response.producerEpoch >= 0 else {
                    throw .broker(.unknownProducerId, context: "InitProducerId answered producer id \(response.producerId)")
                }
                state.withLock { $0.identity = .ready(producerId: response.producerId, epoch: response.producerEpoch) }
                logger.debug("idempotent producer", metadata: ["producer_id": "\(response.producerId)", "epoch": "\(response.producerEpoch)"])
                return
            } catch {
                failure = error
            }
            let transient: Bool
            switch failure {
            case .network, .timedOut, .malformedResponse: transient = true
            case let .broker(code, _): transient = code.isRetriable && code != .unknownProducerId
            default: transient = false
            }
            if transient {
                logger.debug("InitProducerId failed, retrying", metadata: ["error": "\(failure)", "attempt": "\(attempt)"])
                try? await Task.sleep(nanoseconds: backoffNanos(attempt))
                continue
            }
            if config.enableIdempotence == true {
                logger.error("enable.idempotence=true but the broker gives no producer id", metadata: ["error": "\(failure)"])
                state.withLock { $0.identity = .failed(.invalidConfiguration("enable.idempotence=true but the broker gives no producer id: \(failure)")) }
            } else {
                logger.warning("broker gives no producer id; producing without idempotence (set enable.idempotence=false to silence this)", metadata: ["error": "\(failure)"])
                state.withLock { $0.identity = .disabled }
            }
            return
        }
    }

    /// Looks up a partition's leader for its queued batches. On failure, the batches that cannot
    /// wait any longer (an error retrying cannot help, closed) fail; the others stay queued, in
    /// order, for the next lookup after the retry backoff (delivery.timeout.ms still applies).
    private func resolveLeader(_ tp: TopicPartition) async {
        defer { wake.signal() }
        do {
            let leader = try await cluster.leader(topic: tp.topic, partition: tp.partition)
            state.withLock { s in
                leaderCache.withLock { $0[tp] = leader }
                s.resolving.remove(tp)
            }
        } catch {
            let hopeless = state.withLock { s -> [Batch] in
                guard !error.isRetriable, let lane = s.lanes[tp] else {
                    for b in s.lanes[tp]?.queue ?? [] { b.lastError = error }
                    return []
                }
                let fail = lane.queue
                lane.queue.removeAll()
                for b in fail { b.done = true }
                return fail
            }
            for b in hopeless { finishBatch(b, .failure(error)) }
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
            for b in batches { settle(b, .failed(error, logStartOffset: -1)) }
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
                settle(b, .failed(.recordEncoding(error), logStartOffset: -1))
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
                for b in batches { settle(b, .delivered(baseOffset: -1, logAppendTime: -1)) }
            } catch {
                await cluster.connectionFailed(connection)
                for b in batches { settle(b, .failed(error, logStartOffset: -1)) }
            }
            return
        }
        let response: ProduceResponse
        do {
            response = try await connection.send(request, queued: { turn.release() })
        } catch {
            if case .network = error { await cluster.connectionFailed(connection) }
            for b in batches { settle(b, .failed(error, logStartOffset: -1)) }
            return
        }
        var answered: [TopicPartition: ProduceResponse.TopicProduceResponse.PartitionProduceResponse] = [:]
        for t in response.responses {
            for p in t.partitionResponses { answered[TopicPartition(topic: t.name, partition: p.index)] = p }
        }
        for b in batches {
            guard let p = answered[b.partition] else {
                settle(b, .failed(.malformedResponse(connection.address, apiKey: ApiKey.produce.rawValue, "no answer for \(b.partition)"), logStartOffset: -1))
                continue
            }
            let code = KafkaErrorCode(rawValue: p.errorCode)
            if code == .none {
                settle(b, .delivered(baseOffset: p.baseOffset, logAppendTime: p.logAppendTimeMs))
            } else if code == .duplicateSequenceNumber && b.sequence >= 0 && sendsWithStamp(b) > 1 {
                // The broker already has this batch (an earlier attempt's answer was lost).
                settle(b, .delivered(baseOffset: p.baseOffset, logAppendTime: p.logAppendTimeMs))
            } else {
                settle(b, .failed(.broker(code, context: "produce to \(b.partition)\(p.errorMessage.map { ": \($0)" } ?? "")"), logStartOffset: p.logStartOffset))
            }
        }
    }

    private func sendsWithStamp(_ b: Batch) -> Int { state.withLock { _ in b.sendsWithStamp } }

    /// The batch's bytes with its current producer stamp: encoded once, restamped when a retry
    /// carries a new epoch or sequence.
    private func encode(_ b: Batch) throws(RecordEncodingError) -> [UInt8] {
        let stamp = (b.producerId, b.epoch, b.sequence)
        if var bytes = b.encoded {
            if b.encodedStamp != stamp {
                RecordBatch.restampProducerState(&bytes, producerId: stamp.0, producerEpoch: stamp.1, baseSequence: stamp.2)
                b.encoded = bytes
                b.encodedStamp = stamp
            }
            return bytes
        }
        var builder = RecordBatchBuilder(compression: config.compression, initialCapacity: b.bytes + RecordBatchBuilder.headerSize)
        for r in b.records {
            builder.append(key: r.record.key, value: r.record.value, headers: r.record.headers, timestamp: r.timestamp)
        }
        let bytes = try builder.finish(producerId: stamp.0, producerEpoch: stamp.1, baseSequence: stamp.2)
        b.encoded = bytes
        b.encodedStamp = stamp
        return bytes
    }

    enum BatchOutcome {
        case delivered(baseOffset: Int64, logAppendTime: Int64)
        case failed(KafkaError, logStartOffset: Int64)
    }

    private enum Decision {
        case ignore
        case complete(Int64, Int64)
        case retry(KafkaError)
        case fail(KafkaError)
    }

    /// Decides what an answer (or a failure to get one) means for a batch in flight: done, failed,
    /// or back in its lane for a retry in order. With idempotence, follows the Java client's rules
    /// (TransactionManager.canRetry): OUT_OF_ORDER_SEQUENCE_NUMBER is retried, and bumps the epoch
    /// only when the batch is the next one the broker should have (a real gap, not an earlier batch
    /// that failed too); UNKNOWN_PRODUCER_ID (the broker lost our state, e.g. by retention) bumps
    /// the epoch unless the batch was already renumbered or the broker did not say its log start,
    /// and asks for a new producer id when even sequence 0 was refused.
    private func settle(_ b: Batch, _ outcome: BatchOutcome) {
        let now = monotonicNanos()
        let decision = state.withLock { s -> Decision in
            if b.done { return .ignore }
            let lane = laneFor(&s, b.partition)
            lane.inFlight.removeAll { $0 === b }
            switch outcome {
            case let .delivered(base, time):
                if b.sequence >= 0 && b.producerId == lane.producerId && b.epoch == lane.epoch {
                    lane.lastAckedSequence = b.lastSequence
                }
                b.done = true
                return .complete(base, time)
            case let .failed(error, logStartOffset):
                b.lastError = error
                b.attempts += 1
                var retry = error.isRetriable
                var bump = false
                var renew = false
                if b.sequence >= 0, case let .broker(code, _) = error {
                    if code == .outOfOrderSequenceNumber {
                        retry = true
                        bump = b.producerId == lane.producerId && b.epoch == lane.epoch
                            && b.sequence == sequenceAdd(lane.lastAckedSequence, 1)
                    } else if code == .unknownProducerId {
                        retry = true
                        if b.sequence == 0 {
                            // Refused even as a fresh start: the broker does not know the id at
                            // all (it lost the producer state it gave out, e.g. a restart without
                            // logs), so no epoch of it will do. Kafka accepts sequence 0 from an
                            // unknown producer and never gets here.
                            renew = true
                        } else {
                            bump = logStartOffset >= 0 && !b.sequenceReset
                        }
                    } else if code == .duplicateSequenceNumber {
                        // A duplicate of a batch never sent before with this stamp: another
                        // producer has our id (a broker that lost its state gave it out again).
                        // Taking it as delivered would lose the records: a new id, and again.
                        retry = true
                        renew = true
                    } else if code == .producerFenced || code == .invalidProducerEpoch {
                        // Not transactional, so nobody fences us on purpose: the broker lost our
                        // producer state (a restart without logs) and gave our id to another
                        // producer. Under a new producer id the partition restarts its sequences.
                        retry = true
                        renew = true
                    }
                }
                if error.invalidatesMetadata { leaderCache.withLock { $0[b.partition] = nil } }
                let expired = now >= b.createdAt + UInt64(config.deliveryTimeoutMs) * 1_000_000
                if retry && (b.attempts > config.retries || expired || s.closed) { retry = false }
                if retry {
                    lane.draining = true
                    b.retryAt = now + backoffNanos(b.attempts)
                    lane.requeue(b)
                    if bump { bumpEpoch(&s, lane, b) }
                    if renew { renewProducerId(&s, lane, b) }
                    return .retry(error)
                }
                b.done = true
                if b.sequence >= 0 {
                    // Its sequences are a hole now: the partition restarts them under a new epoch.
                    lane.draining = true
                    bumpEpoch(&s, lane, b)
                }
                return .fail(error)
            }
        }
        switch decision {
        case .ignore: return
        case let .complete(base, time):
            finishBatch(b, .success((base, time)))
        case let .retry(error):
            if error.invalidatesMetadata { Task { await cluster.invalidateMetadata() } }
            metrics.retried(topic: b.partition.topic, error: error, records: b.records.count)
            logger.debug("retrying batch", metadata: [
                "partition": "\(b.partition)", "error": "\(error)", "attempt": "\(b.attempts)", "sequence": "\(b.sequence)",
            ])
            wake.signal()
        case let .fail(error):
            if error.invalidatesMetadata { Task { await cluster.invalidateMetadata() } }
            finishBatch(b, .failure(error))
        }
    }

    /// Asks for a new epoch (locally, as KIP-360 allows an idempotent producer) because of `b`'s
    /// partition; the partition restarts its sequences once nothing is in flight for it. Only a
    /// batch stamped with the current epoch bumps it, so one failure episode bumps once.
    private func bumpEpoch(_ s: inout State, _ lane: Lane, _ b: Batch) {
        lane.needsReset = true
        guard case let .ready(pid, epoch) = s.identity, b.producerId == pid, b.epoch == epoch else { return }
        if epoch == Int16.max {
            s.identity = .pending  // epochs exhausted: a new producer id
        } else {
            s.identity = .ready(producerId: pid, epoch: epoch + 1)
        }
        logger.warning("bumping producer epoch", metadata: [
            "producer_id": "\(pid)", "epoch": "\(epoch)", "partition": "\(b.partition)", "error": "\(b.lastError.map { "\($0)" } ?? "-")",
        ])
    }

    /// Asks the broker for a new producer id (InitProducerId) because `b`'s was refused as fenced
    /// or unknown;
    /// only a batch stamped with the current identity renews it, so one episode renews once.
    private func renewProducerId(_ s: inout State, _ lane: Lane, _ b: Batch) {
        lane.needsReset = true
        guard case let .ready(pid, epoch) = s.identity, b.producerId == pid, b.epoch == epoch else { return }
        s.identity = .pending
        logger.warning("renewing producer id", metadata: [
            "producer_id": "\(pid)", "epoch": "\(epoch)", "partition": "\(b.partition)", "error": "\(b.lastError.map { "\($0)" } ?? "-")",
        ])
    }

    /// Reports a batch's outcome to its records' waiters and frees its buffer space.
    private func finishBatch(_ b: Batch, _ outcome: Result<(Int64, Int64), KafkaError>) {
        switch outcome {
        case .success:
            metrics.sent(topic: b.partition.topic, records: b.records.count, bytes: b.encoded?.count ?? b.bytes)
        case let .failure(error):
            metrics.failed(topic: b.partition.topic, error: error, records: b.records.count)
            logger.warning("batch failed", metadata: ["partition": "\(b.partition)", "error": "\(error)", "records": "\(b.records.count)"])
        }
        _ = settleRecords(b, outcome, keepFailures: true)
    }

    /// Frees the space of records without a report and keeps the failures nobody waits for (or
    /// returns them when `keepFailures` is false); then calls completions and queues reports, so
    /// that a caller woken by its record sees the producer's counts already updated.
    private func settleRecords(_ b: Batch, _ outcome: Result<(Int64, Int64), KafkaError>, keepFailures: Bool) -> [UndeliveredRecord] {
        var unreported: [UndeliveredRecord] = []
        var freedBytes = 0
        var freedRecords = 0
        let tp = b.partition
        func result(_ i: Int, _ r: PendingRecord) -> Result<RecordMetadata, KafkaError> {
            outcome.map { base, time in
                RecordMetadata(topic: tp.topic, partition: tp.partition, offset: base < 0 ? -1 : base + Int64(i), timestamp: time >= 0 ? time : r.timestamp)
            }
        }
        for r in b.records {
            let reportId: UInt64?
            switch r.notify {
            case .report(let id): reportId = id
            case .completion, .none:
                reportId = nil
                freedBytes += r.record.estimatedSize
                freedRecords += 1
            }
            // Failures reach a completion or a report; kept are those of records with neither,
            // and at close all of them.
            if case let .failure(error) = outcome, !keepFailures || r.notify.isNone {
                unreported.append(UndeliveredRecord(topic: tp.topic, partition: tp.partition, key: r.record.key, reportId: reportId, error: error))
            }
        }
        let (flushed, space, buffered) = state.withLock { s -> ([OneShot<Void>], [OneShot<Void>], Int) in
            s.unackedRecords -= b.records.count
            s.bufferedBytes -= freedBytes
            s.bufferedRecords -= freedRecords
            if keepFailures {
                let room = max(0, config.maxBufferedRecords - s.failures.count)
                s.failures += unreported.prefix(room)
                s.failuresNotKept += max(0, unreported.count - room)
            }
            let f = s.unackedRecords == 0 ? s.flushWaiters : []
            if s.unackedRecords == 0 { s.flushWaiters.removeAll() }
            let w = s.spaceWaiters
            s.spaceWaiters.removeAll()
            return (f, w, s.bufferedBytes)
        }
        metrics.buffer(bytes: buffered)
        for (i, r) in b.records.enumerated() {
            switch r.notify {
            case let .completion(c): c(result(i, r))
            case let .report(id):
                reports.push(DeliveryReport(topic: tp.topic, partition: tp.partition, key: r.record.key, reportId: id, result: result(i, r)),
                             bytes: r.record.estimatedSize)
            case .none: break
            }
        }
        for c in space { c.fulfill(()) }
        for c in flushed { c.fulfill(()) }
        return keepFailures ? [] : unreported
    }

    /// retry.backoff.ms doubled per attempt up to retry.backoff.max.ms, with +-20% jitter.
    private func backoffNanos(_ attempt: Int) -> UInt64 {
        let base = config.client.retryBackoffMs
        let ms = min(max(config.retryBackoffMaxMs, base), base << min(max(attempt - 1, 0), 20))
        return UInt64(Double(ms) * Double.random(in: 0.8...1.2) * 1e6)
    }
}

/// Kafka's sequences wrap from Int32.max to 0.
@inline(__always) func sequenceAdd(_ a: Int32, _ n: Int32) -> Int32 {
    Int32((Int64(a) + Int64(n)) & Int64(Int32.max))
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
