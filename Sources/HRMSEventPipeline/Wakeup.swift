import Synchronization

/// A wake-up call with a timeout: `poke()` ends the current (or next) `wait`. Pokes do not pile
/// up: several before a wait end one wait.
final class Wakeup: Sendable {
    private struct State {
        var poked = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())

    func poke() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.poked = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after a poke, after `timeoutMs`, or when the task is cancelled.
    func wait(timeoutMs: Int) async {
        let generation = state.withLock { s -> UInt64 in s.generation += 1; return s.generation }
        let timer = Task { [self] in
            try? await Task.sleep(nanoseconds: UInt64(max(timeoutMs, 0)) * 1_000_000)
            wake(generation)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.poked || Task.isCancelled { s.poked = false; return true }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            wake(generation)
        }
        timer.cancel()
    }

    /// Ends the wait of `generation` if it is still the one waiting (a late timer must not end a later wait).
    private func wake(_ generation: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.generation == generation, let w = s.waiter else { return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }
}
