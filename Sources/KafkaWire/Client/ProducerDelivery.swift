import Synchronization

/// The outcome of one record queued with `KafkaProducer.enqueue(_:reportId:)`.
public struct DeliveryReport: Sendable {
    public var topic: String
    public var partition: Int32
    public var key: [UInt8]?
    /// The caller's identifier for the record, as given to `enqueue`.
    public var reportId: UInt64
    /// Where it was written, or why it was not.
    public var result: Result<RecordMetadata, KafkaError>
}

/// A record the producer could not deliver, with what identifies it.
public struct UndeliveredRecord: Sendable, CustomStringConvertible {
    public var topic: String
    /// The partition it was meant for.
    public var partition: Int32
    public var key: [UInt8]?
    /// The caller's identifier, for a record queued with `enqueue(_:reportId:)`.
    public var reportId: UInt64?
    public var error: KafkaError

    public var description: String {
        "\(topic)/\(partition)\(reportId.map { " id \($0)" } ?? "")\(key.map { " key \(String(decoding: $0, as: UTF8.self))" } ?? ""): \(error)"
    }
}

/// What `flush` could not deliver: records that failed since the last flush, and how many were
/// still unanswered at its deadline.
public struct FlushError: Error, Sendable, CustomStringConvertible {
    /// The failed records (at most queue.buffering.max.messages are kept).
    public var failed: [UndeliveredRecord]
    /// Failed records beyond those kept.
    public var failedNotKept: Int
    /// Records still waiting for an answer when the deadline passed.
    public var stillPending: Int

    public var failedRecords: Int { failed.count + failedNotKept }
    public var firstError: KafkaError? { failed.first?.error }

    public var description: String {
        var parts: [String] = []
        if failedRecords > 0 { parts.append("\(failedRecords) records failed; first: \(failed.first.map { "\($0)" } ?? "-")") }
        if stillPending > 0 { parts.append("\(stillPending) records still unanswered at the flush deadline") }
        return parts.joined(separator: "; ")
    }
}

/// The reports of a producer as an AsyncSequence (one reader at a time).
public struct DeliveryReports: AsyncSequence, Sendable {
    public typealias Element = DeliveryReport
    let queue: DeliveryReportQueue

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: DeliveryReportQueue
        public mutating func next() async -> DeliveryReport? { await queue.receive() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: queue) }
}

/// Reports waiting to be read. Not bounded by itself: each report's record keeps its place in the
/// producer's buffer until the report is read, so the producer's caps bound this queue too.
final class DeliveryReportQueue: Sendable {
    private struct State {
        var items: [(DeliveryReport, Int)] = []
        var head = 0
        var finished = false
        var reader: CheckedContinuation<Void, Never>?
        var onRead: (@Sendable (Int) -> Void)?
    }
    private let state = Mutex(State())

    func onRead(_ action: @escaping @Sendable (Int) -> Void) { state.withLock { $0.onRead = action } }

    func push(_ report: DeliveryReport, bytes: Int) {
        let reader = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.items.append((report, bytes))
            defer { s.reader = nil }
            return s.reader
        }
        reader?.resume()
    }

    func finish() {
        let reader = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.finished = true
            defer { s.reader = nil }
            return s.reader
        }
        reader?.resume()
    }

    func receive() async -> DeliveryReport? {
        while true {
            let got = state.withLock { s -> (DeliveryReport, Int, (@Sendable (Int) -> Void)?)?? in
                if s.head < s.items.count {
                    let (r, bytes) = s.items[s.head]
                    s.head += 1
                    if s.head == s.items.count {
                        s.items.removeAll(keepingCapacity: true)
                        s.head = 0
                    } else if s.head >= 1024 {
                        s.items.removeFirst(s.head)
                        s.head = 0
                    }
                    return .some((r, bytes, s.onRead))
                }
                return s.finished ? .some(nil) : nil
            }
            if let got {
                guard let (report, bytes, onRead) = got else { return nil }
                onRead?(bytes)
                return report
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.head < s.items.count || s.finished { return true }
                    s.reader = c
                    return false
                }
                if now { c.resume() }
            }
        }
    }
}

extension OneShot where Value == Void {
    /// Waits until fulfilled, or until `deadline` (monotonic nanoseconds) if given.
    func wait(until deadline: UInt64?) async {
        guard let deadline else { return await value() }
        let timer = Task { [self] in
            let now = monotonicNanos()
            if deadline > now { try? await Task.sleep(nanoseconds: deadline - now) }
            if !Task.isCancelled { fulfill(()) }
        }
        await value()
        timer.cancel()
    }
}
