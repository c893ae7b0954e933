import Synchronization

/// A wake-up flag one task waits on and any thread sets: `wait` returns at once if signalled since
/// the last wait, else when signalled or when the deadline passes. Signals coalesce.
final class Signal: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
    }
    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else { s.signalled = true; return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Waits for a signal, or until `deadline` (monotonic nanoseconds) if given.
    func wait(until deadline: UInt64?) async {
        if let deadline, deadline <= monotonicNanos() { return }
        let generation = state.withLock { s -> Int? in
            if s.signalled { s.signalled = false; return nil }
            s.generation += 1
            return s.generation
        }
        guard let generation else { return }
        var timer: Task<Void, Never>?
        if let deadline {
            timer = Task { [weak self] in
                let now = monotonicNanos()
                if deadline > now { try? await Task.sleep(nanoseconds: deadline - now) }
                guard !Task.isCancelled else { return }
                self?.timeout(generation)
            }
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.signalled || s.generation != generation { s.signalled = false; return true }
                s.waiter = c
                return false
            }
            if resumeNow { c.resume() }
        }
        timer?.cancel()
    }

    private func timeout(_ generation: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.generation == generation else { return nil }
            s.generation += 1
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }
}

/// A value set once by anyone and awaited by one task.
final class OneShot<Value: Sendable>: Sendable {
    private let state = Mutex<(value: Value?, waiter: CheckedContinuation<Value, Never>?)>((nil, nil))

    func fulfill(_ value: Value) {
        let waiter = state.withLock { s -> CheckedContinuation<Value, Never>? in
            guard s.value == nil else { return nil }
            s.value = value
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: value)
    }

    func value() async -> Value {
        await withCheckedContinuation { (c: CheckedContinuation<Value, Never>) in
            let ready = state.withLock { s -> Value? in
                if let v = s.value { return v }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}
