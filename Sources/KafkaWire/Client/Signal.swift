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
