import Synchronization

/// A multi-producer, single-consumer queue with a capacity in cost units (bytes, records...).
///
/// `send` suspends while the queue holds `capacity` or more, so a slow reader slows its writers
/// instead of growing memory. A single element larger than the capacity is still accepted when
/// the queue is empty, so nothing can deadlock on one big record.
final class BoundedChannel<Element: Sendable>: Sendable {
    private struct State {
        var items: [(Element, Int)] = []
        var head = 0
        var cost = 0
        var finished: (any Error)?? = nil
        var receiver: CheckedContinuation<Void, Never>?
        var senders: [CheckedContinuation<Void, Never>] = []
    }
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var bufferedCost: Int { state.withLock { $0.cost } }

    /// Adds an element, waiting for room. Returns false if the channel was finished.
    @discardableResult
    func send(_ element: Element, cost: Int) async -> Bool {
        while true {
            let outcome = state.withLock { s -> Bool? in
                if s.finished != nil { return false }
                if s.cost > 0 && s.cost + cost > capacity { return nil }
                s.items.append((element, cost))
                s.cost += cost
                return true
            }
            if let outcome {
                if outcome { wakeReceiver() }
                return outcome
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let retry = state.withLock { s -> Bool in
                    if s.finished != nil || s.cost == 0 || s.cost + cost <= capacity { return true }
                    s.senders.append(c)
                    return false
                }
                if retry { c.resume() }
            }
        }
    }

    /// Ends the stream after the buffered elements; `error` is thrown to the reader once drained.
    func finish(throwing error: (any Error)? = nil) {
        let (receiver, senders) = state.withLock { s -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            if s.finished == nil { s.finished = .some(error) }
            defer { s.receiver = nil; s.senders.removeAll() }
            return (s.receiver, s.senders)
        }
        receiver?.resume()
        for c in senders { c.resume() }
    }

    private func wakeReceiver() {
        let r = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.receiver = nil }
            return s.receiver
        }
        r?.resume()
    }

    /// The next element, or nil once finished and drained. Only one task may receive.
    func receive() async throws -> Element? {
        while true {
            let result = state.withLock { s -> Result<Element?, any Error>? in
                if s.head < s.items.count {
                    let (e, cost) = s.items[s.head]
                    s.head += 1
                    s.cost -= cost
                    if s.head == s.items.count {
                        s.items.removeAll(keepingCapacity: true)
                        s.head = 0
                    } else if s.head >= 64 {
                        s.items.removeFirst(s.head)
                        s.head = 0
                    }
                    return .success(e)
                }
                if let finished = s.finished {
                    if let error = finished { return .failure(error) }
                    return .success(nil)
                }
                return nil
            }
            if let result {
                wakeSenders()
                return try result.get()
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if s.head < s.items.count || s.finished != nil { return true }
                    s.receiver = c
                    return false
                }
                if ready { c.resume() }
            }
        }
    }

    private func wakeSenders() {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.senders.isEmpty, s.cost < capacity else { return [] }
            defer { s.senders.removeAll() }
            return s.senders
        }
        for c in waiting { c.resume() }
    }
}
