import Foundation
import KafkaWire
import Logging
import Synchronization

/// Settings both consumers share.
public struct EventConsumerConfig: Sendable {
    public var client: ClientConfig
    public var groupId: String
    public var topic: String
    public var dlqTopic: String
    /// `session.timeout.ms`: also how long a join waits on brokers that wait half of it (Tansu).
    public var sessionTimeoutMs = 10_000
    public var heartbeatIntervalMs = 1_000
    /// Where a group without committed offsets starts: earliest, so that no event is skipped.
    public var autoOffsetReset = OffsetResetPolicy.earliest
    /// `fetch.max.wait.ms`
    public var fetchMaxWaitMs = 200
    /// Pause between retries of a store call that failed (the database is down...).
    public var storeRetry = Backoff(baseMs: 200, maxMs: 5_000)

    public init(client: ClientConfig, groupId: String, topic: String, dlqTopic: String) {
        self.client = client
        self.groupId = groupId
        self.topic = topic
        self.dlqTopic = dlqTopic
    }

    var groupConsumerConfig: GroupConsumerConfig {
        var consumer = ConsumerConfig(client: client)
        consumer.autoOffsetReset = autoOffsetReset
        consumer.fetchMaxWaitMs = fetchMaxWaitMs
        var g = GroupConsumerConfig(consumer: consumer, groupId: groupId)
        g.sessionTimeoutMs = sessionTimeoutMs
        g.heartbeatIntervalMs = heartbeatIntervalMs
        // Offsets are committed by the consumers themselves, after the outcome is stored.
        g.enableAutoCommit = false
        return g
    }
}

/// Runs `operation` until it succeeds, pausing with `backoff` between failures; only cancellation
/// stops it. For store calls: a record is never skipped because the database was briefly away.
func retryUntilDone<T: Sendable>(_ what: String, backoff: Backoff, logger: Logger,
                                 _ operation: () async throws -> T) async throws -> T {
    var attempt = 0
    while true {
        try Task.checkCancellation()
        do {
            return try await operation()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            attempt += 1
            logger.error("\(what) failed, retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
            try await backoff.sleep(afterAttempt: attempt)
        }
    }
}

/// Iterates a group consumer's records until the task is cancelled (which closes the consumer and
/// ends the sequence), then closes the consumer.
func consumeUntilCancelled(_ member: KafkaGroupConsumer, _ body: (ConsumerRecord) async throws -> Void) async throws {
    try await withTaskCancellationHandler {
        do {
            for try await record in member.records {
                try await body(record)
            }
        } catch {
            await member.close()
            if Task.isCancelled { return }
            throw error
        }
        await member.close()
    } onCancel: {
        Task { await member.close() }
    }
}

/// A small bounded hand-over between the task that reads records and the one that batches them,
/// with a receive that can time out (for the batches' time bound).
final class RecordQueue: Sendable {
    private struct State {
        var items: [ConsumerRecord] = []
        var finished = false
        var failure: (any Error)?
    }
    private let state = Mutex(State())
    private let available = Wakeup()
    private let space = Wakeup()
    let capacity: Int

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    /// Waits for room, then appends.
    func send(_ record: ConsumerRecord) async {
        while !Task.isCancelled {
            let added = state.withLock { s -> Bool in
                guard s.items.count < capacity else { return false }
                s.items.append(record)
                return true
            }
            if added { available.poke(); return }
            await space.wait(timeoutMs: 200)
        }
    }

    func finish(_ failure: (any Error)?) {
        state.withLock { s in
            s.finished = true
            s.failure = failure
        }
        available.poke()
    }

    enum Received {
        case records([ConsumerRecord])
        /// Nothing arrived before the deadline.
        case timedOut
        case finished((any Error)?)
    }

    /// Up to `max` records, waiting until `deadline` (monotonic) for at least one.
    func receive(max: Int, until deadline: ContinuousClock.Instant) async -> Received {
        while true {
            let got = state.withLock { s -> Received? in
                if !s.items.isEmpty {
                    let n = min(max, s.items.count)
                    let out = Array(s.items.prefix(n))
                    s.items.removeFirst(n)
                    return .records(out)
                }
                return s.finished ? .finished(s.failure) : nil
            }
            if let got {
                if case .records = got { space.poke() }
                return got
            }
            let now = ContinuousClock.now
            if now >= deadline || Task.isCancelled { return .timedOut }
            let ms = Int((deadline - now) / .milliseconds(1)) + 1
            await available.wait(timeoutMs: ms)
        }
    }
}
